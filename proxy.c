/*-------------------------------------------------------------------------
 *
 * proxy.c
 *	  The pool listener: the background worker that owns the pool ports.
 *
 * client.c takes each client accepted on a pool port (pool_io.c) through
 * startup, TLS and authentication, and leaves it admitted (conn.c, which
 * owns every client's state and lists).  This file takes the admitted ones: it
 * picks the pool for (port, database, role) and the executor, launching
 * executors on demand, and hands the client over through the channel
 * (channel.c), with, for a TLS client, the relay that reads its input from
 * then on (relay.c).  Results never pass through the listener, and it
 * never blocks: the one wait is WaitEventSetWait() on the latch, postmaster
 * death and the io_uring/epoll descriptor.
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

#include "access/xact.h"
#include "access/xlog.h"
#include "common/ip.h"
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
#include "admin.h"
#include "builtin_pool.h"
#include "channel.h"
#include "greeting.h"
#include "listener.h"
#include "mainport.h"
#include "pool_io.h"
#include "pool_shmem.h"
#include "relay.h"
#include "session_table.h"
#include "shutdown.h"
#include "sockets.h"
#include "startup.h"
#include "tls.h"

#define BP_HELLO_TIMEOUT_MS 60000	/* executor connected but silent */
#define BP_BUSY_TICK_MS		100
#define BP_IDLE_TICK_MS		1000

/*
 * A turn running this long is likely a long or idle transaction: a new
 * session goes elsewhere if it can.  The executor's BP_HANDBACK_DELAY_MS is
 * the same idea from the other side.
 */
#define BP_HELD_MS			20


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
	PoolChan   *chan;			/* NULL until it greeted us; its queue of
								 * PoolConns is conn.c's */
	pid_t		orphan_pid;		/* started by a previous listener */
} PoolExecLocal;

static MemoryContext bp_listener_cxt;
static MemoryContext bp_scratch_cxt;
static PoolExecLocal *bp_exec;
static dlist_head bp_new_chans = DLIST_STATIC_INIT(bp_new_chans);
static char bp_handoff_buf[BP_HANDOFF_MAX];
static char bp_chan_buf[BP_HANDOFF_MAX];
static bool bp_smart_shutdown = false;	/* see shutdown.c */
static bool in_recovery = true;	/* until RecoveryInProgress() says not */

static void chan_close(PoolChan *ch);
static void chan_writable(PoolChan *ch);
static void exec_flush(int slot);
static void keep_min_executors(void);

/* ---------------------------------------------------------------------
 * Executors
 * ---------------------------------------------------------------------
 */

/*
 * What routing needs to know of a pool's executors.  Pinned executors
 * serve one session alone and count in neither the pool's size nor its
 * reserve (builtin_pool.max_pinned_executors bounds them; 0 counts them in
 * the size, so the other sessions wait while every executor is pinned).
 * Nor do held ones (bp_executor_held), up to max_held_executors per pool:
 * they give their sessions away and take none.
 */
typedef struct PoolChoice
{
	int			best;			/* slot to queue on, -1 if none can take one */
	bool		best_idle;		/* it is between transactions */
	uint32		load;			/* its sessions */
	int			n_regular;		/* unpinned, within session_pool_size */
	int			n_reserve;		/* unpinned reserve executors */
	bool		has_pinned;		/* some executor is pinned or held */
	bool		busy_long;		/* every candidate has been inside one
								 * session's turn past reserve_pool_timeout */
} PoolChoice;

/*
 * Chooses among pool_id's executors (but exclude) for one more session.
 * Sessions are bound to no executor, so what matters is who can serve the
 * next request soonest: one between transactions (the least loaded), else
 * one starting or whose turn began less than BP_HELD_MS ago (the least
 * loaded), else the one whose turn began last.  A starting executor is not
 * ranked with the idle ones: it would take every session placed while it
 * starts (a burst of 1,000 first requests put most of them on the
 * replacement of a held executor), and serves none sooner than a short
 * turn ends.  Reads the atomics the executors write;
 * a stale value costs a worse choice, which the executor corrects by
 * handing the session back.
 */
static void
exec_choose(int pool_id, int exclude, PoolChoice *pc)
{
	TimestampTz now = GetCurrentTimestamp();
	int			best_class = 3;
	TimestampTz best_since = 0;
	int			n_held = 0;
	int			i;

	memset(pc, 0, sizeof(*pc));
	pc->best = -1;
	pc->busy_long = true;
	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];
		TimestampTz since = 0;
		int			class;
		uint32		n;

		if (ex->pool_id != pool_id ||
			(ex->state != PE_STARTING && ex->state != PE_READY))
			continue;
		/* pool_reconnect() retires it: fresh executors take its place */
		if (bp_admin_recycling(i, ex->generation))
			continue;
		if (pg_atomic_read_u32(&ex->n_pinned) > 0)
		{
			pc->has_pinned = true;
			/* max_pinned_executors = 0: pins take the pool's executors */
			if (bp_max_pinned_executors == 0)
				pc->n_regular++;
			continue;
		}
		if (n_held < bp_max_held_executors && bp_executor_held(ex, now))
		{
			n_held++;
			pc->has_pinned = true;	/* its transaction ends some day */
			continue;
		}
		if (ex->reserve)
			pc->n_reserve++;
		else
			pc->n_regular++;
		n = pg_atomic_read_u32(&ex->n_sessions);
		if (i == exclude || n >= (uint32) bp_max_sessions)
			continue;
		if (ex->state == PE_STARTING)
			class = 1;
		else if (pg_atomic_read_u32(&ex->activity) == PEA_IDLE)
			class = 0;
		else
		{
			since = (TimestampTz) pg_atomic_read_u64(&ex->busy_since);
			class = TimestampDifferenceExceeds(since, now, BP_HELD_MS) ? 2 : 1;
		}
		if (class < 2 ||
			!TimestampDifferenceExceeds(since, now, bp_reserve_pool_timeout))
			pc->busy_long = false;
		if (class < best_class ||
			(class == best_class &&
			 (class == 2 ? since > best_since : n < pc->load)))
		{
			pc->best = i;
			pc->load = n;
			best_class = class;
			best_since = since;
		}
	}
	pc->best_idle = best_class == 0;
	if (pc->best < 0)
		pc->busy_long = false;
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
	w.bgw_start_time = BgWorkerStart_ConsistentState;	/* see the listener's */
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
 * Strong random words, drawn from pg_strong_random() 256 at a time: a call
 * per login was 8% of the listener's time under pgbench -C (OpenSSL's
 * generator locks and checks its state on every call).  The words are as
 * strong as the call's; they only wait here, unseen, until used.  Returns
 * false if the generator failed.
 */
static bool
strong_random_word(uint32 *word)
{
	static uint32 words[256];
	static int	next = lengthof(words);

	if (next == lengthof(words))
	{
		if (!pg_strong_random(words, sizeof(words)))
			return false;
		next = 0;
	}
	*word = words[next];
	words[next++] = 0;
	return true;
}

/*
 * Draws a new client's cancel key: strongly random, never 0, and unique
 * among live sessions (it is added to the cancel key table here).  As core
 * does, a client is refused rather than given a key from a weaker
 * generator.  Returns false if c was refused.
 */
static bool
conn_new_cancel_key(PoolConn *c)
{
	int			tries;

	for (tries = 0; tries < 16; tries++)
	{
		uint32		key;

		if (!strong_random_word(&key))
		{
			conn_refuse(c, LOG, ERRCODE_INTERNAL_ERROR,
						"could not generate random cancel key",
						NULL, NULL, NULL);
			return false;
		}
		if (key == 0)
			continue;
		switch (bp_cancel_key_add(key))
		{
			case PCK_ADDED:
				c->cancel_key = key;
				return true;
			case PCK_TAKEN:
				continue;
			case PCK_FULL:
				conn_refuse(c, LOG, ERRCODE_TOO_MANY_CONNECTIONS,
							"sorry, too many clients already",
							"The pool's table of cancel keys is full.",
							"Raise builtin_pool.max_sessions.", NULL);
				return false;
		}
	}
	conn_refuse(c, LOG, ERRCODE_INTERNAL_ERROR,
				"could not generate a unique cancel key", NULL, NULL, NULL);
	return false;
}

/*
 * A login about to be queued for slot: if the listener knows what its
 * executor would greet it with (greeting.c), it greets it now, so that the
 * login is complete whether or not the executor is free.  Only while the
 * executor's pid is known (it goes into BackendKeyData), and never for a
 * session greeted before.  Returns false if c was closed (the send failed).
 */
static bool
conn_greet(PoolConn *c, int slot)
{
	PoolExecutor *ex = &bp_shared->executors[slot];
	StringInfoData buf;
	bool		ok;

	if (c->greeted || c->state_len > 0 || c->key_pid != 0 ||
		ex->state != PE_READY || ex->pid <= 0)
		return true;
	initStringInfo(&buf);
	if (!bp_greeting_build(&buf, c->port_index, c->dboid, c->roleid,
						   c->pkt + 4, c->pktlen - 8, (int32) ex->pid,
						   c->cancel_key, &c->greeting_hash))
	{
		pfree(buf.data);
		return true;
	}
	ok = bp_tls_send_quick(&c->tls, c->io.fd, buf.data, buf.len);
	pfree(buf.data);
	if (!ok)
	{
		conn_log(c, COMMERROR,
				 errcode_for_socket_access(),
				 errmsg("could not send data to client: %m"));
		conn_close(c);
		return false;
	}
	c->greeted = true;
	c->key_pid = ex->pid;
	pg_atomic_fetch_add_u64(&bp_shared->n_greetings, 1);
	return true;
}

/*
 * Picks the executor for an admitted client, starting one if the pool
 * rules say so, queues the client there and hands it over if the executor
 * is ready.  Parks it while only pinned executors could take it.  Refuses
 * the client when no executor can take it.  c leaves PC_ADMITTED either way.
 */
static void
conn_route(PoolConn *c)
{
	bool		dedicated;
	int			pool_id;
	PoolChoice	pc;
	int			fresh = -1;
	int			target = -1;
	int			n_exec = 0;
	bool		want_new = false;
	bool		want_reserve = false;
	bool		park = false;
	char	   *detail;

	/* during a smart shutdown, as core: no new client */
	if (bp_smart_shutdown && !c->resumed)
	{
		conn_refuse(c, LOG, ERRCODE_CANNOT_CONNECT_NOW,
					"the database system is shutting down", NULL, NULL, NULL);
		return;
	}

	memset(&pc, 0, sizeof(pc));
	pc.best = -1;
	dedicated = bp_database_is_dedicated(c->dbname);
	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	pool_id = bp_pool_lookup(c->port_index, c->dboid, c->roleid, c->dbname,
							 c->user, true);
	if (pool_id >= 0)
	{
		PoolDesc   *p = &bp_shared->pools[pool_id];

		if (p->n_executors == 0)
			p->dedicated = dedicated;
		if (p->dedicated)
			want_new = true;
		else
		{
			exec_choose(pool_id, c->resumed ? c->from_slot : -1, &pc);

			/* spread sessions while the pool may grow */
			want_new = pc.n_regular < bp_session_pool_size &&
				(pc.best < 0 || !pc.best_idle || pc.load >= 1);

			/*
			 * Every executor is held: a reserve one when the request waited
			 * long enough (a session handed back says how long; a login
			 * would wait at least as long as the turns now running).
			 */
			if (!want_new && (pc.best < 0 || !pc.best_idle) &&
				pc.n_reserve < bp_reserve_pool_size &&
				(c->resumed ? c->waited_ms >= bp_reserve_pool_timeout :
				 pc.busy_long))
				want_new = want_reserve = true;
		}
		if (want_new)
			fresh = bp_executor_claim(pool_id);
		if (fresh >= 0)
			bp_shared->executors[fresh].reserve = want_reserve;
		target = fresh >= 0 ? fresh : pc.best;
		if (target < 0 && pc.has_pinned)
			park = true;		/* wait until a pin ends */
		else if (target < 0 && p->n_executors == 0)
			p->in_use = false;	/* do not leak an empty pool */
		n_exec = p->n_executors;
	}
	LWLockRelease(bp_shared->lock);

	if (fresh >= 0 && !exec_start(fresh, c->dbname, c->user))
	{
		LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
		bp_executor_release(fresh);
		LWLockRelease(bp_shared->lock);
		target = pc.best;
		park = target < 0 && pc.has_pinned;
		if (target < 0 && !park && !c->resumed)
		{
			conn_refuse(c, LOG, ERRCODE_TOO_MANY_CONNECTIONS,
						"could not start a pool executor",
						"All background worker slots are in use; they are shared with parallel query and other background workers.",
						"Increase max_worker_processes.", NULL);
			return;
		}
	}
	else if (fresh >= 0)
		bp_admin_count_exec_started(pool_id, want_reserve);
	if (park || (target < 0 && c->resumed))
	{
		/* wait here for an executor that is free to serve it */
		(void) conn_set_state(c, PC_PARKED);
		return;
	}
	if (target < 0)
	{
		if (pool_id < 0)
			detail = psprintf("All %d pool entries are in use.", bp_shared->max_pools);
		else if (want_new)
			detail = psprintf("All %d executor slots are in use.",
							  bp_shared->max_executors);
		else
			detail = psprintf("The pool for database \"%s\", user \"%s\" on port %d has %d executors holding %d sessions each.",
							  c->dbname, c->user, bp_port_for_index(c->port_index),
							  n_exec, bp_max_sessions);
		conn_refuse(c, LOG, ERRCODE_TOO_MANY_CONNECTIONS,
					"sorry, too many clients already", detail,
					want_new || pool_id < 0 ? "Increase max_worker_processes." :
					"Raise builtin_pool.max_sessions or builtin_pool.session_pool_size.",
					NULL);
		return;
	}

	if (c->cancel_key == 0 && !conn_new_cancel_key(c))
		return;					/* c was refused */
	if (!conn_greet(c, target))
		return;					/* c was closed */
	c->exec_slot = target;
	c->exec_gen = bp_shared->executors[target].generation;
	(void) conn_set_state(c, PC_QUEUED);
	exec_flush(target);
}

/* Routes every admitted client (conn_route moves each off the list) */
static void
route_admitted(void)
{
	PoolConn   *c;

	while ((c = conn_first(PC_ADMITTED)) != NULL)
		conn_route(c);
}

/*
 * pool_terminate_session() for clients the listener holds: each ends with
 * core's FATAL.  Returns true if any did.
 */
static bool
conn_end_terminated(void)
{
	dlist_mutable_iter it;
	bool		any = false;

	dlist_foreach_modify(it, &bp_conns)
	{
		PoolConn   *c = dlist_container(PoolConn, all_node, it.cur);

		if (c->stab_slot >= 0 &&
			(bp_stab_requests(c->stab_slot) & BP_STAB_TERMINATE) != 0)
		{
			conn_refuse(c, LOG, ERRCODE_ADMIN_SHUTDOWN,
						"terminating connection due to administrator command",
						NULL, NULL, NULL);
			any = true;
		}
	}
	return any;
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
	while (bp_shared->executors[slot].state == PE_READY)
	{
		PoolConn   *c = conn_first_queued(slot);
		PoolHandoff h;
		ssize_t		sent;
		int			body_len;
		int			fds[BP_CHANNEL_MAX_FDS];
		int			nfds = 0;

		if (c == NULL)
			break;
		body_len = c->pktlen - 8;
		if (!conn_start_relay(c))
			continue;			/* c was refused */

		/* cancels reach it there from now on (its pid: the first executor's) */
		bp_cancel_key_place(c->cancel_key,
							c->key_pid != 0 ? c->key_pid : bp_shared->executors[slot].pid,
							slot, bp_shared->executors[slot].generation);

		memset(&h, 0, sizeof(h));
		h.magic = BP_HANDOFF_MAGIC;
		h.cancel_key = c->cancel_key;
		h.port_index = c->port_index;
		h.proto = c->proto;
		h.startup_len = body_len;
		h.state_len = c->state_len;
		h.tls = c->tls.w;
		h.roleid = c->roleid;
		h.dboid = c->dboid;
		h.greeted = c->greeted;
		h.greeting_hash = c->greeting_hash;
		h.stab_slot = c->stab_slot;
		h.session_id = c->session_id;
		bp_stab_handed(c->stab_slot, slot, bp_shared->executors[slot].generation);
		if (c->plain_fd >= 0)
			fds[nfds++] = c->plain_fd;
		fds[nfds++] = c->io.fd;
		memcpy(bp_handoff_buf, &h, sizeof(h));
		memcpy(bp_handoff_buf + sizeof(h), c->pkt + 4, body_len);
		if (c->state_len > 0)
			memcpy(bp_handoff_buf + sizeof(h) + body_len, c->moved_state,
				   c->state_len);
		sent = bp_channel_send(ch->io.fd, bp_handoff_buf,
							   sizeof(h) + body_len + c->state_len, fds, nfds);
		/* the TLS sending key is in h: it lives on in c or the executor only */
		explicit_bzero(&h, sizeof(h));
		explicit_bzero(bp_handoff_buf, sizeof(h));
		if (sent < 0)
		{
			/* still ours: an executor that dies now must not free its slot */
			bp_stab_handed(c->stab_slot, -1, 0);
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
		c->cancel_key = 0;		/* the executor removes it when it ends */
		(void) conn_set_state(c, PC_HANDED);	/* it counts the session now */
		conn_close(c);
	}
	ch->io.want = BP_EV_READ;
	if (ch->ack_pending || (conn_first_queued(slot) != NULL && !ch->retry &&
							bp_shared->executors[slot].state == PE_READY))
		ch->io.want |= BP_EV_WRITE;
	bp_io_update(&ch->io);
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
	PoolConn   *c;

	bp_admin_count_exec_lost(slot, failed_start);
	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	bp_executor_release(slot);
	LWLockRelease(bp_shared->lock);
	if (e->handle)
		pfree(e->handle);
	e->handle = NULL;
	e->chan = NULL;
	e->orphan_pid = 0;

	/* the slot is free: leaving its queue uncounts nothing */
	while ((c = conn_first_queued(slot)) != NULL)
	{
		if (failed_start)
			conn_refuse(c, LOG, ERRCODE_CONNECTION_FAILURE,
						psprintf("could not start a pool executor for database \"%s\"",
								 c->dbname),
						NULL, "Check the server log for the executor's error.", NULL);
		else
			(void) conn_set_state(c, PC_ADMITTED);	/* routed again */
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
	PoolConn   *c;

	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	bp_shared->executors[ch->slot].state = PE_EXITING;
	LWLockRelease(bp_shared->lock);
	while ((c = conn_first_queued(ch->slot)) != NULL)
		(void) conn_set_state(c, PC_ADMITTED);	/* routed again */
	ch->ack_pending = true;
	chan_writable(ch);			/* may close ch */
}

/*
 * A pool whose role or database no longer is what its name said (renamed,
 * dropped, re-created, the role made NOLOGIN) is retired: no new client
 * goes to it (bp_pool_lookup skips it, so the same OIDs get a new pool),
 * the clients still queued for its executors are refused, and the
 * executors are flagged and woken: they end each session once its
 * transaction is over, then exit (executor.c).
 */
static void
retire_pool(int pool_id)
{
	PoolDesc   *p = &bp_shared->pools[pool_id];
	pid_t	   *pids = palloc(sizeof(pid_t) * bp_shared->max_executors);
	int			n = 0;
	int			i;
	PoolConn   *c;

	LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
	p->retired = true;
	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->state == PE_FREE || ex->pool_id != pool_id)
			continue;
		pg_atomic_write_u32(&ex->dismissed, 1);
		if (ex->pid > 0)
			pids[n++] = ex->pid;
	}
	LWLockRelease(bp_shared->lock);
	ereport(LOG,
			(errmsg("builtin_pool retires the pool for database \"%s\", user \"%s\" on port %d",
					p->dbname, p->rolname, bp_port_for_index(p->port_index)),
			 errdetail("%s", BP_RETIRED_DETAIL)));

	/* SIGUSR1 sets an executor's latch (procsignal_sigusr1_handler) */
	for (i = 0; i < n; i++)
		(void) kill(pids[i], SIGUSR1);
	pfree(pids);

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		if (bp_shared->executors[i].pool_id != pool_id)
			continue;
		while ((c = conn_first_queued(i)) != NULL)
			conn_refuse(c, LOG, ERRCODE_ADMIN_SHUTDOWN, BP_RETIRED_MESSAGE,
						BP_RETIRED_DETAIL, NULL, NULL);
	}
}

/*
 * Asks auth.c whether the live pools still match their role and database
 * (it answers only after a change to either, and never waits for a lock),
 * and retires those that do not.
 */
static void
retire_stale_pools(void)
{
	PoolAuthPool *pools = palloc(sizeof(PoolAuthPool) * bp_shared->max_pools);
	int		   *ids = palloc(sizeof(int) * bp_shared->max_pools);
	int			n = 0;
	int			i;

	for (i = 0; i < bp_shared->max_pools; i++)
	{
		PoolDesc   *p = &bp_shared->pools[i];

		if (!p->in_use || p->retired)
			continue;
		pools[n].roleid = p->roleid;
		pools[n].dboid = p->dboid;
		pools[n].rolname = p->rolname;
		pools[n].dbname = p->dbname;
		ids[n++] = i;
	}
	if (bp_auth_check_pools(pools, n))
	{
		for (i = 0; i < n; i++)
			if (!pools[i].valid)
				retire_pool(ids[i]);
	}
	pfree(pools);
	pfree(ids);
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
 * PoolHandback: a session leaves its executor for another executor of the
 * same pool, because the executor became pinned to another session, or is
 * held inside another session's transaction while this one's request
 * waits, or is a reserve executor retiring.  It is routed like a new
 * client, minus authentication, keeping its cancel key, and not back to
 * the executor that gave it.
 */
static void
chan_handback(PoolChan *ch, char *msg, ssize_t n, int *fds)
{
	PoolHandback h;
	PoolConn   *c;
	PoolDesc   *pool;
	bool		retired;

	memcpy(&h, msg, sizeof(h));
	/* the session's TLS sending key: kept in h, then in c, nowhere else */
	explicit_bzero(msg + offsetof(PoolHandback, tls), sizeof(h.tls));
	if (h.slot != ch->slot || h.startup_len <= 0 || h.state_len < 0 ||
		h.startup_len > MAX_STARTUP_PACKET_LENGTH || h.state_len > BP_STATE_MAX ||
		n != sizeof(h) + h.startup_len + h.state_len ||
		!bp_channel_fds_fit(&h.tls, fds))
	{
		ereport(LOG,
				(errmsg("builtin_pool ignored a malformed session handback from executor %d",
						ch->slot)));
		explicit_bzero(&h.tls, sizeof(h.tls));
		bp_channel_close_fds(fds);
		return;
	}

	/* a TLS session: its relay's end, then the client's TCP socket */
	c = conn_new(bp_channel_output_fd(fds), h.port_index, conn_ready);
	c->plain_fd = fds[1] >= 0 ? fds[0] : -1;
	c->tls.w = h.tls;
	explicit_bzero(&h.tls, sizeof(h.tls));
	c->resumed = true;
	c->from_slot = ch->slot;
	c->waited_ms = h.waited_ms;
	c->proto = h.proto;
	c->cancel_key = h.cancel_key;
	c->key_pid = bp_cancel_key_detach(h.cancel_key);
	c->greeted = h.greeted != 0;
	c->greeting_hash = h.greeting_hash;
	/* given back unopened and never greeted: its client knows no pid yet */
	if (h.state_len == 0 && !c->greeted)
		c->key_pid = 0;
	c->stab_slot = h.stab_slot >= 0 && h.session_id != 0 &&
		bp_stab_session_id(h.stab_slot) == h.session_id ? h.stab_slot : -1;
	c->session_id = h.session_id;
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
	c->roleid = pool->roleid;
	c->dboid = pool->dboid;
	retired = pool->retired;
	LWLockRelease(bp_shared->lock);

	/* a session of a retired pool does not move on: it ends */
	if (retired)
		conn_refuse(c, LOG, ERRCODE_ADMIN_SHUTDOWN, BP_RETIRED_MESSAGE,
					BP_RETIRED_DETAIL, NULL, NULL);
	else
		(void) conn_set_state(c, PC_ADMITTED);	/* nothing to read: the
												 * executor reads */
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
		if (ch->slot >= 0 && magic == BP_GREETING_MAGIC)
		{
			PoolDesc   *p = &bp_shared->pools[bp_shared->executors[ch->slot].pool_id];

			bp_greeting_receive(msg, n, ch->slot, p->port_index, p->dboid,
								p->roleid);
			continue;
		}
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

		if (c->resumed || c->greeted)
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

	/* clients whose lookup met a DDL's lock try again */
	busy |= conn_retry_lookups();
	(void) conn_end_terminated();
	busy |= bp_guard_connecting();

	/* parked clients try again: an executor may have been unpinned */
	{
		PoolConn   *c;

		while ((c = conn_first(PC_PARKED)) != NULL)
		{
			c->from_slot = -1;	/* its old executor may be the one free now */
			(void) conn_set_state(c, PC_ADMITTED);
		}
		route_admitted();
		busy |= conn_first(PC_PARKED) != NULL;
	}

	busy |= bp_io_tick(now, slow);
	if (slow)
	{
		last_slow = now;
		pgstat_report_stat(false);
		bp_sockets_tick(now);
		retire_stale_pools();
		keep_min_executors();
		if (in_recovery && !RecoveryInProgress())
		{
			in_recovery = false;
			bp_greeting_invalidate();	/* in_hot_standby is off now */
		}

		/* a smart shutdown waits for the pool's sessions (shutdown.c) */
		bp_smart_shutdown = bp_guard_tick();
		if (bp_smart_shutdown && bp_pool_sessions_total() == 0)
			bp_guard_release();
		if (dlist_is_empty(&bp_conns))
			MemoryContextReset(bp_conn_cxt);	/* give back a burst's memory */
	}
	return busy ? Min(timeout, BP_BUSY_TICK_MS) : timeout;
}

/*
 * builtin_pool.min_pool_size: each pool in use (not retired, not
 * dedicated) keeps that many executors (capped by its size; reserve and
 * pinned ones do not count) started, so that its clients find them ready
 * after a quiet spell or an executor's retirement.  One start per pool per
 * call, from the once-a-second tick.
 */
static void
keep_min_executors(void)
{
	int			want = Min(bp_min_pool_size, bp_session_pool_size);
	int			p;

	for (p = 0; p < bp_shared->max_pools && want > 0; p++)
	{
		PoolDesc   *pool = &bp_shared->pools[p];
		int			slot;

		if (!pool->in_use || pool->retired || pool->dedicated ||
			bp_pool_kept_executors(p) >= want)
			continue;
		LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
		slot = bp_executor_claim(p);
		LWLockRelease(bp_shared->lock);
		if (slot >= 0 && !exec_start(slot, pool->dbname, pool->rolname))
		{
			LWLockAcquire(bp_shared->lock, LW_EXCLUSIVE);
			bp_executor_release(slot);
			LWLockRelease(bp_shared->lock);
		}
	}
}

/*
 * On a hot standby, replay that needs a lock or a row version a login's
 * catalog lookup holds cancels the lookup's transaction (a recovery
 * conflict; core's handler asks for a cancel only while a transaction is
 * open).  Inside the lookup the cancel is an error for that login alone
 * (auth.c catches it); one noticed only here, after the transaction ended,
 * has nothing left to cancel, and raising it would end the listener, and
 * with it every pooled session.  Nothing else cancels the listener: it
 * ignores SIGINT and runs no timed statement.
 */
static void
listener_drop_stale_cancel(void)
{
	if (QueryCancelPending && !IsTransactionOrTransactionBlock())
		QueryCancelPending = false;
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

		/*
		 * Never plaintext into a TLS session: sealed with close_notify once
		 * we have its key; nothing while its handshake runs.
		 */
		if (c->tls.w.suite != 0)
			(void) bp_tls_send_goodbye(&c->tls, c->io.fd, buf.data, buf.len);
		else if (c->ssl == NULL)
			(void) send(c->io.fd, buf.data, buf.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		bp_tls_sealer_free(&c->tls);
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
	bp_stab_listener_start();

	bp_listener_cxt = AllocSetContextCreate(TopMemoryContext,
											"builtin_pool listener",
											ALLOCSET_DEFAULT_SIZES);
	bp_scratch_cxt = AllocSetContextCreate(bp_listener_cxt,
										   "builtin_pool scratch",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(bp_listener_cxt);

	bp_exec = palloc0(bp_shared->max_executors * sizeof(PoolExecLocal));
	conn_init(bp_listener_cxt, bp_shared->max_executors);
	adopt_orphans();
	bp_auth_init();
	bp_auth_load_hba(bp_listener_cxt);
	bp_tls_configure(true);
	pg_atomic_write_u32(&bp_shared->n_tls_sessions, 0);	/* a restart's relays are gone */
	bp_io_init(bp_use_io_uring, on_accept);
	bp_io_listen_add(bp_channel_listen(), -1, true, pstrdup(BP_CHANNEL_PATH));
	bp_mainport_listen();
	if (bp_sockets_adopt() == 0 && !bp_main_port_pooled())
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
		listener_drop_stale_cancel();
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			listener_shutdown();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			bp_greeting_invalidate();	/* logins may report other values */
			bp_auth_load_hba(bp_listener_cxt);
			bp_tls_configure(false);
		}
		if (catchupInterruptPending)
		{
			ProcessCatchupInterrupt();
			MemoryContextSwitchTo(bp_scratch_cxt);
		}

		bp_io_drain();
		route_admitted();
		timeout = tick();
		route_admitted();
		bp_io_flush();
		n = WaitEventSetWait(wes, timeout, events, lengthof(events),
							 PG_WAIT_EXTENSION);
		for (i = 0; i < n; i++)
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
	}
}
