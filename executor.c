/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  The executor background worker: receives sessions from the listener,
 *	  waits on all of them, picks the next one and serves it until its
 *	  transaction ends.  The one place that blocks.
 *
 * Scheduling.  Idle sessions' sockets sit in a raw epoll set (PG15's
 * WaitEventSet cannot remove an event), edge-triggered, itself one event of
 * the executor's WaitEventSet beside the latch and the listener channel.  A
 * readiness edge is checked with MSG_PEEK and FIONREAD: only a session whose
 * next message is complete joins the run queue, so a client that sends half
 * a message can never stall the others.  Sessions are served oldest first.
 * A session leaves the executor's attention only when no transaction is
 * open and pqcomm's receive buffer is empty: then nothing of it can be read
 * by the next session.
 *
 * Identity.  An executor logs in once, by the OIDs of its pool's database
 * and role (a name may come to mean another role), and takes only clients
 * the listener admitted as that very role and database.  When the pool is
 * retired (its role renamed, dropped or made NOLOGIN, its database renamed
 * or dropped; proxy.c) it ends each session once its transaction is over,
 * with 57P01, and exits.
 *
 * Errors.  A sigsetjmp block, like PostgresMain's, turns an ERROR into an
 * ErrorResponse to the session that caused it and an aborted transaction;
 * the process and its other sessions carry on.  A session whose client is
 * gone, or that broke the protocol, is closed alone.  Nothing here raises
 * FATAL for one client's sake.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/xact.h"
#include "commands/async.h"
#include "jit/jit.h"
#include "libpq/libpq.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/sinval.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "admin.h"
#include "builtin_pool.h"
#include "channel.h"
#include "command.h"
#include "conflict.h"
#include "pinning.h"
#include "extended.h"
#include "parse_ahead.h"
#include "greeting.h"
#include "mainport.h"
#include "pool_shmem.h"
#include "prepared.h"
#include "protocol.h"
#include "redirect.h"
#include "sequences.h"
#include "session.h"
#include "sockets.h"
#include "startup.h"
#include "session_table.h"
#include "session_views.h"
#include "utility_hook.h"

#define MAX_EPOLL_EVENTS	64

/*
 * A request queued behind a turn held this long (a long or idle
 * transaction, or a pinned session) goes back to the listener for another
 * executor, at most BP_HANDBACK_BATCH sessions per look; with none free,
 * the executor looks again every BP_HANDBACK_DELAY_MS.
 */
#define BP_HANDBACK_DELAY_MS	20
#define BP_HANDBACK_BATCH		16

/*
 * An executor with requests waiting that holds more than a quarter more
 * sessions (plus BP_SHED_MIN) than another executor of its pool gives its
 * oldest waiting ones back, for the listener to place on the lighter ones;
 * it looks at most every BP_HANDBACK_DELAY_MS.  See shed_to_lighter().
 */
#define BP_SHED_MIN				8

/*
 * A reserve executor that served no turn this long gives its sessions back
 * and exits.
 */
#define BP_RESERVE_IDLE_MS		5000

PoolExecutor *bp_my_slot = NULL;

static int	my_slot_index = -1;
static uint32 my_generation = 0;
static int	my_pool_id = -1;
static bool my_pool_dedicated = false;
/*
 * Worn out: this executor set up its temp schema again for as many
 * sessions as core allows (pinning.c); it retires as a reserve executor
 * does, at once: its sessions move to a fresh executor, none is cut.
 */
static bool worn_out = false;
/*
 * Leaving: worn out, or older than builtin_pool.executor_lifetime.  The
 * listener was told first (PoolRetire), so it counts this executor no more
 * and starts another; every session then moves off, none is cut.
 */
static bool leaving = false;
static TimestampTz started_at = 0;
static bool my_reserve = false;	/* a reserve executor, or one left beyond
								 * the pool's size by a pin that ended */
static TimestampTz last_turn_end = 0;	/* last turn's start (its end, for a
										 * reserve executor) */
static TimestampTz idle_xact_since = 0; /* see publish_idle_xact */
static int	channel_fd = -1;
static int	idle_epoll_fd = -1;
static WaitEventSet *main_wes = NULL;
static dlist_head run_queue = DLIST_STATIC_INIT(run_queue);
static dlist_head all_sessions = DLIST_STATIC_INIT(all_sessions);
static char channel_buf[BP_HANDOFF_MAX];
static int	n_sessions = 0;
static int	n_queued = 0;
static bool retire_sent = false;
static bool retire_acked = false;
static bool dismissal_done = false;
static bool served_any = false;
static TimestampTz idle_since = 0;
static uint32 last_session_id = 0;

/*
 * Between transactions the executor looks at the channel only when the
 * listener has sent something (its counter in our slot moved) or the wait
 * saw the channel readable (EOF included), and harvests readiness edges
 * when the run queue is empty, saw them, or every few picks: two system
 * calls fewer per transaction under load, the run queue stays FIFO.
 */
static uint32 channel_sends_seen = 0;
static bool channel_readable = true;
static bool sessions_readable = true;
static int	picks_since_poll = 0;

#define PICKS_PER_POLL	8

/* key of the session whose command is running, 0 while none runs */
static volatile uint32 running_key = 0;

static void close_session(PoolSession *s);
static void set_pinned(PoolSession *s, bool pinned);
static void publish_idle_xact(bool idle);
static bool pool_can_take(bool reserve_due, bool any_unheld);
static void switch_in(PoolSession *s);
static void switch_out(void);
static void examine_session(PoolSession *s, bool hangup);
static bool harvest_while_serving(PoolSession *s);

/* ---------------------------------------------------------------------
 * Signals
 * ---------------------------------------------------------------------
 */

/* SIGTERM: core's die(), remembering why the executor is going to end */
static volatile sig_atomic_t terminating = false;

static void
executor_sigterm(SIGNAL_ARGS)
{
	terminating = true;
	die(postgres_signal_arg);
}

/*
 * Cancels come two ways, told apart by the signal, hence by the sender:
 *
 * SIGUSR2 comes from the listener only (core sends it to no background
 * worker while it runs): a CancelRequest it forwarded left the session's
 * key in one of our slot's cancel_keys entries.  We take every entry, and
 * cancel the running command if one of them is the running session's key;
 * keys of sessions not running now are dropped, as core ignores a cancel
 * while it reads a command.  Signals coalesce, keys do not: each forwarded
 * key is looked at once, by the first handler run after it was stored.
 *
 * SIGINT is pg_cancel_backend() on the executor (or a kill by its owner):
 * it cancels whatever command is running, as on a backend.  A CancelRequest
 * never becomes a SIGINT, so it can never cancel without its key.
 */
static volatile sig_atomic_t terminate_check = false;

static void
executor_sigusr2(SIGNAL_ARGS)
{
	uint32		running = running_key;
	bool		hit = false;
	int			i;

	if (bp_my_slot == NULL)
		return;					/* not attached yet: nothing can run */
	for (i = 0; i < BP_CANCEL_SLOTS; i++)
	{
		uint32		key;

		if (pg_atomic_read_u32(&bp_my_slot->cancel_keys[i]) == 0)
			continue;
		key = pg_atomic_exchange_u32(&bp_my_slot->cancel_keys[i], 0);
		if (key != 0 && key == running)
			hit = true;
	}
	if (hit)
		StatementCancelHandler(postgres_signal_arg);

	/*
	 * pool_terminate_session() signals too: the main loop looks at the
	 * sessions' slots.  A current session may be blocked reading its
	 * client inside a transaction, where no cancel reaches (core's read
	 * waits for die alone): its input ends here, so the read returns EOF
	 * and serve_current() ends it with the FATAL.
	 */
	terminate_check = true;
	{
		PoolSession *cur = bp_current;

		if (cur != NULL && bp_stab_terminating(cur))
			(void) shutdown(cur->sock, SHUT_RD);
	}
	SetLatch(MyLatch);
}

static void
executor_sigint(SIGNAL_ARGS)
{
	if (running_key != 0)
		StatementCancelHandler(postgres_signal_arg);
}

/*
 * A session's turn begins and ends here: its settings and protocol state
 * (session.c), and what it sees of the executor's temp schema (pinning.c).
 */
static void
switch_in(PoolSession *s)
{
	bp_conflict_reset();
	bp_session_switch_in(s);
	bp_temp_namespace_switch_in(s);
}

static void
switch_out(void)
{
	bp_temp_namespace_switch_out();
	bp_session_switch_out();
}

/* ---------------------------------------------------------------------
 * Startup
 * ---------------------------------------------------------------------
 */

/*
 * Finds our slot and its pool; the listener filled them in before it
 * registered us.  Exits quietly if the slot was reused meanwhile, or the
 * pool retired (its role may be gone: logging in would fail).
 */
static void
attach_slot(Datum main_arg, Oid *dboid, Oid *roleid)
{
	uint32		generation;
	PoolExecutor *ex;
	bool		ok;

	my_slot_index = DatumGetInt32(main_arg);
	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(uint32));
	if (my_slot_index < 0 || my_slot_index >= bp_shared->max_executors)
		proc_exit(0);

	LWLockAcquire(bp_shared->lock, LW_SHARED);
	ex = &bp_shared->executors[my_slot_index];
	ok = ex->state == PE_STARTING && ex->generation == generation &&
		ex->pool_id >= 0 && pg_atomic_read_u32(&ex->dismissed) == 0;
	if (ok)
	{
		PoolDesc   *pool = &bp_shared->pools[ex->pool_id];

		*dboid = pool->dboid;
		*roleid = pool->roleid;
		my_pool_dedicated = pool->dedicated;
		my_pool_id = ex->pool_id;
		my_reserve = ex->reserve;
	}
	LWLockRelease(bp_shared->lock);

	if (!ok)
		proc_exit(0);
	bp_my_slot = ex;
	my_generation = generation;
}

/*
 * Each session holds a socket and an epoll fd; make room for
 * builtin_pool.max_sessions of them above what fd.c manages.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t		want = (rlim_t) bp_max_sessions * 2 + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = Min(want, rl.rlim_max);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		elog(LOG, "could not raise the open file limit to %lu: %m",
			 (unsigned long) rl.rlim_cur);
}

static void
say_hello(void)
{
	PoolHello	hello;

	channel_fd = bp_channel_connect();
	hello.magic = BP_HELLO_MAGIC;
	hello.slot = my_slot_index;
	memcpy(&hello.generation, MyBgworkerEntry->bgw_extra, sizeof(uint32));
	hello.pid = MyProcPid;
	if (send(channel_fd, &hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello))
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not greet the pool listener: %m")));
}

static void
build_wait_sets(void)
{
	idle_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (idle_epoll_fd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not create epoll set: %m")));

	main_wes = CreateWaitEventSet(TopMemoryContext, 4);
	AddWaitEventToSet(main_wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(main_wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(main_wes, WL_SOCKET_READABLE, channel_fd, NULL, NULL);
	AddWaitEventToSet(main_wes, WL_SOCKET_READABLE, idle_epoll_fd, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Sessions arriving and leaving
 * ---------------------------------------------------------------------
 */

static void
update_counters(void)
{
	pg_atomic_write_u32(&bp_my_slot->n_waiting, n_queued);
}

/*
 * A new session's greeting up to BackendKeyData was just written to its
 * output from start on (ReadyForQuery flushes, so it comes after).  If the
 * listener greeted the client already (greeting.c), it goes unsent, and so
 * does ReadyForQuery -- but the bookkeeping of what was reported stays --
 * unless it reports other settings than the listener did: then its
 * ParameterStatus messages go, to correct the client at once.  A greeting the listener did not
 * know, or knew wrong, is noted back to it for the next login.
 */
static void
settle_greeting(PoolSession *s, const PoolHandoff *handoff, const char *body,
				int start, uint32 epoch)
{
	int			off;
	int			len;
	bool		plain;
	bool		same = false;

	plain = start == 0 &&
		bp_greeting_split(s->outbuf.data, start, s->outbuf.len, &off, &len);
	if (plain && handoff->greeted)
		same = bp_greeting_hash(s->outbuf.data + off, len) == handoff->greeting_hash;
	if (plain && !same)
		bp_greeting_send_note(channel_fd, my_slot_index, epoch,
							  handoff->port_index, body, handoff->startup_len,
							  s->outbuf.data + off, len);
	if (!handoff->greeted)
		return;
	s->send_ready_for_query = false;
	if (plain && !same)
	{
		memmove(s->outbuf.data, s->outbuf.data + off, len);
		s->outbuf.len = len;
	}
	else if (plain)
		s->outbuf.len = 0;
	else
		s->outbuf.len = start;	/* what came before, if anything */
	s->outbuf.data[s->outbuf.len] = '\0';
}

/*
 * Takes a client from a handoff: builds the session, applies its startup
 * options and greets it.  A failure here (bad option) is reported to that
 * client by the error handler, which then closes the session.
 */
static void
start_session(int sock, int client_fd, const PoolHandoff *handoff,
			  const char *body)
{
	PoolSession *s;
	struct epoll_event ev;
	uint32		epoch;
	int			start;
	bool		known;

	s = bp_session_create(sock, client_fd, handoff, body);
	s->id = ++last_session_id;
	/* pool_terminate_session() may have come while it travelled */
	if (bp_stab_adopt(s, handoff->stab_slot, handoff->session_id,
					  my_slot_index, my_generation, handoff->state_len > 0))
		terminate_check = true;
	dlist_push_tail(&all_sessions, &s->all_node);
	n_sessions++;
	served_any = true;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = s;
	if (epoll_ctl(idle_epoll_fd, EPOLL_CTL_ADD, sock, &ev) < 0)
		elog(ERROR, "could not add client socket to epoll set: %m");

	/* a session moved from another executor: already greeted there */
	if (handoff->state_len > 0)
	{
		bp_session_restore(s, body + handoff->startup_len, handoff->state_len);
		examine_session(s, false);
		return;
	}

	/* read before the catalogs: a change committed after it makes it old */
	epoch = bp_greeting_epoch();

	/* the same options as a recent session's: their settings are known */
	known = bp_session_startup_from_memo(s, epoch);
	switch_in(s);
	if (!known)
	{
		/* privilege checks of the options read the catalogs */
		bp_switching = true;
		StartTransactionCommand();
		bp_session_apply_startup_options(s);
		CommitTransactionCommand();
		bp_switching = false;
	}
	bp_session_report_start(s);

	start = s->outbuf.len;
	bp_send_greeting(s);
	settle_greeting(s, handoff, body, start, epoch);
	bp_send_ready_if_needed();
	switch_out();
	if (s->dead || s->closing)
		close_session(s);
	else
	{
		if (!known)
			bp_session_remember_startup(s, epoch);
		examine_session(s, false);	/* in case it sent before we listened */
	}
}

/* Our pool was retired (proxy.c): no session may start or go on here */
static inline bool
pool_dismissed(void)
{
	return pg_atomic_read_u32(&bp_my_slot->dismissed) != 0;
}

/*
 * Tells the client of a handoff that it will not be served (msg is a whole
 * ErrorResponse) and closes its descriptors.  Best effort, never blocking.
 */
static void
refuse_handoff(BpTlsWriter *tls, int *fds, StringInfo msg)
{
	BpTlsSealer sealer;

	memset(&sealer, 0, sizeof(sealer));
	if (tls != NULL)
	{
		memcpy(&sealer.w, tls, sizeof(sealer.w));
		explicit_bzero(tls, sizeof(*tls));
	}
	if (bp_channel_fds_fit(&sealer.w, fds))
	{
		if (sealer.w.suite != 0)
			(void) bp_tls_send_goodbye(&sealer, bp_channel_output_fd(fds),
									   msg->data, msg->len);
		else
			(void) bp_tls_send_quick(&sealer, bp_channel_output_fd(fds),
									 msg->data, msg->len);
	}
	bp_tls_sealer_free(&sealer);
	bp_channel_close_fds(fds);
}

/*
 * A handoff this executor must not serve: its pool was retired, or the
 * client was admitted as another role or database than ours (which would
 * be a listener bug: logged).  Returns true if it was refused.
 */
static bool
handoff_refused(int *fds, PoolHandoff *h)
{
	StringInfoData msg;

	if (!pool_dismissed() &&
		h->roleid == GetAuthenticatedUserId() && h->dboid == MyDatabaseId)
		return false;
	initStringInfo(&msg);
	if (pool_dismissed())
		bp_build_error(&msg, "FATAL", ERRCODE_ADMIN_SHUTDOWN,
					   BP_RETIRED_MESSAGE, BP_RETIRED_DETAIL, NULL);
	else
	{
		ereport(LOG,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("builtin_pool executor refused a client admitted as role %u in database %u",
						h->roleid, h->dboid),
				 errdetail("The executor serves role %u in database %u.",
						   GetAuthenticatedUserId(), MyDatabaseId)));
		bp_build_error(&msg, "FATAL", ERRCODE_CONNECTION_FAILURE,
					   "the pool handed the connection to an executor of another role or database",
					   NULL, NULL);
	}
	refuse_handoff(&h->tls, fds, &msg);
	pfree(msg.data);
	bp_cancel_key_remove(h->cancel_key, my_slot_index, my_generation);
	bp_stab_release_id(h->stab_slot, h->session_id);
	/* the listener counted it as ours at handoff */
	pg_atomic_fetch_sub_u32(&bp_my_slot->n_sessions, 1);
	return true;
}

/*
 * Handoffs read from the channel while one session's turn holds the
 * executor: a new session cannot be greeted inside another's transaction,
 * and leaving them in the channel would keep it readable (the wait would
 * spin).  They are started once the turn ends, or given back to the
 * listener for a free executor if the turn lasts (hand_back_waiting).
 */
typedef struct HeldHandoff
{
	dlist_node	node;
	TimestampTz arrived;
	int			fds[BP_CHANNEL_MAX_FDS];
	PoolHandoff handoff;
	char		body[FLEXIBLE_ARRAY_MEMBER];	/* startup pairs, then state */
} HeldHandoff;

static dlist_head held_handoffs = DLIST_STATIC_INIT(held_handoffs);

/*
 * Reads everything the listener queued on the channel; with hold, keeps
 * the handoffs in held_handoffs instead of starting their sessions.  EOF
 * means the listener is gone: its restart starts a new pool, so this
 * executor ends.
 */
static void
drain_channel(bool hold)
{
	char	   *buf = channel_buf;

	for (;;)
	{
		int			fds[BP_CHANNEL_MAX_FDS];
		ssize_t		n = bp_channel_recv(channel_fd, buf, BP_HANDOFF_MAX, fds);
		uint32		magic;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0)
		{
			ereport(LOG,
					(errmsg("builtin_pool executor lost its listener, exiting")));
			proc_exit(1);		/* 1: its sessions are told (notify_clients_at_exit) */
		}
		if (n < sizeof(uint32))
			continue;
		memcpy(&magic, buf, sizeof(magic));
		if (magic == BP_HANDOFF_MAGIC && n >= sizeof(PoolHandoff))
		{
			PoolHandoff handoff;

			memcpy(&handoff, buf, sizeof(handoff));
			/* the TLS sending key goes to the session only (session.c) */
			explicit_bzero(buf + offsetof(PoolHandoff, tls), sizeof(handoff.tls));
			if (handoff.startup_len >= 0 && handoff.state_len >= 0 &&
				n == sizeof(PoolHandoff) + handoff.startup_len + handoff.state_len &&
				bp_channel_fds_fit(&handoff.tls, fds))
			{
				if (hold)
				{
					int			body_len = n - sizeof(PoolHandoff);
					HeldHandoff *h = MemoryContextAlloc(TopMemoryContext,
														offsetof(HeldHandoff, body) + body_len);

					h->arrived = GetCurrentTimestamp();
					memcpy(h->fds, fds, sizeof(h->fds));
					h->handoff = handoff;
					memcpy(h->body, buf + sizeof(PoolHandoff), body_len);
					dlist_push_tail(&held_handoffs, &h->node);
					continue;
				}
				if (handoff_refused(fds, &handoff))
				{
					explicit_bzero(&handoff.tls, sizeof(handoff.tls));
					continue;
				}
				/* TLS: the relay's end, then the client's TCP socket */
				PG_TRY();
				{
					start_session(fds[0], bp_channel_output_fd(fds), &handoff,
								  buf + sizeof(PoolHandoff));
				}
				PG_FINALLY();
				{
					explicit_bzero(&handoff.tls, sizeof(handoff.tls));
				}
				PG_END_TRY();
				continue;
			}
			explicit_bzero(&handoff.tls, sizeof(handoff.tls));
		}
		else if (magic == BP_RETIRE_ACK_MAGIC)
		{
			retire_acked = true;
			continue;
		}
		bp_channel_close_fds(fds);
		elog(LOG, "builtin_pool executor ignored a malformed channel message");
	}
}

/* Starts the sessions of the handoffs held during the last turn */
static void
start_held_sessions(void)
{
	while (!dlist_is_empty(&held_handoffs))
	{
		HeldHandoff *h = dlist_container(HeldHandoff, node,
										 dlist_pop_head_node(&held_handoffs));

		/* on error the session is closed, and h is lost with it: rare */
		if (!handoff_refused(h->fds, &h->handoff))
			start_session(h->fds[0], bp_channel_output_fd(h->fds), &h->handoff,
						  h->body);
		explicit_bzero(&h->handoff.tls, sizeof(h->handoff.tls));
		pfree(h);
	}
}

/*
 * Ends a session: rolls back whatever it left open and releases it.  For
 * the current session this runs outside any error recovery, so its
 * transaction is aborted here.  Interrupts wait until it is done: a send
 * failure to this client sets QueryCancelPending, and a cancel raised
 * halfway (after its disconnection was logged, before the counts drop) left
 * the session counted in pool_status() and in CONNECTION LIMIT forever.
 */
static void
close_session(PoolSession *s)
{
	HOLD_INTERRUPTS();
	if (bp_current == s)
	{
		AbortOutOfAnyTransaction();
		bp_xact_started = false;
		bp_session_discard_input();
		bp_session_release_state(s);
		set_pinned(s, false);
		switch_out();
	}
	if (s->state == PS_QUEUED)
	{
		dlist_delete(&s->run_node);
		n_queued--;
	}
	(void) epoll_ctl(idle_epoll_fd, EPOLL_CTL_DEL, s->sock, NULL);
	dlist_delete(&s->all_node);
	bp_session_report_end(s);
	bp_cancel_key_remove(s->cancel_key, my_slot_index, my_generation);
	if (!s->moved)
		bp_stab_release(s->stab_slot);	/* moved: the listener's now */
	bp_statements_drop_all(s, true);
	bp_session_destroy(s);
	/* a send failure cancelled its statement; nothing else may inherit that */
	QueryCancelPending = false;
	n_sessions--;
	pg_atomic_fetch_sub_u32(&bp_my_slot->n_sessions, 1);
	update_counters();
	if (n_sessions == 0)
		idle_since = GetCurrentTimestamp();
	RESUME_INTERRUPTS();
}

/* ---------------------------------------------------------------------
 * Readiness
 * ---------------------------------------------------------------------
 */

typedef enum InputState
{
	INPUT_NONE,					/* nothing, or only part of a message */
	INPUT_COMPLETE,				/* a whole message can be read */
	INPUT_GONE					/* EOF or a socket error */
} InputState;

/*
 * Looks at the socket without consuming anything.  A message larger than
 * the socket can buffer counts as complete once 64kB of it are there; the
 * rest then streams in while it is read.
 */
static InputState
peek_input(PoolSession *s, bool hangup)
{
	unsigned char hdr[5];
	ssize_t		n = recv(s->sock, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT);
	uint32		len;
	int			avail = 0;

	if (n == 0)
		return INPUT_GONE;
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ?
			INPUT_NONE : INPUT_GONE;
	if (n < 5)
		return hangup ? INPUT_GONE : INPUT_NONE;

	memcpy(&len, hdr + 1, 4);
	len = pg_ntoh32(len);
	if (len < 4 || len > PQ_LARGE_MESSAGE_LIMIT)
		return INPUT_COMPLETE;	/* bad length: let the reader report it */
	if (ioctl(s->sock, FIONREAD, &avail) < 0)
		return INPUT_GONE;
	if ((uint32) avail >= Min(len + 1, 65536))
		return INPUT_COMPLETE;
	return hangup ? INPUT_GONE : INPUT_NONE;
}

static void
enqueue(PoolSession *s)
{
	s->idle_deadline = 0;
	s->queued_at = GetCurrentTimestamp();
	s->state = PS_QUEUED;
	bp_stab_report(s, PST_WAITING);
	dlist_push_tail(&run_queue, &s->run_node);
	n_queued++;
}

/*
 * While the session switched in sits idle in its transaction and no other
 * executor of the pool can take a session now (none between transactions,
 * none may start), a waiting session whose input is only Parse messages is
 * answered at once (parse_ahead.c): a client blocked in PQprepare may be
 * what keeps the transactions holding the pool open.
 */
static bool
answered_ahead(PoolSession *s)
{
	return idle_xact_since != 0 && !my_pool_dedicated &&
		bp_parse_ahead_candidate(s) && !pool_can_take(false, false) &&
		bp_parse_ahead(s);
}

/* Looks at an idle session after a readiness edge */
static void
examine_session(PoolSession *s, bool hangup)
{
	/* an edge with the peer's hangup comes once: remember it */
	s->hangup |= hangup;
	hangup = s->hangup;
	if (s->state != PS_IDLE)
		return;
	switch (peek_input(s, hangup))
	{
		case INPUT_COMPLETE:
			if (!answered_ahead(s))
				enqueue(s);
			else if (s->closing)
				close_session(s);
			break;
		case INPUT_GONE:
			close_session(s);
			break;
		case INPUT_NONE:
			break;
	}
}

/* Harvests readiness edges without blocking */
static void
poll_sessions(void)
{
	struct epoll_event events[MAX_EPOLL_EVENTS];
	int			n;
	int			i;

	n = epoll_wait(idle_epoll_fd, events, MAX_EPOLL_EVENTS, 0);
	for (i = 0; i < n; i++)
	{
		PoolSession *s = events[i].data.ptr;
		bool		hangup = (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;

		if (s->state == PS_IDLE)
			examine_session(s, hangup);
		else
		{
			s->recheck = true;
			s->hangup |= hangup;
		}
	}
	update_counters();
}

/* ---------------------------------------------------------------------
 * Idle duties and retiring
 * ---------------------------------------------------------------------
 */

/*
 * What PostgresMain does before it reads each command: reload the
 * configuration, catch up with invalidations.  Done between turns, and in
 * idle_duties(): under a load that never lets the run queue empty the
 * executor does not wait, and a reload (executor_lifetime, statement_timeout
 * in postgresql.conf...) used to reach it only once the load ended.
 */
static void
between_commands(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		bp_greeting_invalidate();	/* logins may report other values */
	}
	if (catchupInterruptPending)
		ProcessCatchupInterrupt();
}

/*
 * What PostgresMain does while it waits for a command: catch up with
 * invalidations, flush statistics, reload the configuration.  Returns how
 * long the next wait may last, in ms.
 */
static long
idle_duties(void)
{
	long		timeout = -1;
	long		stats_timeout;

	CHECK_FOR_INTERRUPTS();
	between_commands();

	stats_timeout = pgstat_report_stat(false);
	if (stats_timeout > 0)
		timeout = stats_timeout;

	if (n_sessions == 0 && !retire_sent && bp_idle_executor_timeout > 0)
	{
		long		left = bp_idle_executor_timeout * 1000L -
			TimestampDifferenceMilliseconds(idle_since, GetCurrentTimestamp());

		/*
		 * The difference is rounded up, so left can be 0 a little before
		 * maybe_retire() sees the timeout passed: wait at least 1 ms, never
		 * without a timeout.
		 */
		left = Max(left, 1);
		if (timeout < 0 || left < timeout)
			timeout = left;
	}
	if (my_reserve && !retire_sent)
	{
		long		left = BP_RESERVE_IDLE_MS + 1 -
			TimestampDifferenceMilliseconds(last_turn_end, GetCurrentTimestamp());

		if (left > 0 && (timeout < 0 || left < timeout))
			timeout = left;
	}
	else if (!my_reserve && !my_pool_dedicated && bp_max_pinned_executors > 0 &&
			 (timeout < 0 || timeout > BP_RESERVE_IDLE_MS))
		timeout = BP_RESERVE_IDLE_MS;	/* check_surplus() now and then */
	if (bp_executor_lifetime > 0 && !leaving)
	{
		long		left = bp_executor_lifetime * 1000L + 1 -
			TimestampDifferenceMilliseconds(started_at, GetCurrentTimestamp());

		left = Max(left, 1);
		if (timeout < 0 || left < timeout)
			timeout = left;
	}
	return timeout;
}

/*
 * Does our pool keep more executors than builtin_pool.min_pool_size
 * (capped by its size) without this one?  Reserve and pinned ones do not
 * count.  Slot states are read without the lock: two executors idle at
 * once may both retire, and the listener starts one again (proxy.c).
 */
static bool
pool_above_min(void)
{
	if (my_reserve || my_pool_dedicated || bp_min_pool_size == 0)
		return true;
	return bp_pool_kept_executors(my_pool_id) >
		Min(bp_min_pool_size, bp_session_pool_size);
}

/*
 * Asks the listener for leave to exit when there is nothing to serve: a
 * dedicated executor whose session ended, one idle past
 * builtin_pool.idle_executor_timeout, or a reserve executor that served
 * nothing for BP_RESERVE_IDLE_MS.  Exits once the listener has
 * acknowledged and every session it sent before that is gone.
 */
static void
maybe_retire(void)
{
	bool		want;

	if (n_sessions > 0)
		return;
	if (retire_acked)
		proc_exit(0);
	if (retire_sent)
		return;

	want = (my_pool_dedicated && served_any) ||
		(bp_idle_executor_timeout > 0 &&
		 TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
									bp_idle_executor_timeout * 1000) &&
		 pool_above_min()) ||
		(my_reserve &&
		 TimestampDifferenceExceeds(last_turn_end, GetCurrentTimestamp(),
									BP_RESERVE_IDLE_MS));
	if (want)
	{
		PoolRetire	retire;

		retire.magic = BP_RETIRE_MAGIC;
		retire.slot = my_slot_index;
		if (bp_channel_send(channel_fd, &retire, sizeof(retire), NULL, 0) == sizeof(retire))
			retire_sent = true;
	}
}

/* Ends a session that is not switched in, telling its client why */
static void
end_waiting_session(PoolSession *s, int sqlstate, const char *message,
					const char *hint)
{
	if (!s->dead)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		bp_build_error(&buf, "FATAL", sqlstate, message, NULL, hint);
		bp_session_send_quick(s, buf.data, buf.len);
		pfree(buf.data);
	}
	/* log_line_prefix shows the session, as its backend's FATAL would */
	{
		Port	   *save_port = MyProcPort;
		pg_time_t	save_start = MyStartTime;

		MyProcPort = s->port;
		MyStartTime = s->log_id;
		ereport(LOG,
				(errcode(sqlstate),
				 errmsg("ending pool session: %s", message)));
		MyProcPort = save_port;
		MyStartTime = save_start;
	}
	close_session(s);
}

#define BP_TERMINATE_MESSAGE "terminating connection due to administrator command"

/*
 * pool_terminate_session(): ends the sessions whose slot asks for it, but
 * the current one (its turn ends it: wait_session_input, the error path).
 */
static void
end_terminated_sessions(void)
{
	dlist_mutable_iter it;

	if (!terminate_check)
		return;
	terminate_check = false;
	dlist_foreach_modify(it, &all_sessions)
	{
		PoolSession *s = dlist_container(PoolSession, all_node, it.cur);

		if (s != bp_current && bp_stab_terminating(s))
			end_waiting_session(s, ERRCODE_ADMIN_SHUTDOWN,
								BP_TERMINATE_MESSAGE, NULL);
	}
	update_counters();
}

/*
 * The pool was retired: ends every session (none is in a transaction: a
 * session is left only between transactions), refusing the handoffs still
 * in the channel first, and exits once none is left.  The listener sends
 * nothing more after flagging us, so no client can slip in behind.
 */
static void
end_dismissed_sessions(void)
{
	dlist_mutable_iter it;

	drain_channel(false);
	dlist_foreach_modify(it, &all_sessions)
		end_waiting_session(dlist_container(PoolSession, all_node, it.cur),
							ERRCODE_ADMIN_SHUTDOWN, BP_RETIRED_MESSAGE, NULL);
	update_counters();
	dismissal_done = true;
	retire_acked = true;		/* maybe_retire() exits now */
}

/*
 * builtin_pool.queue_wait_timeout: ends the sessions that waited longer
 * for this executor.  The queue is FIFO, so only its head can be due.
 * Returns the ms until the next one is, -1 if none.
 */
static long
expire_queued_sessions(void)
{
	TimestampTz now;

	if (bp_queue_wait_timeout <= 0 || dlist_is_empty(&run_queue))
		return -1;
	now = GetCurrentTimestamp();
	while (!dlist_is_empty(&run_queue))
	{
		PoolSession *s = dlist_head_element(PoolSession, run_node, &run_queue);
		long		left = bp_queue_wait_timeout -
			TimestampDifferenceMilliseconds(s->queued_at, now);

		if (left > 0)
			return left;
		end_waiting_session(s, ERRCODE_TOO_MANY_CONNECTIONS,
							"no pool executor became free within builtin_pool.queue_wait_timeout",
							"Raise builtin_pool.session_pool_size or builtin_pool.queue_wait_timeout, or shorten long transactions.");
	}
	update_counters();
	return -1;
}

/*
 * idle_session_timeout of sessions waiting here, each with the value it
 * had set: ends those past their deadline, with core's message, and
 * returns the ms until the next deadline (-1 if none).
 */
static long
expire_idle_sessions(void)
{
	dlist_mutable_iter it;
	TimestampTz now = GetCurrentTimestamp();
	long		next = -1;

	dlist_foreach_modify(it, &all_sessions)
	{
		PoolSession *s = dlist_container(PoolSession, all_node, it.cur);
		long		left;

		if (s->idle_deadline == 0 || s->state != PS_IDLE)
			continue;
		left = TimestampDifferenceMilliseconds(now, s->idle_deadline);
		if (left > 0)
		{
			if (next < 0 || left < next)
				next = left;
			continue;
		}
		end_waiting_session(s, ERRCODE_IDLE_SESSION_TIMEOUT,
							"terminating connection due to idle-session timeout",
							NULL);
	}
	return next;
}

/*
 * The executor's wait between turns: up to timeout ms (-1: none) for the
 * latch, the channel or an idle session's socket, noting which of the last
 * two has something (channel_readable, sessions_readable).
 */
static void
wait_idle(long timeout, uint32 wait_event_info)
{
	WaitEvent	events[4];
	int			n;
	int			i;

	n = WaitEventSetWait(main_wes, timeout, events, lengthof(events),
						 wait_event_info);
	for (i = 0; i < n; i++)
	{
		if (events[i].events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		if (events[i].fd == channel_fd)
			channel_readable = true;
		if (events[i].fd == idle_epoll_fd)
			sessions_readable = true;
	}
}

/*
 * Blocks until the channel, a session or the latch has something, or
 * max_wait ms passed (-1: no limit of the caller's)
 */
static void
wait_for_work(long max_wait)
{
	long		timeout;
	long		idle_timeout;

	set_ps_display("idle");
	pgstat_report_activity(STATE_IDLE, NULL);
	pg_atomic_write_u32(&bp_my_slot->activity, PEA_IDLE);
	bp_admin_flush();

	timeout = idle_duties();
	idle_timeout = expire_idle_sessions();
	if (idle_timeout >= 0 && (timeout < 0 || idle_timeout < timeout))
		timeout = idle_timeout;
	if (max_wait >= 0 && (timeout < 0 || max_wait < timeout))
		timeout = max_wait;
	wait_idle(timeout, PG_WAIT_CLIENT);
	CHECK_FOR_INTERRUPTS();
}

/*
 * A pool_pause() covers our pool (admin.c): no request is served until it
 * is lifted.  The sessions stay: handoffs are held unopened, readiness is
 * harvested (a client that hangs up is closed, one that sends is queued),
 * idle duties go on.  current is the pinned session whose next transaction
 * waits, or NULL between turns.  Time spent paused does not count towards
 * builtin_pool.queue_wait_timeout, nor in the pool's wait counters.
 */
static void
hold_while_paused(PoolSession *current)
{
	TimestampTz held_from = GetCurrentTimestamp();
	TimestampTz now;
	dlist_iter	it;

	bp_admin_hold_begin();
	set_ps_display("paused");
	if (current == NULL)
	{
		pgstat_report_activity(STATE_IDLE, NULL);
		pg_atomic_write_u32(&bp_my_slot->activity, PEA_IDLE);
	}
	while (bp_admin_hold_continue())
	{
		long		timeout = idle_duties();

		if (pool_dismissed())
		{
			bp_admin_hold_end();	/* its sessions end at once */
			break;
		}
		if (channel_readable ||
			pg_atomic_read_u32(&bp_my_slot->channel_sends) != channel_sends_seen)
		{
			channel_sends_seen = pg_atomic_read_u32(&bp_my_slot->channel_sends);
			channel_readable = false;
			drain_channel(true);
		}
		/* pool_resume() sets our latch; the timeout is a safety net */
		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		wait_idle(timeout, PG_WAIT_EXTENSION);
		if (sessions_readable)
		{
			sessions_readable = false;
			if (current != NULL)
				(void) harvest_while_serving(current);
			else
				poll_sessions();
		}
	}

	now = GetCurrentTimestamp();
	dlist_foreach(it, &run_queue)
	{
		PoolSession *s = dlist_container(PoolSession, run_node, it.cur);

		s->queued_at = s->queued_at < held_from ?
			s->queued_at + (now - held_from) : now;
	}
}

/* ---------------------------------------------------------------------
 * Serving
 * ---------------------------------------------------------------------
 */

/*
 * Gives an idle session back to the listener, which moves it to another
 * executor of the pool: the client's socket, its startup packet and its
 * state (session.c) in one datagram; waited_ms is how long its queued
 * request waited here (the listener may start a reserve executor for it).
 * Returns false if it cannot move (the channel is full, or its state too
 * large); it then stays here.
 */
static bool
hand_back(PoolSession *s, long waited_ms)
{
	StringInfoData buf;
	PoolHandback h;
	int			state_at;
	bool		ok;
	int			fds[BP_CHANNEL_MAX_FDS] = {s->sock, s->client_fd};

	Assert(bp_current != s && s->greeted && !s->dead);
	if (bp_session_output_pending(s))
		return false;			/* the client is slow: it stays here */

	/*
	 * What it did here is in this process's pending statistics: flush them
	 * before the listener can pass it on, as its own backend would have them
	 * counted by the time it reads them elsewhere (pg_stat_force_next_flush()
	 * there cannot reach here).  Flushed after the send, they raced the
	 * session's next query on its new executor.  Not inside the current
	 * session's transaction (sessions queued behind it leave meanwhile):
	 * core flushes only outside one, so they go at its end.
	 */
	if (IsTransactionOrTransactionBlock())
		pgstat_force_next_flush();
	else
		(void) pgstat_report_stat(true);

	initStringInfo(&buf);
	memset(&h, 0, sizeof(h));
	appendBinaryStringInfo(&buf, (char *) &h, sizeof(h));
	appendBinaryStringInfo(&buf, s->startup_body, s->startup_len);
	state_at = buf.len;
	ok = bp_session_serialize(s, &buf, state_at + BP_STATE_MAX);
	if (ok)
	{
		h.magic = BP_HANDBACK_MAGIC;
		h.slot = my_slot_index;
		h.cancel_key = s->cancel_key;
		h.port_index = s->port_index;
		h.proto = s->port->proto;
		h.startup_len = s->startup_len;
		h.state_len = buf.len - state_at;
		h.tls = s->tls.w;
		h.waited_ms = (int32) Min(waited_ms, PG_INT32_MAX);
		h.stab_slot = s->stab_slot;
		h.session_id = s->session_id;
		bp_stab_moving(s);		/* the listener writes its slot from now on */
		memcpy(buf.data, &h, sizeof(h));
		ok = bp_channel_send(channel_fd, buf.data, buf.len, fds,
							 s->client_fd != s->sock ? 2 : 1) == buf.len;
	}
	/* h carried the session's TLS sending key; it stays in s alone */
	explicit_bzero(&h, sizeof(h));
	explicit_bzero(buf.data, sizeof(h));
	pfree(buf.data);
	if (!ok)
	{
		/* it stays: its slot is ours again */
		if (s->stab_slot >= 0)
			(void) bp_stab_adopt(s, s->stab_slot, s->session_id,
								 my_slot_index, my_generation, true);
		return false;
	}

	/*
	 * The listener holds the socket now; drop our side quietly.  The
	 * session lives on elsewhere, so its cancel key is no longer ours to
	 * remove.
	 */
	s->cancel_key = 0;
	s->dead = true;
	s->moved = true;
	close_session(s);
	bp_admin_count_move();
	return true;
}

/*
 * This executor now serves one session alone: move its other sessions to
 * executors that can serve them.  Done once as the pin starts; sessions
 * the listener sends here meanwhile wait in the channel until it ends.
 */
static void
hand_back_others(PoolSession *pinned)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, &all_sessions)
	{
		PoolSession *s = dlist_container(PoolSession, all_node, it.cur);

		if (s != pinned && s->greeted && !s->dead && !s->closing &&
			!hand_back(s, 0))
			break;
	}
	update_counters();
}

/*
 * Can another executor of our pool take a session now: one between
 * transactions, or, when reserve_due, room for the listener to start one
 * (session_pool_size or builtin_pool.reserve_pool_size not reached, a slot
 * free)?  Reads slot states without the lock: only the listener changes
 * them, and a stale answer costs one move the listener routes anyway,
 * never a session lost.  Called only while requests wait.
 */
static bool
pool_can_take(bool reserve_due, bool any_unheld)
{
	TimestampTz now = GetCurrentTimestamp();
	int			regular = 0;
	int			reserve = 0;
	int			free_slots = 0;
	int			n_held = 0;
	int			i;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->state == PE_FREE)
		{
			free_slots++;
			continue;
		}
		if (ex->pool_id != my_pool_id ||
			(ex->state != PE_STARTING && ex->state != PE_READY))
			continue;
		if (pg_atomic_read_u32(&ex->n_pinned) > 0)
		{
			/* max_pinned_executors = 0: pins take the pool's executors */
			if (bp_max_pinned_executors == 0)
				regular++;
			continue;
		}
		/* as the listener counts them (proxy.c, exec_choose) */
		if (n_held < bp_max_held_executors && bp_executor_held(ex, now))
		{
			n_held++;
			continue;
		}
		if (ex->reserve)
			reserve++;
		else
			regular++;
		if (i != my_slot_index &&
			pg_atomic_read_u32(&ex->n_sessions) < (uint32) bp_max_sessions &&
			(any_unheld || ex->state == PE_STARTING ||
			 pg_atomic_read_u32(&ex->activity) == PEA_IDLE))
			return true;
	}
	if (free_slots == 0)
		return false;
	return regular < bp_session_pool_size ||
		(reserve_due && reserve < bp_reserve_pool_size);
}

/*
 * Is this executor one of the held ones its pool no longer counts
 * (bp_executor_held, the first builtin_pool.max_held_executors of the
 * pool in slot order, as proxy.c's exec_choose counts them)?
 */
static bool
held_and_replaced(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			n_held = 0;
	int			i;

	if (!bp_executor_held(bp_my_slot, now))
		return false;
	for (i = 0; i < my_slot_index && n_held < bp_max_held_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->pool_id == my_pool_id &&
			(ex->state == PE_STARTING || ex->state == PE_READY) &&
			pg_atomic_read_u32(&ex->n_pinned) == 0 &&
			bp_executor_held(ex, now))
			n_held++;
	}
	return n_held < bp_max_held_executors;
}

/*
 * The pool can take no session now (hand_back_waiting): queued sessions
 * whose input is only Parse messages are answered ahead, as newly queued
 * ones are (answered_ahead), if the session switched in sits idle in its
 * transaction.
 */
static void
answer_queued_ahead(void)
{
	dlist_mutable_iter it;

	if (idle_xact_since == 0 || my_pool_dedicated)
		return;
	dlist_foreach_modify(it, &run_queue)
	{
		PoolSession *s = dlist_container(PoolSession, run_node, it.cur);

		if (!bp_parse_ahead_candidate(s) || !bp_parse_ahead(s))
			continue;
		dlist_delete(&s->run_node);
		n_queued--;
		s->state = PS_IDLE;
		if (s->closing)
			close_session(s);
		else if (s->recheck)
		{
			/* input that came after what was read left no new edge */
			s->recheck = false;
			examine_session(s, false);
		}
	}
	update_counters();
}

/*
 * Gives a held handoff back to the listener unopened, as a handback of a
 * session with no state yet; false if the channel is full (it stays held).
 */
static bool
bounce_handoff(HeldHandoff *h, long waited_ms)
{
	PoolHandback hb;
	StringInfoData buf;
	bool		ok;

	memset(&hb, 0, sizeof(hb));
	hb.magic = BP_HANDBACK_MAGIC;
	hb.slot = my_slot_index;
	hb.cancel_key = h->handoff.cancel_key;
	hb.port_index = h->handoff.port_index;
	hb.proto = h->handoff.proto;
	hb.startup_len = h->handoff.startup_len;
	hb.state_len = h->handoff.state_len;
	hb.tls = h->handoff.tls;
	hb.waited_ms = (int32) Min(waited_ms, PG_INT32_MAX);
	hb.greeted = h->handoff.greeted;	/* greeted by the listener: not again */
	hb.greeting_hash = h->handoff.greeting_hash;
	hb.stab_slot = h->handoff.stab_slot;
	hb.session_id = h->handoff.session_id;
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &hb, sizeof(hb));
	appendBinaryStringInfo(&buf, h->body, hb.startup_len + hb.state_len);
	ok = bp_channel_send(channel_fd, buf.data, buf.len, h->fds,
						 h->fds[1] >= 0 ? 2 : 1) == buf.len;
	/* hb carried the TLS sending key; it stays in h until h goes */
	explicit_bzero(&hb, sizeof(hb));
	explicit_bzero(buf.data, sizeof(hb));
	pfree(buf.data);
	if (!ok)
		return false;
	bp_channel_close_fds(h->fds);
	bp_admin_count_move();
	dlist_delete(&h->node);
	explicit_bzero(&h->handoff.tls, sizeof(h->handoff.tls));
	pfree(h);
	/* the listener counted it here at handoff */
	pg_atomic_fetch_sub_u32(&bp_my_slot->n_sessions, 1);
	return true;
}

/* ms until the next look at what waits here, -1 when nothing does */
static long
next_look(void)
{
	return (n_queued > 0 || !dlist_is_empty(&held_handoffs)) ?
		BP_HANDBACK_DELAY_MS : -1;
}

/*
 * Gives back, oldest first, up to limit of the handoffs held
 * here and the sessions queued here that waited min_wait_ms or more by
 * now, telling the listener how long they waited if tell_wait; stops at
 * the first that cannot go now (its client slow to read, the channel
 * full).  Returns the ms until the next look, -1 when nothing waits.
 */
static long
move_waiting(TimestampTz now, long min_wait_ms, bool tell_wait, int limit)
{
	dlist_mutable_iter it;
	long		waited;
	int			moved = 0;

	dlist_foreach_modify(it, &held_handoffs)
	{
		HeldHandoff *h = dlist_container(HeldHandoff, node, it.cur);

		waited = TimestampDifferenceMilliseconds(h->arrived, now);
		if (waited < min_wait_ms || moved >= limit ||
			!bounce_handoff(h, tell_wait ? waited : 0))
			break;
		moved++;
	}
	dlist_foreach_modify(it, &run_queue)
	{
		PoolSession *s = dlist_container(PoolSession, run_node, it.cur);

		waited = TimestampDifferenceMilliseconds(s->queued_at, now);
		if (waited < min_wait_ms || moved >= limit)
			break;
		if (!s->greeted || s->dead || s->closing)
			continue;
		if (!hand_back(s, tell_wait ? waited : 0))
			break;
		moved++;
	}
	update_counters();
	return next_look();
}

/*
 * The fewest sessions another executor of the pool that takes sessions
 * has (as exec_choose() in proxy.c sees them: not pinned, not held), or
 * -1 if there is none.
 */
static int
lightest_other_load(TimestampTz now)
{
	int			lightest = -1;
	int			n_held = 0;
	int			i;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];
		int			n;

		if (i == my_slot_index || ex->pool_id != my_pool_id ||
			(ex->state != PE_STARTING && ex->state != PE_READY) ||
			pg_atomic_read_u32(&ex->n_pinned) > 0)
			continue;
		if (n_held < bp_max_held_executors && bp_executor_held(ex, now))
		{
			n_held++;
			continue;
		}
		n = (int) pg_atomic_read_u32(&ex->n_sessions);
		if (lightest < 0 || n < lightest)
			lightest = n;
	}
	return lightest;
}

/*
 * Between turns: the requests waiting here are served in turn, but one
 * executor's queue may be far longer than another's (sessions placed while
 * others were held, or all at once on a fresh executor), and nothing else
 * evens them out: its clients then wait many times as long as the others'
 * (TPC-B, 1,000 clients: p50 72 ms, p99 4.3 s).  So an executor holding a
 * quarter more sessions (plus BP_SHED_MIN) than the lightest other one
 * gives back its oldest waiting sessions, up to half the difference; the
 * listener places them on the lighter executors.
 */
static void
shed_to_lighter(void)
{
	static TimestampTz last_look = 0;
	TimestampTz now;
	int			lightest;
	int			excess;

	if (n_queued < BP_SHED_MIN || my_pool_dedicated || leaving)
		return;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(last_look, now, BP_HANDBACK_DELAY_MS))
		return;
	last_look = now;
	lightest = lightest_other_load(now);
	if (lightest < 0)
		return;
	excess = n_sessions - (lightest + lightest / 4 + BP_SHED_MIN);
	if (excess > 0)
		(void) move_waiting(now, 0, false,
							Min(BP_HANDBACK_BATCH, (n_sessions - lightest) / 2));
}

/*
 * While this executor is held by one session (inside its transaction, or
 * pinned), the requests queued behind it, and the sessions handed to it
 * meanwhile, would wait for that session's client.  Those that waited
 * BP_HANDBACK_DELAY_MS go back to the listener when another executor of
 * the pool is between transactions, or, once they waited
 * builtin_pool.reserve_pool_timeout, when a reserve executor can start;
 * the listener places them there with their whole state.  Returns the ms
 * until the next look, -1 while nothing waits: an executor nobody waits
 * for pays nothing here.
 */
static long
hand_back_waiting(void)
{
	TimestampTz now;
	TimestampTz oldest = 0;
	long		waited;

	if ((n_queued == 0 && dlist_is_empty(&held_handoffs)) || my_pool_dedicated)
		return -1;
	if (n_queued > 0)
		oldest = dlist_head_element(PoolSession, run_node, &run_queue)->queued_at;
	if (!dlist_is_empty(&held_handoffs))
	{
		TimestampTz arrived = dlist_head_element(HeldHandoff, node,
												 &held_handoffs)->arrived;

		if (oldest == 0 || arrived < oldest)
			oldest = arrived;
	}
	now = GetCurrentTimestamp();
	waited = TimestampDifferenceMilliseconds(oldest, now);
	if (waited < BP_HANDBACK_DELAY_MS)
		return BP_HANDBACK_DELAY_MS - waited;
	if (!pool_can_take(waited >= bp_reserve_pool_timeout, false))
	{
		answer_queued_ahead();
		return next_look();
	}

	return move_waiting(now, BP_HANDBACK_DELAY_MS, true, BP_HANDBACK_BATCH);
}

/*
 * Gives back up to room sessions that can move (greeted, not pinned, not
 * ending); stops at the first that cannot go now (its client slow to read,
 * the channel full).
 */
static void
hand_back_batch(int room)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, &all_sessions)
	{
		PoolSession *s = dlist_container(PoolSession, all_node, it.cur);

		if (!s->greeted || s->dead || s->closing || s->pinned)
			continue;
		if (room-- <= 0 || !hand_back(s, 0))
			break;
	}
	update_counters();
}

/*
 * Our session sits idle in its transaction and the pool no longer counts
 * this executor (held_and_replaced): the sessions with a request waiting
 * here, and those sent here meanwhile, leave at once (not after
 * BP_HANDBACK_DELAY_MS, and for any executor not held, not only one
 * between transactions); the listener places them on the others, or on
 * the one the pool starts instead of this.  Idle sessions stay until
 * their next request: a transaction held just past the grace (a busy
 * client's round trip) then moves none.  BP_HANDBACK_BATCH a look.
 * Returns the ms until the next look, -1 when nothing waits.
 */
static long
leave_held_executor(void)
{
	long		idle_ms;

	if (my_pool_dedicated || bp_max_held_executors == 0 || idle_xact_since == 0 ||
		(n_queued == 0 && dlist_is_empty(&held_handoffs)))
		return -1;
	idle_ms = TimestampDifferenceMilliseconds(idle_xact_since, GetCurrentTimestamp());
	if (idle_ms <= BP_HELD_GRACE_MS)
		return BP_HELD_GRACE_MS + 1 - idle_ms;
	/* beyond the pool's bound, or nowhere to go: look again later */
	if (!held_and_replaced() || !pool_can_take(false, true))
		return BP_HANDBACK_DELAY_MS;

	return move_waiting(GetCurrentTimestamp(), 0, false, BP_HANDBACK_BATCH);
}

/*
 * Publishes that our session waits idle inside its transaction (now), or
 * no longer (0), for bp_executor_held: one atomic store each way.
 */
static void
publish_idle_xact(bool idle)
{
	TimestampTz since = idle ? GetCurrentTimestamp() : 0;

	if (since == idle_xact_since)
		return;
	idle_xact_since = since;
	pg_atomic_write_u64(&bp_my_slot->idle_xact_since, (uint64) since);
}

/*
 * Pinned executors are outside the pool's size, so the listener starts
 * others meanwhile; once the pins end the pool may have more unpinned
 * executors than its size.  Then the idle one in the highest slot (one at
 * a time, not all at once) retires as a reserve executor does.  Slot
 * states are read without the lock, as in pool_can_take.
 */
static void
check_surplus(void)
{
	int			regular = 0;
	int			i;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->pool_id != my_pool_id || ex->reserve ||
			(ex->state != PE_STARTING && ex->state != PE_READY) ||
			pg_atomic_read_u32(&ex->n_pinned) > 0)
			continue;
		if (i > my_slot_index)
			return;
		regular++;
	}
	if (regular > bp_session_pool_size)
		my_reserve = true;
}

/* Between transactions: is this executor older than executor_lifetime? */
static bool
lifetime_over(void)
{
	return bp_executor_lifetime > 0 && !my_pool_dedicated && !leaving &&
		pg_atomic_read_u32(&bp_my_slot->n_pinned) == 0 &&
		TimestampDifferenceExceeds(started_at, GetCurrentTimestamp(),
								   bp_executor_lifetime * 1000);
}

/*
 * Leaves while it has sessions (see leaving): PoolRetire first, then every
 * session that can move goes back to the listener, queued or idle,
 * BP_HANDBACK_BATCH at a time.  One that cannot yet (pinned, not greeted,
 * its client slow to read) is served here meanwhile and leaves later;
 * maybe_retire() exits once none is left and the listener acknowledged.
 * Returns the ms until the next look, -1 when none is left.
 */
static long
leave_with_sessions(void)
{
	if (!retire_sent)
	{
		PoolRetire	retire;

		retire.magic = BP_RETIRE_MAGIC;
		retire.slot = my_slot_index;
		if (bp_channel_send(channel_fd, &retire, sizeof(retire), NULL, 0) != sizeof(retire))
			return BP_HANDBACK_DELAY_MS;
		retire_sent = true;
	}
	hand_back_batch(BP_HANDBACK_BATCH);
	return n_sessions > 0 ? BP_HANDBACK_DELAY_MS : -1;
}

/*
 * Should this executor leave (see leaving)?  Its temp schema worn out,
 * older than builtin_pool.executor_lifetime, or pool_reconnect().  Looked
 * at between turns, also while requests wait: it used to be looked at only
 * once the run queue was empty, so under a load that never let it empty
 * (pgbench TPC-B with 1,000 clients), pool_reconnect() and
 * executor_lifetime did nothing for as long as the load lasted.
 */
static void
check_leaving(void)
{
	if (leaving)
		return;
	if (!worn_out && bp_temp_setups_exhausted())
	{
		ereport(LOG,
				(errmsg("builtin_pool executor retires: its temp schema was set up again for as many sessions as it can")));
		worn_out = true;
		leaving = true;
	}
	else if (lifetime_over())
	{
		ereport(DEBUG1,
				(errmsg("builtin_pool executor retires: it is older than builtin_pool.executor_lifetime")));
		leaving = true;
	}
	else if (bp_admin_recycle_wanted())
	{
		ereport(LOG,
				(errmsg("builtin_pool executor retires: pool_reconnect() asked for fresh executors")));
		leaving = true;
	}
}

/* Leaving while requests wait: a batch of sessions every BP_HANDBACK_DELAY_MS */
static void
leave_while_busy(void)
{
	static TimestampTz last_batch = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (!TimestampDifferenceExceeds(last_batch, now, BP_HANDBACK_DELAY_MS))
		return;
	last_batch = now;
	(void) leave_with_sessions();
}

/*
 * A reserve executor that served no turn for BP_RESERVE_IDLE_MS gives its
 * sessions back (they go to the pool's other executors) so that it can
 * retire.  Returns true once it is idle that long.
 */
static bool
reserve_idle(void)
{
	dlist_mutable_iter it;

	if (!my_reserve || n_queued > 0 ||
		!TimestampDifferenceExceeds(last_turn_end, GetCurrentTimestamp(),
									BP_RESERVE_IDLE_MS))
		return false;
	dlist_foreach_modify(it, &all_sessions)
	{
		PoolSession *s = dlist_container(PoolSession, all_node, it.cur);

		if (s->greeted && !s->dead && !s->closing &&
			!hand_back(s, 0))
			break;
	}
	update_counters();
	return true;
}

/* Publishes the pinned state of s in our slot for the listener */
static void
set_pinned(PoolSession *s, bool pinned)
{
	bool		was = s->pinned;

	s->pinned = pinned;
	s->pin_reason = pinned ? bp_session_pin_reason(s) : NULL;
	pg_atomic_write_u32(&bp_my_slot->n_pinned, pinned ? 1 : 0);
	if (pinned && !was)
	{
		bp_admin_count_pin();
		hand_back_others(s);
	}
}

/*
 * Harvests readiness edges while the current session s is served: other
 * sessions join the run queue (so that queue_wait_timeout can see them);
 * returns true if s itself became readable.
 */
static bool
harvest_while_serving(PoolSession *s)
{
	struct epoll_event events[MAX_EPOLL_EVENTS];
	bool		mine = false;
	int			n;
	int			i;

	n = epoll_wait(idle_epoll_fd, events, MAX_EPOLL_EVENTS, 0);
	for (i = 0; i < n; i++)
	{
		PoolSession *other = events[i].data.ptr;

		bool		hangup = (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;

		if (other == s)
		{
			mine = true;
			s->hangup |= hangup;
		}
		else if (other->state == PS_IDLE)
			examine_session(other, hangup);
		else
		{
			other->recheck = true;
			other->hangup |= hangup;
		}
	}
	update_counters();
	return mine;
}

/*
 * Waits for the current session's next message when the executor must stay
 * with it: inside a transaction, or between transactions of a pinned
 * session.  This is the session's idle time, so it keeps core's idle
 * rules: idle_in_transaction_session_timeout and idle_session_timeout end
 * this session alone (core's FATAL would end the executor), and between
 * transactions notifications are delivered (the reason a LISTENing session
 * is pinned), invalidations caught up, the configuration reloaded.  The
 * wait is the executor's main one, so sessions that become ready meanwhile
 * are queued, builtin_pool.queue_wait_timeout applies to them, and those
 * that wait too long are handed back for another executor
 * (hand_back_waiting).
 * Returns false if the session must end.
 */
static bool
wait_session_input_loop(PoolSession *s)
{
	bool		in_xact = IsTransactionOrTransactionBlock();
	int			timeout = in_xact ? IdleInTransactionSessionTimeout : IdleSessionTimeout;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout);

	for (;;)
	{
		WaitEvent	events[4];
		long		left = -1;
		long		queue_left;
		char		c;
		int			n;
		int			i;

		if (pq_buffer_has_data())
			return true;

		/* data (or EOF) that came before the wait leaves no new edge */
		if (recv(s->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 ||
			(errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return true;

		if (in_xact)
			CHECK_FOR_INTERRUPTS();
		else
		{
			if (notifyInterruptPending)
				ProcessNotifyInterrupt(true);
			(void) idle_duties();
			if (pool_dismissed())
			{
				bp_session_send_fatal(ERRCODE_ADMIN_SHUTDOWN, BP_RETIRED_MESSAGE);
				return false;
			}
			/* a pinned session's next transaction waits for pool_resume() */
			if (!s->ignore_till_sync && bp_admin_hold_wanted())
			{
				hold_while_paused(s);
				continue;		/* its input may have come meanwhile */
			}
		}
		if (s->dead)
			return false;
		if (bp_stab_terminating(s))
		{
			bp_session_send_fatal(ERRCODE_ADMIN_SHUTDOWN, BP_TERMINATE_MESSAGE);
			return false;
		}
		end_terminated_sessions();

		if (channel_readable ||
			pg_atomic_read_u32(&bp_my_slot->channel_sends) != channel_sends_seen)
		{
			channel_sends_seen = pg_atomic_read_u32(&bp_my_slot->channel_sends);
			channel_readable = false;
			drain_channel(true);
		}
		queue_left = expire_queued_sessions();
		left = hand_back_waiting();
		if (left >= 0 && (queue_left < 0 || left < queue_left))
			queue_left = left;
		left = in_xact ? leave_held_executor() : -1;
		if (left >= 0 && (queue_left < 0 || left < queue_left))
			queue_left = left;
		left = -1;
		if (timeout > 0)
		{
			left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (left <= 0)
			{
				if (in_xact)
					bp_session_send_fatal(ERRCODE_IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
										  "terminating connection due to idle-in-transaction timeout");
				else
					bp_session_send_fatal(ERRCODE_IDLE_SESSION_TIMEOUT,
										  "terminating connection due to idle-session timeout");
				return false;
			}
		}
		if (queue_left >= 0 && (left < 0 || queue_left < left))
			left = queue_left;

		n = WaitEventSetWait(main_wes, left, events, lengthof(events),
							 WAIT_EVENT_CLIENT_READ);
		for (i = 0; i < n; i++)
		{
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
			if (events[i].fd == channel_fd)
				channel_readable = true;
			if (events[i].fd == idle_epoll_fd && harvest_while_serving(s))
				return true;
		}
	}
}

/*
 * A recovery conflict met while the session is idle in its transaction
 * ends it, as core ends a backend reading a command (conflict.c).
 */
static bool
wait_session_input(PoolSession *s)
{
	bool		ready;

	bp_conflict_waiting(IsTransactionOrTransactionBlock());
	ready = wait_session_input_loop(s);
	bp_conflict_waiting(false);
	return ready;
}

/*
 * The session may be left for another once its ReadyForQuery is sent: no
 * transaction open, nothing of it buffered or half read.
 */
static bool
can_switch_out(PoolSession *s)
{
	return !IsTransactionOrTransactionBlock() &&
		!s->ignore_till_sync &&
		!pq_is_reading_msg() &&
		!pq_buffer_has_data();
}

/*
 * Serves messages of the current session until it may be switched out or
 * is closed.  A session comes here because a complete message is waiting
 * in its socket, so with must_read the first message is always read:
 * pqcomm's buffer is still empty then, which alone would allow switching
 * out.  After error recovery nothing may be waiting, hence no must_read.
 */
static void
serve_current(bool must_read)
{
	PoolSession *s = bp_current;
	bool		first = must_read;
	bool		switchable;
	bool		pinned = false;

	/* a plain store each: the listener reads them to place sessions */
	last_turn_end = GetCurrentTimestamp();
	pg_atomic_write_u64(&bp_my_slot->busy_since, (uint64) last_turn_end);
	if (must_read)
		bp_admin_count_wait(s->queued_at, last_turn_end);	/* from the queue */
	pg_atomic_write_u32(&bp_my_slot->activity, PEA_RUNNING);
	if (s->moved_statements != NIL || s->moved_unnamed != NULL)
		bp_restore_statements(s);
	for (;;)
	{
		StringInfoData msg;
		int			type;

		MemoryContextSwitchTo(MessageContext);
		MemoryContextResetAndDeleteChildren(MessageContext);
		InvalidateCatalogSnapshotConditionally();

		if (s->closing || s->dead)
			break;
		if (bp_stab_terminating(s))
		{
			bp_session_send_fatal(ERRCODE_ADMIN_SHUTDOWN, BP_TERMINATE_MESSAGE);
			break;
		}

		/*
		 * The pin is published before ReadyForQuery: with it the client may
		 * open another connection at once (psql's \c after CREATE TEMP
		 * TABLE), which the listener must not send here, where it would wait
		 * in the channel until this pin ends.
		 */
		switchable = !first && can_switch_out(s);
		if (switchable)
		{
			pinned = bp_session_pinned(s);
			set_pinned(s, pinned);
		}
		bp_send_ready_if_needed();
		if (s->dead)
			break;
		if (switchable)
		{
			/* a retired pool's session ends once its transaction is over */
			if (pool_dismissed())
			{
				bp_session_send_fatal(ERRCODE_ADMIN_SHUTDOWN, BP_RETIRED_MESSAGE);
				break;
			}
			if (!pinned)
				break;
			if (bp_admin_hold_wanted())
				hold_while_paused(s);
			if (!wait_session_input(s))
				break;
		}
		else if (!first && !pq_buffer_has_data())
		{
			/* idle in the transaction until its next message is read */
			publish_idle_xact(IsTransactionOrTransactionBlock());
			/* held alone, it must still see sessions sent meanwhile */
			if ((!IsTransactionOrTransactionBlock() ||
				 n_sessions > 1 ||
				 (bp_max_held_executors > 0 && !my_pool_dedicated) ||
				 IdleInTransactionSessionTimeout > 0 ||
				 bp_queue_wait_timeout > 0 ||
				 bp_conflict_possible()) &&
				!wait_session_input(s))
				break;			/* else (alone here) the read blocks in
								 * secure_read */
		}
		first = false;

		initStringInfo(&msg);
		type = bp_read_message(&msg);
		publish_idle_xact(false);
		if (type == EOF)
		{
			/* the EOF executor_sigusr2 made for pool_terminate_session() */
			if (bp_stab_terminating(s) && !s->dead)
				bp_session_send_fatal(ERRCODE_ADMIN_SHUTDOWN, BP_TERMINATE_MESSAGE);
			break;
		}

		running_key = s->cancel_key;
		/* pool_cancel_session() of the request it had queued */
		if (bp_stab_take_cancel(s))
		{
			QueryCancelPending = true;
			InterruptPending = true;
		}
		bp_dispatch_message(type, &msg);
		running_key = 0;
	}
	MemoryContextSwitchTo(TopMemoryContext);
	publish_idle_xact(false);
	if (my_reserve)
		last_turn_end = GetCurrentTimestamp();

	if (s->closing || s->dead)
		close_session(s);
	else
	{
		bool		recheck = s->recheck || s->hangup;

		s->recheck = false;
		s->idle_deadline = IdleSessionTimeout > 0 ?
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), IdleSessionTimeout) : 0;
		switch_out();
		if (recheck)
			examine_session(s, false);
	}
	update_counters();
}

/* Takes the oldest queued session, if any */
static PoolSession *
next_session(void)
{
	PoolSession *s;

	if (dlist_is_empty(&run_queue))
		return NULL;
	s = dlist_container(PoolSession, run_node, dlist_pop_head_node(&run_queue));
	n_queued--;
	s->state = PS_IDLE;
	return s;
}

/*
 * Error recovery, modelled on PostgresMain's: the error goes to the session
 * that caused it, its transaction is aborted, and the loop carries on.
 */
static void
recover_from_error(void)
{
	PoolSession *s = bp_current;
	bool		terminating = s != NULL && bp_stab_terminating(s);

	error_context_stack = NULL;
	HOLD_INTERRUPTS();
	disable_all_timeouts(false);
	QueryCancelPending = false;
	running_key = 0;
	pq_comm_reset();

	/*
	 * pool_terminate_session() cancelled the statement to end the session:
	 * its client gets the FATAL alone, as from a terminated backend.  A
	 * recovery conflict may end the session instead (conflict.c).
	 */
	if (!terminating && (s == NULL || !bp_conflict_end_session()))
		EmitErrorReport();
	bp_conflict_reset();
	debug_query_string = NULL;
	AbortCurrentTransaction();
	PortalErrorCleanup();
	jit_reset_after_error();
	MemoryContextSwitchTo(TopMemoryContext);
	FlushErrorState();
	bp_protocol_error_cleanup();
	bp_switching = false;
	publish_idle_xact(false);
	bp_admin_hold_end();		/* an error in a pause's idle duties */

	if (s != NULL)
	{
		/*
		 * A half-read message leaves the stream out of sync: end the
		 * session with the FATAL core sends there (core FATALs the backend).
		 */
		if (pq_is_reading_msg())
		{
			pq_endmsgread();
			bp_session_send_fatal(ERRCODE_PROTOCOL_VIOLATION,
								  "terminating connection because protocol synchronization was lost");
		}
		if (terminating)
			bp_session_send_fatal(ERRCODE_ADMIN_SHUTDOWN, BP_TERMINATE_MESSAGE);
		if (!s->greeted)
			s->closing = true;
		if (s->closing || s->dead)
			close_session(s);
	}
	RESUME_INTERRUPTS();
}

/*
 * on_proc_exit: an executor that ends (pg_terminate_backend, a fast
 * shutdown, a FATAL) tells each of its clients why, as each backend would:
 * the sessions it holds and the clients still waiting in its channel,
 * whose sockets would otherwise just close.  The current session got the
 * FATAL through the normal error path already.  Best effort, never
 * blocking; nothing here may raise an error.
 */
static void
notify_clients_at_exit(int code, Datum arg)
{
	StringInfoData msg;
	dlist_iter	it;

	if (code == 0)
		return;					/* retiring with no session left */

	initStringInfo(&msg);
	if (terminating)
		bp_build_error(&msg, "FATAL", ERRCODE_ADMIN_SHUTDOWN,
					   "terminating connection due to administrator command",
					   NULL, NULL);
	else if (!bp_conflict_exit_message(&msg))	/* a database dropped? */
		bp_build_error(&msg, "FATAL", ERRCODE_CONNECTION_FAILURE,
					   "terminating connection because its pool executor exited",
					   NULL, "See the server log for the executor's error.");
	dlist_foreach(it, &all_sessions)
	{
		PoolSession *s = dlist_container(PoolSession, all_node, it.cur);

		if (s != bp_current && !s->dead)
			bp_session_send_last(s, msg.data, msg.len);
	}
	dlist_foreach(it, &held_handoffs)
	{
		HeldHandoff *h = dlist_container(HeldHandoff, node, it.cur);
		BpTlsSealer sealer;

		memset(&sealer, 0, sizeof(sealer));
		memcpy(&sealer.w, &h->handoff.tls, sizeof(sealer.w));
		(void) bp_tls_send_quick(&sealer, bp_channel_output_fd(h->fds),
								 msg.data, msg.len);
		bp_tls_sealer_free(&sealer);
		bp_channel_close_fds(h->fds);
	}
	for (;;)
	{
		int			fds[BP_CHANNEL_MAX_FDS];
		ssize_t		n = bp_channel_recv(channel_fd, channel_buf, BP_HANDOFF_MAX, fds);

		if (n <= 0)
			break;
		refuse_handoff(n >= sizeof(PoolHandoff) &&
					   ((PoolHandoff *) channel_buf)->magic == BP_HANDOFF_MAGIC ?
					   &((PoolHandoff *) channel_buf)->tls : NULL,
					   fds, &msg);
	}
}

static void
count_transaction(XactEvent event, void *arg)
{
	if (!bp_switching &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT))
		pg_atomic_fetch_add_u64(&bp_my_slot->n_transactions, 1);
}

/*
 * A session that pins gets this executor to itself, outside the pool's
 * size: the pool starts another for its other sessions.  Before a commit
 * that would pin (temp objects, a WITH HOLD cursor), check that this can
 * be afforded: fewer than builtin_pool.max_pinned_executors executors
 * pinned, and an executor slot free unless the pool has another unpinned
 * executor.  Otherwise the commit fails, so the client learns it at once
 * instead of the pool's other sessions waiting.  With the GUC at 0 pins
 * stay within the pool's size, unchecked, as before it existed.  Session advisory locks
 * and LISTEN pin without this check (they cannot be undone by an abort,
 * or are applied only after commit).  Slot states are read without the
 * lock, as a hint (pool_can_take).
 */
static void pin_refused(PoolSession *s, int pinned, bool no_slot);

static void
check_pin_affordable(XactEvent event, void *arg)
{
	PoolSession *s = bp_current;
	int			pinned = 0;
	int			others = 0;
	int			free_slots = 0;
	int			i;

	if (event != XACT_EVENT_PRE_COMMIT || bp_switching || s == NULL ||
		s->pinned || my_pool_dedicated || bp_max_pinned_executors == 0)
		return;
	if (s->hold_cursors == NIL && !(s->temp_check && bp_temp_objects_exist()))
		return;

	for (i = 0; i < bp_shared->max_executors; i++)
	{
		PoolExecutor *ex = &bp_shared->executors[i];

		if (ex->state == PE_FREE)
			free_slots++;
		else if (pg_atomic_read_u32(&ex->n_pinned) > 0)
		{
			/* a dedicated executor serves one session anyway */
			if (ex->pool_id >= 0 && !bp_shared->pools[ex->pool_id].dedicated)
				pinned++;
		}
		else if (i != my_slot_index && ex->pool_id == my_pool_id &&
				 ex->state != PE_EXITING)
			others++;
	}
	if (pinned >= bp_max_pinned_executors)
		pin_refused(s, pinned, false);
	if (others == 0 && free_slots == 0)
		pin_refused(s, pinned, true);
}

/*
 * Fails the commit.  The WITH HOLD cursors of s were all declared in this
 * transaction (an older one would have pinned s already), but core has
 * already made them outlive it by now (PreCommit_Portals), so they are
 * dropped here: the abort would keep them.
 */
static void
pin_refused(PoolSession *s, int pinned, bool no_slot)
{
	ListCell   *lc;

	foreach(lc, s->hold_cursors)
	{
		Portal		portal = GetPortalByName(lfirst(lc));

		if (PortalIsValid(portal))
			PortalDrop(portal, false);
	}
	if (no_slot)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("no pool executor can be started for a pinned session"),
				 errdetail("Temporary objects and WITH HOLD cursors need a pool executor of their own, and no executor slot is free (%d executors are pinned).",
						   pinned),
				 errhint("Increase max_worker_processes, or lower builtin_pool.max_pinned_executors.")));
	ereport(ERROR,
			(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
			 errmsg("too many pinned pool executors"),
			 errdetail("Temporary objects and WITH HOLD cursors need a pool executor of their own, and %d executors are pinned already.",
					   pinned),
			 errhint("Raise builtin_pool.max_pinned_executors, or drop the temporary objects and cursors within the transaction.")));
}

void
bp_executor_main(Datum main_arg)
{
	Oid			dboid;
	Oid			roleid;
	sigjmp_buf	local_sigjmp_buf;

	pqsignal(SIGTERM, executor_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGINT, executor_sigint);
	pqsignal(SIGUSR2, executor_sigusr2);
	pqsignal(SIGUSR1, bp_conflict_sigusr1);

	bp_sockets_close_inherited();
	bp_mainport_forget();
	attach_slot(main_arg, &dboid, &roleid);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, roleid, 0);

	/*
	 * From here on the clients see a backend: a terminated executor must
	 * tell them "terminating connection due to administrator command", as
	 * core's backends do, not "terminating background worker".  Only
	 * ProcessInterrupts reads the flag after startup (ProcKill uses the
	 * PGPROC list recorded at InitProcess).
	 */
	IsBackgroundWorker = false;

	raise_fd_limit();
	MessageContext = AllocSetContextCreate(TopMemoryContext, "MessageContext",
										   ALLOCSET_DEFAULT_SIZES);
	bp_session_module_init();
	bp_prepared_init();
	bp_redirect_init();
	bp_session_views_init();
	bp_pinning_init();
	bp_utility_init();
	bp_admin_executor_attach(my_slot_index, my_generation, my_pool_id);
	RegisterXactCallback(count_transaction, NULL);
	RegisterXactCallback(check_pin_affordable, NULL);
	say_hello();
	build_wait_sets();
	on_proc_exit(notify_clients_at_exit, (Datum) 0);
	idle_since = GetCurrentTimestamp();
	last_turn_end = idle_since;
	started_at = idle_since;
	whereToSendOutput = DestNone;

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
		recover_from_error();
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		PoolSession *s;
		long		leave_wait;

		if (bp_current != NULL)
		{
			serve_current(false);
			continue;
		}

		if (pool_dismissed() && !dismissal_done)
			end_dismissed_sessions();
		end_terminated_sessions();
		if (!pool_dismissed() && bp_admin_hold_wanted())
		{
			hold_while_paused(NULL);
			continue;
		}
		start_held_sessions();
		if (channel_readable ||
			pg_atomic_read_u32(&bp_my_slot->channel_sends) != channel_sends_seen)
		{
			channel_sends_seen = pg_atomic_read_u32(&bp_my_slot->channel_sends);
			channel_readable = false;
			drain_channel(false);
		}
		if (sessions_readable || dlist_is_empty(&run_queue) ||
			++picks_since_poll >= PICKS_PER_POLL)
		{
			sessions_readable = false;
			picks_since_poll = 0;
			poll_sessions();
		}
		(void) expire_queued_sessions();
		between_commands();
		shed_to_lighter();
		check_leaving();
		if (leaving && n_queued > 0)
			leave_while_busy();
		s = next_session();
		if (s != NULL)
		{
			switch_in(s);
			serve_current(true);
			continue;
		}
		if (!my_reserve && !my_pool_dedicated && bp_max_pinned_executors > 0 &&
			TimestampDifferenceExceeds(last_turn_end, GetCurrentTimestamp(),
									   BP_RESERVE_IDLE_MS))
			check_surplus();
		leave_wait = leaving ? leave_with_sessions() : -1;
		if (my_reserve && !leaving)
			(void) reserve_idle();
		maybe_retire();
		wait_for_work(leave_wait);
	}
}
