/*-------------------------------------------------------------------------
 *
 * sequences.h
 *	  currval() and lastval() per session; see sequences.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SEQUENCES_H
#define SEQUENCES_H

struct PoolSession;

/* One sequence's last value for a session (PoolSession.seq_values) */
typedef struct PoolSeqValue
{
	Oid			relid;
	int64		last;
} PoolSeqValue;

/* DISCARD SEQUENCES / ALL: the session forgets its values */
extern void bp_sequences_forget(struct PoolSession *s);

/* After COPY FROM into relid, in the session's transaction */
extern void bp_sequences_after_copy(Oid relid);

#endif							/* SEQUENCES_H */
