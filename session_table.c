/*-------------------------------------------------------------------------
 *
 * session_table.c
 *	  The shared table of pool sessions: one slot per client session, kept
 *	  by whoever holds the session (listener or executor), read by
 *	  pool_sessions(), and acted on by pool_cancel_session() and
 *	  pool_terminate_session().
 *
 * A session gets a slot and a session_id when the listener admits it; the
 * id comes from a 64-bit counter, so it is never reused while the server
 * runs.  The slot index and the id travel in every handoff and handback,
 * so a session keeps both as it moves between executors.  The slot is
 * freed when the session ends (by its holder), or with its executor when
 * that one dies (the listener purges it).
 *
 * The table has as many slots as the cancel key table has keys (every live
 * session has one of each): max_worker_processes * builtin_pool.max_sessions
 * + 1024, each with track_activity_query_size bytes for the query.
 *
 * Note about locking: see session_table.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "common/ip.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

#include "builtin_pool.h"
#include "pool_shmem.h"
#include "session.h"
#include "session_table.h"

/* A reader retries a slot caught mid-write this often, then skips it */
#define BP_STAB_READ_TRIES	1000

typedef struct PoolSessionSlot
{
	pg_atomic_uint32 in_use;	/* claimed by the listener, freed by holder */
	pg_atomic_uint32 requests;	/* BP_STAB_* bits */
	int			changecount;	/* odd while being written */

	/* written by the session's holder, inside changecount */
	uint64		session_id;
	int			port_index;
	Oid			dboid;
	Oid			roleid;
	Oid			userid;			/* current user, as the executor last saw */
	char		dbname[NAMEDATALEN];
	char		rolname[NAMEDATALEN];
	char		appname[NAMEDATALEN];
	SockAddr	raddr;
	char		tls[BP_STAB_TLS_LEN];	/* "version cipher", or empty */
	int			tls_bits;
	TimestampTz started;
	TimestampTz xact_start;
	TimestampTz query_start;
	TimestampTz state_change;
	TimestampTz wait_start;		/* while waiting or parked */
	PoolSessionTabState state;
	bool		request_queued; /* a complete request waits to be served:
								 * from its executor's queue on, while it
								 * moves or parks, until it is served */
	int			exec_slot;		/* executor holding it, or sent to; -1 */
	uint32		exec_gen;
	pid_t		exec_pid;		/* 0 while the listener holds it */
	uint32		cancel_key;
	bool		pinned;
	char		pin_reason[32];
	int			statements;
	uint64		bytes_in;
	uint64		bytes_out;
} PoolSessionSlot;

typedef struct PoolSessionTable
{
	int			n_slots;
	int			query_len;		/* track_activity_query_size */
	pg_atomic_uint64 next_id;
	Latch	   *listener_latch;
	PoolSessionSlot slots[FLEXIBLE_ARRAY_MEMBER];
} PoolSessionTable;

static PoolSessionTable *stab = NULL;
static char *stab_queries = NULL;
static int	claim_cursor = 0;	/* listener only */

#define STAB_BEGIN_WRITE(e) \
	do { (e)->changecount++; pg_write_barrier(); } while (0)
#define STAB_END_WRITE(e) \
	do { pg_write_barrier(); (e)->changecount++; } while (0)

static int
stab_slots(void)
{
	return max_worker_processes * bp_max_sessions + 1024;
}

static inline char *
slot_query(int i)
{
	return stab_queries + (Size) i * stab->query_len;
}

Size
bp_stab_shmem_size(void)
{
	Size		size = offsetof(PoolSessionTable, slots);

	size = add_size(size, mul_size(stab_slots(), sizeof(PoolSessionSlot)));
	size = MAXALIGN(size);
	return add_size(size, mul_size(stab_slots(), pgstat_track_activity_query_size));
}

/* shmem_startup_hook (pool_shmem.c), holding AddinShmemInitLock */
void
bp_stab_shmem_init(void)
{
	bool		found;
	int			i;

	stab = ShmemInitStruct("builtin_pool sessions", bp_stab_shmem_size(), &found);
	stab_queries = (char *) stab +
		MAXALIGN(offsetof(PoolSessionTable, slots) +
				 (Size) stab_slots() * sizeof(PoolSessionSlot));
	if (found)
		return;
	memset(stab, 0, bp_stab_shmem_size());
	stab->n_slots = stab_slots();
	stab->query_len = pgstat_track_activity_query_size;
	pg_atomic_init_u64(&stab->next_id, 1);
	for (i = 0; i < stab->n_slots; i++)
	{
		pg_atomic_init_u32(&stab->slots[i].in_use, 0);
		pg_atomic_init_u32(&stab->slots[i].requests, 0);
		stab->slots[i].exec_slot = -1;
	}
}

void
bp_stab_listener_start(void)
{
	int			i;

	stab->listener_latch = MyLatch;
	for (i = 0; i < stab->n_slots; i++)
	{
		PoolSessionSlot *e = &stab->slots[i];

		/* held by no executor, nor sent to one: it was the listener's */
		if (pg_atomic_read_u32(&e->in_use) != 0 &&
			e->exec_pid == 0 && e->exec_slot < 0)
			bp_stab_release(i);
	}
}

/* ---------------------------------------------------------------------
 * Writers
 * ---------------------------------------------------------------------
 */

int
bp_stab_claim(int port_index, const char *dbname, const char *rolname,
			  Oid dboid, Oid roleid, const SockAddr *raddr,
			  const char *appname, const char *tls, int tls_bits)
{
	int			n;

	for (n = 0; n < stab->n_slots; n++)
	{
		int			i = (claim_cursor + n) % stab->n_slots;
		PoolSessionSlot *e = &stab->slots[i];
		uint32		expected = 0;
		TimestampTz now;

		if (pg_atomic_read_u32(&e->in_use) != 0 ||
			!pg_atomic_compare_exchange_u32(&e->in_use, &expected, 1))
			continue;
		claim_cursor = i + 1;
		now = GetCurrentTimestamp();
		pg_atomic_write_u32(&e->requests, 0);
		STAB_BEGIN_WRITE(e);
		e->session_id = pg_atomic_fetch_add_u64(&stab->next_id, 1);
		e->port_index = port_index;
		e->dboid = dboid;
		e->roleid = roleid;
		e->userid = roleid;
		strlcpy(e->dbname, dbname, NAMEDATALEN);
		strlcpy(e->rolname, rolname, NAMEDATALEN);
		strlcpy(e->appname, appname ? appname : "", NAMEDATALEN);
		e->raddr = *raddr;
		strlcpy(e->tls, tls ? tls : "", BP_STAB_TLS_LEN);
		e->tls_bits = tls_bits;
		e->started = now;
		e->xact_start = e->query_start = e->wait_start = 0;
		e->state_change = now;
		e->state = PST_STARTING;
		e->request_queued = false;
		e->exec_slot = -1;
		e->exec_gen = 0;
		e->exec_pid = 0;
		e->cancel_key = 0;
		e->pinned = false;
		e->pin_reason[0] = '\0';
		e->statements = 0;
		e->bytes_in = e->bytes_out = 0;
		slot_query(i)[0] = '\0';
		STAB_END_WRITE(e);
		return i;
	}
	return -1;
}

/* Sets state; a wait that goes on (parked again, queued) keeps its start */
static void
set_state(PoolSessionSlot *e, PoolSessionTabState state, TimestampTz now)
{
	bool		was_waiting = e->state == PST_WAITING || e->state == PST_PARKED;
	bool		waiting = state == PST_WAITING || state == PST_PARKED;

	if (waiting && !was_waiting)
		e->wait_start = now;
	else if (!waiting)
		e->wait_start = 0;
	if (e->state != state)
		e->state_change = now;
	e->state = state;
}

void
bp_stab_listener_state(int slot, PoolSessionTabState state)
{
	PoolSessionSlot *e;

	if (slot < 0)
		return;
	e = &stab->slots[slot];
	STAB_BEGIN_WRITE(e);
	set_state(e, state, GetCurrentTimestamp());
	e->exec_pid = 0;
	STAB_END_WRITE(e);
}

/*
 * Listener, about to send the session to exec_slot: should that executor
 * die before it adopts the session, the purge of its slot finds it.
 */
void
bp_stab_handed(int slot, int exec_slot, uint32 generation)
{
	PoolSessionSlot *e;

	if (slot < 0)
		return;
	e = &stab->slots[slot];
	STAB_BEGIN_WRITE(e);
	e->exec_slot = exec_slot;
	e->exec_gen = generation;
	STAB_END_WRITE(e);
}

uint64
bp_stab_session_id(int slot)
{
	return slot < 0 || slot >= stab->n_slots ? 0 : stab->slots[slot].session_id;
}

uint32
bp_stab_requests(int slot)
{
	return slot < 0 || slot >= stab->n_slots ? 0 :
		pg_atomic_read_u32(&stab->slots[slot].requests);
}

void
bp_stab_release(int slot)
{
	PoolSessionSlot *e;

	if (slot < 0)
		return;
	e = &stab->slots[slot];
	STAB_BEGIN_WRITE(e);
	e->session_id = 0;
	e->exec_slot = -1;
	e->exec_pid = 0;
	STAB_END_WRITE(e);
	pg_write_barrier();
	pg_atomic_write_u32(&e->in_use, 0);
}

void
bp_stab_release_id(int slot, uint64 session_id)
{
	if (slot >= 0 && slot < stab->n_slots && session_id != 0 &&
		stab->slots[slot].session_id == session_id)
		bp_stab_release(slot);
}

/*
 * An executor died: the sessions it held, or was sent, died with it.  Its
 * slot is being released, so no process writes these entries any more.
 */
void
bp_stab_purge_executor(int exec_slot, uint32 generation)
{
	int			i;

	for (i = 0; i < stab->n_slots; i++)
	{
		PoolSessionSlot *e = &stab->slots[i];

		if (pg_atomic_read_u32(&e->in_use) != 0 &&
			e->exec_slot == exec_slot && e->exec_gen == generation)
			bp_stab_release(i);
	}
}

bool
bp_stab_adopt(PoolSession *s, int slot, uint64 session_id, int exec_slot,
			  uint32 generation, bool moved)
{
	PoolSessionSlot *e;

	s->stab_slot = -1;
	if (slot < 0 || slot >= stab->n_slots ||
		pg_atomic_read_u32(&stab->slots[slot].in_use) == 0 ||
		stab->slots[slot].session_id != session_id)
		return false;
	e = &stab->slots[slot];
	s->stab_slot = slot;
	s->session_id = session_id;
	STAB_BEGIN_WRITE(e);
	e->exec_slot = exec_slot;
	e->exec_gen = generation;
	e->exec_pid = MyProcPid;
	e->cancel_key = s->cancel_key;
	set_state(e, !moved ? PST_STARTING :
			  e->request_queued ? PST_WAITING : PST_IDLE,
			  GetCurrentTimestamp());
	STAB_END_WRITE(e);
	return true;
}

static PoolSessionTabState
backend_state(void)
{
	volatile PgBackendStatus *be = MyBEEntry;

	if (be == NULL)
		return PST_IDLE;
	switch (be->st_state)
	{
		case STATE_RUNNING:
			return PST_ACTIVE;
		case STATE_IDLEINTRANSACTION:
			return PST_IDLE_IN_XACT;
		case STATE_IDLEINTRANSACTION_ABORTED:
			return PST_IDLE_IN_XACT_ABORTED;
		case STATE_FASTPATH:
			return PST_FASTPATH;
		default:
			return PST_IDLE;
	}
}

/*
 * Executor: what pool_sessions shows of s.  With state PST_ACTIVE .. (a
 * served session's own), the times and the query come from the executor's
 * backend entry, which pgstat_report_activity() just wrote for s; with
 * PST_WAITING or PST_STARTING only the state changes.
 */
void
bp_stab_report(PoolSession *s, PoolSessionTabState state)
{
	PoolSessionSlot *e;
	volatile PgBackendStatus *be = MyBEEntry;
	bool		served = state != PST_WAITING && state != PST_STARTING;
	TimestampTz now;

	if (s->stab_slot < 0)
		return;
	/* a served state changed when the backend entry's did: no clock read */
	now = served && be != NULL && be->st_state_start_timestamp != 0 ?
		be->st_state_start_timestamp : GetCurrentTimestamp();
	e = &stab->slots[s->stab_slot];
	if (served)
	{
		state = backend_state();
		/* a cancel left for the queued request is spent once it is served */
		if (state != PST_ACTIVE && state != PST_FASTPATH &&
			(pg_atomic_read_u32(&e->requests) & BP_STAB_CANCEL) != 0)
			pg_atomic_fetch_and_u32(&e->requests, ~BP_STAB_CANCEL);
	}
	STAB_BEGIN_WRITE(e);
	set_state(e, state, now);
	e->request_queued = state == PST_WAITING;
	if (served && be != NULL)
	{
		e->xact_start = be->st_xact_start_timestamp;
		e->query_start = be->st_activity_start_timestamp;
		e->state_change = be->st_state_start_timestamp;
		strlcpy(slot_query(s->stab_slot), (const char *) be->st_activity_raw,
				stab->query_len);
		e->userid = GetUserId();
		strlcpy(e->appname, application_name ? application_name : "",
				NAMEDATALEN);
	}
	e->exec_pid = MyProcPid;
	e->pinned = s->pinned;
	strlcpy(e->pin_reason, s->pinned && s->pin_reason ? s->pin_reason : "",
			sizeof(e->pin_reason));
	e->statements = list_length(s->statements);
	e->bytes_in = s->bytes_in;
	e->bytes_out = s->bytes_out;
	STAB_END_WRITE(e);
}

void
bp_stab_report_activity(int state, const char *query)
{
	pgstat_report_activity((BackendState) state, query);
	if (bp_current != NULL)
		bp_stab_report(bp_current, PST_ACTIVE);
}

void
bp_stab_moving(PoolSession *s)
{
	PoolSessionSlot *e;

	if (s->stab_slot < 0)
		return;
	e = &stab->slots[s->stab_slot];
	STAB_BEGIN_WRITE(e);
	set_state(e, PST_WAITING, GetCurrentTimestamp());
	e->exec_slot = -1;
	e->exec_pid = 0;
	e->pinned = false;
	e->pin_reason[0] = '\0';
	e->bytes_in = s->bytes_in;
	e->bytes_out = s->bytes_out;
	STAB_END_WRITE(e);
}

void
bp_stab_append_tls(PoolSession *s, StringInfo buf)
{
	PoolSessionSlot *e;
	const char *space;

	if (s->stab_slot < 0)
		return;
	/* written by the listener before the handoff, read by the holder */
	e = &stab->slots[s->stab_slot];
	space = strchr(e->tls, ' ');
	if (space != NULL)
		appendStringInfo(buf, " SSL enabled (protocol=%.*s, cipher=%s, bits=%d)",
						 (int) (space - e->tls), e->tls, space + 1, e->tls_bits);
}

bool
bp_stab_terminating(PoolSession *s)
{
	return s->stab_slot >= 0 &&
		(pg_atomic_read_u32(&stab->slots[s->stab_slot].requests) &
		 BP_STAB_TERMINATE) != 0;
}

bool
bp_stab_take_cancel(PoolSession *s)
{
	pg_atomic_uint32 *req;

	if (s->stab_slot < 0)
		return false;
	req = &stab->slots[s->stab_slot].requests;
	return (pg_atomic_read_u32(req) & BP_STAB_CANCEL) != 0 &&
		(pg_atomic_fetch_and_u32(req, ~BP_STAB_CANCEL) & BP_STAB_CANCEL) != 0;
}

/* ---------------------------------------------------------------------
 * Readers
 * ---------------------------------------------------------------------
 */

/*
 * Copies slot i and its query into *out and query (query_len bytes);
 * false if the slot is free or kept changing.
 */
static bool
read_slot(int i, PoolSessionSlot *out, char *query)
{
	volatile PoolSessionSlot *e = &stab->slots[i];
	int			tries;

	for (tries = 0; tries < BP_STAB_READ_TRIES; tries++)
	{
		int			before,
					after;

		if (pg_atomic_read_u32((pg_atomic_uint32 *) &e->in_use) == 0)
			return false;
		before = e->changecount;
		pg_read_barrier();
		memcpy(out, (const void *) e, sizeof(PoolSessionSlot));
		if (query)
			strlcpy(query, slot_query(i), stab->query_len);
		pg_read_barrier();
		after = e->changecount;
		if (before == after && (before & 1) == 0)
			return out->session_id != 0;
		CHECK_FOR_INTERRUPTS();
	}
	return false;
}

/*
 * The slot of the session with session_id, or, with session_id 0, of the
 * one with cancel key key; copied into *out.  -1 if none.
 */
static int
find_session(int64 session_id, uint32 key, PoolSessionSlot *out)
{
	int			i;

	if (session_id < 0 || (session_id == 0 && key == 0))
		return -1;
	for (i = 0; i < stab->n_slots; i++)
	{
		volatile PoolSessionSlot *e = &stab->slots[i];

		if (pg_atomic_read_u32(&e->in_use) == 0 ||
			(session_id > 0 ? e->session_id != (uint64) session_id :
			 e->cancel_key != key) ||
			!read_slot(i, out, NULL))
			continue;
		if (session_id > 0 ? out->session_id == (uint64) session_id :
			out->cancel_key == key)
			return i;
	}
	return -1;
}

static const char *
state_name(PoolSessionTabState state)
{
	switch (state)
	{
		case PST_STARTING:
			return "starting";
		case PST_WAITING:
			return "waiting for executor";
		case PST_PARKED:
			return "parked";
		case PST_IDLE:
			return "idle";
		case PST_ACTIVE:
			return "active";
		case PST_IDLE_IN_XACT:
			return "idle in transaction";
		case PST_IDLE_IN_XACT_ABORTED:
			return "idle in transaction (aborted)";
		case PST_FASTPATH:
			return "fastpath function call";
	}
	return "unknown";
}

/* client_addr and client_port as pg_stat_activity shows them */
static void
client_values(const SockAddr *raddr, Datum *values, bool *nulls)
{
	char		host[NI_MAXHOST];
	char		port[NI_MAXSERV];

	nulls[0] = nulls[1] = true;
	if (raddr->salen == 0)
		return;
	if (raddr->addr.ss_family == AF_UNIX)
	{
		values[1] = Int32GetDatum(-1);
		nulls[1] = false;
		return;
	}
	if (raddr->addr.ss_family != AF_INET && raddr->addr.ss_family != AF_INET6)
		return;
	if (pg_getnameinfo_all(&raddr->addr, raddr->salen, host, sizeof(host),
						   port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	clean_ipv6_addr(raddr->addr.ss_family, host);
	values[0] = DirectFunctionCall1(inet_in, CStringGetDatum(host));
	values[1] = Int32GetDatum(atoi(port));
	nulls[0] = nulls[1] = false;
}

static inline Datum
ts_or_null(TimestampTz ts, bool *isnull)
{
	*isnull = ts == 0;
	return TimestampTzGetDatum(ts);
}

#define POOL_SESSIONS_COLS	24
#define COL_APPNAME			7
#define COL_QUERY			17
#define COL_EXEC_PID		18

/* One row of pool_sessions(); visible: the caller may see its details */
static void
build_row(const PoolSessionSlot *e, const char *query, bool visible,
		  TimestampTz now, Datum *values, bool *nulls)
{
	char	   *space;
	char	   *user;
	int			i;

	memset(nulls, 0, POOL_SESSIONS_COLS * sizeof(bool));
	values[0] = Int64GetDatum((int64) e->session_id);
	values[1] = Int32GetDatum(bp_port_for_index(e->port_index));
	values[2] = CStringGetTextDatum(e->dbname);
	values[3] = CStringGetTextDatum(e->rolname);
	values[COL_APPNAME] = CStringGetTextDatum(e->appname);
	values[COL_EXEC_PID] = Int32GetDatum((int32) e->exec_pid);
	nulls[COL_EXEC_PID] = e->exec_pid == 0;
	if (!visible)
	{
		for (i = 4; i < POOL_SESSIONS_COLS; i++)
			if (i != COL_APPNAME && i != COL_EXEC_PID)
				nulls[i] = true;
		values[COL_QUERY] = CStringGetTextDatum("<insufficient privilege>");
		nulls[COL_QUERY] = false;
		return;
	}
	user = GetUserNameFromId(e->userid, true);
	values[4] = user ? CStringGetTextDatum(user) : (Datum) 0;
	nulls[4] = user == NULL;
	client_values(&e->raddr, &values[5], &nulls[5]);
	space = strchr(e->tls, ' ');
	nulls[8] = nulls[9] = space == NULL;
	if (space)
	{
		values[8] = PointerGetDatum(cstring_to_text_with_len(e->tls, space - e->tls));
		values[9] = CStringGetTextDatum(space + 1);
	}
	values[10] = ts_or_null(e->started, &nulls[10]);
	values[11] = CStringGetTextDatum(state_name(e->state));
	values[12] = ts_or_null(e->xact_start, &nulls[12]);
	values[13] = ts_or_null(e->query_start, &nulls[13]);
	values[14] = ts_or_null(e->state_change, &nulls[14]);
	values[15] = ts_or_null(e->wait_start, &nulls[15]);
	nulls[16] = e->wait_start == 0;
	if (e->wait_start != 0)
		values[16] = DirectFunctionCall2(timestamp_mi,
										 TimestampTzGetDatum(Max(now, e->wait_start)),
										 TimestampTzGetDatum(e->wait_start));
	/* cut where a character ends, as pg_stat_activity's query is */
	values[COL_QUERY] = CStringGetTextDatum(pgstat_clip_activity(query));
	values[19] = BoolGetDatum(e->pinned);
	values[20] = CStringGetTextDatum(e->pin_reason);
	nulls[20] = !e->pinned || e->pin_reason[0] == '\0';
	values[21] = Int32GetDatum(e->statements);
	values[22] = Int64GetDatum((int64) e->bytes_in);
	values[23] = Int64GetDatum((int64) e->bytes_out);
}

PG_FUNCTION_INFO_V1(pool_sessions);

/*
 * pool_sessions(): one row per live pool session.  Others' sessions show
 * their identity only, as pg_stat_activity shows other roles' backends.
 */
Datum
pool_sessions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PoolSessionSlot e;
	char	   *query = palloc(stab->query_len);
	Datum		values[POOL_SESSIONS_COLS];
	bool		nulls[POOL_SESSIONS_COLS];
	TimestampTz now = GetCurrentTimestamp();
	bool		read_all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < stab->n_slots; i++)
	{
		if (pg_atomic_read_u32(&stab->slots[i].in_use) == 0 ||
			!read_slot(i, &e, query))
			continue;
		build_row(&e, query, read_all || has_privs_of_role(GetUserId(), e.roleid),
				  now, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(query);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * pool_cancel_session(), pool_terminate_session()
 * ---------------------------------------------------------------------
 */

/*
 * The session of id, if the caller may signal it, with core's checks and
 * messages (pg_signal_backend); -1 after a WARNING if there is no such
 * session.
 */
static int
signal_target(int64 session_id, PoolSessionSlot *e, bool terminate)
{
	int			slot = find_session(session_id, 0, e);

	if (slot < 0)
	{
		ereport(WARNING,
				(errmsg("session " INT64_FORMAT " is not a pool session",
						session_id)));
		return -1;
	}
	if (superuser_arg(e->roleid) && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 terminate ?
				 errmsg("must be a superuser to terminate superuser process") :
				 errmsg("must be a superuser to cancel superuser query")));
	if (!has_privs_of_role(GetUserId(), e->roleid) &&
		!has_privs_of_role(GetUserId(), ROLE_PG_SIGNAL_BACKEND))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 terminate ?
				 errmsg("must be a member of the role whose process is being terminated or member of pg_signal_backend") :
				 errmsg("must be a member of the role whose query is being canceled or member of pg_signal_backend")));
	return slot;
}

/*
 * A request e's session has queued (waiting for an executor, parked) fails
 * once it starts, as a cancel would fail it running: its own backend would
 * be running it.
 */
static void
cancel_if_queued(int slot, const PoolSessionSlot *e)
{
	if (e->request_queued &&
		(e->state == PST_WAITING || e->state == PST_PARKED))
		pg_atomic_fetch_or_u32(&stab->slots[slot].requests, BP_STAB_CANCEL);
}

/* See session_table.h */
void
bp_stab_cancel_queued(uint32 key)
{
	PoolSessionSlot e;
	int			slot = find_session(0, key, &e);

	if (slot >= 0)
		cancel_if_queued(slot, &e);
}

PG_FUNCTION_INFO_V1(pool_cancel_session);

/*
 * Cancels the session's running statement, as a CancelRequest with its key
 * would, or the request it has queued (waiting for an executor, moving,
 * parked): that one fails with the same error once it starts.  A session
 * idle has nothing to cancel, as core ignores a cancel while a backend
 * reads a command.  The request bit is spent at the session's next
 * ReadyForQuery whatever happens, so it never reaches a later statement.
 */
Datum
pool_cancel_session(PG_FUNCTION_ARGS)
{
	PoolSessionSlot e;
	int			slot = signal_target(PG_GETARG_INT64(0), &e, false);

	if (slot < 0)
		PG_RETURN_BOOL(false);
	cancel_if_queued(slot, &e);
	/* it may be running it already: the executor cancels only if so */
	if (e.exec_pid != 0 && e.cancel_key != 0 &&
		(e.state == PST_ACTIVE || e.state == PST_FASTPATH ||
		 e.state == PST_WAITING) &&
		!bp_cancel_forward(e.exec_slot, e.exec_gen, e.cancel_key))
		ereport(WARNING,
				(errmsg("could not send signal to process %d: %m",
						(int) e.exec_pid)));
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(pool_terminate_session);

/*
 * Ends the session with core's FATAL (57P01), wherever it is: its holder
 * finds the request bit when woken (an executor by SIGUSR2, which also
 * cancels its running statement; the listener by its latch).
 */
Datum
pool_terminate_session(PG_FUNCTION_ARGS)
{
	PoolSessionSlot e;
	int			slot = signal_target(PG_GETARG_INT64(0), &e, true);

	if (slot < 0)
		PG_RETURN_BOOL(false);
	pg_atomic_fetch_or_u32(&stab->slots[slot].requests, BP_STAB_TERMINATE);
	if (e.exec_pid != 0 &&
		!bp_cancel_forward(e.exec_slot, e.exec_gen, e.cancel_key) &&
		kill(e.exec_pid, SIGUSR2) < 0)
		ereport(WARNING,
				(errmsg("could not send signal to process %d: %m",
						(int) e.exec_pid)));
	/* it may be moving, or waiting in the listener */
	if (stab->listener_latch)
		SetLatch(stab->listener_latch);
	PG_RETURN_BOOL(true);
}
