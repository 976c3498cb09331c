/*-------------------------------------------------------------------------
 *
 * session.c
 *	  A session's private state and the switch in and out of it.
 *
 * An executor serves many sessions in one process.  What makes a session
 * look like a backend of its own lives here:
 *
 * - Output.  Our own PqCommMethods write into the current session's buffer
 *   and send to its socket.  A dead socket marks only that session dead and
 *   cancels the statement; core's methods would set ClientConnectionLost,
 *   which FATALs the executor and every session on it.
 *
 * - Input stays on core pqcomm (COPY FROM reads it directly), so
 *   MyProcPort and FeBeWaitSet point at the current session.  The executor
 *   switches only with pqcomm's receive buffer empty.
 *
 * - Settings.  At switch-out we record every GUC whose source is SESSION
 *   (SET, set_config(), startup options) and the values last reported to
 *   the client.  Switch-in is idempotent: it first resets every
 *   SESSION-sourced GUC, whoever left it, then applies the incoming
 *   session's list, inside a transaction (role and client_encoding need
 *   catalog access).  A cleanup path we forgot can therefore never leak one
 *   session's settings into another.  ParameterStatus does not trust
 *   guc.c's change flags either (they are per process): before each
 *   ReadyForQuery every reported setting is compared with what that
 *   session's client was last told.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <unistd.h>

#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/genam.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "common/ip.h"
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/snapmgr.h"

#include "builtin_pool.h"
#include "pool_shmem.h"
#include "pinning.h"
#include "prepared.h"
#include "sequences.h"
#include "greeting.h"
#include "session.h"
#include "session_table.h"
#include "startup.h"

PoolSession *bp_current = NULL;
bool		bp_switching = false;

/* executor.c's slot, for byte counters */

/* GUC_REPORT variables, found once: their set never changes */
static struct config_generic **report_vars = NULL;
static int	n_report_vars = 0;
static struct config_bool *in_hot_standby_var = NULL;

static bool send_busy = false;

static void bp_comm_reset(void);
static int	bp_flush(void);
static int	bp_flush_if_writable(void);
static bool bp_is_send_pending(void);
static int	bp_putmessage(char msgtype, const char *s, size_t len);
static void bp_putmessage_noblock(char msgtype, const char *s, size_t len);

static const PQcommMethods bp_comm_methods = {
	bp_comm_reset,
	bp_flush,
	bp_flush_if_writable,
	bp_is_send_pending,
	bp_putmessage,
	bp_putmessage_noblock
};

/*
 * Installs the output path and finds the reported GUCs.  Called once by the
 * executor before it takes any session.
 */
void
bp_session_module_init(void)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	PqCommMethods = &bp_comm_methods;

	report_vars = MemoryContextAlloc(TopMemoryContext,
									 n * sizeof(struct config_generic *));
	for (i = 0; i < n; i++)
	{
		if (vars[i]->flags & GUC_REPORT)
			report_vars[n_report_vars++] = vars[i];
		if (strcmp(vars[i]->name, "in_hot_standby") == 0 &&
			vars[i]->vartype == PGC_BOOL)
			in_hot_standby_var = (struct config_bool *) vars[i];
	}

	/*
	 * As BeginReportingGUCOptions would at a greeting: a moved session may
	 * be this executor's first, and it reports the standby state too.
	 */
	if (RecoveryInProgress())
		SetConfigOption("in_hot_standby", "true", PGC_INTERNAL, PGC_S_OVERRIDE);
}

/* ---------------------------------------------------------------------
 * Output
 * ---------------------------------------------------------------------
 */

/*
 * The client is gone: drop what it would have received and stop the
 * statement running for it with an ordinary ERROR (never FATAL, which
 * would end every session of this executor).
 */
static void
stop_sending(PoolSession *s)
{
	s->dead = true;
	s->closing = true;
	resetStringInfo(&s->outbuf);
	resetStringInfo(&s->sealed);
	if (bp_current == s)
		whereToSendOutput = DestNone;
	if (!proc_exit_inprogress)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
}

static void
mark_dead(PoolSession *s)
{
	ereport(COMMERROR,
			(errcode_for_socket_access(),
			 errmsg("could not send data to client: %m")));
	stop_sending(s);
}

/*
 * The session's TLS sending key reached its record limit (tls.c): what is
 * not sealed yet is dropped (whole messages), the client gets a FATAL and
 * close_notify on the records kept for them, and the session ends like a
 * dead one.  Rekeying would need the traffic secret, which we do not keep.
 */
static void
end_at_record_limit(PoolSession *s)
{
	StringInfoData err;

	resetStringInfo(&s->outbuf);
	initStringInfo(&err);
	bp_build_error(&err, "FATAL", ERRCODE_CONNECTION_FAILURE,
				   "terminating connection because its TLS session reached its record limit",
				   NULL, "Connect again to go on.");
	if (bp_tls_seal_goodbye(&s->tls, err.data, err.len, &s->sealed))
		(void) send(s->client_fd, s->sealed.data, s->sealed.len,
					MSG_NOSIGNAL | MSG_DONTWAIT);
	pfree(err.data);
	ereport(LOG,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("terminating a pooled TLS session at its record limit"),
			 errdetail("A TLS sending key may protect a limited number of records (RFC 8446 section 5.5).")));
	stop_sending(s);
}

/*
 * The bytes to write to the client: the buffer itself, or for TLS the
 * records it is sealed into first.  NULL if sealing failed.
 */
static StringInfo
wire_buffer(PoolSession *s)
{
	if (s->tls.w.suite == 0)
		return &s->outbuf;
	if (s->outbuf.len > 0)
	{
		if (!bp_tls_seal(&s->tls, s->outbuf.data, s->outbuf.len, &s->sealed))
			return NULL;
		resetStringInfo(&s->outbuf);
	}
	return &s->sealed;
}

/* Removes the first n bytes of buf, which went out */
static void
drop_sent(StringInfo buf, int n)
{
	if (n <= 0)
		return;
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
	buf->data[buf->len] = '\0';
}

/* Waits until the client's socket takes more; only a die interrupts */
static void
wait_writable(PoolSession *s)
{
	WaitEvent	event;
	WaitEventSet *wes = s->write_wes ? s->write_wes : s->wes;

	ModifyWaitEvent(wes, FeBeWaitSetSocketPos, WL_SOCKET_WRITEABLE, NULL);
	(void) WaitEventSetWait(wes, -1, &event, 1, WAIT_EVENT_CLIENT_WRITE);
	if (event.events & WL_POSTMASTER_DEATH)
		proc_exit(1);
	if (event.events & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		ProcessClientWriteInterrupt(true);
	}
}

/*
 * Sends as much of the buffer as the socket takes.  With block, waits for
 * the socket on the session's own wait set until all is sent, as core's
 * flush does; only a pending die interrupts the wait.  Returns 0, or EOF
 * when the session is dead.
 */
static int
send_buffer(PoolSession *s, bool block)
{
	StringInfo	out = wire_buffer(s);
	int			sent = 0;

	if (out == NULL)
	{
		if (errno == EMSGSIZE)
			end_at_record_limit(s);
		else
			mark_dead(s);
		return EOF;
	}
	while (sent < out->len && !s->dead)
	{
		ssize_t		n = send(s->client_fd, out->data + sent,
							 out->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
		{
			sent += n;
			pg_atomic_fetch_add_u64(&bp_my_slot->bytes_out, n);
			s->bytes_out += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		{
			if (!block)
				break;
			wait_writable(s);
			continue;
		}
		mark_dead(s);
		return EOF;
	}

	if (!s->dead)
		drop_sent(out, sent);
	return s->dead ? EOF : 0;
}

bool
bp_session_output_pending(PoolSession *s)
{
	return s->outbuf.len > 0 || s->sealed.len > 0;
}

/*
 * Sends a short message to a session that is not switched in (an error
 * before it is closed), behind whatever it still has to send, without
 * blocking and without marking anything on failure.  last: the executor
 * exits, so a TLS session ends here, with close_notify.
 */
static void
send_quick(PoolSession *s, const char *data, int len, bool last)
{
	StringInfo	out;
	ssize_t		n;

	Assert(s != bp_current);
	if (s->dead)
		return;
	appendBinaryStringInfo(&s->outbuf, data, len);
	out = wire_buffer(s);
	if (out == NULL)
		return;
	if (last && s->tls.w.suite != 0)
		(void) bp_tls_seal_goodbye(&s->tls, NULL, 0, out);
	if (out->len == 0)
		return;
	n = send(s->client_fd, out->data, out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		drop_sent(out, n);
}

void
bp_session_send_quick(PoolSession *s, const char *data, int len)
{
	send_quick(s, data, len, false);
}

void
bp_session_send_last(PoolSession *s, const char *data, int len)
{
	send_quick(s, data, len, true);
}

static void
bp_comm_reset(void)
{
	send_busy = false;
}

static int
bp_flush(void)
{
	int			r;

	if (bp_current == NULL || bp_current->dead)
		return EOF;
	if (send_busy)
		return 0;
	send_busy = true;
	r = send_buffer(bp_current, true);
	send_busy = false;
	return r;
}

static int
bp_flush_if_writable(void)
{
	int			r;

	if (bp_current == NULL || bp_current->dead)
		return EOF;
	if (send_busy)
		return 0;
	send_busy = true;
	r = send_buffer(bp_current, false);
	send_busy = false;
	return r;
}

static bool
bp_is_send_pending(void)
{
	return bp_current != NULL && bp_session_output_pending(bp_current);
}

/*
 * Appends one message to the current session's buffer; past 8kB the buffer
 * is sent, as core's pqcomm does.  Output while no session is switched in,
 * or to a dead session, is dropped.
 */
static int
bp_putmessage(char msgtype, const char *s, size_t len)
{
	PoolSession *cur = bp_current;
	uint32		n32;

	if (cur == NULL || cur->dead)
		return EOF;
	if (send_busy)
		return 0;				/* re-entered from an error while sending */

	appendStringInfoChar(&cur->outbuf, msgtype);
	n32 = pg_hton32((uint32) (len + 4));
	appendBinaryStringInfo(&cur->outbuf, (char *) &n32, 4);
	appendBinaryStringInfo(&cur->outbuf, s, len);

	if (cur->outbuf.len >= 8192)
		return bp_flush();
	return 0;
}

static void
bp_putmessage_noblock(char msgtype, const char *s, size_t len)
{
	(void) bp_putmessage(msgtype, s, len);
}

/*
 * Sends a FATAL ErrorResponse to the current session, logs it, and marks
 * the session for closing.  For protocol errors where core would FATAL the
 * whole backend: here only this session ends.
 */
void
bp_session_send_fatal(int sqlstate, const char *message)
{
	bp_session_send_fatal_detail(sqlstate, message, NULL, NULL);
}

/* The same with a detail and a hint, either may be NULL */
void
bp_session_send_fatal_detail(int sqlstate, const char *message,
							 const char *detail, const char *hint)
{
	StringInfoData buf;

	ereport(COMMERROR,
			(errcode(sqlstate),
			 errmsg_internal("%s", message),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
	if (bp_current == NULL)
		return;
	bp_current->closing = true;
	if (bp_current->dead)
		return;
	initStringInfo(&buf);
	bp_build_error(&buf, "FATAL", sqlstate, message, detail, hint);
	/* bp_build_error wrote type and length; putmessage adds its own */
	(void) bp_putmessage(buf.data[0], buf.data + 5, buf.len - 5);
	(void) bp_flush();
	pfree(buf.data);
}

/* ---------------------------------------------------------------------
 * Creation and destruction
 * ---------------------------------------------------------------------
 */

static void
fill_addresses(PoolSession *s)
{
	Port	   *port = s->port;
	char		host[NI_MAXHOST];
	char		service[NI_MAXSERV];

	port->laddr.salen = sizeof(port->laddr.addr);
	if (getsockname(s->client_fd, (struct sockaddr *) &port->laddr.addr,
					&port->laddr.salen) < 0)
		port->laddr.salen = 0;
	port->raddr.salen = sizeof(port->raddr.addr);
	if (getpeername(s->client_fd, (struct sockaddr *) &port->raddr.addr,
					&port->raddr.salen) < 0)
		port->raddr.salen = 0;

	host[0] = service[0] = '\0';
	if (port->raddr.salen > 0)
		(void) pg_getnameinfo_all(&port->raddr.addr, port->raddr.salen,
								  host, sizeof(host), service, sizeof(service),
								  NI_NUMERICHOST | NI_NUMERICSERV);
	if (port->raddr.addr.ss_family == AF_UNIX)
		strlcpy(host, "[local]", sizeof(host));
	port->remote_host = pstrdup(host);
	port->remote_port = pstrdup(service);
}

/*
 * A session's %c in log_line_prefix is MyStartTime.MyProcPid, as a
 * backend's: each session of an executor gets its own MyStartTime while it
 * runs, unique within the executor (never the executor's own), close to
 * when the session came.
 */
static pg_time_t executor_start_time = 0;

static pg_time_t
next_log_id(void)
{
	static pg_time_t last = 0;
	pg_time_t	now = (pg_time_t) time(NULL);

	if (executor_start_time == 0)
		executor_start_time = MyStartTime;
	last = Max(Max(last, executor_start_time) + 1, now);
	return last;
}

/*
 * What a backend reports once as its client starts, for a pooled session
 * (not when it moves): pg_stat_database.sessions counts it, and
 * log_connections prints "connection received" and "connection
 * authorized", switched in so that log_line_prefix shows the session.
 * Core counts sessions of regular backends only, so the executor passes for
 * one for that call.
 */
void
bp_session_report_start(PoolSession *s)
{
	StringInfoData msg;
	ListCell   *ln,
			   *lv;
	BackendType save_type = MyBackendType;
	char	   *save_user;
	char	   *save_db;
	char	   *save_app;

	MyBackendType = B_BACKEND;
	pgstat_report_connect(MyDatabaseId);
	MyBackendType = save_type;

	if (!Log_connections)
		return;

	/*
	 * A backend logs these before it knows its user and database (the
	 * first) and before it applies its startup options (both): %u, %d and
	 * %a show "[unknown]" there, as in core.
	 */
	save_user = s->port->user_name;
	save_db = s->port->database_name;
	save_app = application_name;
	s->port->user_name = NULL;
	s->port->database_name = NULL;
	application_name = NULL;
	if (bp_main_port_pooled())
		;						/* its backend logged it (mainport.c) */
	else if (s->port->remote_port[0])
		ereport(LOG,
				(errmsg("connection received: host=%s port=%s",
						s->port->remote_host, s->port->remote_port)));
	else
		ereport(LOG,
				(errmsg("connection received: host=%s", s->port->remote_host)));
	s->port->user_name = save_user;
	s->port->database_name = save_db;

	initStringInfo(&msg);
	appendStringInfo(&msg, "connection authorized: user=%s database=%s",
					 s->port->user_name, s->port->database_name);
	forboth(ln, s->startup.guc_names, lv, s->startup.guc_values)
	{
		if (strcmp(lfirst(ln), "application_name") == 0)
			appendStringInfo(&msg, " application_name=%s", (char *) lfirst(lv));
	}
	bp_stab_append_tls(s, &msg);
	ereport(LOG, errmsg_internal("%s", msg.data));
	application_name = save_app;
	pfree(msg.data);
}

/*
 * log_disconnections, as a backend logs its end: the session's time and
 * who it was; log_line_prefix shows the session even if another one is
 * switched in, or none.
 */
void
bp_session_report_end(PoolSession *s)
{
	long		secs;
	int			usecs;
	Port	   *save_port = MyProcPort;
	pg_time_t	save_start = MyStartTime;

	/* core keeps Log_disconnections out of its headers */
	if (s->moved ||
		strcmp(GetConfigOption("log_disconnections", false, false), "on") != 0)
		return;
	TimestampDifference(s->started_at, GetCurrentTimestamp(), &secs, &usecs);
	MyProcPort = s->port;
	MyStartTime = s->log_id;
	ereport(LOG,
			(errmsg("disconnection: session time: %d:%02d:%02d.%03d "
					"user=%s database=%s host=%s%s%s",
					(int) (secs / SECS_PER_HOUR),
					(int) ((secs / SECS_PER_MINUTE) % MINS_PER_HOUR),
					(int) (secs % SECS_PER_MINUTE), usecs / 1000,
					s->port->user_name, s->port->database_name,
					s->port->remote_host,
					s->port->remote_port[0] ? " port=" : "",
					s->port->remote_port)));
	MyProcPort = save_port;
	MyStartTime = save_start;
}

/*
 * Builds a session around a client socket received from the listener.
 * body is the startup packet's name/value pairs; it is copied.  The caller
 * (executor) registers the socket for readiness and greets the client.
 * Everything is allocated in a new context under TopMemoryContext.
 */
PoolSession *
bp_session_create(int sock, int client_fd, const PoolHandoff *handoff,
				  const char *body)
{
	MemoryContext cxt;
	MemoryContext old;
	PoolSession *s;
	int			sqlstate;
	const char *message;

	cxt = AllocSetContextCreate(TopMemoryContext, "pool session",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);

	s = palloc0(sizeof(PoolSession));
	s->cxt = cxt;
	s->sock = sock;
	s->client_fd = client_fd;
	s->tls.w = handoff->tls;
	s->state = PS_IDLE;
	s->cancel_key = handoff->cancel_key;
	s->startup_body = palloc(handoff->startup_len + 1);
	memcpy(s->startup_body, body, handoff->startup_len);
	s->startup_body[handoff->startup_len] = '\0';
	s->startup_len = handoff->startup_len;
	s->port_index = handoff->port_index;
	s->started_at = GetCurrentTimestamp();
	s->log_id = next_log_id();
	if (!bp_parse_startup(s->startup_body, handoff->startup_len, &s->startup,
						  &sqlstate, &message))
		memset(&s->startup, 0, sizeof(s->startup)); /* listener checked it */
	initStringInfo(&s->outbuf);
	initStringInfo(&s->sealed);
	s->guc_cxt = AllocSetContextCreate(cxt, "pool session settings",
									   ALLOCSET_SMALL_SIZES);
	s->last_reported = palloc0(Max(n_report_vars, 1) * sizeof(char *));

	s->port = palloc0(sizeof(Port));
	s->port->sock = sock;
	s->port->proto = handoff->proto;
	s->port->user_name = pstrdup(s->startup.user ? s->startup.user : "");
	s->port->database_name = pstrdup(s->startup.database ? s->startup.database : "");
	fill_addresses(s);

	/*
	 * Each wait set costs an epoll fd.  Core counts those against
	 * max_safe_fds / 3, which would cap an executor at a few hundred
	 * sessions; executor.c raises RLIMIT_NOFILE for them instead, so hand the
	 * external-fd slot back (bp_session_destroy takes it again before
	 * FreeWaitEventSet releases it).
	 */
	s->wes = CreateWaitEventSet(cxt, FeBeWaitSetNEvents);
	ReleaseExternalFD();
	AddWaitEventToSet(s->wes, WL_SOCKET_WRITEABLE, sock, NULL, NULL);
	AddWaitEventToSet(s->wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(s->wes, WL_POSTMASTER_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (client_fd != sock)
	{
		/* core waits on s->wes to read sock; writes wait on their own set */
		s->write_wes = CreateWaitEventSet(cxt, FeBeWaitSetNEvents);
		ReleaseExternalFD();
		AddWaitEventToSet(s->write_wes, WL_SOCKET_WRITEABLE, client_fd, NULL, NULL);
		AddWaitEventToSet(s->write_wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(s->write_wes, WL_POSTMASTER_DEATH, PGINVALID_SOCKET, NULL, NULL);
	}

	MemoryContextSwitchTo(old);
	return s;
}

/*
 * Releases everything of a session that is not switched in.  The
 * executor has already rolled back its transaction and removed it from
 * its wait structures.
 */
void
bp_session_destroy(PoolSession *s)
{
	int			i;

	Assert(bp_current != s);
	for (i = 0; i < n_report_vars; i++)
	{
		if (s->last_reported[i])
			free(s->last_reported[i]);
	}
	ReserveExternalFD();
	FreeWaitEventSet(s->wes);
	if (s->write_wes)
	{
		ReserveExternalFD();
		FreeWaitEventSet(s->write_wes);
	}
	/*
	 * A TLS session that ends here (not one that moved on: that one is
	 * marked dead) says so with close_notify, behind what it still had to
	 * send, so that the client can tell its end from a cut connection.
	 */
	if (!s->dead && s->tls.w.suite != 0)
	{
		StringInfo	out = wire_buffer(s);

		if (out != NULL && bp_tls_seal_goodbye(&s->tls, NULL, 0, out))
			(void) send(s->client_fd, out->data, out->len,
						MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	close(s->sock);
	if (s->client_fd != s->sock)
		close(s->client_fd);
	bp_tls_sealer_free(&s->tls);
	MemoryContextDelete(s->cxt);
}

/*
 * Throws away whatever the current session's client sent that we have not
 * read, so the next session cannot read it.  pq_getbyte only calls recv()
 * when the buffer is empty, so this never blocks.
 */
void
bp_session_discard_input(void)
{
	if (pq_is_reading_msg())
		pq_endmsgread();
	pq_startmsgread();
	while (pq_buffer_has_data())
		(void) pq_getbyte();
	pq_endmsgread();
}

/* ---------------------------------------------------------------------
 * Custom placeholders
 * ---------------------------------------------------------------------
 */

/* guc.c's order of its table: names compared ASCII case-insensitively */
static int
guc_name_cmp(const char *a, const char *b)
{
	while (*a && *b)
	{
		char		ca = *a++;
		char		cb = *b++;

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return ca - cb;
	}
	return (*a != '\0') - (*b != '\0');
}

static int
guc_entry_cmp(const void *key, const void *elem)
{
	return guc_name_cmp(key, (*(struct config_generic *const *) elem)->name);
}

/* Has the current session named this custom setting in SET or RESET? */
static bool
setting_noted(const char *name)
{
	ListCell   *lc;

	foreach(lc, bp_current->own_placeholders)
	{
		if (guc_name_cmp(name, lfirst(lc)) == 0)
			return true;
	}
	return false;
}

/* SET, SET LOCAL or RESET of a custom name: on a backend it now exists */
void
bp_setting_note_placeholder(const char *name)
{
	MemoryContext old;

	if (bp_current == NULL || strchr(name, GUC_QUALIFIER_SEPARATOR) == NULL ||
		setting_noted(name))
		return;
	old = MemoryContextSwitchTo(bp_current->cxt);
	bp_current->own_placeholders = lappend(bp_current->own_placeholders,
										   pstrdup(name));
	MemoryContextSwitchTo(old);
}

/*
 * A custom placeholder ("myapp.x") that exists in this process only
 * because another session set it: this session never named it in SET or
 * RESET and nothing else (configuration file, role or database setting,
 * startup option, set_config() in force) gave it a value.  On its own
 * backend it would not exist.
 */
bool
bp_setting_hidden(const char *name)
{
	struct config_generic **found;

	if (bp_current == NULL || strchr(name, GUC_QUALIFIER_SEPARATOR) == NULL ||
		setting_noted(name))
		return false;
	found = bsearch(name, get_guc_variables(), GetNumConfigOptions(),
					sizeof(struct config_generic *), guc_entry_cmp);
	return found != NULL &&
		((*found)->flags & GUC_CUSTOM_PLACEHOLDER) != 0 &&
		(*found)->source == PGC_S_DEFAULT && (*found)->stack == NULL;
}

/*
 * current_setting(name [, missing_ok]) through the pool (redirect.c): as
 * core's, except that another session's placeholder does not exist.
 */
Datum
bp_current_setting(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (bp_setting_hidden(name))
	{
		if (PG_NARGS() > 1 && PG_GETARG_BOOL(1))
			PG_RETURN_NULL();
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unrecognized configuration parameter \"%s\"", name)));
	}
	if (PG_NARGS() > 1)
		return show_config_by_name_missing_ok(fcinfo);
	return show_config_by_name(fcinfo);
}

/* ---------------------------------------------------------------------
 * Settings
 * ---------------------------------------------------------------------
 */

/*
 * transaction_* settings belong to one transaction; they are reset when the
 * next one starts, so carrying them over would be wrong.
 */
static bool
is_carried_setting(struct config_generic *conf)
{
	return conf->source == PGC_S_SESSION &&
		strncmp(conf->name, "transaction_", 12) != 0;
}

static void
save_settings(PoolSession *s)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	MemoryContext old;
	int			i;

	MemoryContextReset(s->guc_cxt);
	s->guc_names = NIL;
	s->guc_values = NIL;
	old = MemoryContextSwitchTo(s->guc_cxt);
	for (i = 0; i < n; i++)
	{
		struct config_generic *conf = vars[i];

		if (!is_carried_setting(conf))
			continue;
		s->guc_names = lappend(s->guc_names, pstrdup(conf->name));
		s->guc_values = lappend(s->guc_values,
								pstrdup(GetConfigOption(conf->name, false, false)));
	}
	MemoryContextSwitchTo(old);
}

static void
set_setting(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_SU_BACKEND, PGC_S_SESSION,
							 GUC_ACTION_SET, true, WARNING, false);
}

/*
 * Resets every SESSION-sourced setting, then applies s's own.
 * session_authorization goes first: changing it also resets role.
 */
static void
restore_settings(PoolSession *s)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	ListCell   *ln,
			   *lv;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (is_carried_setting(vars[i]))
			set_setting(vars[i]->name, NULL);
	}
	forboth(ln, s->guc_names, lv, s->guc_values)
	{
		if (strcmp(lfirst(ln), "session_authorization") == 0)
			set_setting(lfirst(ln), lfirst(lv));
	}
	forboth(ln, s->guc_names, lv, s->guc_values)
	{
		if (strcmp(lfirst(ln), "session_authorization") != 0)
			set_setting(lfirst(ln), lfirst(lv));
	}
}

/*
 * Do the process's SESSION-sourced settings already equal s's?  Sessions
 * of one pool mostly carry the same few (application_name from the
 * driver): then switching needs no transaction at all.
 */
static bool
settings_match(PoolSession *s)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	ListCell   *ln = list_head(s->guc_names);
	ListCell   *lv = list_head(s->guc_values);
	int			i;

	for (i = 0; i < n; i++)
	{
		struct config_generic *conf = vars[i];

		if (!is_carried_setting(conf))
			continue;
		if (ln == NULL ||
			strcmp(conf->name, lfirst(ln)) != 0 ||
			strcmp(GetConfigOption(conf->name, false, false), lfirst(lv)) != 0)
			return false;
		ln = lnext(s->guc_names, ln);
		lv = lnext(s->guc_values, lv);
	}
	return ln == NULL;
}

/*
 * ParameterStatus bookkeeping.  Each session owns the values its client
 * was last told (last_reported); while it is switched in they sit in
 * guc.c's records, swapped at switch-in and out.
 */
static void
swap_last_reported(PoolSession *s)
{
	int			i;

	for (i = 0; i < n_report_vars; i++)
	{
		char	   *mine = s->last_reported[i];

		s->last_reported[i] = report_vars[i]->last_reported;
		report_vars[i]->last_reported = mine;
	}
}

/* guc.c's show hook of a setting, if it has one */
static GucShowHook
show_hook_of(struct config_generic *conf)
{
	switch (conf->vartype)
	{
		case PGC_BOOL:
			return ((struct config_bool *) conf)->show_hook;
		case PGC_INT:
			return ((struct config_int *) conf)->show_hook;
		case PGC_REAL:
			return ((struct config_real *) conf)->show_hook;
		case PGC_STRING:
			return ((struct config_string *) conf)->show_hook;
		case PGC_ENUM:
			return ((struct config_enum *) conf)->show_hook;
	}
	return NULL;
}

/*
 * The text ParameterStatus carries for a reported setting: guc.c's
 * display form without units (reported settings have none).  buf holds
 * numbers; a show hook's or a string's value is returned as it is.
 */
static const char *
reported_value(struct config_generic *conf, char *buf, size_t len)
{
	GucShowHook hook = show_hook_of(conf);
	struct config_enum *e = (struct config_enum *) conf;
	char	   *str;

	if (hook)
		return hook();
	switch (conf->vartype)
	{
		case PGC_BOOL:
			return *((struct config_bool *) conf)->variable ? "on" : "off";
		case PGC_INT:
			snprintf(buf, len, "%d", *((struct config_int *) conf)->variable);
			return buf;
		case PGC_REAL:
			snprintf(buf, len, "%g", *((struct config_real *) conf)->variable);
			return buf;
		case PGC_STRING:
			str = *((struct config_string *) conf)->variable;
			return str ? str : "";
		case PGC_ENUM:
			return config_enum_lookup_by_value(e, *e->variable);
	}
	return "";
}

/*
 * Sends the current session's client a ParameterStatus for each reported
 * setting whose value differs from what that client was last told, in
 * guc.c's order, as a backend does before ReadyForQuery.  Core's
 * ReportChangedGUCOptions() is not used: it reports nothing in a process
 * that never ran BeginReportingGUCOptions() (an executor that only took
 * moved sessions never greeted one), and it looks only at settings flagged
 * as changed since its last call, whichever session that call was for.
 * Comparing every reported setting with the session's own record needs
 * neither, and sends what a backend would: a backend's flag is set
 * whenever a value changes, and it reports only values that differ.
 */
void
bp_session_report_settings(void)
{
	char		buf[64];
	StringInfoData msg;
	int			i;

	Assert(bp_current != NULL);

	/*
	 * As core: in_hot_standby turns off when recovery ends, never on.  Each
	 * session still told "on" then gets "off" below, also one that moved
	 * here after this executor's value changed.
	 */
	if (in_hot_standby_var != NULL && *in_hot_standby_var->variable &&
		!RecoveryInProgress())
		SetConfigOption("in_hot_standby", "false", PGC_INTERNAL, PGC_S_OVERRIDE);

	for (i = 0; i < n_report_vars; i++)
	{
		struct config_generic *conf = report_vars[i];
		const char *val = reported_value(conf, buf, sizeof(buf));

		conf->status &= ~GUC_NEEDS_REPORT;
		if (conf->last_reported != NULL && strcmp(val, conf->last_reported) == 0)
			continue;
		pq_beginmessage(&msg, 'S');
		pq_sendstring(&msg, conf->name);
		pq_sendstring(&msg, val);
		pq_endmessage(&msg);
		if (conf->last_reported)
			free(conf->last_reported);
		/* NULL on OOM: the value is reported again next time, as in core */
		conf->last_reported = strdup(val);
	}
}

/*
 * Collects the settings of the startup packet, "options" switches first,
 * then name/value pairs, as core's process_startup_options orders them.
 * Raises ERROR on a switch the pool does not take.
 */
static void
collect_startup_options(PoolSession *s)
{
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	ListCell   *ln,
			   *lv;

	if (s->startup.options && s->startup.options[0])
	{
		char	  **av;
		int			maxac = 2 + (strlen(s->startup.options) + 1) / 2;
		int			ac = 0;
		int			i;

		av = palloc(maxac * sizeof(char *));
		av[ac++] = "postgres";
		pg_split_opts(av, &ac, s->startup.options);
		for (i = 1; i < ac; i++)
		{
			char	   *opt = av[i];
			char	   *name = NULL;
			char	   *value = NULL;

			if (strcmp(opt, "-c") == 0 && i + 1 < ac)
				opt = av[++i];
			else if (strncmp(opt, "-c", 2) == 0)
				opt += 2;
			else if (strncmp(opt, "--", 2) == 0)
				opt += 2;
			else
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("invalid command-line argument for server process: %s", av[i]),
						 errhint("Only -c name=value and --name=value options are supported on the pool port.")));
			ParseLongOption(opt, &name, &value);
			if (value == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("parameter \"%s\" requires a value", name)));
			s->option_names = lappend(s->option_names, name);
			s->option_values = lappend(s->option_values, value);
		}
	}
	forboth(ln, s->startup.guc_names, lv, s->startup.guc_values)
	{
		s->option_names = lappend(s->option_names, lfirst(ln));
		s->option_values = lappend(s->option_values, lfirst(lv));
	}
	MemoryContextSwitchTo(old);
}

/*
 * Applies the session's startup settings named name, or all of them when
 * name is NULL.  They are SESSION-sourced, so carried across switches like
 * a SET; since core would make them the reset values, RESET, RESET ALL and
 * DISCARD ALL call this again (pinning.c) to return to them.  elevel ERROR
 * at startup: a bad option ends the session, as core ends the connection.
 * Must run inside a transaction: privilege checks read the catalogs.
 */
void
bp_session_apply_startup(PoolSession *s, const char *name, int elevel)
{
	GucContext	ctx = superuser() ? PGC_SU_BACKEND : PGC_BACKEND;
	ListCell   *ln,
			   *lv;
	int			i = 0;

	forboth(ln, s->option_names, lv, s->option_values)
	{
		/*
		 * Role and database settings were checked when they were stored,
		 * and core applies them at SUSET level, warning on a bad one.
		 */
		bool		role_setting = i++ < s->n_role_settings;

		if (name == NULL || pg_strcasecmp(name, lfirst(ln)) == 0)
			(void) set_config_option(lfirst(ln), lfirst(lv),
									 role_setting ? PGC_SUSET : ctx, PGC_S_SESSION,
									 GUC_ACTION_SET, true,
									 role_setting ? WARNING : elevel, false);
	}
}

/*
 * utility_hook.c, before core: a SET or RESET by name makes a custom setting
 * the session's own; SHOW of another session's placeholder fails as on a
 * backend that never heard of it.
 */
void
bp_settings_utility_before(Node *stmt)
{
	if (IsA(stmt, VariableSetStmt) && ((VariableSetStmt *) stmt)->name != NULL)
		bp_setting_note_placeholder(((VariableSetStmt *) stmt)->name);
	if (IsA(stmt, VariableShowStmt) &&
		bp_setting_hidden(((VariableShowStmt *) stmt)->name))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unrecognized configuration parameter \"%s\"",
						((VariableShowStmt *) stmt)->name)));
}

/*
 * utility_hook.c, after core: RESET, RESET ALL, SET ... TO DEFAULT and DISCARD
 * ALL return to the session's startup values, which core would have made
 * the reset values (this executor applies them as SESSION values).
 */
void
bp_settings_utility_after(Node *stmt)
{
	if (IsA(stmt, VariableSetStmt))
	{
		VariableSetStmt *v = (VariableSetStmt *) stmt;

		if (v->is_local)
			return;
		if (v->kind == VAR_RESET_ALL)
			bp_session_apply_startup(bp_current, NULL, WARNING);
		else if (v->kind == VAR_RESET || v->kind == VAR_SET_DEFAULT)
			bp_session_apply_startup(bp_current, v->name, WARNING);
	}
	else if (IsA(stmt, DiscardStmt) && ((DiscardStmt *) stmt)->target == DISCARD_ALL)
		bp_session_apply_startup(bp_current, NULL, WARNING);
}

/* columns GetConfigOptionByNum() fills (guc.c keeps the count private) */
#define PG_SETTINGS_COLUMNS		17

/*
 * How pg_settings would show the startup value of setting name for session
 * s (its "setting" column: raw units, canonical form), or NULL if s gave
 * no such startup option.  The value is applied at a GUC nest level of its
 * own and rolled back, so nothing changes.  In a transaction; the result
 * is palloc'd in the current context.
 */
char *
bp_setting_startup_value(PoolSession *s, const char *name)
{
	struct config_generic **vars = get_guc_variables();
	struct config_generic **found;
	const char *value = NULL;
	const char *shown[PG_SETTINGS_COLUMNS];
	bool		noshow;
	char	   *result;
	ListCell   *ln,
			   *lv;
	int			i = 0;
	int			nest;

	forboth(ln, s->option_names, lv, s->option_values)
	{
		if (i++ >= s->n_role_settings && pg_strcasecmp(name, lfirst(ln)) == 0)
			value = lfirst(lv);
	}
	if (value == NULL)
		return NULL;
	found = bsearch(name, vars, GetNumConfigOptions(),
					sizeof(struct config_generic *), guc_entry_cmp);
	if (found == NULL)
		return NULL;

	nest = NewGUCNestLevel();
	(void) set_config_option(name, value, PGC_SU_BACKEND, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	GetConfigOptionByNum(found - vars, shown, &noshow);
	result = shown[1] ? pstrdup(shown[1]) : NULL;
	AtEOXact_GUC(false, nest);
	return result;
}

/*
 * The role and database settings as last read, with the login epoch read
 * before (greeting.c): every ALTER ROLE/DATABASE ... SET, DROP ROLE and
 * DROP DATABASE bumps it once committed, so while it is unchanged the
 * catalog holds what was read and a new session takes the list from here.
 * The executor's database and role never change; the lists live in
 * TopMemoryContext.
 */
static List *role_default_names = NIL;
static List *role_default_values = NIL;
static uint32 role_defaults_epoch = 0;
static bool role_defaults_valid = false;

/*
 * Appends to the cached role defaults the settings pg_db_role_setting
 * holds for (databaseid, roleid), as names and values.
 */
static void
collect_role_settings(Relation rel, Snapshot snapshot, Oid databaseid,
					  Oid roleid)
{
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(databaseid));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(roleid));
	scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true,
							  snapshot, 2, keys);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		datum = heap_getattr(tup, Anum_pg_db_role_setting_setconfig,
										 RelationGetDescr(rel), &isnull);
		Datum	   *items;
		int			n;
		int			i;

		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(datum), TEXTOID, -1, false,
						  TYPALIGN_INT, &items, NULL, &n);
		for (i = 0; i < n; i++)
		{
			char	   *name = NULL;
			char	   *value = NULL;
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			/* ParseLongOption mallocs both (guc.c): copied, then freed */
			ParseLongOption(TextDatumGetCString(items[i]), &name, &value);
			if (value)
			{
				role_default_names = lappend(role_default_names, pstrdup(name));
				role_default_values = lappend(role_default_values, pstrdup(value));
				free(value);
			}
			free(name);
			MemoryContextSwitchTo(old);
		}
	}
	systable_endscan(scan);
}

/*
 * The ALTER DATABASE / ROLE ... SET defaults as they are now, lowest
 * precedence first (global, database, role, role in database), ahead of the
 * client's options.  Core reads them once per backend as reset values; an
 * executor outlives many sessions, so each new session reads them and
 * keeps them as its own defaults: a later ALTER reaches new sessions and
 * leaves older ones alone, as in core.  Inside a transaction, unless
 * they were read under this epoch already (then nothing is read).
 */
static void
collect_role_defaults(PoolSession *s, uint32 epoch)
{
	MemoryContext old;
	ListCell   *ln,
			   *lv;

	if (!role_defaults_valid || epoch != role_defaults_epoch)
	{
		Oid			roleid = GetAuthenticatedUserId();
		Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
		Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(DbRoleSettingRelationId));

		list_free_deep(role_default_names);
		list_free_deep(role_default_values);
		role_default_names = role_default_values = NIL;
		role_defaults_valid = false;
		collect_role_settings(rel, snapshot, InvalidOid, InvalidOid);
		collect_role_settings(rel, snapshot, MyDatabaseId, InvalidOid);
		collect_role_settings(rel, snapshot, InvalidOid, roleid);
		collect_role_settings(rel, snapshot, MyDatabaseId, roleid);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
		role_defaults_epoch = epoch;
		role_defaults_valid = true;
	}

	old = MemoryContextSwitchTo(s->cxt);
	forboth(ln, role_default_names, lv, role_default_values)
	{
		s->option_names = lappend(s->option_names, pstrdup(lfirst(ln)));
		s->option_values = lappend(s->option_values, pstrdup(lfirst(lv)));
		s->n_role_settings++;
	}
	MemoryContextSwitchTo(old);
}

/* First application of the startup settings; see above */
void
bp_session_apply_startup_options(PoolSession *s)
{
	if (s->option_names == NIL)
	{
		collect_role_defaults(s, bp_greeting_epoch());
		collect_startup_options(s);
	}
	bp_session_apply_startup(s, NULL, ERROR);
}

/*
 * Sessions of one pool mostly start with the same options (a driver's
 * application_name, client_encoding, DateStyle...).  An executor remembers
 * what the options of its last few new sessions came to (the settings
 * save_settings() recorded at the greeting), so that the next session with
 * the same options and defaults starts with those settings, switched in
 * like any session: with no transaction at all when the process already
 * holds them.  Only settings whose checks read no catalog and need no
 * privilege are remembered, so applying them again would give the same.
 */
typedef struct StartupMemo
{
	bool		in_use;
	uint32		epoch;			/* bp_greeting_epoch() of the defaults */
	List	   *option_names;	/* the session's option_names... */
	List	   *option_values;
	List	   *guc_names;		/* ... came to these */
	List	   *guc_values;
} StartupMemo;

#define BP_STARTUP_MEMOS	4

static StartupMemo startup_memos[BP_STARTUP_MEMOS];
static int	next_memo = 0;

static const char *const plain_settings[] = {
	"application_name", "bytea_output", "client_encoding",
	"client_min_messages", "DateStyle", "extra_float_digits",
	"idle_in_transaction_session_timeout", "IntervalStyle", "lock_timeout",
	"search_path", "standard_conforming_strings", "statement_timeout",
	"TimeZone"
};

static bool
all_plain_settings(List *names)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		int			i;

		for (i = 0; i < lengthof(plain_settings); i++)
			if (pg_strcasecmp(lfirst(lc), plain_settings[i]) == 0)
				break;
		if (i == lengthof(plain_settings))
			return false;
	}
	return true;
}

static bool
string_lists_equal(List *a, List *b)
{
	ListCell   *la,
			   *lb;

	if (list_length(a) != list_length(b))
		return false;
	forboth(la, a, lb, b)
	{
		if (strcmp(lfirst(la), lfirst(lb)) != 0)
			return false;
	}
	return true;
}

static List *
copy_strings(List *l)
{
	List	   *copy = NIL;
	ListCell   *lc;

	foreach(lc, l)
		copy = lappend(copy, pstrdup(lfirst(lc)));
	return copy;
}

/*
 * Collects s's options and, if an earlier session with the same ones was
 * remembered under this epoch, gives s the settings they came to.  Returns
 * true if so: s needs no bp_session_apply_startup_options().  Outside a
 * transaction: only the epoch's defaults, already read, are used.  Not for
 * a client that sent "options" switches, whose parsing may fail: the error
 * must come once the session is switched in, to reach its client.
 */
bool
bp_session_startup_from_memo(PoolSession *s, uint32 epoch)
{
	MemoryContext old;
	int			i;

	if (!role_defaults_valid || role_defaults_epoch != epoch ||
		(s->startup.options && s->startup.options[0]))
		return false;
	collect_role_defaults(s, epoch);
	collect_startup_options(s);
	for (i = 0; i < BP_STARTUP_MEMOS; i++)
	{
		StartupMemo *m = &startup_memos[i];

		if (m->in_use && m->epoch == epoch &&
			string_lists_equal(m->option_names, s->option_names) &&
			string_lists_equal(m->option_values, s->option_values))
			break;
	}
	if (i == BP_STARTUP_MEMOS)
		return false;
	old = MemoryContextSwitchTo(s->guc_cxt);
	s->guc_names = copy_strings(startup_memos[i].guc_names);
	s->guc_values = copy_strings(startup_memos[i].guc_values);
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * After a session's greeting (switched out, its options applied without
 * error): remembers what its options came to, if they are all plain.
 */
void
bp_session_remember_startup(PoolSession *s, uint32 epoch)
{
	StartupMemo *m = &startup_memos[next_memo];
	MemoryContext old;

	if (!all_plain_settings(s->option_names) || !all_plain_settings(s->guc_names))
		return;
	next_memo = (next_memo + 1) % BP_STARTUP_MEMOS;
	list_free_deep(m->option_names);
	list_free_deep(m->option_values);
	list_free_deep(m->guc_names);
	list_free_deep(m->guc_values);
	old = MemoryContextSwitchTo(TopMemoryContext);
	m->in_use = true;
	m->epoch = epoch;
	m->option_names = copy_strings(s->option_names);
	m->option_values = copy_strings(s->option_values);
	m->guc_names = copy_strings(s->guc_names);
	m->guc_values = copy_strings(s->guc_values);
	MemoryContextSwitchTo(old);
}

/* ---------------------------------------------------------------------
 * Switching
 * ---------------------------------------------------------------------
 */

/*
 * pg_stat_activity's client_addr, client_hostname, client_port and
 * backend_start of the executor are those of the session it serves, as a
 * backend's are its client's and its own start (application_name follows
 * the session's setting by itself).  Written only when they change.
 */
static void
report_client(PoolSession *s)
{
	volatile PgBackendStatus *beentry = MyBEEntry;
	const char *host = s->port->remote_hostname ? s->port->remote_hostname : "";

	if (beentry == NULL ||
		(memcmp((const void *) &beentry->st_clientaddr, &s->port->raddr,
				sizeof(SockAddr)) == 0 &&
		 strcmp((const char *) beentry->st_clienthostname, host) == 0 &&
		 beentry->st_proc_start_timestamp == s->started_at))
		return;
	PGSTAT_BEGIN_WRITE_ACTIVITY(beentry);
	memcpy((void *) &beentry->st_clientaddr, &s->port->raddr, sizeof(SockAddr));
	strlcpy((char *) beentry->st_clienthostname, host, NAMEDATALEN);
	beentry->st_proc_start_timestamp = s->started_at;
	PGSTAT_END_WRITE_ACTIVITY(beentry);
}

/*
 * Makes s the current session.  Settings are restored inside a short
 * transaction; a setting that no longer applies is logged, not fatal.
 * If the identity after the restore is not the one the session left with,
 * the session is closed rather than run as someone else.
 */
void
bp_session_switch_in(PoolSession *s)
{
	static uint32 last_session_in = 0;

	Assert(bp_current == NULL);

	/*
	 * currval() and lastval() read per-process caches: another session
	 * must not see them.  They are dropped when a different session comes
	 * in; sequences.c answers from the session's own record.
	 */
	if (s->id != last_session_in)
	{
		ResetSequenceCaches();
		last_session_in = s->id;
	}

	if (!settings_match(s))
	{
		bp_switching = true;
		StartTransactionCommand();
		restore_settings(s);
		CommitTransactionCommand();
		bp_switching = false;
	}
	swap_last_reported(s);

	MyProcPort = s->port;
	FeBeWaitSet = s->wes;
	whereToSendOutput = s->dead ? DestNone : DestRemote;
	MyStartTime = s->log_id;
	report_client(s);
	bp_current = s;
	s->state = PS_RUNNING;
	QueryCancelPending = false;

	if (s->greeted &&
		(GetSessionUserId() != s->session_userid ||
		 GetUserId() != s->current_userid))
	{
		bp_session_send_fatal(ERRCODE_INTERNAL_ERROR,
							  "could not restore the session's role after a pool switch");
		s->closing = true;
	}
}

/*
 * Leaves the current session: records its settings and identity.  Its GUC
 * values stay in force until the next switch-in resets them.
 */
void
bp_session_switch_out(void)
{
	PoolSession *s = bp_current;

	Assert(s != NULL);
	save_settings(s);
	s->session_userid = GetSessionUserId();
	s->current_userid = GetUserId();
	swap_last_reported(s);

	whereToSendOutput = DestNone;
	MyProcPort = NULL;
	MyStartTime = executor_start_time;
	FeBeWaitSet = NULL;
	bp_current = NULL;
	s->state = PS_IDLE;
}

/* ---------------------------------------------------------------------
 * Moving a session to another executor
 * ---------------------------------------------------------------------
 */

/*
 * Writes what a switched-out session needs on another executor: its
 * settings, what its client was last told of each reported setting, its
 * identity, and its statements (source and parameter types; plans are made
 * again there).  The startup packet travels beside it.  Returns false if
 * the state would exceed max_len: such a session stays where it is.
 */
bool
bp_session_serialize(PoolSession *s, StringInfo buf, int max_len)
{
	ListCell   *ln,
			   *lv;
	int			i;

	Assert(bp_current != s);
	bp_put_int32(buf, list_length(s->guc_names));
	forboth(ln, s->guc_names, lv, s->guc_values)
	{
		bp_put_string(buf, lfirst(ln));
		bp_put_string(buf, lfirst(lv));
	}

	bp_put_int32(buf, n_report_vars);
	for (i = 0; i < n_report_vars; i++)
	{
		bp_put_string(buf, report_vars[i]->name);
		appendStringInfoChar(buf, s->last_reported[i] ? 1 : 0);
		if (s->last_reported[i])
			bp_put_string(buf, s->last_reported[i]);
	}

	bp_put_int32(buf, (int32) (s->started_at >> 32));
	bp_put_int32(buf, (int32) (s->started_at & 0xffffffff));
	bp_put_int32(buf, (int32) s->session_userid);
	bp_put_int32(buf, (int32) s->current_userid);

	/* its defaults (role settings as they were at its start, options) */
	bp_put_int32(buf, s->n_role_settings);
	bp_put_int32(buf, list_length(s->option_names));
	forboth(ln, s->option_names, lv, s->option_values)
	{
		bp_put_string(buf, lfirst(ln));
		bp_put_string(buf, lfirst(lv));
	}

	bp_statements_serialize(s, buf);

	bp_put_int32(buf, list_length(s->own_placeholders));
	foreach(ln, s->own_placeholders)
		bp_put_string(buf, lfirst(ln));

	bp_pinning_serialize(s, buf);
	bp_sequences_serialize(s, buf);
	return buf->len <= max_len;
}

/*
 * Reads bp_session_serialize's output into a new session s (created by
 * bp_session_create, not yet switched in).  Statements are only recorded:
 * the executor prepares them again once the session is switched in.
 */
void
bp_session_restore(PoolSession *s, const char *data, int len)
{
	StringInfoData in;
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	int			n;
	int			i;

	in.data = unconstify(char *, data);
	in.len = len;
	in.maxlen = len;
	in.cursor = 0;

	MemoryContextSwitchTo(s->guc_cxt);
	n = bp_get_int32(&in);
	for (i = 0; i < n; i++)
	{
		s->guc_names = lappend(s->guc_names, pstrdup(bp_get_string(&in)));
		s->guc_values = lappend(s->guc_values, pstrdup(bp_get_string(&in)));
	}
	MemoryContextSwitchTo(s->cxt);

	n = bp_get_int32(&in);
	for (i = 0; i < n; i++)
	{
		const char *name = bp_get_string(&in);
		const char *value = pq_getmsgbyte(&in) ? bp_get_string(&in) : NULL;
		int			j;

		for (j = 0; j < n_report_vars && value; j++)
		{
			if (strcmp(report_vars[j]->name, name) == 0)
				s->last_reported[j] = strdup(value);
		}
	}

	{
		uint32		hi = (uint32) bp_get_int32(&in);

		s->started_at = (TimestampTz) (((uint64) hi << 32) |
									   (uint32) bp_get_int32(&in));
	}
	s->session_userid = (Oid) bp_get_int32(&in);
	s->current_userid = (Oid) bp_get_int32(&in);

	s->n_role_settings = bp_get_int32(&in);
	n = bp_get_int32(&in);
	for (i = 0; i < n; i++)
	{
		s->option_names = lappend(s->option_names, pstrdup(bp_get_string(&in)));
		s->option_values = lappend(s->option_values, pstrdup(bp_get_string(&in)));
	}

	bp_statements_restore(s, &in);

	n = bp_get_int32(&in);
	for (i = 0; i < n; i++)
		s->own_placeholders = lappend(s->own_placeholders,
									  pstrdup(bp_get_string(&in)));

	bp_pinning_restore(s, &in);
	bp_sequences_restore(s, &in);
	s->greeted = true;
	MemoryContextSwitchTo(old);
}
