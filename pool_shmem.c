/*-------------------------------------------------------------------------
 *
 * pool_shmem.c
 *	  Shared memory of builtin_pool: the pool table, the executor slots and
 *	  the listener's counters.
 *
 * Note about locking: see pool_shmem.h.  In short, the listener is the only
 * writer of pool entries and of executor slot states (under the exclusive
 * lock); executors only touch the atomics of their own slot.
 *
 * Both tables are sized from max_worker_processes: every executor is a
 * background worker, and a pool without an executor is released, so
 * neither table can need more entries than there are worker slots.  The
 * cancel key table holds one entry per session an executor may hold
 * (max_sessions each), plus clients the listener holds between executors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "builtin_pool.h"
#include "pool_shmem.h"
#include "session_table.h"

#define BP_TRANCHE	"builtin_pool"

/* room for clients the listener holds between executors (parked, moving) */
#define BP_CANCEL_SPARE		1024

typedef struct PoolCancelEntry
{
	uint32		key;			/* hash key; never 0 */
	pid_t		pid;			/* pid the client was told; 0 until handed */
	int			slot;			/* executor slot holding it, -1 if none */
	uint32		generation;		/* of that slot */
} PoolCancelEntry;

PoolShared *bp_shared = NULL;
static HTAB *cancel_table = NULL;

static long
cancel_table_size(void)
{
	return (long) max_worker_processes * bp_max_sessions + BP_CANCEL_SPARE;
}

static Size
shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PoolShared));

	size = add_size(size, mul_size(max_worker_processes, sizeof(PoolDesc)));
	size = add_size(size, mul_size(max_worker_processes, sizeof(PoolExecutor)));
	return size;
}

static void
init_cancel_table(void)
{
	HASHCTL		info;

	info.keysize = sizeof(uint32);
	info.entrysize = sizeof(PoolCancelEntry);
	cancel_table = ShmemInitHash("builtin_pool cancel keys",
								 cancel_table_size(), cancel_table_size(),
								 &info, HASH_ELEM | HASH_BLOBS);
}

bool
bp_cancel_forward(int slot, uint32 generation, uint32 key)
{
	PoolExecutor *ex;
	pid_t		target;
	bool		stored = false;
	int			i;

	if (slot < 0 || slot >= bp_shared->max_executors)
		return false;
	/* the listener writes slot states: a racy read only misses a cancel */
	ex = &bp_shared->executors[slot];
	if (ex->generation != generation ||
		(ex->state != PE_READY && ex->state != PE_EXITING))
		return false;
	target = ex->pid;
	for (i = 0; i < BP_CANCEL_SLOTS && !stored && target > 0; i++)
	{
		uint32		expected = 0;

		stored = pg_atomic_compare_exchange_u32(&ex->cancel_keys[i],
												&expected, key) ||
			expected == key;
	}
	return stored && kill(target, SIGUSR2) == 0;
}

/* shmem_request_hook: on PostgreSQL 15 requests outside it are refused */
void
bp_shmem_request(void)
{
	RequestAddinShmemSpace(add_size(shmem_size(),
									hash_estimate_size(cancel_table_size(),
													   sizeof(PoolCancelEntry))));
	RequestAddinShmemSpace(bp_stab_shmem_size());
	RequestNamedLWLockTranche(BP_TRANCHE, 2);
}

/* shmem_startup_hook: creates the tables, or attaches to them */
void
bp_shmem_startup(void)
{
	bool		found;
	char	   *base;
	int			i;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bp_shared = ShmemInitStruct("builtin_pool", shmem_size(), &found);
	base = (char *) bp_shared + MAXALIGN(sizeof(PoolShared));
	if (!found)
	{
		memset(bp_shared, 0, shmem_size());
		bp_shared->lock = &(GetNamedLWLockTranche(BP_TRANCHE))[0].lock;
		bp_shared->cancel_lock = &(GetNamedLWLockTranche(BP_TRANCHE))[1].lock;
		bp_shared->max_pools = max_worker_processes;
		bp_shared->max_executors = max_worker_processes;
		pg_atomic_init_u64(&bp_shared->n_accepted, 0);
		pg_atomic_init_u64(&bp_shared->n_rejected, 0);
		pg_atomic_init_u64(&bp_shared->n_cancels, 0);
		pg_atomic_init_u64(&bp_shared->n_cancels_unmatched, 0);
		pg_atomic_init_u64(&bp_shared->n_tls_handshakes, 0);
		pg_atomic_init_u32(&bp_shared->n_tls_sessions, 0);
		pg_atomic_init_u32(&bp_shared->mainport_listener, 0);
		pg_atomic_init_u32(&bp_shared->login_epoch, 0);
		pg_atomic_init_u64(&bp_shared->n_greetings, 0);
		pg_atomic_init_u64(&bp_shared->n_auth_cached, 0);
		for (i = 0; i < bp_shared->max_executors; i++)
		{
			PoolExecutor *ex = (PoolExecutor *)
				(base + max_worker_processes * sizeof(PoolDesc)) + i;

			ex->pool_id = -1;
			pg_atomic_init_u32(&ex->activity, PEA_IDLE);
			pg_atomic_init_u64(&ex->busy_since, 0);
			pg_atomic_init_u32(&ex->n_sessions, 0);
			pg_atomic_init_u32(&ex->n_waiting, 0);
			pg_atomic_init_u32(&ex->n_pinned, 0);
			pg_atomic_init_u64(&ex->n_transactions, 0);
			pg_atomic_init_u64(&ex->bytes_in, 0);
			pg_atomic_init_u64(&ex->bytes_out, 0);
			pg_atomic_init_u32(&ex->n_statements, 0);
			for (int k = 0; k < BP_CANCEL_SLOTS; k++)
				pg_atomic_init_u32(&ex->cancel_keys[k], 0);
			pg_atomic_init_u32(&ex->channel_sends, 0);
			pg_atomic_init_u32(&ex->dismissed, 0);
		}
	}
	init_cancel_table();
	bp_stab_shmem_init();
	LWLockRelease(AddinShmemInitLock);

	/* every process maps the segment at the same address on Linux */
	bp_shared->pools = (PoolDesc *) base;
	bp_shared->executors = (PoolExecutor *) (base + max_worker_processes * sizeof(PoolDesc));
}

int
bp_pool_lookup(int port_index, Oid dboid, Oid roleid, const char *dbname,
			   const char *rolname, bool create)
{
	int			free_id = -1;
	int			i;

	for (i = 0; i < bp_shared->max_pools; i++)
	{
		PoolDesc   *p = &bp_shared->pools[i];

		if (!p->in_use)
		{
			if (free_id < 0)
				free_id = i;
			continue;
		}
		if (p->port_index == port_index && !p->retired &&
			p->dboid == dboid && p->roleid == roleid)
			return i;
	}
	if (!create || free_id < 0)
		return -1;

	memset(&bp_shared->pools[free_id], 0, sizeof(PoolDesc));
	bp_shared->pools[free_id].in_use = true;
	bp_shared->pools[free_id].port_index = port_index;
	bp_shared->pools[free_id].dboid = dboid;
	bp_shared->pools[free_id].roleid = roleid;
	strlcpy(bp_shared->pools[free_id].dbname, dbname, NAMEDATALEN);
	strlcpy(bp_shared->pools[free_id].rolname, rolname, NAMEDATALEN);
	return free_id;
}

int
bp_pool_sessions_of(Oid roleid, Oid dboid)
{
	int			n = 0;
	int			i;

	LWLockAcquire(bp_shared->lock, LW_SHARED);
	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];
		PoolDesc   *p;

		if (ex->state == PE_FREE || ex->pool_id < 0)
			continue;
		p = &bp_shared->pools[ex->pool_id];
		if (OidIsValid(roleid) ? p->roleid == roleid : p->dboid == dboid)
			n += (int) pg_atomic_read_u32(&ex->n_sessions);
	}
	LWLockRelease(bp_shared->lock);
	return n;
}

int
bp_executor_claim(int pool_id)
{
	int			i;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->state != PE_FREE)
			continue;
		ex->state = PE_STARTING;
		ex->pool_id = pool_id;
		ex->generation++;
		ex->pid = 0;
		ex->reserve = false;
		pg_atomic_write_u32(&ex->activity, PEA_IDLE);
		pg_atomic_write_u64(&ex->busy_since, 0);
		pg_atomic_write_u64(&ex->idle_xact_since, 0);
		pg_atomic_write_u32(&ex->n_sessions, 0);
		pg_atomic_write_u32(&ex->n_waiting, 0);
		pg_atomic_write_u32(&ex->n_pinned, 0);
		pg_atomic_write_u64(&ex->n_transactions, 0);
		pg_atomic_write_u64(&ex->bytes_in, 0);
		pg_atomic_write_u64(&ex->bytes_out, 0);
		pg_atomic_write_u32(&ex->n_statements, 0);
		for (int k = 0; k < BP_CANCEL_SLOTS; k++)
			pg_atomic_write_u32(&ex->cancel_keys[k], 0);
		pg_atomic_write_u32(&ex->channel_sends, 0);
		pg_atomic_write_u32(&ex->dismissed, 0);
		bp_shared->pools[pool_id].n_executors++;
		return i;
	}
	return -1;
}

bool
bp_executor_held(PoolExecutor *ex, TimestampTz now)
{
	TimestampTz since = (TimestampTz) pg_atomic_read_u64(&ex->idle_xact_since);

	return since != 0 && TimestampDifferenceExceeds(since, now, BP_HELD_GRACE_MS);
}

int
bp_pool_kept_executors(int pool_id)
{
	int			kept = 0;
	int			i;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->pool_id == pool_id && !ex->reserve &&
			(ex->state == PE_STARTING || ex->state == PE_READY) &&
			pg_atomic_read_u32(&ex->n_pinned) == 0)
			kept++;
	}
	return kept;
}

void
bp_executor_release(int slot)
{
	PoolExecutor *ex = &bp_shared->executors[slot];

	if (ex->state == PE_FREE)
		return;
	if (ex->pool_id >= 0)
	{
		PoolDesc   *p = &bp_shared->pools[ex->pool_id];

		if (--p->n_executors <= 0)
			p->in_use = false;
	}
	ex->state = PE_FREE;
	ex->pool_id = -1;
	ex->pid = 0;
	bp_cancel_keys_purge(slot);
	bp_stab_purge_executor(slot, ex->generation);
}

/* ---------------------------------------------------------------------
 * The cancel key table (see pool_shmem.h)
 * ---------------------------------------------------------------------
 */

/* Adds a key held by no executor yet; the listener's, for a new client */
PoolCancelKeyAdd
bp_cancel_key_add(uint32 key)
{
	PoolCancelEntry *e;
	bool		found;

	Assert(key != 0);
	LWLockAcquire(bp_shared->cancel_lock, LW_EXCLUSIVE);
	e = hash_search(cancel_table, &key, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		e->pid = 0;
		e->slot = -1;
		e->generation = 0;
	}
	LWLockRelease(bp_shared->cancel_lock);
	return e == NULL ? PCK_FULL : found ? PCK_TAKEN : PCK_ADDED;
}

/*
 * The listener hands the session with key to slot, its client knowing it
 * under pid.  Re-adds the key if the slot it was placed at before died.
 */
void
bp_cancel_key_place(uint32 key, pid_t pid, int slot, uint32 generation)
{
	PoolCancelEntry *e;

	LWLockAcquire(bp_shared->cancel_lock, LW_EXCLUSIVE);
	e = hash_search(cancel_table, &key, HASH_ENTER_NULL, NULL);
	if (e != NULL)
	{
		e->pid = pid;
		e->slot = slot;
		e->generation = generation;
	}
	LWLockRelease(bp_shared->cancel_lock);
}

/* A session came back to the listener: no executor holds it; its pid */
pid_t
bp_cancel_key_detach(uint32 key)
{
	PoolCancelEntry *e;
	pid_t		pid = 0;

	LWLockAcquire(bp_shared->cancel_lock, LW_EXCLUSIVE);
	e = hash_search(cancel_table, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		e->slot = -1;
		pid = e->pid;
	}
	LWLockRelease(bp_shared->cancel_lock);
	return pid;
}

/*
 * The session with key ended.  slot < 0: the listener's, unconditionally;
 * else only while (slot, generation) still holds it, so that an executor
 * never removes a key the session took elsewhere.
 */
void
bp_cancel_key_remove(uint32 key, int slot, uint32 generation)
{
	PoolCancelEntry *e;

	if (key == 0)
		return;
	LWLockAcquire(bp_shared->cancel_lock, LW_EXCLUSIVE);
	e = hash_search(cancel_table, &key, HASH_FIND, NULL);
	if (e != NULL &&
		(slot < 0 || (e->slot == slot && e->generation == generation)))
		hash_search(cancel_table, &key, HASH_REMOVE, NULL);
	LWLockRelease(bp_shared->cancel_lock);
}

/* Removes the keys of slot, which is being freed: its sessions died with it */
void
bp_cancel_keys_purge(int slot)
{
	HASH_SEQ_STATUS seq;
	PoolCancelEntry *e;

	LWLockAcquire(bp_shared->cancel_lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, cancel_table);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->slot == slot)
			hash_search(cancel_table, &e->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(bp_shared->cancel_lock);
}

/*
 * Finds the live session a CancelRequest (pid, key) names.  True with the
 * slot holding it (-1 while it moves between executors) and that slot's
 * generation; false if no live session has that key and pid.
 */
bool
bp_cancel_key_lookup(pid_t pid, uint32 key, int *slot, uint32 *generation)
{
	PoolCancelEntry *e;
	bool		ok = false;

	if (key == 0 || pid <= 0)
		return false;
	LWLockAcquire(bp_shared->cancel_lock, LW_SHARED);
	e = hash_search(cancel_table, &key, HASH_FIND, NULL);
	if (e != NULL && e->pid == pid)
	{
		*slot = e->slot;
		*generation = e->generation;
		ok = true;
	}
	LWLockRelease(bp_shared->cancel_lock);
	return ok;
}
