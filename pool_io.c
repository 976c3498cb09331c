/*-------------------------------------------------------------------------
 *
 * pool_io.c
 *	  Socket readiness for the pool listener, from io_uring or epoll, and
 *	  accepting on the listening sockets (sockets.c opens the pool's).
 *
 * With io_uring, listening sockets get a multishot accept (polling them
 * instead where the kernel lacks it) and other descriptors one-shot
 * POLL_ADDs, re-armed after each completion.  With epoll (use_io_uring off,
 * or the kernel refuses a ring) everything sits in one level-triggered
 * epoll set.  Either way the caller sleeps in a WaitEventSet on
 * bp_io_wait_fd() beside its latch: never in io_uring_wait_cqe(), which a
 * SetLatch() cannot interrupt (pg15-internals.md, Q8).
 *
 * An event carries kind (8 bits), index (24 bits) and tag (32 bits).  For
 * io_uring the tag is drawn afresh for each armed poll, for epoll it is the
 * object's generation; a completion whose tag does not match the live
 * object at that index is stale and dropped, so a closed connection's late
 * event can never touch the connection that reused its index.
 *
 * A pending io_uring poll holds a reference to the file: bp_io_forget()
 * submits the poll's removal before the owner closes or hands off the fd,
 * otherwise the client would never see the close.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utime.h>

#include <liburing.h>

#include "builtin_pool.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pool_io.h"

#define BP_RING_SQ_ENTRIES	256
#define BP_RING_CQ_ENTRIES	4096
#define BP_MAX_EVENTS		512 /* events handled per bp_io_drain() */
#define BP_ACCEPT_BATCH		64	/* accept() calls per readiness event */
#define BP_ACCEPT_PAUSE_MS	100 /* after EMFILE and friends */
#define BP_TOUCH_MS			(58 * 60 * 1000)	/* as core's TouchSocketFiles */

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

static MemoryContext io_cxt;
static PoolAcceptHandler accept_handler;
static PoolIo **objs;			/* registered objects by index */
static int *free_ids;
static int	objs_cap;
static int	objs_top;
static int	n_free;
static uint32 last_tag;
static PoolListen *listens;
static int	n_listens;

static bool ring_on = false;
static struct io_uring ring;
static int	epfd = -1;

/* A nonzero 32-bit tag; wraps after 4 billion arms, long after any use */
static uint32
next_tag(void)
{
	if (++last_tag == 0)
		last_tag = 1;
	return last_tag;
}

/* on_proc_exit: removes our socket files so no client finds a dead one */
static void
remove_socket_files(int code, Datum arg)
{
	int			i;

	for (i = 0; i < n_listens; i++)
		if (listens[i].path != NULL)
			(void) unlink(listens[i].path);
}

/*
 * Allocates the tables in a context of their own under the current one,
 * raises the descriptor limit (each waiting client holds one) and picks the
 * backend.  Logs once when io_uring was asked for but is unavailable.
 */
void
bp_io_init(bool use_io_uring, PoolAcceptHandler on_accept)
{
	struct rlimit rl;

	io_cxt = AllocSetContextCreate(CurrentMemoryContext, "builtin_pool io",
								   ALLOCSET_DEFAULT_SIZES);
	accept_handler = on_accept;
	objs_cap = 1024;
	objs = MemoryContextAllocZero(io_cxt, objs_cap * sizeof(PoolIo *));
	free_ids = MemoryContextAlloc(io_cxt, objs_cap * sizeof(int));
	listens = MemoryContextAlloc(io_cxt, sizeof(PoolListen));
	on_proc_exit(remove_socket_files, 0);

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (use_io_uring)
	{
		struct io_uring_params p;
		int			rc;

		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = BP_RING_CQ_ENTRIES;
		rc = io_uring_queue_init_params(BP_RING_SQ_ENTRIES, &ring, &p);
		if (rc == 0)
		{
			ring_on = true;
			return;
		}
		ereport(LOG,
				(errmsg("builtin_pool could not set up io_uring, using epoll: %s",
						strerror(-rc)),
				 errhint("Set builtin_pool.use_io_uring to off to skip the attempt.")));
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("builtin_pool could not create an epoll set: %m")));
}

/* true if bp_io_init() got a ring, false if it fell back to epoll */
bool
bp_io_using_uring(void)
{
	return ring_on;
}

/* The descriptor to put in the caller's WaitEventSet, as readable */
int
bp_io_wait_fd(void)
{
	return ring_on ? ring.ring_fd : epfd;
}

/* Gives io an index and a fresh generation; nothing is armed yet */
void
bp_io_register(PoolIo *io)
{
	int			id;

	if (n_free > 0)
		id = free_ids[--n_free];
	else
	{
		if (objs_top == objs_cap)
		{
			if (objs_cap * 2 > BP_MAX_IO)
				elog(ERROR, "builtin_pool listener has too many open descriptors");
			objs_cap *= 2;
			objs = repalloc(objs, objs_cap * sizeof(PoolIo *));
			free_ids = repalloc(free_ids, objs_cap * sizeof(int));
		}
		id = objs_top++;
	}
	objs[id] = io;
	io->id = id;
	io->gen = next_tag();
	io->want = io->armed = 0;
	io->rtag = io->wtag = 0;
}

/* Disarms io and frees its index; the caller then closes or hands off */
void
bp_io_unregister(PoolIo *io)
{
	bp_io_forget(io);
	objs[io->id] = NULL;
	free_ids[n_free++] = io->id;
}

/* Is the object registered at id still the one with generation gen? */
bool
bp_io_alive(int id, uint32 gen)
{
	return id >= 0 && id < objs_top && objs[id] != NULL && objs[id]->gen == gen;
}

/* A free SQE; submits pending ones when the queue is full */
static struct io_uring_sqe *
ring_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (sqe == NULL)
	{
		bp_io_flush();
		sqe = io_uring_get_sqe(&ring);
		if (sqe == NULL)
			elog(ERROR, "io_uring submission queue of builtin_pool is full");
	}
	return sqe;
}

/* Hands queued SQEs to the kernel; a failure is retried next time */
void
bp_io_flush(void)
{
	int			rc;

	if (!ring_on || io_uring_sq_ready(&ring) == 0)
		return;
	rc = io_uring_submit(&ring);
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
 * Makes the kernel watch io for exactly io->want.  Idempotent: called after
 * each event (io_uring polls are one-shot) and after each change of want.
 */
void
bp_io_update(PoolIo *io)
{
	if (ring_on)
	{
		ring_poll(io, BP_EV_READ, POLLIN, UD_READ, &io->rtag);
		ring_poll(io, BP_EV_WRITE, POLLOUT, UD_WRITE, &io->wtag);
	}
	else if (io->armed != io->want)
	{
		struct epoll_event ev;
		int			op;

		op = io->armed == 0 ? EPOLL_CTL_ADD :
			io->want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
		memset(&ev, 0, sizeof(ev));
		ev.events = ((io->want & BP_EV_READ) ? EPOLLIN : 0) |
			((io->want & BP_EV_WRITE) ? EPOLLOUT : 0);
		ev.data.u64 = UD_MAKE(UD_IO, io->id, io->gen);
		if (epoll_ctl(epfd, op, io->fd, &ev) < 0)
			elog(LOG, "builtin_pool could not update its epoll set: %m");
		io->armed = io->want;
	}
}

/*
 * Stops watching io before its fd is closed or handed off.  The io_uring
 * removal is submitted at once (see the header comment); an epoll
 * registration belongs to the open file, which survives a handoff, so it
 * must go too.
 */
void
bp_io_forget(PoolIo *io)
{
	io->want = 0;
	bp_io_update(io);
	bp_io_flush();
}

/* Starts accepting on listen socket li (no-op if armed) */
static void
listen_arm(int li)
{
	PoolListen *l = &listens[li];

	l->paused_until = 0;
	if (l->armed)
		return;
	if (ring_on)
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
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
			elog(LOG, "builtin_pool could not update its epoll set: %m");
	}
	l->armed = true;
}

/* Arms every listening socket; call once they are all added */
void
bp_io_listen_start(void)
{
	int			i;

	for (i = 0; i < n_listens; i++)
		listen_arm(i);
	bp_io_flush();
}

/*
 * Reacts to a failed accept.  Running out of descriptors or memory pauses
 * this socket briefly (bp_io_tick resumes it) instead of spinning on it.
 */
static void
accept_failed(int li, int err)
{
	PoolListen *l = &listens[li];

	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
		err == ECONNABORTED || err == ECANCELED)
		return;
	errno = err;
	ereport(LOG,
			(errcode_for_socket_access(),
			 errmsg("builtin_pool could not accept a new connection: %m")));
	if (!ring_on && l->armed)
	{
		(void) epoll_ctl(epfd, EPOLL_CTL_DEL, l->fd, NULL);
		l->armed = false;
	}
	l->paused_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  BP_ACCEPT_PAUSE_MS);
}

/* Accepts up to BP_ACCEPT_BATCH connections by hand (epoll, ring polls) */
static void
accept_batch(int li)
{
	int			i;

	for (i = 0; i < BP_ACCEPT_BATCH; i++)
	{
		int			fd = accept4(listens[li].fd, NULL, NULL,
								 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
		{
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			accept_failed(li, errno);
			return;
		}
		accept_handler(fd, listens[li].port_index, listens[li].is_unix);
	}
}

/* Runs io's handler, then re-arms io if the handler kept it */
static void
io_event(PoolIo *io, bool readable, bool writable)
{
	int			id = io->id;
	uint32		gen = io->gen;

	io->handler(io, readable, writable);
	if (bp_io_alive(id, gen))
		bp_io_update(objs[id]);
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
			l = &listens[idx];
			if (tag != l->tag)
				break;
			if (!(flags & IORING_CQE_F_MORE))
				l->armed = false;
			if (res >= 0)
				accept_handler(res, l->port_index, l->is_unix);
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
			l = &listens[idx];
			if (tag != l->tag)
				break;
			l->armed = false;
			accept_batch(idx);
			if (l->paused_until == 0)
				listen_arm(idx);
			break;
		case UD_READ:
		case UD_WRITE:
			if (idx >= objs_top || (io = objs[idx]) == NULL)
				break;
			if (UD_KIND(ud) == UD_READ && io->rtag == tag)
			{
				io->armed &= ~BP_EV_READ;
				io->rtag = 0;
				io_event(io, true, false);
			}
			else if (UD_KIND(ud) == UD_WRITE && io->wtag == tag)
			{
				io->armed &= ~BP_EV_WRITE;
				io->wtag = 0;
				io_event(io, false, true);
			}
			break;
		default:
			break;
	}
}

/* Handles at most BP_MAX_EVENTS ready events; the rest wait for the next call */
void
bp_io_drain(void)
{
	if (ring_on)
	{
		struct io_uring_cqe *cqe;
		int			n = 0;

		while (n++ < BP_MAX_EVENTS && io_uring_peek_cqe(&ring, &cqe) == 0)
		{
			uint64		ud = io_uring_cqe_get_data64(cqe);
			int			res = cqe->res;
			unsigned	flags = cqe->flags;

			io_uring_cqe_seen(&ring, cqe);
			ring_dispatch(ud, res, flags);
		}
	}
	else
	{
		struct epoll_event evs[256];
		int			nev = epoll_wait(epfd, evs, lengthof(evs), 0);
		int			i;

		for (i = 0; i < nev; i++)
		{
			uint64		ud = evs[i].data.u64;
			uint32		e = evs[i].events;

			if (UD_KIND(ud) == UD_ACCEPT)
			{
				if (listens[UD_IDX(ud)].armed)
					accept_batch(UD_IDX(ud));
			}
			else if (bp_io_alive(UD_IDX(ud), UD_TAG(ud)))
				io_event(objs[UD_IDX(ud)],
						 (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0,
						 (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0);
		}
	}
	bp_io_flush();
}

/*
 * Resumes paused listen sockets and, every 58 minutes, touches the socket
 * files so /tmp cleaners leave them alone.  Returns true while a socket is
 * paused (the caller then wakes up often).
 */
bool
bp_io_tick(TimestampTz now, bool slow)
{
	static TimestampTz last_touch = 0;
	bool		paused = false;
	int			i;

	for (i = 0; i < n_listens; i++)
	{
		if (listens[i].paused_until == 0)
			continue;
		paused = true;
		if (listens[i].paused_until <= now)
			listen_arm(i);
	}
	if (slow && TimestampDifferenceExceeds(last_touch, now, BP_TOUCH_MS))
	{
		last_touch = now;
		for (i = 0; i < n_listens; i++)
			if (listens[i].path)
				(void) utime(listens[i].path, NULL);
	}
	return paused;
}

/* Releases the ring before exit; socket files go in on_proc_exit */
void
bp_io_shutdown(void)
{
	if (ring_on)
		io_uring_queue_exit(&ring);
	ring_on = false;
}

/* ---------------------------------------------------------------------
 * The pool's listening sockets
 * ---------------------------------------------------------------------
 */

/* Records a listening socket (not armed until bp_io_listen_start) */
void
bp_io_listen_add(int fd, int port_index, bool is_unix, char *path)
{
	PoolListen *l;

	listens = repalloc(listens, (n_listens + 1) * sizeof(PoolListen));
	l = &listens[n_listens++];
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->port_index = port_index;
	l->is_unix = is_unix;
	l->multishot = true;
	l->path = path;
}
