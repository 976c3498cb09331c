/*-------------------------------------------------------------------------
 *
 * relay.c
 *	  The listener's reading half of a TLS session (see tls.h).
 *
 * Once a TLS client is handed to an executor, the listener keeps reading
 * its records with OpenSSL and writes the plaintext into a socketpair whose
 * other end the executor holds as the session's socket, so core's pqcomm
 * reads it with all its usual waits.  Only what the client sends passes
 * here; the executor writes its results straight to the client.
 *
 * The relay ends when either side ends: the client's EOF or close_notify
 * closes our end of the socketpair (the executor reads what is left, then
 * EOF), and the executor closing its end (session over, or the executor
 * gone) closes our copy of the client's socket.  A full socketpair stops
 * reading the client until the executor has read: a client can never make
 * the listener buffer more than one read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/ilist.h"
#include "utils/memutils.h"

#include "pool_io.h"
#include "pool_shmem.h"
#include "relay.h"
#include "tls.h"

#define RELAY_BUF	8192

typedef struct PoolRelay
{
	PoolIo		client;			/* a dup of the client's TCP socket */
	PoolIo		exec;			/* our end of the plaintext socketpair */
	BpSsl	   *ssl;
	dlist_node	node;
	int			off;			/* buf[off..len) still to pass on */
	int			len;
	char		buf[RELAY_BUF];
} PoolRelay;

static dlist_head bp_relays = DLIST_STATIC_INIT(bp_relays);
static int	bp_n_relays = 0;

#define relay_of_exec(io) \
	((PoolRelay *) ((char *) (io) - offsetof(PoolRelay, exec)))

static void
relay_close(PoolRelay *r)
{
	bp_io_unregister(&r->client);
	bp_io_unregister(&r->exec);
	close(r->client.fd);
	close(r->exec.fd);
	bp_tls_close(r->ssl);
	dlist_delete(&r->node);
	bp_n_relays--;
	pg_atomic_write_u32(&bp_shared->n_tls_sessions, bp_n_relays);
	pfree(r);
}

/*
 * Passes buffered plaintext on.  Returns true when all of it went; false
 * when the socketpair is full (we then wait for it) or r was closed.
 */
static bool
relay_flush(PoolRelay *r, bool *closed)
{
	while (r->off < r->len)
	{
		ssize_t		n = send(r->exec.fd, r->buf + r->off, r->len - r->off,
							 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0)
		{
			r->off += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		{
			r->client.want = 0;
			r->exec.want = BP_EV_READ | BP_EV_WRITE;
			bp_io_update(&r->client);
			bp_io_update(&r->exec);
			return false;
		}
		/* the executor's end is closed: the session is over */
		relay_close(r);
		*closed = true;
		return false;
	}
	r->off = r->len = 0;
	return true;
}

/* Moves what the client sent to the executor until either side stops */
static void
relay_pump(PoolRelay *r)
{
	bool		closed = false;

	for (;;)
	{
		ssize_t		n;

		if (!relay_flush(r, &closed))
			return;
		n = bp_tls_read(r->ssl, r->buf, sizeof(r->buf));
		if (n > 0)
		{
			r->len = n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != ECONNRESET)
			ereport(COMMERROR,
					(errcode_for_socket_access(),
					 errmsg("could not receive data from client: %m")));
		/* EOF, close_notify or an error: the executor sees EOF */
		relay_close(r);
		return;
	}
	r->client.want = BP_EV_READ;
	r->exec.want = BP_EV_READ;
	bp_io_update(&r->client);
	bp_io_update(&r->exec);
}

static void
client_ready(PoolIo *io, bool readable, bool writable)
{
	relay_pump((PoolRelay *) io);
}

/*
 * Our end of the socketpair: writable again after it was full; readable
 * only at EOF (the executor never writes to it) or on an error.
 */
static void
exec_ready(PoolIo *io, bool readable, bool writable)
{
	PoolRelay  *r = relay_of_exec(io);

	if (readable)
	{
		char		junk[256];
		ssize_t		n = recv(r->exec.fd, junk, sizeof(junk), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
					   errno != EINTR))
		{
			relay_close(r);
			return;
		}
	}
	if (writable)
		relay_pump(r);
}

int
bp_relay_start(BpSsl *ssl, int client_fd)
{
	int			sp[2];
	int			mine;
	PoolRelay  *r;
	int			bufsize = 256 * 1024;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	mine = fcntl(client_fd, F_DUPFD_CLOEXEC, 0);
	if (mine < 0)
	{
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	(void) setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));

	r = MemoryContextAllocZero(TopMemoryContext, sizeof(PoolRelay));
	r->ssl = ssl;
	bp_tls_set_read_fd(ssl, mine);
	r->client.fd = mine;
	r->client.handler = client_ready;
	r->exec.fd = sp[0];
	r->exec.handler = exec_ready;
	bp_io_register(&r->client);
	bp_io_register(&r->exec);
	dlist_push_tail(&bp_relays, &r->node);
	bp_n_relays++;
	pg_atomic_write_u32(&bp_shared->n_tls_sessions, bp_n_relays);

	/* what OpenSSL already decrypted wakes no poll: pass it on now */
	relay_pump(r);
	return sp[1];
}
