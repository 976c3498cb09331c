/*-------------------------------------------------------------------------
 *
 * pool_io.h
 *	  Socket readiness for the pool listener: io_uring or epoll, one API.
 *
 * The listener registers every descriptor it waits on (client, executor
 * channel) as a PoolIo with a handler, and every listening socket with
 * bp_io_listen_add().  bp_io_drain() runs the handlers of whatever is
 * ready; the caller sleeps in a WaitEventSet on bp_io_wait_fd().  Events
 * carry an index and a tag, never a pointer, so a late event for a closed
 * and reused object is dropped.  Only the listener uses this module.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POOL_IO_H
#define POOL_IO_H

#include "datatype/timestamp.h"

#define BP_EV_READ	1
#define BP_EV_WRITE 2

typedef struct PoolIo PoolIo;

/* Called when io is ready; may close and unregister io */
typedef void (*PoolIoHandler) (PoolIo *io, bool readable, bool writable);

/* Called with each accepted descriptor (non-blocking, close-on-exec) */
typedef void (*PoolAcceptHandler) (int fd, int port_index, bool is_unix);

struct PoolIo
{
	int			fd;
	PoolIoHandler handler;
	uint8		want;			/* BP_EV_* the owner needs; see bp_io_update */
	/* private to pool_io.c */
	int			id;
	uint32		gen;
	uint8		armed;
	uint32		rtag;
	uint32		wtag;
};

/* Sets up io_uring if asked and possible, else epoll; ERROR if neither */
extern void bp_io_init(bool use_io_uring, PoolAcceptHandler on_accept);
extern bool bp_io_using_uring(void);
extern int	bp_io_wait_fd(void);

/* Registration: io->fd and io->handler set by the caller, want = 0 */
extern void bp_io_register(PoolIo *io);
extern void bp_io_unregister(PoolIo *io);
extern bool bp_io_alive(int id, uint32 gen);
extern void bp_io_update(PoolIo *io);
extern void bp_io_forget(PoolIo *io);

/*
 * Listening sockets; path (palloc'd, or NULL) is unlinked at exit.
 * bp_io_listen_start arms those not armed yet.
 */
extern void bp_io_listen_add(int fd, int port_index, bool is_unix, char *path);
extern void bp_io_listen_start(void);

extern void bp_io_drain(void);
extern void bp_io_flush(void);
extern bool bp_io_tick(TimestampTz now, bool slow);
extern void bp_io_shutdown(void);

#endif							/* POOL_IO_H */
