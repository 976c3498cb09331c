/*-------------------------------------------------------------------------
 *
 * startup.h
 *	  Pure codec for what crosses the pool port before a session starts:
 *	  the startup packet and the ErrorResponse sent before closing.
 *
 * No socket I/O and no ereport here, so the listener's non-blocking state
 * machine and the executor can both use it, and it can be tested with plain
 * buffers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STARTUP_H
#define STARTUP_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

typedef struct PoolStartup
{
	const char *user;			/* never NULL after a successful parse */
	const char *database;		/* defaults to user */
	const char *options;		/* "options" (command-line switches) or NULL */
	bool		replication;	/* a "replication" key was present */
	List	   *guc_names;		/* other name/value pairs, in order */
	List	   *guc_values;
	List	   *unknown_protocol_options;	/* "_pq_.*" names */
} PoolStartup;

/*
 * Parses the name/value pairs of a protocol 3 startup packet (the bytes after
 * the protocol version).  Pointers in *out point into body.  On bad input
 * returns false and sets *sqlstate (an ERRCODE_ value) and *message (a
 * static, untranslated errmsg-style string).
 */
extern bool bp_parse_startup(char *body, int len, PoolStartup *out,
							 int *sqlstate, const char **message);

/*
 * Appends a complete ErrorResponse message ('E', length, fields) to buf.
 * severity is "FATAL", "ERROR", ...; detail and hint may be NULL.
 */
extern void bp_build_error(StringInfo buf, const char *severity, int sqlstate,
						   const char *message, const char *detail,
						   const char *hint);

#endif							/* STARTUP_H */
