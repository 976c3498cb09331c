/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  The DBA's levers on the pool, in SQL: pool_pause() and pool_resume(),
 *	  pool_reconnect(), pool_reload(), and the counters behind
 *	  pool_pool_stats() (hence pool_pools) and the refusal columns of
 *	  pool_listener_stats().
 *
 * Pause.  A pause is an entry (database OID, role OID; InvalidOid for
 * "any") in a small shared list.  An executor of a covered pool stops at
 * its next transaction boundary (executor.c calls bp_admin_hold_wanted()
 * there: one atomic read while nothing is paused) and holds: its sessions
 * stay connected, new logins are taken and wait, no request is served.  It
 * publishes that it holds in its slot here; pool_pause() returns once
 * every executor of the covered pools holds.  The executor clears its flag
 * and then looks at the list again, and pool_pause() adds its entry and
 * then reads the flags, each with a full barrier between: either the
 * pause sees the executor not holding, or the executor sees the pause, so
 * a pause that returned is never followed by a transaction it covers.
 *
 * Recycling.  pool_reconnect() marks the covered executors in their slots
 * (by generation, so a slot reused meanwhile is not hit); each then
 * retires as a worn-out executor does (executor.c): its sessions move to
 * fresh executors between their transactions, none is ended.
 *
 * Counters.  Per (port, database OID, role OID), in a table that keeps an
 * entry until the server stops, so that the counters only grow (a pool
 * without executors keeps its row).  Executors add to their pool's entry
 * through a pointer found once at start; the listener finds the entry on
 * the rare events it counts (an executor started or lost).
 *
 * Note about locking: the pause list is protected by the spinlock
 * pause_mutex (a handful of comparisons under it); n_pauses mirrors its
 * length for the lock-free fast path.  The metrics table is protected by
 * admin_lock: exclusive to add an entry, shared to read the table; the
 * counters are atomics updated without it.  When bp_shared->lock is also
 * needed, it is taken and released first, never held with admin_lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
#include "utils/timestamp.h"

#include "admin.h"
#include "builtin_pool.h"
#include "pool_shmem.h"

PG_FUNCTION_INFO_V1(pool_pause);
PG_FUNCTION_INFO_V1(pool_resume);
PG_FUNCTION_INFO_V1(pool_reconnect);
PG_FUNCTION_INFO_V1(pool_reload);
PG_FUNCTION_INFO_V1(pool_pool_stats);

#define BP_ADMIN_TRANCHE	"builtin_pool admin"
#define BP_MAX_PAUSES		64

/* metrics entries per worker slot: pools come and go, their rows stay */
#define BP_METRICS_PER_SLOT	4

/* how often pool_pause() looks at the executors, and wakes them again */
#define BP_PAUSE_POLL_MS	10
#define BP_PAUSE_WAKE_MS	1000

typedef struct PoolPause
{
	Oid			dboid;			/* InvalidOid: every database */
	Oid			roleid;			/* InvalidOid: every role */
} PoolPause;

typedef struct PoolAdminSlot
{
	pg_atomic_uint32 holding;	/* 1 while the executor holds for a pause */
	pg_atomic_uint32 recycle_gen;	/* generation pool_reconnect() retires */
} PoolAdminSlot;

typedef struct PoolMetrics
{
	bool		in_use;
	int			port_index;
	Oid			dboid;
	Oid			roleid;
	char		dbname[NAMEDATALEN];
	char		rolname[NAMEDATALEN];
	pg_atomic_uint64 waits;		/* requests that waited >= 1 ms */
	pg_atomic_uint64 wait_us;	/* total time requests waited */
	pg_atomic_uint64 pins;		/* sessions that pinned their executor */
	pg_atomic_uint64 moves;		/* sessions given back for another executor */
	pg_atomic_uint64 started;	/* executors started */
	pg_atomic_uint64 reserve_started;	/* of which reserve executors */
	pg_atomic_uint64 lost;		/* executors that ended without retiring */
} PoolMetrics;

typedef struct PoolAdminShared
{
	LWLock	   *admin_lock;		/* the metrics table */
	slock_t		pause_mutex;	/* the pause list */
	int			n_pause_entries;
	PoolPause	pauses[BP_MAX_PAUSES];
	pg_atomic_uint32 n_pauses;	/* == n_pause_entries, read without lock */
	pg_atomic_uint64 refusals[PR_NCAUSES];
	int			max_slots;
	int			max_metrics;
	PoolAdminSlot *slots;		/* max_slots: one per executor slot */
	PoolMetrics *metrics;		/* max_metrics */
} PoolAdminShared;

static PoolAdminShared *admin = NULL;

/* in an executor: its slot, generation, pool's OIDs and metrics entry */
static PoolAdminSlot *my_admin_slot = NULL;
static uint32 my_admin_generation = 0;
static Oid	my_dboid = InvalidOid;
static Oid	my_roleid = InvalidOid;
static PoolMetrics *my_metrics = NULL;

/*
 * Waits are counted here and added to the pool's shared entry every
 * BP_WAIT_FLUSH turns, when the executor goes idle and at its exit: the
 * entry is shared by all executors of the pool, and one shared add per
 * turn would bounce its cache line between them under load.
 */
#define BP_WAIT_FLUSH		64
static uint64 pending_waits = 0;
static uint64 pending_wait_us = 0;
static int	pending_turns = 0;

/* ---------------------------------------------------------------------
 * Shared memory
 * ---------------------------------------------------------------------
 */

static Size
admin_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PoolAdminShared));

	size = add_size(size, mul_size(max_worker_processes, sizeof(PoolAdminSlot)));
	size = add_size(size, mul_size(mul_size(max_worker_processes, BP_METRICS_PER_SLOT),
								   sizeof(PoolMetrics)));
	return size;
}

/* From the shmem_request_hook (builtin_pool.c) */
void
bp_admin_shmem_request(void)
{
	RequestAddinShmemSpace(admin_shmem_size());
	RequestNamedLWLockTranche(BP_ADMIN_TRANCHE, 1);
}

/* From the shmem_startup_hook: creates the state, or attaches to it */
void
bp_admin_shmem_startup(void)
{
	bool		found;
	char	   *base;
	int			i;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	admin = ShmemInitStruct("builtin_pool admin", admin_shmem_size(), &found);
	base = (char *) admin + MAXALIGN(sizeof(PoolAdminShared));
	if (!found)
	{
		memset(admin, 0, admin_shmem_size());
		admin->admin_lock = &(GetNamedLWLockTranche(BP_ADMIN_TRANCHE))[0].lock;
		SpinLockInit(&admin->pause_mutex);
		pg_atomic_init_u32(&admin->n_pauses, 0);
		for (i = 0; i < PR_NCAUSES; i++)
			pg_atomic_init_u64(&admin->refusals[i], 0);
		admin->max_slots = max_worker_processes;
		admin->max_metrics = max_worker_processes * BP_METRICS_PER_SLOT;
		for (i = 0; i < admin->max_slots; i++)
		{
			PoolAdminSlot *s = (PoolAdminSlot *) base + i;

			pg_atomic_init_u32(&s->holding, 0);
			pg_atomic_init_u32(&s->recycle_gen, 0);
		}
		for (i = 0; i < admin->max_metrics; i++)
		{
			PoolMetrics *m = (PoolMetrics *)
				(base + admin->max_slots * sizeof(PoolAdminSlot)) + i;

			pg_atomic_init_u64(&m->waits, 0);
			pg_atomic_init_u64(&m->wait_us, 0);
			pg_atomic_init_u64(&m->pins, 0);
			pg_atomic_init_u64(&m->moves, 0);
			pg_atomic_init_u64(&m->started, 0);
			pg_atomic_init_u64(&m->reserve_started, 0);
			pg_atomic_init_u64(&m->lost, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);

	admin->slots = (PoolAdminSlot *) base;
	admin->metrics = (PoolMetrics *) (base + admin->max_slots * sizeof(PoolAdminSlot));
}

static void
admin_shmem_check(void)
{
	if (admin == NULL || bp_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("builtin_pool must be loaded via shared_preload_libraries")));
}

/* ---------------------------------------------------------------------
 * Metrics
 * ---------------------------------------------------------------------
 */

/*
 * The metrics entry of a pool, created if missing; NULL when the table is
 * full (the pool then goes uncounted: rows are never reused, so that no
 * counter ever goes back).  Takes admin_lock; the caller holds no lock.
 */
static PoolMetrics *
metrics_entry(int port_index, Oid dboid, Oid roleid, const char *dbname,
			  const char *rolname)
{
	PoolMetrics *found = NULL;
	int			i;

	LWLockAcquire(admin->admin_lock, LW_EXCLUSIVE);
	for (i = 0; i < admin->max_metrics; i++)
	{
		PoolMetrics *m = &admin->metrics[i];

		if (!m->in_use)
		{
			m->in_use = true;
			m->port_index = port_index;
			m->dboid = dboid;
			m->roleid = roleid;
			found = m;
			break;
		}
		if (m->port_index == port_index && m->dboid == dboid &&
			m->roleid == roleid)
		{
			found = m;
			break;
		}
	}
	/* names as the pool has them now: a rename shows under the new name */
	if (found)
	{
		strlcpy(found->dbname, dbname, NAMEDATALEN);
		strlcpy(found->rolname, rolname, NAMEDATALEN);
	}
	LWLockRelease(admin->admin_lock);
	return found;
}

/* The metrics entry of pool pool_id; takes bp_shared->lock, then admin_lock */
static PoolMetrics *
metrics_of_pool(int pool_id)
{
	PoolDesc	p;

	if (pool_id < 0 || pool_id >= bp_shared->max_pools)
		return NULL;
	LWLockAcquire(bp_shared->lock, LW_SHARED);
	p = bp_shared->pools[pool_id];
	LWLockRelease(bp_shared->lock);
	if (!p.in_use)
		return NULL;
	return metrics_entry(p.port_index, p.dboid, p.roleid, p.dbname, p.rolname);
}

/* before_shmem_exit: the last waits counted reach the pool's entry */
static void
flush_at_exit(int code, Datum arg)
{
	bp_admin_flush();
}

/*
 * An executor is connected: remembers its slot and pool, and clears what
 * a previous executor of the slot may have left.
 */
void
bp_admin_executor_attach(int slot, uint32 generation, int pool_id)
{
	if (admin == NULL || slot < 0 || slot >= admin->max_slots)
		return;
	my_admin_slot = &admin->slots[slot];
	my_admin_generation = generation;
	pg_atomic_write_u32(&my_admin_slot->holding, 0);
	my_dboid = MyDatabaseId;
	my_roleid = GetAuthenticatedUserId();
	my_metrics = metrics_of_pool(pool_id);
	before_shmem_exit(flush_at_exit, (Datum) 0);
}

/* Adds the waits counted since the last flush to the pool's entry */
void
bp_admin_flush(void)
{
	if (my_metrics != NULL && pending_turns > 0)
	{
		if (pending_wait_us > 0)
			pg_atomic_fetch_add_u64(&my_metrics->wait_us, pending_wait_us);
		if (pending_waits > 0)
			pg_atomic_fetch_add_u64(&my_metrics->waits, pending_waits);
	}
	pending_waits = pending_wait_us = 0;
	pending_turns = 0;
}

/* A queued request is served at now after waiting since queued_at */
void
bp_admin_count_wait(TimestampTz queued_at, TimestampTz now)
{
	int64		us = now - queued_at;

	if (us > 0)
	{
		pending_wait_us += (uint64) us;
		if (us >= 1000)
			pending_waits++;
	}
	if (++pending_turns >= BP_WAIT_FLUSH)
		bp_admin_flush();
}

void
bp_admin_count_pin(void)
{
	if (my_metrics != NULL)
		pg_atomic_fetch_add_u64(&my_metrics->pins, 1);
}

void
bp_admin_count_move(void)
{
	if (my_metrics != NULL)
		pg_atomic_fetch_add_u64(&my_metrics->moves, 1);
}

/* The listener started an executor for pool_id; caller holds no lock */
void
bp_admin_count_exec_started(int pool_id, bool reserve)
{
	PoolMetrics *m = metrics_of_pool(pool_id);

	if (m == NULL)
		return;
	pg_atomic_fetch_add_u64(&m->started, 1);
	if (reserve)
		pg_atomic_fetch_add_u64(&m->reserve_started, 1);
}

/*
 * The listener lost the executor of slot (its channel closed, or it never
 * started): counted unless it had asked to retire.  Called before the slot
 * is released; caller holds no lock.
 */
void
bp_admin_count_exec_lost(int slot, bool failed_start)
{
	int			pool_id;
	bool		retiring;
	PoolMetrics *m;

	if (admin == NULL || slot < 0 || slot >= bp_shared->max_executors)
		return;
	LWLockAcquire(bp_shared->lock, LW_SHARED);
	pool_id = bp_shared->executors[slot].pool_id;
	retiring = bp_shared->executors[slot].state == PE_EXITING;
	LWLockRelease(bp_shared->lock);
	if (retiring && !failed_start)
		return;
	m = metrics_of_pool(pool_id);
	if (m != NULL)
		pg_atomic_fetch_add_u64(&m->lost, 1);
}

void
bp_admin_count_refusal_cause(PoolRefusal cause)
{
	if (admin != NULL && cause >= 0 && cause < PR_NCAUSES)
		pg_atomic_fetch_add_u64(&admin->refusals[cause], 1);
}

/* A login refused with sqlstate (a MAKE_SQLSTATE code) */
void
bp_admin_count_refusal(int sqlstate)
{
	PoolRefusal cause;

	if (ERRCODE_TO_CATEGORY(sqlstate) == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
		cause = PR_AUTH;
	else if (sqlstate == ERRCODE_TOO_MANY_CONNECTIONS)
		cause = PR_LIMIT;
	else if (sqlstate == ERRCODE_CANNOT_CONNECT_NOW ||
			 sqlstate == ERRCODE_ADMIN_SHUTDOWN)
		cause = PR_UNAVAILABLE;
	else if (sqlstate == ERRCODE_QUERY_CANCELED)
		cause = PR_TIMEOUT;
	else if (ERRCODE_TO_CATEGORY(sqlstate) == ERRCODE_CONNECTION_EXCEPTION ||
			 sqlstate == ERRCODE_FEATURE_NOT_SUPPORTED)
		cause = PR_PROTOCOL;
	else
		cause = PR_OTHER;
	bp_admin_count_refusal_cause(cause);
}

/* Copies the refusal counters into counts[PR_NCAUSES] */
void
bp_admin_refusals(uint64 *counts)
{
	int			i;

	for (i = 0; i < PR_NCAUSES; i++)
		counts[i] = admin ? pg_atomic_read_u64(&admin->refusals[i]) : 0;
}

/* ---------------------------------------------------------------------
 * Pause, as the executors see it
 * ---------------------------------------------------------------------
 */

static inline bool
pause_covers(Oid pat_db, Oid pat_role, Oid dboid, Oid roleid)
{
	return (!OidIsValid(pat_db) || pat_db == dboid) &&
		(!OidIsValid(pat_role) || pat_role == roleid);
}

/* Is (dboid, roleid) paused?  Takes pause_mutex */
static bool
pool_is_paused(Oid dboid, Oid roleid)
{
	bool		paused = false;
	int			i;

	SpinLockAcquire(&admin->pause_mutex);
	for (i = 0; i < admin->n_pause_entries && !paused; i++)
		paused = pause_covers(admin->pauses[i].dboid, admin->pauses[i].roleid,
							  dboid, roleid);
	SpinLockRelease(&admin->pause_mutex);
	return paused;
}

bool
bp_admin_hold_wanted(void)
{
	if (likely(my_admin_slot == NULL ||
			   pg_atomic_read_u32(&admin->n_pauses) == 0))
		return false;
	return pool_is_paused(my_dboid, my_roleid);
}

void
bp_admin_hold_begin(void)
{
	pg_atomic_write_u32(&my_admin_slot->holding, 1);
	pg_memory_barrier();
}

/* See the header comment for why the flag is cleared before the look */
bool
bp_admin_hold_continue(void)
{
	if (bp_admin_hold_wanted())
		return true;
	pg_atomic_write_u32(&my_admin_slot->holding, 0);
	pg_memory_barrier();
	if (!bp_admin_hold_wanted())
		return false;
	bp_admin_hold_begin();
	return true;
}

/* Also called by error recovery, which may have left a hold by longjmp */
void
bp_admin_hold_end(void)
{
	if (my_admin_slot != NULL)
		pg_atomic_write_u32(&my_admin_slot->holding, 0);
}

bool
bp_admin_recycle_wanted(void)
{
	return my_admin_slot != NULL &&
		pg_atomic_read_u32(&my_admin_slot->recycle_gen) == my_admin_generation;
}

bool
bp_admin_slot_holding(int slot)
{
	return admin != NULL && slot >= 0 && slot < admin->max_slots &&
		pg_atomic_read_u32(&admin->slots[slot].holding) != 0;
}

bool
bp_admin_recycling(int slot, uint32 generation)
{
	return admin != NULL && slot >= 0 && slot < admin->max_slots &&
		pg_atomic_read_u32(&admin->slots[slot].recycle_gen) == generation;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* Arguments (database name, role name), NULL meaning any; core's errors */
static void
target_args(FunctionCallInfo fcinfo, Oid *dboid, Oid *roleid)
{
	*dboid = PG_ARGISNULL(0) ? InvalidOid :
		get_database_oid(NameStr(*PG_GETARG_NAME(0)), false);
	*roleid = PG_ARGISNULL(1) ? InvalidOid :
		get_role_oid(NameStr(*PG_GETARG_NAME(1)), false);
}

static const char *
target_text(Oid dboid, Oid roleid)
{
	char	   *db = OidIsValid(dboid) ? get_database_name(dboid) : NULL;
	char	   *role = OidIsValid(roleid) ? GetUserNameFromId(roleid, true) : NULL;

	return psprintf("database %s, user %s",
					db ? quote_identifier(db) : "(all)",
					role ? quote_identifier(role) : "(all)");
}

/* Sets the latch of each pid (SIGUSR1: procsignal_sigusr1_handler) */
static void
wake_pids(pid_t *pids, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		(void) kill(pids[i], SIGUSR1);
}

/*
 * The live executors of the pools (dboid, roleid) covers, in pids (room
 * for max_executors); with only_busy, those not holding for a pause.
 * With mark, each is asked to retire (pool_reconnect).  Returns how many.
 */
static int
covered_executors(Oid dboid, Oid roleid, bool only_busy, bool mark,
				  pid_t *pids, int *n_pids)
{
	int			n = 0;
	int			i;

	*n_pids = 0;
	LWLockAcquire(bp_shared->lock, LW_SHARED);
	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];
		PoolDesc   *pool;

		if ((ex->state != PE_STARTING && ex->state != PE_READY) ||
			ex->pool_id < 0)
			continue;
		pool = &bp_shared->pools[ex->pool_id];
		if (!pause_covers(dboid, roleid, pool->dboid, pool->roleid))
			continue;
		if (only_busy && pg_atomic_read_u32(&admin->slots[i].holding) != 0)
			continue;
		if (mark)
			pg_atomic_write_u32(&admin->slots[i].recycle_gen, ex->generation);
		n++;
		if (ex->pid > 0)
			pids[(*n_pids)++] = ex->pid;
	}
	LWLockRelease(bp_shared->lock);
	return n;
}

/*
 * Adds the pause (dboid, roleid); returns false if the same one exists
 * already (it is then not ours to lift on failure).
 */
static bool
pause_add(Oid dboid, Oid roleid)
{
	bool		added = false;
	bool		full = false;
	int			i;

	SpinLockAcquire(&admin->pause_mutex);
	for (i = 0; i < admin->n_pause_entries; i++)
		if (admin->pauses[i].dboid == dboid && admin->pauses[i].roleid == roleid)
			break;
	if (i == admin->n_pause_entries)
	{
		if (i >= BP_MAX_PAUSES)
			full = true;
		else
		{
			admin->pauses[i].dboid = dboid;
			admin->pauses[i].roleid = roleid;
			admin->n_pause_entries++;
			added = true;
		}
	}
	SpinLockRelease(&admin->pause_mutex);
	if (full)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many pool pauses"),
				 errdetail("At most %d pauses can be in effect at once.", BP_MAX_PAUSES),
				 errhint("Resume some pools, or pause with broader arguments (NULL for all).")));
	/* a full barrier: executors see the entry before we read their flags */
	if (added)
		pg_atomic_fetch_add_u32(&admin->n_pauses, 1);
	return added;
}

/* Lifts the pauses (dboid, roleid) covers; returns how many */
static int
pause_remove(Oid dboid, Oid roleid)
{
	int			removed = 0;
	int			i = 0;

	SpinLockAcquire(&admin->pause_mutex);
	while (i < admin->n_pause_entries)
	{
		PoolPause  *p = &admin->pauses[i];

		if (pause_covers(dboid, roleid, p->dboid, p->roleid))
		{
			*p = admin->pauses[--admin->n_pause_entries];
			removed++;
		}
		else
			i++;
	}
	SpinLockRelease(&admin->pause_mutex);
	if (removed > 0)
		pg_atomic_fetch_sub_u32(&admin->n_pauses, removed);
	return removed;
}

/* Lifts exactly the pause (dboid, roleid), and wakes its executors */
static void
pause_lift_exact(Oid dboid, Oid roleid)
{
	pid_t	   *pids = palloc(sizeof(pid_t) * bp_shared->max_executors);
	int			n_pids;
	int			i;

	SpinLockAcquire(&admin->pause_mutex);
	for (i = 0; i < admin->n_pause_entries; i++)
	{
		if (admin->pauses[i].dboid == dboid && admin->pauses[i].roleid == roleid)
		{
			admin->pauses[i] = admin->pauses[--admin->n_pause_entries];
			pg_atomic_fetch_sub_u32(&admin->n_pauses, 1);
			break;
		}
	}
	SpinLockRelease(&admin->pause_mutex);
	(void) covered_executors(dboid, roleid, false, false, pids, &n_pids);
	wake_pids(pids, n_pids);
	pfree(pids);
}

/*
 * A session served by an executor of a pool it pauses would wait for its
 * own transaction, then hold itself: refused.
 */
static void
refuse_own_pool(Oid dboid, Oid roleid)
{
	if (bp_my_slot == NULL ||
		!pause_covers(dboid, roleid, MyDatabaseId, GetAuthenticatedUserId()))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot pause the pool serving this session"),
			 errhint("Call pool_pause() through the server's main port, or from a session of another pool.")));
}

/*
 * Waits until every executor of the covered pools holds; false if
 * timeout_ms (>= 0) passed first.  Interruptible (cancel,
 * statement_timeout): the caller lifts the pause on error.
 */
static bool
pause_wait(Oid dboid, Oid roleid, int64 timeout_ms, int *busy)
{
	pid_t	   *pids = palloc(sizeof(pid_t) * bp_shared->max_executors);
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz last_wake = 0;

	for (;;)
	{
		int			n_pids;
		TimestampTz now;
		long		wait_ms = BP_PAUSE_POLL_MS;

		*busy = covered_executors(dboid, roleid, true, false, pids, &n_pids);
		if (*busy == 0)
			break;
		now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(last_wake, now, BP_PAUSE_WAKE_MS))
		{
			/* an executor idle between a pinned session's transactions
			 * sleeps until its latch is set */
			wake_pids(pids, n_pids);
			last_wake = now;
		}
		if (timeout_ms >= 0)
		{
			int64		left = timeout_ms - TimestampDifferenceMilliseconds(start, now);

			if (left <= 0)
			{
				pfree(pids);
				return false;
			}
			wait_ms = Min(wait_ms, left);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(pids);
	return true;
}

/*
 * pool_pause(database name, role name, timeout_ms bigint): holds every new
 * transaction of the pools covered (NULL: any), once their running
 * transactions ended; returns when they have.  Past timeout_ms (NULL: no
 * limit), or when cancelled, the pause it added is lifted and an error
 * raised.  Unknown names: core's errors (3D000, 42704).
 */
Datum
pool_pause(PG_FUNCTION_ARGS)
{
	Oid			dboid;
	Oid			roleid;
	int64		timeout_ms = -1;
	bool		added;
	bool		done = false;
	int			busy = 0;

	admin_shmem_check();
	target_args(fcinfo, &dboid, &roleid);
	if (!PG_ARGISNULL(2))
	{
		timeout_ms = PG_GETARG_INT64(2);
		if (timeout_ms < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"timeout\" must not be negative")));
	}
	refuse_own_pool(dboid, roleid);

	added = pause_add(dboid, roleid);
	PG_TRY();
	{
		done = pause_wait(dboid, roleid, timeout_ms, &busy);
	}
	PG_CATCH();
	{
		if (added)
			pause_lift_exact(dboid, roleid);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (!done)
	{
		if (added)
			pause_lift_exact(dboid, roleid);
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("could not pause the pool within %lld ms",
						(long long) timeout_ms),
				 errdetail("%d pool executors of %s were still inside a transaction; the pause was lifted.",
						   busy, target_text(dboid, roleid))));
	}
	ereport(LOG,
			(errmsg("builtin_pool paused %s", target_text(dboid, roleid))));
	PG_RETURN_VOID();
}

/*
 * pool_resume(database name, role name): lifts every pause the arguments
 * cover (NULL: any), so pool_resume() lifts them all.  Returns false if
 * none did.
 */
Datum
pool_resume(PG_FUNCTION_ARGS)
{
	Oid			dboid;
	Oid			roleid;
	int			removed;
	pid_t	   *pids;
	int			n_pids;

	admin_shmem_check();
	target_args(fcinfo, &dboid, &roleid);
	removed = pause_remove(dboid, roleid);
	pids = palloc(sizeof(pid_t) * bp_shared->max_executors);
	(void) covered_executors(dboid, roleid, false, false, pids, &n_pids);
	wake_pids(pids, n_pids);
	pfree(pids);
	if (removed > 0)
		ereport(LOG,
				(errmsg("builtin_pool resumed %s", target_text(dboid, roleid))));
	PG_RETURN_BOOL(removed > 0);
}

/*
 * pool_reconnect(database name, role name): asks every executor of the
 * covered pools (NULL: any) to retire; each hands its sessions to fresh
 * executors between their transactions (a pinned session once its pin
 * ends), then exits.  Returns how many executors were asked.
 */
Datum
pool_reconnect(PG_FUNCTION_ARGS)
{
	Oid			dboid;
	Oid			roleid;
	pid_t	   *pids;
	int			n_pids;
	int			n;

	admin_shmem_check();
	target_args(fcinfo, &dboid, &roleid);
	pids = palloc(sizeof(pid_t) * bp_shared->max_executors);
	n = covered_executors(dboid, roleid, false, true, pids, &n_pids);
	wake_pids(pids, n_pids);
	pfree(pids);
	ereport(LOG,
			(errmsg("builtin_pool recycles %d executors of %s",
					n, target_text(dboid, roleid))));
	PG_RETURN_INT32(n);
}

/*
 * pool_reload(): pg_reload_conf() under the pool's name: the postmaster
 * re-reads the configuration and signals every process, the listener and
 * the executors among them, which apply the builtin_pool.* settings
 * marked (reload) in README.
 */
Datum
pool_reload(PG_FUNCTION_ARGS)
{
	if (kill(PostmasterPid, SIGHUP))
	{
		ereport(WARNING,
				(errmsg("failed to send signal to postmaster: %m")));
		PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}

#define POOL_POOL_STATS_COLS	11

/* A metrics entry as pool_pool_stats() shows it, copied out of the table */
typedef struct MetricsRow
{
	int			port_index;
	Oid			dboid;
	Oid			roleid;
	char		dbname[NAMEDATALEN];
	char		rolname[NAMEDATALEN];
	uint64		counters[7];	/* PoolMetrics' atomics, in their order */
} MetricsRow;

/*
 * pool_pool_stats(): the counters of every pool the server served since it
 * started, one row per (port, database, role), and whether it is paused.
 * Copied under the lock, tuples built after.
 */
Datum
pool_pool_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MetricsRow *rows;
	int			n = 0;
	int			i;

	admin_shmem_check();
	InitMaterializedSRF(fcinfo, 0);
	rows = palloc(sizeof(MetricsRow) * admin->max_metrics);
	LWLockAcquire(admin->admin_lock, LW_SHARED);
	for (i = 0; i < admin->max_metrics && admin->metrics[i].in_use; i++)
	{
		PoolMetrics *m = &admin->metrics[i];
		MetricsRow *r = &rows[n++];

		r->port_index = m->port_index;
		r->dboid = m->dboid;
		r->roleid = m->roleid;
		strlcpy(r->dbname, m->dbname, NAMEDATALEN);
		strlcpy(r->rolname, m->rolname, NAMEDATALEN);
		r->counters[0] = pg_atomic_read_u64(&m->waits);
		r->counters[1] = pg_atomic_read_u64(&m->wait_us);
		r->counters[2] = pg_atomic_read_u64(&m->pins);
		r->counters[3] = pg_atomic_read_u64(&m->moves);
		r->counters[4] = pg_atomic_read_u64(&m->started);
		r->counters[5] = pg_atomic_read_u64(&m->reserve_started);
		r->counters[6] = pg_atomic_read_u64(&m->lost);
	}
	LWLockRelease(admin->admin_lock);

	for (i = 0; i < n; i++)
	{
		MetricsRow *r = &rows[i];
		Datum		values[POOL_POOL_STATS_COLS];
		bool		nulls[POOL_POOL_STATS_COLS];
		int			c = 0;
		int			k;

		memset(nulls, 0, sizeof(nulls));
		values[c++] = Int32GetDatum(bp_port_for_index(r->port_index));
		values[c++] = CStringGetTextDatum(r->dbname);
		values[c++] = CStringGetTextDatum(r->rolname);
		values[c++] = BoolGetDatum(pool_is_paused(r->dboid, r->roleid));
		values[c++] = Int64GetDatum((int64) r->counters[0]);
		values[c++] = Float8GetDatum((double) r->counters[1] / 1000.0);
		for (k = 2; k < 7; k++)
			values[c++] = Int64GetDatum((int64) r->counters[k]);
		Assert(c == POOL_POOL_STATS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(rows);
	return (Datum) 0;
}
