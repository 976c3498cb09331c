/*-------------------------------------------------------------------------
 *
 * admin.h
 *	  The DBA's levers on the pool (admin.c): pause and resume, recycling a
 *	  pool's executors, reloading the settings, and the per-pool and
 *	  listener counters an operator graphs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADMIN_H
#define ADMIN_H

#include "datatype/timestamp.h"

/* Shared memory of admin.c; called from builtin_pool.c's hooks */
extern void bp_admin_shmem_request(void);
extern void bp_admin_shmem_startup(void);

/*
 * Executors.  bp_admin_executor_attach() is called once the executor is
 * connected (its slot, generation and pool known); the others are cheap
 * enough for every turn: one atomic read while nothing is paused or
 * recycled.
 */
extern void bp_admin_executor_attach(int slot, uint32 generation, int pool_id);

/* True if a pool_pause() covers this executor's pool */
extern bool bp_admin_hold_wanted(void);

/*
 * Holding: the executor calls hold_begin() as it stops between
 * transactions for a pause, then hold_continue() before each wait; false
 * means the pause is over and the executor may serve again.
 */
extern void bp_admin_hold_begin(void);
extern bool bp_admin_hold_continue(void);
extern void bp_admin_hold_end(void);	/* leaves without the pause lifted */

/* True once pool_reconnect() asked this executor to retire */
extern bool bp_admin_recycle_wanted(void);

/*
 * For the listener: pool_reconnect() asked the executor in slot (of that
 * generation) to retire, so it takes no session and counts in no pool's
 * size: fresh executors start in its place.
 */
extern bool bp_admin_recycling(int slot, uint32 generation);

/* For pool_status(): the executor in slot holds for a pause */
extern bool bp_admin_slot_holding(int slot);

/* Executor-side counters of its pool */
extern void bp_admin_count_wait(TimestampTz queued_at, TimestampTz now);
extern void bp_admin_flush(void);	/* publishes the waits counted locally */
extern void bp_admin_count_pin(void);
extern void bp_admin_count_move(void);

/*
 * Listener-side counters.  A refused login is counted by the cause its
 * SQLSTATE names (conn_refuse() and the startup packet timeout).
 */
typedef enum PoolRefusal
{
	PR_AUTH,					/* class 28: authentication, pg_hba.conf */
	PR_LIMIT,					/* 53300: connection limits, pending caps */
	PR_UNAVAILABLE,				/* 57P03 and 57P01: shutting down, retired */
	PR_TIMEOUT,					/* 57014 and the startup packet timeout */
	PR_PROTOCOL,				/* class 08 and 0A000: broken or refused protocol */
	PR_OTHER,					/* anything else (3D000 unknown database, ...) */
	PR_NCAUSES
} PoolRefusal;

extern void bp_admin_count_exec_started(int pool_id, bool reserve);
extern void bp_admin_count_exec_lost(int slot, bool failed_start);
extern void bp_admin_count_refusal(int sqlstate);
extern void bp_admin_count_refusal_cause(PoolRefusal cause);
extern void bp_admin_refusals(uint64 *counts);	/* PR_NCAUSES entries */

#endif							/* ADMIN_H */
