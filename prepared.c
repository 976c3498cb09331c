/*-------------------------------------------------------------------------
 *
 * prepared.c
 *	  Prepared statements private to each session of an executor.
 *
 * Core keeps every prepared statement of a backend, SQL PREPARE and
 * protocol Parse alike, in one table keyed by name (prepare.c).  Sessions
 * sharing an executor must not see each other's: each session's statements
 * are stored under a key made of a per-session prefix and the client's name.
 * Our Parse/Bind/Describe/Close (extended.c) build the key themselves; for
 * SQL, a ProcessUtility hook rewrites PREPARE, EXECUTE, DEALLOCATE, and the
 * EXECUTE inside EXPLAIN and CREATE TABLE AS, before core runs them.
 * DEALLOCATE ALL and DISCARD ALL, which in core drop the whole table (the
 * original prototype's bug: one session's DISCARD ALL broke every other
 * session), drop only the caller's statements here.
 *
 * Errors about a statement name are raised here, with the client's name,
 * before core could report the prefixed key: a client sees what the main
 * port would say.
 *
 * pg_prepared_statements lists the whole executor's table, keys and all;
 * the view pool_prepared_statements shows the caller's own statements
 * under their own names.
 *
 * Each session also keeps the source and parameter types of its statements
 * (PoolStatement), so a statement can be prepared again on another executor
 * when sessions stop being bound to one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/discard.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"

#include "prepared.h"
#include "session.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/*
 * Key of a session's statement.  Core truncates names to NAMEDATALEN - 1
 * bytes as it stores them; so does this key, prefix included.  Result is
 * palloc'd in the current context.
 */
char *
bp_statement_key(const PoolSession *s, const char *name)
{
	char	   *key = palloc(NAMEDATALEN);

	snprintf(key, NAMEDATALEN, "_bp%u_%s", s->id, name);
	return key;
}

PG_FUNCTION_INFO_V1(pool_statement_prefix);

/*
 * pool_statement_prefix(): the prefix of the calling session's statement
 * keys, NULL outside the pool.  The view pool_prepared_statements uses it
 * to show a session its own statements under their own names.
 */
Datum
pool_statement_prefix(PG_FUNCTION_ARGS)
{
	if (bp_current == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(bp_statement_key(bp_current, "")));
}

static PoolStatement *
find_statement(const char *name)
{
	ListCell   *lc;

	foreach(lc, bp_current->statements)
	{
		PoolStatement *st = lfirst(lc);

		if (strcmp(st->name, name) == 0)
			return st;
	}
	return NULL;
}

static void
free_statement(PoolStatement *st)
{
	pfree(st->name);
	pfree(st->query);
	if (st->param_types)
		pfree(st->param_types);
	pfree(st);
}

void
bp_statement_remember(const char *name, const char *query,
					  const Oid *param_types, int num_params, bool from_sql)
{
	MemoryContext old = MemoryContextSwitchTo(bp_current->cxt);
	PoolStatement *st = palloc0(sizeof(PoolStatement));

	st->name = pstrdup(name);
	st->query = pstrdup(query);
	st->num_params = num_params;
	if (num_params > 0)
	{
		st->param_types = palloc(num_params * sizeof(Oid));
		memcpy(st->param_types, param_types, num_params * sizeof(Oid));
	}
	st->from_sql = from_sql;
	bp_current->statements = lappend(bp_current->statements, st);
	MemoryContextSwitchTo(old);
}

void
bp_statement_forget(const char *name)
{
	PoolStatement *st = find_statement(name);

	if (st == NULL)
		return;
	bp_current->statements = list_delete_ptr(bp_current->statements, st);
	free_statement(st);
}

/*
 * Drops every named statement of session s, which need not be switched in
 * (freeing a cached plan needs no transaction); with unnamed_too, the
 * unnamed statement as well.  DEALLOCATE ALL leaves the unnamed statement,
 * as core does: it may be the very statement running.
 */
void
bp_statements_drop_all(PoolSession *s, bool unnamed_too)
{
	ListCell   *lc;

	foreach(lc, s->statements)
	{
		PoolStatement *st = lfirst(lc);
		char	   *key = bp_statement_key(s, st->name);

		DropPreparedStatement(key, false);
		pfree(key);
		free_statement(st);
	}
	list_free(s->statements);
	s->statements = NIL;
	if (unnamed_too && s->unnamed_psrc)
	{
		CachedPlanSource *psrc = s->unnamed_psrc;

		s->unnamed_psrc = NULL;
		DropCachedPlan(psrc);
	}
}

/* Raises core's error if the current session has no statement name */
static void
require_statement(const char *name)
{
	char	   *key = bp_statement_key(bp_current, name);

	if (FetchPreparedStatement(key, false) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PSTATEMENT),
				 errmsg("prepared statement \"%s\" does not exist", name)));
	pfree(key);
}

/* Returns a copy of stmt whose EXECUTE names the session's key */
static ExecuteStmt *
keyed_execute(ExecuteStmt *stmt)
{
	ExecuteStmt *copy = copyObject(stmt);

	require_statement(stmt->name);
	copy->name = bp_statement_key(bp_current, stmt->name);
	return copy;
}

/*
 * EXPLAIN EXECUTE and CREATE TABLE AS EXECUTE carry the EXECUTE, by the
 * time they reach ProcessUtility, inside a utility Query.  Keys it in
 * place (the caller owns a copy) and returns true if there was one.
 */
static bool
key_inner_execute(Node **query)
{
	if (*query == NULL)
		return false;
	if (IsA(*query, ExecuteStmt))
	{
		*query = (Node *) keyed_execute((ExecuteStmt *) *query);
		return true;
	}
	if (IsA(*query, Query) && ((Query *) *query)->utilityStmt &&
		IsA(((Query *) *query)->utilityStmt, ExecuteStmt))
	{
		Query	   *q = (Query *) *query;

		q->utilityStmt = (Node *) keyed_execute((ExecuteStmt *) q->utilityStmt);
		return true;
	}
	return false;
}

/*
 * DISCARD ALL as core's DiscardAll does it, except that only the caller's
 * prepared statements go.  The rest acts on state a session owns alone
 * while it runs (its portals, settings, listens, locks, temp schema).
 */
static void
discard_all(bool top_level)
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
}

/*
 * Rewrites the statements that name prepared statements, then lets core
 * run them.  Parse trees may come from a cache, so they are copied, never
 * changed in place.  Returns true if the statement was handled entirely.
 */
static bool
rewrite_or_run(PlannedStmt *pstmt, const char *query_string, bool top_level,
			   PlannedStmt **out)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Node	   *rewritten = NULL;

	switch (nodeTag(parsetree))
	{
		case T_PrepareStmt:
			{
				PrepareStmt *stmt = copyObject((PrepareStmt *) parsetree);
				char	   *key = bp_statement_key(bp_current, stmt->name);

				if (FetchPreparedStatement(key, false) != NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_PSTATEMENT),
							 errmsg("prepared statement \"%s\" already exists",
									stmt->name)));
				stmt->name = key;
				rewritten = (Node *) stmt;
			}
			break;
		case T_ExecuteStmt:
			rewritten = (Node *) keyed_execute((ExecuteStmt *) parsetree);
			break;
		case T_DeallocateStmt:
			{
				DeallocateStmt *stmt = (DeallocateStmt *) parsetree;

				if (stmt->name == NULL)
					bp_statements_drop_all(bp_current, false);
				else
				{
					char	   *key = bp_statement_key(bp_current, stmt->name);

					require_statement(stmt->name);
					DropPreparedStatement(key, true);
					bp_statement_forget(stmt->name);
				}
				return true;
			}
		case T_DiscardStmt:
			if (((DiscardStmt *) parsetree)->target != DISCARD_ALL)
				break;
			discard_all(top_level);
			return true;
		case T_ExplainStmt:
			{
				ExplainStmt *copy = copyObject((ExplainStmt *) parsetree);

				if (key_inner_execute(&copy->query))
					rewritten = (Node *) copy;
			}
			break;
		case T_CreateTableAsStmt:
			{
				CreateTableAsStmt *copy = copyObject((CreateTableAsStmt *) parsetree);

				if (key_inner_execute(&copy->query))
					rewritten = (Node *) copy;
			}
			break;
		default:
			break;
	}

	if (rewritten != NULL)
	{
		*out = copyObject(pstmt);
		(*out)->utilityStmt = rewritten;
	}
	return false;
}

static void
pool_process_utility(PlannedStmt *pstmt, const char *query_string,
					 bool read_only_tree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *query_env,
					 DestReceiver *dest, QueryCompletion *qc)
{
	PlannedStmt *run = pstmt;
	PrepareStmt *prepare = NULL;

	if (bp_current != NULL)
	{
		if (rewrite_or_run(pstmt, query_string,
						   context == PROCESS_UTILITY_TOPLEVEL, &run))
			return;
		if (IsA(pstmt->utilityStmt, PrepareStmt))
			prepare = (PrepareStmt *) pstmt->utilityStmt;
	}

	if (prev_process_utility)
		prev_process_utility(run, query_string, run != pstmt || read_only_tree,
							 context, params, query_env, dest, qc);
	else
		standard_ProcessUtility(run, query_string, run != pstmt || read_only_tree,
								context, params, query_env, dest, qc);

	if (prepare != NULL)
	{
		char	   *key = bp_statement_key(bp_current, prepare->name);
		PreparedStatement *entry = FetchPreparedStatement(key, false);

		if (entry != NULL)
			bp_statement_remember(prepare->name, entry->plansource->query_string,
								  entry->plansource->param_types,
								  entry->plansource->num_params, true);
	}
}

/* Installs the hook; executors only, so the main port is untouched */
void
bp_prepared_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = pool_process_utility;
}
