/*-------------------------------------------------------------------------
 *
 * auth.c
 *	  Decides whether a pool client may connect: pg_hba.conf matching and
 *	  the catalog checks core makes at connection start.
 *
 * Core's load_hba()/check_hba() cannot be used in a background worker: they
 * keep their rules in a child of PostmasterContext, which bgworkers delete
 * at start (pg15-internals.md, Q7).  So the listener tokenizes and parses
 * pg_hba.conf itself with the exported tokenize_auth_file() and
 * parse_hba_line(), keeps the result in its own context, and matches lines
 * here.  Host names in pg_hba.conf would need DNS, which blocks, so such
 * lines never match on the pool port.  Only "trust" and "reject" are served
 * for now; any other method refuses the client and says so (SCRAM and md5
 * through the exported primitives come next, per DESIGN.md section 6).
 *
 * Refusals follow core's order and wording: pg_hba.conf first, then the
 * role, then the database.  datconnlimit and rolconnlimit are not applied:
 * pooled sessions hold no backend.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "libpq/hba.h"
#include "libpq/ifaddr.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "auth.h"

/* What lookup() learns from the catalogs and pg_hba.conf */
typedef struct AuthFacts
{
	HbaLine    *hba;			/* first matching line, NULL if none */
	Oid			roleid;
	bool		rolcanlogin;
	bool		rolsuper;
	Oid			dboid;
	bool		datallowconn;
	bool		datinvalid;
	bool		canconnect;
} AuthFacts;

typedef struct IfaddrMatch
{
	SockAddr   *raddr;
	bool		samehost;
	bool		found;
} IfaddrMatch;

static MemoryContext hba_cxt = NULL;
static List *hba_lines = NIL;

#define token_is_keyword(t, k)	(!(t)->quoted && strcmp((t)->string, (k)) == 0)

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
 * The first pg_hba.conf line that matches, or NULL.  The pool port has no
 * TLS or GSS encryption yet, so hostssl and hostgssenc lines never match.
 * Caller is inside a transaction (group membership).
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
		else if (req->is_unix || h->conntype == ctHostSSL ||
				 h->conntype == ctHostGSS || !addr_matches(req, h))
			continue;
		if (db_matches(req, roleid, h->databases) &&
			role_matches(req, roleid, h->roles))
			return h;
	}
	return NULL;
}

/*
 * Reads the role, the database and the matching pg_hba.conf line in one
 * short transaction.  Returns NULL, or the error that interrupted the
 * lookups (copied into the caller's context; the transaction is aborted).
 */
static ErrorData *
lookup(PoolAuthRequest *req, AuthFacts *f)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *edata = NULL;

	memset(f, 0, sizeof(*f));
	PG_TRY();
	{
		HeapTuple	tup;
		Relation	rel;
		ScanKeyData key;
		SysScanDesc scan;

		StartTransactionCommand();
		tup = SearchSysCache1(AUTHNAME, CStringGetDatum(req->user));
		if (HeapTupleIsValid(tup))
		{
			Form_pg_authid r = (Form_pg_authid) GETSTRUCT(tup);

			f->roleid = r->oid;
			f->rolcanlogin = r->rolcanlogin;
			f->rolsuper = r->rolsuper;
			ReleaseSysCache(tup);
		}

		/*
		 * There is no syscache on database names.  The index may be used
		 * only once the shared relcache is complete, as in postinit.c.
		 */
		rel = table_open(DatabaseRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_database_datname, BTEqualStrategyNumber,
					F_NAMEEQ, CStringGetDatum(req->dbname));
		scan = systable_beginscan(rel, DatabaseNameIndexId,
								  criticalSharedRelcachesBuilt, NULL, 1, &key);
		tup = systable_getnext(scan);
		if (HeapTupleIsValid(tup))
		{
			Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);

			f->dboid = d->oid;
			f->datallowconn = d->datallowconn;
			f->datinvalid = database_is_invalid_form(d);
		}
		systable_endscan(scan);
		table_close(rel, AccessShareLock);

		if (OidIsValid(f->roleid) && OidIsValid(f->dboid))
			f->canconnect = f->rolsuper ||
				pg_database_aclcheck(f->dboid, f->roleid, ACL_CONNECT) == ACLCHECK_OK;
		f->hba = hba_find(req, f->roleid);
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
static bool
refuse(PoolAuthRefusal *why, int sqlstate, char *msg, char *detail,
	   char *hint, char *logdetail)
{
	why->sqlstate = sqlstate;
	why->message = msg;
	why->detail = detail;
	why->hint = hint;
	why->logdetail = logdetail;
	return false;
}

/* See auth.h; the order of the checks is core's */
bool
bp_auth_check(PoolAuthRequest *req, PoolAuthRefusal *why)
{
	AuthFacts	f;
	ErrorData  *edata;
	char	   *line = NULL;
	const char *who = req->remote_host;

	if (hba_cxt == NULL)
		return refuse(why, ERRCODE_CONFIG_FILE_ERROR,
					  psprintf("could not load %s", HbaFileName), NULL,
					  pstrdup("Fix the file and reload the server configuration."),
					  NULL);
	if ((edata = lookup(req, &f)) != NULL)
		return refuse(why, edata->sqlerrcode, edata->message, edata->detail,
					  edata->hint, NULL);
	if (f.hba)
		line = psprintf("Connection matched pg_hba.conf line %d: \"%s\"",
						f.hba->linenumber, f.hba->rawline);

	if (f.hba == NULL)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", no encryption",
							   who, req->user, req->dbname), NULL, NULL, NULL);
	if (f.hba->ip_cmp_method == ipCmpMask && f.hba->hostname != NULL)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("pg_hba.conf line %d names a host, which the pool port cannot check",
							   f.hba->linenumber), NULL,
					  pstrdup("Use an address and mask in that line, or connect to the server's port."),
					  line);
	if (f.hba->auth_method == uaReject)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("pg_hba.conf rejects connection for host \"%s\", user \"%s\", database \"%s\", no encryption",
							   who, req->user, req->dbname), NULL, NULL, line);
	if (f.hba->auth_method != uaTrust)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("authentication method \"%s\" is not supported on the pool port",
							   hba_authname(f.hba->auth_method)), NULL,
					  psprintf("The pool port serves only \"trust\" and \"reject\" so far; other methods are planned.  Connect to the server's port %d, or change pg_hba.conf.",
							   PostPortNumber), line);
	if (!OidIsValid(f.roleid))
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("role \"%s\" does not exist", req->user),
					  NULL, NULL, NULL);
	if (!f.rolcanlogin)
		return refuse(why, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					  psprintf("role \"%s\" is not permitted to log in", req->user),
					  NULL, NULL, NULL);
	if (!OidIsValid(f.dboid))
		return refuse(why, ERRCODE_UNDEFINED_DATABASE,
					  psprintf("database \"%s\" does not exist", req->dbname),
					  NULL, NULL, NULL);
	if (f.datinvalid)
		return refuse(why, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					  psprintf("cannot connect to invalid database \"%s\"", req->dbname),
					  NULL, pstrdup("Use DROP DATABASE to drop invalid databases."),
					  NULL);
	if (!f.datallowconn)
		return refuse(why, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					  psprintf("database \"%s\" is not currently accepting connections",
							   req->dbname), NULL, NULL, NULL);
	if (!f.canconnect)
		return refuse(why, ERRCODE_INSUFFICIENT_PRIVILEGE,
					  psprintf("permission denied for database \"%s\"", req->dbname),
					  pstrdup("User does not have CONNECT privilege."), NULL, NULL);
	return true;
}
