/*-------------------------------------------------------------------------
 *
 * sockets.h
 *	  The pool's listening sockets, created by the postmaster and kept
 *	  across listener restarts (see sockets.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef BP_SOCKETS_H
#define BP_SOCKETS_H

#include "datatype/timestamp.h"

/*
 * Postmaster, from _PG_init: opens every pool socket (TCP on each
 * listen_addresses entry, Unix in each socket directory, with its lock
 * file) and arranges their removal at its exit.  Failures are logged.
 */
extern void bp_sockets_create(void);

/*
 * Listener, at start: gives the inherited sockets to the io loop (pool_io.c),
 * opening those the postmaster could not.  Returns how many it has.
 */
extern int	bp_sockets_adopt(void);

/* Listener, each slow tick: retries missing sockets, touches the files */
extern void bp_sockets_tick(TimestampTz now);

/* Executors: close the inherited listening sockets, never theirs to use */
extern void bp_sockets_close_inherited(void);

#endif							/* BP_SOCKETS_H */
