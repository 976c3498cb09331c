/*-------------------------------------------------------------------------
 *
 * mainport.h
 *	  Pooling the server's own port (builtin_pool.session_pool_ports = 0):
 *	  the hand-over channel from the backends the postmaster forks to the
 *	  listener (see mainport.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MAINPORT_H
#define MAINPORT_H

#include "libpq/pqcomm.h"

#define BP_MAIN_CLIENT_MAGIC	0x42504d31	/* "BPM1" */
#define BP_MAIN_CANCEL_MAGIC	0x42504d43	/* "BPMC" */

/*
 * backend -> listener, with the client's socket: a client the backend
 * authenticated.  The startup packet's name/value pairs, as the backend
 * understood them, follow.
 */
typedef struct PoolMainClient
{
	uint32		magic;
	ProtocolVersion proto;
	int32		startup_len;
} PoolMainClient;

/* backend -> listener, no descriptor: a CancelRequest for a pool session */
typedef struct PoolMainCancel
{
	uint32		magic;
	int32		pid;
	uint32		key;
} PoolMainCancel;

/* Postmaster, from _PG_init: creates the channel every child inherits */
extern void bp_mainport_create(void);

/*
 * Backend, from the ClientAuthentication_hook: hands an authenticated
 * client of the main port to the pool and exits, or returns and lets this
 * backend serve it (a client that is not to be pooled, or no listener).
 */
extern void bp_mainport_client_auth(struct Port *port, int status);

/* Closes the inherited channel: for processes that run queries */
extern void bp_mainport_forget(void);

/* Every process, from emit_log_hook: routes main port cancels (mainport.c) */
extern void bp_mainport_log_hook(ErrorData *edata);

/* Listener, at start: takes the channel's receiving end into its io loop */
extern void bp_mainport_listen(void);

#endif							/* MAINPORT_H */
