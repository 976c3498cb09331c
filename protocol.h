/*-------------------------------------------------------------------------
 *
 * protocol.h
 *	  The frontend/backend messages an executor serves for its sessions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROTOCOL_H
#define PROTOCOL_H

#include "lib/stringinfo.h"
#include "nodes/params.h"
#include "nodes/pg_list.h"

#include "session.h"

/* Sends AuthenticationOk, ParameterStatus, BackendKeyData for a new session */
extern void bp_send_greeting(PoolSession *s);

/*
 * Reads the current session's next message into buf.  Returns the message
 * type, or EOF when the client is gone or broke the protocol (the session
 * is then marked closing).
 */
extern int	bp_read_message(StringInfo buf);

/* Serves one message of the current session */
extern void bp_dispatch_message(int firstchar, StringInfo msg);

/* Sends ReadyForQuery and reports changed settings if one is owed */
extern void bp_send_ready_if_needed(void);

/* Error recovery for the protocol state, called by the executor's handler */
extern void bp_protocol_error_cleanup(void);

#endif							/* PROTOCOL_H */
