/*-------------------------------------------------------------------------
 *
 * shutdown.h
 *	  Smart shutdown waits for pooled sessions, as it waits for backends.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHUTDOWN_H
#define SHUTDOWN_H

/*
 * Called by the listener on every tick.  Returns true while a smart
 * shutdown is waiting for clients: the pool then admits no one, and calls
 * bp_guard_release() once its last session is gone.
 */
extern bool bp_guard_tick(void);
extern void bp_guard_release(void);

/*
 * Called by the listener on every tick: carries the guard's connection on
 * while it is being made, without waiting.  true while it is.
 */
extern bool bp_guard_connecting(void);

/* Sessions held or queued by all executors */
extern uint32 bp_pool_sessions_total(void);

#endif							/* SHUTDOWN_H */
