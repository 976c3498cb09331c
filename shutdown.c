/*-------------------------------------------------------------------------
 *
 * shutdown.c
 *	  The smart shutdown guard: makes a smart shutdown wait for the pool's
 *	  clients, as it waits for the main port's.
 *
 * A smart shutdown waits until no regular backend is left, then stops the
 * background workers, pool executors included: pooled clients would be cut
 * off while the DBA asked to wait for them.  No bgworker counts as a
 * regular backend, so the listener keeps one: a libpq connection to the
 * server's own Unix socket, idle, named "builtin_pool smart shutdown
 * guard" in pg_stat_activity.  When postmaster.pid says the server is
 * stopping while the guard is still connected, this is a smart shutdown (a
 * fast one terminates the guard at once): the pool admits no new client,
 * and the guard disconnects when the last pooled session has ended, which
 * lets the shutdown go on.
 *
 * The guard is a convenience, not a dependency: if it cannot connect
 * (pg_hba.conf asks a password for local connections, no Unix socket,
 * builtin_pool.smart_shutdown_guard off), that is logged once and a smart
 * shutdown ends pooled sessions as a fast one would.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "libpq-fe.h"
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/pidfile.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "builtin_pool.h"
#include "pool_shmem.h"
#include "shutdown.h"

#define GUARD_RETRY_MS	10000

static PGconn *guard = NULL;
static bool released = false;
static bool failure_logged = false;
static TimestampTz next_attempt = 0;

/* true if postmaster.pid says the postmaster is in its shutdown sequence */
static bool
server_stopping(void)
{
	FILE	   *f = fopen("postmaster.pid", "r");
	char		line[MAXPGPATH];
	int			n = 0;
	bool		stopping = false;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (++n == LOCK_FILE_LINE_PM_STATUS)
		{
			stopping = strncmp(line, PM_STATUS_STOPPING,
							   strlen(PM_STATUS_STOPPING)) == 0;
			break;
		}
	}
	fclose(f);
	return stopping;
}

/* The bootstrap superuser's name, read in a short transaction */
static char *
bootstrap_superuser(void)
{
	char	   *name;

	StartTransactionCommand();
	name = pstrdup(GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false));
	CommitTransactionCommand();
	return name;
}

/*
 * Connects the guard to the first Unix socket directory.  Blocking, but
 * local and bounded by connect_timeout; done once, then only after the
 * guard was lost.
 */
static void
guard_connect(void)
{
	char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
	List	   *list;
	char	   *conninfo;

	if (!SplitDirectoriesString(dirs, ',', &list) || list == NIL)
	{
		if (!failure_logged)
			ereport(LOG,
					(errmsg("builtin_pool smart shutdown guard not started: the server has no Unix socket"),
					 errdetail("A smart shutdown will end pooled sessions without waiting for them.")));
		failure_logged = true;
		return;
	}
	conninfo = psprintf("host='%s' port=%d dbname=postgres user='%s' "
						"application_name='builtin_pool smart shutdown guard' "
						"connect_timeout=5",
						(char *) linitial(list), PostPortNumber,
						bootstrap_superuser());
	guard = PQconnectdb(conninfo);
	if (PQstatus(guard) != CONNECTION_OK)
	{
		if (!failure_logged)
			ereport(LOG,
					(errmsg("builtin_pool smart shutdown guard could not connect: %s",
							PQerrorMessage(guard)),
					 errdetail("A smart shutdown will end pooled sessions without waiting for them."),
					 errhint("Let the bootstrap superuser connect to database \"postgres\" over the Unix socket without a password (trust or peer), or set builtin_pool.smart_shutdown_guard to off.")));
		failure_logged = true;
		PQfinish(guard);
		guard = NULL;
		return;
	}
	(void) PQsetnonblocking(guard, 1);
	failure_logged = false;
}

bool
bp_guard_tick(void)
{
	bool		stopping;

	if (!bp_smart_shutdown_guard || released)
		return false;

	/* a guard that was terminated reads EOF */
	if (guard && (PQconsumeInput(guard) == 0 || PQstatus(guard) != CONNECTION_OK))
	{
		PQfinish(guard);
		guard = NULL;
	}

	stopping = server_stopping();
	if (guard == NULL)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (!stopping && now >= next_attempt)
		{
			next_attempt = TimestampTzPlusMilliseconds(now, GUARD_RETRY_MS);
			guard_connect();
		}
		return false;
	}
	return stopping;
}

void
bp_guard_release(void)
{
	if (guard)
	{
		ereport(LOG,
				(errmsg("builtin_pool has no session left: smart shutdown goes on")));
		PQfinish(guard);
	}
	guard = NULL;
	released = true;
}

uint32
bp_pool_sessions_total(void)
{
	uint32		total = 0;
	int			i;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->state != PE_FREE)
			total += pg_atomic_read_u32(&ex->n_sessions);
	}
	return total;
}
