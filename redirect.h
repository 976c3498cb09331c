/*-------------------------------------------------------------------------
 *
 * redirect.h
 *	  Points per-process core functions at per-session ones; see redirect.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REDIRECT_H
#define REDIRECT_H

extern void bp_redirect_init(void);

#endif							/* REDIRECT_H */
