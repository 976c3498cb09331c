/*-------------------------------------------------------------------------
 *
 * greeting.c
 *	  The login greeting: what a new session is told between its
 *	  authentication and its first ReadyForQuery, kept by the listener so
 *	  that a login never waits for an executor.
 *
 * A dedicated backend greets a client with AuthenticationOk, one
 * ParameterStatus per reported setting, BackendKeyData and ReadyForQuery.
 * The ParameterStatus messages depend only on the pool (database, role),
 * the startup packet's pairs, the configuration file, the role's and
 * database's settings (pg_db_role_setting) and attributes, and whether the
 * server is in recovery.  So an executor that greeted a session sends the
 * messages back to the listener (PoolGreetingNote), which keeps them per
 * (pool, startup pairs); the next login with the same pairs is greeted by
 * the listener itself, byte for byte as the executor would have, and its
 * session goes to an executor marked greeted (the executor applies its
 * settings as always, checks that it would have reported the same, and
 * sends nothing).  A client whose pool's executors are all held inside
 * other sessions' transactions is thus logged in at once; only its first
 * request waits, as with any pooler.
 *
 * Invalidation: a shared epoch (bp_shared->login_epoch) is bumped at the
 * commit of any transaction that altered or dropped a role, a database or
 * a role/database setting (an object access hook, in every backend, since
 * ALTER ROLE ... SET may run on the main port), at every configuration
 * reload (listener and executors), and when recovery ends.  A note carries
 * the epoch its executor read before it read the catalogs, and is dropped
 * unless it is still current; an entry is used only while its epoch is.
 * An executor that finds it would have reported other values than the
 * listener did (a reload it saw before the listener did) sends the client
 * its own ParameterStatus messages at once and notes them.
 *
 * Note about locking: the epoch is an atomic; the cache is the listener's
 * alone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_db_role_setting.h"
#include "common/hashfn.h"
#include "libpq/pqcomm.h"
#include "libpq/pqformat.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "channel.h"
#include "greeting.h"
#include "pool_shmem.h"

/* entries kept at most; past that the cache starts over */
#define BP_GREETING_MAX_ENTRIES 256

static object_access_hook_type prev_object_access = NULL;
static bool bump_at_commit = false;

typedef struct GreetingKey
{
	int32		port_index;
	Oid			dboid;
	Oid			roleid;
	uint32		body_hash;
	int32		body_len;
} GreetingKey;

typedef struct GreetingEntry
{
	GreetingKey key;			/* first: the hash key */
	uint32		epoch;
	int			status_len;
	char	   *data;			/* startup pairs, then status messages */
} GreetingEntry;

static HTAB *greetings = NULL;
static MemoryContext greeting_cxt = NULL;

/* ---------------------------------------------------------------------
 * The epoch
 * ---------------------------------------------------------------------
 */

/* See greeting.h */
uint32
bp_greeting_epoch(void)
{
	return pg_atomic_read_u32(&bp_shared->login_epoch);
}

/* See greeting.h: every cached greeting is stale from now on */
void
bp_greeting_invalidate(void)
{
	if (bp_shared != NULL)
		pg_atomic_fetch_add_u32(&bp_shared->login_epoch, 1);
}

/*
 * A role, a database or one of their settings was created, altered or
 * dropped: what a login reports may change once this transaction commits.
 */
static void
greeting_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					   int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if ((access == OAT_POST_ALTER || access == OAT_DROP ||
		 access == OAT_POST_CREATE) &&
		(classId == DbRoleSettingRelationId || classId == AuthIdRelationId ||
		 classId == DatabaseRelationId))
		bump_at_commit = true;
}

/*
 * At commit, once the change is visible to every new snapshot: a note
 * read before is dropped (its epoch is older), one read after sees it.
 */
static void
greeting_xact(XactEvent event, void *arg)
{
	if (!bump_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT)
		bp_greeting_invalidate();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		bump_at_commit = false;
}

/* See greeting.h: from _PG_init, so in every backend */
void
bp_greeting_init(void)
{
	prev_object_access = object_access_hook;
	object_access_hook = greeting_object_access;
	RegisterXactCallback(greeting_xact, NULL);
}

/* ---------------------------------------------------------------------
 * Executor side
 * ---------------------------------------------------------------------
 */

/* Length of the whole message at p (within end), or -1 */
static int
message_len(const char *p, const char *end)
{
	uint32		len;

	if (end - p < 5)
		return -1;
	memcpy(&len, p + 1, 4);
	len = pg_ntoh32(len);
	if (len < 4 || len + 1 > (uint32) (end - p))
		return -1;
	return len + 1;
}

/*
 * See greeting.h: in buf, from start to its end, finds AuthenticationOk,
 * ParameterStatus messages only and BackendKeyData, and
 * sets where the ParameterStatus messages are.  false if buf holds
 * anything else (a notice, say): such a greeting is never cached.
 */
bool
bp_greeting_split(const char *buf, int start, int end, int *status_off,
				  int *status_len)
{
	const char *p = buf + start;
	const char *stop = buf + end;
	const char *first;
	int			n;

	if ((n = message_len(p, stop)) != 9 || p[0] != 'R')
		return false;
	p += n;
	first = p;
	while (p < stop && p[0] == 'S')
	{
		if ((n = message_len(p, stop)) < 0)
			return false;
		p += n;
	}
	*status_off = first - buf;
	*status_len = p - first;
	if ((n = message_len(p, stop)) != 13 || p[0] != 'K')
		return false;
	return p + n == stop;
}

/* See greeting.h */
uint32
bp_greeting_hash(const char *status, int status_len)
{
	return hash_bytes((const unsigned char *) status, status_len);
}

/*
 * See greeting.h: tells the listener, without blocking (a full channel
 * loses the note, which only costs a later login its shortcut).
 */
void
bp_greeting_send_note(int chan, int slot, uint32 epoch, int port_index,
					  const char *body, int body_len,
					  const char *status, int status_len)
{
	PoolGreetingNote note;
	StringInfoData buf;

	if (body_len + status_len + sizeof(note) > BP_HANDOFF_MAX)
		return;
	note.magic = BP_GREETING_MAGIC;
	note.slot = slot;
	note.epoch = epoch;
	note.port_index = port_index;
	note.startup_len = body_len;
	note.status_len = status_len;
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &note, sizeof(note));
	appendBinaryStringInfo(&buf, body, body_len);
	appendBinaryStringInfo(&buf, status, status_len);
	(void) bp_channel_send(chan, buf.data, buf.len, NULL, 0);
	pfree(buf.data);
}

/* ---------------------------------------------------------------------
 * Listener side: the cache
 * ---------------------------------------------------------------------
 */

/* (Re)creates the empty cache */
static void
cache_reset(void)
{
	HASHCTL		ctl;

	if (greeting_cxt == NULL)
		greeting_cxt = AllocSetContextCreate(TopMemoryContext,
											 "builtin_pool greetings",
											 ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(greeting_cxt);
	ctl.keysize = sizeof(GreetingKey);
	ctl.entrysize = sizeof(GreetingEntry);
	ctl.hcxt = greeting_cxt;
	greetings = hash_create("builtin_pool greetings", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
make_key(GreetingKey *key, int port_index, Oid dboid, Oid roleid,
		 const char *body, int body_len)
{
	memset(key, 0, sizeof(*key));
	key->port_index = port_index;
	key->dboid = dboid;
	key->roleid = roleid;
	key->body_hash = hash_bytes((const unsigned char *) body, body_len);
	key->body_len = body_len;
}

/*
 * See greeting.h: keeps what an executor of the pool (port_index, dboid,
 * roleid) noted, if it is well formed and still current.
 */
void
bp_greeting_receive(const char *msg, size_t n, int slot, int port_index,
					Oid dboid, Oid roleid)
{
	PoolGreetingNote note;
	GreetingKey key;
	GreetingEntry *e;
	bool		found;
	const char *body;
	int			off;
	int			len;

	if (n < sizeof(note))
		return;
	memcpy(&note, msg, sizeof(note));

	if (note.slot != slot || note.port_index != port_index ||
		note.startup_len <= 0 || note.status_len < 0 ||
		note.startup_len > MAX_STARTUP_PACKET_LENGTH ||
		n != sizeof(note) + note.startup_len + note.status_len)
		return;
	if (note.epoch != bp_greeting_epoch())
		return;					/* read before a change: stale */
	body = msg + sizeof(note);

	/* only ParameterStatus messages are ever sent from here */
	off = 0;
	while (off < note.status_len)
	{
		len = message_len(body + note.startup_len + off,
						  body + note.startup_len + note.status_len);
		if (len < 0 || body[note.startup_len + off] != 'S')
			return;
		off += len;
	}

	if (greetings == NULL ||
		hash_get_num_entries(greetings) >= BP_GREETING_MAX_ENTRIES)
		cache_reset();
	make_key(&key, port_index, dboid, roleid, body, note.startup_len);
	e = hash_search(greetings, &key, HASH_ENTER, &found);
	if (found)
		pfree(e->data);
	e->epoch = note.epoch;
	e->status_len = note.status_len;
	e->data = MemoryContextAlloc(greeting_cxt, note.startup_len + note.status_len);
	memcpy(e->data, body, note.startup_len + note.status_len);
}

/*
 * See greeting.h: appends to out the whole greeting of a login of the pool
 * (port_index, dboid, roleid) with these startup pairs, as its executor pid
 * would send it with cancel key key, and sets *hash.  false, out
 * untouched, if no current greeting is known.
 */
bool
bp_greeting_build(StringInfo out, int port_index, Oid dboid, Oid roleid,
				  const char *body, int body_len, int32 pid, uint32 key,
				  uint32 *hash)
{
	GreetingKey k;
	GreetingEntry *e;

	if (greetings == NULL)
		return false;
	make_key(&k, port_index, dboid, roleid, body, body_len);
	e = hash_search(greetings, &k, HASH_FIND, NULL);
	if (e == NULL || memcmp(e->data, body, body_len) != 0)
		return false;
	if (e->epoch != bp_greeting_epoch())
	{
		pfree(e->data);
		(void) hash_search(greetings, &k, HASH_REMOVE, NULL);
		return false;
	}
	pq_sendbyte(out, 'R');
	pq_sendint32(out, 8);
	pq_sendint32(out, (int32) AUTH_REQ_OK);
	appendBinaryStringInfo(out, e->data + body_len, e->status_len);
	pq_sendbyte(out, 'K');
	pq_sendint32(out, 12);
	pq_sendint32(out, pid);
	pq_sendint32(out, (int32) key);
	pq_sendbyte(out, 'Z');
	pq_sendint32(out, 5);
	pq_sendbyte(out, 'I');
	*hash = bp_greeting_hash(e->data + body_len, e->status_len);
	return true;
}
