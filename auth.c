/*-------------------------------------------------------------------------
 *
 * auth.c
 *	  Decides whether a pool client may connect: pg_hba.conf matching, the
 *	  password exchange the matching line asks for, and the catalog checks
 *	  core makes at connection start.
 *
 * Core's load_hba()/check_hba() cannot be used in a background worker: they
 * keep their rules in a child of PostmasterContext, which bgworkers delete
 * at start (pg15-internals.md, Q7).  So the listener tokenizes and parses
 * pg_hba.conf itself with the exported tokenize_auth_file() and
 * parse_hba_line(), keeps the result in its own context, and matches lines
 * here.  Host names in pg_hba.conf would need DNS, which blocks, so a line
 * naming a host refuses the client instead of being evaluated.
 *
 * Methods served: trust, reject, password, md5 and scram-sha-256; any other
 * refuses the client and says so.  ClientAuthentication() blocks on the
 * socket (and its hba half crashes a bgworker), so the password methods are
 * driven here as a message codec over core's exported primitives: the
 * secret from get_role_password(), then plain_crypt_verify(),
 * md5_crypt_verify() or the pg_be_scram_mech callbacks.  The listener's
 * state machine sends what this module words and feeds back the client's
 * answers as they arrive, so a slow client delays nobody.  The choices
 * are core's (CheckPasswordAuth, CheckPWChallengeAuth, CheckSASLAuth): an
 * md5 line whose role holds a SCRAM secret runs SCRAM; an unknown role, a
 * missing or expired password go through the motions and fail like a
 * wrong password, with the reason in the server log only.
 *
 * The hashing primitives register their OpenSSL contexts with
 * CurrentResourceOwner, which is NULL in the listener outside a transaction
 * (a NULL owner is a SIGSEGV, pg15-internals.md Q7): each step runs under a
 * resource owner of its own, released even when the step throws.
 *
 * Refusals follow core's order and wording: pg_hba.conf first, then the
 * password, then the role, then the database.  The facts for all of it
 * come from one short transaction as the client starts: a password
 * exchange reuses them when it succeeds rather than reading the catalogs
 * again.  CONNECTION LIMIT of the role and of the database counts the main
 * port's backends (as core) plus the pool's sessions, superusers exempt;
 * main port logins count the pool's sessions too (bp_main_port_limits, the
 * one part of this file that runs in backends).
 *
 * Most logins read no catalog at all: the facts of a (role, database) that
 * logged in are kept (facts_cache), and a login on a line that checks no
 * password, in a pg_hba.conf that names no group, takes them from there.
 * They are dropped whenever the listener takes in an invalidation of a
 * role, a database or a membership, which it does before every login:
 * the same way a backend keeps its syscache, and as fresh as a backend's
 * own login, which reads the catalogs as they stand when it starts.
 * Secrets are never kept: a password line reads the catalogs each time.
 *
 * Lookups never wait for a lock: a DDL holding pg_authid or pg_database
 * (LOCK, VACUUM FULL, REINDEX) would otherwise freeze the listener and
 * every client in its hands.  The locks a lookup needs are taken with
 * ConditionalLockRelationOid first (the syscache and the scans then find
 * them held); if one is busy, nothing is decided and the caller asks again
 * later (PA_BUSY).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_auth_members.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/user.h"
#include "libpq/crypt.h"
#include "libpq/hba.h"
#include "libpq/ifaddr.h"
#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "libpq/pqformat.h"
#include "libpq/sasl.h"
#include "libpq/scram.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "auth.h"
#include "builtin_pool.h"
#include "pool_shmem.h"
#include "shutdown.h"

/*
 * Longest client message accepted, length word included: core's limits
 * for a password packet (auth.c) and a SASL message (auth-sasl.c).
 */
#define BP_MAX_PASSWORD_MESSAGE	65535
#define BP_MAX_SASL_MESSAGE		1024

/* What lookup() learns from the catalogs and pg_hba.conf */
typedef struct AuthFacts
{
	HbaLine    *hba;			/* first matching line, NULL if none */
	Oid			roleid;
	bool		rolcanlogin;
	bool		rolsuper;
	int			rolconnlimit;
	Oid			dboid;
	bool		datallowconn;
	bool		datinvalid;
	int			datconnlimit;
	bool		canconnect;
	char	   *shadow_pass;	/* stored secret if the line wants one */
	const char *logdetail;		/* why shadow_pass is NULL */
} AuthFacts;

typedef struct IfaddrMatch
{
	SockAddr   *raddr;
	bool		samehost;
	bool		found;
} IfaddrMatch;

/* How the client proves its password; see exchange_begin() */
typedef enum PoolAuthKind
{
	PAK_PASSWORD,				/* cleartext: AuthenticationCleartextPassword */
	PAK_MD5,					/* salted md5: AuthenticationMD5Password */
	PAK_SCRAM					/* SASL SCRAM-SHA-256: AuthenticationSASL... */
} PoolAuthKind;

/*
 * One client's exchange.  Everything lives in cxt, the SCRAM state
 * included, which keeps pointers to the Port and to earlier messages.
 * The hba line is copied: a reload may free the rules mid-exchange.
 */
struct PoolAuthExchange
{
	MemoryContext cxt;
	PoolAuthKind kind;
	char		user[NAMEDATALEN];
	char		dbname[NAMEDATALEN];
	int			hba_linenumber;
	char	   *hba_rawline;
	char	   *shadow_pass;	/* NULL: no role, no password, or expired */
	const char *logdetail;		/* server-log reason of a failure */
	char		md5_salt[4];
	Port	   *port;			/* what the SCRAM callbacks read */
	void	   *sasl_state;		/* NULL until SASLInitialResponse */
	AuthFacts	facts;			/* role and database, for admit_checks()
								 * once the password is right (no hba line,
								 * no secret) */
};

static MemoryContext hba_cxt = NULL;
static List *hba_lines = NIL;

/* a role or database changed since the pools were last checked */
static bool pools_changed = true;

/* does a line of hba_lines name a group (+role, samerole)? */
static bool hba_reads_catalog = false;

/* See the header comment; only positive facts (role and database exist) */
typedef struct FactsKey
{
	NameData	user;
	NameData	dbname;
} FactsKey;

typedef struct FactsEntry
{
	FactsKey	key;
	AuthFacts	facts;			/* hba, shadow_pass, logdetail unset */
} FactsEntry;

#define BP_FACTS_CACHE_MAX	1024

static HTAB *facts_cache = NULL;
static uint64 facts_generation = 0; /* bumped by every flush */

#define token_is_keyword(t, k)	(!(t)->quoted && strcmp((t)->string, (k)) == 0)

/*
 * Does matching this line need the catalogs: a +group in its user column,
 * samerole or samegroup in its database column (role_is_member)?
 */
static bool
line_reads_catalog(HbaLine *h)
{
	ListCell   *lc;

	foreach(lc, h->roles)
	{
		AuthToken  *t = (AuthToken *) lfirst(lc);

		if (!t->quoted && t->string[0] == '+')
			return true;
	}
	foreach(lc, h->databases)
	{
		AuthToken  *t = (AuthToken *) lfirst(lc);

		if (token_is_keyword(t, "samerole") || token_is_keyword(t, "samegroup"))
			return true;
	}
	return false;
}

/* See auth.h; the file is read with the server's own tokenizer and parser */
void
bp_auth_load_hba(MemoryContext parent)
{
	FILE	   *file;
	MemoryContext cxt;
	MemoryContext old;
	MemoryContext tokcxt;
	List	   *tok_lines = NIL;
	List	   *lines = NIL;
	ListCell   *lc;
	bool		ok = true;

	file = AllocateFile(HbaFileName, "r");
	if (file == NULL)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("builtin_pool could not open configuration file \"%s\": %m",
						HbaFileName)));
		return;
	}
	cxt = AllocSetContextCreate(parent, "builtin_pool hba", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	tokcxt = tokenize_auth_file(HbaFileName, file, &tok_lines, LOG);
	FreeFile(file);
	foreach(lc, tok_lines)
	{
		TokenizedAuthLine *tl = (TokenizedAuthLine *) lfirst(lc);
		HbaLine    *line = tl->err_msg ? NULL : parse_hba_line(tl, LOG);

		if (line == NULL)
			ok = false;
		else
			lines = lappend(lines, line);
	}
	MemoryContextDelete(tokcxt);
	MemoryContextSwitchTo(old);

	if (!ok || lines == NIL)
	{
		MemoryContextDelete(cxt);
		ereport(LOG,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("builtin_pool did not load \"%s\"", HbaFileName),
				 hba_cxt ?
				 errdetail("The pool keeps the rules it loaded before.") :
				 errdetail("Every pool connection is refused until the file is fixed and the configuration reloaded.")));
		return;
	}
	if (hba_cxt)
		MemoryContextDelete(hba_cxt);
	hba_cxt = cxt;
	hba_lines = lines;
	hba_reads_catalog = false;
	foreach(lc, lines)
	{
		if (line_reads_catalog((HbaLine *) lfirst(lc)))
			hba_reads_catalog = true;
	}
}

/* Is roleid a member (not through superuser) of the role named name? */
static bool
role_is_member(Oid roleid, const char *name)
{
	Oid			group;

	if (!OidIsValid(roleid))
		return false;
	group = get_role_oid(name, true);
	return OidIsValid(group) && is_member_of_role_nosuper(roleid, group);
}

/* Database column; catalog access: caller is inside a transaction */
static bool
db_matches(PoolAuthRequest *req, Oid roleid, List *tokens)
{
	ListCell   *lc;

	foreach(lc, tokens)
	{
		AuthToken  *t = (AuthToken *) lfirst(lc);

		if (token_is_keyword(t, "all"))
			return true;
		if (token_is_keyword(t, "sameuser"))
		{
			if (strcmp(req->dbname, req->user) == 0)
				return true;
		}
		else if (token_is_keyword(t, "samerole") || token_is_keyword(t, "samegroup"))
		{
			if (role_is_member(roleid, req->dbname))
				return true;
		}
		else if (token_is_keyword(t, "replication"))
			continue;			/* the pool refuses replication connections */
		else if (strcmp(t->string, req->dbname) == 0)
			return true;
	}
	return false;
}

/* User column; catalog access: caller is inside a transaction */
static bool
role_matches(PoolAuthRequest *req, Oid roleid, List *tokens)
{
	ListCell   *lc;

	foreach(lc, tokens)
	{
		AuthToken  *t = (AuthToken *) lfirst(lc);

		if (!t->quoted && t->string[0] == '+')
		{
			if (role_is_member(roleid, t->string + 1))
				return true;
		}
		else if (token_is_keyword(t, "all") || strcmp(t->string, req->user) == 0)
			return true;
	}
	return false;
}

/* Is raddr inside addr/mask (same family)? */
static bool
addr_in_range(SockAddr *raddr, struct sockaddr *addr, struct sockaddr *mask)
{
	return raddr->addr.ss_family == addr->sa_family &&
		pg_range_sockaddr(&raddr->addr, (struct sockaddr_storage *) addr,
						  (struct sockaddr_storage *) mask);
}

/* pg_foreach_ifaddr callback for samehost / samenet */
static void
ifaddr_match(struct sockaddr *addr, struct sockaddr *netmask, void *arg)
{
	IfaddrMatch *m = (IfaddrMatch *) arg;
	struct sockaddr_storage full;

	if (m->found)
		return;
	if (m->samehost)
	{
		pg_sockaddr_cidr_mask(&full, NULL, addr->sa_family);
		netmask = (struct sockaddr *) &full;
	}
	m->found = addr_in_range(m->raddr, addr, netmask);
}

/*
 * Address column of a host line.  A line naming a host name matches any
 * address: resolving names would block the listener, so such a line, when
 * its database and role match, refuses the client (see bp_authenticate)
 * rather than being skipped, which could fall through to a later, more
 * permissive line.
 */
static bool
addr_matches(PoolAuthRequest *req, HbaLine *h)
{
	IfaddrMatch m;

	switch (h->ip_cmp_method)
	{
		case ipCmpAll:
			return true;
		case ipCmpMask:
			if (h->hostname != NULL)
				return true;
			return addr_in_range(req->raddr, (struct sockaddr *) &h->addr,
								 (struct sockaddr *) &h->mask);
		case ipCmpSameHost:
		case ipCmpSameNet:
			m.raddr = req->raddr;
			m.samehost = h->ip_cmp_method == ipCmpSameHost;
			m.found = false;
			if (pg_foreach_ifaddr(ifaddr_match, &m) < 0)
				ereport(LOG, (errmsg("error enumerating network interfaces: %m")));
			return m.found;
	}
	return false;
}

/*
 * The first pg_hba.conf line that matches, or NULL.  hostssl lines match
 * TLS clients, hostnossl lines the others; the pool port has no GSS
 * encryption, so hostgssenc lines never match.  Caller is inside a
 * transaction (group membership).
 */
static HbaLine *
hba_find(PoolAuthRequest *req, Oid roleid)
{
	ListCell   *lc;

	foreach(lc, hba_lines)
	{
		HbaLine    *h = (HbaLine *) lfirst(lc);

		if (h->conntype == ctLocal)
		{
			if (!req->is_unix)
				continue;
		}
		else if (req->is_unix || h->conntype == ctHostGSS ||
				 (h->conntype == ctHostSSL && !req->ssl) ||
				 (h->conntype == ctHostNoSSL && req->ssl) ||
				 !addr_matches(req, h))
			continue;
		if (db_matches(req, roleid, h->databases) &&
			role_matches(req, roleid, h->roles))
			return h;
	}
	return NULL;
}

/* Does this method check a password (and so need the stored secret)? */
static bool
method_wants_password(UserAuth method)
{
	return method == uaPassword || method == uaMD5 || method == uaSCRAM;
}

/* See auth.h */
bool
bp_auth_lock_catalogs(void)
{
	static const Oid rels[] = {
		AuthIdRelationId, AuthIdRolnameIndexId, AuthIdOidIndexId,
		AuthMemRelationId, AuthMemRoleMemIndexId, AuthMemMemRoleIndexId,
		DatabaseRelationId, DatabaseNameIndexId, DatabaseOidIndexId
	};
	int			i;

	for (i = 0; i < lengthof(rels); i++)
		if (!ConditionalLockRelationOid(rels[i], AccessShareLock))
			return false;
	return true;
}

/*
 * The fixed part of the pg_database row named name into *d; false if there
 * is none.  There is no syscache on database names, and the index may be
 * used only once the shared relcache is complete, as in postinit.c: a main
 * port backend that arrives before the shared relcache init file exists
 * would otherwise end with "cannot read pg_class without having selected a
 * database" (get_database_oid() always uses the index).
 */
static bool
database_by_name(const char *name, FormData_pg_database *d)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found;

	rel = table_open(DatabaseRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_database_datname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(name));
	scan = systable_beginscan(rel, DatabaseNameIndexId,
							  criticalSharedRelcachesBuilt, NULL, 1, &key);
	tup = systable_getnext(scan);
	found = HeapTupleIsValid(tup);
	if (found)
		memcpy(d, GETSTRUCT(tup), sizeof(*d));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * CONNECT granted to pg_database_owner.  A backend checks CONNECT once
 * connected to the database, where acl.c counts every role with the
 * privileges of its owner as a member of pg_database_owner; the listener
 * is connected to no database, where nobody is: it asks here instead.
 */
static bool
owner_may_connect(Oid dboid, Oid datdba, Oid roleid)
{
	return has_privs_of_role(roleid, datdba) &&
		pg_database_aclcheck(dboid, ROLE_PG_DATABASE_OWNER, ACL_CONNECT) == ACLCHECK_OK;
}

/*
 * lookup()'s reads, inside its transaction, the catalogs' locks held.
 * The secret is copied into cxt.
 */
static void
lookup_locked(PoolAuthRequest *req, AuthFacts *f, MemoryContext cxt)
{
	HeapTuple	tup;
	FormData_pg_database d;

	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(req->user));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_authid r = (Form_pg_authid) GETSTRUCT(tup);

		f->roleid = r->oid;
		f->rolcanlogin = r->rolcanlogin;
		f->rolsuper = r->rolsuper;
		f->rolconnlimit = r->rolconnlimit;
		ReleaseSysCache(tup);
	}

	memset(&d, 0, sizeof(d));
	if (database_by_name(req->dbname, &d))
	{
		f->dboid = d.oid;
		f->datallowconn = d.datallowconn;
		f->datinvalid = database_is_invalid_form(&d);
		f->datconnlimit = d.datconnlimit;
	}

	if (OidIsValid(f->roleid) && OidIsValid(f->dboid))
		f->canconnect = f->rolsuper ||
			pg_database_aclcheck(f->dboid, f->roleid, ACL_CONNECT) == ACLCHECK_OK ||
			owner_may_connect(f->dboid, d.datdba, f->roleid);
	f->hba = req->authenticated ? NULL : hba_find(req, f->roleid);
	if (f->hba && method_wants_password(f->hba->auth_method))
	{
		const char *logdetail = NULL;
		char	   *secret = get_role_password(req->user, &logdetail);

		if (secret)
			f->shadow_pass = MemoryContextStrdup(cxt, secret);
		if (logdetail)
			f->logdetail = MemoryContextStrdup(cxt, logdetail);
	}
}

/*
 * Reads the role, the database, the matching pg_hba.conf line and the
 * secret that line needs, in one short transaction.  Returns NULL, or the
 * error that interrupted the lookups (copied into the caller's context;
 * the transaction is aborted).  *busy: a catalog was locked, nothing read.
 * The secret and its log detail are copied into the caller's context
 * before the commit frees what get_role_password() returned.
 */
static ErrorData *
lookup(PoolAuthRequest *req, AuthFacts *f, bool *busy)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *edata = NULL;

	memset(f, 0, sizeof(*f));
	*busy = false;
	PG_TRY();
	{
		StartTransactionCommand();
		if (bp_auth_lock_catalogs())
			lookup_locked(req, f, cxt);
		else
			*busy = true;
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return edata;
}
/* Fills *why; msg is already formatted */
static PoolAuthStatus
refuse(PoolAuthRefusal *why, int sqlstate, char *msg, char *detail,
	   char *hint, char *logdetail)
{
	why->sqlstate = sqlstate;
	why->message = msg;
	why->detail = detail;
	why->hint = hint;
	why->logdetail = logdetail;
	return PA_REFUSE;
}

/* A refusal carrying an error a lookup or an exchange step threw */
static PoolAuthStatus
refuse_error(PoolAuthRefusal *why, ErrorData *edata)
{
	return refuse(why, edata->sqlerrcode, edata->message, edata->detail,
				  edata->hint, edata->detail_log);
}

/*
 * CONNECTION LIMIT as a DBA reads it: the main port's backends of the role
 * (or in the database), as core counts them (background workers, executors
 * included, do not count), plus the pool's sessions of it on every pool
 * port.  The newcomer is in neither count yet (a backend records its role
 * and database only after authentication) and makes one more.
 */
static bool
role_limit_reached(Oid roleid, int limit)
{
	return limit >= 0 &&
		CountUserBackends(roleid) +
		bp_pool_sessions_of(roleid, InvalidOid) >= limit;
}

static bool
db_limit_reached(Oid dboid, int limit)
{
	return limit >= 0 &&
		CountDBConnections(dboid) +
		bp_pool_sessions_of(InvalidOid, dboid) >= limit;
}

/*
 * The checks core makes once the client is authenticated (postinit.c,
 * InitializeSessionUserId and CheckMyDatabase), in its order: the role,
 * then the database.  On PA_ADMIT *who names them.  Only limited roles
 * and databases pay for counting their connections.
 */
static PoolAuthStatus
admit_checks(PoolAuthRequest *req, AuthFacts *f, PoolAuthRefusal *why,
			 PoolAuthIdentity *who)
{
	if (!OidIsValid(f->roleid))
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("role \"%s\" does not exist", req->user),
					  NULL, NULL, NULL);
	if (!f->rolcanlogin)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("role \"%s\" is not permitted to log in", req->user),
					  NULL, NULL, NULL);
	if (!f->rolsuper && role_limit_reached(f->roleid, f->rolconnlimit))
		return refuse(why, ERRCODE_TOO_MANY_CONNECTIONS,
					  psprintf("too many connections for role \"%s\"", req->user),
					  NULL, NULL, NULL);
	if (!OidIsValid(f->dboid))
		return refuse(why, ERRCODE_UNDEFINED_DATABASE,
					  psprintf("database \"%s\" does not exist", req->dbname),
					  NULL, NULL, NULL);
	if (f->datinvalid)
		return refuse(why, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					  psprintf("cannot connect to invalid database \"%s\"", req->dbname),
					  NULL, pstrdup("Use DROP DATABASE to drop invalid databases."),
					  NULL);
	if (!f->datallowconn)
		return refuse(why, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					  psprintf("database \"%s\" is not currently accepting connections",
							   req->dbname), NULL, NULL, NULL);
	if (!f->canconnect)
		return refuse(why, ERRCODE_INSUFFICIENT_PRIVILEGE,
					  psprintf("permission denied for database \"%s\"", req->dbname),
					  pstrdup("User does not have CONNECT privilege."), NULL, NULL);
	if (!f->rolsuper && db_limit_reached(f->dboid, f->datconnlimit))
		return refuse(why, ERRCODE_TOO_MANY_CONNECTIONS,
					  psprintf("too many connections for database \"%s\"", req->dbname),
					  NULL, NULL, NULL);
	who->roleid = f->roleid;
	who->dboid = f->dboid;
	return PA_ADMIT;
}

/* Appends an AuthenticationRequest ('R') with code and its data to out */
static void
auth_request(StringInfo out, int32 code, const char *data, int len)
{
	appendStringInfoChar(out, 'R');
	pq_sendint32(out, 4 + 4 + len);
	pq_sendint32(out, code);
	if (len > 0)
		appendBinaryStringInfo(out, data, len);
}

/*
 * Starts the exchange for a line asking for a password, the way core's
 * CheckPasswordAuth and CheckPWChallengeAuth choose: password asks for the
 * cleartext; md5 asks for an md5 hash only when the stored secret is one
 * (or, with no usable secret, when password_encryption is md5, so an
 * unknown role blends in), SCRAM otherwise; scram-sha-256 always SCRAM.
 * Returns PA_EXCHANGE with *exp set, or a refusal.
 */
static PoolAuthStatus
exchange_begin(PoolAuthRequest *req, AuthFacts *f, MemoryContext parent,
			   PoolAuthExchange **exp, StringInfo out, PoolAuthRefusal *why)
{
	MemoryContext cxt;
	PoolAuthExchange *ex;
	PasswordType pwtype;
	StringInfoData mechs;

	cxt = AllocSetContextCreate(parent, "builtin_pool auth exchange",
								ALLOCSET_SMALL_SIZES);
	ex = MemoryContextAllocZero(cxt, sizeof(PoolAuthExchange));
	ex->cxt = cxt;
	strlcpy(ex->user, req->user, NAMEDATALEN);
	strlcpy(ex->dbname, req->dbname, NAMEDATALEN);
	ex->hba_linenumber = f->hba->linenumber;
	ex->hba_rawline = MemoryContextStrdup(cxt, f->hba->rawline);
	if (f->shadow_pass)
		ex->shadow_pass = MemoryContextStrdup(cxt, f->shadow_pass);
	if (f->logdetail)
		ex->logdetail = MemoryContextStrdup(cxt, f->logdetail);
	ex->facts = *f;
	ex->facts.hba = NULL;		/* a reload may free it */
	ex->facts.shadow_pass = NULL;
	ex->facts.logdetail = NULL;

	pwtype = ex->shadow_pass ? get_password_type(ex->shadow_pass) :
		(PasswordType) Password_encryption;
	if (f->hba->auth_method == uaPassword)
		ex->kind = PAK_PASSWORD;
	else if (f->hba->auth_method == uaMD5 && pwtype == PASSWORD_TYPE_MD5)
		ex->kind = PAK_MD5;
	else
		ex->kind = PAK_SCRAM;

	switch (ex->kind)
	{
		case PAK_PASSWORD:
			auth_request(out, AUTH_REQ_PASSWORD, NULL, 0);
			break;
		case PAK_MD5:
			if (!pg_strong_random(ex->md5_salt, sizeof(ex->md5_salt)))
			{
				bp_auth_free(ex);
				return refuse(why, ERRCODE_INTERNAL_ERROR,
							  pstrdup("could not generate random MD5 salt"),
							  NULL, NULL, NULL);
			}
			auth_request(out, AUTH_REQ_MD5, ex->md5_salt, sizeof(ex->md5_salt));
			break;
		case PAK_SCRAM:

			/*
			 * The callbacks read the user name and whether TLS is in use;
			 * over TLS they offer SCRAM-SHA-256-PLUS and hash the server
			 * certificate of the listener's OpenSSL connection for
			 * tls-server-end-point, as core does.
			 */
			ex->port = MemoryContextAllocZero(cxt, sizeof(Port));
			ex->port->sock = PGINVALID_SOCKET;
			ex->port->user_name = ex->user;
			ex->port->database_name = ex->dbname;
			ex->port->remote_host = MemoryContextStrdup(cxt, req->remote_host);
			ex->port->ssl_in_use = req->ssl_conn != NULL;
			ex->port->ssl = req->ssl_conn;
			initStringInfo(&mechs);
			pg_be_scram_mech.get_mechanisms(ex->port, &mechs);
			appendStringInfoChar(&mechs, '\0');
			auth_request(out, AUTH_REQ_SASL, mechs.data, mechs.len);
			pfree(mechs.data);
			break;
	}
	*exp = ex;
	return PA_EXCHANGE;
}

/* How core names the encryption of a connection in its messages */
static const char *
encryption_state(PoolAuthRequest *req)
{
	return req->ssl ? _("SSL encryption") : _("no encryption");
}

/*
 * Client certificate checks of a hostssl line, as core's: clientcert=
 * verify-ca and verify-full want a certificate that verified against
 * ssl_ca_file; verify-full and the cert method also want its CN to be the
 * user name.  Mapping names (map=, clientname=DN) is not done here.
 * Returns PA_ADMIT when the certificate passes.
 */
static PoolAuthStatus
check_certificate(PoolAuthRequest *req, HbaLine *hba, char *line,
				  PoolAuthRefusal *why)
{
	bool		full = hba->clientcert == clientCertFull ||
		hba->auth_method == uaCert;

	if (ssl_ca_file[0] == '\0')
		return refuse(why, ERRCODE_CONFIG_FILE_ERROR,
					  pstrdup("client certificates can only be checked if a root certificate store is available"),
					  NULL, NULL, line);
	if (full && (hba->usermap != NULL || hba->clientcertname != clientCertCN))
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("pg_hba.conf line %d maps certificate names, which the pool port cannot do",
							   hba->linenumber), NULL,
					  psprintf("Remove map= and clientname=DN from that line, or connect to the server's port %d.",
							   PostPortNumber), line);
	if (!req->cert_valid)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  pstrdup("connection requires a valid client certificate"),
					  NULL, NULL, line);
	if (full && (req->cert_cn == NULL || strcmp(req->cert_cn, req->user) != 0))
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("certificate authentication failed for user \"%s\"",
							   req->user), NULL, NULL,
					  req->cert_cn == NULL ?
					  psprintf("client certificate contains no user name\n%s", line) :
					  psprintf("CN mismatch\n%s", line));
	return PA_ADMIT;
}

/* ---------------------------------------------------------------------
 * The facts cache (see the header comment)
 * ---------------------------------------------------------------------
 */

/* Syscache callback: a role, a database or a membership changed */
static void
facts_cache_flush(Datum arg, int cacheid, uint32 hashvalue)
{
	if (facts_cache != NULL)
		hash_destroy(facts_cache);
	facts_cache = NULL;
	facts_generation++;
}

/* The cache key of req; false if a name is too long to be one */
static bool
facts_key(PoolAuthRequest *req, FactsKey *key)
{
	if (strlen(req->user) >= NAMEDATALEN || strlen(req->dbname) >= NAMEDATALEN)
		return false;
	memset(key, 0, sizeof(*key));
	strlcpy(NameStr(key->user), req->user, NAMEDATALEN);
	strlcpy(NameStr(key->dbname), req->dbname, NAMEDATALEN);
	return true;
}

/*
 * Takes in the invalidations other processes sent, which flush the cache
 * (facts_cache_flush) if one concerns us.  The listener is outside any
 * transaction here; core does the same reading at every lock it takes
 * (the barrier: sinval's first look at the queue takes no lock).  A
 * message whose processing threw is consumed all the same, so on an error
 * every cache of the process is reset, as after a queue overflow, and the
 * caller reads the catalogs.
 */
static bool
take_invalidations(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	pg_memory_barrier();
	PG_TRY();
	{
		AcceptInvalidationMessages();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		InvalidateSystemCaches();	/* flushes ours too */
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * The facts of req's role and database from the cache, with hba, the
 * pg_hba.conf line bp_auth_begin() found without the catalogs (NULL for a
 * main port login, which matched its line in its backend).  False if they
 * must be read from the catalogs: not cached, a group-matching pg_hba.conf
 * (membership is read from the catalogs), or a line that checks a
 * password (the secret is never cached).  *f is then to be filled by
 * lookup().
 */
static bool
facts_from_cache(PoolAuthRequest *req, HbaLine *hba, AuthFacts *f)
{
	FactsKey	key;
	FactsEntry *e;

	if ((hba == NULL && !req->authenticated) ||
		(hba != NULL && method_wants_password(hba->auth_method)) ||
		!facts_key(req, &key) || !take_invalidations() || facts_cache == NULL)
		return false;
	e = (FactsEntry *) hash_search(facts_cache, &key, HASH_FIND, NULL);
	if (e == NULL)
		return false;
	*f = e->facts;
	f->hba = hba;
	pg_atomic_fetch_add_u64(&bp_shared->n_auth_cached, 1);
	return true;
}

/*
 * Keeps the facts lookup() read, unless an invalidation came since
 * generation was read (they may be older than it) or they name no role
 * or no database (the cache must not grow with unknown names).
 */
static void
facts_remember(PoolAuthRequest *req, AuthFacts *f, uint64 generation)
{
	FactsKey	key;
	FactsEntry *e;
	bool		found;

	if (generation != facts_generation || !OidIsValid(f->roleid) ||
		!OidIsValid(f->dboid) || !facts_key(req, &key))
		return;
	if (facts_cache != NULL && hash_get_num_entries(facts_cache) >= BP_FACTS_CACHE_MAX)
		facts_cache_flush((Datum) 0, 0, 0);
	if (facts_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(FactsKey);
		ctl.entrysize = sizeof(FactsEntry);
		ctl.hcxt = TopMemoryContext;
		facts_cache = hash_create("builtin_pool login facts", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = (FactsEntry *) hash_search(facts_cache, &key, HASH_ENTER, &found);
	e->facts = *f;
	e->facts.hba = NULL;
	e->facts.shadow_pass = NULL;
	e->facts.logdetail = NULL;
}

/*
 * The facts of req: from the cache, or read from the catalogs (and then
 * kept).  hba as facts_from_cache().  Returns NULL or the error a lookup
 * threw; *busy as lookup().
 */
static ErrorData *
facts_get(PoolAuthRequest *req, HbaLine *hba, AuthFacts *f, bool *busy)
{
	uint64		generation;
	ErrorData  *edata;

	*busy = false;
	if (facts_from_cache(req, hba, f))
		return NULL;
	generation = facts_generation;
	edata = lookup(req, f, busy);
	if (edata == NULL && !*busy)
		facts_remember(req, f, generation);
	return edata;
}

/* The log detail naming the line a client matched */
static char *
matched_line(HbaLine *hba)
{
	return psprintf("Connection matched pg_hba.conf line %d: \"%s\"",
					hba->linenumber, hba->rawline);
}

/*
 * The refusals the pg_hba.conf line decides alone, in core's order: no
 * line, a host name, reject, the client certificate, a method the pool
 * port does not serve.  PA_ADMIT: the client may go on (to its password,
 * or to the role and database checks).
 */
static PoolAuthStatus
line_verdict(PoolAuthRequest *req, HbaLine *hba, PoolAuthRefusal *why)
{
	const char *who = req->remote_host;

	if (hba == NULL)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", %s",
							   who, req->user, req->dbname, encryption_state(req)),
					  NULL, NULL, NULL);
	if (hba->ip_cmp_method == ipCmpMask && hba->hostname != NULL)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("pg_hba.conf line %d names a host, which the pool port cannot check",
							   hba->linenumber), NULL,
					  pstrdup("Use an address and mask in that line, or connect to the server's port."),
					  matched_line(hba));
	if (hba->auth_method == uaReject)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("pg_hba.conf rejects connection for host \"%s\", user \"%s\", database \"%s\", %s",
							   who, req->user, req->dbname, encryption_state(req)),
					  NULL, NULL, matched_line(hba));
	if ((hba->clientcert != clientCertOff || hba->auth_method == uaCert) &&
		check_certificate(req, hba, matched_line(hba), why) == PA_REFUSE)
		return PA_REFUSE;
	if (!method_wants_password(hba->auth_method) &&
		hba->auth_method != uaTrust && hba->auth_method != uaCert)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("authentication method \"%s\" is not supported on the pool port",
							   hba_authname(hba->auth_method)), NULL,
					  psprintf("The pool port serves \"trust\", \"reject\", \"password\", \"md5\", \"scram-sha-256\" and \"cert\".  Connect to the server's port %d, or change pg_hba.conf.",
							   PostPortNumber), matched_line(hba));
	return PA_ADMIT;
}

/*
 * See auth.h; the order of the checks is core's.  When the pg_hba.conf
 * line can be found without the catalogs, what it decides alone is decided
 * before any catalog is read: as in core, and so that such a refusal takes
 * the same time whether the role named exists or not (the facts cache
 * keeps existing roles only, and would tell them apart).
 */
PoolAuthStatus
bp_auth_begin(PoolAuthRequest *req, MemoryContext parent, PoolAuthExchange **ex,
			  StringInfo out, PoolAuthRefusal *why, PoolAuthIdentity *ident)
{
	AuthFacts	f;
	ErrorData  *edata;
	bool		busy;
	HbaLine    *hba = NULL;	/* the line, when found without catalogs */

	*ex = NULL;
	if (hba_cxt == NULL && !req->authenticated)
		return refuse(why, ERRCODE_CONFIG_FILE_ERROR,
					  psprintf("could not load %s", HbaFileName), NULL,
					  pstrdup("Fix the file and reload the server configuration."),
					  NULL);
	if (!req->authenticated && !hba_reads_catalog)
	{
		hba = hba_find(req, InvalidOid);
		if (line_verdict(req, hba, why) == PA_REFUSE)
			return PA_REFUSE;	/* else hba is not NULL */
	}
	if ((edata = facts_get(req, hba, &f, &busy)) != NULL)
		return refuse_error(why, edata);
	if (busy)
		return PA_BUSY;
	if (req->authenticated)
		return admit_checks(req, &f, why, ident);
	if (hba == NULL && line_verdict(req, f.hba, why) == PA_REFUSE)
		return PA_REFUSE;
	if (method_wants_password(f.hba->auth_method))
		return exchange_begin(req, &f, parent, ex, out, why);
	return admit_checks(req, &f, why, ident);
}

/* See auth.h; core's recv_password_packet and CheckSASLAuth bounds */
bool
bp_auth_header_ok(PoolAuthExchange *ex, char type, uint32 len,
				  PoolAuthRefusal *why)
{
	uint32		max = ex->kind == PAK_SCRAM ? BP_MAX_SASL_MESSAGE :
		BP_MAX_PASSWORD_MESSAGE;

	if (type != 'p')
	{
		int			mtype = (unsigned char) type;

		refuse(why, ERRCODE_PROTOCOL_VIOLATION,
			   ex->kind == PAK_SCRAM ?
			   psprintf("expected SASL response, got message type %d", mtype) :
			   psprintf("expected password response, got message type %d", mtype),
			   NULL, NULL, NULL);
		return false;
	}
	if (len < 4 || len > max)
	{
		refuse(why, ERRCODE_PROTOCOL_VIOLATION,
			   pstrdup("invalid message length"), NULL, NULL, NULL);
		return false;
	}
	return true;
}

/*
 * Verifies one client message; may throw (malformed message, crypto
 * failure), as core's routines do.  Returns a PG_SASL_EXCHANGE_* code for
 * every method; a SCRAM challenge or final message is appended to out.
 * Allocates in CurrentMemoryContext, which is ex->cxt: the SCRAM state
 * keeps what it allocates.  Caller provides a resource owner.
 */
static int
exchange_step(PoolAuthExchange *ex, char *body, int len, StringInfo out)
{
	StringInfoData msg;
	const char *input;
	int			inputlen;
	char	   *output = NULL;
	int			outputlen = 0;
	int			result;

	if (ex->kind != PAK_SCRAM)
	{
		/* as recv_password_packet: one string, exactly, and not empty */
		if (strlen(body) + 1 != len)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("invalid password packet size")));
		if (len == 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PASSWORD),
					 errmsg("empty password returned by client")));
		if (ex->shadow_pass == NULL)
			return PG_SASL_EXCHANGE_FAILURE;
		if (ex->kind == PAK_PASSWORD)
			result = plain_crypt_verify(ex->user, ex->shadow_pass, body,
										&ex->logdetail);
		else
			result = md5_crypt_verify(ex->user, ex->shadow_pass, body,
									  ex->md5_salt, sizeof(ex->md5_salt),
									  &ex->logdetail);
		return result == STATUS_OK ? PG_SASL_EXCHANGE_SUCCESS :
			PG_SASL_EXCHANGE_FAILURE;
	}

	/* the pq_getmsg* functions throw on a malformed message */
	msg.data = body;
	msg.len = len;
	msg.maxlen = len + 1;
	msg.cursor = 0;
	if (ex->sasl_state == NULL)
	{
		/*
		 * SASLInitialResponse: mechanism, then the initial response or -1.
		 * With no secret (no role, no password, expired) init() sets up a
		 * doomed exchange that fails like a wrong password.
		 */
		const char *mech = pq_getmsgrawstring(&msg);

		ex->sasl_state = pg_be_scram_mech.init(ex->port, mech, ex->shadow_pass);
		inputlen = (int) pq_getmsgint(&msg, 4);
		input = inputlen == -1 ? NULL : pq_getmsgbytes(&msg, inputlen);
	}
	else
	{
		inputlen = len;
		input = pq_getmsgbytes(&msg, len);
	}
	pq_getmsgend(&msg);

	/* input ends at the message's end, so body[len] terminates it */
	result = pg_be_scram_mech.exchange(ex->sasl_state, input, inputlen,
									   &output, &outputlen, &ex->logdetail);
	if (output)
	{
		if (result == PG_SASL_EXCHANGE_FAILURE)
			elog(ERROR, "output message found after SASL exchange failure");
		auth_request(out, result == PG_SASL_EXCHANGE_SUCCESS ?
					 AUTH_REQ_SASL_FIN : AUTH_REQ_SASL_CONT,
					 output, outputlen);
		pfree(output);
	}
	return result;
}

/* See auth.h */
PoolAuthStatus
bp_auth_continue(PoolAuthExchange *ex, char *body, int len, StringInfo out,
				 PoolAuthRefusal *why, PoolAuthIdentity *who)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner saved_owner = CurrentResourceOwner;
	ResourceOwner owner;
	ErrorData  *edata = NULL;
	int			result = PG_SASL_EXCHANGE_FAILURE;
	int			outlen = out->len;
	PoolAuthRequest req;

	/*
	 * A resource owner for this step only: the OpenSSL contexts the step
	 * leaves behind when it throws are freed with it.
	 */
	owner = ResourceOwnerCreate(NULL, "builtin_pool auth");
	CurrentResourceOwner = owner;
	PG_TRY();
	{
		MemoryContextSwitchTo(ex->cxt);
		result = exchange_step(ex, body, len, out);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_BEFORE_LOCKS, edata == NULL, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_LOCKS, edata == NULL, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_AFTER_LOCKS, edata == NULL, true);
	CurrentResourceOwner = saved_owner;
	ResourceOwnerDelete(owner);

	if (edata)
	{
		out->len = outlen;		/* nothing more goes to this client */
		return refuse_error(why, edata);
	}
	if (result == PG_SASL_EXCHANGE_CONTINUE)
		return PA_EXCHANGE;
	if (result != PG_SASL_EXCHANGE_SUCCESS)
	{
		/* core's auth_failed(): one message whatever the reason */
		char	   *line = psprintf("Connection matched pg_hba.conf line %d: \"%s\"",
									ex->hba_linenumber, ex->hba_rawline);

		out->len = outlen;
		return refuse(why, ERRCODE_INVALID_PASSWORD,
					  psprintf("password authentication failed for user \"%s\"",
							   ex->user), NULL, NULL,
					  ex->logdetail ? psprintf("%s\n%s", ex->logdetail, line) : line);
	}

	/*
	 * Authenticated: now the checks core makes after authentication, on the
	 * facts read as the client started (no second catalog transaction; a
	 * change since is caught by the pool's own check, proxy.c).
	 */
	memset(&req, 0, sizeof(req));
	req.user = ex->user;
	req.dbname = ex->dbname;
	if (admit_checks(&req, &ex->facts, why, who) != PA_ADMIT)
	{
		out->len = outlen;
		return PA_REFUSE;
	}
	return PA_ADMIT;
}

/* See auth.h */
void
bp_auth_free(PoolAuthExchange *ex)
{
	MemoryContextDelete(ex->cxt);
}

/* Syscache callback: a role or a database changed, or the caches were reset */
static void
pools_catalog_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	pools_changed = true;
}

/*
 * See auth.h.  The listener is connected to no database, and InitPostgres
 * returns before initialize_acl() then: without it, nothing told acl.c's
 * cache of role memberships that one changed, and a member removed from a
 * group kept that group's CONNECT privilege, and its +group pg_hba.conf
 * lines, on the pool port for as long as the listener lived (t/042).
 * It hashes a key through the syscache, which opens pg_database: inside a
 * transaction.
 */
void
bp_auth_init(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	initialize_acl();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	CacheRegisterSyscacheCallback(AUTHOID, pools_catalog_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(DATABASEOID, pools_catalog_changed, (Datum) 0);
	/* a change of pg_authid touches AUTHNAME too, so AUTHOID is enough */
	CacheRegisterSyscacheCallback(AUTHOID, facts_cache_flush, (Datum) 0);
	CacheRegisterSyscacheCallback(DATABASEOID, facts_cache_flush, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, facts_cache_flush, (Datum) 0);
}

/*
 * One pool against the catalogs, their locks held: the role must still
 * bear the pool's name and be allowed to log in, the database must still
 * bear its name.
 */
static bool
pool_still_valid(PoolAuthPool *p)
{
	HeapTuple	tup;
	bool		ok = false;

	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(p->roleid));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_authid r = (Form_pg_authid) GETSTRUCT(tup);

		ok = r->rolcanlogin && strcmp(NameStr(r->rolname), p->rolname) == 0;
		ReleaseSysCache(tup);
	}
	if (!ok)
		return false;
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(p->dboid));
	if (!HeapTupleIsValid(tup))
		return false;
	ok = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tup))->datname),
				p->dbname) == 0;
	ReleaseSysCache(tup);
	return ok;
}

/*
 * See auth.h.  Starting the transaction takes in the invalidations that
 * tell us of a change (pools_catalog_changed), so this is also how the
 * listener learns of one, at its pace.  The flag is cleared only once the
 * locks are held: a change seen while taking them is checked now.
 */
bool
bp_auth_check_pools(PoolAuthPool *pools, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		checked = false;

	PG_TRY();
	{
		StartTransactionCommand();
		if (pools_changed && bp_auth_lock_catalogs())
		{
			int			i;

			pools_changed = false;
			for (i = 0; i < n; i++)
				pools[i].valid = pool_still_valid(&pools[i]);
			checked = n > 0;
		}
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* the catalogs are readable, so this is unexpected: log, retry */
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pools_changed = true;
		checked = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return checked;
}

/*
 * See builtin_pool.h.  Core applies CONNECTION LIMIT counting backends
 * only; here a main port login, authenticated and about to be checked by
 * core, also counts the pool's sessions, and is refused with core's words.
 * Runs inside InitPostgres's transaction.  Where core would refuse for
 * another reason first (no such role or database, NOLOGIN, no CONNECT)
 * nothing is said, so that core's message wins.  While no pooled session
 * exists core's count is exact and nothing is read.
 */
void
bp_main_port_limits(Port *port, int status)
{
	HeapTuple	tup;
	Form_pg_authid r;
	FormData_pg_database d;
	Oid			roleid;
	Oid			dboid;
	bool		over;

	if (status != STATUS_OK || Db_user_namespace || bp_pool_sessions_total() == 0)
		return;

	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(port->user_name));
	if (!HeapTupleIsValid(tup))
		return;
	r = (Form_pg_authid) GETSTRUCT(tup);
	roleid = r->oid;
	if (!r->rolcanlogin || r->rolsuper)
	{
		ReleaseSysCache(tup);
		return;
	}
	over = role_limit_reached(roleid, r->rolconnlimit);
	ReleaseSysCache(tup);
	if (over)
		ereport(FATAL,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("too many connections for role \"%s\"", port->user_name)));

	if (!database_by_name(port->database_name, &d))
		return;
	dboid = d.oid;
	over = d.datallowconn && !database_is_invalid_form(&d) &&
		db_limit_reached(dboid, d.datconnlimit) &&
		pg_database_aclcheck(dboid, roleid, ACL_CONNECT) == ACLCHECK_OK;
	if (over)
		ereport(FATAL,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("too many connections for database \"%s\"",
						port->database_name)));
}
