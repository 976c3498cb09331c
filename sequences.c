/*-------------------------------------------------------------------------
 *
 * sequences.c
 *	  currval() and lastval() per session.
 *
 * Core keeps them in per-process caches (sequence.c), which an executor
 * must drop whenever another session comes in (session.c), or one session
 * would read another's values.  So that a session still reads its own
 * values in later transactions, as on its own backend, the planner hook
 * below points every nextval(), currval(), lastval() and setval() call,
 * and every identity column's next value, at this module's functions
 * (pool_nextval() and friends, from the extension's SQL script): they do
 * what core's do and also keep each value in the session (PoolSession's
 * seq_values, seq_last), which moves with it to another executor.
 *
 * currval() and lastval() ask core first: its cache holds whatever this
 * session did since it came in, including nextval() calls no plan shows
 * (column defaults filled by COPY, SQL functions inlined by the planner);
 * only what core does not know comes from the session's record.  After a
 * COPY FROM the values of the table's own sequences are recorded too.
 *
 * Where the extension is not installed nothing is rewritten, and
 * currval()/lastval() last only as long as the session's turn.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "prepared.h"
#include "sequences.h"
#include "session.h"

PG_FUNCTION_INFO_V1(pool_nextval);
PG_FUNCTION_INFO_V1(pool_currval);
PG_FUNCTION_INFO_V1(pool_lastval);
PG_FUNCTION_INFO_V1(pool_setval);
PG_FUNCTION_INFO_V1(pool_setval3);
PG_FUNCTION_INFO_V1(pool_identity_nextval);

/* Our functions in this database; looked up again after pg_proc changes */
typedef struct SeqFuncs
{
	bool		valid;
	bool		present;		/* the extension is installed */
	Oid			nextval;
	Oid			currval;
	Oid			lastval;
	Oid			setval;
	Oid			setval3;
	Oid			identity_nextval;
} SeqFuncs;

static SeqFuncs funcs;
static planner_hook_type prev_planner = NULL;

/* ---------------------------------------------------------------------
 * The session's record
 * ---------------------------------------------------------------------
 */

static void
record_value(Oid relid, int64 value, bool is_last)
{
	PoolSession *s = bp_current;
	ListCell   *lc;
	PoolSeqValue *v = NULL;

	if (s == NULL)
		return;
	foreach(lc, s->seq_values)
	{
		if (((PoolSeqValue *) lfirst(lc))->relid == relid)
			v = lfirst(lc);
	}
	if (v == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(s->cxt);

		v = palloc(sizeof(PoolSeqValue));
		v->relid = relid;
		s->seq_values = lappend(s->seq_values, v);
		MemoryContextSwitchTo(old);
	}
	v->last = value;
	if (is_last)
		s->seq_last = relid;
}

static PoolSeqValue *
recorded(Oid relid)
{
	ListCell   *lc;

	if (bp_current == NULL)
		return NULL;
	foreach(lc, bp_current->seq_values)
	{
		if (((PoolSeqValue *) lfirst(lc))->relid == relid)
			return lfirst(lc);
	}
	return NULL;
}

void
bp_sequences_forget(PoolSession *s)
{
	list_free_deep(s->seq_values);
	s->seq_values = NIL;
	s->seq_last = InvalidOid;
}

/*
 * Calls core's currval (relid valid) or lastval in a subtransaction: true
 * with *value if this session used the sequence since it came in; false if
 * core says "not yet defined".  Any other error (permissions) is raised.
 */
static bool
ask_core(Oid relid, int64 *value)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		known = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (OidIsValid(relid))
			*value = DatumGetInt64(DirectFunctionCall1(currval_oid,
													   ObjectIdGetDatum(relid)));
		else
		{
			LOCAL_FCINFO(fcinfo, 0);

			InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
			*value = DatumGetInt64(lastval(fcinfo));
		}
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE)
			ReThrowError(edata);
		FreeErrorData(edata);
		known = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return known;
}

/* ---------------------------------------------------------------------
 * The functions calls are pointed at
 * ---------------------------------------------------------------------
 */

/* Core's nextval, kept for the session */
static Datum
draw_next(Oid relid, bool check_permissions)
{
	int64		value = nextval_internal(relid, check_permissions);

	record_value(relid, value, true);
	PG_RETURN_INT64(value);
}

Datum
pool_nextval(PG_FUNCTION_ARGS)
{
	return draw_next(PG_GETARG_OID(0), true);
}

/*
 * An identity column's next value.  Core needs no privilege on the
 * sequence for it (the INSERT or UPDATE was allowed); this function can
 * also be called by hand, so it asks for USAGE on the sequence, or INSERT
 * or UPDATE on the table whose identity it is.
 */
Datum
pool_identity_nextval(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Oid			table;
	int32		col;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_USAGE) != ACLCHECK_OK &&
		(!sequenceIsOwned(relid, DEPENDENCY_INTERNAL, &table, &col) ||
		 pg_class_aclmask(table, GetUserId(), ACL_INSERT | ACL_UPDATE,
						  ACLMASK_ANY) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for sequence %s",
						get_rel_name(relid))));
	return draw_next(relid, false);
}

Datum
pool_currval(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		value;
	PoolSeqValue *v;

	if (bp_current == NULL)
		return currval_oid(fcinfo);
	if (ask_core(relid, &value))
		PG_RETURN_INT64(value);	/* used since it came in: core knows best */
	v = recorded(relid);
	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("currval of sequence \"%s\" is not yet defined in this session",
						get_rel_name(relid))));
	PG_RETURN_INT64(v->last);
}

Datum
pool_lastval(PG_FUNCTION_ARGS)
{
	int64		value;
	PoolSeqValue *v;

	if (bp_current == NULL)
		return lastval(fcinfo);
	if (ask_core(InvalidOid, &value))
		PG_RETURN_INT64(value);

	v = OidIsValid(bp_current->seq_last) ? recorded(bp_current->seq_last) : NULL;
	/* as core: someone may have dropped the sequence since */
	if (v == NULL ||
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(v->relid)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("lastval is not yet defined in this session")));
	if (pg_class_aclcheck(v->relid, GetUserId(),
						  ACL_SELECT | ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for sequence %s",
						get_rel_name(v->relid))));
	PG_RETURN_INT64(v->last);
}

/* setval(seq, value): value becomes currval, as in core; lastval stays */
Datum
pool_setval(PG_FUNCTION_ARGS)
{
	Datum		result = setval_oid(fcinfo);

	record_value(PG_GETARG_OID(0), PG_GETARG_INT64(1), false);
	return result;
}

Datum
pool_setval3(PG_FUNCTION_ARGS)
{
	Datum		result = setval3_oid(fcinfo);

	if (PG_GETARG_BOOL(2))
		record_value(PG_GETARG_OID(0), PG_GETARG_INT64(1), false);
	return result;
}

/*
 * After COPY FROM into relid: the defaults of its columns may have drawn
 * from its sequences without any plan showing it; keep what they gave.
 */
void
bp_sequences_after_copy(Oid relid)
{
	ListCell   *lc;
	List	   *seqs;

	if (bp_current == NULL || !OidIsValid(relid))
		return;
	seqs = getOwnedSequences(relid);
	foreach(lc, seqs)
	{
		int64		value;

		if (ask_core(lfirst_oid(lc), &value))
			record_value(lfirst_oid(lc), value, true);
	}
	list_free(seqs);
}

/* ---------------------------------------------------------------------
 * Pointing calls at them
 * ---------------------------------------------------------------------
 */

static void
funcs_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	funcs.valid = false;
}

static Oid
our_func(Oid nsp, const char *name, int nargs, Oid arg1, Oid arg2, Oid arg3)
{
	Oid			argtypes[3] = {arg1, arg2, arg3};

	return LookupFuncName(list_make2(makeString(get_namespace_name(nsp)),
									 makeString(pstrdup(name))),
						  nargs, argtypes, true);
}

static bool
funcs_lookup(void)
{
	Oid			nsp;

	if (funcs.valid)
		return funcs.present;
	memset(&funcs, 0, sizeof(funcs));
	nsp = bp_extension_namespace();
	if (OidIsValid(nsp))
	{
		funcs.nextval = our_func(nsp, "pool_nextval", 1, REGCLASSOID, 0, 0);
		funcs.currval = our_func(nsp, "pool_currval", 1, REGCLASSOID, 0, 0);
		funcs.lastval = our_func(nsp, "pool_lastval", 0, 0, 0, 0);
		funcs.setval = our_func(nsp, "pool_setval", 2, REGCLASSOID, INT8OID, 0);
		funcs.setval3 = our_func(nsp, "pool_setval", 3, REGCLASSOID, INT8OID, BOOLOID);
		funcs.identity_nextval = our_func(nsp, "pool_identity_nextval", 1,
										  REGCLASSOID, 0, 0);
		funcs.present = OidIsValid(funcs.nextval) && OidIsValid(funcs.currval) &&
			OidIsValid(funcs.lastval) && OidIsValid(funcs.setval) &&
			OidIsValid(funcs.setval3) && OidIsValid(funcs.identity_nextval);
	}
	funcs.valid = true;
	return funcs.present;
}

static Oid
replacement(Oid funcid)
{
	switch (funcid)
	{
		case F_NEXTVAL:
			return funcs.nextval;
		case F_CURRVAL:
			return funcs.currval;
		case F_LASTVAL:
			return funcs.lastval;
		case F_SETVAL_REGCLASS_INT8:
			return funcs.setval;
		case F_SETVAL_REGCLASS_INT8_BOOL:
			return funcs.setval3;
	}
	return InvalidOid;
}

static bool
uses_sequences(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, uses_sequences, context, 0);
	if (IsA(node, NextValueExpr))
		return true;
	if (IsA(node, FuncExpr) && OidIsValid(replacement(((FuncExpr *) node)->funcid)))
		return true;
	return expression_tree_walker(node, uses_sequences, context);
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

	call->location = -1;
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
	if (bp_current != NULL && funcs_lookup() && uses_sequences((Node *) parse, NULL))
		parse = (Query *) point_at_ours((Node *) parse, NULL);
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/* Executors only, so the main port is untouched */
void
bp_sequences_init(void)
{
	prev_planner = planner_hook;
	planner_hook = pool_planner;
	CacheRegisterSyscacheCallback(PROCOID, funcs_invalidate, (Datum) 0);
}
