/*-------------------------------------------------------------------------
 *
 * sequences.c
 *	  currval() and lastval() per session.
 *
 * Core keeps them in per-process caches (sequence.c), which an executor
 * must drop whenever another session comes in (session.c), or one session
 * would read another's values.  So that a session still reads its own
 * values in later transactions, as on its own backend, redirect.c points
 * every nextval(), currval(), lastval() and setval() call, and every
 * identity column's next value, at this module's functions (bp_nextval()
 * and friends): they do what core's do and also keep each value in the
 * session (PoolSession's seq_values, seq_last), which moves with it to
 * another executor.  This works in every database: nothing here needs the
 * extension's SQL objects.
 *
 * currval() and lastval() ask core first: its cache holds whatever this
 * session did since it came in, including nextval() calls no plan shows
 * (column defaults filled by COPY or by ALTER TABLE, SQL functions inlined
 * by the planner); only what core does not know comes from the session's
 * record.  After a COPY FROM the values of the table's own sequences are
 * recorded too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "sequences.h"
#include "session.h"

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
bp_nextval(PG_FUNCTION_ARGS)
{
	return draw_next(PG_GETARG_OID(0), true);
}

/*
 * An identity column's next value: like core's NextValueExpr, no privilege
 * on the sequence is needed, the INSERT or UPDATE was allowed.  Only
 * redirect.c's rewrite of a NextValueExpr can call this.
 */
Datum
bp_identity_nextval(PG_FUNCTION_ARGS)
{
	return draw_next(PG_GETARG_OID(0), false);
}

Datum
bp_currval(PG_FUNCTION_ARGS)
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
bp_lastval(PG_FUNCTION_ARGS)
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
bp_setval(PG_FUNCTION_ARGS)
{
	Datum		result = setval_oid(fcinfo);

	record_value(PG_GETARG_OID(0), PG_GETARG_INT64(1), false);
	return result;
}

Datum
bp_setval3(PG_FUNCTION_ARGS)
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
static void
after_copy(Oid relid)
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

/* utility_hook.c, before core: DISCARD SEQUENCES forgets the session's values */
void
bp_sequences_utility_before(Node *stmt)
{
	if (IsA(stmt, DiscardStmt) &&
		((DiscardStmt *) stmt)->target == DISCARD_SEQUENCES)
		bp_sequences_forget(bp_current);
}

/* utility_hook.c, after core: what a COPY FROM drew is kept */
void
bp_sequences_utility_after(Node *stmt)
{
	CopyStmt   *copy = (CopyStmt *) stmt;

	if (IsA(stmt, CopyStmt) && copy->is_from && copy->relation != NULL)
		after_copy(RangeVarGetRelid(copy->relation, NoLock, true));
}

/* The session's values when it moves (part of bp_session_serialize) */
void
bp_sequences_serialize(PoolSession *s, StringInfo buf)
{
	ListCell   *ln;

	bp_put_int32(buf, (int32) s->seq_last);
	bp_put_int32(buf, list_length(s->seq_values));
	foreach(ln, s->seq_values)
	{
		PoolSeqValue *v = lfirst(ln);

		bp_put_int32(buf, (int32) v->relid);
		bp_put_int32(buf, (int32) (v->last >> 32));
		bp_put_int32(buf, (int32) (v->last & 0xffffffff));
	}
}

/* Reads them into a session that just arrived, in the current context */
void
bp_sequences_restore(PoolSession *s, StringInfo in)
{
	int			n;
	int			i;

	s->seq_last = (Oid) bp_get_int32(in);
	n = bp_get_int32(in);
	for (i = 0; i < n; i++)
	{
		PoolSeqValue *v = palloc(sizeof(PoolSeqValue));
		uint32		hi;

		v->relid = (Oid) bp_get_int32(in);
		hi = (uint32) bp_get_int32(in);
		v->last = (int64) (((uint64) hi << 32) | (uint32) bp_get_int32(in));
		s->seq_values = lappend(s->seq_values, v);
	}
}
