/*-------------------------------------------------------------------------
 *
 * channel.c
 *	  The AF_UNIX SEQPACKET channel that carries client sockets from the
 *	  listener to the executors.
 *
 * Background workers are forked by the postmaster, so nothing the listener
 * opens is inherited by an executor: they meet on a socket file in the data
 * directory.  SEQPACKET keeps message boundaries, so one handoff (header,
 * startup packet and the client's descriptor) is one datagram and can never
 * be split or merged with the next.  Both ends check the peer's credentials:
 * the directory is private to the server's OS user, and SO_PEERCRED makes
 * sure of it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "channel.h"

/* Room for BP_CHANNEL_MAX_FDS descriptors, aligned as the kernel wants */
typedef union
{
	struct cmsghdr hdr;
	char		buf[CMSG_SPACE(sizeof(int) * BP_CHANNEL_MAX_FDS)];
} FdControl;

static void
channel_address(struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	strlcpy(addr->sun_path, BP_CHANNEL_PATH, sizeof(addr->sun_path));
}

/*
 * Creates the listener's end.  A stale socket file left by a crashed
 * listener is removed first; the path is relative to the data directory,
 * which is the working directory of every background worker.
 */
int
bp_channel_listen(void)
{
	struct sockaddr_un addr;
	int			fd;

	channel_address(&addr);
	(void) unlink(BP_CHANNEL_PATH);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not create executor channel socket: %m")));
	if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
		chmod(BP_CHANNEL_PATH, S_IRUSR | S_IWUSR) < 0 ||
		listen(fd, 64) < 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not listen on executor channel \"%s\": %m",
						BP_CHANNEL_PATH)));
	}
	return fd;
}

/*
 * Connects an executor to the listener.  Blocking is fine here: it happens
 * once, before the executor serves anyone.
 */
int
bp_channel_connect(void)
{
	struct sockaddr_un addr;
	int			fd;

	channel_address(&addr);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not create executor channel socket: %m")));
	if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not connect to the pool listener: %m")));
	}
	if (!bp_channel_peer_ok(fd, 0))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pool listener channel is owned by another user")));
	}
	return fd;
}

bool
bp_channel_peer_ok(int fd, pid_t pid)
{
	struct ucred cred;
	socklen_t	len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid != geteuid())
		return false;
	return pid == 0 || cred.pid == pid;
}

ssize_t
bp_channel_send(int chan, const void *msg, size_t len, const int *fds, int nfds)
{
	struct msghdr mh;
	struct iovec iov;
	FdControl	control;

	Assert(nfds >= 0 && nfds <= BP_CHANNEL_MAX_FDS);
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = unconstify(void *, msg);
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;

	if (nfds > 0)
	{
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&mh);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	}

	return sendmsg(chan, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

ssize_t
bp_channel_recv(int chan, void *buf, size_t buflen, int *fds)
{
	struct msghdr mh;
	struct iovec iov;
	FdControl	control;
	struct cmsghdr *cmsg;
	ssize_t		n;
	int			i;

	for (i = 0; i < BP_CHANNEL_MAX_FDS; i++)
		fds[i] = -1;
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = buf;
	iov.iov_len = buflen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = control.buf;
	mh.msg_controllen = sizeof(control.buf);

	n = recvmsg(chan, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;

	for (cmsg = CMSG_FIRSTHDR(&mh); cmsg != NULL; cmsg = CMSG_NXTHDR(&mh, cmsg))
	{
		int			count;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (count > BP_CHANNEL_MAX_FDS)
			count = BP_CHANNEL_MAX_FDS;	/* MSG_CTRUNC would be set */
		memcpy(fds, CMSG_DATA(cmsg), sizeof(int) * count);
	}

	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
	{
		bp_channel_close_fds(fds);
		errno = EPROTO;
		return -1;
	}
	return n;
}

void
bp_channel_close_fds(int *fds)
{
	int			i;

	for (i = 0; i < BP_CHANNEL_MAX_FDS; i++)
	{
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}
