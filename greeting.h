/*-------------------------------------------------------------------------
 *
 * greeting.h
 *	  The login greeting the listener sends from what executors sent
 *	  (greeting.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GREETING_H
#define GREETING_H

#include "lib/stringinfo.h"

/* Every backend (from _PG_init): bumps the epoch at role/database changes */
extern void bp_greeting_init(void);

/* The login epoch, and bumping it (any process attached to shmem) */
extern uint32 bp_greeting_epoch(void);
extern void bp_greeting_invalidate(void);

/*
 * Executor: where the ParameterStatus messages are in a greeting written
 * to buf[start, end); false if it holds anything but AuthenticationOk,
 * ParameterStatus and BackendKeyData.
 */
extern bool bp_greeting_split(const char *buf, int start, int end,
							  int *status_off, int *status_len);
extern uint32 bp_greeting_hash(const char *status, int status_len);

/* Executor: sends a PoolGreetingNote on the channel, never blocking */
extern void bp_greeting_send_note(int chan, int slot, uint32 epoch,
								  int port_index, const char *body,
								  int body_len, const char *status,
								  int status_len);

/* Listener: takes a note from the executor in slot, of the given pool */
extern void bp_greeting_receive(const char *msg, size_t n, int slot,
								int port_index, Oid dboid, Oid roleid);

/*
 * Listener: appends the whole greeting (AuthenticationOk to ReadyForQuery)
 * of a login with these startup pairs, if a current one is known.
 */
extern bool bp_greeting_build(StringInfo out, int port_index, Oid dboid,
							  Oid roleid, const char *body, int body_len,
							  int32 pid, uint32 key, uint32 *hash);

#endif							/* GREETING_H */
