/*-------------------------------------------------------------------------
 *
 * client.c
 *	  The pool listener's first half: a client from accept() to admission.
 *
 * Each client accepted on a pool port (pool_io.c) goes through a
 * non-blocking state machine: it reads the startup packet exactly as
 * core's ProcessStartupPacket does; answers SSLRequest with 'S' and runs the
 * TLS handshake when the server has ssl = on (tls.c; PC_TLS), else 'N', and
 * GSSENCRequest with 'N'; passes CancelRequests to the executors of the
 * session's pool; asks auth.c whether the client may connect and carries
 * the password exchange auth.c words (PC_AUTH: messages sent and read here
 * as they arrive).  An admitted client is left in PC_ADMITTED, where
 * proxy.c takes it; every change of state goes through conn.c.
 * Nothing here blocks, every client has a deadline (authentication_timeout),
 * and a client that misbehaves is refused alone.  A client whose catalog
 * lookup finds a DDL holding the catalogs waits in PC_LOOKUP, retried each
 * tick, rather than the listener waiting for the lock.
 *
 * Clients not yet admitted hold a descriptor and memory each, for up to
 * authentication_timeout: builtin_pool.max_pending_connections caps them
 * in all and builtin_pool.max_pending_per_address per client address
 * (counted by conn.c), so that one client cannot exhaust the listener.
 * One over a cap is refused at once with 53300.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/ip.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "auth.h"
#include "admin.h"
#include "builtin_pool.h"
#include "listener.h"
#include "pool_shmem.h"
#include "session_table.h"
#include "startup.h"
#include "tls.h"

static void conn_read(PoolConn *c);

/* Applies core's socket options for TCP clients; failures are harmless */
static void
set_tcp_options(int fd)
{
	int			on = 1;

	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	if (tcp_keepalives_idle > 0)
		(void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE,
						  &tcp_keepalives_idle, sizeof(int));
	if (tcp_keepalives_interval > 0)
		(void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL,
						  &tcp_keepalives_interval, sizeof(int));
	if (tcp_keepalives_count > 0)
		(void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT,
						  &tcp_keepalives_count, sizeof(int));
	if (tcp_user_timeout > 0)
		(void) setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
						  &tcp_user_timeout, sizeof(int));
}


/*
 * Sends to the client without blocking, sealed when it speaks TLS.
 * Returns true if all of it went.
 */
static bool
conn_send(PoolConn *c, const char *data, int len)
{
	return bp_tls_send_quick(&c->tls, c->io.fd, data, len);
}

/* recv() from the client, through TLS once it speaks it */
static ssize_t
conn_recv(PoolConn *c, void *buf, size_t len)
{
	if (c->ssl)
		return bp_tls_read(c->ssl, buf, len);
	return recv(c->io.fd, buf, len, 0);
}

/*
 * Refuses the client: sends a FATAL ErrorResponse (best effort, never
 * blocking), logs the same text at elevel, and closes the connection.
 * logdetail, if given, goes to the server log only.
 */
void
conn_refuse(PoolConn *c, int elevel, int sqlstate, const char *msg,
			const char *detail, const char *hint, const char *logdetail)
{
	StringInfoData buf;

	initStringInfo(&buf);
	/* core refuses an authenticated client after AuthenticationOk */
	if (c->main_port)
		appendBinaryStringInfo(&buf, "R\0\0\0\x08\0\0\0\0", 9);
	bp_build_error(&buf, "FATAL", sqlstate, msg, detail, hint);
	(void) conn_send(c, buf.data, buf.len);
	pfree(buf.data);
	conn_log(c, elevel,
			 errcode(sqlstate),
			 errmsg_internal("%s", msg),
			 detail ? errdetail_internal("%s", detail) : 0,
			 logdetail ? errdetail_log("%s", logdetail) : 0,
			 hint ? errhint("%s", hint) : 0);
	pg_atomic_fetch_add_u64(&bp_shared->n_rejected, 1);
	bp_admin_count_refusal(sqlstate);
	conn_close(c);
}

/*
 * recv() on a client failed: unless it only would block, log why and drop
 * the client.
 */
static void
conn_recv_failed(PoolConn *c)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return;
	conn_log(c, COMMERROR,
			 errcode_for_socket_access(),
			 errmsg("could not receive data from client: %m"));
	conn_close(c);
}

/*
 * See listener.h.  A CancelRequest: if (pid, key) names a live session held
 * by an executor, stores the key in one of that executor's cancel_keys
 * entries and sends it SIGUSR2; the executor cancels only if the key is its
 * running session's (executor.c).  A request naming no live session does
 * nothing but count in cancels_unmatched: a key is never 0, so a 0 never
 * matches.  Like core we answer nothing either way.
 */
void
conn_forward_cancel(pid_t pid, uint32 key, const char *from)
{
	int			slot;
	uint32		generation;

	if (!bp_cancel_key_lookup(pid, key, &slot, &generation))
	{
		pg_atomic_fetch_add_u64(&bp_shared->n_cancels_unmatched, 1);
		ereport(DEBUG1,
				(errmsg_internal("cancel request for PID %d matched no pool session",
								 (int) pid),
				 errcontext("cancel request from %s", from)));
		return;
	}
	/* a request queued for its executor: its backend would be running it */
	bp_stab_cancel_queued(key);
	if (slot < 0)
		return;					/* moving between executors: nothing runs */
	if (!bp_cancel_forward(slot, generation, key))
	{
		ereport(LOG,
				(errmsg("could not forward a cancel request to the pool executor of PID %d",
						(int) pid),
				 errdetail("Its executor is gone or has not taken the cancel requests sent before."),
				 errcontext("cancel request from %s", from)));
		return;
	}
	pg_atomic_fetch_add_u64(&bp_shared->n_cancels, 1);
}

/* A CancelRequest on a pool port */
static void
conn_cancel(PoolConn *c)
{
	CancelRequestPacket canc;

	memcpy(&canc, c->pkt, sizeof(canc));
	conn_forward_cancel((pid_t) pg_ntoh32(canc.backendPID),
						pg_ntoh32(canc.cancelAuthCode), c->remote_host);
}

/* Sends NegotiateProtocolVersion as core does; false if the send failed */
static bool
conn_negotiate(PoolConn *c, List *unknown_options)
{
	StringInfoData buf;
	ListCell   *lc;
	uint32		n32;
	bool		ok;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, 'v');
	pq_sendint32(&buf, 0);		/* length, filled in below */
	pq_sendint32(&buf, PG_PROTOCOL_LATEST);
	pq_sendint32(&buf, list_length(unknown_options));
	foreach(lc, unknown_options)
		appendBinaryStringInfo(&buf, lfirst(lc), strlen(lfirst(lc)) + 1);
	n32 = pg_hton32(buf.len - 1);
	memcpy(buf.data + 1, &n32, 4);
	ok = conn_send(c, buf.data, buf.len);
	pfree(buf.data);
	return ok;
}

/*
 * One step of the TLS handshake, when the socket is ready for it.  Once it
 * is done, the startup packet is read through TLS (it may be buffered in
 * OpenSSL already, so reading starts at once).
 */
static void
conn_tls_step(PoolConn *c)
{
	switch (bp_tls_handshake(c->ssl))
	{
		case BP_TLS_WANT_READ:
			c->io.want = BP_EV_READ;
			return;
		case BP_TLS_WANT_WRITE:
			c->io.want = BP_EV_WRITE;
			return;
		case BP_TLS_FAILED:
			conn_close(c);
			return;
		case BP_TLS_DONE:
			break;
	}
	if (!bp_tls_writer(c->ssl, &c->tls.w))
	{
		conn_log(c, COMMERROR,
				 errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("could not accept SSL connection: no TLSv1.3 traffic key for %s",
						bp_tls_describe(c->ssl)));
		conn_close(c);
		return;
	}
	pg_atomic_fetch_add_u64(&bp_shared->n_tls_handshakes, 1);
	(void) conn_set_state(c, PC_READING);
	conn_read(c);
}

/*
 * Answers SSLRequest with 'S' and starts the handshake when the server has
 * ssl = on (tls.c), else with 'N'; GSSENCRequest always with 'N'.  Returns
 * true if c now expects the next packet in the clear.
 */
static bool
conn_negotiate_encryption(PoolConn *c, bool ssl)
{
	int			queued = 0;
	bool		tls = ssl && bp_tls_enabled();

	/*
	 * Bytes sent behind the request were not encrypted and may be an
	 * injection.  Core finds them in its buffer after answering; we count
	 * them before answering, when a client that waits for our answer cannot
	 * have sent anything more.
	 */
	(void) ioctl(c->io.fd, FIONREAD, &queued);
	if (send(c->io.fd, tls ? "S" : "N", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
	{
		conn_log(c, COMMERROR,
				 errcode_for_socket_access(),
				 ssl ? errmsg("failed to send SSL negotiation response: %m") :
				 errmsg("failed to send GSSAPI negotiation response: %m"));
		conn_close(c);
		return false;
	}
	if (queued > 0)
	{
		conn_refuse(c, COMMERROR, ERRCODE_PROTOCOL_VIOLATION,
					ssl ? "received unencrypted data after SSL request" :
					"received unencrypted data after GSSAPI encryption request",
					"This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.",
					NULL, NULL);
		return false;
	}
	/*
	 * As core: once TLS is on, a GSSENCRequest is no request any more but an
	 * unsupported protocol version, refused inside the TLS session.
	 */
	if (ssl)
		c->ssl_done = true;
	if (!ssl || tls)
		c->gss_done = true;
	pfree(c->pkt);
	c->pkt = NULL;
	c->have = c->pktlen = 0;
	if (!tls)
		return true;

	c->ssl = bp_tls_open(c->io.fd);
	if (c->ssl == NULL)
	{
		conn_close(c);
		return false;
	}
	(void) conn_set_state(c, PC_TLS);
	conn_tls_step(c);
	return false;
}

/*
 * Acts on what auth.c decided: refuses c, or sends out (never blocking:
 * these messages are small, so a socket buffer too full to take one means
 * a broken client, dropped) and then admits c or waits for its next
 * message.  Returns true if c is open and in PC_AUTH.
 */
static bool
conn_auth_step(PoolConn *c, PoolAuthStatus st, StringInfo out,
			   PoolAuthRefusal *why, PoolAuthIdentity *who)
{
	if (st == PA_REFUSE)
	{
		conn_refuse(c, LOG, why->sqlstate, why->message, why->detail,
					why->hint, why->logdetail);
		return false;
	}
	if (out->len > 0)
	{
		if (!conn_send(c, out->data, out->len))
		{
			conn_log(c, COMMERROR,
					 errcode_for_socket_access(),
					 errmsg("could not send data to client: %m"));
			conn_close(c);
			return false;
		}
	}
	if (st == PA_EXCHANGE)
	{
		(void) conn_set_state(c, PC_AUTH);
		return true;
	}
	if (c->auth)
	{
		bp_auth_free(c->auth);
		c->auth = NULL;
	}
	c->roleid = who->roleid;
	c->dboid = who->dboid;
	(void) conn_set_state(c, PC_ADMITTED);
	return false;
}

/*
 * Reads the client's authentication messages without blocking, one framed
 * message at a time and never past it, and feeds each to auth.c.  A client
 * that hangs up before answering (libpq does so when it has no password to
 * send) is dropped quietly, as core does.  Returns when the socket is
 * drained or when c was closed or admitted.
 */
static void
conn_auth_read(PoolConn *c)
{
	while (c->state == PC_AUTH)
	{
		char	   *dst = c->auth_have < 5 ? c->auth_hdr + c->auth_have :
			c->auth_msg + (c->auth_have - 5);
		int			need = c->auth_have < 5 ? 5 - c->auth_have :
			(int) c->auth_len + 1 - c->auth_have;
		ssize_t		n = need > 0 ? conn_recv(c, dst, need) : 0;
		PoolAuthRefusal why;
		PoolAuthIdentity who;
		PoolAuthStatus st;
		StringInfoData out;

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			conn_recv_failed(c);
			return;
		}
		if (n == 0 && need > 0)
		{
			if (c->auth_have > 0)
				conn_log(c, COMMERROR,
						 errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("incomplete message from client"));
			conn_close(c);
			return;
		}
		c->auth_have += n;
		if (c->auth_have == 5 && c->auth_msg == NULL)
		{
			memcpy(&c->auth_len, c->auth_hdr + 1, 4);
			c->auth_len = pg_ntoh32(c->auth_len);
			if (!bp_auth_header_ok(c->auth, c->auth_hdr[0], c->auth_len, &why))
			{
				conn_refuse(c, LOG, why.sqlstate, why.message, why.detail,
							why.hint, why.logdetail);
				return;
			}
			c->auth_msg = MemoryContextAlloc(bp_conn_cxt, c->auth_len - 4 + 1);
			c->auth_msg[c->auth_len - 4] = '\0';
		}
		if (c->auth_msg == NULL || c->auth_have < (int) c->auth_len + 1)
			continue;

		/* a whole message */
		initStringInfo(&out);
		st = bp_auth_continue(c->auth, c->auth_msg, c->auth_len - 4, &out, &why,
							  &who);
		pfree(c->auth_msg);
		c->auth_msg = NULL;
		c->auth_have = 0;
		if (!conn_auth_step(c, st, &out, &why, &who))
			return;
	}
}

/*
 * Asks auth.c about c, whose startup packet is read, and acts on the
 * answer.  While a DDL holds a catalog the lookup needs, c waits in
 * PC_LOOKUP, its input left in the socket, and conn_retry_lookups() asks
 * again.  Returns true if c waits so.
 */
static bool
conn_begin_auth(PoolConn *c)
{
	PoolAuthRequest req;
	PoolAuthRefusal why;
	PoolAuthIdentity who;
	PoolAuthStatus verdict;
	StringInfoData out;

	req.user = c->user;
	req.dbname = c->dbname;
	req.is_unix = c->is_unix;
	req.raddr = &c->raddr;
	req.remote_host = c->remote_host;
	req.ssl = c->ssl != NULL;
	req.ssl_conn = c->ssl;
	req.cert_valid = c->ssl != NULL && bp_tls_peer_verified(c->ssl);
	req.cert_cn = c->ssl != NULL ? bp_tls_peer_cn(c->ssl) : NULL;
	req.authenticated = c->main_port;
	initStringInfo(&out);
	verdict = bp_auth_begin(&req, bp_conn_cxt, &c->auth, &out, &why, &who);
	if (verdict == PA_BUSY)
	{
		pfree(out.data);
		(void) conn_set_state(c, PC_LOOKUP);
		return true;
	}
	(void) conn_auth_step(c, verdict, &out, &why, &who);
	return false;
}

/*
 * See listener.h: the clients waiting in PC_LOOKUP try again, oldest
 * first, until one finds the catalogs still locked (the others would too).
 * Each leaves the list when it is refused or admitted, and touches no other
 * client.  Returns true if some still wait.
 */
bool
conn_retry_lookups(void)
{
	PoolConn   *c;

	while ((c = conn_first(PC_LOOKUP)) != NULL)
	{
		if (conn_begin_auth(c))
			return true;
	}
	return false;
}

/*
 * Acts on a complete packet.  Returns true if c is still open and expects
 * another packet (after SSLRequest/GSSENCRequest), false if c was closed
 * or admitted.
 */
static bool
conn_packet(PoolConn *c)
{
	ProtocolVersion proto;
	PoolStartup st;
	int			sqlstate;
	const char *msg;

	memcpy(&proto, c->pkt, sizeof(proto));
	proto = pg_ntoh32(proto);

	if (proto == CANCEL_REQUEST_CODE)
	{
		if (c->pktlen != 4 + sizeof(CancelRequestPacket))
			conn_refuse(c, COMMERROR, ERRCODE_PROTOCOL_VIOLATION,
						"invalid length of startup packet", NULL, NULL, NULL);
		else
		{
			conn_cancel(c);
			conn_close(c);
		}
		return false;
	}
	if (proto == NEGOTIATE_SSL_CODE && !c->ssl_done)
		return conn_negotiate_encryption(c, true);
	if (proto == NEGOTIATE_GSS_CODE && !c->gss_done)
		return conn_negotiate_encryption(c, false);

	if (PG_PROTOCOL_MAJOR(proto) != PG_PROTOCOL_MAJOR(PG_PROTOCOL_LATEST))
	{
		conn_refuse(c, COMMERROR, ERRCODE_FEATURE_NOT_SUPPORTED,
					psprintf("unsupported frontend protocol %u.%u: server supports %u.0 to %u.%u",
							 PG_PROTOCOL_MAJOR(proto), PG_PROTOCOL_MINOR(proto),
							 PG_PROTOCOL_MAJOR(PG_PROTOCOL_EARLIEST),
							 PG_PROTOCOL_MAJOR(PG_PROTOCOL_LATEST),
							 PG_PROTOCOL_MINOR(PG_PROTOCOL_LATEST)),
					NULL, NULL, NULL);
		return false;
	}
	if (!bp_parse_startup(c->pkt + 4, c->pktlen - 8, &st, &sqlstate, &msg))
	{
		conn_refuse(c, COMMERROR, sqlstate, msg, NULL, NULL, NULL);
		return false;
	}
	if ((PG_PROTOCOL_MINOR(proto) > PG_PROTOCOL_MINOR(PG_PROTOCOL_LATEST) ||
		 st.unknown_protocol_options != NIL) &&
		!conn_negotiate(c, st.unknown_protocol_options))
	{
		conn_log(c, COMMERROR,
				 errcode_for_socket_access(),
				 errmsg("could not send data to client: %m"));
		conn_close(c);
		return false;
	}
	if (st.replication || Db_user_namespace)
	{
		conn_refuse(c, LOG, ERRCODE_FEATURE_NOT_SUPPORTED,
					st.replication ?
					"replication connections are not supported on the pool port" :
					"db_user_namespace is not supported on the pool port",
					NULL,
					psprintf("Connect to the server's port %d instead.", PostPortNumber),
					NULL);
		return false;
	}

	/* Truncated to a Postgres name, as core does */
	strlcpy(c->user, st.user, NAMEDATALEN);
	strlcpy(c->dbname, st.database, NAMEDATALEN);
	c->proto = proto;
	(void) conn_begin_auth(c);
	return false;
}

/*
 * Reads the startup packet without blocking and without reading past it:
 * whatever follows belongs to the executor.  Returns when the socket is
 * drained (pool_io re-arms it) or when c was closed or admitted.
 */
static void
conn_read(PoolConn *c)
{
	while (c->state == PC_READING)
	{
		char	   *dst = c->have < 4 ? c->lenbuf + c->have : c->pkt + (c->have - 4);
		int			need = c->have < 4 ? 4 - c->have : c->pktlen - c->have;
		ssize_t		n = conn_recv(c, dst, need);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			conn_recv_failed(c);
			return;
		}
		if (n == 0)
		{
			/*
			 * Silence for no data at all, as core; a partial length word
			 * after an SSL or GSS answer means the client gave up.
			 */
			if (c->have >= 4 || (c->have > 0 && !c->ssl_done && !c->gss_done))
				conn_log(c, COMMERROR,
						 errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("incomplete startup packet"));
			conn_close(c);
			return;
		}
		c->have += n;
		if (c->have == 4)
		{
			uint32		len;

			memcpy(&len, c->lenbuf, 4);
			len = pg_ntoh32(len);
			if (len < 4 + sizeof(ProtocolVersion) ||
				len > 4 + MAX_STARTUP_PACKET_LENGTH)
			{
				conn_refuse(c, COMMERROR, ERRCODE_PROTOCOL_VIOLATION,
							"invalid length of startup packet", NULL, NULL, NULL);
				return;
			}
			c->pktlen = len;
			c->pkt = MemoryContextAlloc(bp_conn_cxt, len - 4 + 1);
			c->pkt[len - 4] = '\0';
		}
		else if (c->have > 4 && c->have == c->pktlen && !conn_packet(c))
			return;
	}
}

/* pool_io handler of a client socket */
void
conn_ready(PoolIo *io, bool readable, bool writable)
{
	PoolConn   *c = (PoolConn *) io;

	if (c->state == PC_TLS)
	{
		if (readable || writable)
			conn_tls_step(c);
		return;
	}
	if (!readable)
		return;
	if (c->state == PC_READING)
		conn_read(c);
	else if (c->state == PC_AUTH)
		conn_auth_read(c);
}

/*
 * A PoolConn (conn.c, PC_NEW) for a client socket: its address read from
 * the socket, its deadline authentication_timeout away, counted as
 * accepted.  NULL if the client is already gone (fd is closed).
 */
static PoolConn *
conn_from_socket(int fd, int port_index)
{
	PoolConn   *c;
	SockAddr	raddr;

	pg_atomic_fetch_add_u64(&bp_shared->n_accepted, 1);
	raddr.salen = sizeof(raddr.addr);
	if (getpeername(fd, (struct sockaddr *) &raddr.addr, &raddr.salen) < 0)
	{
		close(fd);
		return NULL;
	}
	c = conn_new(fd, port_index, conn_ready);
	c->raddr = raddr;
	c->is_unix = raddr.addr.ss_family == AF_UNIX;
	c->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  AuthenticationTimeout * 1000);
	if (c->is_unix)
		strlcpy(c->remote_host, "[local]", sizeof(c->remote_host));
	else
		pg_getnameinfo_all(&c->raddr.addr, c->raddr.salen, c->remote_host,
						   sizeof(c->remote_host), NULL, 0, NI_NUMERICHOST);
	return c;
}

/*
 * Takes a freshly accepted client and starts reading its startup packet
 * (often already there).  The PoolConn lives in bp_conn_cxt until
 * conn_close().
 */
void
conn_accept(int fd, int port_index, bool is_unix)
{
	PoolConn   *c;
	int			id;
	uint32		gen;
	char	   *detail;
	char	   *hint;

	c = conn_from_socket(fd, port_index);
	if (c == NULL)
		return;
	if (!is_unix)
		set_tcp_options(fd);
	if (!conn_set_state(c, PC_READING))
	{
		char		junk[1024];
		int			i;

		/*
		 * What the client sent already is read (a little, never waiting):
		 * closing a socket with unread input resets the connection, and
		 * the client could lose the error.
		 */
		for (i = 0; i < 16 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
			;
		conn_pending_refusal(c, &detail, &hint);
		conn_refuse(c, LOG, ERRCODE_TOO_MANY_CONNECTIONS,
					"sorry, too many clients already", detail, hint, NULL);
		return;
	}
	id = c->io.id;
	gen = c->io.gen;
	conn_read(c);
	if (bp_io_alive(id, gen))
		bp_io_update(&c->io);
}


/*
 * See listener.h: a client of the main port, authenticated by the backend
 * the postmaster forked for it (mainport.c).  It skips pg_hba.conf and the
 * password exchange, and has core's checks after authentication here
 * (the role may log in, the database accepts it, the connection limits:
 * auth.c), as a pool port client has them; it waits in PC_LOOKUP while a
 * DDL holds the catalogs.  body holds its startup pairs; it is copied.
 */
void
conn_adopt_main(int fd, ProtocolVersion proto, const char *body, int len)
{
	PoolConn   *c;
	PoolStartup st;
	int			sqlstate;
	const char *msg;
	uint32		n32;
	char	   *detail;
	char	   *hint;

	c = conn_from_socket(fd, 0);
	if (c == NULL)
		return;
	c->main_port = true;

	/* the packet as a pool port client would have sent it */
	c->pktlen = 4 + 4 + len;
	c->have = c->pktlen;
	c->pkt = MemoryContextAlloc(bp_conn_cxt, 4 + len + 1);
	n32 = pg_hton32(proto);
	memcpy(c->pkt, &n32, 4);
	memcpy(c->pkt + 4, body, len);
	c->pkt[4 + len] = '\0';
	c->proto = proto;
	if (!conn_set_state(c, PC_LOOKUP))
	{
		conn_pending_refusal(c, &detail, &hint);
		conn_refuse(c, LOG, ERRCODE_TOO_MANY_CONNECTIONS,
					"sorry, too many clients already", detail, hint, NULL);
		return;
	}
	if (!bp_parse_startup(c->pkt + 4, len, &st, &sqlstate, &msg))
	{
		conn_refuse(c, LOG, sqlstate, msg, NULL, NULL, NULL);
		return;
	}
	strlcpy(c->user, st.user, NAMEDATALEN);
	strlcpy(c->dbname, st.database, NAMEDATALEN);
	(void) conn_begin_auth(c);
}

/*
 * A client's deadline passed: refuse it (queued, or mid-authentication as
 * core words it) or drop it (reading its startup packet)
 */
void
conn_expire(PoolConn *c)
{
	if (c->state == PC_AUTH || c->state == PC_LOOKUP)
	{
		conn_refuse(c, LOG, ERRCODE_QUERY_CANCELED,
					"canceling authentication due to timeout", NULL, NULL,
					NULL);
		return;
	}
	if (c->state == PC_ADMITTED || c->state == PC_QUEUED ||
		c->state == PC_PARKED)
	{
		conn_refuse(c, LOG, ERRCODE_CANNOT_CONNECT_NOW,
					"timeout expired while waiting for a pool executor", NULL,
					"Check the server log for executor errors, or raise authentication_timeout.",
					NULL);
		return;
	}
	conn_log(c, COMMERROR,
			 errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("timeout expired while reading the startup packet"));
	pg_atomic_fetch_add_u64(&bp_shared->n_rejected, 1);
	bp_admin_count_refusal_cause(PR_TIMEOUT);
	conn_close(c);
}
