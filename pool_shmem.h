/*-------------------------------------------------------------------------
 *
 * pool_shmem.h
 *	  Shared state of builtin_pool: pools, executor slots and counters.
 *
 * Note about locking: the listener is the only process that creates pools,
 * claims and frees executor slots and changes their state; it does so
 * holding PoolShared->lock exclusively.  Readers (pool_status(), executors
 * looking up their own pool) take it shared.  The counters an executor
 * updates while serving (sessions, transactions, bytes, ...) are atomics and
 * are read without the lock; a reader may see them a moment out of date,
 * never torn.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POOL_SHMEM_H
#define POOL_SHMEM_H

#include "port/atomics.h"
#include "storage/lwlock.h"

/* Where an executor slot is in its life, changed only by the listener */
typedef enum PoolExecutorState
{
	PE_FREE = 0,				/* slot unused */
	PE_STARTING,				/* worker registered, not yet said hello */
	PE_READY,					/* connected to the listener, takes sessions */
	PE_EXITING					/* exiting; takes no more sessions */
} PoolExecutorState;

/* What an executor is doing right now, written by the executor itself */
typedef enum PoolExecutorActivity
{
	PEA_IDLE = 0,				/* waiting for sessions */
	PEA_RUNNING					/* serving a session's transaction */
} PoolExecutorActivity;

typedef struct PoolDesc
{
	bool		in_use;
	bool		dedicated;		/* one executor per session */
	int			port_index;		/* 0 .. session_pool_ports - 1 */
	int			n_executors;	/* slots in any state but PE_FREE */
	char		dbname[NAMEDATALEN];
	char		rolname[NAMEDATALEN];
} PoolDesc;

typedef struct PoolExecutor
{
	/* protected by PoolShared->lock, written by the listener */
	PoolExecutorState state;
	int			pool_id;		/* index into pools, -1 when free */
	uint32		generation;		/* bumped each time the slot is claimed */
	pid_t		pid;			/* 0 until known */
	bool		reserve;		/* started beyond session_pool_size because
								 * requests waited (reserve_pool_size) */

	/* atomics; see the locking note above */
	pg_atomic_uint32 activity;	/* PoolExecutorActivity */
	pg_atomic_uint64 busy_since;	/* while PEA_RUNNING: when the current
									 * session's turn began */
	pg_atomic_uint32 n_sessions;	/* incremented by the listener at handoff,
									 * decremented by the executor at close */
	pg_atomic_uint32 n_waiting; /* sessions with a complete message queued */
	pg_atomic_uint32 n_pinned;	/* sessions pinned to this executor */
	pg_atomic_uint64 n_transactions;
	pg_atomic_uint64 bytes_in;
	pg_atomic_uint64 bytes_out;
	pg_atomic_uint32 n_statements;	/* prepared statements of its sessions */
	pg_atomic_uint32 cancel_key;	/* key of a forwarded CancelRequest, 0 if none */
	pg_atomic_uint32 channel_sends;	/* datagrams the listener sent it; lets
									 * the executor skip reading an empty
									 * channel between transactions */
} PoolExecutor;

/* In an executor, its own slot (executor.c); NULL in other processes */
extern PoolExecutor *bp_my_slot;

typedef struct PoolShared
{
	LWLock	   *lock;
	int			max_pools;
	int			max_executors;
	pg_atomic_uint64 n_accepted;	/* connections accepted by the listener */
	pg_atomic_uint64 n_rejected;	/* refused before reaching an executor */
	pg_atomic_uint64 n_cancels;		/* cancel requests forwarded */
	pg_atomic_uint64 n_tls_handshakes;	/* TLS handshakes completed */
	pg_atomic_uint32 n_tls_sessions;	/* TLS sessions being relayed */
	PoolDesc   *pools;			/* max_pools entries */
	PoolExecutor *executors;	/* max_executors entries */
} PoolShared;

extern PoolShared *bp_shared;

extern void bp_shmem_request(void);
extern void bp_shmem_startup(void);

/* Looks up or creates a pool; caller holds bp_shared->lock exclusively.
 * Returns -1 when all pool entries are in use. */
extern int	bp_pool_lookup(int port_index, const char *dbname, const char *rolname,
						   bool create);

/* Claims a free executor slot for pool_id, state PE_STARTING, generation
 * bumped; caller holds the lock exclusively.  Returns -1 if none is free. */
extern int	bp_executor_claim(int pool_id);

/* Frees a slot (state PE_FREE), releasing its pool when it was the pool's
 * last executor; caller holds the lock exclusively. */
extern void bp_executor_release(int slot);

#endif							/* POOL_SHMEM_H */
