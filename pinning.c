/*-------------------------------------------------------------------------
 *
 * pinning.c
 *	  Session state that core keeps per process and sessions therefore
 *	  cannot share: it pins the session to its executor while it exists,
 *	  and is released when the session ends.
 *
 * DESIGN.md section 4: each kind of state is private or pinned, never
 * shared.  Temp tables live in the backend's one temp schema, session
 * advisory locks belong to its PGPROC, LISTEN registers the backend, WITH
 * HOLD cursors sit in its portal table.  None can be given to one session
 * and hidden from another, so while a session holds any of them the
 * executor serves it alone (executor.c), and when it ends they are dropped,
 * released, unlistened and closed here before anyone else runs.
 *
 * Detection is cheap on the common path: LISTEN and WITH HOLD cursors are
 * seen in the hook, locks in our PGPROC's lock queues; only after an object
 * was created does a transaction end with a look for anything in the temp
 * schema: every object there, of whatever kind (table, view, sequence,
 * function, type, collation, operator, text search object ...), depends on
 * the schema in pg_depend, which is how core drops them all at the end.
 *
 * The temp schema itself.  A backend sets up its temp schema the first time
 * something needs it, and the transaction that does so "operated on
 * temporary objects" (PREPARE TRANSACTION refuses it); until then
 * current_schemas(true) and pg_my_temp_schema() do not show it.  An
 * executor sets it up once, but each session must see it as its own
 * backend would: while a session that never set up its own is switched in,
 * the executor's temp schema is hidden (SetTempNamespaceState, as parallel
 * workers use it), so that core sets it up again for that session exactly
 * where it would have.  No other session's objects can be in it then: a
 * session holding temp objects is pinned, alone on its executor.  Core
 * registers an exit callback each time the schema is set up and committed,
 * out of a fixed number of slots, so an executor hides its schema for at
 * most MAX_TEMP_SETUPS such sessions, then keeps it shown (README,
 * Limitations).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/indexing.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_namespace.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/portal.h"

#include "pinning.h"
#include "session.h"

static object_access_hook_type prev_object_access = NULL;

/* LISTEN/UNLISTEN of the running transaction, in the session's context */
static List *pending_listen = NIL;

/*
 * Sessions for which this executor set up its temp schema again; core's
 * before_shmem_exit slots (20) bound it, a few are in use already.
 */
#define MAX_TEMP_SETUPS		12

static int	temp_setups = 0;

/* the executor's temp schema while hidden from the current session */
static bool temp_ns_hidden = false;
static bool temp_ns_shown_at_start = false;	/* the session saw it set up */
static Oid	hidden_ns = InvalidOid;
static Oid	hidden_toast_ns = InvalidOid;

static List *
add_name(List *names, const char *name)
{
	MemoryContext old = MemoryContextSwitchTo(bp_current->cxt);

	names = lappend(names, pstrdup(name));
	MemoryContextSwitchTo(old);
	return names;
}

static List *
remove_name(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		if (strcmp(lfirst(lc), name) == 0)
			return list_delete_cell(names, lc);
	}
	return names;
}

/* Records what a utility statement did to the session's per-process state */
static void
track_statement(Node *stmt)
{
	PoolSession *s = bp_current;

	switch (nodeTag(stmt))
	{
		case T_DiscardStmt:
			if (((DiscardStmt *) stmt)->target == DISCARD_ALL)
			{
				pending_listen = add_name(pending_listen, "*");
				list_free_deep(s->hold_cursors);
				s->hold_cursors = NIL;
			}
			break;
		case T_ListenStmt:
			pending_listen = add_name(pending_listen, ((ListenStmt *) stmt)->conditionname);
			break;
		case T_UnlistenStmt:
			{
				UnlistenStmt *u = (UnlistenStmt *) stmt;

				pending_listen = add_name(pending_listen,
										  u->conditionname ? psprintf("-%s", u->conditionname) : "*");
			}
			break;
		case T_DeclareCursorStmt:
			{
				DeclareCursorStmt *d = (DeclareCursorStmt *) stmt;

				if (d->options & CURSOR_OPT_HOLD)
					s->hold_cursors = add_name(s->hold_cursors, d->portalname);
			}
			break;
		case T_ClosePortalStmt:
			{
				ClosePortalStmt *c = (ClosePortalStmt *) stmt;

				if (c->portalname == NULL)
				{
					list_free_deep(s->hold_cursors);
					s->hold_cursors = NIL;
				}
				else
					s->hold_cursors = remove_name(s->hold_cursors, c->portalname);
			}
			break;
		default:
			break;
	}
}

/*
 * utility_hook.c, after core: tracks what a statement that succeeded did.  One
 * that succeeds in a transaction later rolled back stays tracked; that
 * errs on the side of pinning, and the lists are checked again at the
 * boundary.
 */
void
bp_pinning_utility_after(Node *stmt)
{
	track_statement(stmt);
}

/*
 * LISTEN through the pool (utility_hook.c runs it instead of core).  Core
 * refuses LISTEN in background workers, which have no way to deliver
 * notifications.  An executor does (it pins a listening session and
 * delivers while it is idle), so LISTEN is run here, with core's other
 * checks.
 */
void
bp_pinning_listen(ListenStmt *stmt)
{
	PreventCommandDuringRecovery("LISTEN");
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot execute %s within security-restricted operation",
						"LISTEN")));
	Async_Listen(stmt->conditionname);
	track_statement((Node *) stmt);
}

/*
 * LISTEN and UNLISTEN act at commit, as in core (async.c queues them):
 * the hook notes them as pending ("name", "-name" or "*" for all), the
 * commit applies them to the session's channels, an abort drops them.
 */
static void
apply_pending_listen(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (pending_listen == NIL || bp_current == NULL)
		return;
	if (event == XACT_EVENT_COMMIT)
	{
		PoolSession *s = bp_current;

		foreach(lc, pending_listen)
		{
			char	   *op = lfirst(lc);

			if (strcmp(op, "*") == 0)
			{
				list_free_deep(s->listen_channels);
				s->listen_channels = NIL;
			}
			else if (op[0] == '-')
				s->listen_channels = remove_name(s->listen_channels, op + 1);
			else
			{
				s->listen_channels = remove_name(s->listen_channels, op);
				s->listen_channels = add_name(s->listen_channels, op);
			}
		}
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
	{
		list_free_deep(pending_listen);
		pending_listen = NIL;
	}
}

/* Any object created may be a temp one: look at the next boundary */
static void
pinning_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (access == OAT_POST_CREATE && bp_current != NULL)
		bp_current->temp_check = true;
}

/*
 * At commit: a session that set up its temp schema in this transaction
 * (it was hidden from it, or the executor had none yet) now has its own,
 * as its backend would; at abort core has forgotten it again.  Each such
 * commit costs core an exit callback slot.
 */
static void
note_temp_setup(XactEvent event, void *arg)
{
	Oid			nsp;
	Oid			toast_nsp;

	if (event != XACT_EVENT_COMMIT || bp_current == NULL ||
		bp_current->temp_ns_ready || temp_ns_shown_at_start)
		return;
	GetTempNamespaceState(&nsp, &toast_nsp);
	if (!OidIsValid(nsp))
		return;
	bp_current->temp_ns_ready = true;
	temp_ns_hidden = false;
	temp_setups++;
}

/*
 * Switching a session in: hide the executor's temp schema from a session
 * that never set up its own (see the file header).  Outside a transaction.
 */
void
bp_temp_namespace_switch_in(PoolSession *s)
{
	Oid			nsp;
	Oid			toast_nsp;

	Assert(!temp_ns_hidden);
	GetTempNamespaceState(&nsp, &toast_nsp);
	temp_ns_shown_at_start = OidIsValid(nsp);
	if (s->temp_ns_ready || !OidIsValid(nsp) || temp_setups >= MAX_TEMP_SETUPS)
		return;
	hidden_ns = nsp;
	hidden_toast_ns = toast_nsp;
	temp_ns_hidden = true;
	temp_ns_shown_at_start = false;
	SetTempNamespaceState(InvalidOid, InvalidOid);
}

/* Switching it out: the executor's temp schema is shown again */
void
bp_temp_namespace_switch_out(void)
{
	if (!temp_ns_hidden)
		return;
	SetTempNamespaceState(hidden_ns, hidden_toast_ns);
	temp_ns_hidden = false;
}

/* Executors only: the main port keeps core's behaviour untouched */
void
bp_pinning_init(void)
{
	prev_object_access = object_access_hook;
	object_access_hook = pinning_object_access;
	RegisterXactCallback(apply_pending_listen, NULL);
	RegisterXactCallback(note_temp_setup, NULL);
}

/*
 * Does our temp schema hold anything?  Every object created in a schema
 * depends on it (pg_depend), whatever its kind.  Inside a transaction.
 */
static bool
temp_objects_exist(void)
{
	Oid			nsp;
	Oid			toast_nsp;
	Relation	rel;
	ScanKeyData key[2];
	SysScanDesc scan;
	bool		found;

	GetTempNamespaceState(&nsp, &toast_nsp);
	if (!OidIsValid(nsp))
		return false;
	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(NamespaceRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(nsp));
	scan = systable_beginscan(rel, DependReferenceIndexId, true, NULL, 2, key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* Outside a transaction, any lock left in our PGPROC is a session lock */
static bool
session_locks_held(void)
{
	int			i;

	for (i = 0; i < NUM_LOCK_PARTITIONS; i++)
	{
		if (!SHMQueueEmpty(&MyProc->myProcLocks[i]))
			return true;
	}
	return false;
}

/*
 * Why s is pinned, for pool_sessions: the first of the reasons
 * bp_session_pinned() found, a static string.
 */
const char *
bp_session_pin_reason(PoolSession *s)
{
	if (s->temp_check)
		return "temp table";
	if (s->listen_channels != NIL)
		return "LISTEN";
	if (s->hold_cursors != NIL)
		return "WITH HOLD cursor";
	return "advisory lock";
}

bool
bp_session_pinned(PoolSession *s)
{
	ListCell   *lc;

	Assert(!IsTransactionOrTransactionBlock());

	/* cursors closed by COMMIT/ROLLBACK or an error are gone by now */
	foreach(lc, s->hold_cursors)
	{
		if (!PortalIsValid(GetPortalByName(lfirst(lc))))
			s->hold_cursors = foreach_delete_current(s->hold_cursors, lc);
	}

	if (s->temp_check)
	{
		bp_switching = true;
		StartTransactionCommand();
		s->temp_check = temp_objects_exist();
		CommitTransactionCommand();
		bp_switching = false;
	}

	return s->listen_channels != NIL || s->hold_cursors != NIL ||
		s->temp_check || session_locks_held();
}

/*
 * Drops what a leaving session held, as DISCARD ALL would, so that the
 * next session on this executor finds nothing of it.  Only a pinned
 * session can hold any of it, and a pinned session is always the current
 * one.  If the cleanup fails the executor cannot promise isolation any
 * more, so it ends (its other sessions lose their connection; none sees
 * another's state).
 */
void
bp_session_release_state(PoolSession *s)
{
	bool		temp = s->temp_check;

	Assert(bp_current == s);
	if (s->listen_channels == NIL && s->hold_cursors == NIL && !temp &&
		!session_locks_held())
		return;

	PG_TRY();
	{
		bp_switching = true;
		StartTransactionCommand();
		if (s->listen_channels != NIL)
			Async_UnlistenAll();
		if (s->hold_cursors != NIL)
			PortalHashTableDeleteAll();
		if (temp)
			ResetTempTableNamespace();
		CommitTransactionCommand();
		LockReleaseAll(USER_LOCKMETHOD, true);
		bp_switching = false;
	}
	PG_CATCH();
	{
		EmitErrorReport();
		ereport(FATAL,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not release the state of a closed pool session"),
				 errdetail("The executor exits so that no other session can see it.")));
	}
	PG_END_TRY();

	list_free_deep(s->listen_channels);
	s->listen_channels = NIL;
	list_free_deep(s->hold_cursors);
	s->hold_cursors = NIL;
	s->temp_check = false;
	s->pinned = false;
}

/*
 * What moves with a session: whether it set up a temp schema of its own
 * (part of bp_session_serialize).  A session holding temp objects, locks,
 * LISTEN or cursors is pinned and never moves.
 */
void
bp_pinning_serialize(PoolSession *s, StringInfo buf)
{
	appendStringInfoChar(buf, s->temp_ns_ready ? 1 : 0);
}

void
bp_pinning_restore(PoolSession *s, StringInfo in)
{
	s->temp_ns_ready = pq_getmsgbyte(in) != 0;
}

/*
 * Does the current session own temp objects right now?  Inside a
 * transaction; executor.c asks before a commit that would pin.
 */
bool
bp_temp_objects_exist(void)
{
	return temp_objects_exist();
}

/*
 * Has this executor set up its temp schema again as often as core's exit
 * callback slots allow?  Then it hides it no more, and executor.c replaces
 * it with a fresh executor (its sessions move, none is cut).
 */
bool
bp_temp_setups_exhausted(void)
{
	return temp_setups >= MAX_TEMP_SETUPS;
}
