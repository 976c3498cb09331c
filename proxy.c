/*-------------------------------------------------------------------------
 *
 * proxy.c
 *	  The pool listener: the background worker that owns the pool ports.
 *
 * The listener takes each client accepted on a pool port (pool_io.c) through
 * a non-blocking state machine: it reads the startup packet exactly as core's
 * ProcessStartupPacket does, answers SSLRequest and GSSENCRequest with 'N',
 * routes CancelRequests to executors, asks auth.c whether the client may
 * connect, carries the password exchange auth.c words (PC_AUTH: messages
 * sent and read here as they arrive), then picks the pool for (port,
 * database, role) and the executor, launching executors on demand, and
 * hands the socket over through the channel (channel.c).  It never sees
 * query traffic and never blocks: the one wait is WaitEventSetWait() on the
 * latch, postmaster death and the io_uring/epoll descriptor.  Every client
 * has a deadline (authentication_timeout), and a client that misbehaves is
 * refused alone.
 *
 * Executors are registered with RegisterDynamicBackgroundWorker() and not
 * waited for: the loop polls their handles, and an executor becomes ready
 * when it greets us on the channel from the very pid the postmaster
 * started.  Clients assigned to an executor wait in its queue meanwhile;
 * assignment counts them in the slot's n_sessions at once, so the load
 * seen by the next choice includes queued clients.
 *
 * Note about locking: the listener is the only process that changes pool
 * entries and executor slot states, so it reads them without the lock and
 * takes bp_shared->lock exclusively only while writing them.  No syscall
 * runs under the lock.
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
#include "common/pg_prng.h"
#include "lib/ilist.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procsignal.h"
#include "storage/sinval.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "auth.h"
#include "builtin_pool.h"
#include "channel.h"
#include "pool_io.h"
#include "pool_shmem.h"
#include "relay.h"
#include "shutdown.h"
#include "startup.h"
#include "tls.h"

#define BP_HELLO_TIMEOUT_MS 60000	/* executor connected but silent */
#define BP_BUSY_TICK_MS		100
#define BP_IDLE_TICK_MS		1000

typedef enum PoolConnState
{
	PC_READING,					/* reading a startup packet */
	PC_TLS,						/* in the TLS handshake after SSLRequest */
	PC_AUTH,					/* pg_hba.conf asked for a password: in the
								 * exchange auth.c drives */
	PC_QUEUED,					/* admitted, waiting for its executor */
	PC_PARKED					/* admitted, but every executor that could
								 * take it is pinned: retried each tick */
} PoolConnState;

/* A client between accept() and handoff */
typedef struct PoolConn
{
	PoolIo		io;				/* first: the handler casts it back */
	PoolConnState state;
	int			port_index;
	bool		is_unix;
	bool		ssl_done;
	bool		gss_done;
	BpSsl	   *ssl;			/* TLS: reads the client until handoff */
	BpTlsSealer tls;			/* TLS: seals what we send (tls.h) */
	int			plain_fd;		/* TLS: the executor's end of its relay, or -1 */
	SockAddr	raddr;
	char		remote_host[64];
	TimestampTz deadline;
	dlist_node	all_node;		/* in bp_conns, in accept order */
	dlist_node	queue_node;		/* in its executor's queue while PC_QUEUED */
	char		lenbuf[4];
	int			have;			/* bytes read, length word included */
	int			pktlen;			/* length word's value; 0 until read */
	char	   *pkt;			/* packet after the length word, NUL added */
	ProtocolVersion proto;
	char		user[NAMEDATALEN];
	char		dbname[NAMEDATALEN];
	int			exec_slot;		/* executor it is queued for, or -1 */
	uint32		exec_gen;
	uint32		cancel_key;

	/* the password exchange, while PC_AUTH */
	PoolAuthExchange *auth;
	char		auth_hdr[5];	/* type byte and length word */
	int			auth_have;		/* bytes of the message read */
	uint32		auth_len;		/* length word's value, once read */
	char	   *auth_msg;		/* body, NUL added */

	/* a session moving between executors (PoolHandback) */
	bool		resumed;
	int			from_slot;		/* the executor that gave it back */
	char	   *moved_state;	/* serialized session state */
	int			state_len;
} PoolConn;

/* An executor's end of the channel */
typedef struct PoolChan
{
	PoolIo		io;				/* first: the handler casts it back */
	int			slot;			/* executor slot once greeted, else -1 */
	bool		hello_pending;	/* hello read, pid not yet confirmed */
	bool		ack_pending;	/* PoolRetireAck still to send */
	bool		retry;			/* a handoff failed for lack of kernel memory */
	PoolHello	hello;
	TimestampTz deadline;		/* for the hello */
	dlist_node	node;			/* in bp_new_chans until greeted */
} PoolChan;

/* Listener-private side of an executor slot */
typedef struct PoolExecLocal
{
	BackgroundWorkerHandle *handle; /* NULL unless this listener started it */
	PoolChan   *chan;			/* NULL until it greeted us */
	dlist_head	queue;			/* PoolConns waiting for it */
	pid_t		orphan_pid;		/* started by a previous listener */
} PoolExecLocal;

static MemoryContext bp_listener_cxt;
static MemoryContext bp_conn_cxt;
static MemoryContext bp_scratch_cxt;
static PoolExecLocal *bp_exec;
static dlist_head bp_conns = DLIST_STATIC_INIT(bp_conns);
static dlist_head bp_new_chans = DLIST_STATIC_INIT(bp_new_chans);
static char bp_handoff_buf[BP_HANDOFF_MAX];
static char bp_chan_buf[BP_HANDOFF_MAX];
static bool bp_smart_shutdown = false;	/* see shutdown.c */
static dlist_head bp_parked = DLIST_STATIC_INIT(bp_parked);

static void conn_route(PoolConn *c);
static void conn_read(PoolConn *c);
static void chan_close(PoolChan *ch);
static void chan_writable(PoolChan *ch);
static void exec_flush(int slot);

/* ---------------------------------------------------------------------
 * Clients
 * ---------------------------------------------------------------------
 */

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

/* Takes c off its executor's queue; the executor never learns about it */
static void
conn_unqueue(PoolConn *c)
{
	PoolExecutor *ex;

	if (c->exec_slot < 0)
		return;
	ex = &bp_shared->executors[c->exec_slot];
	dlist_delete(&c->queue_node);
	if (ex->state != PE_FREE && ex->generation == c->exec_gen)
		pg_atomic_fetch_sub_u32(&ex->n_sessions, 1);
	c->exec_slot = -1;
}

/* Closes our descriptor of the client (the executor may hold another) */
static void
conn_close(PoolConn *c)
{
	if (c->state == PC_PARKED)
		dlist_delete(&c->queue_node);
	conn_unqueue(c);
	bp_io_unregister(&c->io);
	close(c->io.fd);
	if (c->plain_fd >= 0)
		close(c->plain_fd);
	bp_tls_close(c->ssl);
	bp_tls_sealer_free(&c->tls);
	dlist_delete(&c->all_node);
	if (c->pkt)
		pfree(c->pkt);
	if (c->moved_state)
		pfree(c->moved_state);
	if (c->auth)
		bp_auth_free(c->auth);
	if (c->auth_msg)
		pfree(c->auth_msg);
	pfree(c);
}

/*
 * Sends to the client without blocking, sealed when it speaks TLS.
 * Returns true if all of it went.
 */
static bool
conn_send(PoolConn *c, const char *data, int len)
{
	StringInfoData sealed;
	ssize_t		n;

	if (c->tls.w.suite == 0)
		return send(c->io.fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL) == len;
	initStringInfo(&sealed);
	if (!bp_tls_seal(&c->tls, data, len, &sealed))
	{
		pfree(sealed.data);
		errno = EPROTO;
		return false;
	}
	n = send(c->io.fd, sealed.data, sealed.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n >= 0 && n != sealed.len)
		errno = EWOULDBLOCK;
	pfree(sealed.data);
	return n == sealed.len;
}

/* recv() from the client, through TLS once it speaks it */
static ssize_t
conn_recv(PoolConn *c, void *buf, size_t len)
{
	if (c->ssl)
		return bp_tls_read(c->ssl, buf, len);
	return recv(c->io.fd, buf, len, 0);
}

/* Logs a client's failure at elevel with the client's address as context */
#define conn_log(c, elevel, ...) \
	ereport((elevel), (__VA_ARGS__, \
					   errcontext("pool connection from %s on port %d", \
								  (c)->remote_host, bp_port + (c)->port_index)))

/*
 * Refuses the client: sends a FATAL ErrorResponse (best effort, never
 * blocking), logs the same text at elevel, and closes the connection.
 * logdetail, if given, goes to the server log only.
 */
static void
conn_refuse(PoolConn *c, int elevel, int sqlstate, const char *msg,
			const char *detail, const char *hint, const char *logdetail)
{
	StringInfoData buf;

	initStringInfo(&buf);
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
 * CancelRequest: stores the key in the executor's slot and signals it; the
 * executor cancels only if the key is its running session's.  Like core we
 * answer nothing, whether or not the pid is known.
 */
static void
conn_cancel(PoolConn *c)
{
	CancelRequestPacket canc;
	int			pid;
	int			i;
	int			pool_id = -1;
	pid_t	   *targets = palloc(sizeof(pid_t) * bp_shared->max_executors);
	int			n_targets = 0;

	memcpy(&canc, c->pkt, sizeof(canc));
	pid = (int) pg_ntoh32(canc.backendPID);
	LWLockAcquire(bp_shared->lock, LW_SHARED);
	for (i = 0; i < bp_shared->max_executors && pool_id < 0 && pid > 0; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if ((ex->state == PE_READY || ex->state == PE_EXITING) && ex->pid == pid)
			pool_id = ex->pool_id;
	}

	/*
	 * The session may have moved to another executor of the pool since it
	 * learnt this pid (executor.c gives sessions back when it is pinned), so
	 * every executor of the pool gets the key; each cancels only if the key
	 * is its running session's.
	 */
	for (i = 0; i < bp_shared->max_executors && pool_id >= 0; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if ((ex->state == PE_READY || ex->state == PE_EXITING) &&
			ex->pool_id == pool_id && ex->pid != 0)
		{
			pg_atomic_write_u32(&ex->cancel_key, pg_ntoh32(canc.cancelAuthCode));
			targets[n_targets++] = ex->pid;
		}
	}
	LWLockRelease(bp_shared->lock);
	if (pool_id < 0)
		conn_log(c, LOG,
				 errmsg("PID %d in cancel request did not match any pool executor", pid));
	for (i = 0; i < n_targets; i++)
	{
		if (kill(targets[i], SIGINT) == 0 && targets[i] == pid)
			pg_atomic_fetch_add_u64(&bp_shared->n_cancels, 1);
	}
	pfree(targets);
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
	c->state = PC_READING;
	c->io.want = BP_EV_READ;
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
	if (ssl)
		c->ssl_done = true;
	else
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
	c->state = PC_TLS;
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
			   PoolAuthRefusal *why)
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
		c->state = PC_AUTH;
		return true;
	}
	if (c->auth)
	{
		bp_auth_free(c->auth);
		c->auth = NULL;
	}
	conn_route(c);
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
		st = bp_auth_continue(c->auth, c->auth_msg, c->auth_len - 4, &out, &why);
		pfree(c->auth_msg);
		c->auth_msg = NULL;
		c->auth_have = 0;
		if (!conn_auth_step(c, st, &out, &why))
			return;
	}
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
	PoolAuthRequest req;
	PoolAuthRefusal why;
	PoolAuthStatus verdict;
	StringInfoData out;
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
	req.user = c->user;
	req.dbname = c->dbname;
	req.is_unix = c->is_unix;
	req.raddr = &c->raddr;
	req.remote_host = c->remote_host;
	req.ssl = c->ssl != NULL;
	req.ssl_conn = c->ssl;
	req.cert_valid = c->ssl != NULL && bp_tls_peer_verified(c->ssl);
	req.cert_cn = c->ssl != NULL ? bp_tls_peer_cn(c->ssl) : NULL;
	initStringInfo(&out);
	verdict = bp_auth_begin(&req, bp_conn_cxt, &c->auth, &out, &why);
	(void) conn_auth_step(c, verdict, &out, &why);
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
static void
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
 * Takes a freshly accepted client and starts reading its startup packet
 * (often already there).  The PoolConn lives in bp_conn_cxt until
 * conn_close().
 */
static void
conn_accept(int fd, int port_index, bool is_unix)
{
	PoolConn   *c;
	int			id;
	uint32		gen;

	pg_atomic_fetch_add_u64(&bp_shared->n_accepted, 1);
	c = MemoryContextAllocZero(bp_conn_cxt, sizeof(PoolConn));
	c->raddr.salen = sizeof(c->raddr.addr);
	if (getpeername(fd, (struct sockaddr *) &c->raddr.addr, &c->raddr.salen) < 0)
	{
		close(fd);				/* the client is already gone */
		pfree(c);
		return;
	}
	c->io.fd = fd;
	c->io.handler = conn_ready;
	c->port_index = port_index;
	c->is_unix = is_unix;
	c->exec_slot = -1;
	c->plain_fd = -1;
	c->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  AuthenticationTimeout * 1000);
	if (is_unix)
		strlcpy(c->remote_host, "[local]", sizeof(c->remote_host));
	else
	{
		pg_getnameinfo_all(&c->raddr.addr, c->raddr.salen, c->remote_host,
						   sizeof(c->remote_host), NULL, 0, NI_NUMERICHOST);
		set_tcp_options(fd);
	}
	bp_io_register(&c->io);
	dlist_push_tail(&bp_conns, &c->all_node);
	c->io.want = BP_EV_READ;
	id = c->io.id;
	gen = c->io.gen;
	conn_read(c);
	if (bp_io_alive(id, gen))
		bp_io_update(&c->io);
}

/* ---------------------------------------------------------------------
 * Executors
 * ---------------------------------------------------------------------
 */

/*
 * Slot of pool_id with the fewest sessions that can take one more, or -1;
 * *load is its session count, raised by max_sessions if it is pinned.
 */
static int
exec_least_loaded(int pool_id, uint32 *load)
{
	int			best = -1;
	int			i;

	*load = PG_UINT32_MAX;
	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];
		uint32		n;

		if (ex->pool_id != pool_id ||
			(ex->state != PE_STARTING && ex->state != PE_READY))
			continue;
		n = pg_atomic_read_u32(&ex->n_sessions);
		if (n >= (uint32) bp_max_sessions)
			continue;
		/* a pinned executor serves one session alone: last resort */
		if (pg_atomic_read_u32(&ex->n_pinned) > 0)
			n += bp_max_sessions;
		if (n < *load)
		{
			best = i;
			*load = n;
		}
	}
	return best;
}

/* Counts c against slot and queues it there; caller holds the lock */
static void
exec_assign(PoolConn *c, int slot)
{
	PoolExecutor *ex = &bp_shared->executors[slot];

	pg_atomic_fetch_add_u32(&ex->n_sessions, 1);
	c->exec_slot = slot;
	c->exec_gen = ex->generation;
	dlist_push_tail(&bp_exec[slot].queue, &c->queue_node);
}

/*
 * Registers the executor of a freshly claimed slot, without waiting for it:
 * the tick polls the handle, and the worker's hello makes it ready.
 */
static bool
exec_start(int slot, const char *dbname, const char *rolname)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	uint32		gen = bp_shared->executors[slot].generation;
	bool		ok;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "builtin_pool", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "bp_executor_main", BGW_MAXLEN);
	strlcpy(w.bgw_type, BP_EXECUTOR_TYPE, BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "builtin_pool executor for %s/%s",
			 dbname, rolname);
	w.bgw_main_arg = Int32GetDatum(slot);
	memcpy(w.bgw_extra, &gen, sizeof(gen));
	w.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(bp_listener_cxt);
	ok = RegisterDynamicBackgroundWorker(&w, &handle);
	MemoryContextSwitchTo(old);
	if (ok)
		bp_exec[slot].handle = handle;
	return ok;
}

/*
 * Picks the executor for an admitted client, starting one if the pool
 * rules say so, queues the client there and hands it over if the executor
 * is ready.  Refuses the client when no executor can take it.
 */
static void
conn_route(PoolConn *c)
{
	bool		dedicated;
	int			pool_id;
	int			best = -1;
	int			fresh = -1;
	uint32		load = 0;
	int			n_exec = 0;
	bool		want_new = false;
	bool		park = false;
	char	   *detail;

	/* during a smart shutdown, as core: no new client */
	if (bp_smart_shutdown && !c->resumed)
	{
		conn_refuse(c, LOG, ERRCODE_CANNOT_CONNECT_NOW,
					"the database system is shutting down", NULL, NULL, NULL);
		return;
	}

	dedicated = bp_database_is_dedicated(c->dbname);
	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	pool_id = bp_pool_lookup(c->port_index, c->dbname, c->user, true);
	if (pool_id >= 0)
	{
		PoolDesc   *p = &bp_shared->pools[pool_id];

		if (p->n_executors == 0)
			p->dedicated = dedicated;
		if (!p->dedicated)
			best = exec_least_loaded(pool_id, &load);
		want_new = p->dedicated ||
			(p->n_executors < bp_session_pool_size && (best < 0 || load >= 1));
		if (want_new)
			fresh = bp_executor_claim(pool_id);
		if (fresh < 0 && best >= 0 &&
			pg_atomic_read_u32(&bp_shared->executors[best].n_pinned) > 0)
			park = true;		/* it would wait for another's session */
		else if (fresh >= 0 || best >= 0)
			exec_assign(c, fresh >= 0 ? fresh : best);
		else if (p->n_executors == 0)
			p->in_use = false;	/* do not leak an empty pool */
		n_exec = p->n_executors;
	}
	LWLockRelease(bp_shared->lock);

	if (fresh >= 0 && !exec_start(fresh, c->dbname, c->user))
	{
		LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
		dlist_delete(&c->queue_node);
		c->exec_slot = -1;
		bp_executor_release(fresh);
		if (best >= 0 &&
			pg_atomic_read_u32(&bp_shared->executors[best].n_pinned) > 0)
			park = true;
		else if (best >= 0)
			exec_assign(c, best);
		LWLockRelease(bp_shared->lock);
		if (best < 0)
		{
			conn_refuse(c, LOG, ERRCODE_TOO_MANY_CONNECTIONS,
						"could not start a pool executor",
						"All background worker slots are in use; they are shared with parallel query and other background workers.",
						"Increase max_worker_processes.", NULL);
			return;
		}
	}
	if (park || (c->exec_slot < 0 && c->resumed))
	{
		/* wait here for an executor that is free to serve it */
		c->state = PC_PARKED;
		c->io.want = 0;
		bp_io_update(&c->io);
		dlist_push_tail(&bp_parked, &c->queue_node);
		return;
	}
	if (c->exec_slot < 0)
	{
		if (pool_id < 0)
			detail = psprintf("All %d pool entries are in use.", bp_shared->max_pools);
		else if (want_new)
			detail = psprintf("All %d executor slots are in use.",
							  bp_shared->max_executors);
		else
			detail = psprintf("The pool for database \"%s\", user \"%s\" on port %d has %d executors holding %d sessions each.",
							  c->dbname, c->user, bp_port + c->port_index,
							  n_exec, bp_max_sessions);
		conn_refuse(c, LOG, ERRCODE_TOO_MANY_CONNECTIONS,
					"sorry, too many clients already", detail,
					want_new || pool_id < 0 ? "Increase max_worker_processes." :
					"Raise builtin_pool.max_sessions or builtin_pool.session_pool_size.",
					NULL);
		return;
	}

	if (!c->resumed &&
		!pg_strong_random(&c->cancel_key, sizeof(c->cancel_key)))
		c->cancel_key = pg_prng_uint32(&pg_global_prng_state);
	if (c->cancel_key == 0)
		c->cancel_key = 1;
	c->state = PC_QUEUED;
	c->io.want = 0;
	bp_io_update(&c->io);
	exec_flush(c->exec_slot);
}

/*
 * A TLS client about to be handed over: its relay (relay.c) starts now,
 * once, and the executor gets the relay's end as the session's socket.
 * Returns false if c had to be refused.
 */
static bool
conn_start_relay(PoolConn *c)
{
	if (c->ssl == NULL)
		return true;
	c->plain_fd = bp_relay_start(c->ssl, c->io.fd);
	if (c->plain_fd < 0)
	{
		conn_refuse(c, LOG, ERRCODE_INSUFFICIENT_RESOURCES,
					"could not start the TLS relay of a pool connection",
					NULL, NULL, NULL);
		return false;
	}
	c->ssl = NULL;				/* the relay's now */
	return true;
}

/*
 * Sends the clients queued for a ready executor over its channel, each as
 * one datagram carrying the socket, then closes our copy.  A full channel
 * keeps the rest queued until it polls writable; a broken one loses the
 * executor (its queue is routed again).
 */
static void
exec_flush(int slot)
{
	PoolExecLocal *e = &bp_exec[slot];
	PoolChan   *ch = e->chan;

	if (ch == NULL)
		return;
	ch->retry = false;
	while (!dlist_is_empty(&e->queue) &&
		   bp_shared->executors[slot].state == PE_READY)
	{
		PoolConn   *c = dlist_head_element(PoolConn, queue_node, &e->queue);
		PoolHandoff h;
		int			body_len = c->pktlen - 8;
		int			fds[BP_CHANNEL_MAX_FDS];
		int			nfds = 0;

		if (!conn_start_relay(c))
			continue;			/* c was refused */

		memset(&h, 0, sizeof(h));
		h.magic = BP_HANDOFF_MAGIC;
		h.cancel_key = c->cancel_key;
		h.port_index = c->port_index;
		h.proto = c->proto;
		h.startup_len = body_len;
		h.state_len = c->state_len;
		h.tls = c->tls.w;
		if (c->plain_fd >= 0)
			fds[nfds++] = c->plain_fd;
		fds[nfds++] = c->io.fd;
		memcpy(bp_handoff_buf, &h, sizeof(h));
		memcpy(bp_handoff_buf + sizeof(h), c->pkt + 4, body_len);
		if (c->state_len > 0)
			memcpy(bp_handoff_buf + sizeof(h) + body_len, c->moved_state,
				   c->state_len);
		if (bp_channel_send(ch->io.fd, bp_handoff_buf,
							sizeof(h) + body_len + c->state_len, fds, nfds) < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ETOOMANYREFS || errno == ENOBUFS || errno == ENOMEM)
			{
				ch->retry = true;	/* the tick tries again */
				break;
			}
			ereport(LOG,
					(errcode_for_socket_access(),
					 errmsg("builtin_pool could not hand a client over to executor %d: %m",
							slot)));
			chan_close(ch);
			return;
		}
		pg_atomic_fetch_add_u32(&bp_shared->executors[slot].channel_sends, 1);
		dlist_delete(&c->queue_node);
		c->exec_slot = -1;		/* the executor counts it from now on */
		conn_close(c);
	}
	ch->io.want = BP_EV_READ;
	if (ch->ack_pending || (!dlist_is_empty(&e->queue) && !ch->retry &&
							bp_shared->executors[slot].state == PE_READY))
		ch->io.want |= BP_EV_WRITE;
	bp_io_update(&ch->io);
}

/* Moves slot's queue to *to, optionally uncounting each client */
static void
exec_take_queue(int slot, dlist_head *to, bool uncount)
{
	dlist_init(to);
	while (!dlist_is_empty(&bp_exec[slot].queue))
	{
		PoolConn   *c = dlist_head_element(PoolConn, queue_node,
										   &bp_exec[slot].queue);

		if (uncount)
			conn_unqueue(c);
		else
		{
			dlist_delete(&c->queue_node);
			c->exec_slot = -1;
		}
		dlist_push_tail(to, &c->queue_node);
	}
}

/*
 * The executor in slot is gone (channel EOF or error) or never started
 * (failed_start).  Frees the slot; its queued clients go to another
 * executor, or get an error if the executor could not even start.
 */
static void
exec_lost(int slot, bool failed_start)
{
	PoolExecLocal *e = &bp_exec[slot];
	dlist_head	moved;

	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	bp_executor_release(slot);
	LWLockRelease(bp_shared->lock);
	if (e->handle)
		pfree(e->handle);
	e->handle = NULL;
	e->chan = NULL;
	e->orphan_pid = 0;

	exec_take_queue(slot, &moved, false);
	while (!dlist_is_empty(&moved))
	{
		PoolConn   *c = dlist_container(PoolConn, queue_node,
										dlist_pop_head_node(&moved));

		if (failed_start)
			conn_refuse(c, LOG, ERRCODE_CONNECTION_FAILURE,
						psprintf("could not start a pool executor for database \"%s\"",
								 c->dbname),
						NULL, "Check the server log for the executor's error.", NULL);
		else
			conn_route(c);
	}
}

/*
 * PoolRetire: the executor takes no more clients.  Handoffs already sent
 * precede the ack on the channel and are served; the clients still queued
 * are routed elsewhere.
 */
static void
exec_retire(PoolChan *ch)
{
	dlist_head	moved;

	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	bp_shared->executors[ch->slot].state = PE_EXITING;
	LWLockRelease(bp_shared->lock);
	exec_take_queue(ch->slot, &moved, true);
	ch->ack_pending = true;
	chan_writable(ch);			/* may close ch */
	while (!dlist_is_empty(&moved))
		conn_route(dlist_container(PoolConn, queue_node,
								   dlist_pop_head_node(&moved)));
}

/* ---------------------------------------------------------------------
 * Executor channel
 * ---------------------------------------------------------------------
 */

/* Closes a channel; an executor that had greeted us is lost with it */
static void
chan_close(PoolChan *ch)
{
	int			slot = ch->slot;

	bp_io_unregister(&ch->io);
	close(ch->io.fd);
	if (slot < 0)
		dlist_delete(&ch->node);
	pfree(ch);
	if (slot >= 0)
	{
		bp_exec[slot].chan = NULL;
		exec_lost(slot, false);
	}
}

/*
 * Checks a hello: the slot must be waiting for this generation, and the
 * peer must be the very process the postmaster started for it.  While the
 * postmaster has not yet published the worker's pid the hello stays
 * pending and the tick checks again.
 */
static void
chan_hello(PoolChan *ch)
{
	PoolHello  *h = &ch->hello;
	PoolExecutor *ex = NULL;
	PoolExecLocal *e = NULL;
	pid_t		pid = 0;
	const char *why = NULL;

	if (h->slot < 0 || h->slot >= bp_shared->max_executors)
		why = "The slot number is out of range.";
	else
	{
		ex = &bp_shared->executors[h->slot];
		e = &bp_exec[h->slot];
		if (ex->state != PE_STARTING || ex->generation != h->generation ||
			e->handle == NULL || e->chan != NULL)
			why = "The slot is not waiting for this executor.";
		else if (!bp_channel_peer_ok(ch->io.fd, h->pid))
			why = "The peer's credentials do not match its hello.";
		else
		{
			BgwHandleStatus st = GetBackgroundWorkerPid(e->handle, &pid);

			if (st == BGWH_NOT_YET_STARTED)
				return;
			if (st != BGWH_STARTED || pid != h->pid)
				why = "The peer is not the worker registered for the slot.";
		}
	}
	if (why)
	{
		ereport(LOG,
				(errmsg("builtin_pool refused an executor channel connection from PID %d for slot %d",
						(int) h->pid, h->slot),
				 errdetail_internal("%s", why)));
		chan_close(ch);
		return;
	}
	ch->hello_pending = false;
	dlist_delete(&ch->node);
	ch->slot = h->slot;
	e->chan = ch;
	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	ex->state = PE_READY;
	ex->pid = pid;
	LWLockRelease(bp_shared->lock);
	exec_flush(ch->slot);
}

/*
 * PoolHandback: a session leaves its executor (which became pinned to
 * another session) for another executor of the same pool.  It is routed
 * like a new client, minus authentication, keeping its cancel key.
 */
static void
chan_handback(PoolChan *ch, const char *msg, ssize_t n, int *fds)
{
	PoolHandback h;
	PoolConn   *c;
	PoolDesc   *pool;

	memcpy(&h, msg, sizeof(h));
	if (h.slot != ch->slot || h.startup_len <= 0 || h.state_len < 0 ||
		h.startup_len > MAX_STARTUP_PACKET_LENGTH || h.state_len > BP_STATE_MAX ||
		n != sizeof(h) + h.startup_len + h.state_len ||
		(h.tls.suite != 0) != (fds[1] >= 0))
	{
		ereport(LOG,
				(errmsg("builtin_pool ignored a malformed session handback from executor %d",
						ch->slot)));
		bp_channel_close_fds(fds);
		return;
	}

	c = MemoryContextAllocZero(bp_conn_cxt, sizeof(PoolConn));
	/* a TLS session: its relay's end, then the client's TCP socket */
	c->io.fd = h.tls.suite != 0 ? fds[1] : fds[0];
	c->plain_fd = h.tls.suite != 0 ? fds[0] : -1;
	c->tls.w = h.tls;
	c->resumed = true;
	c->from_slot = ch->slot;
	c->exec_slot = -1;
	c->port_index = h.port_index;
	c->proto = h.proto;
	c->cancel_key = h.cancel_key;
	c->pktlen = h.startup_len + 8;
	c->pkt = MemoryContextAllocZero(bp_conn_cxt, h.startup_len + 5);
	memcpy(c->pkt + 4, msg + sizeof(h), h.startup_len);
	c->moved_state = MemoryContextAlloc(bp_conn_cxt, Max(h.state_len, 1));
	memcpy(c->moved_state, msg + sizeof(h) + h.startup_len, h.state_len);
	c->state_len = h.state_len;
	c->raddr.salen = sizeof(c->raddr.addr);
	if (getpeername(c->io.fd, (struct sockaddr *) &c->raddr.addr, &c->raddr.salen) < 0)
		c->raddr.salen = 0;
	strlcpy(c->remote_host, "moved session", sizeof(c->remote_host));

	LWLockAcquire(bp_shared->lock, LW_SHARED);
	pool = &bp_shared->pools[bp_shared->executors[ch->slot].pool_id];
	strlcpy(c->dbname, pool->dbname, NAMEDATALEN);
	strlcpy(c->user, pool->rolname, NAMEDATALEN);
	LWLockRelease(bp_shared->lock);

	c->io.handler = conn_ready;
	c->io.want = 0;				/* nothing to read: the executor reads */
	bp_io_register(&c->io);
	dlist_push_tail(&bp_conns, &c->all_node);
	conn_route(c);
}

/* Reads what an executor sent: its hello, then retires and handbacks */
static void
chan_read(PoolChan *ch)
{
	int			id = ch->io.id;
	uint32		gen = ch->io.gen;
	int			i;

	for (i = 0; i < 64 && bp_io_alive(id, gen); i++)
	{
		char	   *msg = bp_chan_buf;
		int			fds[BP_CHANNEL_MAX_FDS];
		uint32		magic = 0;
		ssize_t		n = bp_channel_recv(ch->io.fd, msg, BP_HANDOFF_MAX, fds);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0)
		{
			bp_channel_close_fds(fds);
			if (n < 0)
				ereport(LOG,
						(errcode_for_socket_access(),
						 errmsg("builtin_pool could not read from an executor channel: %m")));
			chan_close(ch);
			return;
		}
		if (n >= sizeof(uint32))
			memcpy(&magic, msg, sizeof(magic));
		if (ch->slot >= 0 && magic == BP_HANDBACK_MAGIC && fds[0] >= 0 &&
			n >= sizeof(PoolHandback))
		{
			chan_handback(ch, msg, n, fds);
			continue;
		}
		bp_channel_close_fds(fds);	/* only handbacks carry descriptors */
		if (ch->slot < 0 && !ch->hello_pending)
		{
			if (n != sizeof(PoolHello) || magic != BP_HELLO_MAGIC)
			{
				ereport(LOG,
						(errmsg("builtin_pool received an invalid hello on the executor channel")));
				chan_close(ch);
				return;
			}
			memcpy(&ch->hello, msg, sizeof(PoolHello));
			ch->hello_pending = true;
			chan_hello(ch);
		}
		else if (ch->slot >= 0 && n == sizeof(PoolRetire) &&
				 magic == BP_RETIRE_MAGIC &&
				 ((PoolRetire *) msg)->slot == ch->slot)
			exec_retire(ch);
		else
			ereport(LOG,
					(errmsg("builtin_pool ignored an unexpected message on the executor channel")));
	}
}

/* The channel has room: send the pending retire ack, then queued clients */
static void
chan_writable(PoolChan *ch)
{
	if (ch->ack_pending)
	{
		PoolRetireAck ack;

		ack.magic = BP_RETIRE_ACK_MAGIC;
		if (bp_channel_send(ch->io.fd, &ack, sizeof(ack), NULL, 0) == sizeof(ack))
		{
			ch->ack_pending = false;
			pg_atomic_fetch_add_u32(&bp_shared->executors[ch->slot].channel_sends, 1);
		}
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		{
			chan_close(ch);
			return;
		}
	}
	if (ch->slot >= 0)
		exec_flush(ch->slot);
}

/* pool_io handler of a channel socket */
static void
chan_ready(PoolIo *io, bool readable, bool writable)
{
	int			id = io->id;
	uint32		gen = io->gen;

	if (readable)
		chan_read((PoolChan *) io);
	if (writable && bp_io_alive(id, gen))
		chan_writable((PoolChan *) io);
}

/* A new executor connection; it must greet us before anything else */
static void
chan_accept(int fd)
{
	PoolChan   *ch;

	if (!bp_channel_peer_ok(fd, 0))
	{
		ereport(LOG,
				(errmsg("builtin_pool refused a channel connection from another OS user")));
		close(fd);
		return;
	}
	ch = MemoryContextAllocZero(bp_listener_cxt, sizeof(PoolChan));
	ch->io.fd = fd;
	ch->io.handler = chan_ready;
	ch->slot = -1;
	ch->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   BP_HELLO_TIMEOUT_MS);
	bp_io_register(&ch->io);
	dlist_push_tail(&bp_new_chans, &ch->node);
	ch->io.want = BP_EV_READ;
	bp_io_update(&ch->io);
}

/* pool_io accept handler: port_index -1 is the executor channel */
static void
on_accept(int fd, int port_index, bool is_unix)
{
	if (port_index < 0)
		chan_accept(fd);
	else
		conn_accept(fd, port_index, is_unix);
}

/* ---------------------------------------------------------------------
 * Main loop
 * ---------------------------------------------------------------------
 */

/*
 * Executor slots left by a previous listener: their channel died with it.
 * Live ones are marked exiting (cancels still reach them) and freed once
 * their process is gone; dead ones are freed now.
 */
static void
adopt_orphans(void)
{
	int			i;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];
		bool		alive;

		if (ex->state == PE_FREE)
			continue;
		alive = ex->pid > 0 && kill(ex->pid, 0) == 0;
		LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
		if (alive)
		{
			ex->state = PE_EXITING;
			bp_exec[i].orphan_pid = ex->pid;
		}
		else
			bp_executor_release(i);
		LWLockRelease(bp_shared->lock);
	}
}

/*
 * A client's deadline passed: refuse it (queued, or mid-authentication as
 * core words it) or drop it (reading its startup packet)
 */
static void
conn_expire(PoolConn *c)
{
	if (c->state == PC_AUTH)
	{
		conn_refuse(c, LOG, ERRCODE_QUERY_CANCELED,
					"canceling authentication due to timeout", NULL, NULL,
					NULL);
		return;
	}
	if (c->state == PC_QUEUED || c->state == PC_PARKED)
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
	conn_close(c);
}

/*
 * Periodic work: client deadlines, executors that died while starting,
 * handoffs to retry, pending hellos, orphans, paused listen sockets.
 * Returns how long the loop may sleep, in milliseconds.
 */
static long
tick(void)
{
	static TimestampTz last_slow = 0;
	TimestampTz now = GetCurrentTimestamp();
	bool		slow = TimestampDifferenceExceeds(last_slow, now, 1000);
	bool		busy = false;
	long		timeout = BP_IDLE_TICK_MS;
	dlist_mutable_iter it;
	int			i;

	/* bp_conns is in accept order, hence (nearly) in deadline order */
	dlist_foreach_modify(it, &bp_conns)
	{
		PoolConn   *c = dlist_container(PoolConn, all_node, it.cur);

		if (c->resumed)
			continue;			/* an established session: no deadline */
		if (c->deadline > now)
		{
			timeout = Min(timeout,
						  TimestampDifferenceMilliseconds(now, c->deadline) + 1);
			break;
		}
		conn_expire(c);
	}

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecLocal *e = &bp_exec[i];
		pid_t		pid;

		if (e->handle && e->chan == NULL &&
			bp_shared->executors[i].state == PE_STARTING)
		{
			if (GetBackgroundWorkerPid(e->handle, &pid) == BGWH_STOPPED)
				exec_lost(i, true);
			else
				busy = true;
		}
		else if (e->chan && e->chan->retry)
		{
			exec_flush(i);
			busy = true;
		}
		else if (e->orphan_pid > 0 && slow &&
				 kill(e->orphan_pid, 0) < 0 && errno == ESRCH)
		{
			LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
			bp_executor_release(i);
			LWLockRelease(bp_shared->lock);
			e->orphan_pid = 0;
		}
	}

	dlist_foreach_modify(it, &bp_new_chans)
	{
		PoolChan   *ch = dlist_container(PoolChan, node, it.cur);

		busy = true;
		if (ch->hello_pending)
			chan_hello(ch);
		else if (ch->deadline <= now)
		{
			ereport(LOG,
					(errmsg("builtin_pool dropped an executor channel connection that sent no hello")));
			chan_close(ch);
		}
	}

	/* parked clients try again: an executor may have been unpinned */
	if (!dlist_is_empty(&bp_parked))
	{
		dlist_head	retry;

		dlist_init(&retry);
		while (!dlist_is_empty(&bp_parked))
			dlist_push_tail(&retry, dlist_pop_head_node(&bp_parked));
		while (!dlist_is_empty(&retry))
		{
			PoolConn   *c = dlist_container(PoolConn, queue_node,
											dlist_pop_head_node(&retry));

			c->state = PC_QUEUED;	/* in no list now; exec_slot is -1 */
			conn_route(c);
		}
		busy |= !dlist_is_empty(&bp_parked);
	}

	busy |= bp_io_tick(now, slow);
	if (slow)
	{
		last_slow = now;
		pgstat_report_stat(false);

		/* a smart shutdown waits for the pool's sessions (shutdown.c) */
		bp_smart_shutdown = bp_guard_tick();
		if (bp_smart_shutdown && bp_pool_sessions_total() == 0)
			bp_guard_release();
		if (dlist_is_empty(&bp_conns))
			MemoryContextReset(bp_conn_cxt);	/* give back a burst's memory */
	}
	return busy ? Min(timeout, BP_BUSY_TICK_MS) : timeout;
}

/* Tells clients still in our hands that we stop, then exits */
static void
listener_shutdown(void)
{
	dlist_iter	it;
	StringInfoData buf;

	initStringInfo(&buf);
	bp_build_error(&buf, "FATAL", ERRCODE_ADMIN_SHUTDOWN,
				   "terminating connection due to administrator command",
				   NULL, NULL);
	dlist_foreach(it, &bp_conns)
	{
		PoolConn   *c = dlist_container(PoolConn, all_node, it.cur);

		(void) send(c->io.fd, buf.data, buf.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	bp_io_shutdown();

	/*
	 * Exit 1, not 0: a bgworker that exits 0 is unregistered, so a
	 * pg_terminate_backend() on the listener would take the pool away until
	 * the next restart.  With 1 the postmaster starts it again after
	 * bgw_restart_time, unless the server itself is shutting down.
	 */
	proc_exit(1);
}

/*
 * Entry point of the listener background worker.  Never returns: exits on
 * SIGTERM or with the postmaster; pool_io removes the socket files.
 */
void
bp_listener_main(Datum main_arg)
{
	WaitEventSet *wes;
	int			i;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGUSR1, procsignal_sigusr1_handler);
	pqsignal(SIGINT, SIG_IGN);	/* a cancel has nothing to cancel here */
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	bp_listener_cxt = AllocSetContextCreate(TopMemoryContext,
											"builtin_pool listener",
											ALLOCSET_DEFAULT_SIZES);
	bp_conn_cxt = AllocSetContextCreate(bp_listener_cxt,
										"builtin_pool connections",
										ALLOCSET_DEFAULT_SIZES);
	bp_scratch_cxt = AllocSetContextCreate(bp_listener_cxt,
										   "builtin_pool scratch",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(bp_listener_cxt);

	bp_exec = palloc0(bp_shared->max_executors * sizeof(PoolExecLocal));
	for (i = 0; i < bp_shared->max_executors; i++)
		dlist_init(&bp_exec[i].queue);
	adopt_orphans();
	bp_auth_load_hba(bp_listener_cxt);
	bp_tls_configure(true);
	pg_atomic_write_u32(&bp_shared->n_tls_sessions, 0);	/* a restart's relays are gone */
	bp_io_init(bp_use_io_uring, on_accept);
	bp_io_listen_add(bp_channel_listen(), -1, true, pstrdup(BP_CHANNEL_PATH));
	if (bp_io_open_pool_ports() == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool could not open any pool socket"),
				 errhint("Check builtin_pool.port, listen_addresses and unix_socket_directories.")));
	bp_io_listen_start();

	wes = CreateWaitEventSet(bp_listener_cxt, 3);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wes, WL_SOCKET_READABLE, bp_io_wait_fd(), NULL, NULL);
	ereport(LOG,
			(errmsg("builtin_pool listener ready, using %s",
					bp_io_using_uring() ? "io_uring" : "epoll")));

	for (;;)
	{
		WaitEvent	events[3];
		long		timeout;
		int			n;

		MemoryContextSwitchTo(bp_scratch_cxt);
		MemoryContextReset(bp_scratch_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			listener_shutdown();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			bp_auth_load_hba(bp_listener_cxt);
			bp_tls_configure(false);
		}
		if (catchupInterruptPending)
		{
			ProcessCatchupInterrupt();
			MemoryContextSwitchTo(bp_scratch_cxt);
		}

		bp_io_drain();
		timeout = tick();
		bp_io_flush();
		n = WaitEventSetWait(wes, timeout, events, lengthof(events),
							 PG_WAIT_EXTENSION);
		for (i = 0; i < n; i++)
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
	}
}
