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
 * neither table can need more entries than there are worker slots.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "pool_shmem.h"

#define BP_TRANCHE	"builtin_pool"

PoolShared *bp_shared = NULL;

static Size
shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PoolShared));

	size = add_size(size, mul_size(max_worker_processes, sizeof(PoolDesc)));
	size = add_size(size, mul_size(max_worker_processes, sizeof(PoolExecutor)));
	return size;
}

/* shmem_request_hook: on PostgreSQL 15 requests outside it are refused */
void
bp_shmem_request(void)
{
	RequestAddinShmemSpace(shmem_size());
	RequestNamedLWLockTranche(BP_TRANCHE, 1);
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
		bp_shared->lock = &(GetNamedLWLockTranche(BP_TRANCHE))->lock;
		bp_shared->max_pools = max_worker_processes;
		bp_shared->max_executors = max_worker_processes;
		pg_atomic_init_u64(&bp_shared->n_accepted, 0);
		pg_atomic_init_u64(&bp_shared->n_rejected, 0);
		pg_atomic_init_u64(&bp_shared->n_cancels, 0);
		pg_atomic_init_u64(&bp_shared->n_tls_handshakes, 0);
		pg_atomic_init_u32(&bp_shared->n_tls_sessions, 0);
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
			pg_atomic_init_u32(&ex->cancel_key, 0);
			pg_atomic_init_u32(&ex->channel_sends, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);

	/* every process maps the segment at the same address on Linux */
	bp_shared->pools = (PoolDesc *) base;
	bp_shared->executors = (PoolExecutor *) (base + max_worker_processes * sizeof(PoolDesc));
}

int
bp_pool_lookup(int port_index, const char *dbname, const char *rolname,
			   bool create)
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
		if (p->port_index == port_index &&
			strcmp(p->dbname, dbname) == 0 &&
			strcmp(p->rolname, rolname) == 0)
			return i;
	}
	if (!create || free_id < 0)
		return -1;

	memset(&bp_shared->pools[free_id], 0, sizeof(PoolDesc));
	bp_shared->pools[free_id].in_use = true;
	bp_shared->pools[free_id].port_index = port_index;
	strlcpy(bp_shared->pools[free_id].dbname, dbname, NAMEDATALEN);
	strlcpy(bp_shared->pools[free_id].rolname, rolname, NAMEDATALEN);
	return free_id;
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
		pg_atomic_write_u32(&ex->n_sessions, 0);
		pg_atomic_write_u32(&ex->n_waiting, 0);
		pg_atomic_write_u32(&ex->n_pinned, 0);
		pg_atomic_write_u64(&ex->n_transactions, 0);
		pg_atomic_write_u64(&ex->bytes_in, 0);
		pg_atomic_write_u64(&ex->bytes_out, 0);
		pg_atomic_write_u32(&ex->n_statements, 0);
		pg_atomic_write_u32(&ex->cancel_key, 0);
		pg_atomic_write_u32(&ex->channel_sends, 0);
		bp_shared->pools[pool_id].n_executors++;
		return i;
	}
	return -1;
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
}
