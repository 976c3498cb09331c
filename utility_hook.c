/*-------------------------------------------------------------------------
 *
 * utility_hook.c
 *	  The executor's one ProcessUtility hook: which session-state module
 *	  acts on which utility statement, before and after core runs it.
 *
 * Each module owns its branch (prepared.c: statement names, PREPARE,
 * EXECUTE, DEALLOCATE; session.c: settings, SHOW, RESET; sequences.c:
 * currval/lastval, COPY FROM; pinning.c: LISTEN, cursors; redirect.c:
 * EXPLAIN); this file only calls them in order, so that no module calls
 * another.  DISCARD ALL touches every module's state and is composed here.
 *
 * A statement that fails is not tracked after: its effect is rolled back
 * with the transaction.  Nothing here happens outside a pool session, and
 * the hook is installed in executors only: the main port is untouched.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/discard.h"
#include "commands/sequence.h"
#include "catalog/namespace.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/portal.h"

#include "pinning.h"
#include "prepared.h"
#include "redirect.h"
#include "sequences.h"
#include "session.h"
#include "utility_hook.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

static void
run_next(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
		 ProcessUtilityContext context, ParamListInfo params,
		 QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_process_utility)
		prev_process_utility(pstmt, query_string, read_only_tree, context,
							 params, query_env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query_string, read_only_tree, context,
								params, query_env, dest, qc);
}

/*
 * DISCARD ALL as core's DiscardAll does it, except that only the caller's
 * prepared statements and values go, and settings return to its own
 * startup values.  The rest acts on state a session owns alone while it
 * runs (its portals, listens, locks, temp schema).
 */
static void
discard_all(Node *stmt, bool top_level)
{
	PreventInTransactionBlock(top_level, "DISCARD ALL");
	PortalHashTableDeleteAll();
	SetPGVariable("session_authorization", NIL, false);
	ResetAllOptions();
	bp_statements_drop_all(bp_current, false);
	Async_UnlistenAll();
	LockReleaseAll(USER_LOCKMETHOD, true);
	ResetPlanCache();
	ResetTempTableNamespace();
	ResetSequenceCaches();
	bp_sequences_forget(bp_current);
	bp_settings_utility_after(stmt);
	bp_pinning_utility_after(stmt);
}

static void
pool_process_utility(PlannedStmt *pstmt, const char *query_string,
					 bool read_only_tree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *query_env,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		explain;

	if (bp_current == NULL)
	{
		run_next(pstmt, query_string, read_only_tree, context, params,
				 query_env, dest, qc);
		return;
	}

	/* checks that must come before core's, and statements done here */
	bp_settings_utility_before(stmt);
	bp_sequences_utility_before(stmt);
	if (bp_prepared_utility_before(stmt))
		return;
	if (IsA(stmt, DiscardStmt) && ((DiscardStmt *) stmt)->target == DISCARD_ALL)
	{
		discard_all(stmt, context == PROCESS_UTILITY_TOPLEVEL);
		return;
	}
	if (IsA(stmt, ListenStmt))
	{
		bp_pinning_listen((ListenStmt *) stmt);
		return;
	}

	explain = bp_redirect_explain_begin(stmt);
	PG_TRY();
	{
		run_next(pstmt, query_string, read_only_tree, context, params,
				 query_env, dest, qc);
	}
	PG_FINALLY();
	{
		bp_redirect_explain_end(explain);
	}
	PG_END_TRY();

	/* what the statement did to the session's state */
	bp_prepared_utility_after(pstmt, query_string);
	bp_sequences_utility_after(stmt);
	bp_settings_utility_after(stmt);
	bp_pinning_utility_after(stmt);
}

/* Executors only, so the main port is untouched */
void
bp_utility_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = pool_process_utility;
}
