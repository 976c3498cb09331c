/*-------------------------------------------------------------------------
 *
 * listener.h
 *	  What the parts of the pool listener share: conn.c owns a client
 *	  connection's state and the lists it moves between, client.c takes a
 *	  new client from accept() to admission, proxy.c routes admitted clients
 *	  to executors and runs the listener's loop.  proxy.c calls client.c,
 *	  both call conn.c, never the other way round.  Private to the listener.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LISTENER_H
#define LISTENER_H

#include "lib/ilist.h"
#include "libpq/pqcomm.h"

#include "auth.h"
#include "pool_io.h"
#include "tls.h"

typedef enum PoolConnState
{
	PC_NEW,						/* just accepted or handed back: on no list */
	PC_READING,					/* reading a startup packet */
	PC_TLS,						/* in the TLS handshake after SSLRequest */
	PC_LOOKUP,					/* startup packet read, but a DDL holds a
								 * catalog auth.c must read: retried each
								 * tick (conn_retry_lookups) */
	PC_AUTH,					/* pg_hba.conf asked for a password: in the
								 * exchange auth.c drives */
	PC_ADMITTED,				/* admitted (or handed back): proxy.c routes
								 * it next */
	PC_QUEUED,					/* waiting for its executor (exec_slot) */
	PC_PARKED,					/* every executor that could take it is
								 * pinned: retried each tick */
	PC_HANDED,					/* sent to an executor: no longer ours */
	PC_CLOSED					/* being freed */
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
	dlist_node	state_node;		/* on its state's list (conn.c) */
	char		lenbuf[4];
	int			have;			/* bytes read, length word included */
	int			pktlen;			/* length word's value; 0 until read */
	char	   *pkt;			/* packet after the length word, NUL added */
	ProtocolVersion proto;
	char		user[NAMEDATALEN];
	char		dbname[NAMEDATALEN];
	Oid			roleid;			/* what user and dbname named when admitted */
	Oid			dboid;
	int			exec_slot;		/* executor it is queued for, or -1 */
	uint32		exec_gen;
	uint32		cancel_key;		/* in the cancel key table while non-zero */
	pid_t		key_pid;		/* the pid its client was told in
								 * BackendKeyData, 0 until it was told */
	bool		greeted;		/* the listener sent its login greeting */
	uint32		greeting_hash;	/* of the settings that greeting reported */
	bool		handed_over;	/* was PC_HANDED: the executor has it */
	bool		main_port;		/* authenticated by a main port backend
								 * (mainport.c) */
	int			stab_slot;		/* its pool_sessions slot while ours, or -1
								 * (session_table.h) */
	uint64		session_id;

	/* the password exchange, while PC_AUTH */
	PoolAuthExchange *auth;
	char		auth_hdr[5];	/* type byte and length word */
	int			auth_have;		/* bytes of the message read */
	uint32		auth_len;		/* length word's value, once read */
	char	   *auth_msg;		/* body, NUL added */

	/* a session moving between executors (PoolHandback) */
	bool		resumed;
	int			from_slot;		/* the executor that gave it back */
	int			waited_ms;		/* how long its request waited there */
	char	   *moved_state;	/* serialized session state */
	int			state_len;
} PoolConn;

/* Every PoolConn, in accept order, allocated in bp_conn_cxt (conn.c) */
extern dlist_head bp_conns;
extern MemoryContext bp_conn_cxt;

/* Logs a client's failure at elevel with the client's address as context */
#define conn_log(c, elevel, ...) \
	ereport((elevel), (__VA_ARGS__, \
					   errcontext("pool connection from %s on port %d", \
								  (c)->remote_host, bp_port_for_index((c)->port_index))))

/* conn.c: a connection's life; the only place that changes c->state */
extern void conn_init(MemoryContext parent, int max_executors);
extern PoolConn *conn_new(int fd, int port_index, PoolIoHandler handler);
extern bool conn_set_state(PoolConn *c, PoolConnState s);
extern void conn_pending_refusal(PoolConn *c, char **detail, char **hint);
extern PoolConn *conn_first(PoolConnState s);
extern PoolConn *conn_first_queued(int slot);
extern void conn_close(PoolConn *c);

/* client.c: from accept() to admission (PC_ADMITTED) */
extern void conn_accept(int fd, int port_index, bool is_unix);
extern void conn_ready(PoolIo *io, bool readable, bool writable);
extern void conn_refuse(PoolConn *c, int elevel, int sqlstate, const char *msg,
						const char *detail, const char *hint,
						const char *logdetail);
extern void conn_expire(PoolConn *c);
extern bool conn_retry_lookups(void);
extern void conn_forward_cancel(pid_t pid, uint32 key, const char *from);
extern void conn_adopt_main(int fd, ProtocolVersion proto, const char *body,
							int len);

#endif							/* LISTENER_H */
