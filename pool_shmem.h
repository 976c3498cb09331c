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
 * never torn.  The cancel key table has its own lock, cancel_lock (see
 * below), so that executors ending sessions never wait for the listener's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POOL_SHMEM_H
#define POOL_SHMEM_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "datatype/timestamp.h"

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

/*
 * A pool serves one (port, database, role), bound to the OIDs: the names
 * are what they were when the pool was made, for display and for noticing
 * a rename.  A retired pool (its role or database renamed, dropped or
 * barred from logging in) takes no new client; its executors end their
 * sessions and exit, and a new pool may serve the same OIDs meanwhile.
 */
typedef struct PoolDesc
{
	bool		in_use;
	bool		dedicated;		/* one executor per session */
	bool		retired;		/* see above */
	int			port_index;		/* 0 .. session_pool_ports - 1 */
	int			n_executors;	/* slots in any state but PE_FREE */
	Oid			dboid;
	Oid			roleid;
	char		dbname[NAMEDATALEN];
	char		rolname[NAMEDATALEN];
} PoolDesc;

#define BP_CANCEL_SLOTS		8

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
	pg_atomic_uint64 idle_xact_since;	/* while its session sits idle inside
										 * a transaction: since when; else 0 */
	pg_atomic_uint32 n_sessions;	/* incremented by the listener at handoff,
									 * decremented by the executor at close */
	pg_atomic_uint32 n_waiting; /* sessions with a complete message queued */
	pg_atomic_uint32 n_pinned;	/* sessions pinned to this executor */
	pg_atomic_uint64 n_transactions;
	pg_atomic_uint64 bytes_in;
	pg_atomic_uint64 bytes_out;
	pg_atomic_uint32 n_statements;	/* prepared statements of its sessions */
	/*
	 * Keys of CancelRequests the listener forwarded (0: free entry); the
	 * executor's SIGUSR2 handler takes them all and cancels the running
	 * command if one is its session's.  Several entries, so that cancels
	 * arriving together never overwrite one another.
	 */
	pg_atomic_uint32 cancel_keys[BP_CANCEL_SLOTS];
	pg_atomic_uint32 channel_sends;	/* datagrams the listener sent it; lets
									 * the executor skip reading an empty
									 * channel between transactions */
	pg_atomic_uint32 dismissed; /* 1: its pool was retired; set by the
								 * listener, which then wakes it */
} PoolExecutor;

/* In an executor, its own slot (executor.c); NULL in other processes */
extern PoolExecutor *bp_my_slot;

typedef struct PoolShared
{
	LWLock	   *lock;
	LWLock	   *cancel_lock;	/* protects the cancel key table */
	int			max_pools;
	int			max_executors;
	pg_atomic_uint64 n_accepted;	/* connections accepted by the listener */
	pg_atomic_uint64 n_rejected;	/* refused before reaching an executor */
	pg_atomic_uint64 n_cancels;		/* cancel requests forwarded */
	pg_atomic_uint64 n_cancels_unmatched;	/* matching no live session */
	pg_atomic_uint64 n_tls_handshakes;	/* TLS handshakes completed */
	pg_atomic_uint32 n_tls_sessions;	/* TLS sessions being relayed */
	pg_atomic_uint32 mainport_listener; /* pid of the listener taking main
										 * port clients (mainport.c), 0 while
										 * none does */
	pg_atomic_uint32 login_epoch;	/* bumped when what a login greeting
									 * reports may change (greeting.c) */
	pg_atomic_uint64 n_greetings;	/* logins the listener greeted itself */
	pg_atomic_uint64 n_auth_cached;	/* logins checked from its facts cache */
	PoolDesc   *pools;			/* max_pools entries */
	PoolExecutor *executors;	/* max_executors entries */
} PoolShared;

extern PoolShared *bp_shared;

/* What the sessions of a retired pool are told as they end (FATAL, 57P01) */
#define BP_RETIRED_MESSAGE	"terminating connection because its pool was retired"
#define BP_RETIRED_DETAIL	"The role or the database of the pool was renamed or dropped, or the role may no longer log in."

/*
 * An executor whose session has sat idle inside a transaction this long is
 * held: up to builtin_pool.max_held_executors such executors per pool (the
 * first in slot order) stop counting against session_pool_size, take no
 * session and give theirs away (executor.c), so the pool starts others.
 * Long enough that a client's round trip inside a busy transaction does not
 * count; short beside an idle transaction's seconds.
 */
#define BP_HELD_GRACE_MS	100

/* Is ex held (see above) as of now?  Reads atomics, no lock needed. */
extern bool bp_executor_held(PoolExecutor *ex, TimestampTz now);

/*
 * Executors of pool_id that builtin_pool.min_pool_size counts: starting or
 * ready, neither reserve nor pinned.  Reads without the lock (only the
 * listener changes slot states): exact in the listener, a moment's view
 * elsewhere.
 */
extern int	bp_pool_kept_executors(int pool_id);

extern void bp_shmem_request(void);
extern void bp_shmem_startup(void);

/*
 * Looks up the live (not retired) pool of (port, database OID, role OID),
 * or creates it with these names; caller holds bp_shared->lock
 * exclusively.  Returns -1 when all pool entries are in use.
 */
extern int	bp_pool_lookup(int port_index, Oid dboid, Oid roleid,
						   const char *dbname, const char *rolname, bool create);

/*
 * Pool sessions (queued for an executor or held by one, retired pools
 * included) of the role roleid, or in the database dboid, whichever is
 * valid.  Takes the lock shared: main port backends call it too.  The
 * count is as exact as a connection limit needs (core's is not either).
 */
extern int	bp_pool_sessions_of(Oid roleid, Oid dboid);

/* Claims a free executor slot for pool_id, state PE_STARTING, generation
 * bumped; caller holds the lock exclusively.  Returns -1 if none is free. */
extern int	bp_executor_claim(int pool_id);

/* Frees a slot (state PE_FREE), releasing its pool when it was the pool's
 * last executor; caller holds the lock exclusively. */
extern void bp_executor_release(int slot);

/*
 * The cancel key table: every live pool session's cancel key, with the pid
 * its client was told in BackendKeyData and the executor slot holding it
 * now (-1 while the listener holds it).  Keys are unique among live
 * sessions and never 0.  The listener adds a key when it admits a client,
 * places it at each handoff and removes it for a client it closes; an
 * executor removes the keys of the sessions it closes; keys of an executor
 * that died with sessions go with its slot.  All under cancel_lock, which
 * is taken after bp_shared->lock when both are held.
 */
typedef enum PoolCancelKeyAdd
{
	PCK_ADDED,
	PCK_TAKEN,					/* another live session has it */
	PCK_FULL					/* the table is full */
} PoolCancelKeyAdd;

extern PoolCancelKeyAdd bp_cancel_key_add(uint32 key);
extern void bp_cancel_key_place(uint32 key, pid_t pid, int slot, uint32 generation);
extern pid_t bp_cancel_key_detach(uint32 key);
extern void bp_cancel_key_remove(uint32 key, int slot, uint32 generation);
extern void bp_cancel_keys_purge(int slot);
extern bool bp_cancel_key_lookup(pid_t pid, uint32 key, int *slot,
								 uint32 *generation);

/*
 * Leaves key in one of the cancel_keys entries of executor slot (if it is
 * still that generation and running) and sends it SIGUSR2; the executor
 * cancels only if key is its running session's.  false if the executor is
 * gone, its entries are full or the signal failed (errno set).  Used by
 * the listener for CancelRequests and by pool_*_session().
 */
extern bool bp_cancel_forward(int slot, uint32 generation, uint32 key);

#endif							/* POOL_SHMEM_H */
