/*-------------------------------------------------------------------------
 *
 * channel.h
 *	  The AF_UNIX SEQPACKET channel between the listener and its executors.
 *
 * The listener listens on BP_CHANNEL_PATH, relative to the data directory
 * (the cwd of every background worker), so only the server's own OS user
 * can reach it; it also checks SO_PEERCRED.  An executor connects once at
 * startup and sends PoolHello; from then on the listener sends one
 * PoolHandoff per client, carrying the client's socket (SCM_RIGHTS) and the
 * body of its startup packet, in a single datagram.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHANNEL_H
#define CHANNEL_H

#include "libpq/pqcomm.h"

#include "tls.h"

#define BP_CHANNEL_PATH		"builtin_pool.channel"
#define BP_HELLO_MAGIC		0x42504831	/* "BPH1" */
#define BP_HANDOFF_MAGIC	0x42504431	/* "BPD1" */
#define BP_RETIRE_MAGIC		0x42505231	/* "BPR1" */
#define BP_RETIRE_ACK_MAGIC	0x42504131	/* "BPA1" */
#define BP_HANDBACK_MAGIC	0x42504231	/* "BPB1" */
#define BP_GREETING_MAGIC	0x42504731	/* "BPG1" */

/* executor -> listener, once, right after connect() */
typedef struct PoolHello
{
	uint32		magic;
	int32		slot;			/* executor slot index */
	uint32		generation;		/* slot generation it was started for */
	int32		pid;			/* must match SO_PEERCRED */
} PoolHello;

/* listener -> executor, one per client, followed by startup_len bytes */
typedef struct PoolHandoff
{
	uint32		magic;
	uint32		cancel_key;		/* per-session key sent in BackendKeyData */
	int32		port_index;		/* which pool port accepted the client */
	ProtocolVersion proto;		/* from the startup packet */
	int32		startup_len;	/* length of the name/value pairs that follow */
	int32		state_len;		/* > 0: a session moved from another executor;
								 * its state (session.c) follows the pairs */
	BpTlsWriter tls;			/* suite != 0: a TLS session (tls.h) */
	Oid			roleid;			/* whom the listener admitted: the executor
								 * refuses a client not of its own role and
								 * database */
	Oid			dboid;
	int32		greeted;		/* 1: the listener sent the login greeting
								 * (greeting.c), up to ReadyForQuery */
	uint32		greeting_hash;	/* greeted: hash of the settings it reported */
	int32		stab_slot;		/* its pool_sessions slot, or -1 */
	uint64		session_id;		/* the id that slot must still hold */
} PoolHandoff;

/*
 * executor -> listener, with the client's socket: a session moves to
 * another executor of the same pool, because this one became pinned to
 * another session.  The listener routes it like a new client, but without
 * authentication and with its cancel key, and sends it on as a PoolHandoff
 * carrying the same state.
 */
typedef struct PoolHandback
{
	uint32		magic;
	int32		slot;			/* the executor giving the session back */
	uint32		cancel_key;
	int32		port_index;
	ProtocolVersion proto;
	int32		startup_len;
	int32		state_len;
	BpTlsWriter tls;			/* as in PoolHandoff */
	int32		waited_ms;		/* how long its request waited there, 0 if
								 * it had none (the executor was pinned) */
	int32		greeted;		/* as in PoolHandoff, for a session given back
								 * unopened (state_len 0) */
	uint32		greeting_hash;
	int32		stab_slot;		/* as in PoolHandoff */
	uint64		session_id;
} PoolHandback;

/*
 * executor -> listener: the ParameterStatus messages an executor sent to
 * greet a new session of its pool with these startup pairs, read while
 * the login epoch was still epoch (greeting.c).  Followed by startup_len
 * bytes of pairs, then status_len bytes of messages.
 */
typedef struct PoolGreetingNote
{
	uint32		magic;
	int32		slot;
	uint32		epoch;
	int32		port_index;
	int32		startup_len;
	int32		status_len;
} PoolGreetingNote;

/* Largest serialized session state that may move */
#define BP_STATE_MAX		(64 * 1024)

/*
 * executor -> listener: "I have no sessions and want to exit" (idle timeout,
 * or a dedicated executor whose session ended).  The listener marks the slot
 * PE_EXITING, so it hands the executor nothing more, and answers with a
 * PoolRetireAck.  Handoffs sent before the ack arrive before it (the channel
 * keeps order); the executor serves those and exits when it has none left.
 */
typedef struct PoolRetire
{
	uint32		magic;
	int32		slot;
} PoolRetire;

typedef struct PoolRetireAck
{
	uint32		magic;
} PoolRetireAck;

/* Largest datagram on the channel */
#define BP_HANDOFF_MAX	(sizeof(PoolHandback) + MAX_STARTUP_PACKET_LENGTH + BP_STATE_MAX)

/* Listener: creates the listening socket (non-blocking); ereports ERROR on failure. */
extern int	bp_channel_listen(void);

/* Executor: connects (blocking), returns the fd; ereports ERROR on failure. */
extern int	bp_channel_connect(void);

/* true if the peer of fd runs as our OS user and, if pid != 0, has that pid */
extern bool bp_channel_peer_ok(int fd, pid_t pid);

/*
 * A client travels as up to two descriptors: its socket, or for a TLS
 * session the plaintext stream from the listener's TLS reader (tls.h) and
 * then the TCP socket the executor writes its records to.
 */
#define BP_CHANNEL_MAX_FDS	2

/*
 * Sends one datagram with nfds descriptors attached.  Never blocks and
 * never raises SIGPIPE.  Returns len on success, -1 with errno set (EAGAIN
 * when the channel is full).
 */
extern ssize_t bp_channel_send(int chan, const void *msg, size_t len,
							   const int *fds, int nfds);

/*
 * Receives one datagram without blocking.  fds[BP_CHANNEL_MAX_FDS] gets the
 * received descriptors (close-on-exec), -1 for each one not sent.  Returns
 * the datagram length, 0 at EOF, -1 with errno set (EAGAIN when nothing is
 * queued, EPROTO when the datagram or its control data was truncated; any
 * fd received with it is closed).
 */
extern ssize_t bp_channel_recv(int chan, void *buf, size_t buflen, int *fds);

/*
 * Do received descriptors fit the session's writer?  A TLS session comes
 * with both, a plain one with its socket alone.
 */
static inline bool
bp_channel_fds_fit(const BpTlsWriter *w, const int *fds)
{
	return fds[0] >= 0 && (w->suite != 0) == (fds[1] >= 0);
}

/* Where output to the client of fitting fds goes: its TCP socket */
static inline int
bp_channel_output_fd(const int *fds)
{
	return fds[1] >= 0 ? fds[1] : fds[0];
}

/* Closes every descriptor in fds[BP_CHANNEL_MAX_FDS] and sets it to -1 */
extern void bp_channel_close_fds(int *fds);

#endif							/* CHANNEL_H */
