/*-------------------------------------------------------------------------
 *
 * relay.h
 *	  The listener's reading half of a TLS session; see relay.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RELAY_H
#define RELAY_H

#include "tls.h"

/*
 * Starts passing what the client on client_fd sends (ssl, handshake done)
 * to a new socketpair and returns the end the executor reads, or -1 with
 * errno set.  The relay owns ssl from now on and reads a dup of client_fd;
 * the caller still owns client_fd and the returned descriptor.
 */
extern int	bp_relay_start(BpSsl *ssl, int client_fd);

#endif							/* RELAY_H */
