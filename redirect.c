/*-------------------------------------------------------------------------
 *
 * redirect.c
 *	  Points calls of core functions whose state core keeps per process at
 *	  per-session versions, in every plan an executor makes, in every
 *	  database, whether or not the extension's SQL objects exist there.
 *
 * Sequences: nextval(), currval(), lastval(), setval() and identity
 * columns' next values (NextValueExpr) go to sequences.c.  Settings:
 * current_setting() goes to bp_current_setting() (session.c), which does
 * not show a session the custom placeholders other sessions created.
 *
 * How a call reaches our code without a pg_proc entry of ours.  Core calls
 * built-in functions straight from its table, never through a hook; but a
 * function defined in SQL is looked up in pg_proc, and when the
 * needs_fmgr_hook says so, it is called through fmgr_security_definer(),
 * which lets fmgr_hook see, before each call, the FmgrInfo it is about to
 * call.  So the planner hook rewrites each redirected call into a call of
 * a "carrier": a SQL-language function that every PostgreSQL 15 database
 * has under a fixed OID and whose volatility matches -- pg_relation_size
 * (regclass), volatile, for the sequence functions; obj_description(oid),
 * stable, for current_setting() -- with a leading integer constant naming
 * what is carried, then the call's own arguments.  At the call, fmgr_hook
 * recognises the marked constant and points the FmgrInfo at
 * carried_call(), which strips it and calls our function.  A carrier call
 * the rewrite did not make (a user's pg_relation_size()) is left alone.
 *
 * The rewrite happens after the rewriter (so column defaults are there)
 * and before planning; a walk first checks whether there is anything to
 * rewrite, so most plans are not copied.  A rewritten plan never runs in
 * parallel: workers do not carry our hooks.  Nothing happens outside an
 * executor's session.  The plan of a top-level EXPLAIN without ANALYZE is
 * left as it is, so that it shows the functions the query names.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "pgstat.h"
#include "utils/fmgroids.h"

#include "redirect.h"
#include "sequences.h"
#include "session.h"

/* the carriers, by their fixed OIDs */
#define CARRIER_VOLATILE	F_PG_RELATION_SIZE_REGCLASS
#define CARRIER_STABLE		F_OBJ_DESCRIPTION_OID

/* typmod of the marking constant: no user call has an int4 of this typmod */
#define CARRIED_TYPMOD		0x62700000

/*
 * What we redirect.  The index in this table is what the marking constant
 * carries.  core InvalidOid: an identity column's NextValueExpr.
 */
typedef struct Redirect
{
	Oid			core;
	Oid			carrier;
	PGFunction	ours;
} Redirect;

static const Redirect redirects[] =
{
	{F_NEXTVAL, CARRIER_VOLATILE, bp_nextval},
	{F_CURRVAL, CARRIER_VOLATILE, bp_currval},
	{F_LASTVAL, CARRIER_VOLATILE, bp_lastval},
	{F_SETVAL_REGCLASS_INT8, CARRIER_VOLATILE, bp_setval},
	{F_SETVAL_REGCLASS_INT8_BOOL, CARRIER_VOLATILE, bp_setval3},
	{F_CURRENT_SETTING_TEXT, CARRIER_STABLE, bp_current_setting},
	{F_CURRENT_SETTING_TEXT_BOOL, CARRIER_STABLE, bp_current_setting},
	{InvalidOid, CARRIER_VOLATILE, bp_identity_nextval},
};

#define IDENTITY_NEXTVAL	(lengthof(redirects) - 1)

static planner_hook_type prev_planner = NULL;
static needs_fmgr_hook_type prev_needs_fmgr = NULL;
static fmgr_hook_type prev_fmgr = NULL;

/* planner calls under way, and whether the outermost plans an EXPLAIN */
static int	planner_depth = 0;
static bool explain_only = false;

/* ---------------------------------------------------------------------
 * Rewriting a plan's calls
 * ---------------------------------------------------------------------
 */

/* Index in redirects[] of a core function, -1 if not redirected */
static int
redirect_of(Oid funcid)
{
	int			i;

	for (i = 0; i < IDENTITY_NEXTVAL; i++)
	{
		if (redirects[i].core == funcid)
			return i;
	}
	return -1;
}

static bool
has_redirects(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, has_redirects, context, 0);
	if (IsA(node, NextValueExpr))
		return true;
	if (IsA(node, FuncExpr) && redirect_of(((FuncExpr *) node)->funcid) >= 0)
		return true;
	return expression_tree_walker(node, has_redirects, context);
}

/* A carrier call of redirects[which] with args after the marking constant */
static FuncExpr *
carried(int which, Oid resulttype, List *args, Oid funccollid,
		Oid inputcollid, int location)
{
	Const	   *mark = makeConst(INT4OID, CARRIED_TYPMOD, InvalidOid,
								 sizeof(int32), Int32GetDatum(which),
								 false, true);
	FuncExpr   *call = makeFuncExpr(redirects[which].carrier, resulttype,
									lcons(mark, args), funccollid,
									inputcollid, COERCE_EXPLICIT_CALL);

	call->location = location;
	return call;
}

/* An identity column's NextValueExpr as a carried call */
static Node *
identity_call(NextValueExpr *nve)
{
	Const	   *seq = makeConst(REGCLASSOID, -1, InvalidOid, sizeof(Oid),
								ObjectIdGetDatum(nve->seqid), false, true);
	FuncExpr   *call = carried(IDENTITY_NEXTVAL, INT8OID, list_make1(seq),
							   InvalidOid, InvalidOid, -1);

	if (nve->typeId == INT8OID)
		return (Node *) call;
	/* smallint and integer identities: the sequence's bounds fit the type */
	return (Node *) makeFuncExpr(nve->typeId == INT4OID ? F_INT4_INT8 : F_INT2_INT8,
								 nve->typeId, list_make1(call), InvalidOid,
								 InvalidOid, COERCE_IMPLICIT_CAST);
}

static Node *
point_at_ours(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Query))
		return (Node *) query_tree_mutator((Query *) node, point_at_ours,
										   context, 0);
	if (IsA(node, NextValueExpr))
		return identity_call((NextValueExpr *) node);
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) expression_tree_mutator(node, point_at_ours,
															 context);
		int			which = redirect_of(f->funcid);

		if (which >= 0)
			return (Node *) carried(which, f->funcresulttype, f->args,
									f->funccollid, f->inputcollid,
									f->location);
		return (Node *) f;
	}
	return expression_tree_mutator(node, point_at_ours, context);
}

static PlannedStmt *
pool_planner(Query *parse, const char *query_string, int cursorOptions,
			 ParamListInfo boundParams)
{
	PlannedStmt *result;
	bool		display_only = explain_only && planner_depth == 0;

	if (bp_current != NULL && !display_only &&
		has_redirects((Node *) parse, NULL))
	{
		parse = (Query *) point_at_ours((Node *) parse, NULL);
		cursorOptions &= ~CURSOR_OPT_PARALLEL_OK;
	}
	planner_depth++;
	PG_TRY();
	{
		if (prev_planner)
			result = prev_planner(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		planner_depth--;
	}
	PG_END_TRY();
	return result;
}

/* ---------------------------------------------------------------------
 * Calling ours at a carrier call
 * ---------------------------------------------------------------------
 */

/* Which redirect a carrier call carries, -1 if it is a user's own call */
static int
carried_by(FmgrInfo *flinfo)
{
	FuncExpr   *call = (FuncExpr *) flinfo->fn_expr;
	Const	   *mark;
	int			which;

	if (call == NULL || !IsA(call, FuncExpr) || call->args == NIL)
		return -1;
	mark = (Const *) linitial(call->args);
	if (!IsA(mark, Const) || mark->consttype != INT4OID ||
		mark->consttypmod != CARRIED_TYPMOD || mark->constisnull)
		return -1;
	which = DatumGetInt32(mark->constvalue);
	if (which < 0 || which >= lengthof(redirects) ||
		redirects[which].carrier != flinfo->fn_oid)
		return -1;
	return which;
}

/*
 * What a carrier call runs: ours, with the arguments after the marking
 * constant.  The carriers are strict, as every redirected function is, so
 * no argument here is null.
 */
static Datum
carried_call(PG_FUNCTION_ARGS)
{
	LOCAL_FCINFO(inner, FUNC_MAX_ARGS);
	int			which = carried_by(fcinfo->flinfo);
	int			i;
	Datum		result;

	Assert(which >= 0 && fcinfo->nargs >= 1);
	InitFunctionCallInfoData(*inner, fcinfo->flinfo, fcinfo->nargs - 1,
							 fcinfo->fncollation, fcinfo->context,
							 fcinfo->resultinfo);
	for (i = 1; i < fcinfo->nargs; i++)
		inner->args[i - 1] = fcinfo->args[i];
	result = redirects[which].ours(inner);
	fcinfo->isnull = inner->isnull;
	return result;
}

/* The carriers are called through fmgr_security_definer, hence fmgr_hook */
static bool
pool_needs_fmgr(Oid fn_oid)
{
	if (fn_oid == CARRIER_VOLATILE || fn_oid == CARRIER_STABLE)
		return true;
	return prev_needs_fmgr && prev_needs_fmgr(fn_oid);
}

static void
pool_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (event == FHET_START && carried_by(flinfo) >= 0)
	{
		flinfo->fn_addr = carried_call;
		flinfo->fn_stats = TRACK_FUNC_ALL;	/* not the carrier's statistics */
	}
	if (prev_fmgr)
		prev_fmgr(event, flinfo, private);
}

/* ---------------------------------------------------------------------
 * EXPLAIN shows what the query names
 * ---------------------------------------------------------------------
 */

/* EXPLAIN without ANALYZE, of anything but EXECUTE (its plan is cached) */
static bool
is_explain_only(Node *stmt)
{
	ExplainStmt *explain = (ExplainStmt *) stmt;
	ListCell   *lc;

	if (!IsA(stmt, ExplainStmt) || IsA(explain->query, ExecuteStmt))
		return false;
	foreach(lc, explain->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "analyze") == 0 && defGetBoolean(opt))
			return false;
	}
	return true;
}

/*
 * Around a utility statement (utility_hook.c): a top-level EXPLAIN without
 * ANALYZE plans its query unchanged.  Returns what _end restores.
 */
bool
bp_redirect_explain_begin(Node *stmt)
{
	bool		save = explain_only;

	explain_only = planner_depth == 0 && is_explain_only(stmt);
	return save;
}

void
bp_redirect_explain_end(bool save)
{
	explain_only = save;
}

/* Executors only, so the main port is untouched */
void
bp_redirect_init(void)
{
	prev_planner = planner_hook;
	planner_hook = pool_planner;
	prev_needs_fmgr = needs_fmgr_hook;
	needs_fmgr_hook = pool_needs_fmgr;
	prev_fmgr = fmgr_hook;
	fmgr_hook = pool_fmgr;
}
