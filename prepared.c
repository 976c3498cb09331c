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
 * SQL, a post-parse-analysis hook keys the names in PREPARE, EXECUTE,
 * DEALLOCATE, and the EXECUTE inside EXPLAIN and CREATE TABLE AS, before
 * anything looks them up, and this module's branch of the ProcessUtility
 * hook (utility_hook.c) checks them.  DEALLOCATE ALL and DISCARD ALL, which in
 * core drop the whole table (the original prototype's bug: one session's
 * DISCARD ALL broke every other session), drop only the caller's
 * statements here.
 *
 * Errors about a statement name are raised here, with the client's name,
 * before core could report the prefixed key: a client sees what the main
 * port would say.
 *
 * pg_prepared_statements would list the whole executor's table, keys and
 * all: through the pool, session_views.c shows the caller its own
 * statements under their own names.
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
#include "commands/extension.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "utils/fmgroids.h"
#include "catalog/pg_namespace.h"
#include "nodes/nodeFuncs.h"
#include "utils/lsyscache.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "tcop/tcopprot.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"

#include "pool_shmem.h"
#include "prepared.h"
#include "session.h"

static PoolStatement *find_statement(const char *name);
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;

/*
 * Key of a session's statement.  Core truncates names to NAMEDATALEN - 1
 * bytes as it stores them; so does this key, prefix included.  Result is
 * palloc'd in the current context.
 */
char *
bp_statement_key(const PoolSession *s, const char *name)
{
	char	   *key = palloc(NAMEDATALEN);
	char		client[NAMEDATALEN];
	int			prefix_len;
	int			name_len;

	/* core keeps NAMEDATALEN - 1 bytes of a name: so do we, first */
	strlcpy(client, name, NAMEDATALEN);
	prefix_len = snprintf(key, NAMEDATALEN, "_bp%u_", s->id);
	name_len = strlen(client);

	/*
	 * A name too long to follow the prefix keeps its head and gets a hash
	 * of the whole, so that names differing only at the end stay apart.
	 */
	if (prefix_len + name_len < NAMEDATALEN)
		strlcpy(key + prefix_len, client, NAMEDATALEN - prefix_len);
	else
	{
		int			head = NAMEDATALEN - 1 - prefix_len - 9;

		snprintf(key + prefix_len, NAMEDATALEN - prefix_len, "%.*s~%08x",
				 head, client, hash_bytes((unsigned char *) client, name_len));
	}
	return key;
}

/* The statement of s stored under key, NULL if none */
static PoolStatement *
statement_by_key(const PoolSession *s, const char *key)
{
	ListCell   *lc;

	foreach(lc, s->statements)
	{
		PoolStatement *st = lfirst(lc);
		char	   *other = bp_statement_key(s, st->name);
		bool		same = strcmp(other, key) == 0;

		pfree(other);
		if (same)
			return st;
	}
	return NULL;
}

/*
 * The name the client gave the statement that s stores under key (a key of
 * s).  Core keeps NAMEDATALEN - 1 bytes of a name, so this does too.  A key
 * of no recorded statement of s reads as the key without its prefix.
 * Result palloc'd in the current context.
 */
char *
bp_statement_client_name(const PoolSession *s, const char *key)
{
	PoolStatement *st = statement_by_key(s, key);
	char	   *prefix;
	char	   *name;

	if (st != NULL)
	{
		name = palloc(NAMEDATALEN);
		strlcpy(name, st->name, NAMEDATALEN);
		return name;
	}
	prefix = bp_statement_key(s, "");
	name = pstrdup(strncmp(key, prefix, strlen(prefix)) == 0 ?
				   key + strlen(prefix) : key);
	pfree(prefix);
	return name;
}

char *
bp_result_signature(TupleDesc desc)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	if (desc == NULL)
		return buf.data;
	appendStringInfo(&buf, "%d:", desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		appendStringInfo(&buf, "%u/%d,", att->atttypid, att->atttypmod);
	}
	return buf.data;
}

void
bp_check_result_unchanged(PoolStatement *st)
{
	if (st != NULL && st->result_changed)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached plan must not change result type")));
}

PoolStatement *
bp_statement_find(const char *name)
{
	return find_statement(name);
}

/*
 * The current session's statement called name.  Compared by key: a name
 * read back from a key (client_name) may be the shortened form of a long
 * one, and both have the same key.
 */
static PoolStatement *
find_statement(const char *name)
{
	char	   *key = bp_statement_key(bp_current, name);
	PoolStatement *found = statement_by_key(bp_current, key);

	pfree(key);
	return found;
}

/* Publishes the change in the statements held, for pool_status() */
static void
count_statements(int delta)
{
	if (bp_my_slot != NULL && delta != 0)
		pg_atomic_fetch_add_u32(&bp_my_slot->n_statements, (uint32) delta);
}

static void
free_statement(PoolStatement *st)
{
	pfree(st->name);
	pfree(st->query);
	if (st->param_types)
		pfree(st->param_types);
	if (st->result_sig)
		pfree(st->result_sig);
	pfree(st);
}

PoolStatement *
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
	count_statements(1);
	MemoryContextSwitchTo(old);
	return st;
}

void
bp_statement_forget(const char *name)
{
	PoolStatement *st = find_statement(name);

	if (st == NULL)
		return;
	bp_current->statements = list_delete_ptr(bp_current->statements, st);
	free_statement(st);
	count_statements(-1);
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
	count_statements(-list_length(s->statements));
	list_free(s->statements);
	s->statements = NIL;
	if (unnamed_too && s->unnamed_psrc)
	{
		CachedPlanSource *psrc = s->unnamed_psrc;

		s->unnamed_psrc = NULL;
		DropCachedPlan(psrc);
	}
}

/* The client's name of a key of the current session */
static const char *
client_name(const char *key)
{
	char	   *prefix = bp_statement_key(bp_current, "");
	int			len = strlen(prefix);

	return strncmp(key, prefix, len) == 0 ? key + len : key;
}

/* Raises core's error, with the client's name, if key does not exist */
static void
require_statement(const char *key)
{
	if (FetchPreparedStatement(key, false) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PSTATEMENT),
				 errmsg("prepared statement \"%s\" does not exist",
						client_name(key))));
}

/*
 * Keys the name in a statement that names a prepared statement.  The
 * statement is the raw parse tree, which a cached plan may keep and
 * analyze again, so it is copied rather than changed.  EXPLAIN runs the
 * analysis hook again on its inner query, so a name that already carries
 * the session's key keeps it (key_once); a client that names a statement
 * with its own session's key reaches its own statement, no one else's.
 */
static char *
key_once(const char *name)
{
	char	   *prefix = bp_statement_key(bp_current, "");

	if (strncmp(name, prefix, strlen(prefix)) == 0)
		return pstrdup(name);
	return bp_statement_key(bp_current, name);
}

static Node *
keyed_copy(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_ExecuteStmt:
			{
				ExecuteStmt *copy = copyObject((ExecuteStmt *) stmt);

				copy->name = key_once(copy->name);
				return (Node *) copy;
			}
		case T_PrepareStmt:
			{
				PrepareStmt *copy = copyObject((PrepareStmt *) stmt);

				copy->name = key_once(copy->name);
				return (Node *) copy;
			}
		case T_DeallocateStmt:
			{
				DeallocateStmt *copy = copyObject((DeallocateStmt *) stmt);

				if (copy->name)
					copy->name = key_once(copy->name);
				return (Node *) copy;
			}
		default:
			return NULL;
	}
}

/* EXPLAIN EXECUTE and CREATE TABLE AS EXECUTE: the EXECUTE inside */
static void
key_inner_query(Node *query)
{
	if (query && IsA(query, Query) && ((Query *) query)->utilityStmt &&
		IsA(((Query *) query)->utilityStmt, ExecuteStmt))
		((Query *) query)->utilityStmt = keyed_copy(((Query *) query)->utilityStmt);
}

/*
 * post_parse_analyze_hook: statements naming prepared statements get the
 * session's key at analysis, before anything looks the name up.  Core
 * already looks at analysis and planning time (an EXECUTE's result columns
 * come from its statement), so keying later would be too late.
 */
static void
key_statement_names(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
	if (bp_current == NULL)
		return;
	if (query->commandType != CMD_UTILITY || query->utilityStmt == NULL)
		return;

	switch (nodeTag(query->utilityStmt))
	{
		case T_ExecuteStmt:
		case T_PrepareStmt:
		case T_DeallocateStmt:
			query->utilityStmt = keyed_copy(query->utilityStmt);
			break;
		case T_ExplainStmt:
			key_inner_query(((ExplainStmt *) query->utilityStmt)->query);
			break;
		case T_CreateTableAsStmt:
			key_inner_query(((CreateTableAsStmt *) query->utilityStmt)->query);
			break;
		default:
			break;
	}
}

/* The EXECUTE an EXPLAIN or CREATE TABLE AS carries, or NULL */
static ExecuteStmt *
inner_execute(Node *query)
{
	if (query && IsA(query, Query) && ((Query *) query)->utilityStmt &&
		IsA(((Query *) query)->utilityStmt, ExecuteStmt))
		return (ExecuteStmt *) ((Query *) query)->utilityStmt;
	return NULL;
}

/*
 * utility_hook.c, before core: checks the (keyed) names before core does, so
 * that errors carry the client's name, and does DEALLOCATE for the session
 * only.  Returns true if the statement was handled entirely.
 */
bool
bp_prepared_utility_before(Node *stmt)
{
	ExecuteStmt *exec = NULL;

	switch (nodeTag(stmt))
	{
		case T_PrepareStmt:
			if (FetchPreparedStatement(((PrepareStmt *) stmt)->name, false) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_PSTATEMENT),
						 errmsg("prepared statement \"%s\" already exists",
								client_name(((PrepareStmt *) stmt)->name))));
			return false;
		case T_ExecuteStmt:
			exec = (ExecuteStmt *) stmt;
			break;
		case T_ExplainStmt:
			exec = inner_execute(((ExplainStmt *) stmt)->query);
			break;
		case T_CreateTableAsStmt:
			exec = inner_execute(((CreateTableAsStmt *) stmt)->query);
			break;
		case T_DeallocateStmt:
			{
				DeallocateStmt *d = (DeallocateStmt *) stmt;

				if (d->name == NULL)
					bp_statements_drop_all(bp_current, false);
				else
				{
					require_statement(d->name);
					DropPreparedStatement(d->name, true);
					bp_statement_forget(client_name(d->name));
				}
				return true;
			}
		default:
			return false;
	}
	if (exec)
	{
		PreparedStatement *entry;
		int			nparams = list_length(exec->params);

		require_statement(exec->name);
		bp_check_result_unchanged(find_statement(client_name(exec->name)));
		entry = FetchPreparedStatement(exec->name, false);
		if (nparams != entry->plansource->num_params)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("wrong number of parameters for prepared statement \"%s\"",
							client_name(exec->name)),
					 errdetail("Expected %d parameters but got %d.",
							   entry->plansource->num_params, nparams)));
	}
	return false;
}

/*
 * Records a PREPARE just run: the whole query string (what core shows in
 * pg_prepared_statements) and where this PREPARE is in it, since the
 * string may hold several PREPAREs of one name (PREPARE, DEALLOCATE,
 * PREPARE): a move prepares exactly this one again.  The client's name is
 * read back from the text, since the one in the statement is keyed (and
 * may have been shortened).
 */
static void
remember_prepare(PlannedStmt *pstmt, const char *query_string)
{
	PreparedStatement *entry =
		FetchPreparedStatement(((PrepareStmt *) pstmt->utilityStmt)->name, false);
	ListCell   *lc;

	foreach(lc, pg_parse_query(query_string))
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);
		PoolStatement *st;

		if (raw->stmt_location != pstmt->stmt_location ||
			!IsA(raw->stmt, PrepareStmt))
			continue;
		st = bp_statement_remember(((PrepareStmt *) raw->stmt)->name, query_string,
								   entry->plansource->param_types,
								   entry->plansource->num_params, true);
		st->stmt_location = raw->stmt_location;
		st->stmt_len = raw->stmt_len;
		return;
	}
}

/* utility_hook.c, after core: a PREPARE that ran is recorded */
void
bp_prepared_utility_after(PlannedStmt *pstmt, const char *query_string)
{
	if (IsA(pstmt->utilityStmt, PrepareStmt) &&
		FetchPreparedStatement(((PrepareStmt *) pstmt->utilityStmt)->name, false) != NULL)
		remember_prepare(pstmt, query_string);
}

/* Installs the analysis hook; executors only, so the main port is untouched */
void
bp_prepared_init(void)
{
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = key_statement_names;
}

/* ---------------------------------------------------------------------
 * Moving a session's statements (part of bp_session_serialize)
 * ---------------------------------------------------------------------
 */

/*
 * Result columns as core's plan cache compares them (equalTupleDescs on
 * what ExecCleanTypeFromTL builds: name, type, typmod, collation), so that
 * a statement kept unprepared after a move fails as core's would when its
 * columns come back changed.  -1 for none.
 */
static void
put_result_desc(StringInfo buf, TupleDesc desc)
{
	int			i;

	bp_put_int32(buf, desc ? desc->natts : -1);
	for (i = 0; desc && i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		bp_put_string(buf, NameStr(att->attname));
		bp_put_int32(buf, (int32) att->atttypid);
		bp_put_int32(buf, att->atttypmod);
		bp_put_int32(buf, (int32) att->attcollation);
	}
}

/* Reads put_result_desc's output into st (no catalog access here) */
static void
get_result_desc(StringInfo in, PoolStatement *st)
{
	StringInfoData sig;
	int			i;

	st->result_natts = bp_get_int32(in);
	initStringInfo(&sig);
	if (st->result_natts >= 0)
	{
		st->result_names = palloc(Max(st->result_natts, 1) * sizeof(char *));
		st->result_types = palloc(Max(st->result_natts, 1) * sizeof(Oid));
		st->result_typmods = palloc(Max(st->result_natts, 1) * sizeof(int32));
		st->result_colls = palloc(Max(st->result_natts, 1) * sizeof(Oid));
		appendStringInfo(&sig, "%d:", st->result_natts);
	}
	for (i = 0; i < st->result_natts; i++)
	{
		st->result_names[i] = pstrdup(bp_get_string(in));
		st->result_types[i] = (Oid) bp_get_int32(in);
		st->result_typmods[i] = bp_get_int32(in);
		st->result_colls[i] = (Oid) bp_get_int32(in);
		/* as bp_result_signature writes it */
		appendStringInfo(&sig, "%u/%d,", st->result_types[i], st->result_typmods[i]);
	}
	st->result_sig = sig.data;
}

/*
 * Core's statement table keeps when a statement was prepared and how many
 * generic and custom plans it made; a move prepares it again, so they are
 * given back here.
 */
void
bp_statement_restore_history(PoolSession *s, const PoolStatement *st)
{
	PreparedStatement *entry;

	if (st->name[0] == '\0')
		return;
	entry = FetchPreparedStatement(bp_statement_key(s, st->name), false);
	if (entry == NULL)
		return;
	entry->prepare_time = st->prepare_time;
	entry->plansource->num_generic_plans = st->generic_plans;
	entry->plansource->num_custom_plans = st->custom_plans;
}

/* Built as ExecCleanTypeFromTL builds core's, in the current context */
TupleDesc
bp_statement_result_desc(const PoolStatement *st)
{
	TupleDesc	desc;
	int			i;

	if (st->result_natts < 0)
		return NULL;
	desc = CreateTemplateTupleDesc(st->result_natts);
	for (i = 0; i < st->result_natts; i++)
	{
		TupleDescInitEntry(desc, i + 1, st->result_names[i],
						   st->result_types[i], st->result_typmods[i], 0);
		TupleDescInitEntryCollation(desc, i + 1, st->result_colls[i]);
	}
	return desc;
}

/* One statement: enough to prepare it again, and its result columns */
static void
put_statement(StringInfo buf, const char *name, const char *query,
			  const Oid *param_types, int num_params, bool from_sql,
			  int stmt_location, int stmt_len, PreparedStatement *entry,
			  TupleDesc result)
{
	int			i;

	bp_put_string(buf, name);
	bp_put_string(buf, query);
	appendStringInfoChar(buf, from_sql ? 1 : 0);
	bp_put_int32(buf, stmt_location);
	bp_put_int32(buf, stmt_len);
	bp_put_int32(buf, num_params);
	for (i = 0; i < num_params; i++)
		bp_put_int32(buf, (int32) param_types[i]);
	put_result_desc(buf, result);
	bp_put_int64(buf, entry ? entry->prepare_time : 0);
	bp_put_int64(buf, entry ? entry->plansource->num_generic_plans : 0);
	bp_put_int64(buf, entry ? entry->plansource->num_custom_plans : 0);
}

/* Reads put_statement's output, in the current memory context */
static PoolStatement *
get_statement(StringInfo in)
{
	PoolStatement *st = palloc0(sizeof(PoolStatement));
	int			j;

	st->name = pstrdup(bp_get_string(in));
	st->query = pstrdup(bp_get_string(in));
	st->from_sql = pq_getmsgbyte(in) != 0;
	st->stmt_location = bp_get_int32(in);
	st->stmt_len = bp_get_int32(in);
	st->num_params = bp_get_int32(in);
	if (st->num_params > 0)
		st->param_types = palloc(st->num_params * sizeof(Oid));
	for (j = 0; j < st->num_params; j++)
		st->param_types[j] = (Oid) bp_get_int32(in);
	get_result_desc(in, st);
	st->prepare_time = bp_get_int64(in);
	st->generic_plans = bp_get_int64(in);
	st->custom_plans = bp_get_int64(in);
	return st;
}

/* The named statements of s, then its unnamed one if any */
void
bp_statements_serialize(PoolSession *s, StringInfo buf)
{
	ListCell   *ln;

	bp_put_int32(buf, list_length(s->statements));
	foreach(ln, s->statements)
	{
		PoolStatement *st = lfirst(ln);
		char	   *key = bp_statement_key(s, st->name);
		PreparedStatement *entry = FetchPreparedStatement(key, false);

		put_statement(buf, st->name, st->query, st->param_types,
					  st->num_params, st->from_sql, st->stmt_location,
					  st->stmt_len, entry, entry ? entry->plansource->resultDesc : NULL);
		pfree(key);
	}

	/* the unnamed statement lives until the next Parse or Query */
	appendStringInfoChar(buf, s->unnamed_psrc ? 1 : 0);
	if (s->unnamed_psrc)
		put_statement(buf, "", s->unnamed_psrc->query_string,
					  s->unnamed_psrc->param_types, s->unnamed_psrc->num_params,
					  false, 0, 0, NULL, s->unnamed_psrc->resultDesc);
}

/*
 * Reads them into a session that just arrived, in the current memory
 * context: only recorded, the executor prepares them again once the
 * session is switched in.
 */
void
bp_statements_restore(PoolSession *s, StringInfo in)
{
	int			n = bp_get_int32(in);
	int			i;

	for (i = 0; i < n; i++)
		s->moved_statements = lappend(s->moved_statements, get_statement(in));
	if (pq_getmsgbyte(in))
		s->moved_unnamed = get_statement(in);
}
