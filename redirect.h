/*-------------------------------------------------------------------------
 *
 * redirect.h
 *	  Points per-process core functions at per-session ones; see redirect.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REDIRECT_H
#define REDIRECT_H

#include "nodes/nodes.h"

extern void bp_redirect_init(void);

/* Around a utility statement: EXPLAIN without ANALYZE shows the query's calls */
extern bool bp_redirect_explain_begin(Node *stmt);
extern void bp_redirect_explain_end(bool save);

#endif							/* REDIRECT_H */
