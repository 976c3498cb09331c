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
typedef struct PoolFuncs
{
	bool		valid;
	bool		present;		/* the extension is installed */
	Oid			nextval;
	Oid			currval;
	Oid			lastval;
	Oid			setval;
	Oid			setval3;
	Oid			identity_nextval;
	Oid			current_setting;
	Oid			current_setting2;
} PoolFuncs;

static PoolFuncs funcs;
static planner_hook_type prev_planner = NULL;

static void
funcs_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	funcs.valid = false;
}

static Oid
our_func(const char *nspname, const char *name, int nargs, Oid arg1, Oid arg2,
		 Oid arg3)
{
	Oid			argtypes[3] = {arg1, arg2, arg3};

	return LookupFuncName(list_make2(makeString(pstrdup(nspname)),
									 makeString(pstrdup(name))),
						  nargs, argtypes, true);
}

static bool
funcs_lookup(void)
{
	Oid			nsp;
	char	   *n;

	if (funcs.valid)
		return funcs.present;
	memset(&funcs, 0, sizeof(funcs));
	nsp = bp_extension_namespace();
	if (OidIsValid(nsp) && (n = get_namespace_name(nsp)) != NULL)
	{
		funcs.nextval = our_func(n, "pool_nextval", 1, REGCLASSOID, 0, 0);
		funcs.currval = our_func(n, "pool_currval", 1, REGCLASSOID, 0, 0);
		funcs.lastval = our_func(n, "pool_lastval", 0, 0, 0, 0);
		funcs.setval = our_func(n, "pool_setval", 2, REGCLASSOID, INT8OID, 0);
		funcs.setval3 = our_func(n, "pool_setval", 3, REGCLASSOID, INT8OID, BOOLOID);
		funcs.identity_nextval = our_func(n, "pool_identity_nextval", 1,
										  REGCLASSOID, 0, 0);
		funcs.current_setting = our_func(n, "pool_current_setting", 1,
										 TEXTOID, 0, 0);
		funcs.current_setting2 = our_func(n, "pool_current_setting", 2,
										  TEXTOID, BOOLOID, 0);
		funcs.present = OidIsValid(funcs.nextval) && OidIsValid(funcs.currval) &&
			OidIsValid(funcs.lastval) && OidIsValid(funcs.setval) &&
			OidIsValid(funcs.setval3) && OidIsValid(funcs.identity_nextval) &&
			OidIsValid(funcs.current_setting) && OidIsValid(funcs.current_setting2);
	}
	funcs.valid = true;
	return funcs.present;
}

/* Which core function goes to which of ours */
static const struct
{
	Oid			core;
	Oid		   *ours;
}			redirects[] =
{
	{F_NEXTVAL, &funcs.nextval},
	{F_CURRVAL, &funcs.currval},
	{F_LASTVAL, &funcs.lastval},
	{F_SETVAL_REGCLASS_INT8, &funcs.setval},
	{F_SETVAL_REGCLASS_INT8_BOOL, &funcs.setval3},
	{F_CURRENT_SETTING_TEXT, &funcs.current_setting},
	{F_CURRENT_SETTING_TEXT_BOOL, &funcs.current_setting2},
};

static Oid
replacement(Oid funcid)
{
	int			i;

	for (i = 0; i < lengthof(redirects); i++)
	{
		if (redirects[i].core == funcid)
			return *redirects[i].ours;
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
	FuncExpr   *call = makeFuncExpr(funcs.identity_nextval, INT8OID,
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
