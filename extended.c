/*-------------------------------------------------------------------------
 *
 * extended.c
 *	  The extended query protocol: Parse, Bind, Describe, Execute, Close.
 *
 * Core's exec_parse_message and friends are static in postgres.c; this is
 * our own implementation of the same behaviour, message for message: the
 * same replies, the same errors and SQLSTATEs, the same transaction rules
 * (an implicit transaction lasts until Sync; transaction statements commit
 * at once).  Sync, Flush and the skip-until-Sync rule after an error live
 * in protocol.c with the rest of the message loop.
 *
 * Two things differ inside, invisibly to the client: named statements are
 * stored under the session's key (prepared.c), and the unnamed statement
 * belongs to the session, not to the process.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/printtup.h"
#include "access/xact.h"
#include "commands/prepare.h"
#include "parser/parse_node.h"
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "mb/stringinfo_mb.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "tcop/pquery.h"
#include "tcop/utility.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"

#include "command.h"
#include "extended.h"
#include "parse_ahead.h"
#include "prepared.h"
#include "session.h"
#include "session_table.h"

/* Reused for RowDescription, as core does, to save allocations */
static StringInfoData row_description_buf;
static bool row_description_ready = false;

static StringInfo
row_description(void)
{
	if (!row_description_ready)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&row_description_buf);
		MemoryContextSwitchTo(old);
		row_description_ready = true;
	}
	return &row_description_buf;
}

static bool
is_transaction_exit(Node *parsetree)
{
	if (parsetree && IsA(parsetree, TransactionStmt))
	{
		TransactionStmtKind kind = ((TransactionStmt *) parsetree)->kind;

		return kind == TRANS_STMT_COMMIT || kind == TRANS_STMT_PREPARE ||
			kind == TRANS_STMT_ROLLBACK || kind == TRANS_STMT_ROLLBACK_TO;
	}
	return false;
}

/* the single statement of a portal is a utility TransactionStmt */
static PlannedStmt *
single_utility(List *stmts)
{
	PlannedStmt *pstmt;

	if (list_length(stmts) != 1)
		return NULL;
	pstmt = linitial_node(PlannedStmt, stmts);
	return pstmt->commandType == CMD_UTILITY ? pstmt : NULL;
}

static void
reject_in_aborted_block(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_IN_FAILED_SQL_TRANSACTION),
			 errmsg("current transaction is aborted, "
					"commands ignored until end of transaction block")));
}

void
bp_drop_unnamed_statement(void)
{
	PoolSession *s = bp_current;

	s->unnamed_changed = false;
	if (s->unnamed_psrc)
	{
		CachedPlanSource *psrc = s->unnamed_psrc;

		s->unnamed_psrc = NULL;
		DropCachedPlan(psrc);
	}
}

/* The statement a Bind or Describe names; ERROR 26000 if there is none */
static CachedPlanSource *
lookup_statement(const char *name)
{
	PreparedStatement *pstmt;

	if (name[0] == '\0')
	{
		if (bp_current->unnamed_psrc == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_PSTATEMENT),
					 errmsg("unnamed prepared statement does not exist")));
		return bp_current->unnamed_psrc;
	}
	pstmt = FetchPreparedStatement(bp_statement_key(bp_current, name), false);
	if (pstmt == NULL)
		bp_parse_ahead_raise(bp_current, name);
	if (pstmt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PSTATEMENT),
				 errmsg("prepared statement \"%s\" does not exist", name)));
	return pstmt->plansource;
}

static Portal
lookup_portal(const char *name)
{
	Portal		portal = GetPortalByName(name);

	if (!PortalIsValid(portal))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_CURSOR),
				 errmsg("portal \"%s\" does not exist", name)));
	return portal;
}

/* ---------------------------------------------------------------------
 * Parse
 * ---------------------------------------------------------------------
 */

static void
parse_statement(const char *name, const char *query, Oid *param_types,
				int num_params, bool reply)
{
	bool		is_named = name[0] != '\0';
	MemoryContext unnamed_cxt = NULL;
	MemoryContext old;
	List	   *parsetrees;
	RawStmt    *raw = NULL;
	List	   *querytrees = NIL;
	CachedPlanSource *psrc;
	char	   *key = NULL;
	char		msec_str[32];

	debug_query_string = query;
	bp_stab_report_activity(STATE_RUNNING, query);
	set_ps_display("PARSE");
	bp_start_xact_command();

	if (is_named)
	{
		bp_parse_ahead_forget(bp_current, name);
		key = bp_statement_key(bp_current, name);
		if (FetchPreparedStatement(key, false) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_PSTATEMENT),
					 errmsg("prepared statement \"%s\" already exists", name)));
		old = MemoryContextSwitchTo(MessageContext);
	}
	else
	{
		bp_drop_unnamed_statement();
		unnamed_cxt = AllocSetContextCreate(MessageContext,
											"unnamed prepared statement",
											ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(unnamed_cxt);
	}

	parsetrees = pg_parse_query(query);
	if (list_length(parsetrees) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("cannot insert multiple commands into a prepared statement")));

	if (parsetrees != NIL)
	{
		bool		snapshot_set = false;

		raw = linitial_node(RawStmt, parsetrees);
		if (IsAbortedTransactionBlockState() && !is_transaction_exit(raw->stmt))
			reject_in_aborted_block();

		psrc = CreateCachedPlan(raw, query, CreateCommandTag(raw->stmt));
		if (analyze_requires_snapshot(raw))
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			snapshot_set = true;
		}
		querytrees = pg_analyze_and_rewrite_varparams(raw, query, &param_types,
													  &num_params, NULL);
		if (snapshot_set)
			PopActiveSnapshot();
	}
	else
		psrc = CreateCachedPlan(NULL, query, CMDTAG_UNKNOWN);

	if (unnamed_cxt)
		MemoryContextSetParent(psrc->context, MessageContext);
	CompleteCachedPlan(psrc, querytrees, unnamed_cxt, param_types, num_params,
					   NULL, NULL, CURSOR_OPT_PARALLEL_OK, true);
	CHECK_FOR_INTERRUPTS();

	if (is_named)
	{
		StorePreparedStatement(key, psrc, false);
		bp_statement_remember(name, query, psrc->param_types,
							  psrc->num_params, false);
	}
	else
	{
		SaveCachedPlan(psrc);
		bp_current->unnamed_psrc = psrc;
	}
	MemoryContextSwitchTo(old);

	CommandCounterIncrement();
	if (reply && whereToSendOutput == DestRemote)
		pq_putemptymessage('1');

	switch (check_log_duration(msec_str, false))
	{
		case 1:
			bp_log_duration(msec_str, NULL, NULL);
			break;
		case 2:
			bp_log_duration(msec_str, psprintf("parse %s: %s",
											   *name ? name : "<unnamed>", query),
							NULL);
			break;
	}
	debug_query_string = NULL;
}

/* 'P': statement name, query, parameter type OIDs */
void
bp_exec_parse(StringInfo msg)
{
	const char *name = pq_getmsgstring(msg);
	const char *query = pq_getmsgstring(msg);
	int			num_params = pq_getmsgint(msg, 2);
	Oid		   *param_types = NULL;
	int			i;

	if (num_params > 0)
	{
		param_types = palloc(num_params * sizeof(Oid));
		for (i = 0; i < num_params; i++)
			param_types[i] = pq_getmsgint(msg, 4);
	}
	pq_getmsgend(msg);
	parse_statement(name, query, param_types, num_params, true);
}

/*
 * Prepares again a SQL PREPARE statement of a moved session: its PREPARE,
 * found at its place in the source text, runs under the session's key with
 * the whole text as its source, as core had it.
 */
static void
prepare_sql_again(PoolStatement *st)
{
	ListCell   *lc;

	foreach(lc, pg_parse_query(st->query))
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);
		PrepareStmt *stmt;
		ParseState *pstate;
		PoolStatement *again;

		if (raw->stmt_location != st->stmt_location || !IsA(raw->stmt, PrepareStmt))
			continue;
		stmt = copyObject((PrepareStmt *) raw->stmt);
		stmt->name = bp_statement_key(bp_current, st->name);
		pstate = make_parsestate(NULL);
		pstate->p_sourcetext = st->query;
		PrepareQuery(pstate, stmt, raw->stmt_location, raw->stmt_len);
		again = bp_statement_remember(st->name, st->query, st->param_types,
									  st->num_params, true);
		again->stmt_location = raw->stmt_location;
		again->stmt_len = raw->stmt_len;
		return;
	}
}

/*
 * Compares the result columns of a statement prepared again after a move
 * with those it had: its client may have cached them (Describe), so a
 * change makes Bind fail as core's plan revalidation would.
 */
static void
note_result_change(PoolSession *s, PoolStatement *st)
{
	TupleDesc	desc;
	TupleDesc	was;

	if (st->name[0] == '\0')
		desc = s->unnamed_psrc ? s->unnamed_psrc->resultDesc : NULL;
	else
	{
		PreparedStatement *entry =
			FetchPreparedStatement(bp_statement_key(s, st->name), false);

		desc = entry ? entry->plansource->resultDesc : NULL;
	}
	if (st->result_natts == BP_RESULT_UNKNOWN)
		return;					/* answered ahead: never described */
	was = bp_statement_result_desc(st);
	if ((desc == NULL) != (was == NULL) ||
		(desc != NULL && !equalTupleDescs(desc, was)))
	{
		if (st->name[0] == '\0')
			s->unnamed_changed = true;
		else if (bp_statement_find(st->name))
			bp_statement_find(st->name)->result_changed = true;
	}
}

/*
 * A moved statement that cannot be prepared again here (its table was
 * dropped meanwhile) is stored as core's plan cache keeps it after such an
 * invalidation: its raw parse tree and its result columns, marked invalid.
 * Core then does the rest as in the session's own backend: EXECUTE, Bind
 * and Describe analyze it again and fail with the analysis's error until
 * the table is back, pg_prepared_statements lists it, DEALLOCATE drops it,
 * and result columns that came back changed fail with "cached plan must
 * not change result type".
 */
static void
keep_unprepared(PoolSession *s, PoolStatement *st)
{
	RawStmt    *raw = NULL;
	ListCell   *lc;
	CachedPlanSource *psrc;
	MemoryContext old;

	foreach(lc, pg_parse_query(st->query))
	{
		RawStmt    *r = lfirst_node(RawStmt, lc);

		if (!st->from_sql)
		{
			raw = r;
			break;
		}
		if (r->stmt_location == st->stmt_location && IsA(r->stmt, PrepareStmt))
		{
			/* PrepareQuery's cached plan holds the PREPARE's inner query */
			raw = makeNode(RawStmt);
			raw->stmt = ((PrepareStmt *) r->stmt)->query;
			raw->stmt_location = st->stmt_location;
			raw->stmt_len = st->stmt_len;
			break;
		}
	}
	if (raw == NULL)
		elog(ERROR, "statement \"%s\" not found in its source text", st->name);

	psrc = CreateCachedPlan(raw, st->query, CreateCommandTag(raw->stmt));
	CompleteCachedPlan(psrc, NIL, NULL, st->param_types, st->num_params,
					   NULL, NULL, CURSOR_OPT_PARALLEL_OK, true);
	old = MemoryContextSwitchTo(psrc->context);
	psrc->resultDesc = bp_statement_result_desc(st);
	MemoryContextSwitchTo(old);
	psrc->is_valid = false;

	if (st->name[0] == '\0')
	{
		SaveCachedPlan(psrc);
		s->unnamed_psrc = psrc;
	}
	else
	{
		PoolStatement *kept;

		StorePreparedStatement(bp_statement_key(s, st->name), psrc, st->from_sql);
		kept = bp_statement_remember(st->name, st->query, st->param_types,
									 st->num_params, st->from_sql);
		kept->stmt_location = st->stmt_location;
		kept->stmt_len = st->stmt_len;
		bp_statement_restore_history(s, st);
	}
}

/* Runs keep_unprepared in a transaction of its own; false if that failed */
static bool
try_keep_unprepared(PoolSession *s, PoolStatement *st)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		kept = true;

	PG_TRY();
	{
		bp_start_xact_command();
		keep_unprepared(s, st);
		bp_finish_xact_command();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		AbortCurrentTransaction();
		bp_xact_started = false;
		kept = false;
	}
	PG_END_TRY();
	return kept;
}

void
bp_restore_statements(PoolSession *s)
{
	List	   *moved = s->moved_statements;
	ListCell   *lc;

	if (s->moved_unnamed)
		moved = lappend(moved, s->moved_unnamed);
	s->moved_statements = NIL;
	s->moved_unnamed = NULL;
	foreach(lc, moved)
	{
		PoolStatement *st = lfirst(lc);
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			bp_start_xact_command();
			if (st->from_sql)
				prepare_sql_again(st);
			else
				parse_statement(st->name, st->query, st->param_types,
								st->num_params, false);
			note_result_change(s, st);
			bp_statement_restore_history(s, st);
			bp_finish_xact_command();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			if (st->ahead)
				bp_parse_ahead_failed(s, st->name);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			bp_xact_started = false;
			/* one answered ahead fails at its Bind, then is gone (as core) */
			if (!st->ahead && !try_keep_unprepared(s, st))
				ereport(LOG,
						(errmsg("could not prepare statement \"%s\" again after moving its session: %s",
								st->name, edata->message)));
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
}

/* ---------------------------------------------------------------------
 * Bind
 * ---------------------------------------------------------------------
 */

typedef struct BindParamContext
{
	const char *portal_name;
	int			paramno;		/* 0-based, -1 outside parameter input */
	const char *value;			/* text value, if known */
} BindParamContext;

/* Adds core's CONTEXT line to errors raised while a parameter is read */
static void
bind_param_context(void *arg)
{
	BindParamContext *c = (BindParamContext *) arg;

	if (c->paramno < 0)
		return;
	if (c->value && log_parameter_max_length_on_error != 0)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfoStringQuoted(&buf, c->value,
									 log_parameter_max_length_on_error);
		if (c->portal_name[0] != '\0')
			errcontext("portal \"%s\" parameter $%d = %s",
					   c->portal_name, c->paramno + 1, buf.data);
		else
			errcontext("unnamed portal parameter $%d = %s",
					   c->paramno + 1, buf.data);
		pfree(buf.data);
	}
	else if (c->portal_name[0] != '\0')
		errcontext("portal \"%s\" parameter $%d", c->portal_name, c->paramno + 1);
	else
		errcontext("unnamed portal parameter $%d", c->paramno + 1);
}

/* Reads one parameter value in the given format code */
static Datum
read_param(StringInfo msg, Oid ptype, int16 format, int paramno,
		   BindParamContext *cxt, bool *isnull, char **text_value)
{
	int32		len = pq_getmsgint(msg, 4);
	StringInfoData pbuf;
	char		csave = 0;
	Datum		value;

	*isnull = (len == -1);
	*text_value = NULL;
	if (!*isnull)
	{
		pbuf.data = unconstify(char *, pq_getmsgbytes(msg, len));
		pbuf.maxlen = len + 1;
		pbuf.len = len;
		pbuf.cursor = 0;
		/* the input functions want a terminated string: borrow a byte */
		csave = pbuf.data[len];
		pbuf.data[len] = '\0';
	}

	if (format == 0)
	{
		Oid			typinput;
		Oid			typioparam;
		char	   *str = NULL;

		getTypeInputInfo(ptype, &typinput, &typioparam);
		if (!*isnull)
			str = pg_client_to_server(pbuf.data, len);
		cxt->value = str;
		value = OidInputFunctionCall(typinput, str, typioparam, -1);
		cxt->value = NULL;
		if (str && log_parameter_max_length_on_error != 0)
			*text_value = str;
	}
	else if (format == 1)
	{
		Oid			typreceive;
		Oid			typioparam;

		getTypeBinaryInputInfo(ptype, &typreceive, &typioparam);
		value = OidReceiveFunctionCall(typreceive, *isnull ? NULL : &pbuf,
									   typioparam, -1);
		if (!*isnull && pbuf.cursor != pbuf.len)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("incorrect binary data format in bind parameter %d",
							paramno + 1)));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported format code: %d", format)));

	if (!*isnull)
		pbuf.data[len] = csave;
	return value;
}

/* Reads the parameter values into a ParamListInfo in the portal's memory */
static ParamListInfo
read_params(StringInfo msg, CachedPlanSource *psrc, Portal portal,
			int num_formats, int16 *formats, int num_params)
{
	BindParamContext cxt;
	ErrorContextCallback errcxt;
	ParamListInfo params;
	char	  **known_text = NULL;
	int			i;

	if (num_params == 0)
		return NULL;

	cxt.portal_name = portal->name;
	cxt.paramno = -1;
	cxt.value = NULL;
	errcxt.previous = error_context_stack;
	errcxt.callback = bind_param_context;
	errcxt.arg = &cxt;
	error_context_stack = &errcxt;

	params = makeParamList(num_params);
	for (i = 0; i < num_params; i++)
	{
		int16		format = num_formats > 1 ? formats[i] :
			num_formats == 1 ? formats[0] : 0;
		bool		isnull;
		char	   *text_value;

		cxt.paramno = i;
		params->params[i].value = read_param(msg, psrc->param_types[i], format,
											 i, &cxt, &isnull, &text_value);
		params->params[i].isnull = isnull;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = psrc->param_types[i];
		if (text_value)
		{
			if (known_text == NULL)
				known_text = MemoryContextAllocZero(MessageContext,
													num_params * sizeof(char *));
			known_text[i] = MemoryContextStrdup(MessageContext, text_value);
		}
	}
	error_context_stack = errcxt.previous;

	if (log_parameter_max_length_on_error != 0)
		params->paramValuesStr = BuildParamLogString(params, known_text,
													 log_parameter_max_length_on_error);
	return params;
}

/* 'B': portal, statement, parameter formats and values, result formats */
void
bp_exec_bind(StringInfo msg)
{
	const char *portal_name = pq_getmsgstring(msg);
	const char *stmt_name = pq_getmsgstring(msg);
	CachedPlanSource *psrc = lookup_statement(stmt_name);
	int			num_pformats;
	int16	   *pformats = NULL;
	int			num_params;
	int			num_rformats;
	int16	   *rformats = NULL;
	Portal		portal;
	ParamListInfo params;
	CachedPlan *cplan;
	bool		snapshot_set = false;
	ParamsErrorCbData params_data;
	ErrorContextCallback params_errcxt;
	MemoryContext old;
	char	   *query;
	char	   *saved_name;
	char		msec_str[32];
	int			i;

	/* moved here with other result columns than its client was told */
	if (stmt_name[0] == '\0' ? bp_current->unnamed_changed :
		bp_statement_find(stmt_name) != NULL &&
		bp_statement_find(stmt_name)->result_changed)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached plan must not change result type")));

	debug_query_string = psrc->query_string;
	bp_stab_report_activity(STATE_RUNNING, psrc->query_string);
	set_ps_display("BIND");
	bp_start_xact_command();
	MemoryContextSwitchTo(MessageContext);

	num_pformats = pq_getmsgint(msg, 2);
	if (num_pformats > 0)
	{
		pformats = palloc(num_pformats * sizeof(int16));
		for (i = 0; i < num_pformats; i++)
			pformats[i] = pq_getmsgint(msg, 2);
	}
	num_params = pq_getmsgint(msg, 2);
	if (num_pformats > 1 && num_pformats != num_params)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("bind message has %d parameter formats but %d parameters",
						num_pformats, num_params)));
	if (num_params != psrc->num_params)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("bind message supplies %d parameters, but prepared statement \"%s\" requires %d",
						num_params, stmt_name, psrc->num_params)));

	/* in an aborted block only a parameterless ROLLBACK/COMMIT may run */
	if (IsAbortedTransactionBlockState() &&
		(!(psrc->raw_parse_tree && is_transaction_exit(psrc->raw_parse_tree->stmt)) ||
		 num_params != 0))
		reject_in_aborted_block();

	portal = portal_name[0] == '\0' ?
		CreatePortal(portal_name, true, true) :
		CreatePortal(portal_name, false, false);

	old = MemoryContextSwitchTo(portal->portalContext);
	query = pstrdup(psrc->query_string);
	saved_name = stmt_name[0] ? pstrdup(stmt_name) : NULL;

	if (num_params > 0 ||
		(psrc->raw_parse_tree && analyze_requires_snapshot(psrc->raw_parse_tree)))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snapshot_set = true;
	}
	params = read_params(msg, psrc, portal, num_pformats, pformats, num_params);
	MemoryContextSwitchTo(old);

	params_data.portalName = portal->name;
	params_data.params = params;
	params_errcxt.previous = error_context_stack;
	params_errcxt.callback = ParamsErrorCallback;
	params_errcxt.arg = &params_data;
	error_context_stack = &params_errcxt;

	num_rformats = pq_getmsgint(msg, 2);
	if (num_rformats > 0)
	{
		rformats = palloc(num_rformats * sizeof(int16));
		for (i = 0; i < num_rformats; i++)
			rformats[i] = pq_getmsgint(msg, 2);
	}
	pq_getmsgend(msg);

	cplan = GetCachedPlan(psrc, params, NULL, NULL);
	PortalDefineQuery(portal, saved_name, query, psrc->commandTag,
					  cplan->stmt_list, cplan);
	if (snapshot_set)
		PopActiveSnapshot();
	PortalStart(portal, params, 0, InvalidSnapshot);
	PortalSetResultFormat(portal, num_rformats, rformats);
	error_context_stack = params_errcxt.previous;

	if (whereToSendOutput == DestRemote)
		pq_putemptymessage('2');

	switch (check_log_duration(msec_str, false))
	{
		case 1:
			bp_log_duration(msec_str, NULL, NULL);
			break;
		case 2:
			bp_log_duration(msec_str,
							psprintf("bind %s%s%s: %s",
									 *stmt_name ? stmt_name : "<unnamed>",
									 *portal_name ? "/" : "",
									 *portal_name ? portal_name : "",
									 psrc->query_string),
							params);
			break;
	}
	debug_query_string = NULL;
}

/* ---------------------------------------------------------------------
 * Execute
 * ---------------------------------------------------------------------
 */

/* 'E': portal name, row limit (0 = all) */
void
bp_exec_execute(StringInfo msg)
{
	const char *portal_name = pq_getmsgstring(msg);
	long		max_rows = (long) pq_getmsgint(msg, 4);
	CommandDest dest = whereToSendOutput == DestRemote ? DestRemoteExecute : whereToSendOutput;
	Portal		portal;
	PlannedStmt *utility;
	bool		is_xact_command;
	bool		completed;
	DestReceiver *receiver;
	QueryCompletion qc;
	ParamsErrorCbData params_data;
	ErrorContextCallback params_errcxt;
	const char *source;
	const char *stmt_label;
	ParamListInfo params;
	bool		execute_is_fetch;
	bool		was_logged = false;
	char		msec_str[32];

	pq_getmsgend(msg);
	portal = lookup_portal(portal_name);

	/* an empty query string: EmptyQueryResponse */
	if (portal->commandTag == CMDTAG_UNKNOWN)
	{
		NullCommand(dest);
		return;
	}

	utility = single_utility(portal->stmts);
	is_xact_command = utility && IsA(utility->utilityStmt, TransactionStmt);

	source = pstrdup(portal->sourceText);
	stmt_label = portal->prepStmtName ? pstrdup(portal->prepStmtName) : "<unnamed>";
	params = portal->portalParams;
	debug_query_string = source;
	bp_stab_report_activity(STATE_RUNNING, portal->sourceText);
	set_ps_display(GetCommandTagName(portal->commandTag));
	BeginCommand(portal->commandTag, dest);

	receiver = CreateDestReceiver(dest);
	if (dest == DestRemoteExecute)
		SetRemoteDestReceiverParams(receiver, portal);

	bp_start_xact_command();

	execute_is_fetch = !portal->atStart;
	if (bp_statement_needs_logging(portal->stmts))
	{
		ereport(LOG,
				(errmsg("%s %s%s%s: %s",
						execute_is_fetch ? _("execute fetch from") : _("execute"),
						stmt_label, *portal_name ? "/" : "",
						*portal_name ? portal_name : "", source),
				 errhidestmt(true),
				 bp_errdetail_params(params)));
		was_logged = true;
	}

	if (IsAbortedTransactionBlockState() &&
		!(utility && is_transaction_exit(utility->utilityStmt)))
		reject_in_aborted_block();
	CHECK_FOR_INTERRUPTS();

	params_data.portalName = portal->name;
	params_data.params = portal->portalParams;
	params_errcxt.previous = error_context_stack;
	params_errcxt.callback = ParamsErrorCallback;
	params_errcxt.arg = &params_data;
	error_context_stack = &params_errcxt;

	if (max_rows <= 0)
		max_rows = FETCH_ALL;
	completed = PortalRun(portal, max_rows, true, true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	error_context_stack = params_errcxt.previous;

	if (completed)
	{
		if (is_xact_command || (MyXactFlags & XACT_FLAGS_NEEDIMMEDIATECOMMIT))
		{
			bp_finish_xact_command();
			params = NULL;		/* freed with the portal at commit */
		}
		else
		{
			CommandCounterIncrement();
			MyXactFlags |= XACT_FLAGS_PIPELINING;
			bp_disable_statement_timeout();
		}
		EndCommand(&qc, dest, false);
	}
	else
	{
		if (whereToSendOutput == DestRemote)
			pq_putemptymessage('s');
		MyXactFlags |= XACT_FLAGS_PIPELINING;
	}

	switch (check_log_duration(msec_str, was_logged))
	{
		case 1:
			bp_log_duration(msec_str, NULL, NULL);
			break;
		case 2:
			bp_log_duration(msec_str,
							psprintf("%s %s%s%s: %s",
									 execute_is_fetch ? _("execute fetch from") : _("execute"),
									 stmt_label, *portal_name ? "/" : "",
									 *portal_name ? portal_name : "", source),
							params);
			break;
	}
	debug_query_string = NULL;
}

/* ---------------------------------------------------------------------
 * Describe and Close
 * ---------------------------------------------------------------------
 */

static void
describe_statement(const char *name)
{
	CachedPlanSource *psrc = lookup_statement(name);
	StringInfo	buf = row_description();
	int			i;

	if (IsAbortedTransactionBlockState() && psrc->resultDesc)
		reject_in_aborted_block();
	if (whereToSendOutput != DestRemote)
		return;

	pq_beginmessage_reuse(buf, 't');
	pq_sendint16(buf, psrc->num_params);
	for (i = 0; i < psrc->num_params; i++)
		pq_sendint32(buf, (int) psrc->param_types[i]);
	pq_endmessage_reuse(buf);

	if (psrc->resultDesc)
		SendRowDescriptionMessage(buf, psrc->resultDesc,
								  CachedPlanGetTargetList(psrc, NULL), NULL);
	else
		pq_putemptymessage('n');
}

static void
describe_portal(const char *name)
{
	Portal		portal = lookup_portal(name);

	if (IsAbortedTransactionBlockState() && portal->tupDesc)
		reject_in_aborted_block();
	if (whereToSendOutput != DestRemote)
		return;

	if (portal->tupDesc)
		SendRowDescriptionMessage(row_description(), portal->tupDesc,
								  FetchPortalTargetList(portal), portal->formats);
	else
		pq_putemptymessage('n');
}

/* 'D': 'S' statement or 'P' portal, name */
void
bp_exec_describe(StringInfo msg)
{
	int			kind = pq_getmsgbyte(msg);
	const char *name = pq_getmsgstring(msg);

	pq_getmsgend(msg);
	bp_start_xact_command();
	MemoryContextSwitchTo(MessageContext);

	if (kind == 'S')
		describe_statement(name);
	else if (kind == 'P')
		describe_portal(name);
	else
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid DESCRIBE message subtype %d", kind)));
}

/* 'C': 'S' statement or 'P' portal, name; closing what is absent is no error */
void
bp_exec_close(StringInfo msg)
{
	int			kind = pq_getmsgbyte(msg);
	const char *name = pq_getmsgstring(msg);

	pq_getmsgend(msg);
	bp_start_xact_command();

	if (kind == 'S')
	{
		if (name[0] == '\0')
			bp_drop_unnamed_statement();
		else
		{
			DropPreparedStatement(bp_statement_key(bp_current, name), false);
			bp_statement_forget(name);
			bp_parse_ahead_forget(bp_current, name);
		}
	}
	else if (kind == 'P')
	{
		Portal		portal = GetPortalByName(name);

		if (PortalIsValid(portal))
			PortalDrop(portal, false);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("invalid CLOSE message subtype %d", kind)));

	if (whereToSendOutput == DestRemote)
		pq_putemptymessage('3');
}
