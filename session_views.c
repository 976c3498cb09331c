/*-------------------------------------------------------------------------
 *
 * session_views.c
 *	  System views that would show an executor's state rather than the
 *	  session's: pg_prepared_statements and pg_settings through the pool.
 *
 * Both views are scans of a set-returning function (pg_prepared_statement(),
 * pg_show_all_settings()) that reads per-process state.  In an executor
 * serving a session, such a scan is planned as a custom scan instead: it
 * calls core's function and rewrites its rows for the calling session.
 * Every other column is core's own.  This needs no SQL object of the
 * extension, so it holds in every database.
 *
 * pg_prepared_statements: prepared.c stores each session's statements
 * under a per-session key in core's one table; the scan keeps the calling
 * session's rows and gives them back their client names, generic_plans and
 * custom_plans included.  Any other call of pg_prepared_statement() (in a
 * target list, in ROWS FROM with other functions) would read core's whole
 * table: a planner hook refuses such a query through the pool, rather than
 * show one session another's statements.
 *
 * pg_settings: the executor applies a session's startup options as session
 * values (they must be undone for the next session), where core makes them
 * the reset values, from source "client".  The scan shows them as core
 * would (session.c computes the values).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planner.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/fmgroids.h"
#include "utils/tuplestore.h"

#include "prepared.h"
#include "session.h"
#include "session_views.h"

#define SCAN_NAME	"pool session view"

/*
 * Rewrites one of core's rows for the current session; false drops it.
 * values are core's row, in the query's memory.
 */
typedef bool (*RowFixer) (Datum *values, bool *nulls, int natts);

/*
 * Puts the fixed rows (HeapTuples of core's row type) in the order the
 * session's own backend would have returned them; NULL keeps core's.
 */
typedef List *(*RowOrder) (List *rows, TupleDesc desc);

static bool fix_statement_row(Datum *values, bool *nulls, int natts);
static List *order_statement_rows(List *rows, TupleDesc desc);
static bool fix_setting_row(Datum *values, bool *nulls, int natts);

/* The functions whose scans are ours, by their fixed OIDs */
typedef struct SessionView
{
	Oid			funcid;
	RowFixer	fix;
	RowOrder	order;
} SessionView;

static const SessionView session_views[] =
{
	{F_PG_PREPARED_STATEMENT, fix_statement_row, order_statement_rows},
	{F_PG_SHOW_ALL_SETTINGS, fix_setting_row, NULL},
};

typedef struct SessionViewState
{
	CustomScanState css;
	const SessionView *view;
	Tuplestorestate *rows;		/* the session's rows, NULL until read */
	TupleTableSlot *read_slot;	/* a row of them (the scan slot is virtual) */
} SessionViewState;

static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;
static planner_hook_type prev_planner = NULL;

static Plan *plan_view_scan(PlannerInfo *root, RelOptInfo *rel,
								  CustomPath *best_path, List *tlist,
								  List *clauses, List *custom_plans);
static Node *create_view_state(CustomScan *cscan);
static void begin_view_scan(CustomScanState *node, EState *estate,
								  int eflags);
static TupleTableSlot *exec_view_scan(CustomScanState *node);
static void end_view_scan(CustomScanState *node);
static void rescan_view_scan(CustomScanState *node);

static const CustomPathMethods path_methods = {
	.CustomName = SCAN_NAME,
	.PlanCustomPath = plan_view_scan,
};

static const CustomScanMethods scan_methods = {
	.CustomName = SCAN_NAME,
	.CreateCustomScanState = create_view_state,
};

static const CustomExecMethods exec_methods = {
	.CustomName = SCAN_NAME,
	.BeginCustomScan = begin_view_scan,
	.ExecCustomScan = exec_view_scan,
	.EndCustomScan = end_view_scan,
	.ReScanCustomScan = rescan_view_scan,
};

/* ---------------------------------------------------------------------
 * Planning
 * ---------------------------------------------------------------------
 */

/* The function of a FROM item that is one function alone, or InvalidOid */
static Oid
sole_function(RangeTblEntry *rte)
{
	RangeTblFunction *rtfunc;

	if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1)
		return InvalidOid;
	rtfunc = linitial(rte->functions);
	if (!IsA(rtfunc->funcexpr, FuncExpr))
		return InvalidOid;
	return ((FuncExpr *) rtfunc->funcexpr)->funcid;
}

/* Our view of a function, NULL if none */
static const SessionView *
view_for(Oid funcid)
{
	int			i;

	for (i = 0; i < lengthof(session_views); i++)
	{
		if (session_views[i].funcid == funcid)
			return &session_views[i];
	}
	return NULL;
}

/* The view a FROM item reads, NULL if none of ours */
static const SessionView *
view_of(RangeTblEntry *rte)
{
	return view_for(sole_function(rte));
}

/* Counts the FROM items that are pg_prepared_statement() alone */
static bool
count_scans(Node *node, int *count)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		if (sole_function((RangeTblEntry *) node) == F_PG_PREPARED_STATEMENT)
			(*count)++;
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, count_scans, count,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, count_scans, count);
}

/* Counts the calls of pg_prepared_statement(), wherever they are */
static bool
count_calls(Node *node, int *count)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) &&
		((FuncExpr *) node)->funcid == F_PG_PREPARED_STATEMENT)
		(*count)++;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, count_calls, count, 0);
	return expression_tree_walker(node, count_calls, count);
}

/*
 * planner_hook: a call of pg_prepared_statement() that this scan would not
 * serve is refused through the pool.
 */
static PlannedStmt *
pool_planner(Query *parse, const char *query_string, int cursorOptions,
			 ParamListInfo boundParams)
{
	if (bp_current != NULL)
	{
		int			calls = 0;
		int			scans = 0;

		(void) count_calls((Node *) parse, &calls);
		if (calls > 0)
			(void) count_scans((Node *) parse, &scans);
		if (calls > scans)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("pg_prepared_statement() can only be read alone in FROM through builtin_pool"),
					 errhint("Read the view pg_prepared_statements.")));
	}
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/*
 * set_rel_pathlist_hook: the function scan core planned is replaced by
 * ours, at the same cost (it does the same work and a little filtering).
 */
static void
pool_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti,
					  RangeTblEntry *rte)
{
	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);

	if (bp_current != NULL && rel->pathlist != NIL && view_of(rte) != NULL)
	{
		Path	   *core = linitial(rel->pathlist);
		CustomPath *path = makeNode(CustomPath);

		path->path.pathtype = T_CustomScan;
		path->path.parent = rel;
		path->path.pathtarget = rel->reltarget;
		path->path.param_info = core->param_info;
		path->path.rows = core->rows;
		path->path.startup_cost = core->startup_cost;
		path->path.total_cost = core->total_cost;
		path->methods = &path_methods;
		rel->pathlist = NIL;
		rel->partial_pathlist = NIL;
		add_path(rel, &path->path);
	}
}

/*
 * The scan produces the function's whole row (custom_scan_tlist, one Var
 * per column); setrefs points the plan's targetlist and quals at it.
 */
static Plan *
plan_view_scan(PlannerInfo *root, RelOptInfo *rel,
					 CustomPath *best_path, List *tlist, List *clauses,
					 List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);
	RangeTblEntry *rte = planner_rt_fetch(rel->relid, root);
	RangeTblFunction *rtfunc = linitial(rte->functions);
	TupleDesc	desc;
	List	   *scan_tlist = NIL;
	int			i;

	if (get_expr_result_type(rtfunc->funcexpr, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "function %u does not return a row", sole_function(rte));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Var		   *var = makeVar(rel->relid, i + 1, att->atttypid,
								  att->atttypmod, att->attcollation, 0);

		scan_tlist = lappend(scan_tlist,
							 makeTargetEntry((Expr *) var, i + 1,
											 pstrdup(NameStr(att->attname)),
											 false));
	}
	if (rte->funcordinality)
		scan_tlist = lappend(scan_tlist,
							 makeTargetEntry((Expr *) makeVar(rel->relid, i + 1,
															  INT8OID, -1,
															  InvalidOid, 0),
											 i + 1, pstrdup("ordinality"),
											 false));

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = extract_actual_clauses(clauses, false);
	cscan->scan.scanrelid = 0;	/* not a relation: rows come from us */
	cscan->custom_scan_tlist = scan_tlist;
	cscan->custom_private = list_make1_oid(sole_function(rte));
	cscan->methods = &scan_methods;
	return &cscan->scan.plan;
}

/* ---------------------------------------------------------------------
 * Execution
 * ---------------------------------------------------------------------
 */

static Node *
create_view_state(CustomScan *cscan)
{
	SessionViewState *state = (SessionViewState *)
		newNode(sizeof(SessionViewState), T_CustomScanState);

	Oid			funcid = linitial_oid(cscan->custom_private);

	state->css.methods = &exec_methods;
	state->view = view_for(funcid);
	if (state->view == NULL)
		elog(ERROR, "no session view for function %u", funcid);
	return (Node *) state;
}

static void
begin_view_scan(CustomScanState *node, EState *estate, int eflags)
{
	SessionViewState *state = (SessionViewState *) node;

	state->rows = NULL;
	state->read_slot = ExecInitExtraTupleSlot(estate,
											  node->ss.ss_ScanTupleSlot->tts_tupleDescriptor,
											  &TTSOpsMinimalTuple);
}

/*
 * Core's rows of the view's function (no arguments), in the current
 * memory context, which lasts as long as the query: a function may return
 * them all at once (pg_prepared_statement()) or one per call
 * (pg_show_all_settings()).  A value-per-call function keeps its flinfo
 * and ReturnSetInfo until its last call, and its shutdown callback until
 * the scan's ExprContext goes: they are palloc'd, not on the stack.
 */
static Tuplestorestate *
core_rows(Oid funcid, ExprContext *econtext, TupleDesc *desc)
{
	LOCAL_FCINFO(fcinfo, 0);
	FmgrInfo   *flinfo = palloc0(sizeof(FmgrInfo));
	ReturnSetInfo *rsinfo = makeNode(ReturnSetInfo);
	Tuplestorestate *rows = NULL;

	rsinfo->econtext = econtext;
	rsinfo->allowedModes = SFRM_Materialize | SFRM_ValuePerCall;
	rsinfo->returnMode = SFRM_ValuePerCall;
	fmgr_info(funcid, flinfo);
	InitFunctionCallInfoData(*fcinfo, flinfo, 0, InvalidOid, NULL,
							 (Node *) rsinfo);
	if (get_func_result_type(funcid, NULL, desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "function %u does not return a row", funcid);

	for (;;)
	{
		Datum		result;
		HeapTupleData tuple;

		rsinfo->isDone = ExprSingleResult;
		fcinfo->isnull = false;
		result = FunctionCallInvoke(fcinfo);
		if (rsinfo->returnMode == SFRM_Materialize)
		{
			if (rsinfo->setResult == NULL)
				elog(ERROR, "function %u did not return its rows", funcid);
			*desc = rsinfo->setDesc;
			return rsinfo->setResult;
		}
		if (rsinfo->isDone == ExprEndResult)
			break;
		if (rows == NULL)
			rows = tuplestore_begin_heap(false, false, work_mem);
		if (fcinfo->isnull)
			elog(ERROR, "function %u returned a null row", funcid);
		tuple.t_data = DatumGetHeapTupleHeader(result);
		tuple.t_len = HeapTupleHeaderGetDatumLength(tuple.t_data);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuplestore_puttuple(rows, &tuple);
	}
	return rows ? rows : tuplestore_begin_heap(false, false, work_mem);
}

/*
 * pg_prepared_statement(): the calling session's rows under their client
 * names.
 */
static bool
fix_statement_row(Datum *values, bool *nulls, int natts)
{
	char	   *key = TextDatumGetCString(values[0]);
	char	   *prefix = bp_statement_key(bp_current, "");

	if (strncmp(key, prefix, strlen(prefix)) != 0)
		return false;
	values[0] = CStringGetTextDatum(bp_statement_client_name(bp_current, key));
	return true;
}

/*
 * Core lists prepared statements in the order of its hash table of them.
 * The executor's table holds every session's statements under keys, so its
 * order is not the one the session's own backend would show: rebuild a
 * table of the same shape (prepare.c's: NAMEDATALEN string keys, 32
 * entries to start) with the session's names, in the order it prepared
 * them, and read it back.
 */
typedef struct StatementOrderEntry
{
	char		name[NAMEDATALEN];
	HeapTuple	row;
} StatementOrderEntry;

static List *
order_statement_rows(List *rows, TupleDesc desc)
{
	HASHCTL		ctl;
	HTAB	   *table;
	HASH_SEQ_STATUS seq;
	StatementOrderEntry *entry;
	List	   *ordered = NIL;
	ListCell   *lc;

	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(StatementOrderEntry);
	ctl.hcxt = CurrentMemoryContext;
	table = hash_create("pool statement order", 32, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	foreach(lc, bp_current->statements)
	{
		PoolStatement *st = lfirst(lc);
		char		name[NAMEDATALEN];
		ListCell   *rc;

		strlcpy(name, st->name, NAMEDATALEN);
		foreach(rc, rows)
		{
			HeapTuple	row = lfirst(rc);
			bool		isnull;
			Datum		d = heap_getattr(row, 1, desc, &isnull);

			if (isnull || strcmp(TextDatumGetCString(d), name) != 0)
				continue;
			entry = hash_search(table, name, HASH_ENTER, NULL);
			entry->row = row;
			rows = foreach_delete_current(rows, rc);
			break;
		}
	}
	hash_seq_init(&seq, table);
	while ((entry = hash_seq_search(&seq)) != NULL)
		ordered = lappend(ordered, entry->row);
	hash_destroy(table);
	return list_concat(ordered, rows);	/* none should be left */
}

/*
 * pg_show_all_settings(): a startup option's reset_val is its startup
 * value, and while it is in force its source is "client", as in core.
 */
static bool
fix_setting_row(Datum *values, bool *nulls, int natts)
{
	enum
	{
		NAME = 0, SETTING = 1, SOURCE = 8, RESET_VAL = 13, SOURCEFILE = 14,
		SOURCELINE = 15
	};
	char	   *startup;

	Assert(natts > SOURCELINE);
	startup = bp_setting_startup_value(bp_current, TextDatumGetCString(values[NAME]));
	if (startup == NULL)
		return true;
	values[RESET_VAL] = CStringGetTextDatum(startup);
	nulls[RESET_VAL] = false;
	if (!nulls[SOURCE] && !nulls[SETTING] &&
		strcmp(TextDatumGetCString(values[SOURCE]), "session") == 0 &&
		strcmp(TextDatumGetCString(values[SETTING]), startup) == 0)
	{
		values[SOURCE] = CStringGetTextDatum("client");
		nulls[SOURCEFILE] = true;
		nulls[SOURCELINE] = true;
	}
	return true;
}

/* The calling session's rows, as the view's fixer makes them */
static Tuplestorestate *
session_rows(SessionViewState *state)
{
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	TupleDesc	out_desc = state->css.ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_query_memory);
	TupleDesc	core_desc;
	Tuplestorestate *core = core_rows(state->view->funcid, econtext, &core_desc);
	Tuplestorestate *mine = tuplestore_begin_heap(false, false, work_mem);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(core_desc,
													&TTSOpsMinimalTuple);
	Datum	   *values = palloc(out_desc->natts * sizeof(Datum));
	bool	   *nulls = palloc0(out_desc->natts * sizeof(bool));
	int64		ordinality = 0;
	List	   *rows = NIL;
	ListCell   *lc;

	/* out_desc has one column more WITH ORDINALITY */
	Assert(out_desc->natts - core_desc->natts <= 1);
	while (tuplestore_gettupleslot(core, true, false, slot))
	{
		slot_getallattrs(slot);
		memcpy(values, slot->tts_values, core_desc->natts * sizeof(Datum));
		memcpy(nulls, slot->tts_isnull, core_desc->natts * sizeof(bool));
		if (state->view->fix(values, nulls, core_desc->natts))
			rows = lappend(rows, heap_form_tuple(core_desc, values, nulls));
	}
	ExecDropSingleTupleTableSlot(slot);
	if (state->view->order)
		rows = state->view->order(rows, core_desc);
	foreach(lc, rows)
	{
		heap_deform_tuple(lfirst(lc), core_desc, values, nulls);
		if (out_desc->natts > core_desc->natts)
		{
			values[core_desc->natts] = Int64GetDatum(++ordinality);
			nulls[core_desc->natts] = false;
		}
		tuplestore_putvalues(mine, out_desc, values, nulls);
	}
	tuplestore_end(core);
	MemoryContextSwitchTo(old);
	return mine;
}

static TupleTableSlot *
next_row(ScanState *node)
{
	SessionViewState *state = (SessionViewState *) node;
	TupleTableSlot *slot = node->ss_ScanTupleSlot;

	if (state->rows == NULL)
		state->rows = session_rows(state);
	if (!tuplestore_gettupleslot(state->rows, true, false, state->read_slot))
		return ExecClearTuple(slot);
	return ExecCopySlot(slot, state->read_slot);
}

static bool
recheck_row(ScanState *node, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
exec_view_scan(CustomScanState *node)
{
	return ExecScan(&node->ss, next_row, recheck_row);
}

static void
end_view_scan(CustomScanState *node)
{
	SessionViewState *state = (SessionViewState *) node;

	if (state->rows)
		tuplestore_end(state->rows);
	state->rows = NULL;
}

/* A rescan reads the table again, as a function scan calls again */
static void
rescan_view_scan(CustomScanState *node)
{
	end_view_scan(node);
	ExecScanReScan(&node->ss);
}

/* Executors only, so the main port is untouched */
void
bp_session_views_init(void)
{
	RegisterCustomScanMethods(&scan_methods);
	prev_planner = planner_hook;
	planner_hook = pool_planner;
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = pool_set_rel_pathlist;
}
