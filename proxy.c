/*-------------------------------------------------------------------------
 *
 * proxy.c
 *	  The pool listener: the background worker that owns the pool ports.
 *
 * The listener accepts clients on builtin_pool.port and the ports after it
 * (TCP on listen_addresses, Unix sockets in unix_socket_directories), reads
 * each client's startup packet with a non-blocking state machine, answers
 * SSLRequest/GSSENCRequest with 'N', routes CancelRequests to executors,
 * checks pg_hba.conf and the catalogs, picks the pool and the executor,
 * launches executors on demand and hands the client's socket over to its
 * executor through the channel (channel.c).  It never sees query traffic,
 * and nothing in it blocks: the one wait is WaitEventSetWait().
 *
 * Readiness comes from io_uring (multishot accept, one-shot polls) or, where
 * io_uring is off or refused by the kernel, from a raw epoll set.  Either
 * way a single descriptor (ring or epoll fd) sits in a WaitEventSet with the
 * latch and postmaster death, and both backends feed the same handlers.  An
 * event carries an object index plus a tag, never a pointer: an event that
 * arrives after its connection was closed and its index reused finds a tag
 * mismatch and is dropped.
 *
 * Authentication follows pg_hba.conf, parsed here with tokenize_auth_file()
 * and parse_hba_line(): core's load_hba()/check_hba() crash a background
 * worker (pg15-internals.md, Q7).  Only "trust" and "reject" are served so
 * far; any other method refuses the client with a message that says so.
 *
 * Note about locking: the listener is the only process that changes pool
 * entries and executor slot states, so it reads them without the lock and
 * takes bp_shared->lock exclusively only while writing them.  No syscall
 * runs under the lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utime.h>

#include <liburing.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "common/ip.h"
#include "common/pg_prng.h"
#include "lib/ilist.h"
#include "libpq/hba.h"
#include "libpq/ifaddr.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procsignal.h"
#include "storage/sinval.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "builtin_pool.h"
#include "channel.h"
#include "pool_shmem.h"
#include "startup.h"

#define BP_LISTEN_BACKLOG	4096	/* pgbench opens 1000 clients at once */
#define BP_RING_SQ_ENTRIES	256
#define BP_RING_CQ_ENTRIES	4096
#define BP_MAX_EVENTS		512 /* completions handled per wakeup */
#define BP_ACCEPT_BATCH		64	/* accept() calls per readiness event */
#define BP_ACCEPT_PAUSE_MS	100 /* after EMFILE and friends */
#define BP_HELLO_TIMEOUT_MS 60000	/* executor connected but silent */
#define BP_BUSY_TICK_MS		100
#define BP_IDLE_TICK_MS		1000
#define BP_TOUCH_MS			(58 * 60 * 1000)	/* as core's TouchSocketFiles */

/* Event tags: kind (8 bits), object index (24 bits), tag (32 bits) */
#define UD_ACCEPT	1			/* multishot accept; index = listen socket */
#define UD_LPOLL	2			/* poll on a listen socket, accept by hand */
#define UD_READ		3			/* POLLIN poll on a PoolIo */
#define UD_WRITE	4			/* POLLOUT poll on a PoolIo */
#define UD_IGNORE	5			/* completion of a poll removal */
#define UD_IO		6			/* epoll readiness of a PoolIo; tag = gen */
#define UD_MAKE(k, i, t) \
	((((uint64) (k)) << 56) | (((uint64) (i)) << 32) | (uint64) (t))
#define UD_KIND(ud)		((int) ((ud) >> 56))
#define UD_IDX(ud)		((int) (((ud) >> 32) & 0xFFFFFF))
#define UD_TAG(ud)		((uint32) (ud))
#define BP_MAX_IO		0xFFFFFF

#define EV_READ		1
#define EV_WRITE	2

typedef enum PoolIoKind
{
	PIO_CLIENT,
	PIO_CHANNEL
} PoolIoKind;

/* What the event backends know about a polled descriptor */
typedef struct PoolIo
{
	PoolIoKind	kind;
	int			fd;
	int			id;				/* index in bp_io */
	uint32		gen;			/* fresh tag per registration */
	uint8		want;			/* EV_* the handlers need */
	uint8		armed;			/* EV_* armed (io_uring) or registered (epoll) */
	uint32		rtag;			/* io_uring: tag of the armed POLLIN poll */
	uint32		wtag;			/* io_uring: tag of the armed POLLOUT poll */
} PoolIo;

typedef enum PoolConnState
{
	PC_READING,					/* reading a startup packet */
	PC_QUEUED					/* admitted, waiting for its executor */
} PoolConnState;

/* A client between accept() and handoff */
typedef struct PoolConn
{
	PoolIo		io;				/* first: a PoolIo of kind PIO_CLIENT is one */
	PoolConnState state;
	int			port_index;
	bool		is_unix;
	bool		ssl_done;
	bool		gss_done;
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
} PoolConn;

/* An executor's end of the channel */
typedef struct PoolChan
{
	PoolIo		io;				/* first: a PoolIo of kind PIO_CHANNEL is one */
	int			slot;			/* executor slot once greeted, else -1 */
	bool		hello_pending;	/* hello read, pid not yet confirmed */
	bool		ack_pending;	/* PoolRetireAck still to send */
	bool		retry;			/* a handoff failed for lack of kernel memory */
	PoolHello	hello;
	TimestampTz deadline;		/* for the hello */
	dlist_node	node;			/* in bp_new_chans until greeted */
} PoolChan;

typedef struct PoolListen
{
	int			fd;
	int			port_index;		/* -1 for the executor channel */
	bool		is_unix;
	bool		multishot;		/* io_uring multishot accept, else poll */
	bool		armed;
	uint32		tag;
	TimestampTz paused_until;	/* nonzero while accepting is paused */
	char	   *path;			/* socket file to remove at exit, or NULL */
} PoolListen;

/* Listener-private side of an executor slot */
typedef struct PoolExecLocal
{
	BackgroundWorkerHandle *handle; /* NULL unless this listener started it */
	PoolChan   *chan;			/* NULL until it greeted us */
	dlist_head	queue;			/* PoolConns waiting for it */
	pid_t		orphan_pid;		/* started by a previous listener */
} PoolExecLocal;

/* What auth_lookup() learns from the catalogs and pg_hba.conf */
typedef struct PoolAuthFacts
{
	HbaLine    *hba;			/* first matching line, NULL if none */
	Oid			roleid;
	bool		rolcanlogin;
	bool		rolsuper;
	Oid			dboid;
	bool		datallowconn;
	bool		datinvalid;
	bool		canconnect;
} PoolAuthFacts;

static MemoryContext bp_listener_cxt;
static MemoryContext bp_conn_cxt;
static MemoryContext bp_scratch_cxt;

static PoolIo **bp_io;
static int *bp_io_free;
static int	bp_io_cap;
static int	bp_io_top;
static int	bp_io_nfree;
static uint32 bp_last_tag;

static PoolListen *bp_listens;
static int	bp_nlistens;
static PoolExecLocal *bp_exec;
static dlist_head bp_conns = DLIST_STATIC_INIT(bp_conns);
static dlist_head bp_new_chans = DLIST_STATIC_INIT(bp_new_chans);

static bool bp_ring_on;
static struct io_uring bp_ring;
static int	bp_epfd = -1;
static WaitEventSet *bp_wes;

static MemoryContext bp_hba_cxt;
static List *bp_hba_lines;
static bool bp_hba_warned_hostname;

static char bp_handoff_buf[BP_HANDOFF_MAX];

static void conn_route(PoolConn *c);
static void conn_close(PoolConn *c);
static void chan_close(PoolChan *ch);
static void exec_flush(int slot);

/* ---------------------------------------------------------------------
 * Object table and tags
 * ---------------------------------------------------------------------
 */

/* A nonzero 32-bit tag; wraps after 4 billion arms, long after any use */
static uint32
next_tag(void)
{
	if (++bp_last_tag == 0)
		bp_last_tag = 1;
	return bp_last_tag;
}

/* Gives io an index and a fresh generation; arrays live in bp_listener_cxt */
static void
io_register(PoolIo *io)
{
	int			id;

	if (bp_io_nfree > 0)
		id = bp_io_free[--bp_io_nfree];
	else
	{
		if (bp_io_top == bp_io_cap)
		{
			int			newcap = bp_io_cap * 2;

			if (newcap > BP_MAX_IO)
				elog(ERROR, "builtin_pool listener has too many open descriptors");
			bp_io = repalloc(bp_io, newcap * sizeof(PoolIo *));
			bp_io_free = repalloc(bp_io_free, newcap * sizeof(int));
			bp_io_cap = newcap;
		}
		id = bp_io_top++;
	}
	bp_io[id] = io;
	io->id = id;
	io->gen = next_tag();
	io->want = io->armed = 0;
	io->rtag = io->wtag = 0;
}

/* Frees io's index; the caller has already disarmed it */
static void
io_unregister(PoolIo *io)
{
	bp_io[io->id] = NULL;
	bp_io_free[bp_io_nfree++] = io->id;
}

/* The live object at id with that generation, or NULL if it went away */
static PoolIo *
io_lookup(int id, uint32 gen)
{
	if (id < 0 || id >= bp_io_top || bp_io[id] == NULL || bp_io[id]->gen != gen)
		return NULL;
	return bp_io[id];
}

/* ---------------------------------------------------------------------
 * Event backends: io_uring or epoll, same handlers
 * ---------------------------------------------------------------------
 */

/* A free SQE; submits pending ones when the queue is full */
static struct io_uring_sqe *
ring_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bp_ring);

	if (sqe == NULL)
	{
		(void) io_uring_submit(&bp_ring);
		sqe = io_uring_get_sqe(&bp_ring);
		if (sqe == NULL)
			elog(ERROR, "io_uring submission queue of builtin_pool is full");
	}
	return sqe;
}

/* Hands queued SQEs to the kernel; a failure is retried on the next tick */
static void
ring_submit(void)
{
	int			rc = io_uring_submit(&bp_ring);

	if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
		elog(LOG, "builtin_pool could not submit to io_uring: %s", strerror(-rc));
}

/* io_uring: arms or removes the one-shot poll of one direction */
static void
ring_poll(PoolIo *io, uint8 bit, unsigned mask, int kind, uint32 *tagp)
{
	struct io_uring_sqe *sqe;

	if ((io->want & bit) && !(io->armed & bit))
	{
		sqe = ring_sqe();
		*tagp = next_tag();
		io_uring_prep_poll_add(sqe, io->fd, mask);
		io_uring_sqe_set_data64(sqe, UD_MAKE(kind, io->id, *tagp));
		io->armed |= bit;
	}
	else if (!(io->want & bit) && (io->armed & bit))
	{
		sqe = ring_sqe();
		io_uring_prep_poll_remove(sqe, UD_MAKE(kind, io->id, *tagp));
		io_uring_sqe_set_data64(sqe, UD_MAKE(UD_IGNORE, 0, 0));
		io->armed &= ~bit;
		*tagp = 0;
	}
}

/*
 * Makes the kernel watch io for exactly io->want.  Idempotent, so it is
 * called after every event (io_uring polls are one-shot) and after every
 * change of io->want.
 */
static void
ev_update(PoolIo *io)
{
	if (bp_ring_on)
	{
		ring_poll(io, EV_READ, POLLIN, UD_READ, &io->rtag);
		ring_poll(io, EV_WRITE, POLLOUT, UD_WRITE, &io->wtag);
	}
	else if (io->armed != io->want)
	{
		struct epoll_event ev;
		int			op;

		op = io->armed == 0 ? EPOLL_CTL_ADD :
			io->want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
		memset(&ev, 0, sizeof(ev));
		ev.events = ((io->want & EV_READ) ? EPOLLIN : 0) |
			((io->want & EV_WRITE) ? EPOLLOUT : 0);
		ev.data.u64 = UD_MAKE(UD_IO, io->id, io->gen);
		if (epoll_ctl(bp_epfd, op, io->fd, &ev) < 0)
			elog(LOG, "builtin_pool could not update its epoll set: %m");
		io->armed = io->want;
	}
}

/*
 * Stops watching io before its fd is closed or handed off.  A pending
 * io_uring poll holds a reference to the file, so the removal is submitted
 * now: otherwise the client would not see the close.  For epoll the
 * registration belongs to the open file, which survives a handoff.
 */
static void
ev_forget(PoolIo *io)
{
	io->want = 0;
	ev_update(io);
	if (bp_ring_on && io_uring_sq_ready(&bp_ring) > 0)
		ring_submit();
}

/* Starts accepting on listen socket li (no-op if already armed) */
static void
listen_arm(int li)
{
	PoolListen *l = &bp_listens[li];

	l->paused_until = 0;
	if (l->armed)
		return;
	if (bp_ring_on)
	{
		struct io_uring_sqe *sqe = ring_sqe();

		l->tag = next_tag();
		if (l->multishot)
		{
			io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL,
										   SOCK_NONBLOCK | SOCK_CLOEXEC);
			io_uring_sqe_set_data64(sqe, UD_MAKE(UD_ACCEPT, li, l->tag));
		}
		else
		{
			io_uring_prep_poll_add(sqe, l->fd, POLLIN);
			io_uring_sqe_set_data64(sqe, UD_MAKE(UD_LPOLL, li, l->tag));
		}
	}
	else
	{
		struct epoll_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u64 = UD_MAKE(UD_ACCEPT, li, 0);
		if (epoll_ctl(bp_epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
			elog(LOG, "builtin_pool could not update its epoll set: %m");
	}
	l->armed = true;
}

/*
 * Reacts to a failed accept.  Running out of descriptors or memory pauses
 * this socket briefly (the tick resumes it) instead of spinning on it.
 */
static void
accept_failed(int li, int err)
{
	PoolListen *l = &bp_listens[li];

	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
		err == ECONNABORTED || err == ECANCELED)
		return;
	errno = err;
	ereport(LOG,
			(errcode_for_socket_access(),
			 errmsg("builtin_pool could not accept a new connection: %m")));
	if (l->armed && !bp_ring_on)
		(void) epoll_ctl(bp_epfd, EPOLL_CTL_DEL, l->fd, NULL);
	if (!bp_ring_on)
		l->armed = false;
	l->paused_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  BP_ACCEPT_PAUSE_MS);
}

static void conn_accept(int fd, int port_index, bool is_unix);
static void chan_accept(int fd);

/* Dispatches an accepted descriptor by the socket it came from */
static void
on_accepted(int li, int fd)
{
	if (bp_listens[li].port_index < 0)
		chan_accept(fd);
	else
		conn_accept(fd, bp_listens[li].port_index, bp_listens[li].is_unix);
}

/* Accepts up to BP_ACCEPT_BATCH connections by hand (epoll, ring polls) */
static void
listen_accept_batch(int li)
{
	int			i;

	for (i = 0; i < BP_ACCEPT_BATCH; i++)
	{
		int			fd = accept4(bp_listens[li].fd, NULL, NULL,
								 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
		{
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				accept_failed(li, errno);
			return;
		}
		on_accepted(li, fd);
	}
}

static void conn_read(PoolConn *c);
static void chan_read(PoolChan *ch);
static void chan_writable(PoolChan *ch);

/* Runs the handlers for readiness of io, then re-arms it if it survived */
static void
io_event(PoolIo *io, bool readable, bool writable)
{
	int			id = io->id;
	uint32		gen = io->gen;

	if (readable)
	{
		if (io->kind == PIO_CLIENT)
			conn_read((PoolConn *) io);
		else
			chan_read((PoolChan *) io);
	}
	if (writable && (io = io_lookup(id, gen)) != NULL && io->kind == PIO_CHANNEL)
		chan_writable((PoolChan *) io);
	if ((io = io_lookup(id, gen)) != NULL)
		ev_update(io);
}

/* io_uring: handles one completion */
static void
ring_dispatch(uint64 ud, int res, unsigned flags)
{
	int			idx = UD_IDX(ud);
	uint32		tag = UD_TAG(ud);
	PoolListen *l;
	PoolIo	   *io;

	switch (UD_KIND(ud))
	{
		case UD_ACCEPT:
			l = &bp_listens[idx];
			if (tag != l->tag)
				break;
			if (!(flags & IORING_CQE_F_MORE))
				l->armed = false;
			if (res >= 0)
				on_accepted(idx, res);
			else if (res == -EINVAL && l->multishot)
			{
				ereport(LOG,
						(errmsg("builtin_pool: this kernel has no io_uring multishot accept, polling the listen sockets instead")));
				l->multishot = false;
			}
			else
				accept_failed(idx, -res);
			if (!l->armed && l->paused_until == 0)
				listen_arm(idx);
			break;
		case UD_LPOLL:
			l = &bp_listens[idx];
			if (tag != l->tag)
				break;
			l->armed = false;
			listen_accept_batch(idx);
			if (l->paused_until == 0)
				listen_arm(idx);
			break;
		case UD_READ:
		case UD_WRITE:
			if (idx >= bp_io_top || (io = bp_io[idx]) == NULL)
				break;
			if (UD_KIND(ud) == UD_READ && io->rtag == tag)
			{
				io->armed &= ~EV_READ;
				io->rtag = 0;
				io_event(io, true, false);
			}
			else if (UD_KIND(ud) == UD_WRITE && io->wtag == tag)
			{
				io->armed &= ~EV_WRITE;
				io->wtag = 0;
				io_event(io, false, true);
			}
			break;
		default:
			break;
	}
}

/* Handles at most BP_MAX_EVENTS ready events; the rest wait for the next loop */
static void
events_drain(void)
{
	int			n = 0;

	if (bp_ring_on)
	{
		struct io_uring_cqe *cqe;

		while (n++ < BP_MAX_EVENTS && io_uring_peek_cqe(&bp_ring, &cqe) == 0)
		{
			uint64		ud = io_uring_cqe_get_data64(cqe);
			int			res = cqe->res;
			unsigned	flags = cqe->flags;

			io_uring_cqe_seen(&bp_ring, cqe);
			ring_dispatch(ud, res, flags);
		}
		ring_submit();
	}
	else
	{
		struct epoll_event evs[256];
		int			nev = epoll_wait(bp_epfd, evs, lengthof(evs), 0);
		int			i;

		for (i = 0; i < nev; i++)
		{
			uint64		ud = evs[i].data.u64;
			uint32		e = evs[i].events;
			PoolIo	   *io;

			if (UD_KIND(ud) == UD_ACCEPT)
			{
				if (bp_listens[UD_IDX(ud)].armed)
					listen_accept_batch(UD_IDX(ud));
			}
			else if ((io = io_lookup(UD_IDX(ud), UD_TAG(ud))) != NULL)
				io_event(io, (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0,
						 (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0);
		}
	}
}

/* ---------------------------------------------------------------------
 * Pool sockets
 * ---------------------------------------------------------------------
 */

/* Records a listening socket; path (palloc'd) is unlinked at exit */
static void
listen_add(int fd, int port_index, bool is_unix, char *path)
{
	PoolListen *l;

	bp_listens = repalloc(bp_listens, (bp_nlistens + 1) * sizeof(PoolListen));
	l = &bp_listens[bp_nlistens++];
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->port_index = port_index;
	l->is_unix = is_unix;
	l->multishot = true;
	l->path = path;
}

/*
 * Creates, binds and listens on one socket; LOGs and returns -1 on failure.
 * For Unix sockets the file gets core's unix_socket_group/permissions
 * before listen(), so no connection is accepted with the wrong mode.
 */
static int
listen_socket(struct addrinfo *ai, const char *desc, int port, const char *path)
{
	int			fd;
	int			one = 1;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (ai->ai_family != AF_UNIX &&
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (ai->ai_family == AF_INET6 &&
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		goto fail;
	if (path != NULL && path[0] != '@')
	{
		if (Unix_socket_group[0] != '\0')
		{
			char	   *end;
			unsigned long gid = strtoul(Unix_socket_group, &end, 10);

			if (*end != '\0')
			{
				struct group *gr = getgrnam(Unix_socket_group);

				if (gr == NULL)
				{
					ereport(LOG,
							(errmsg("group \"%s\" does not exist", Unix_socket_group)));
					close(fd);
					return -1;
				}
				gid = gr->gr_gid;
			}
			if (chown(path, -1, (gid_t) gid) < 0)
				goto fail;
		}
		if (chmod(path, Unix_socket_permissions) < 0)
			goto fail;
	}
	if (listen(fd, BP_LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;

fail:
	{
		int			save_errno = errno;

		if (fd >= 0)
			close(fd);
		errno = save_errno;
		ereport(LOG,
				(errcode_for_socket_access(),
				 errmsg("builtin_pool could not listen on %s, port %d: %m",
						desc, port),
				 save_errno == EADDRINUSE ?
				 errhint("Is another server using port %d?  Change builtin_pool.port.",
						 port) : 0));
		return -1;
	}
}

/* Opens the TCP sockets of one pool port on every listen_addresses entry */
static int
open_tcp_port(int port_index)
{
	int			port = bp_port + port_index;
	char	   *raw = pstrdup(ListenAddresses ? ListenAddresses : "");
	List	   *hosts;
	ListCell   *lc;
	int			opened = 0;

	if (!SplitGUCList(raw, ',', &hosts))
	{
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"%s\"", "listen_addresses")));
		return 0;
	}
	foreach(lc, hosts)
	{
		char	   *host = (char *) lfirst(lc);
		struct addrinfo hint,
				   *addrs = NULL,
				   *ai;
		char		service[16];
		int			rc;

		memset(&hint, 0, sizeof(hint));
		hint.ai_family = AF_UNSPEC;
		hint.ai_flags = AI_PASSIVE;
		hint.ai_socktype = SOCK_STREAM;
		snprintf(service, sizeof(service), "%d", port);
		rc = pg_getaddrinfo_all(strcmp(host, "*") == 0 ? NULL : host, service,
								&hint, &addrs);
		if (rc != 0 || addrs == NULL)
		{
			ereport(LOG,
					(errmsg("builtin_pool could not translate host name \"%s\", service \"%s\" to address: %s",
							host, service, gai_strerror(rc))));
			if (addrs)
				pg_freeaddrinfo_all(hint.ai_family, addrs);
			continue;
		}
		for (ai = addrs; ai != NULL; ai = ai->ai_next)
		{
			char		addr[NI_MAXHOST];
			char		desc[NI_MAXHOST + 32];
			int			fd;

			if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
				continue;
			pg_getnameinfo_all((struct sockaddr_storage *) ai->ai_addr,
							   ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
							   NI_NUMERICHOST);
			snprintf(desc, sizeof(desc), "%s address \"%s\"",
					 ai->ai_family == AF_INET ? "IPv4" : "IPv6", addr);
			if ((fd = listen_socket(ai, desc, port, NULL)) < 0)
				continue;
			ereport(LOG, (errmsg("builtin_pool listening on %s, port %d", desc, port)));
			listen_add(fd, port_index, false, NULL);
			opened++;
		}
		pg_freeaddrinfo_all(hint.ai_family, addrs);
	}
	return opened;
}

/*
 * Removes a socket file left by a dead listener.  Core guards its socket
 * files with lock files; we instead connect to the file: a listener
 * answering (or with a full backlog) means another server owns it.
 */
static bool
unix_path_free(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int			fd;
	int			rc;

	if (lstat(path, &st) < 0)
		return true;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	rc = connect(fd, (struct sockaddr *) &sun, sizeof(sun));
	if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS)
	{
		close(fd);
		ereport(LOG,
				(errmsg("builtin_pool could not create Unix socket \"%s\": another server is listening on it",
						path),
				 errhint("Change builtin_pool.port or unix_socket_directories.")));
		return false;
	}
	close(fd);
	(void) unlink(path);
	return true;
}

/* Opens the Unix socket of one pool port in every socket directory */
static int
open_unix_port(int port_index)
{
	int			port = bp_port + port_index;
	char	   *raw = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
	List	   *dirs;
	ListCell   *lc;
	int			opened = 0;

	if (!SplitDirectoriesString(raw, ',', &dirs))
	{
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"%s\"", "unix_socket_directories")));
		return 0;
	}
	foreach(lc, dirs)
	{
		char		path[MAXPGPATH];
		char		desc[MAXPGPATH + 32];
		struct addrinfo hint,
				   *addrs = NULL;
		int			fd;

		UNIXSOCK_PATH(path, port, (char *) lfirst(lc));
		if (strlen(path) >= UNIXSOCK_PATH_BUFLEN)
		{
			ereport(LOG,
					(errmsg("Unix-domain socket path \"%s\" is too long (maximum %d bytes)",
							path, (int) (UNIXSOCK_PATH_BUFLEN - 1))));
			continue;
		}
		if (path[0] != '@' && !unix_path_free(path))
			continue;
		memset(&hint, 0, sizeof(hint));
		hint.ai_family = AF_UNIX;
		hint.ai_socktype = SOCK_STREAM;
		if (pg_getaddrinfo_all(NULL, path, &hint, &addrs) != 0 || addrs == NULL)
			continue;
		snprintf(desc, sizeof(desc), "Unix socket \"%s\"", path);
		fd = listen_socket(addrs, desc, port, path);
		pg_freeaddrinfo_all(hint.ai_family, addrs);
		if (fd < 0)
			continue;
		ereport(LOG, (errmsg("builtin_pool listening on %s", desc)));
		listen_add(fd, port_index, true,
				   path[0] == '@' ? NULL : MemoryContextStrdup(bp_listener_cxt, path));
		opened++;
	}
	return opened;
}

/* on_proc_exit: removes our socket files so no client finds a dead one */
static void
listener_cleanup(int code, Datum arg)
{
	int			i;

	for (i = 0; i < bp_nlistens; i++)
		if (bp_listens[i].path != NULL)
			(void) unlink(bp_listens[i].path);
}

/* ---------------------------------------------------------------------
 * pg_hba.conf
 * ---------------------------------------------------------------------
 */

/*
 * (Re)loads pg_hba.conf into a fresh context.  As in core, a file with any
 * error is not used: the previous rules stay in force (or, at the first
 * load, every client is refused until the file is fixed).
 */
static void
hba_load(void)
{
	FILE	   *file;
	MemoryContext cxt;
	MemoryContext old;
	MemoryContext tokcxt;
	List	   *tok_lines = NIL;
	List	   *lines = NIL;
	ListCell   *lc;
	bool		ok = true;

	file = AllocateFile(HbaFileName, "r");
	if (file == NULL)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("builtin_pool could not open configuration file \"%s\": %m",
						HbaFileName)));
		return;
	}
	cxt = AllocSetContextCreate(bp_listener_cxt, "builtin_pool hba",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	tokcxt = tokenize_auth_file(HbaFileName, file, &tok_lines, LOG);
	FreeFile(file);
	foreach(lc, tok_lines)
	{
		TokenizedAuthLine *tl = (TokenizedAuthLine *) lfirst(lc);
		HbaLine    *line = tl->err_msg ? NULL : parse_hba_line(tl, LOG);

		if (line == NULL)
			ok = false;
		else
			lines = lappend(lines, line);
	}
	MemoryContextDelete(tokcxt);
	MemoryContextSwitchTo(old);

	if (!ok || lines == NIL)
	{
		MemoryContextDelete(cxt);
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool did not load \"%s\"", HbaFileName),
				 bp_hba_cxt ?
				 errdetail("The pool keeps the rules it loaded before.") :
				 errdetail("Every pool connection is refused until the file is fixed and the configuration reloaded.")));
		return;
	}
	if (bp_hba_cxt)
		MemoryContextDelete(bp_hba_cxt);
	bp_hba_cxt = cxt;
	bp_hba_lines = lines;
	bp_hba_warned_hostname = false;
}

/* Is roleid a member (not through superuser) of the role named name? */
static bool
role_is_member(Oid roleid, const char *name)
{
	Oid			group;

	if (!OidIsValid(roleid))
		return false;
	group = get_role_oid(name, true);
	return OidIsValid(group) && is_member_of_role_nosuper(roleid, group);
}

#define token_is_keyword(t, k)	(!(t)->quoted && strcmp((t)->string, (k)) == 0)

/* Database column; catalog access: caller is inside a transaction */
static bool
hba_db_matches(PoolConn *c, Oid roleid, List *tokens)
{
	ListCell   *lc;

	foreach(lc, tokens)
	{
		AuthToken  *t = (AuthToken *) lfirst(lc);

		if (token_is_keyword(t, "all"))
			return true;
		if (token_is_keyword(t, "sameuser"))
		{
			if (strcmp(c->dbname, c->user) == 0)
				return true;
		}
		else if (token_is_keyword(t, "samerole") || token_is_keyword(t, "samegroup"))
		{
			if (role_is_member(roleid, c->dbname))
				return true;
		}
		else if (token_is_keyword(t, "replication"))
			continue;			/* we refuse replication connections */
		else if (strcmp(t->string, c->dbname) == 0)
			return true;
	}
	return false;
}

/* User column; catalog access: caller is inside a transaction */
static bool
hba_role_matches(PoolConn *c, Oid roleid, List *tokens)
{
	ListCell   *lc;

	foreach(lc, tokens)
	{
		AuthToken  *t = (AuthToken *) lfirst(lc);

		if (!t->quoted && t->string[0] == '+')
		{
			if (role_is_member(roleid, t->string + 1))
				return true;
		}
		else if (token_is_keyword(t, "all") || strcmp(t->string, c->user) == 0)
			return true;
	}
	return false;
}

typedef struct IfaddrMatch
{
	SockAddr   *raddr;
	bool		samehost;
	bool		found;
} IfaddrMatch;

/* Is raddr inside addr/mask (same family)? */
static bool
addr_in_range(SockAddr *raddr, struct sockaddr *addr, struct sockaddr *mask)
{
	return raddr->addr.ss_family == addr->sa_family &&
		pg_range_sockaddr(&raddr->addr, (struct sockaddr_storage *) addr,
						  (struct sockaddr_storage *) mask);
}

/* pg_foreach_ifaddr callback for samehost / samenet */
static void
ifaddr_match(struct sockaddr *addr, struct sockaddr *netmask, void *arg)
{
	IfaddrMatch *m = (IfaddrMatch *) arg;
	struct sockaddr_storage full;

	if (m->found)
		return;
	if (m->samehost)
	{
		pg_sockaddr_cidr_mask(&full, NULL, addr->sa_family);
		netmask = (struct sockaddr *) &full;
	}
	m->found = addr_in_range(m->raddr, addr, netmask);
}

/*
 * Address column of a host line.  Host names would need DNS, which blocks:
 * such lines never match on the pool port (logged once per load).
 */
static bool
hba_addr_matches(PoolConn *c, HbaLine *h)
{
	IfaddrMatch m;

	switch (h->ip_cmp_method)
	{
		case ipCmpAll:
			return true;
		case ipCmpMask:
			if (h->hostname == NULL)
				return addr_in_range(&c->raddr, (struct sockaddr *) &h->addr,
									 (struct sockaddr *) &h->mask);
			if (!bp_hba_warned_hostname)
				ereport(LOG,
						(errmsg("builtin_pool skips pg_hba.conf line %d: host names are not supported on the pool port",
								h->linenumber)));
			bp_hba_warned_hostname = true;
			return false;
		case ipCmpSameHost:
		case ipCmpSameNet:
			m.raddr = &c->raddr;
			m.samehost = h->ip_cmp_method == ipCmpSameHost;
			m.found = false;
			if (pg_foreach_ifaddr(ifaddr_match, &m) < 0)
				ereport(LOG, (errmsg("error enumerating network interfaces: %m")));
			return m.found;
	}
	return false;
}

/*
 * The first pg_hba.conf line that matches the client, or NULL.  The pool
 * port has no TLS or GSS encryption yet, so hostssl and hostgssenc lines
 * never match.  Caller is inside a transaction (group membership).
 */
static HbaLine *
hba_find(PoolConn *c, Oid roleid)
{
	ListCell   *lc;

	foreach(lc, bp_hba_lines)
	{
		HbaLine    *h = (HbaLine *) lfirst(lc);

		if (h->conntype == ctLocal)
		{
			if (!c->is_unix)
				continue;
		}
		else if (c->is_unix || h->conntype == ctHostSSL ||
				 h->conntype == ctHostGSS || !hba_addr_matches(c, h))
			continue;
		if (hba_db_matches(c, roleid, h->databases) &&
			hba_role_matches(c, roleid, h->roles))
			return h;
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Client connections
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

/*
 * Takes a freshly accepted client (non-blocking, close-on-exec) and starts
 * reading its startup packet.  The PoolConn lives in bp_conn_cxt until
 * conn_close().
 */
static void
conn_accept(int fd, int port_index, bool is_unix)
{
	PoolConn   *c;

	pg_atomic_fetch_add_u64(&bp_shared->n_accepted, 1);
	c = MemoryContextAllocZero(bp_conn_cxt, sizeof(PoolConn));
	c->raddr.salen = sizeof(c->raddr.addr);
	if (getpeername(fd, (struct sockaddr *) &c->raddr.addr, &c->raddr.salen) < 0)
	{
		close(fd);				/* the client is already gone */
		pfree(c);
		return;
	}
	c->io.kind = PIO_CLIENT;
	c->io.fd = fd;
	c->port_index = port_index;
	c->is_unix = is_unix;
	c->exec_slot = -1;
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
	io_register(&c->io);
	dlist_push_tail(&bp_conns, &c->all_node);
	c->io.want = EV_READ;
	io_event(&c->io, true, false);	/* the packet is often already there */
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

/* Closes our descriptor of the client and frees c */
static void
conn_close(PoolConn *c)
{
	conn_unqueue(c);
	ev_forget(&c->io);
	close(c->io.fd);
	dlist_delete(&c->all_node);
	io_unregister(&c->io);
	if (c->pkt)
		pfree(c->pkt);
	pfree(c);
}

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
	(void) send(c->io.fd, buf.data, buf.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	pfree(buf.data);
	ereport(elevel,
			(errcode(sqlstate),
			 errmsg_internal("%s", msg),
			 detail ? errdetail_internal("%s", detail) : 0,
			 logdetail ? errdetail_log("%s", logdetail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errcontext("pool connection from %s on port %d",
						c->remote_host, bp_port + c->port_index)));
	pg_atomic_fetch_add_u64(&bp_shared->n_rejected, 1);
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
	bool		found = false;

	memcpy(&canc, c->pkt, sizeof(canc));
	pid = (int) pg_ntoh32(canc.backendPID);
	LWLockAcquire(bp_shared->lock, LW_SHARED);
	for (i = 0; i < bp_shared->max_executors && !found; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if ((ex->state == PE_READY || ex->state == PE_EXITING) && ex->pid == pid && pid > 0)
		{
			pg_atomic_write_u32(&ex->cancel_key, pg_ntoh32(canc.cancelAuthCode));
			found = true;
		}
	}
	LWLockRelease(bp_shared->lock);
	if (!found)
		ereport(LOG,
				(errmsg("PID %d in cancel request did not match any pool executor", pid)));
	else if (kill(pid, SIGINT) == 0)
		pg_atomic_fetch_add_u64(&bp_shared->n_cancels, 1);
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
	ok = send(c->io.fd, buf.data, buf.len, MSG_DONTWAIT | MSG_NOSIGNAL) == buf.len;
	pfree(buf.data);
	return ok;
}

/*
 * Reads what the catalogs and pg_hba.conf say about the client, in one
 * short transaction.  Returns NULL, or the error that interrupted the
 * lookups (copied into the caller's context; the transaction is aborted).
 */
static ErrorData *
auth_lookup(PoolConn *c, PoolAuthFacts *f)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *edata = NULL;

	memset(f, 0, sizeof(*f));
	PG_TRY();
	{
		HeapTuple	tup;
		Relation	rel;
		ScanKeyData key;
		SysScanDesc scan;

		StartTransactionCommand();
		tup = SearchSysCache1(AUTHNAME, CStringGetDatum(c->user));
		if (HeapTupleIsValid(tup))
		{
			Form_pg_authid r = (Form_pg_authid) GETSTRUCT(tup);

			f->roleid = r->oid;
			f->rolcanlogin = r->rolcanlogin;
			f->rolsuper = r->rolsuper;
			ReleaseSysCache(tup);
		}

		/*
		 * No syscache on pg_database names.  The index is usable only once
		 * the shared relcache is complete, as in postinit.c.
		 */
		rel = table_open(DatabaseRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_database_datname, BTEqualStrategyNumber,
					F_NAMEEQ, CStringGetDatum(c->dbname));
		scan = systable_beginscan(rel, DatabaseNameIndexId,
								  criticalSharedRelcachesBuilt, NULL, 1, &key);
		tup = systable_getnext(scan);
		if (HeapTupleIsValid(tup))
		{
			Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);

			f->dboid = d->oid;
			f->datallowconn = d->datallowconn;
			f->datinvalid = database_is_invalid_form(d);
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);

		if (OidIsValid(f->roleid) && OidIsValid(f->dboid))
			f->canconnect = f->rolsuper ||
				pg_database_aclcheck(f->dboid, f->roleid, ACL_CONNECT) == ACLCHECK_OK;
		f->hba = hba_find(c, f->roleid);
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return edata;
}

/*
 * Decides whether the client may in, refusing it (and returning false) in
 * the order core's checks would: pg_hba.conf, then role, then database.
 */
static bool
conn_authenticate(PoolConn *c)
{
	PoolAuthFacts f;
	ErrorData  *edata;
	const char *hostinfo = c->remote_host;
	char	   *line = NULL;
	char	   *hint;

	if (bp_hba_cxt == NULL)
	{
		conn_refuse(c, LOG, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("could not load %s", HbaFileName), NULL,
					"Fix the file and reload the server configuration.", NULL);
		return false;
	}
	if ((edata = auth_lookup(c, &f)) != NULL)
	{
		conn_refuse(c, LOG, edata->sqlerrcode, edata->message, edata->detail,
					edata->hint, NULL);
		return false;
	}
	if (f.hba)
		line = psprintf("Connection matched pg_hba.conf line %d: \"%s\"",
						f.hba->linenumber, f.hba->rawline);

	if (f.hba == NULL)
		conn_refuse(c, LOG, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					psprintf("no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", no encryption",
							 hostinfo, c->user, c->dbname), NULL, NULL, NULL);
	else if (f.hba->auth_method == uaReject)
		conn_refuse(c, LOG, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					psprintf("pg_hba.conf rejects connection for host \"%s\", user \"%s\", database \"%s\", no encryption",
							 hostinfo, c->user, c->dbname), NULL, NULL, line);
	else if (f.hba->auth_method != uaTrust)
	{
		hint = psprintf("The pool port serves only \"trust\" and \"reject\" so far; other methods are planned.  Connect to the server's port %d, or change pg_hba.conf.",
						PostPortNumber);
		conn_refuse(c, LOG, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					psprintf("authentication method \"%s\" is not supported on the pool port",
							 hba_authname(f.hba->auth_method)), NULL, hint, line);
	}
	else if (!OidIsValid(f.roleid))
		conn_refuse(c, LOG, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					psprintf("role \"%s\" does not exist", c->user), NULL, NULL, NULL);
	else if (!f.rolcanlogin)
		conn_refuse(c, LOG, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					psprintf("role \"%s\" is not permitted to log in", c->user),
					NULL, NULL, NULL);
	else if (!OidIsValid(f.dboid))
		conn_refuse(c, LOG, ERRCODE_UNDEFINED_DATABASE,
					psprintf("database \"%s\" does not exist", c->dbname),
					NULL, NULL, NULL);
	else if (f.datinvalid)
		conn_refuse(c, LOG, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					psprintf("cannot connect to invalid database \"%s\"", c->dbname),
					NULL, "Use DROP DATABASE to drop invalid databases.", NULL);
	else if (!f.datallowconn)
		conn_refuse(c, LOG, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					psprintf("database \"%s\" is not currently accepting connections",
							 c->dbname), NULL, NULL, NULL);
	else if (!f.canconnect)
		conn_refuse(c, LOG, ERRCODE_INSUFFICIENT_PRIVILEGE,
					psprintf("permission denied for database \"%s\"", c->dbname),
					"User does not have CONNECT privilege.", NULL, NULL);
	else
		return true;
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
	char	   *hint;

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
	if ((proto == NEGOTIATE_SSL_CODE && !c->ssl_done) ||
		(proto == NEGOTIATE_GSS_CODE && !c->gss_done))
	{
		bool		ssl = proto == NEGOTIATE_SSL_CODE;
		int			queued = 0;

		/*
		 * Bytes already sent behind the request were not encrypted and may
		 * be an injection; core finds them in its buffer after answering.
		 * They are counted before we answer, when a client that waits for
		 * our answer cannot have sent anything more.
		 */
		(void) ioctl(c->io.fd, FIONREAD, &queued);
		if (send(c->io.fd, "N", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
		{
			ereport(COMMERROR,
					(errcode_for_socket_access(),
					 ssl ? errmsg("failed to send SSL negotiation response: %m") :
					 errmsg("failed to send GSSAPI negotiation response: %m")));
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
		return true;
	}

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
		ereport(COMMERROR,
				(errcode_for_socket_access(),
				 errmsg("could not send data to client: %m")));
		conn_close(c);
		return false;
	}
	if (st.replication)
	{
		hint = psprintf("Connect to the server's port %d for replication.",
						PostPortNumber);
		conn_refuse(c, LOG, ERRCODE_FEATURE_NOT_SUPPORTED,
					"replication connections are not supported on the pool port",
					NULL, hint, NULL);
		return false;
	}
	if (Db_user_namespace)
	{
		hint = psprintf("Turn off db_user_namespace, or connect to the server's port %d.",
						PostPortNumber);
		conn_refuse(c, LOG, ERRCODE_FEATURE_NOT_SUPPORTED,
					"db_user_namespace is not supported on the pool port",
					NULL, hint, NULL);
		return false;
	}

	/* Truncated to a Postgres name, as core does */
	strlcpy(c->user, st.user, NAMEDATALEN);
	strlcpy(c->dbname, st.database, NAMEDATALEN);
	c->proto = proto;
	if (conn_authenticate(c))
		conn_route(c);
	return false;
}

/*
 * Reads the startup packet without blocking and without reading past it:
 * whatever follows belongs to the executor.  Returns when the socket is
 * drained (the caller re-arms) or when c was closed or admitted.
 */
static void
conn_read(PoolConn *c)
{
	while (c->state == PC_READING)
	{
		char	   *dst;
		int			need;
		ssize_t		n;

		if (c->have < 4)
		{
			dst = c->lenbuf + c->have;
			need = 4 - c->have;
		}
		else
		{
			dst = c->pkt + (c->have - 4);
			need = c->pktlen - c->have;
		}
		n = recv(c->io.fd, dst, need, 0);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			ereport(COMMERROR,
					(errcode_for_socket_access(),
					 errmsg("could not receive data from client: %m")));
			conn_close(c);
			return;
		}
		if (n == 0)
		{
			/* silence for no data at all, as core; and a partial length
			 * word after an SSL or GSS answer means the client gave up */
			if (c->have >= 4 || (c->have > 0 && !c->ssl_done && !c->gss_done))
				ereport(COMMERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("incomplete startup packet")));
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

/* ---------------------------------------------------------------------
 * Executors
 * ---------------------------------------------------------------------
 */

/* Slot of pool_id with the fewest sessions that can take one more, or -1 */
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
		if (n < (uint32) bp_max_sessions && n < *load)
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
 * Registers the executor for a freshly claimed slot, without waiting for
 * it: the tick polls the handle, and the worker's hello makes it ready.
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
 * Picks the executor for an admitted client (starting one if the pool
 * rules say so), queues the client for it and hands it over if the
 * executor is ready.  On failure the client is refused.
 */
static void
conn_route(PoolConn *c)
{
	bool		dedicated = bp_database_is_dedicated(c->dbname);
	int			pool_id;
	int			best = -1;
	int			fresh = -1;
	uint32		load = 0;
	int			n_exec = 0;
	bool		want_new = false;
	char	   *detail;

	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	pool_id = bp_pool_lookup(c->port_index, c->dbname, c->user, true);
	if (pool_id >= 0)
	{
		PoolDesc   *p = &bp_shared->pools[pool_id];

		if (p->n_executors == 0)
			p->dedicated = dedicated;
		dedicated = p->dedicated;
		if (!dedicated)
			best = exec_least_loaded(pool_id, &load);
		want_new = dedicated ||
			(p->n_executors < bp_session_pool_size && (best < 0 || load >= 1));
		if (want_new)
			fresh = bp_executor_claim(pool_id);
		if (fresh >= 0 || best >= 0)
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
		if (best >= 0)
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

	if (!pg_strong_random(&c->cancel_key, sizeof(c->cancel_key)))
		c->cancel_key = pg_prng_uint32(&pg_global_prng_state);
	if (c->cancel_key == 0)
		c->cancel_key = 1;
	c->state = PC_QUEUED;
	c->io.want = 0;
	ev_update(&c->io);
	exec_flush(c->exec_slot);
}

/*
 * Sends the clients queued for slot over its channel, each as one datagram
 * carrying the socket, then closes our copy.  A full channel keeps the rest
 * queued until it polls writable; a broken one loses the executor.
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

		memset(&h, 0, sizeof(h));
		h.magic = BP_HANDOFF_MAGIC;
		h.cancel_key = c->cancel_key;
		h.port_index = c->port_index;
		h.proto = c->proto;
		h.startup_len = body_len;
		memcpy(bp_handoff_buf, &h, sizeof(h));
		memcpy(bp_handoff_buf + sizeof(h), c->pkt + 4, body_len);
		if (bp_channel_send(ch->io.fd, bp_handoff_buf, sizeof(h) + body_len,
							c->io.fd) < 0)
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
		dlist_delete(&c->queue_node);
		c->exec_slot = -1;		/* the executor counts it from now on */
		conn_close(c);
	}
	ch->io.want = EV_READ;
	if (ch->ack_pending || (!dlist_is_empty(&e->queue) && !ch->retry))
		ch->io.want |= EV_WRITE;
	ev_update(&ch->io);
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

	dlist_init(&moved);
	while (!dlist_is_empty(&e->queue))
		dlist_push_tail(&moved, dlist_pop_head_node(&e->queue));
	while (!dlist_is_empty(&moved))
	{
		PoolConn   *c = dlist_container(PoolConn, queue_node,
										dlist_pop_head_node(&moved));

		c->exec_slot = -1;
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
	PoolExecLocal *e = &bp_exec[ch->slot];
	dlist_head	moved;

	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	bp_shared->executors[ch->slot].state = PE_EXITING;
	LWLockRelease(bp_shared->lock);

	dlist_init(&moved);
	while (!dlist_is_empty(&e->queue))
	{
		PoolConn   *c = dlist_head_element(PoolConn, queue_node, &e->queue);

		conn_unqueue(c);
		dlist_push_tail(&moved, &c->queue_node);
	}
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
	ch->io.kind = PIO_CHANNEL;
	ch->io.fd = fd;
	ch->slot = -1;
	ch->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   BP_HELLO_TIMEOUT_MS);
	io_register(&ch->io);
	dlist_push_tail(&bp_new_chans, &ch->node);
	ch->io.want = EV_READ;
	ev_update(&ch->io);
}

/* Closes a channel; an executor that had greeted us is lost with it */
static void
chan_close(PoolChan *ch)
{
	int			slot = ch->slot;

	ev_forget(&ch->io);
	close(ch->io.fd);
	if (slot < 0)
		dlist_delete(&ch->node);
	io_unregister(&ch->io);
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

/* Reads what an executor sent: its hello, then retire requests */
static void
chan_read(PoolChan *ch)
{
	int			i;

	for (i = 0; i < 64; i++)
	{
		union
		{
			PoolHello	hello;
			PoolRetire	retire;
			char		raw[64];
		}			msg;
		int			passfd;
		uint32		magic = 0;
		ssize_t		n = bp_channel_recv(ch->io.fd, &msg, sizeof(msg), &passfd);

		if (passfd >= 0)
			close(passfd);		/* executors never send descriptors */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0)
		{
			if (n < 0)
				ereport(LOG,
						(errcode_for_socket_access(),
						 errmsg("builtin_pool could not read from an executor channel: %m")));
			chan_close(ch);
			return;
		}
		if (n >= sizeof(uint32))
			memcpy(&magic, &msg, sizeof(magic));
		if (ch->slot < 0 && !ch->hello_pending)
		{
			if (n != sizeof(PoolHello) || magic != BP_HELLO_MAGIC)
			{
				ereport(LOG,
						(errmsg("builtin_pool received an invalid hello on the executor channel")));
				chan_close(ch);
				return;
			}
			ch->hello = msg.hello;
			ch->hello_pending = true;
			chan_hello(ch);
			return;				/* ch may be gone or still pending */
		}
		if (ch->slot >= 0 && n == sizeof(PoolRetire) &&
			magic == BP_RETIRE_MAGIC && msg.retire.slot == ch->slot)
		{
			int			id = ch->io.id;
			uint32		gen = ch->io.gen;

			exec_retire(ch);
			if (io_lookup(id, gen) == NULL)
				return;
		}
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
		if (bp_channel_send(ch->io.fd, &ack, sizeof(ack), -1) == sizeof(ack))
			ch->ack_pending = false;
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		{
			chan_close(ch);
			return;
		}
	}
	if (ch->slot >= 0)
		exec_flush(ch->slot);
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
 * Periodic work: client deadlines, executors that died while starting,
 * pending hellos, paused listen sockets, orphans, socket file touching.
 * Returns how long the loop may sleep, in milliseconds.
 */
static long
tick(void)
{
	static TimestampTz last_slow = 0;
	static TimestampTz last_touch = 0;
	TimestampTz now = GetCurrentTimestamp();
	bool		busy = false;
	bool		slow = TimestampDifferenceExceeds(last_slow, now, 1000);
	long		timeout = BP_IDLE_TICK_MS;
	dlist_mutable_iter it;
	int			i;

	/* bp_conns is in accept order, hence (nearly) deadline order */
	dlist_foreach_modify(it, &bp_conns)
	{
		PoolConn   *c = dlist_container(PoolConn, all_node, it.cur);

		if (c->deadline > now)
		{
			timeout = Min(timeout, TimestampDifferenceMilliseconds(now, c->deadline) + 1);
			break;
		}
		if (c->state == PC_QUEUED)
			conn_refuse(c, LOG, ERRCODE_CANNOT_CONNECT_NOW,
						"timeout expired while waiting for a pool executor",
						NULL, "Check the server log for executor errors, or raise authentication_timeout.",
						NULL);
		else
		{
			ereport(COMMERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("timeout expired while reading the startup packet"),
					 errcontext("pool connection from %s", c->remote_host)));
			pg_atomic_fetch_add_u64(&bp_shared->n_rejected, 1);
			conn_close(c);
		}
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
			ereport(LOG, (errmsg("builtin_pool dropped an executor channel connection that sent no hello")));
			chan_close(ch);
		}
	}

	for (i = 0; i < bp_nlistens; i++)
	{
		if (bp_listens[i].paused_until == 0)
			continue;
		busy = true;
		if (bp_listens[i].paused_until <= now)
			listen_arm(i);
	}

	if (slow)
	{
		last_slow = now;
		pgstat_report_stat(false);
		if (TimestampDifferenceExceeds(last_touch, now, BP_TOUCH_MS))
		{
			last_touch = now;
			for (i = 0; i < bp_nlistens; i++)
				if (bp_listens[i].path)
					(void) utime(bp_listens[i].path, NULL);
		}
	}
	return busy ? Min(timeout, BP_BUSY_TICK_MS) : timeout;
}

/* Tells clients still in our hands that we stop, then exits */
static void
listener_shutdown(void)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, &bp_conns)
	{
		PoolConn   *c = dlist_container(PoolConn, all_node, it.cur);
		StringInfoData buf;

		initStringInfo(&buf);
		bp_build_error(&buf, "FATAL", ERRCODE_ADMIN_SHUTDOWN,
					   "terminating connection due to administrator command",
					   NULL, NULL);
		(void) send(c->io.fd, buf.data, buf.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (bp_ring_on)
		io_uring_queue_exit(&bp_ring);
	proc_exit(0);
}

/* Descriptors for many waiting clients; the hard limit is ours to take */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Sets up io_uring, or epoll when it is off or the kernel refuses it */
static void
events_init(void)
{
	if (bp_use_io_uring)
	{
		struct io_uring_params p;
		int			rc;

		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = BP_RING_CQ_ENTRIES;
		rc = io_uring_queue_init_params(BP_RING_SQ_ENTRIES, &bp_ring, &p);
		if (rc == 0)
		{
			bp_ring_on = true;
			return;
		}
		ereport(LOG,
				(errmsg("builtin_pool could not set up io_uring, using epoll: %s",
						strerror(-rc)),
				 errhint("Set builtin_pool.use_io_uring to off to skip the attempt.")));
	}
	bp_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (bp_epfd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("builtin_pool could not create an epoll set: %m")));
}

/*
 * Entry point of the listener background worker.  Never returns: exits on
 * SIGTERM (after removing its socket files) or with the postmaster.
 */
void
bp_listener_main(Datum main_arg)
{
	int			opened = 0;
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

	bp_io_cap = 1024;
	bp_io = palloc0(bp_io_cap * sizeof(PoolIo *));
	bp_io_free = palloc(bp_io_cap * sizeof(int));
	bp_listens = palloc(sizeof(PoolListen));
	bp_exec = palloc0(bp_shared->max_executors * sizeof(PoolExecLocal));
	for (i = 0; i < bp_shared->max_executors; i++)
		dlist_init(&bp_exec[i].queue);

	on_proc_exit(listener_cleanup, 0);
	raise_fd_limit();
	adopt_orphans();
	hba_load();
	events_init();

	listen_add(bp_channel_listen(), -1, true, pstrdup(BP_CHANNEL_PATH));
	for (i = 0; i < bp_session_pool_ports; i++)
		opened += open_tcp_port(i) + open_unix_port(i);
	if (opened == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool could not open any pool socket"),
				 errhint("Check builtin_pool.port, listen_addresses and unix_socket_directories.")));
	for (i = 0; i < bp_nlistens; i++)
		listen_arm(i);
	if (bp_ring_on)
		ring_submit();

	bp_wes = CreateWaitEventSet(bp_listener_cxt, 3);
	AddWaitEventToSet(bp_wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(bp_wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(bp_wes, WL_SOCKET_READABLE,
					  bp_ring_on ? bp_ring.ring_fd : bp_epfd, NULL, NULL);
	ereport(LOG,
			(errmsg("builtin_pool listener ready, waiting with %s",
					bp_ring_on ? "io_uring" : "epoll")));

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
			hba_load();
		}
		if (catchupInterruptPending)
		{
			ProcessCatchupInterrupt();
			MemoryContextSwitchTo(bp_scratch_cxt);
		}

		events_drain();
		timeout = tick();
		if (bp_ring_on && io_uring_sq_ready(&bp_ring) > 0)
			ring_submit();
		n = WaitEventSetWait(bp_wes, timeout, events, lengthof(events),
							 PG_WAIT_EXTENSION);
		for (i = 0; i < n; i++)
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
	}
}
