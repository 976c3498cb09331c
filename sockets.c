/*-------------------------------------------------------------------------
 *
 * sockets.c
 *	  The pool's listening sockets: created once by the postmaster, kept
 *	  until the server stops, inherited by every listener incarnation.
 *
 * A listener that created its own sockets had to remove its Unix socket
 * file when it exited, and its successor had to bind the path again: in
 * between, in a world-writable directory such as /tmp, any local user
 * could bind the path and receive clients' passwords.  So the postmaster
 * creates the sockets, in _PG_init, before it opens its own ports: every
 * process it forks inherits them, a restarted listener simply accepts on
 * them again (clients wait in the backlog meanwhile), and the socket file
 * never disappears while the server runs.  Each Unix socket is guarded, as
 * core's are (miscinit.c), by a lock file ".s.PGSQL.<port>.lock" holding
 * the postmaster's pid: another server cannot take a live path, and a file
 * left by a crashed server is recognised as stale and replaced.  Both files
 * are removed when the postmaster exits.
 *
 * A socket the postmaster could not open (address in use, directory
 * missing, another server's lock) is logged and retried by the listener
 * every BP_SOCKET_RETRY_MS, each failure logged; a socket opened that way
 * belongs to that listener only, so a later listener opens it again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utime.h>

#include "builtin_pool.h"
#include "common/ip.h"
#include "libpq/pqcomm.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "pool_io.h"
#include "sockets.h"

#define BP_LISTEN_BACKLOG	4096	/* pgbench opens 1000 clients at once */
#define BP_SOCKET_RETRY_MS	10000
#define BP_TOUCH_MS			(58 * 60 * 1000)	/* as core's TouchSocketFiles */

typedef struct PoolSocket
{
	int			fd;				/* listening socket, -1 while missing */
	bool		in_loop;		/* given to this listener's io loop */
	int			port_index;
	bool		is_unix;
	int			family;
	struct sockaddr_storage addr;
	socklen_t	addrlen;
	char	   *desc;			/* for messages */
	char	   *path;			/* Unix socket file, NULL for TCP/abstract */
	char	   *lock_path;		/* its lock file */
} PoolSocket;

/* In TopMemoryContext of the postmaster, so every child has a copy */
static PoolSocket *sockets = NULL;
static int	n_sockets = 0;

static void
plan_socket(int port_index, bool is_unix, struct addrinfo *ai,
			const char *desc, const char *path)
{
	PoolSocket *s;

	if (sockets == NULL)
		sockets = MemoryContextAlloc(TopMemoryContext, sizeof(PoolSocket));
	else
		sockets = repalloc(sockets, (n_sockets + 1) * sizeof(PoolSocket));
	s = &sockets[n_sockets++];
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->port_index = port_index;
	s->is_unix = is_unix;
	s->family = ai->ai_family;
	memcpy(&s->addr, ai->ai_addr, Min(ai->ai_addrlen, sizeof(s->addr)));
	s->addrlen = ai->ai_addrlen;
	s->desc = MemoryContextStrdup(TopMemoryContext, desc);
	if (path != NULL && path[0] != '@')
	{
		s->path = MemoryContextStrdup(TopMemoryContext, path);
		s->lock_path = MemoryContextAlloc(TopMemoryContext, strlen(path) + 6);
		sprintf(s->lock_path, "%s.lock", path);
	}
}

/* The entries of a list setting (core checked it already); NIL if none */
static List *
split_setting(const char *name, const char *value, bool directories)
{
	char	   *raw = pstrdup(value ? value : "");
	List	   *items = NIL;
	bool		ok;

	ok = directories ? SplitDirectoriesString(raw, ',', &items) :
		SplitGUCList(raw, ',', &items);
	if (!ok)
	{
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"%s\"", name)));
		return NIL;
	}
	return items;
}

/* The TCP addresses of one pool port, on every listen_addresses entry */
static void
plan_tcp_port(int port_index)
{
	int			port = bp_port + port_index;
	List	   *hosts = split_setting("listen_addresses", ListenAddresses, false);
	ListCell   *lc;

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

			if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
				continue;
			pg_getnameinfo_all((struct sockaddr_storage *) ai->ai_addr,
							   ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
							   NI_NUMERICHOST);
			snprintf(desc, sizeof(desc), "%s address \"%s\", port %d",
					 ai->ai_family == AF_INET ? "IPv4" : "IPv6", addr, port);
			plan_socket(port_index, false, ai, desc, NULL);
		}
		pg_freeaddrinfo_all(hint.ai_family, addrs);
	}
}

/* The Unix socket of one pool port in every socket directory */
static void
plan_unix_port(int port_index)
{
	int			port = bp_port + port_index;
	List	   *dirs = split_setting("unix_socket_directories",
									 Unix_socket_directories, true);
	ListCell   *lc;

	foreach(lc, dirs)
	{
		char		path[MAXPGPATH];
		char		desc[MAXPGPATH + 32];
		struct addrinfo hint,
				   *addrs = NULL;

		UNIXSOCK_PATH(path, port, (char *) lfirst(lc));
		if (strlen(path) >= UNIXSOCK_PATH_BUFLEN)
		{
			ereport(LOG,
					(errmsg("Unix-domain socket path \"%s\" is too long (maximum %d bytes)",
							path, (int) (UNIXSOCK_PATH_BUFLEN - 1))));
			continue;
		}
		memset(&hint, 0, sizeof(hint));
		hint.ai_family = AF_UNIX;
		hint.ai_socktype = SOCK_STREAM;
		if (pg_getaddrinfo_all(NULL, path, &hint, &addrs) != 0 || addrs == NULL)
			continue;
		snprintf(desc, sizeof(desc), "Unix socket \"%s\"", path);
		plan_socket(port_index, true, addrs, desc, path);
		pg_freeaddrinfo_all(hint.ai_family, addrs);
	}
}

/* The pid a lock file names, 0 if it names none */
static pid_t
lock_file_pid(const char *lock_path)
{
	char		buf[64];
	int			fd = open(lock_path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t		n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t) atol(buf);
}

/*
 * Takes the lock file of s for this server: creates it holding the
 * postmaster's pid, or finds it already ours, or replaces one whose
 * server is gone.  false (logged) if a live process holds it.
 */
static bool
lock_socket_path(PoolSocket *s)
{
	int			tries;

	for (tries = 0; tries < 10; tries++)
	{
		char		buf[MAXPGPATH + 64];
		int			fd;
		int			len;
		pid_t		pid;

		fd = open(s->lock_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
		{
			len = snprintf(buf, sizeof(buf), "%d\n%s\n", (int) PostmasterPid,
						   DataDir);
			if (write(fd, buf, len) != len || fsync(fd) != 0)
			{
				int			save_errno = errno ? errno : ENOSPC;

				close(fd);
				(void) unlink(s->lock_path);
				errno = save_errno;
				ereport(LOG,
						(errcode_for_file_access(),
						 errmsg("could not write lock file \"%s\": %m", s->lock_path)));
				return false;
			}
			close(fd);
			return true;
		}
		if (errno != EEXIST)
		{
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not create lock file \"%s\": %m", s->lock_path)));
			return false;
		}
		pid = lock_file_pid(s->lock_path);
		if (pid == PostmasterPid)
			return true;		/* ours: a listener before us took it */
		if (pid > 0 && pid != getpid() &&
			(kill(pid, 0) == 0 || errno == EPERM))
		{
			ereport(LOG,
					(errcode(ERRCODE_LOCK_FILE_EXISTS),
					 errmsg("lock file \"%s\" already exists", s->lock_path),
					 errhint("Is another server (PID %d) using socket file \"%s\"?  Change builtin_pool.port or unix_socket_directories.",
							 (int) pid, s->path)));
			return false;
		}
		/* left by a server that is gone (or empty, half written): replace it */
		if (unlink(s->lock_path) < 0 && errno != ENOENT)
		{
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not remove old lock file \"%s\": %m", s->lock_path)));
			return false;
		}
	}
	ereport(LOG,
			(errcode(ERRCODE_LOCK_FILE_EXISTS),
			 errmsg("could not create lock file \"%s\"", s->lock_path)));
	return false;
}

/*
 * Opens s: takes its lock file (Unix), removes a stale socket file the
 * lock shows to be ours, then socket, bind, permissions, listen.  A Unix
 * socket gets core's unix_socket_group/permissions before listen(), so no
 * client gets in while the mode is wrong.  false, logged, on failure.
 */
static bool
open_socket(PoolSocket *s)
{
	int			fd;
	int			one = 1;
	int			save_errno;
	int			port = bp_port + s->port_index;

	if (s->path != NULL)
	{
		if (!lock_socket_path(s))
			return false;
		/* the lock is ours: a file there is a dead socket of this server's */
		(void) unlink(s->path);
	}

	fd = socket(s->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (s->family != AF_UNIX &&
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (s->family == AF_INET6 &&
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *) &s->addr, s->addrlen) < 0)
		goto fail;
	if (s->path != NULL)
	{
		if (Unix_socket_group[0] != '\0')
		{
			char	   *end;
			unsigned long gid = strtoul(Unix_socket_group, &end, 10);
			struct group *gr = *end ? getgrnam(Unix_socket_group) : NULL;

			if (*end && gr == NULL)
			{
				ereport(LOG,
						(errmsg("group \"%s\" does not exist", Unix_socket_group)));
				close(fd);
				return false;
			}
			if (gr)
				gid = gr->gr_gid;
			if (chown(s->path, -1, (gid_t) gid) < 0)
				goto fail;
		}
		if (chmod(s->path, Unix_socket_permissions) < 0)
			goto fail;
	}
	if (listen(fd, BP_LISTEN_BACKLOG) < 0)
		goto fail;
	s->fd = fd;
	ereport(LOG, (errmsg("builtin_pool listening on %s", s->desc)));
	return true;

fail:
	save_errno = errno;
	if (fd >= 0)
		close(fd);
	errno = save_errno;
	ereport(LOG,
			(errcode_for_socket_access(),
			 errmsg("builtin_pool could not listen on %s: %m", s->desc),
			 save_errno == EADDRINUSE ?
			 errhint("Is another server using port %d?  Change builtin_pool.port.",
					 port) : 0,
			 errdetail("The pool listener tries again every %d seconds.",
					   BP_SOCKET_RETRY_MS / 1000)));
	return false;
}

/*
 * on_proc_exit of the postmaster: the server stops, its pool sockets go.
 * Only files whose lock names this postmaster: never another server's.
 */
static void
remove_socket_files(int code, Datum arg)
{
	int			i;

	for (i = 0; i < n_sockets; i++)
	{
		PoolSocket *s = &sockets[i];

		if (s->path == NULL || lock_file_pid(s->lock_path) != PostmasterPid)
			continue;
		if (s->fd >= 0)
			close(s->fd);
		(void) unlink(s->path);
		(void) unlink(s->lock_path);
	}
}

void
bp_sockets_create(void)
{
	int			i;

	for (i = 0; i < bp_session_pool_ports; i++)
	{
		plan_tcp_port(i);
		plan_unix_port(i);
	}
	on_proc_exit(remove_socket_files, 0);
	for (i = 0; i < n_sockets; i++)
		(void) open_socket(&sockets[i]);
}

int
bp_sockets_adopt(void)
{
	int			opened = 0;
	int			i;

	for (i = 0; i < n_sockets; i++)
	{
		PoolSocket *s = &sockets[i];

		if (s->fd < 0 && !open_socket(s))
			continue;
		bp_io_listen_add(s->fd, s->port_index, s->is_unix, NULL);
		s->in_loop = true;
		opened++;
	}
	return opened;
}

void
bp_sockets_tick(TimestampTz now)
{
	static TimestampTz last_retry = 0;
	static TimestampTz last_touch = 0;
	int			i;

	if (TimestampDifferenceExceeds(last_retry, now, BP_SOCKET_RETRY_MS))
	{
		last_retry = now;
		for (i = 0; i < n_sockets; i++)
		{
			PoolSocket *s = &sockets[i];

			if (s->in_loop || !open_socket(s))
				continue;
			bp_io_listen_add(s->fd, s->port_index, s->is_unix, NULL);
			bp_io_listen_start();
			s->in_loop = true;
		}
	}

	/* keep /tmp cleaners off our files, as core's TouchSocketLockFiles */
	if (last_touch == 0)
		last_touch = now;
	if (TimestampDifferenceExceeds(last_touch, now, BP_TOUCH_MS))
	{
		last_touch = now;
		for (i = 0; i < n_sockets; i++)
		{
			if (sockets[i].path == NULL || sockets[i].fd < 0)
				continue;
			(void) utime(sockets[i].path, NULL);
			(void) utime(sockets[i].lock_path, NULL);
		}
	}
}

void
bp_sockets_close_inherited(void)
{
	int			i;

	for (i = 0; i < n_sockets; i++)
	{
		if (sockets[i].fd >= 0)
			close(sockets[i].fd);
		sockets[i].fd = -1;
	}
}
