/*-------------------------------------------------------------------------
 *
 * session_table.h
 *	  The shared table of pool sessions behind pool_sessions(): one slot
 *	  per client session, from admission to its end, and the requests
 *	  pool_cancel_session() and pool_terminate_session() leave there.
 *
 * Note about locking: a slot has one writer at a time, the process that
 * holds the session (the listener from admission until it hands the client
 * over or closes it, then the executor serving it, then the listener again
 * while the session moves).  The writer brackets its writes with
 * changecount, as core's PgBackendStatus does (st_changecount): odd while a
 * write is in progress; readers copy the slot and retry until they saw the
 * same even count before and after.  No lock on the hot path.  Claiming a
 * free slot (listener only) and the request bits are atomics.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SESSION_TABLE_H
#define SESSION_TABLE_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "libpq/pqcomm.h"
#include "port/atomics.h"

/* What pool_sessions shows as state */
typedef enum PoolSessionTabState
{
	PST_STARTING = 0,			/* admitted, not yet greeted */
	PST_WAITING,				/* a message waits for an executor */
	PST_PARKED,					/* every executor that could take it is
								 * pinned: the listener holds it */
	PST_IDLE,
	PST_ACTIVE,
	PST_IDLE_IN_XACT,
	PST_IDLE_IN_XACT_ABORTED,
	PST_FASTPATH
} PoolSessionTabState;

/* Request bits a pool_*_session() call leaves in a slot */
#define BP_STAB_TERMINATE	0x01
#define BP_STAB_CANCEL		0x02	/* cancel the request it has queued */

/* Sizes of the text fields (the query has track_activity_query_size) */
#define BP_STAB_TLS_LEN		64

struct PoolSession;

extern Size bp_stab_shmem_size(void);
extern void bp_stab_shmem_init(void);

/*
 * Listener, as it starts: where pool_terminate_session() wakes it; frees
 * the slots of clients an earlier listener held (they went with it)
 */
extern void bp_stab_listener_start(void);

/*
 * Listener: claims a slot for an admitted client and fills in who it is;
 * tls is "version cipher" or NULL.  Returns the slot, or -1 if none is
 * free (the session then goes unlisted).
 */
extern int	bp_stab_claim(int port_index, const char *dbname, const char *rolname,
						  Oid dboid, Oid roleid, const SockAddr *raddr,
						  const char *appname, const char *tls, int tls_bits);
/* Listener: the client waits in its queue (PST_WAITING) or is parked */
extern void bp_stab_listener_state(int slot, PoolSessionTabState state);
/* Listener: the session is about to be sent to that executor */
extern void bp_stab_handed(int slot, int exec_slot, uint32 generation);
extern uint64 bp_stab_session_id(int slot);
extern uint32 bp_stab_requests(int slot);

/* Whoever holds the session as it ends; slot may be -1 */
extern void bp_stab_release(int slot);
/* The same for a handoff refused: only if slot still holds session_id */
extern void bp_stab_release_id(int slot, uint64 session_id);

/* Listener: frees the slots an executor held when it died */
extern void bp_stab_purge_executor(int exec_slot, uint32 generation);

/*
 * Executor: takes the slot a handoff named; false (and the session goes
 * unlisted) if it no longer holds that session id.  A moved session is
 * idle, or still waiting if it moved with a request queued; a new one is
 * starting.
 */
extern bool bp_stab_adopt(struct PoolSession *s, int slot, uint64 session_id,
						  int exec_slot, uint32 generation, bool moved);
/* Executor: the session's state as its backend entry and s say now */
extern void bp_stab_report(struct PoolSession *s, PoolSessionTabState state);
/*
 * Executor: pgstat_report_activity() for the current session, which
 * pool_sessions then shows too
 */
extern void bp_stab_report_activity(int state, const char *query);
/* Executor: the session leaves for another executor; it waits meanwhile */
extern void bp_stab_moving(struct PoolSession *s);
/*
 * Executor: appends log_connections' " SSL enabled (...)" for a TLS
 * session, as core's "connection authorized" line has it
 */
extern void bp_stab_append_tls(struct PoolSession *s, StringInfo buf);
/* Executor: did pool_terminate_session() ask to end s? */
extern bool bp_stab_terminating(struct PoolSession *s);
/*
 * Executor, about to serve a message of s: did pool_cancel_session() ask to
 * cancel the request s had queued?  Clears the request.
 */
extern bool bp_stab_take_cancel(struct PoolSession *s);
/*
 * Listener: a CancelRequest that matched the live session with key also
 * cancels the request it has queued, as pool_cancel_session() does
 */
extern void bp_stab_cancel_queued(uint32 key);

#endif							/* SESSION_TABLE_H */
