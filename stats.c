/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  SQL functions that show the pool: pool_status() and
 *	  pool_listener_stats().
 *
 * The executor table is copied under the shared lock and the tuples are
 * built after releasing it, so a slow client of pool_status() never holds
 * up the listener.  Counters are atomics read without the lock (see
 * pool_shmem.h): a row may be a moment old, never torn.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "admin.h"
#include "builtin_pool.h"
#include "pool_shmem.h"

PG_FUNCTION_INFO_V1(pool_status);
PG_FUNCTION_INFO_V1(pool_listener_stats);

#define POOL_STATUS_COLS	14

typedef struct ExecutorRow
{
	int			port_index;
	char		dbname[NAMEDATALEN];
	char		rolname[NAMEDATALEN];
	pid_t		pid;
	PoolExecutorState state;
	uint32		activity;
	bool		paused;			/* holding for a pool_pause() (admin.c) */
	bool		dedicated;
	uint32		sessions;
	uint32		waiting;
	uint32		pinned;
	uint64		transactions;
	uint64		bytes_in;
	uint64		bytes_out;
	uint32		statements;
} ExecutorRow;

static void
pool_shmem_check(void)
{
	if (bp_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("builtin_pool must be loaded via shared_preload_libraries")));
}

/* Copies the live executor slots; caller frees the result */
static ExecutorRow *
copy_executors(int *count)
{
	ExecutorRow *rows = palloc0(sizeof(ExecutorRow) * bp_shared->max_executors);
	int			n = 0;
	int			i;

	LWLockAcquire(bp_shared->lock, LW_SHARED);
	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];
		PoolDesc   *pool;
		ExecutorRow *r;

		if (ex->state == PE_FREE || ex->pool_id < 0)
			continue;
		pool = &bp_shared->pools[ex->pool_id];
		r = &rows[n++];
		r->port_index = pool->port_index;
		strlcpy(r->dbname, pool->dbname, NAMEDATALEN);
		strlcpy(r->rolname, pool->rolname, NAMEDATALEN);
		r->dedicated = pool->dedicated;
		r->pid = ex->pid;
		r->state = ex->state;
		r->activity = pg_atomic_read_u32(&ex->activity);
		r->paused = bp_admin_slot_holding(i);
		r->sessions = pg_atomic_read_u32(&ex->n_sessions);
		r->waiting = pg_atomic_read_u32(&ex->n_waiting);
		r->pinned = pg_atomic_read_u32(&ex->n_pinned);
		r->transactions = pg_atomic_read_u64(&ex->n_transactions);
		r->bytes_in = pg_atomic_read_u64(&ex->bytes_in);
		r->bytes_out = pg_atomic_read_u64(&ex->bytes_out);
		r->statements = pg_atomic_read_u32(&ex->n_statements);
	}
	LWLockRelease(bp_shared->lock);

	*count = n;
	return rows;
}

static const char *
state_name(const ExecutorRow *r)
{
	switch (r->state)
	{
		case PE_STARTING:
			return "starting";
		case PE_READY:
			if (r->paused)
				return "paused";
			return r->activity == PEA_RUNNING ? "running" : "idle";
		case PE_EXITING:
			return "exiting";
		case PE_FREE:
			break;
	}
	return "free";
}

/*
 * pool_status(): one row per executor.  Readable by pg_read_all_stats (see
 * builtin_pool--1.0.sql).
 */
Datum
pool_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ExecutorRow *rows;
	int			n;
	int			i;

	pool_shmem_check();
	InitMaterializedSRF(fcinfo, 0);
	rows = copy_executors(&n);

	for (i = 0; i < n; i++)
	{
		ExecutorRow *r = &rows[i];
		Datum		values[POOL_STATUS_COLS];
		bool		nulls[POOL_STATUS_COLS];
		int			c = 0;

		memset(nulls, 0, sizeof(nulls));
		values[c++] = Int32GetDatum(bp_port_for_index(r->port_index));
		values[c++] = CStringGetTextDatum(r->dbname);
		values[c++] = CStringGetTextDatum(r->rolname);
		if (r->pid != 0)
			values[c++] = Int32GetDatum(r->pid);
		else
			nulls[c++] = true;
		values[c++] = CStringGetTextDatum(state_name(r));
		values[c++] = BoolGetDatum(r->dedicated);
		values[c++] = Int32GetDatum(r->sessions);
		values[c++] = Int32GetDatum(r->activity == PEA_RUNNING ? 1 : 0);
		values[c++] = Int32GetDatum(r->waiting);
		values[c++] = Int32GetDatum(r->pinned);
		values[c++] = Int64GetDatum(r->transactions);
		values[c++] = Int64GetDatum(r->bytes_in);
		values[c++] = Int64GetDatum(r->bytes_out);
		values[c++] = Int32GetDatum(r->statements);
		Assert(c == POOL_STATUS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(rows);
	return (Datum) 0;
}

/*
 * pool_listener_stats(): the listener's connection counters, one row; the
 * refusals by cause come from admin.c, in PoolRefusal's order.
 */
Datum
pool_listener_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[8 + PR_NCAUSES];
	bool		nulls[8 + PR_NCAUSES];
	uint64		refusals[PR_NCAUSES];
	int			i;

	pool_shmem_check();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	values[0] = Int64GetDatum(pg_atomic_read_u64(&bp_shared->n_accepted));
	values[1] = Int64GetDatum(pg_atomic_read_u64(&bp_shared->n_rejected));
	values[2] = Int64GetDatum(pg_atomic_read_u64(&bp_shared->n_cancels));
	values[3] = Int64GetDatum(pg_atomic_read_u64(&bp_shared->n_tls_handshakes));
	values[4] = Int32GetDatum((int32) pg_atomic_read_u32(&bp_shared->n_tls_sessions));
	values[5] = Int64GetDatum(pg_atomic_read_u64(&bp_shared->n_cancels_unmatched));
	bp_admin_refusals(refusals);
	for (i = 0; i < PR_NCAUSES; i++)
		values[6 + i] = Int64GetDatum((int64) refusals[i]);
	memset(nulls, 0, sizeof(nulls));
	values[6 + PR_NCAUSES] = Int64GetDatum(pg_atomic_read_u64(&bp_shared->n_greetings));
	values[7 + PR_NCAUSES] = Int64GetDatum(pg_atomic_read_u64(&bp_shared->n_auth_cached));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}
