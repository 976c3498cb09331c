/*-------------------------------------------------------------------------
 *
 * sequences.h
 *	  currval() and lastval() per session; see sequences.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SEQUENCES_H
#define SEQUENCES_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/nodes.h"

struct PoolSession;

/* One sequence's last value for a session (PoolSession.seq_values) */
typedef struct PoolSeqValue
{
	Oid			relid;
	int64		last;
} PoolSeqValue;

/*
 * What redirect.c points core's calls at: core's nextval, currval, lastval,
 * setval (2 and 3 arguments), and an identity column's next value
 * (regclass), keeping the current session's values.
 */
extern Datum bp_nextval(PG_FUNCTION_ARGS);
extern Datum bp_currval(PG_FUNCTION_ARGS);
extern Datum bp_lastval(PG_FUNCTION_ARGS);
extern Datum bp_setval(PG_FUNCTION_ARGS);
extern Datum bp_setval3(PG_FUNCTION_ARGS);
extern Datum bp_identity_nextval(PG_FUNCTION_ARGS);

/* DISCARD SEQUENCES / ALL: the session forgets its values */
extern void bp_sequences_forget(struct PoolSession *s);

/* A session's values when it moves (bp_session_serialize) */
extern void bp_sequences_serialize(struct PoolSession *s, StringInfo buf);
extern void bp_sequences_restore(struct PoolSession *s, StringInfo in);

/* utility_hook.c's branches: DISCARD SEQUENCES before core, COPY FROM after */
extern void bp_sequences_utility_before(Node *stmt);
extern void bp_sequences_utility_after(Node *stmt);

#endif							/* SEQUENCES_H */
