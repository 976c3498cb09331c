/*-------------------------------------------------------------------------
 *
 * builtin_pool.c
 *	  Module entry point: GUCs, shared memory hooks and the listener worker.
 *
 * Nothing else happens here.  _PG_init refuses to load unless the library
 * is in shared_preload_libraries (the pool needs shared memory and a static
 * background worker), defines every builtin_pool.* setting, checks that the
 * settings can work together, and registers the listener (proxy.c), which
 * launches executors (executor.c) on demand.  With session_pool_ports = 0
 * it also wires up the main port's hand-over (mainport.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/postmaster.h"
#include "libpq/auth.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "admin.h"
#include "builtin_pool.h"
#include "greeting.h"
#include "mainport.h"
#include "pool_shmem.h"
#include "sockets.h"
#include "tls.h"

PG_MODULE_MAGIC;

int			bp_port = 6543;
int			bp_session_pool_ports = 1;
int			bp_session_pool_size = 10;
int			bp_max_sessions = 1000;
char	   *bp_dedicated_databases = NULL;
bool		bp_use_io_uring = true;
int			bp_idle_executor_timeout = 0;
int			bp_queue_wait_timeout = 0;
int			bp_max_pinned_executors = 8;
int			bp_reserve_pool_size = 4;
int			bp_reserve_pool_timeout = 1000;
int			bp_max_held_executors = 4;
int			bp_min_pool_size = 0;
int			bp_executor_lifetime = 0;
bool		bp_smart_shutdown_guard = true;
int			bp_max_pending_connections = 1000;
int			bp_max_pending_per_address = 100;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

void		_PG_init(void);

/* builtin_pool.dedicated_databases must be a list of identifiers */
static bool
check_dedicated_databases(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitIdentifierString(raw, ',', &names);

	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	list_free(names);
	pfree(raw);
	return ok;
}

static void
define_gucs(void)
{
	DefineCustomIntVariable("builtin_pool.port",
							"First TCP port of the connection pool.",
							NULL,
							&bp_port,
							6543, 1, 65535,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("builtin_pool.session_pool_ports",
							"Number of pool ports, from builtin_pool.port on; each keeps its own pools.",
							"0 pools the server's own port instead: its clients are authenticated by their backend, then handed to the pool.",
							&bp_session_pool_ports,
							1, 0, BP_MAX_POOL_PORTS,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("builtin_pool.session_pool_size",
							"Maximum number of executors of one (port, database, role) pool.",
							NULL,
							&bp_session_pool_size,
							10, 1, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("builtin_pool.max_sessions",
							"Maximum number of client sessions one executor holds.",
							NULL,
							&bp_max_sessions,
							1000, 1, 100000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("builtin_pool.dedicated_databases",
							   "Databases whose sessions each get an executor of their own.",
							   NULL,
							   &bp_dedicated_databases,
							   "postgres",
							   PGC_POSTMASTER, GUC_LIST_INPUT,
							   check_dedicated_databases, NULL, NULL);
	DefineCustomBoolVariable("builtin_pool.use_io_uring",
							 "Accepts pool connections with io_uring; off uses epoll.",
							 "io_uring is also skipped, with a log message, where the kernel refuses it.",
							 &bp_use_io_uring,
							 true,
							 PGC_POSTMASTER, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("builtin_pool.idle_executor_timeout",
							"Time after which an executor without sessions exits.",
							"0 keeps idle executors forever.",
							&bp_idle_executor_timeout,
							0, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.queue_wait_timeout",
							"Longest time a session's request may wait for its executor.",
							"A session waiting longer is ended with an error. 0 waits without limit.",
							&bp_queue_wait_timeout,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.max_pinned_executors",
							"Maximum executors serving a pinned session, beyond the pools' sizes.",
							"A session that would pin while this many executors are pinned gets an error instead. 0 keeps pinned executors within builtin_pool.session_pool_size: the pool's other sessions wait while all its executors are pinned.",
							&bp_max_pinned_executors,
							8, 0, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.reserve_pool_size",
							"Executors a pool may start beyond builtin_pool.session_pool_size when requests wait.",
							"They start when a request waited builtin_pool.reserve_pool_timeout while every executor of its pool was inside a transaction, and exit once idle.",
							&bp_reserve_pool_size,
							4, 0, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.reserve_pool_timeout",
							"How long a request waits for a busy pool before a reserve executor starts.",
							NULL,
							&bp_reserve_pool_timeout,
							1000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.max_held_executors",
							"Executors per pool held by an idle transaction that the pool replaces.",
							"An executor whose session has been idle in a transaction for a moment stops counting against builtin_pool.session_pool_size, so the pool starts another and the executor's other sessions move there. 0 keeps such executors in the pool's size.",
							&bp_max_held_executors,
							4, 0, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.min_pool_size",
							"Executors each pool that has been used keeps started.",
							"Capped by builtin_pool.session_pool_size; they are started again when they exit, and builtin_pool.idle_executor_timeout does not stop them.",
							&bp_min_pool_size,
							0, 0, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.executor_lifetime",
							"Age after which an executor retires between transactions.",
							"Its sessions move to other executors of the pool, with their whole state. 0 keeps executors however old.",
							&bp_executor_lifetime,
							0, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("builtin_pool.smart_shutdown_guard",
							 "Makes a smart shutdown wait for pooled sessions.",
							 "The listener keeps one idle connection to the server's Unix socket, as the bootstrap superuser, so that a smart shutdown waits for it; it disconnects once no pooled session is left.",
							 &bp_smart_shutdown_guard,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.tls_record_limit",
							"Records after which a pooled TLS session is closed (developer setting).",
							"0 applies the limits of RFC 8446 section 5.5 (2^24 records for AES-GCM); a smaller value lets tests reach the limit.",
							&bp_tls_record_limit,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.max_pending_connections",
							"Maximum number of pool clients connecting or authenticating at a time.",
							"A client over the limit is refused with SQLSTATE 53300.",
							&bp_max_pending_connections,
							1000, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("builtin_pool.max_pending_per_address",
							"Maximum number of pool clients from one address connecting or authenticating at a time.",
							"All Unix socket clients count as one address. A client over the limit is refused with SQLSTATE 53300.",
							&bp_max_pending_per_address,
							100, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("builtin_pool");
}

/* ClientAuthentication_hook of main port backends: see auth.c */
static void
client_authentication(Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	bp_main_port_limits(port, status);
	bp_mainport_client_auth(port, status);
}

/* emit_log_hook: main port cancels for pooled sessions (mainport.c) */
static void
emit_log(ErrorData *edata)
{
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
	bp_mainport_log_hook(edata);
}

/*
 * Refuses settings that cannot work, with a hint naming what to change:
 * better than a pool that silently never starts an executor.
 */
static void
check_settings(void)
{
	int			needed = bp_session_pool_size + 1;	/* executors + listener */

	if (max_worker_processes < needed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_worker_processes is too small for builtin_pool"),
				 errdetail("builtin_pool.session_pool_size = %d needs %d worker processes (its executors and the listener), but max_worker_processes is %d.",
						   bp_session_pool_size, needed, max_worker_processes),
				 errhint("Increase max_worker_processes to at least %d, or lower builtin_pool.session_pool_size.",
						 needed)));

	if (bp_main_port_pooled() && Db_user_namespace)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("builtin_pool.session_pool_ports = 0 cannot pool the server's port with db_user_namespace on"),
				 errhint("Turn db_user_namespace off, or set builtin_pool.session_pool_ports to 1 or more.")));
	if (bp_main_port_pooled())
		return;					/* no pool port: nothing more to check */

	if (bp_port + bp_session_pool_ports - 1 > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pool ports %d to %d are out of range",
						bp_port, bp_port + bp_session_pool_ports - 1),
				 errhint("Lower builtin_pool.port or builtin_pool.session_pool_ports.")));

	if (PostPortNumber >= bp_port &&
		PostPortNumber < bp_port + bp_session_pool_ports)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pool port range %d to %d includes the server's port %d",
						bp_port, bp_port + bp_session_pool_ports - 1,
						PostPortNumber),
				 errhint("Set builtin_pool.port to a port the server does not use.")));
}

static void
register_listener(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* a hot standby serves read-only pooled sessions, as its backends */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "builtin_pool", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "bp_listener_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, BP_LISTENER_TYPE, BGW_MAXLEN);
	strlcpy(worker.bgw_type, BP_LISTENER_TYPE, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	bp_shmem_request();
	bp_admin_shmem_request();
}

static void
shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	bp_shmem_startup();
	bp_admin_shmem_startup();
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("builtin_pool must be loaded via shared_preload_libraries"),
				 errhint("Add builtin_pool to shared_preload_libraries and restart the server.")));

	define_gucs();
	check_settings();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = client_authentication;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = emit_log;

	register_listener();
	bp_greeting_init();

	/*
	 * The pool's sockets belong to the postmaster, so that no listener
	 * restart ever leaves their paths free (sockets.c).  Not in single-user
	 * mode, which serves no pool.
	 */
	if (IsPostmasterEnvironment && !IsUnderPostmaster)
	{
		bp_sockets_create();
		bp_mainport_create();
	}
}

/*
 * Called by the listener for each new pool; the list is parsed each time
 * since pools are created rarely and the setting cannot change at runtime.
 */
bool
bp_database_is_dedicated(const char *dbname)
{
	char	   *raw = pstrdup(bp_dedicated_databases);
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (!SplitIdentifierString(raw, ',', &names))
	{
		pfree(raw);
		return false;			/* already refused at startup */
	}
	foreach(lc, names)
	{
		if (strcmp((char *) lfirst(lc), dbname) == 0)
			found = true;
	}
	list_free(names);
	pfree(raw);
	return found;
}
