/*-------------------------------------------------------------------------
 *
 * conn.c
 *	  A client connection's life in the pool listener: its state, the list
 *	  each state puts it on, and the counters each state holds.
 *
 * A PoolConn's state says where it is (listener.h).  conn_set_state() is
 * the one function that moves it: it takes the connection off the list of
 * its old state and undoes that state's counts, then puts it on the list of
 * the new one and counts it there, as PgBouncer's change_client_state()
 * does.  The lists and counts:
 *
 *	reading, TLS, lookup, auth	counted as pending against
 *								builtin_pool.max_pending_connections and
 *								max_pending_per_address; lookup also on
 *								the list conn_retry_lookups() walks
 *	admitted					on the list proxy.c routes from
 *	queued						on its executor's queue, counted in that
 *								slot's n_sessions (the load the next
 *								choice sees)
 *	parked						on the list retried each tick
 *	handed over, closed			on no list
 *
 * pool_sessions lists a client from its admission on (queued or parked):
 * its slot there is claimed at the first of these moves, given to the
 * executor with the client (handed over) and freed when the client closes
 * here (session_table.h).
 *
 * The two halves of the listener depend on this file and never the other
 * way round: client.c (startup, TLS, authentication) calls into it and
 * leaves an admitted client on the admitted list; proxy.c (routing) takes
 * it from there.  Nothing here blocks or calls back into either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <unistd.h>

#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "auth.h"
#include "builtin_pool.h"
#include "listener.h"
#include "pool_io.h"
#include "pool_shmem.h"
#include "session_table.h"
#include "tls.h"

MemoryContext bp_conn_cxt;
dlist_head	bp_conns = DLIST_STATIC_INIT(bp_conns);

static dlist_head lookup_list = DLIST_STATIC_INIT(lookup_list);
static dlist_head admitted_list = DLIST_STATIC_INIT(admitted_list);
static dlist_head parked_list = DLIST_STATIC_INIT(parked_list);
static dlist_head *exec_queues = NULL;	/* one per executor slot */

/*
 * Clients not yet admitted, in all and per address.  A Unix socket
 * client's address is "[local]": all count as one.
 */
typedef struct PendingKey
{
	sa_family_t family;
	uint8		addr[16];
} PendingKey;

typedef struct PendingEntry
{
	PendingKey	key;			/* first: the hash key */
	int			count;
} PendingEntry;

static HTAB *pending_by_addr = NULL;
static int	n_pending = 0;

/* See listener.h: the lists, in parent, for max_executors slots */
void
conn_init(MemoryContext parent, int max_executors)
{
	HASHCTL		ctl;
	int			i;

	bp_conn_cxt = AllocSetContextCreate(parent, "builtin_pool connections",
										ALLOCSET_DEFAULT_SIZES);
	exec_queues = MemoryContextAlloc(parent, max_executors * sizeof(dlist_head));
	for (i = 0; i < max_executors; i++)
		dlist_init(&exec_queues[i]);

	ctl.keysize = sizeof(PendingKey);
	ctl.entrysize = sizeof(PendingEntry);
	ctl.hcxt = parent;
	pending_by_addr = hash_create("builtin_pool pending clients", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* The key of c's address: the IP address alone, never the port */
static void
pending_key(PoolConn *c, PendingKey *key)
{
	memset(key, 0, sizeof(*key));
	if (c->is_unix)
	{
		key->family = AF_UNIX;
		return;
	}
	key->family = c->raddr.addr.ss_family;
	if (key->family == AF_INET)
		memcpy(key->addr, &((struct sockaddr_in *) &c->raddr.addr)->sin_addr, 4);
	else if (key->family == AF_INET6)
		memcpy(key->addr, &((struct sockaddr_in6 *) &c->raddr.addr)->sin6_addr, 16);
}

/* Counts c as pending, unless that would pass a cap: then false */
static bool
pending_start(PoolConn *c)
{
	PendingKey	key;
	PendingEntry *e;
	bool		found;

	if (n_pending >= bp_max_pending_connections)
		return false;
	pending_key(c, &key);
	e = hash_search(pending_by_addr, &key, HASH_ENTER, &found);
	if (!found)
		e->count = 0;
	if (e->count >= bp_max_pending_per_address)
		return false;
	e->count++;
	n_pending++;
	return true;
}

/* c leaves the pending states: it no longer counts */
static void
pending_end(PoolConn *c)
{
	PendingKey	key;
	PendingEntry *e;

	n_pending--;
	pending_key(c, &key);
	e = hash_search(pending_by_addr, &key, HASH_FIND, NULL);
	if (e != NULL && --e->count <= 0)
		(void) hash_search(pending_by_addr, &key, HASH_REMOVE, NULL);
}

/*
 * See listener.h: why c could not become pending (conn_set_state returned
 * false), as errdetail and errhint, palloc'd
 */
void
conn_pending_refusal(PoolConn *c, char **detail, char **hint)
{
	PendingKey	key;
	PendingEntry *e;

	if (n_pending >= bp_max_pending_connections)
	{
		*detail = psprintf("%d clients are still connecting or authenticating.",
						   n_pending);
		*hint = pstrdup("Raise builtin_pool.max_pending_connections.");
		return;
	}
	pending_key(c, &key);
	e = hash_search(pending_by_addr, &key, HASH_FIND, NULL);
	*detail = psprintf("%d clients from this address are still connecting or authenticating.",
					   e ? e->count : 0);
	*hint = pstrdup("Raise builtin_pool.max_pending_per_address.");
	if (e != NULL && e->count == 0)
		(void) hash_search(pending_by_addr, &key, HASH_REMOVE, NULL);
}

static inline bool
state_is_pending(PoolConnState s)
{
	return s == PC_READING || s == PC_TLS || s == PC_LOOKUP || s == PC_AUTH;
}

/* What a state waits for on the client's socket; -1: its own business */
static int
state_want(PoolConnState s)
{
	switch (s)
	{
		case PC_READING:
		case PC_AUTH:
			return BP_EV_READ;
		case PC_TLS:			/* the handshake says which */
		case PC_NEW:
		case PC_HANDED:
		case PC_CLOSED:
			return -1;
		default:
			return 0;			/* the executor reads it, or nothing yet */
	}
}

/* Takes c off the list and counts of its state; to says where it goes */
static void
state_leave(PoolConn *c, PoolConnState to)
{
	switch (c->state)
	{
		case PC_LOOKUP:
		case PC_ADMITTED:
		case PC_PARKED:
			dlist_delete(&c->state_node);
			break;
		case PC_QUEUED:
			{
				PoolExecutor *ex = &bp_shared->executors[c->exec_slot];

				dlist_delete(&c->state_node);
				/* handed over, the executor counts it from now on */
				if (to != PC_HANDED && ex->state != PE_FREE &&
					ex->generation == c->exec_gen)
					pg_atomic_fetch_sub_u32(&ex->n_sessions, 1);
				c->exec_slot = -1;
				break;
			}
		default:
			break;
	}
	if (state_is_pending(c->state) && !state_is_pending(to))
		pending_end(c);
}

/* The session table's side of a move to s (header comment) */
static void
track_session(PoolConn *c, PoolConnState s)
{
	switch (s)
	{
		case PC_QUEUED:
		case PC_PARKED:
			if (c->stab_slot < 0 && !c->resumed)
			{
				char	   *tls = c->ssl ? (char *) bp_tls_describe(c->ssl) : NULL;

				c->stab_slot = bp_stab_claim(c->port_index, c->dbname, c->user,
											 c->dboid, c->roleid, &c->raddr,
											 NULL, tls,
											 c->ssl ? bp_tls_cipher_bits(c->ssl) : 0);
				c->session_id = bp_stab_session_id(c->stab_slot);
				if (tls)
					pfree(tls);
			}
			bp_stab_listener_state(c->stab_slot,
								   s == PC_QUEUED ? PST_WAITING : PST_PARKED);
			break;
		case PC_HANDED:
			c->stab_slot = -1;	/* the executor's now, with the client */
			break;
		case PC_CLOSED:
			bp_stab_release(c->stab_slot);
			c->stab_slot = -1;
			break;
		default:
			break;
	}
}

/*
 * See listener.h.  Moves c from its state to s, with the lists and counts
 * of both (header comment), and makes the socket watched as s needs.  For
 * PC_QUEUED the caller has set c->exec_slot and c->exec_gen.  Returns false,
 * c unchanged, when s is a pending state c cannot enter for the caps
 * (conn_pending_refusal says which).  The first move from PC_NEW to
 * PC_READING does not arm the socket: the startup packet is often there
 * already, and the caller reads first.
 */
bool
conn_set_state(PoolConn *c, PoolConnState s)
{
	PoolConnState from = c->state;
	int			want = state_want(s);

	if (from == s)
		return true;
	if (state_is_pending(s) && !state_is_pending(from) && !pending_start(c))
		return false;
	state_leave(c, s);
	c->state = s;
	switch (s)
	{
		case PC_LOOKUP:
			dlist_push_tail(&lookup_list, &c->state_node);
			break;
		case PC_ADMITTED:
			dlist_push_tail(&admitted_list, &c->state_node);
			break;
		case PC_PARKED:
			dlist_push_tail(&parked_list, &c->state_node);
			break;
		case PC_QUEUED:
			Assert(c->exec_slot >= 0);
			pg_atomic_fetch_add_u32(&bp_shared->executors[c->exec_slot].n_sessions, 1);
			dlist_push_tail(&exec_queues[c->exec_slot], &c->state_node);
			break;
		case PC_HANDED:
			c->handed_over = true;
			break;
		default:
			break;
	}
	track_session(c, s);
	if (want >= 0 && c->io.want != want)
	{
		c->io.want = want;
		if (from != PC_NEW)
			bp_io_update(&c->io);
	}
	return true;
}

/* See listener.h: the first connection in state s, or NULL */
PoolConn *
conn_first(PoolConnState s)
{
	dlist_head *list;

	switch (s)
	{
		case PC_LOOKUP:
			list = &lookup_list;
			break;
		case PC_ADMITTED:
			list = &admitted_list;
			break;
		case PC_PARKED:
			list = &parked_list;
			break;
		default:
			elog(ERROR, "builtin_pool keeps no list of connections in state %d", s);
			return NULL;
	}
	if (dlist_is_empty(list))
		return NULL;
	return dlist_head_element(PoolConn, state_node, list);
}

/* See listener.h: the first connection queued for slot, or NULL */
PoolConn *
conn_first_queued(int slot)
{
	if (dlist_is_empty(&exec_queues[slot]))
		return NULL;
	return dlist_head_element(PoolConn, state_node, &exec_queues[slot]);
}

/*
 * See listener.h: a freshly accepted (or handed back) client's PoolConn,
 * in PC_NEW, registered with pool_io but not armed, in bp_conn_cxt until
 * conn_close().
 */
PoolConn *
conn_new(int fd, int port_index, PoolIoHandler handler)
{
	PoolConn   *c = MemoryContextAllocZero(bp_conn_cxt, sizeof(PoolConn));

	c->io.fd = fd;
	c->io.handler = handler;
	c->state = PC_NEW;
	c->port_index = port_index;
	c->exec_slot = -1;
	c->plain_fd = -1;
	c->stab_slot = -1;
	bp_io_register(&c->io);
	dlist_push_tail(&bp_conns, &c->all_node);
	return c;
}

/* See listener.h: closes our descriptor of the client and frees c */
void
conn_close(PoolConn *c)
{
	(void) conn_set_state(c, PC_CLOSED);
	/* a client we still hold that never reached an executor, or came back */
	if (!c->handed_over)
		bp_cancel_key_remove(c->cancel_key, -1, 0);
	/* a TLS session ending here, not handed over, ends with close_notify */
	if (!c->handed_over && c->tls.w.suite != 0)
		(void) bp_tls_send_goodbye(&c->tls, c->io.fd, NULL, 0);
	bp_io_unregister(&c->io);
	close(c->io.fd);
	if (c->plain_fd >= 0)
		close(c->plain_fd);
	bp_tls_close(c->ssl);
	bp_tls_sealer_free(&c->tls);
	dlist_delete(&c->all_node);
	if (c->pkt)
		pfree(c->pkt);
	if (c->moved_state)
		pfree(c->moved_state);
	if (c->auth)
		bp_auth_free(c->auth);
	if (c->auth_msg)
		pfree(c->auth_msg);
	pfree(c);
}
