/*-------------------------------------------------------------------------
 *
 * builtin_pool.h
 *	  Types, limits and GUC variables shared by every module of builtin_pool.
 *
 * The extension pools client connections inside the server: a listener
 * background worker (proxy.c) accepts clients on the pool ports and hands
 * each socket over to an executor background worker (executor.c), which
 * serves many sessions, switching between them only at transaction
 * boundaries.  See DESIGN.md for the whole picture.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BUILTIN_POOL_H
#define BUILTIN_POOL_H

#include "postmaster/postmaster.h"

/* GUC variables, defined in builtin_pool.c */
extern int	bp_port;
extern int	bp_session_pool_ports;
extern int	bp_session_pool_size;
extern int	bp_max_sessions;
extern char *bp_dedicated_databases;
extern bool bp_use_io_uring;
extern int	bp_idle_executor_timeout;
extern int	bp_queue_wait_timeout;
extern int	bp_max_pinned_executors;
extern int	bp_reserve_pool_size;
extern int	bp_reserve_pool_timeout;
extern int	bp_max_held_executors;
extern int	bp_min_pool_size;
extern int	bp_executor_lifetime;
extern bool bp_smart_shutdown_guard;
extern int	bp_max_pending_connections;
extern int	bp_max_pending_per_address;

/* Upper bound for builtin_pool.session_pool_ports */
#define BP_MAX_POOL_PORTS	64

/* Entry points of the background workers (library "builtin_pool") */
extern PGDLLEXPORT void bp_listener_main(Datum main_arg);
extern PGDLLEXPORT void bp_executor_main(Datum main_arg);

/* bgw_type strings, as shown in pg_stat_activity.backend_type */
#define BP_LISTENER_TYPE	"builtin_pool listener"
#define BP_EXECUTOR_TYPE	"builtin_pool executor"

/*
 * builtin_pool.session_pool_ports = 0 pools the server's own port
 * (mainport.c): its pools have port index 0, shown as the server's port.
 */
#define bp_main_port_pooled()	(bp_session_pool_ports == 0)

/* TCP port number of pool port index i */
#define bp_port_for_index(i) \
	(bp_main_port_pooled() ? PostPortNumber : bp_port + (i))

/* true if dbname is listed in builtin_pool.dedicated_databases */
extern bool bp_database_is_dedicated(const char *dbname);

/*
 * Main port backends, once a client is authenticated (auth.c; called from
 * the ClientAuthentication_hook): CONNECTION LIMIT counts pooled sessions
 * there too.  FATAL when a limit is reached.
 */
struct Port;
extern void bp_main_port_limits(struct Port *port, int status);

#endif							/* BUILTIN_POOL_H */
