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

/* Transaction handling around client messages, as postgres.c's statics */
extern void bp_start_xact_command(void);
extern void bp_finish_xact_command(void);
extern void bp_disable_statement_timeout(void);

/* core's log lines for log_min_duration_statement and parameters */
extern void bp_log_duration(const char *msec_str, const char *statement,
							ParamListInfo params);
extern int	bp_errdetail_params(ParamListInfo params);

/* log_statement says these statements (raw or planned) are logged */
extern bool bp_statement_needs_logging(List *stmts);

/* true while a transaction started for a client message is open */
extern bool bp_xact_started;

#endif							/* PROTOCOL_H */
