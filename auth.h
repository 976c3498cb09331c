/*-------------------------------------------------------------------------
 *
 * auth.h
 *	  Whether a pool client may connect: pg_hba.conf and the catalogs.
 *
 * Used by the listener only.  No socket I/O here: the listener sends the
 * refusal this module words.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTH_H
#define AUTH_H

#include "libpq/pqcomm.h"

typedef struct PoolAuthRequest
{
	const char *user;			/* truncated to NAMEDATALEN - 1 */
	const char *dbname;
	bool		is_unix;
	SockAddr   *raddr;
	const char *remote_host;	/* numeric address, or "[local]" */
} PoolAuthRequest;

/* Why a client was refused; strings palloc'd in CurrentMemoryContext */
typedef struct PoolAuthRefusal
{
	int			sqlstate;
	char	   *message;
	char	   *detail;			/* NULL if none */
	char	   *hint;
	char	   *logdetail;		/* server log only */
} PoolAuthRefusal;

/*
 * (Re)loads pg_hba.conf into a context under parent.  A file with errors
 * is logged and ignored: the previous rules stay in force.
 */
extern void bp_auth_load_hba(MemoryContext parent);

/*
 * true if the client may connect; false with *why filled in.  Runs a short
 * transaction; never throws (a catalog error becomes a refusal).
 */
extern bool bp_auth_check(PoolAuthRequest *req, PoolAuthRefusal *why);

#endif							/* AUTH_H */
