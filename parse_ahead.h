/*-------------------------------------------------------------------------
 *
 * parse_ahead.h
 *	  Answering a waiting session's Parse before its turn, when its pool is
 *	  starved (see parse_ahead.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PARSE_AHEAD_H
#define PARSE_AHEAD_H

#include "session.h"

/*
 * Cheap first look at a session that is not switched in: could its
 * waiting input be Parse messages to answer ahead?  Peeks one byte.
 */
extern bool bp_parse_ahead_candidate(PoolSession *s);

/*
 * Answers s's waiting input ahead if it is only Parse messages of new
 * named statements that pass the raw parser, ended by Sync: reads it,
 * sends ParseComplete for each and ReadyForQuery, and adds the statements
 * to s->moved_statements (prepared at its next turn).  Returns true if
 * answered; false leaves the input untouched, unless s->closing was set
 * (the read failed halfway: the session must end).  Called between
 * another session's messages, inside its transaction; raises no error.
 */
extern bool bp_parse_ahead(PoolSession *s);

/*
 * s's statement name, answered ahead, failed to prepare at its turn:
 * keeps the error being handled (call inside PG_CATCH, before
 * FlushErrorState) for the statement's first Bind or Describe.
 */
extern void bp_parse_ahead_failed(PoolSession *s, const char *name);

/* Raises the kept error of name, once, if there is one; else returns */
extern void bp_parse_ahead_raise(PoolSession *s, const char *name);

/* Drops the kept error of name, if any (Close, a new Parse of the name) */
extern void bp_parse_ahead_forget(PoolSession *s, const char *name);

#endif							/* PARSE_AHEAD_H */
