/*-------------------------------------------------------------------------
 *
 * startup.c
 *	  Codec for the startup packet and for the ErrorResponse the pool sends
 *	  before it closes a connection.
 *
 * Kept free of socket I/O and of ereport() so that the listener's
 * non-blocking state machine can call it without a longjmp target, and the
 * executor can reuse it on the packet body it receives with a handoff.  The
 * checks and messages follow core's ProcessStartupPacket so a client sees
 * the same errors on the pool port as on the main port.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/elog.h"

#include "startup.h"

/*
 * Walks the name/value pairs.  strnlen keeps every read inside the body even
 * when a client leaves out terminators.
 */
bool
bp_parse_startup(char *body, int len, PoolStartup *out,
				 int *sqlstate, const char **message)
{
	int			offset = 0;

	memset(out, 0, sizeof(*out));

	while (offset < len)
	{
		char	   *name = body + offset;
		char	   *value;
		int			namelen = strnlen(name, len - offset);
		int			valoffset;
		int			vallen;

		if (namelen == 0)
			break;				/* the packet terminator */
		valoffset = offset + namelen + 1;
		if (valoffset >= len)
			break;				/* no value: complained about below */
		value = body + valoffset;
		vallen = strnlen(value, len - valoffset);
		if (valoffset + vallen >= len)
			break;				/* unterminated value */

		if (strcmp(name, "user") == 0)
			out->user = value;
		else if (strcmp(name, "database") == 0)
			out->database = value;
		else if (strcmp(name, "options") == 0)
			out->options = value;
		else if (strcmp(name, "replication") == 0)
		{
			bool		on;

			if (strcmp(value, "database") == 0)
				out->replication = true;
			else if (!parse_bool(value, &on))
			{
				*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
				*message = "invalid value for parameter \"replication\"";
				return false;
			}
			else
				out->replication = on;
		}
		else if (strncmp(name, "_pq_.", 5) == 0)
			out->unknown_protocol_options =
				lappend(out->unknown_protocol_options, name);
		else
		{
			out->guc_names = lappend(out->guc_names, name);
			out->guc_values = lappend(out->guc_values, value);
		}
		offset = valoffset + vallen + 1;
	}

	if (offset != len - 1 || body[offset] != '\0')
	{
		*sqlstate = ERRCODE_PROTOCOL_VIOLATION;
		*message = "invalid startup packet layout: expected terminator as last byte";
		return false;
	}
	if (out->user == NULL || out->user[0] == '\0')
	{
		*sqlstate = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		*message = "no PostgreSQL user name specified in startup packet";
		return false;
	}
	if (out->database == NULL || out->database[0] == '\0')
		out->database = out->user;
	return true;
}

static void
put_field(StringInfo buf, char code, const char *value)
{
	appendStringInfoChar(buf, code);
	appendBinaryStringInfo(buf, value, strlen(value) + 1);
}

void
bp_build_error(StringInfo buf, const char *severity, int sqlstate,
			   const char *message, const char *detail, const char *hint)
{
	int			start;
	uint32		n32;

	appendStringInfoChar(buf, 'E');
	start = buf->len;
	appendBinaryStringInfo(buf, "\0\0\0\0", 4);	/* length, filled in below */

	put_field(buf, PG_DIAG_SEVERITY, severity);
	put_field(buf, PG_DIAG_SEVERITY_NONLOCALIZED, severity);
	put_field(buf, PG_DIAG_SQLSTATE, unpack_sql_state(sqlstate));
	put_field(buf, PG_DIAG_MESSAGE_PRIMARY, message);
	if (detail)
		put_field(buf, PG_DIAG_MESSAGE_DETAIL, detail);
	if (hint)
		put_field(buf, PG_DIAG_MESSAGE_HINT, hint);
	appendStringInfoChar(buf, '\0');

	n32 = pg_hton32(buf->len - start);
	memcpy(buf->data + start, &n32, 4);
}
