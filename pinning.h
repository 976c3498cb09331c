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

#include "session.h"

extern void bp_pinning_init(void);

/*
 * Does the current session hold state that other sessions must not share
 * (temp tables, session advisory locks, LISTEN, WITH HOLD cursors)?  Called
 * at a transaction boundary; may run a short catalog check.
 */
extern bool bp_session_pinned(PoolSession *s);

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
