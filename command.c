/*-------------------------------------------------------------------------
 *
 * command.c
 *	  What an executor does around every client command, as postgres.c's
 *	  static helpers do: the transaction a message runs in, its
 *	  statement_timeout, and the log lines log_statement and
 *	  log_min_duration_statement ask for.  Used by both the simple
 *	  (protocol.c) and the extended (extended.c) query protocol.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/timeout.h"

#include "command.h"

bool		bp_xact_started = false;

/* ---------------------------------------------------------------------
 * Transactions around client messages (postgres.c keeps these static)
 * ---------------------------------------------------------------------
 */

static void
enable_statement_timeout(void)
{
	if (StatementTimeout > 0)
	{
		if (!get_timeout_active(STATEMENT_TIMEOUT))
			enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	}
	else if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, false);
}

void
bp_disable_statement_timeout(void)
{
	if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, false);
}

void
bp_start_xact_command(void)
{
	if (!bp_xact_started)
	{
		StartTransactionCommand();
		bp_xact_started = true;
	}
	enable_statement_timeout();
}

void
bp_finish_xact_command(void)
{
	bp_disable_statement_timeout();
	if (bp_xact_started)
	{
		CommitTransactionCommand();
		bp_xact_started = false;
	}
}

bool
bp_statement_needs_logging(List *parsetrees)
{
	ListCell   *lc;

	if (log_statement == LOGSTMT_NONE)
		return false;
	if (log_statement == LOGSTMT_ALL)
		return true;
	foreach(lc, parsetrees)
	{
		if (GetCommandLogLevel((Node *) lfirst(lc)) <= log_statement)
			return true;
	}
	return false;
}

/* core's errdetail_params: the parameter values in a log line */
int
bp_errdetail_params(ParamListInfo params)
{
	if (params && params->numParams > 0 && log_parameter_max_length != 0)
	{
		char	   *str = BuildParamLogString(params, NULL, log_parameter_max_length);

		if (str && str[0] != '\0')
			errdetail("parameters: %s", str);
	}
	return 0;
}

/*
 * The line log_min_duration_statement asks for, worded as core's:
 * "duration: N ms", followed by what ran when check_log_duration()
 * said so (statement non-NULL), with its parameters if any.
 */
void
bp_log_duration(const char *msec_str, const char *statement, ParamListInfo params)
{
	if (statement == NULL)
		ereport(LOG,
				(errmsg("duration: %s ms", msec_str),
				 errhidestmt(true)));
	else
		ereport(LOG,
				(errmsg("duration: %s ms  %s", msec_str, statement),
				 errhidestmt(true),
				 bp_errdetail_params(params)));
}
