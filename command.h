/*-------------------------------------------------------------------------
 *
 * command.h
 *	  Transactions, statement_timeout and logging around client commands;
 *	  see command.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COMMAND_H
#define COMMAND_H

#include "nodes/params.h"
#include "nodes/pg_list.h"

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

#endif							/* COMMAND_H */
