/*-------------------------------------------------------------------------
 *
 * protocol.c
 *	  The frontend/backend protocol as an executor serves it: reading a
 *	  session's messages, the simple query protocol, COPY, function calls,
 *	  Sync and Flush, and the transaction rules around them.  The extended
 *	  protocol's other messages are in extended.c.
 *
 * PostgreSQL 15 keeps its message loop (postgres.c) static, so this file
 * carries its own, written to match core message for message: a client
 * must not be able to tell the pool port from the main port.  The protocol
 * state core keeps in statics (ignore_till_sync, the extended-query flag)
 * lives in the session here, because one process serves many clients.
 *
 * COPY needs nothing of its own: COPY TO STDOUT writes through our
 * PqCommMethods, COPY FROM STDIN reads through core pqcomm from the
 * session's socket (session.c swaps MyProcPort and FeBeWaitSet).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/printtup.h"
#include "access/xact.h"
#include "commands/async.h"
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/dest.h"
#include "tcop/fastpath.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "command.h"
#include "extended.h"
#include "pool_shmem.h"
#include "protocol.h"
#include "session_table.h"

static bool
is_transaction_exit_stmt(Node *parsetree)
{
	if (parsetree && IsA(parsetree, TransactionStmt))
	{
		TransactionStmt *stmt = (TransactionStmt *) parsetree;

		return stmt->kind == TRANS_STMT_COMMIT ||
			stmt->kind == TRANS_STMT_PREPARE ||
			stmt->kind == TRANS_STMT_ROLLBACK ||
			stmt->kind == TRANS_STMT_ROLLBACK_TO;
	}
	return false;
}

static void
report_aborted_block(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_IN_FAILED_SQL_TRANSACTION),
			 errmsg("current transaction is aborted, "
					"commands ignored until end of transaction block")));
}

/* ---------------------------------------------------------------------
 * Simple query
 * ---------------------------------------------------------------------
 */

/*
 * Runs one statement of a simple query string through a portal, sending
 * its results to the client.  Called with the transaction started.
 */
static void
run_one_statement(RawStmt *parsetree, const char *query_string,
				  CommandTag tag, bool is_last, bool implicit_block)
{
	bool		snapshot_set = false;
	MemoryContext per_stmt = NULL;
	MemoryContext old;
	List	   *querytrees;
	List	   *plantrees;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;
	int16		format = 0;

	if (analyze_requires_snapshot(parsetree))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snapshot_set = true;
	}

	/* with more statements to come, free this one's trees once it is done */
	if (!is_last)
	{
		per_stmt = AllocSetContextCreate(MessageContext, "pool per-statement context",
										 ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(per_stmt);
	}
	else
		old = MemoryContextSwitchTo(MessageContext);

	querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, query_string,
													NULL, 0, NULL);
	plantrees = pg_plan_queries(querytrees, query_string,
								CURSOR_OPT_PARALLEL_OK, NULL);
	if (snapshot_set)
		PopActiveSnapshot();
	CHECK_FOR_INTERRUPTS();

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, query_string, tag, plantrees, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);

	/* FETCH from a BINARY cursor returns binary, as in core */
	if (IsA(parsetree->stmt, FetchStmt))
	{
		FetchStmt  *stmt = (FetchStmt *) parsetree->stmt;

		if (!stmt->ismove)
		{
			Portal		fportal = GetPortalByName(stmt->portalname);

			if (PortalIsValid(fportal) &&
				(fportal->cursorOptions & CURSOR_OPT_BINARY))
				format = 1;
		}
	}
	PortalSetResultFormat(portal, 1, &format);

	receiver = CreateDestReceiver(whereToSendOutput);
	if (whereToSendOutput == DestRemote)
		SetRemoteDestReceiverParams(receiver, portal);
	MemoryContextSwitchTo(old);

	(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);

	if (is_last)
	{
		/* end-of-transaction errors must come before CommandComplete */
		if (implicit_block)
			EndImplicitTransactionBlock();
		bp_finish_xact_command();
	}
	else if (IsA(parsetree->stmt, TransactionStmt))
		bp_finish_xact_command();
	else
	{
		CommandCounterIncrement();
		bp_disable_statement_timeout();
	}

	EndCommand(&qc, whereToSendOutput, false);
	if (per_stmt)
		MemoryContextDelete(per_stmt);
}

/* 'Q': the behaviour of core's exec_simple_query */
static void
exec_simple_query(const char *query_string)
{
	List	   *parsetrees;
	ListCell   *lc;
	bool		use_implicit_block;
	bool		was_logged = false;
	char		msec_str[32];
	MemoryContext old;

	debug_query_string = query_string;
	bp_stab_report_activity(STATE_RUNNING, query_string);

	bp_start_xact_command();
	bp_drop_unnamed_statement();

	old = MemoryContextSwitchTo(MessageContext);
	parsetrees = pg_parse_query(query_string);
	if (bp_statement_needs_logging(parsetrees))
	{
		ereport(LOG,
				(errmsg("statement: %s", query_string),
				 errhidestmt(true)));
		was_logged = true;
	}
	MemoryContextSwitchTo(old);

	use_implicit_block = list_length(parsetrees) > 1;

	foreach(lc, parsetrees)
	{
		RawStmt    *parsetree = lfirst_node(RawStmt, lc);
		CommandTag	tag = CreateCommandTag(parsetree->stmt);

		pgstat_report_query_id(0, true);
		set_ps_display(GetCommandTagName(tag));
		BeginCommand(tag, whereToSendOutput);

		if (IsAbortedTransactionBlockState() &&
			!is_transaction_exit_stmt(parsetree->stmt))
			report_aborted_block();

		bp_start_xact_command();
		if (use_implicit_block)
			BeginImplicitTransactionBlock();
		CHECK_FOR_INTERRUPTS();

		run_one_statement(parsetree, query_string, tag,
						  lnext(parsetrees, lc) == NULL, use_implicit_block);
	}

	bp_finish_xact_command();

	if (parsetrees == NIL)
		NullCommand(whereToSendOutput);

	switch (check_log_duration(msec_str, was_logged))
	{
		case 1:
			bp_log_duration(msec_str, NULL, NULL);
			break;
		case 2:
			bp_log_duration(msec_str, psprintf("statement: %s", query_string), NULL);
			break;
	}
	debug_query_string = NULL;
}

/* 'F': fast-path function call */
static void
exec_function_call(StringInfo msg)
{
	bp_stab_report_activity(STATE_FASTPATH, NULL);
	set_ps_display("<FASTPATH>");
	bp_start_xact_command();
	HandleFunctionRequest(msg);
	bp_finish_xact_command();
}

/* ---------------------------------------------------------------------
 * Reading and dispatching messages
 * ---------------------------------------------------------------------
 */

/*
 * Classifies a message type as core's SocketBackend does: its size limit
 * and whether it belongs to the extended protocol.  Returns false for a
 * type the protocol does not have.
 */
static bool
classify_message(int type, int *maxlen, bool *extended)
{
	*extended = false;
	*maxlen = PQ_SMALL_MESSAGE_LIMIT;
	switch (type)
	{
		case 'Q':
		case 'F':
		case 'd':
			*maxlen = PQ_LARGE_MESSAGE_LIMIT;
			return true;
		case 'X':
		case 'c':
		case 'f':
			return true;
		case 'P':
		case 'B':
			*maxlen = PQ_LARGE_MESSAGE_LIMIT;
			*extended = true;
			return true;
		case 'C':
		case 'D':
		case 'E':
		case 'H':
			*extended = true;
			return true;
		case 'S':
			/* Sync ends the extended sequence: an error here skips nothing */
			return true;
		default:
			return false;
	}
}

int
bp_read_message(StringInfo buf)
{
	PoolSession *s = bp_current;
	int			type;
	int			maxlen;
	bool		extended;

	pq_startmsgread();
	type = pq_getbyte();
	if (type == EOF)
	{
		/* not the client's EOF but pool_terminate_session()'s (executor.c) */
		if (IsTransactionOrTransactionBlock() && !bp_stab_terminating(s))
			ereport(COMMERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unexpected EOF on client connection with an open transaction")));
		s->closing = true;
		return EOF;
	}

	if (!classify_message(type, &maxlen, &extended))
	{
		char		message[64];

		pq_endmsgread();
		snprintf(message, sizeof(message), "invalid frontend message type %d", type);
		bp_session_send_fatal(ERRCODE_PROTOCOL_VIOLATION, message);
		return EOF;
	}
	s->doing_extended_query_message = extended;
	if (type == 'S' || type == 'X')
		s->ignore_till_sync = false;

	if (pq_getmessage(buf, maxlen))
	{
		/* pq_getmessage has logged why */
		bp_session_send_fatal(ERRCODE_PROTOCOL_VIOLATION,
							  "terminating connection because protocol synchronization was lost");
		return EOF;
	}
	pg_atomic_fetch_add_u64(&bp_my_slot->bytes_in, buf->len + 5);
	s->bytes_in += buf->len + 5;
	return type;
}

void
bp_dispatch_message(int firstchar, StringInfo msg)
{
	PoolSession *s = bp_current;

	if (s->ignore_till_sync && firstchar != 'S' && firstchar != EOF)
		return;

	/*
	 * statement_timestamp(), and through it transaction_timestamp(),
	 * pg_stat_activity's query_start and xact_start, logged durations: set
	 * for the messages PostgresMain sets it for.
	 */
	switch (firstchar)
	{
		case 'Q':
		case 'P':
		case 'B':
		case 'E':
		case 'F':
		case 'D':
			SetCurrentStatementStartTimestamp();
			break;
	}

	switch (firstchar)
	{
		case 'Q':
			{
				const char *query = pq_getmsgstring(msg);

				pq_getmsgend(msg);
				exec_simple_query(query);
				s->send_ready_for_query = true;
			}
			break;

		case 'F':
			exec_function_call(msg);
			s->send_ready_for_query = true;
			break;

		case 'S':
			pq_getmsgend(msg);
			bp_finish_xact_command();
			s->send_ready_for_query = true;
			break;

		case 'H':
			pq_getmsgend(msg);
			pq_flush();
			break;

		case 'P':
			bp_exec_parse(msg);
			break;

		case 'B':
			bp_exec_bind(msg);
			break;

		case 'E':
			bp_exec_execute(msg);
			break;

		case 'D':
			bp_exec_describe(msg);
			break;

		case 'C':
			bp_exec_close(msg);
			break;

		case 'X':
			s->closing = true;
			break;

		case 'd':
		case 'c':
		case 'f':
			/* COPY data after a failed COPY: ignored, as in core */
			break;
	}
}

/*
 * Owed ReadyForQuery: first report settings that changed, then the
 * transaction status, then flush, as PostgresMain does before it reads.
 */
void
bp_send_ready_if_needed(void)
{
	PoolSession *s = bp_current;

	if (!s->send_ready_for_query)
		return;

	if (IsAbortedTransactionBlockState())
	{
		set_ps_display("idle in transaction (aborted)");
		pgstat_report_activity(STATE_IDLEINTRANSACTION_ABORTED, NULL);
	}
	else if (IsTransactionOrTransactionBlock())
	{
		set_ps_display("idle in transaction");
		pgstat_report_activity(STATE_IDLEINTRANSACTION, NULL);
	}
	else
	{
		/*
		 * As PostgresMain: notifications (self-notifies included) reach the
		 * client before ReadyForQuery, and pending statistics are flushed
		 * when due (pg_stat_force_next_flush() makes them due now).
		 */
		if (notifyInterruptPending)
			ProcessNotifyInterrupt(false);
		(void) pgstat_report_stat(false);
		set_ps_display("idle");
		pgstat_report_activity(STATE_IDLE, NULL);
	}

	bp_session_report_settings();
	bp_stab_report(s, PST_IDLE);
	ReadyForQuery(DestRemote);
	s->send_ready_for_query = false;
}

/*
 * First messages of a session, after the listener admitted it:
 * AuthenticationOk, every reported setting, BackendKeyData with the
 * executor's pid and the session's own cancel key (never the executor's).
 * ReadyForQuery follows through the normal loop.
 */
void
bp_send_greeting(PoolSession *s)
{
	StringInfoData buf;

	pq_beginmessage(&buf, 'R');
	pq_sendint32(&buf, (int32) AUTH_REQ_OK);
	pq_endmessage(&buf);

	BeginReportingGUCOptions();

	pq_beginmessage(&buf, 'K');
	pq_sendint32(&buf, (int32) MyProcPid);
	pq_sendint32(&buf, (int32) s->cancel_key);
	pq_endmessage(&buf);

	s->send_ready_for_query = true;
	s->greeted = true;
}

/*
 * Protocol side of error recovery, called after the transaction was
 * aborted: in the extended protocol everything up to Sync is skipped.
 */
void
bp_protocol_error_cleanup(void)
{
	PoolSession *s = bp_current;

	bp_xact_started = false;
	if (s == NULL)
		return;
	if (s->doing_extended_query_message)
		s->ignore_till_sync = true;
	if (!s->ignore_till_sync)
		s->send_ready_for_query = true;
}
