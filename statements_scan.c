/*-------------------------------------------------------------------------
 *
 * statements_scan.c
 *	  pg_prepared_statements through the pool: a custom scan that shows a
 *	  session its own prepared statements under the names it gave them.
 *
 * Core lists every statement of the process from one table (prepare.c),
 * where prepared.c stores each session's statements under a per-session
 * key.  Read as it is, pg_prepared_statements would show a session the
 * statements of every session of its executor, under internal names.  So
 * in an executor, a scan of pg_prepared_statement() -- the function behind
 * the view -- is planned as this custom scan instead: it calls core's
 * function, keeps the rows of the calling session and gives them back their
 * client names.  Every column, generic_plans and custom_plans included, is
 * core's own.  This needs nothing in the database: no SQL object of the
 * extension, so it holds in every database.
 *
 * The scan is planned only in an executor serving a session, for the
 * function alone in its FROM item (WITH ORDINALITY or not).  Any other call
 * of pg_prepared_statement() (in a target list, in ROWS FROM with other
 * functions) would read core's whole table: a planner hook refuses such a
 * query through the pool, rather than show one session another's
 * statements.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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
#include "utils/fmgroids.h"
#include "utils/tuplestore.h"

#include "prepared.h"
#include "session.h"
#include "statements_scan.h"

#define SCAN_NAME	"pool prepared statements"

typedef struct StatementsScanState
{
	CustomScanState css;
	Tuplestorestate *rows;		/* the session's rows, NULL until read */
	TupleTableSlot *read_slot;	/* a row of them (the scan slot is virtual) */
} StatementsScanState;

static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;
static planner_hook_type prev_planner = NULL;

static Plan *plan_statements_scan(PlannerInfo *root, RelOptInfo *rel,
								  CustomPath *best_path, List *tlist,
								  List *clauses, List *custom_plans);
static Node *create_statements_state(CustomScan *cscan);
static void begin_statements_scan(CustomScanState *node, EState *estate,
								  int eflags);
static TupleTableSlot *exec_statements_scan(CustomScanState *node);
static void end_statements_scan(CustomScanState *node);
static void rescan_statements_scan(CustomScanState *node);

static const CustomPathMethods path_methods = {
	.CustomName = SCAN_NAME,
	.PlanCustomPath = plan_statements_scan,
};

static const CustomScanMethods scan_methods = {
	.CustomName = SCAN_NAME,
	.CreateCustomScanState = create_statements_state,
};

static const CustomExecMethods exec_methods = {
	.CustomName = SCAN_NAME,
	.BeginCustomScan = begin_statements_scan,
	.ExecCustomScan = exec_statements_scan,
	.EndCustomScan = end_statements_scan,
	.ReScanCustomScan = rescan_statements_scan,
};

/* ---------------------------------------------------------------------
 * Planning
 * ---------------------------------------------------------------------
 */

/* A FROM item that is pg_prepared_statement() alone */
static bool
is_statements_scan(RangeTblEntry *rte)
{
	RangeTblFunction *rtfunc;

	if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1)
		return false;
	rtfunc = linitial(rte->functions);
	return IsA(rtfunc->funcexpr, FuncExpr) &&
		((FuncExpr *) rtfunc->funcexpr)->funcid == F_PG_PREPARED_STATEMENT;
}

/* Counts the FROM items that are pg_prepared_statement() alone */
static bool
count_scans(Node *node, int *count)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		if (is_statements_scan((RangeTblEntry *) node))
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

	if (bp_current != NULL && rel->pathlist != NIL && is_statements_scan(rte))
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
plan_statements_scan(PlannerInfo *root, RelOptInfo *rel,
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
		elog(ERROR, "pg_prepared_statement() does not return a row");
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
	cscan->methods = &scan_methods;
	return &cscan->scan.plan;
}

/* ---------------------------------------------------------------------
 * Execution
 * ---------------------------------------------------------------------
 */

static Node *
create_statements_state(CustomScan *cscan)
{
	StatementsScanState *state = (StatementsScanState *)
		newNode(sizeof(StatementsScanState), T_CustomScanState);

	state->css.methods = &exec_methods;
	return (Node *) state;
}

static void
begin_statements_scan(CustomScanState *node, EState *estate, int eflags)
{
	StatementsScanState *state = (StatementsScanState *) node;

	state->rows = NULL;
	state->read_slot = ExecInitExtraTupleSlot(estate,
											  node->ss.ss_ScanTupleSlot->tts_tupleDescriptor,
											  &TTSOpsMinimalTuple);
}

/* Core's rows of pg_prepared_statement(), in the query's memory */
static Tuplestorestate *
core_rows(ExprContext *econtext, TupleDesc *desc)
{
	LOCAL_FCINFO(fcinfo, 0);
	FmgrInfo	flinfo;
	ReturnSetInfo rsinfo;

	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = econtext;
	rsinfo.allowedModes = SFRM_Materialize;
	rsinfo.returnMode = SFRM_ValuePerCall;
	fmgr_info(F_PG_PREPARED_STATEMENT, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL,
							 (Node *) &rsinfo);
	(void) FunctionCallInvoke(fcinfo);
	if (rsinfo.returnMode != SFRM_Materialize || rsinfo.setResult == NULL)
		elog(ERROR, "pg_prepared_statement() did not return its rows");
	*desc = rsinfo.setDesc;
	return rsinfo.setResult;
}

/*
 * The calling session's rows under their client names.  A key not among
 * the session's recorded statements (none should be) shows without its
 * prefix.
 */
static Tuplestorestate *
session_rows(StatementsScanState *state)
{
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	TupleDesc	out_desc = state->css.ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_query_memory);
	TupleDesc	core_desc;
	Tuplestorestate *core = core_rows(econtext, &core_desc);
	Tuplestorestate *mine = tuplestore_begin_heap(false, false, work_mem);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(core_desc,
													&TTSOpsMinimalTuple);
	char	   *prefix = bp_statement_key(bp_current, "");
	int			prefix_len = strlen(prefix);
	Datum	   *values = palloc(out_desc->natts * sizeof(Datum));
	bool	   *nulls = palloc0(out_desc->natts * sizeof(bool));
	int64		ordinality = 0;

	/* out_desc has one column more WITH ORDINALITY */
	Assert(out_desc->natts - core_desc->natts <= 1);
	while (tuplestore_gettupleslot(core, true, false, slot))
	{
		char	   *key;

		slot_getallattrs(slot);
		key = TextDatumGetCString(slot->tts_values[0]);
		if (strncmp(key, prefix, prefix_len) != 0)
			continue;
		memcpy(values, slot->tts_values, core_desc->natts * sizeof(Datum));
		memcpy(nulls, slot->tts_isnull, core_desc->natts * sizeof(bool));
		values[0] = CStringGetTextDatum(bp_statement_client_name(bp_current, key));
		if (out_desc->natts > core_desc->natts)
			values[core_desc->natts] = Int64GetDatum(++ordinality);
		tuplestore_putvalues(mine, out_desc, values, nulls);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(core);
	MemoryContextSwitchTo(old);
	return mine;
}

static TupleTableSlot *
next_row(ScanState *node)
{
	StatementsScanState *state = (StatementsScanState *) node;
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
exec_statements_scan(CustomScanState *node)
{
	return ExecScan(&node->ss, next_row, recheck_row);
}

static void
end_statements_scan(CustomScanState *node)
{
	StatementsScanState *state = (StatementsScanState *) node;

	if (state->rows)
		tuplestore_end(state->rows);
	state->rows = NULL;
}

/* A rescan reads the table again, as a function scan calls again */
static void
rescan_statements_scan(CustomScanState *node)
{
	end_statements_scan(node);
	ExecScanReScan(&node->ss);
}

/* Executors only, so the main port is untouched */
void
bp_statements_scan_init(void)
{
	RegisterCustomScanMethods(&scan_methods);
	prev_planner = planner_hook;
	planner_hook = pool_planner;
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = pool_set_rel_pathlist;
}
