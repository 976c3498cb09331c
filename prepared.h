/*-------------------------------------------------------------------------
 *
 * prepared.h
 *	  Prepared statements private to each session of an executor.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PREPARED_H
#define PREPARED_H

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "session.h"

/* What a session needs to prepare a statement again elsewhere */
typedef struct PoolStatement
{
	char	   *name;			/* the client's name */
	char	   *query;			/* source text */
	Oid		   *param_types;	/* as given in Parse or PREPARE */
	int			num_params;
	bool		from_sql;		/* PREPARE rather than a Parse message */
	int			stmt_location;	/* from_sql: where in query its PREPARE is */
	int			stmt_len;
	char	   *result_sig;		/* result columns when first prepared, for a
								 * move; NULL if not known */
	/* moved in: what pg_prepared_statements showed of it */
	TimestampTz prepare_time;
	int64		generic_plans;
	int64		custom_plans;
	/* moved in: its result columns as core's plan cache compares them */
	int			result_natts;	/* -1 if it returns no rows */
	char	  **result_names;
	Oid		   *result_types;
	int32	   *result_typmods;
	Oid		   *result_colls;
	bool		result_changed; /* prepared again after a move with other
								 * result columns: Bind fails as core's would */
} PoolStatement;

extern void bp_prepared_init(void);

/* utility_hook.c's branches: names checked before core (true: done), PREPARE after */
extern bool bp_prepared_utility_before(Node *stmt);
extern void bp_prepared_utility_after(struct PlannedStmt *pstmt,
									  const char *query_string);

/* The name core's statement table knows a session's statement by */
extern char *bp_statement_key(const PoolSession *s, const char *name);

/* Records/forgets a statement of the current session */
extern PoolStatement *bp_statement_remember(const char *name, const char *query,
											const Oid *param_types, int num_params,
											bool from_sql);
extern void bp_statement_forget(const char *name);
extern PoolStatement *bp_statement_find(const char *name);

/* "n:type/typmod,..." of a statement's result columns ("" for none) */
extern char *bp_result_signature(TupleDesc desc);

/* Gives a statement prepared again after a move its prepare time and plan counts */
extern void bp_statement_restore_history(PoolSession *s, const PoolStatement *st);

/* A moved-in statement's result columns (needs a transaction), or NULL */
extern TupleDesc bp_statement_result_desc(const PoolStatement *st);

/* core's error for a statement whose result columns changed */
extern void bp_check_result_unchanged(PoolStatement *st);

/* Drops every statement of s, the unnamed one too (DEALLOCATE ALL, close) */
extern void bp_statements_drop_all(PoolSession *s, bool unnamed_too);

/* A session's statements when it moves (bp_session_serialize) */
extern void bp_statements_serialize(PoolSession *s, StringInfo buf);
extern void bp_statements_restore(PoolSession *s, StringInfo in);

/* The client's name of a statement key of s */
extern char *bp_statement_client_name(const PoolSession *s, const char *key);

#endif							/* PREPARED_H */
