/*-------------------------------------------------------------------------
 *
 * parse_ahead.c
 *	  Answering a waiting session's Parse before its turn, when its pool is
 *	  starved.
 *
 * A client that prepares statements with a blocking call (libpq's
 * PQprepare: Parse and Sync, then wait) may block the very thread whose
 * other connections hold every executor of the pool inside their
 * transactions, their results unread: pgbench -M prepared with hundreds of
 * clients per thread.  No number of executors ends that wait.  So when a
 * session waits behind another session's idle transaction, its executor
 * cannot hand it to another (none is free, none may start: executor.c),
 * and all its client sent is Parse messages of new named statements ended
 * by Sync, the executor reads them at once, checks each with the raw
 * parser alone, answers ParseComplete and ReadyForQuery, and records the
 * statements to be prepared at the session's next turn, as a moved
 * session's are (extended.c, bp_restore_statements).
 *
 * The raw parser reads no catalog: it runs inside another session's
 * transaction, whose snapshot, role and search_path the waiting session
 * must not use.  Hence parse analysis (an unknown table, a type that does
 * not match) is left to the next turn; an error it raises there is kept
 * here and raised by the statement's first Bind or Describe, which is the
 * deviation from core README's Limitations describes.  Anything else (a
 * syntax error, a name in use, any other message, output still queued for
 * the client) leaves the session waiting as before: its turn answers as
 * core would.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include "libpq/pqformat.h"
#include "parser/parser.h"
#include "pgtime.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "parse_ahead.h"
#include "prepared.h"

/* More than this waiting in the socket is not a PQprepare's Parse */
#define BP_PARSE_AHEAD_MAX	65536

/* A statement whose preparation at the next turn failed, for Bind */
typedef struct AheadError
{
	char	   *name;
	ErrorData  *edata;
} AheadError;

/* Does the list of PoolStatements hold one called name? */
static bool
named_in(List *statements, const char *name)
{
	ListCell   *lc;

	foreach(lc, statements)
	{
		if (strcmp(((PoolStatement *) lfirst(lc))->name, name) == 0)
			return true;
	}
	return false;
}

/* Is name one of s's statements, prepared or still to be, or in batch? */
static bool
name_in_use(PoolSession *s, const char *name, List *batch)
{
	return named_in(s->statements, name) ||
		named_in(s->moved_statements, name) ||
		named_in(batch, name);
}

/*
 * Does query pass the raw parser as one statement (or none)?  Output to
 * the client switched in is suppressed meanwhile: a scanner warning is not
 * its business.  An error is caught and forgotten: the raw parser takes no
 * lock, buffer or other resource an aborted transaction would release.
 */
static bool
raw_parse_ok(const char *query)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "parse ahead",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	CommandDest save_dest = whereToSendOutput;
	bool		ok;

	whereToSendOutput = DestNone;
	PG_TRY();
	{
		ok = list_length(raw_parser(query, RAW_PARSE_DEFAULT)) <= 1;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	whereToSendOutput = save_dest;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return ok;
}

/*
 * Reads one Parse message's body into a statement in s's context, NULL if
 * it cannot be answered ahead (unnamed, a name in use, a bad message, a
 * query the raw parser refuses).
 */
static PoolStatement *
read_parse(PoolSession *s, StringInfo msg, List *batch)
{
	const char *name;
	const char *query;
	int			num_params;
	PoolStatement *st;
	int			i;

	if (msg->len < 4 || memchr(msg->data, '\0', msg->len) == NULL)
		return NULL;
	name = msg->data;
	msg->cursor = strlen(name) + 1;
	if (memchr(msg->data + msg->cursor, '\0', msg->len - msg->cursor) == NULL)
		return NULL;
	query = msg->data + msg->cursor;
	msg->cursor += strlen(query) + 1;
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN ||
		msg->len - msg->cursor < 2)
		return NULL;
	num_params = pq_getmsgint(msg, 2);
	if (num_params < 0 || msg->len - msg->cursor != num_params * 4 ||
		name_in_use(s, name, batch) || !raw_parse_ok(query))
		return NULL;

	st = MemoryContextAllocZero(s->cxt, sizeof(PoolStatement));
	st->name = MemoryContextStrdup(s->cxt, name);
	st->query = MemoryContextStrdup(s->cxt, query);
	st->num_params = num_params;
	if (num_params > 0)
		st->param_types = MemoryContextAlloc(s->cxt, num_params * sizeof(Oid));
	for (i = 0; i < num_params; i++)
		st->param_types[i] = (Oid) pq_getmsgint(msg, 4);
	st->result_natts = BP_RESULT_UNKNOWN;	/* never described */
	st->prepare_time = GetCurrentTimestamp();	/* pg_prepared_statements' */
	st->ahead = true;
	return st;
}

/* Frees what read_parse made of a batch that is not answered after all */
static void
free_batch(List *batch)
{
	ListCell   *lc;

	foreach(lc, batch)
	{
		PoolStatement *st = lfirst(lc);

		pfree(st->name);
		pfree(st->query);
		if (st->param_types)
			pfree(st->param_types);
		pfree(st);
	}
	list_free(batch);
}

/*
 * Splits what waits in buf (len bytes) into messages: Parse messages (and
 * Flush) ended by one Sync, exactly at the end.  Returns the statements,
 * or NIL if the input is anything else.
 */
static List *
read_batch(PoolSession *s, char *buf, int len)
{
	List	   *batch = NIL;
	int			at = 0;

	while (at + 5 <= len)
	{
		char		type = buf[at];
		uint32		mlen;
		StringInfoData msg;
		PoolStatement *st;

		memcpy(&mlen, buf + at + 1, 4);
		mlen = pg_ntoh32(mlen);
		if (mlen < 4 || mlen > (uint32) (len - at - 1))
			break;
		if (type == 'S')
		{
			if (mlen == 4 && at + 5 == len && batch != NIL)
				return batch;
			break;
		}
		if (type == 'H' && mlen == 4)
		{
			at += 5;
			continue;
		}
		if (type != 'P')
			break;
		msg.data = buf + at + 5;
		msg.len = mlen - 4;
		msg.maxlen = msg.len;
		msg.cursor = 0;
		st = read_parse(s, &msg, batch);
		if (st == NULL)
			break;
		batch = lappend(batch, st);
		at += 1 + mlen;
	}
	free_batch(batch);
	return NIL;
}

bool
bp_parse_ahead_candidate(PoolSession *s)
{
	char		type;

	return !s->dead && !s->closing && s->greeted && !s->ignore_till_sync &&
		!bp_session_output_pending(s) &&
		recv(s->sock, &type, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && type == 'P';
}

bool
bp_parse_ahead(PoolSession *s)
{
	int			avail = 0;
	char	   *buf;
	List	   *batch = NIL;
	StringInfoData reply;
	ListCell   *lc;
	bool		ok = false;

	if (ioctl(s->sock, FIONREAD, &avail) < 0 || avail < 5 ||
		avail > BP_PARSE_AHEAD_MAX)
		return false;

	buf = palloc(avail);
	if (recv(s->sock, buf, avail, MSG_PEEK | MSG_DONTWAIT) == avail)
		batch = read_batch(s, buf, avail);
	if (batch != NIL)
	{
		/* the bytes are there: this read takes exactly them */
		if (recv(s->sock, buf, avail, MSG_DONTWAIT) != avail)
		{
			free_batch(batch);
			s->closing = true;	/* its stream is out of step now */
			pfree(buf);
			return false;
		}
		initStringInfo(&reply);
		foreach(lc, batch)
		{
			/* the list lives with the session, not this message's context */
			MemoryContext old = MemoryContextSwitchTo(s->cxt);

			s->moved_statements = lappend(s->moved_statements, lfirst(lc));
			MemoryContextSwitchTo(old);
			appendStringInfoString(&reply, "1");
			appendBinaryStringInfo(&reply, "\0\0\0\4", 4);
		}
		/* it is between transactions: switched out only then */
		appendBinaryStringInfo(&reply, "Z\0\0\0\5I", 6);
		bp_session_send_quick(s, reply.data, reply.len);
		pfree(reply.data);
		list_free(batch);
		ok = true;
	}
	pfree(buf);
	return ok;
}

void
bp_parse_ahead_failed(PoolSession *s, const char *name)
{
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	AheadError *e = palloc(sizeof(AheadError));

	e->name = pstrdup(name);
	e->edata = CopyErrorData();
	s->ahead_errors = lappend(s->ahead_errors, e);
	MemoryContextSwitchTo(old);
}

/* Takes name's kept error out of s's list; NULL if there is none */
static AheadError *
take_error(PoolSession *s, const char *name)
{
	ListCell   *lc;

	foreach(lc, s->ahead_errors)
	{
		AheadError *e = lfirst(lc);

		if (strcmp(e->name, name) == 0)
		{
			s->ahead_errors = foreach_delete_current(s->ahead_errors, lc);
			return e;
		}
	}
	return NULL;
}

void
bp_parse_ahead_raise(PoolSession *s, const char *name)
{
	AheadError *e = take_error(s, name);

	/* the statement then does not exist, as after core's failed Parse */
	if (e != NULL)
		ReThrowError(e->edata);
}

void
bp_parse_ahead_forget(PoolSession *s, const char *name)
{
	AheadError *e = take_error(s, name);

	if (e == NULL)
		return;
	FreeErrorData(e->edata);
	pfree(e->name);
	pfree(e);
}
