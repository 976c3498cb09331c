/*-------------------------------------------------------------------------
 *
 * utility_hook.h
 *	  The executor's one ProcessUtility hook; see utility_hook.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef UTILITY_HOOK_H
#define UTILITY_HOOK_H

extern void bp_utility_init(void);

#endif							/* UTILITY_HOOK_H */
