/*-------------------------------------------------------------------------
 *
 * pinning.h
 *	  Session state core keeps per process: pinning, RESET to startup
 *	  values, cleanup when a session ends.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PINNING_H
#define PINNING_H

#include "nodes/parsenodes.h"
#include "session.h"

extern void bp_pinning_init(void);

/* The executor can hide its temp schema from no more sessions */
extern bool bp_temp_setups_exhausted(void);

/* What moves with a session (bp_session_serialize) */
extern void bp_pinning_serialize(PoolSession *s, StringInfo buf);
extern void bp_pinning_restore(PoolSession *s, StringInfo in);

/* utility_hook.c's branches: LISTEN is run here; tracking after core */
extern void bp_pinning_listen(ListenStmt *stmt);
extern void bp_pinning_utility_after(Node *stmt);

/*
 * Does the current session hold state that other sessions must not share
 * (temp tables, session advisory locks, LISTEN, WITH HOLD cursors)?  Called
 * at a transaction boundary; may run a short catalog check.
 */
extern bool bp_session_pinned(PoolSession *s);
extern const char *bp_session_pin_reason(PoolSession *s);

/* Does the current session own temp objects?  Inside a transaction. */
extern bool bp_temp_objects_exist(void);

/* Releases that state when the current session ends, outside a transaction */
extern void bp_session_release_state(PoolSession *s);

/*
 * Around a session's turn, outside a transaction: a session that never set
 * up a temp schema of its own does not see the executor's (pinning.c).
 */
extern void bp_temp_namespace_switch_in(PoolSession *s);
extern void bp_temp_namespace_switch_out(void);

#endif							/* PINNING_H */
