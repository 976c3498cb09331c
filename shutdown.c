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
 * Connecting never blocks the listener: the guard's backend may wait for
 * a DDL's lock on pg_authid like any login, so the connection is started
 * with PQconnectStartParams() and polled on the listener's ticks, given up
 * after GUARD_CONNECT_MS; the bootstrap superuser's name is read only when
 * the catalogs can be locked without waiting.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <poll.h>
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

#include "auth.h"
#include "builtin_pool.h"
#include "pool_shmem.h"
#include "shutdown.h"

#define GUARD_RETRY_MS	10000
#define GUARD_CONNECT_MS	5000

static PGconn *guard = NULL;
static bool connecting = false; /* guard is a connection being made */
static TimestampTz connect_deadline = 0;
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

/*
 * The bootstrap superuser's name, read in a short transaction, or NULL
 * while a DDL holds pg_authid (the caller tries again on a later tick)
 */
static char *
bootstrap_superuser(void)
{
	char	   *name = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	if (bp_auth_lock_catalogs())
		name = MemoryContextStrdup(cxt,
								   GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false));
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return name;
}

/* Logs, once until the guard connects again, why it could not connect */
static void
guard_failed(const char *why)
{
	if (!failure_logged)
		ereport(LOG,
				(errmsg("builtin_pool smart shutdown guard could not connect: %s", why),
				 errdetail("A smart shutdown will end pooled sessions without waiting for them."),
				 errhint("Let the bootstrap superuser connect to database \"postgres\" over the Unix socket without a password (trust or peer), or set builtin_pool.smart_shutdown_guard to off.")));
	failure_logged = true;
	PQfinish(guard);
	guard = NULL;
	connecting = false;
}

/*
 * Starts connecting the guard to the first Unix socket directory, without
 * waiting for anything; guard_poll() carries the connection on.  Done once,
 * then only after the guard was lost.  Returns false if no attempt could
 * start for now (the catalogs are locked): the caller tries again soon.
 */
static bool
guard_connect(void)
{
	char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
	List	   *list;
	char	   *user;
	char		port[16];
	const char *keys[] = {"host", "port", "dbname", "user", "application_name", NULL};
	const char *values[6];

	if (!SplitDirectoriesString(dirs, ',', &list) || list == NIL)
	{
		if (!failure_logged)
			ereport(LOG,
					(errmsg("builtin_pool smart shutdown guard not started: the server has no Unix socket"),
					 errdetail("A smart shutdown will end pooled sessions without waiting for them.")));
		failure_logged = true;
		return true;
	}
	if ((user = bootstrap_superuser()) == NULL)
		return false;
	snprintf(port, sizeof(port), "%d", PostPortNumber);
	values[0] = linitial(list);
	values[1] = port;
	values[2] = "postgres";
	values[3] = user;
	values[4] = "builtin_pool smart shutdown guard";
	values[5] = NULL;
	guard = PQconnectStartParams(keys, values, 0);
	if (guard == NULL)
	{
		guard_failed("out of memory");
		return true;
	}
	if (PQstatus(guard) == CONNECTION_BAD)
	{
		guard_failed(PQerrorMessage(guard));
		return true;
	}
	connecting = true;
	connect_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   GUARD_CONNECT_MS);
	return true;
}

/*
 * Carries a connection being made one step on, if its socket is ready
 * (libpq wants to be called only then); never waits.  Gives up at
 * connect_deadline: the guard's backend may be waiting for a lock.
 */
static void
guard_poll(void)
{
	struct pollfd pfd;

	pfd.fd = PQsocket(guard);
	pfd.events = POLLIN | POLLOUT;
	pfd.revents = 0;
	for (;;)
	{
		PostgresPollingStatusType st;

		if (pfd.fd < 0 || poll(&pfd, 1, 0) < 0)
		{
			guard_failed(PQerrorMessage(guard));
			return;
		}
		if (pfd.revents == 0)
			break;
		st = PQconnectPoll(guard);
		if (st == PGRES_POLLING_OK)
		{
			(void) PQsetnonblocking(guard, 1);
			connecting = false;
			failure_logged = false;
			return;
		}
		if (st == PGRES_POLLING_FAILED)
		{
			guard_failed(PQerrorMessage(guard));
			return;
		}
		pfd.fd = PQsocket(guard);	/* may change between steps */
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
	}
	if (GetCurrentTimestamp() >= connect_deadline)
		guard_failed("timeout expired");
}

/* See shutdown.h */
bool
bp_guard_connecting(void)
{
	if (connecting)
		guard_poll();
	return connecting;
}

bool
bp_guard_tick(void)
{
	bool		stopping;

	if (!bp_smart_shutdown_guard || released)
		return false;

	/* a guard that was terminated reads EOF */
	if (guard && !connecting &&
		(PQconsumeInput(guard) == 0 || PQstatus(guard) != CONNECTION_OK))
	{
		PQfinish(guard);
		guard = NULL;
	}

	stopping = server_stopping();
	if (guard == NULL)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (!stopping && now >= next_attempt && guard_connect())
			next_attempt = TimestampTzPlusMilliseconds(now, GUARD_RETRY_MS);
		return false;
	}
	return stopping && !connecting;
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
	connecting = false;
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
