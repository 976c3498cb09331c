/*-------------------------------------------------------------------------
 *
 * conflict.h
 *	  Recovery conflicts on a hot standby, per session; see conflict.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CONFLICT_H
#define CONFLICT_H

#include "lib/stringinfo.h"

extern void bp_conflict_sigusr1(SIGNAL_ARGS);
extern bool bp_conflict_possible(void);
extern void bp_conflict_waiting(bool in_xact);
extern void bp_conflict_reset(void);
extern bool bp_conflict_end_session(void);
extern bool bp_conflict_exit_message(StringInfo buf);

#endif							/* CONFLICT_H */
