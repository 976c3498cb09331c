/*-------------------------------------------------------------------------
 *
 * mainport.c
 *	  Pooling the server's own port: builtin_pool.session_pool_ports = 0.
 *
 * The postmaster keeps accepting on its port and forks a backend per
 * client, which authenticates it exactly as core does (every pg_hba.conf
 * method works).  Then, from the ClientAuthentication_hook, before
 * AuthenticationOk, the backend hands the client to the pool listener: its
 * socket (SCM_RIGHTS) and its startup data, as one datagram on a channel
 * the postmaster created in _PG_init and every child inherited; and it
 * exits quietly, sending nothing, freeing its slot.  The listener makes the
 * client an admitted one (client.c: core's checks after authentication,
 * the pool, an executor), so the executor greets it as any pool client.
 * A client that is not to be pooled stays with its backend, which goes on
 * as core's (see bp_mainport_client_auth for which).
 *
 * Cancel: a pooled session's BackendKeyData names its executor and the
 * session's own key, and the client sends its CancelRequest to the main
 * port.  The postmaster's child reading it finds no process with that pid
 * and key and logs so; core offers no hook there, so the emit_log_hook
 * catches that message in that child and looks for the request's key where
 * the child read it (see find_cancel_key), then passes pid and key to the
 * listener on the same channel, which forwards them as any pool port
 * CancelRequest: only a live session with that very key is cancelled.
 *
 * Everything here is a tree: this file calls client.c (the listener's
 * half), never the other way round.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "catalog/pg_authid.h"
#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "builtin_pool.h"
#include "channel.h"
#include "listener.h"
#include "mainport.h"
#include "pool_io.h"
#include "pool_shmem.h"

/*
 * The channel: a SOCK_SEQPACKET pair, so each datagram (one client, or one
 * cancel) arrives whole and alone although every backend writes to the same
 * end.  Only the postmaster's children inherit it, which is what
 * authenticates a sender.  -1 when the main port is not pooled.
 */
static int	main_send_fd = -1;
static int	main_recv_fd = -1;

/* How long a backend waits for room on a full channel before serving the
 * client itself */
#define BP_MAIN_SEND_WAIT_MS	2000

/* Datagrams read per readiness event, so that clients cannot starve the
 * listener's other work */
#define BP_MAIN_RECV_BATCH		64

/* Largest datagram: a client's startup pairs, bounded as core bounds them */
#define BP_MAIN_MAX		(sizeof(PoolMainClient) + MAX_STARTUP_PACKET_LENGTH)

/* See mainport.h */
void
bp_mainport_create(void)
{
	int			sv[2];
	int			size = 1024 * 1024;

	if (!bp_main_port_pooled())
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		ereport(FATAL,
				(errcode_for_socket_access(),
				 errmsg("builtin_pool could not create the main port channel: %m")));
	/* the kernel caps these; a larger buffer only means fewer waits */
	(void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	(void) setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	main_send_fd = sv[0];
	main_recv_fd = sv[1];
}

/*
 * See mainport.h.  Whoever holds the sending end can hand the listener a
 * client as authenticated, so every process that will run queries closes
 * both ends: a dedicated backend once it knows it is one, executors at
 * start.  Only postmaster children ever held them.
 */
void
bp_mainport_forget(void)
{
	if (main_send_fd >= 0)
		close(main_send_fd);
	if (main_recv_fd >= 0)
		close(main_recv_fd);
	main_send_fd = main_recv_fd = -1;
}

/* ---------------------------------------------------------------------
 * The backend's half
 * ---------------------------------------------------------------------
 */

/*
 * The startup pairs core kept of the client's packet: user, database,
 * options and the settings (application_name among them), in core's
 * forms (names truncated, the database defaulted).  Allocated in the
 * current context.
 */
static void
startup_pairs(Port *port, StringInfo buf)
{
	ListCell   *lc;

	appendBinaryStringInfo(buf, "user", 5);
	appendBinaryStringInfo(buf, port->user_name, strlen(port->user_name) + 1);
	appendBinaryStringInfo(buf, "database", 9);
	appendBinaryStringInfo(buf, port->database_name,
						   strlen(port->database_name) + 1);
	if (port->cmdline_options && port->cmdline_options[0])
	{
		appendBinaryStringInfo(buf, "options", 8);
		appendBinaryStringInfo(buf, port->cmdline_options,
							   strlen(port->cmdline_options) + 1);
	}
	foreach(lc, port->guc_options)
	{
		const char *s = lfirst(lc);

		appendBinaryStringInfo(buf, s, strlen(s) + 1);
	}
	appendStringInfoChar(buf, '\0');
}

/* The bootstrap superuser keeps a backend: the DBA's way in (and the
 * smart shutdown guard's) even when the pool is saturated */
static bool
is_bootstrap_superuser(const char *user)
{
	HeapTuple	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(user));
	bool		result = false;

	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_authid) GETSTRUCT(tup))->oid == BOOTSTRAP_SUPERUSERID;
		ReleaseSysCache(tup);
	}
	return result;
}

/* Whether this backend's authenticated client goes to the pool */
static bool
client_is_pooled(Port *port)
{
	if (main_send_fd < 0 || am_walsender || Db_user_namespace)
		return false;
	if (port->ssl_in_use)
		return false;			/* an OpenSSL session cannot move */
#ifdef ENABLE_GSS
	if (be_gssapi_get_enc(port))
		return false;			/* nor a GSS one */
#endif
	if (pq_buffer_has_data())
		return false;			/* the client sent ahead: it is in our buffer */
	if (pg_atomic_read_u32(&bp_shared->mainport_listener) == 0)
		return false;			/* no listener (yet): serve it here */
	if (bp_database_is_dedicated(port->database_name))
		return false;
	return !is_bootstrap_superuser(port->user_name);
}

/*
 * Sends one datagram, waiting at most BP_MAIN_SEND_WAIT_MS for room (the
 * listener drains the channel every loop).  true if it went.
 */
static bool
send_bounded(const void *msg, size_t len, const int *fds, int nfds)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   BP_MAIN_SEND_WAIT_MS);

	for (;;)
	{
		struct pollfd pfd;
		long		left;

		if (bp_channel_send(main_send_fd, msg, len, fds, nfds) == (ssize_t) len)
			return true;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			errno != ENOBUFS)
			return false;
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left <= 0)
			return false;
		pfd.fd = main_send_fd;
		pfd.events = POLLOUT;
		(void) poll(&pfd, 1, Min(left, 100));
		CHECK_FOR_INTERRUPTS();
	}
}

/* See mainport.h */
void
bp_mainport_client_auth(Port *port, int status)
{
	StringInfoData buf;
	PoolMainClient h;
	int			fd = port->sock;

	if (status != STATUS_OK)
		return;
	if (!client_is_pooled(port))
	{
		bp_mainport_forget();
		return;
	}

	initStringInfo(&buf);
	memset(&h, 0, sizeof(h));
	h.magic = BP_MAIN_CLIENT_MAGIC;
	h.proto = port->proto;
	appendBinaryStringInfo(&buf, (char *) &h, sizeof(h));
	startup_pairs(port, &buf);
	if (buf.len > (int) BP_MAIN_MAX)
		return;					/* cannot happen: core bounds the packet */
	((PoolMainClient *) buf.data)->startup_len = buf.len - sizeof(h);
	if (!send_bounded(buf.data, buf.len, &fd, 1))
	{
		ereport(LOG,
				(errcode_for_socket_access(),
				 errmsg("builtin_pool could not hand a main port client to the pool listener, serving it with its own backend: %m")));
		pfree(buf.data);
		bp_mainport_forget();
		return;
	}

	/*
	 * The client is the pool's now: nothing more may reach it from here,
	 * not even an error while this process exits.
	 */
	whereToSendOutput = DestNone;
	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * Cancel requests to the main port
 * ---------------------------------------------------------------------
 */

/*
 * Searches [start, end) for the cancel packet of pid; *key gets its key.
 * Returns how many copies with a key other than *key's first were seen,
 * plus one for the first (0: none).
 */
static int
scan_region(const char *start, const char *end, uint32 pid, uint32 *key,
			int found)
{
	uint32		pat[2];
	const char *p = start;

	pat[0] = pg_hton32(CANCEL_REQUEST_CODE);
	pat[1] = pg_hton32(pid);
	while (p + 12 <= end &&
		   (p = memmem(p, end - p - 4, pat, sizeof(pat))) != NULL)
	{
		uint32		k;

		memcpy(&k, p + 8, 4);
		k = pg_ntoh32(k);
		if (found == 0)
			*key = k;
		else if (k != *key)
			return -1;			/* two different keys: trust neither */
		found++;
		p += 4;
	}
	return found;
}

/*
 * The key of the CancelRequest for pid this process just read.  Core read
 * the 16-byte packet into its receive buffer (pqcomm.c, in the executable's
 * data) and copied it into a palloc'd buffer (the heap); neither is
 * reachable through an API, so their mappings are searched for the packet's
 * fixed code followed by pid.  This runs only in the child the postmaster
 * forked for this one request, whose memory holds nothing else a client
 * sent.  The key found is only a claim: the listener checks it against
 * the live sessions' keys, as for any CancelRequest.  false if no copy, or
 * copies that disagree, were found.
 */
static bool
find_cancel_key(uint32 pid, uint32 *key)
{
	FILE	   *maps = fopen("/proc/self/maps", "r");	/* never throws */
	char		exe[MAXPGPATH];
	char		line[MAXPGPATH + 128];
	bool		after_exe = false;
	int			found = 0;
	ssize_t		n;

	if (maps == NULL)
		return false;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	while (found >= 0 && fgets(line, sizeof(line), maps) != NULL)
	{
		unsigned long lo,
					hi;
		char		perms[5];
		char		path[MAXPGPATH];
		bool		scan;

		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %1023s", &lo, &hi, perms,
				   path) < 3)
			continue;
		/* the executable's data, the anonymous bss after it, the heap */
		scan = perms[0] == 'r' && perms[1] == 'w' &&
			((exe[0] && strcmp(path, exe) == 0) ||
			 (after_exe && path[0] == '\0') ||
			 strcmp(path, "[heap]") == 0);
		after_exe = exe[0] && strcmp(path, exe) == 0;
		if (scan && hi - lo <= 1024L * 1024 * 1024)
			found = scan_region((const char *) lo, (const char *) hi, pid, key,
								found);
	}
	fclose(maps);
	return found > 0;
}

/* The pid a core cancel message names; its only number */
static bool
message_pid(const char *msg, uint32 *pid)
{
	while (*msg && !(*msg >= '0' && *msg <= '9'))
		msg++;
	if (!*msg)
		return false;
	*pid = (uint32) strtoul(msg, NULL, 10);
	return *pid > 0;
}

/* See mainport.h: acts only on core's two cancel messages, in a backend */
void
bp_mainport_log_hook(ErrorData *edata)
{
	PoolMainCancel m;
	uint32		pid;

	if (edata->elevel != LOG || main_send_fd < 0 || MyProcPort == NULL ||
		IsBackgroundWorker || edata->message_id == NULL ||
		(strcmp(edata->message_id, "wrong key in cancel request for process %d") != 0 &&
		 strcmp(edata->message_id, "PID %d in cancel request did not match any process") != 0))
		return;
	if (!message_pid(edata->message, &pid) || !find_cancel_key(pid, &m.key))
		return;
	m.magic = BP_MAIN_CANCEL_MAGIC;
	m.pid = (int32) pid;
	(void) bp_channel_send(main_send_fd, &m, sizeof(m), NULL, 0);
}

/* ---------------------------------------------------------------------
 * The listener's half
 * ---------------------------------------------------------------------
 */

static PoolIo main_io;
static char *main_buf;

/* One datagram from a backend */
static void
main_message(char *buf, ssize_t n, int *fds)
{
	uint32		magic;

	if (n < (ssize_t) sizeof(uint32))
	{
		bp_channel_close_fds(fds);
		return;
	}
	memcpy(&magic, buf, sizeof(magic));
	if (magic == BP_MAIN_CANCEL_MAGIC && n == sizeof(PoolMainCancel) && fds[0] < 0)
	{
		PoolMainCancel m;

		memcpy(&m, buf, sizeof(m));
		conn_forward_cancel((pid_t) m.pid, m.key, "[main port]");
		return;
	}
	if (magic == BP_MAIN_CLIENT_MAGIC && n >= (ssize_t) sizeof(PoolMainClient) &&
		fds[0] >= 0 && fds[1] < 0)
	{
		PoolMainClient h;

		memcpy(&h, buf, sizeof(h));
		if (h.startup_len == n - (ssize_t) sizeof(h))
		{
			conn_adopt_main(fds[0], h.proto, buf + sizeof(h), h.startup_len);
			return;
		}
	}
	ereport(LOG,
			(errmsg("builtin_pool dropped a malformed message on the main port channel")));
	bp_channel_close_fds(fds);
}

/* pool_io handler of the channel's receiving end */
static void
main_ready(PoolIo *io, bool readable, bool writable)
{
	int			i;

	for (i = 0; readable && i < BP_MAIN_RECV_BATCH; i++)
	{
		int			fds[BP_CHANNEL_MAX_FDS];
		ssize_t		n = bp_channel_recv(main_recv_fd, main_buf, BP_MAIN_MAX, fds);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPROTO)
			continue;			/* truncated: dropped, fds closed */
		if (n <= 0)
			return;				/* drained */
		main_message(main_buf, n, fds);
	}
	/* more may be queued: pool_io reports it ready again */
}

/* Clears the listener's mark so that backends stop handing clients over */
static void
main_unlisten(int code, Datum arg)
{
	pg_atomic_write_u32(&bp_shared->mainport_listener, 0);
}

/* See mainport.h */
void
bp_mainport_listen(void)
{
	if (main_recv_fd < 0)
		return;
	main_buf = MemoryContextAlloc(TopMemoryContext, BP_MAIN_MAX);
	memset(&main_io, 0, sizeof(main_io));
	main_io.fd = main_recv_fd;
	main_io.handler = main_ready;
	bp_io_register(&main_io);
	main_io.want = BP_EV_READ;
	bp_io_update(&main_io);
	before_shmem_exit(main_unlisten, 0);
	pg_atomic_write_u32(&bp_shared->mainport_listener, MyProcPid);
}
