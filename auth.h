/*-------------------------------------------------------------------------
 *
 * auth.h
 *	  Whether a pool client may connect: pg_hba.conf, the password
 *	  exchange it asks for, and the catalogs.
 *
 * Used by the listener only.  No socket I/O here: auth.c words the
 * messages (AuthenticationRequest, refusals) and the listener's
 * non-blocking state machine sends them and reads the client's answers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTH_H
#define AUTH_H

#include "lib/stringinfo.h"
#include "libpq/pqcomm.h"

typedef struct PoolAuthRequest
{
	const char *user;			/* truncated to NAMEDATALEN - 1 */
	const char *dbname;
	bool		is_unix;
	SockAddr   *raddr;
	const char *remote_host;	/* numeric address, or "[local]" */
	bool		ssl;			/* the client speaks TLS (tls.h) */
	struct ssl_st *ssl_conn;	/* its OpenSSL connection, for SCRAM's
								 * channel binding; lives through the
								 * exchange */
	bool		cert_valid;		/* it sent a certificate that verified */
	const char *cert_cn;		/* that certificate's CN, or NULL */
	bool		authenticated;	/* a main port backend authenticated it
								 * (mainport.c): only the checks after
								 * authentication remain */
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

typedef enum PoolAuthStatus
{
	PA_ADMIT,					/* may connect; *who filled in */
	PA_REFUSE,					/* refused; *why filled in */
	PA_EXCHANGE,				/* send *out, then feed the client's next
								 * message to bp_auth_continue() */
	PA_BUSY						/* a DDL holds a catalog we must read: ask
								 * again later, nothing was decided */
} PoolAuthStatus;

/* Whom an admitted client is: a pool is bound to these OIDs, not names */
typedef struct PoolAuthIdentity
{
	Oid			roleid;
	Oid			dboid;
} PoolAuthIdentity;

/*
 * A pool's identity as the listener asks about it (bp_auth_check_pools):
 * the OIDs, the names they had when the pool was made, and the verdict.
 */
typedef struct PoolAuthPool
{
	Oid			roleid;
	Oid			dboid;
	const char *rolname;
	const char *dbname;
	bool		valid;			/* out: the role still has that name and
								 * may log in, the database that name */
} PoolAuthPool;

/* One client's password exchange (password, md5, SCRAM); opaque */
typedef struct PoolAuthExchange PoolAuthExchange;

/*
 * (Re)loads pg_hba.conf into a context under parent.  A file with errors
 * is logged and ignored: the previous rules stay in force.
 */
extern void bp_auth_load_hba(MemoryContext parent);

/* Sets the listener up to notice role and database changes; call once */
extern void bp_auth_init(void);

/*
 * First decision on a client whose startup packet names req.  Trust and
 * reject lines are settled at once (PA_ADMIT, PA_REFUSE).  A password
 * method gives PA_EXCHANGE: *ex is a new exchange in a context under
 * parent, and out holds the AuthenticationRequest to send.  PA_BUSY when a
 * catalog is locked by a DDL: the lookups never wait for a lock, so the
 * caller asks again later.  Runs a short transaction; never throws (a
 * catalog error becomes a refusal).
 */
extern PoolAuthStatus bp_auth_begin(PoolAuthRequest *req, MemoryContext parent,
									PoolAuthExchange **ex, StringInfo out,
									PoolAuthRefusal *why, PoolAuthIdentity *who);

/*
 * Checks the header of the client's next message (type byte, length word
 * including itself) before its body is read; false with *why filled in
 * for a message that is not the expected 'p' or has a bad length.
 */
extern bool bp_auth_header_ok(PoolAuthExchange *ex, char type, uint32 len,
							  PoolAuthRefusal *why);

/*
 * Feeds the body of the client's 'p' message (len bytes, with a NUL at
 * body[len]).  PA_EXCHANGE: send out and wait for the next message.
 * PA_ADMIT: authenticated and allowed to connect; out may hold a last
 * message (SASL final) to send before the client is handed over.
 * PA_REFUSE: *why filled in, as core words it.  Never throws.
 */
extern PoolAuthStatus bp_auth_continue(PoolAuthExchange *ex, char *body, int len,
									   StringInfo out, PoolAuthRefusal *why,
									   PoolAuthIdentity *who);

/* Frees an exchange and everything it holds (the stored secret included) */
extern void bp_auth_free(PoolAuthExchange *ex);

/*
 * Checks the n pools against the catalogs if a role or database changed
 * since the last complete check, filling in each valid.  Returns false
 * when nothing was checked: nothing changed, or a catalog is locked (then
 * the next call checks).  Never waits for a lock, never throws.
 */
extern bool bp_auth_check_pools(PoolAuthPool *pools, int n);

/*
 * Inside a transaction: takes, without waiting, the locks a lookup of
 * roles, memberships and databases needs (the catalogs and their indexes).
 * false if a DDL holds one; what was taken is released at transaction end.
 */
extern bool bp_auth_lock_catalogs(void);

#endif							/* AUTH_H */
