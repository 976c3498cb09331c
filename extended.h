/*-------------------------------------------------------------------------
 *
 * extended.h
 *	  The extended query protocol messages an executor serves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXTENDED_H
#define EXTENDED_H

#include "lib/stringinfo.h"

extern void bp_exec_parse(StringInfo msg);
extern void bp_exec_bind(StringInfo msg);
extern void bp_exec_execute(StringInfo msg);
extern void bp_exec_describe(StringInfo msg);
extern void bp_exec_close(StringInfo msg);
extern void bp_drop_unnamed_statement(void);

struct PoolSession;
extern void bp_restore_statements(struct PoolSession *s);

#endif							/* EXTENDED_H */
