/*-------------------------------------------------------------------------
 *
 * redirect.c
 *	  Points calls of core functions whose state core keeps per process at
 *	  the extension's per-session versions, in every plan an executor makes.
 *
 * Sequences: nextval(), currval(), lastval(), setval() and identity
 * columns' next values (NextValueExpr) go to pool_nextval() and friends
 * (sequences.c).  Settings: current_setting() goes to
 * pool_current_setting() (session.c), which does not show a session the
 * custom placeholders other sessions created.
 *
 * The planner hook rewrites the query after the rewriter (so column
 * defaults are there) and before planning; a walk first checks whether
 * there is anything to rewrite, so most plans are not copied.  Nothing
 * happens outside a pool session, or where the extension is not installed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parse_func.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "prepared.h"
#include "redirect.h"
#include "session.h"

/* Our functions in this database; looked up again after pg_proc changes */
/*
 * Our functions, by the core function each replaces (InvalidOid: none, the
 * identity columns' NextValueExpr).  Their OIDs in this database are
 * looked up again after pg_proc changes.
 */
typedef struct PoolFunc
{
	Oid			core;
	const char *name;
	int			nargs;
	Oid			argtypes[3];
} PoolFunc;

static const PoolFunc our_funcs[] =
{
	{F_NEXTVAL, "pool_nextval", 1, {REGCLASSOID}},
	{F_CURRVAL, "pool_currval", 1, {REGCLASSOID}},
	{F_LASTVAL, "pool_lastval", 0, {0}},
	{F_SETVAL_REGCLASS_INT8, "pool_setval", 2, {REGCLASSOID, INT8OID}},
	{F_SETVAL_REGCLASS_INT8_BOOL, "pool_setval", 3, {REGCLASSOID, INT8OID, BOOLOID}},
	{F_CURRENT_SETTING_TEXT, "pool_current_setting", 1, {TEXTOID}},
	{F_CURRENT_SETTING_TEXT_BOOL, "pool_current_setting", 2, {TEXTOID, BOOLOID}},
	{InvalidOid, "pool_identity_nextval", 1, {REGCLASSOID}},
};

#define IDENTITY_NEXTVAL	(lengthof(our_funcs) - 1)

static bool funcs_valid = false;
static bool funcs_present = false;	/* the extension is installed */
static Oid	func_oids[lengthof(our_funcs)];
static planner_hook_type prev_planner = NULL;

static void
funcs_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	funcs_valid = false;
}

static bool
funcs_lookup(void)
{
	Oid			nsp;
	char	   *nspname;
	int			i;

	if (funcs_valid)
		return funcs_present;
	nsp = bp_extension_namespace();
	nspname = OidIsValid(nsp) ? get_namespace_name(nsp) : NULL;
	funcs_present = nspname != NULL;
	for (i = 0; i < lengthof(our_funcs); i++)
	{
		const PoolFunc *f = &our_funcs[i];

		func_oids[i] = nspname == NULL ? InvalidOid :
			LookupFuncName(list_make2(makeString(nspname),
									  makeString(pstrdup(f->name))),
						   f->nargs, f->argtypes, true);
		funcs_present &= OidIsValid(func_oids[i]);
	}
	funcs_valid = true;
	return funcs_present;
}

/* Ours for a core function, or InvalidOid */
static Oid
replacement(Oid funcid)
{
	int			i;

	for (i = 0; i < IDENTITY_NEXTVAL; i++)
	{
		if (our_funcs[i].core == funcid)
			return func_oids[i];
	}
	return InvalidOid;
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
	if (IsA(node, FuncExpr) && OidIsValid(replacement(((FuncExpr *) node)->funcid)))
		return true;
	return expression_tree_walker(node, has_redirects, context);
}

/* An identity column's NextValueExpr as a call of pool_identity_nextval */
static Node *
identity_call(NextValueExpr *nve)
{
	Const	   *seq = makeConst(REGCLASSOID, -1, InvalidOid, sizeof(Oid),
								ObjectIdGetDatum(nve->seqid), false, true);
	FuncExpr   *call = makeFuncExpr(func_oids[IDENTITY_NEXTVAL], INT8OID,
									list_make1(seq), InvalidOid, InvalidOid,
									COERCE_EXPLICIT_CALL);

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
		Oid			ours = replacement(f->funcid);

		if (OidIsValid(ours))
			f->funcid = ours;
		return (Node *) f;
	}
	return expression_tree_mutator(node, point_at_ours, context);
}

static PlannedStmt *
pool_planner(Query *parse, const char *query_string, int cursorOptions,
			 ParamListInfo boundParams)
{
	if (bp_current != NULL && funcs_lookup() && has_redirects((Node *) parse, NULL))
		parse = (Query *) point_at_ours((Node *) parse, NULL);
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/* Executors only, so the main port is untouched */
void
bp_redirect_init(void)
{
	prev_planner = planner_hook;
	planner_hook = pool_planner;
	CacheRegisterSyscacheCallback(PROCOID, funcs_invalidate, (Datum) 0);
}
