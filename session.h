/*-------------------------------------------------------------------------
 *
 * session.h
 *	  A client session served by an executor, and the switch in and out of it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SESSION_H
#define SESSION_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "port/pg_bswap.h"
#include "libpq/libpq-be.h"
#include "storage/latch.h"

#include "channel.h"
#include "startup.h"

/* Where a session is, from the executor's point of view */
typedef enum PoolSessionState
{
	PS_IDLE,					/* waiting for its client's next message */
	PS_QUEUED,					/* a complete message is waiting: in the run queue */
	PS_RUNNING					/* switched in */
} PoolSessionState;

typedef struct PoolSession
{
	dlist_node	all_node;		/* in the executor's list of sessions */
	dlist_node	run_node;		/* in the run queue while PS_QUEUED */
	PoolSessionState state;
	uint32		id;				/* unique within the executor */
	MemoryContext cxt;			/* everything of this session lives here */
	int			sock;			/* what the client sends: its socket, or for
								 * TLS the listener's relay (tls.h) */
	int			client_fd;		/* where output goes: sock, or for TLS the
								 * client's TCP socket */
	Port	   *port;
	WaitEventSet *wes;			/* this session's FeBeWaitSet */
	uint32		cancel_key;
	PoolStartup startup;		/* points into startup_body */
	List	   *option_names;	/* its defaults: role and database settings,
								 * then startup options ("options" too) */
	List	   *option_values;
	int			n_role_settings;	/* how many come first from pg_db_role_setting */
	char	   *startup_body;
	int			startup_len;
	int			port_index;		/* pool port it came in on */

	/* protocol state, kept per session (postgres.c keeps it in statics) */
	bool		send_ready_for_query;
	bool		doing_extended_query_message;
	bool		ignore_till_sync;

	/* prepared statements (prepared.c, extended.c) */
	List	   *statements;		/* PoolStatement, named ones */
	List	   *moved_statements;	/* to prepare again after a move */
	struct PoolStatement *moved_unnamed;	/* likewise, the unnamed one */
	bool		unnamed_changed;	/* see PoolStatement.result_changed */
	List	   *ahead_errors;	/* parse_ahead.c's, for Bind and Describe */
	struct CachedPlanSource *unnamed_psrc;

	bool		greeted;		/* startup finished, ReadyForQuery sent */
	bool		dead;			/* the socket failed: send nothing more */
	bool		closing;		/* Terminate, EOF or protocol error */
	bool		recheck;		/* input arrived while queued or running */
	bool		hangup;			/* an edge said the peer hung up: once its
								 * input is served, look for the EOF */

	/* state core keeps per process; the session is pinned while any exists */
	List	   *listen_channels;	/* LISTEN, minus UNLISTEN */
	List	   *hold_cursors;	/* names of WITH HOLD cursors declared */
	bool		temp_check;		/* an object was created: look for temp ones */
	bool		temp_ns_ready;	/* its temp schema was set up and committed,
								 * as on its own backend (pinning.c) */

	List	   *own_placeholders;	/* custom settings it SET or RESET by name */

	/* currval()/lastval() of earlier transactions (sequences.c) */
	List	   *seq_values;		/* PoolSeqValue */
	Oid			seq_last;		/* lastval()'s sequence */
	bool		pinned;			/* executor.c serves it alone (set_pinned) */
	const char *pin_reason;		/* why, for pool_sessions (pinning.c) */
	int			stab_slot;		/* its pool_sessions slot, or -1 */
	uint64		session_id;		/* pool_sessions' id */
	uint64		bytes_in;		/* what it sent and was sent, for */
	uint64		bytes_out;		/* pool_sessions */
	TimestampTz started_at;		/* for log_disconnections' session time */
	pg_time_t	log_id;			/* MyStartTime while it runs: its %c */
	bool		moved;			/* handed back to be moved: not ending */
	TimestampTz idle_deadline;	/* its idle_session_timeout, 0 if none */
	TimestampTz queued_at;		/* when it joined the run queue */

	StringInfoData outbuf;		/* output not yet sent */
	BpTlsSealer tls;			/* TLS: seals output; suite 0 otherwise */
	StringInfoData sealed;		/* TLS: records not yet sent */
	WaitEventSet *write_wes;	/* TLS: waits for client_fd to take more */

	/* settings while switched out; see session.c */
	MemoryContext guc_cxt;
	List	   *guc_names;
	List	   *guc_values;
	char	  **last_reported;	/* malloc'd, owned while switched out */
	Oid			session_userid;
	Oid			current_userid;
} PoolSession;

/*
 * Writers and readers of the state a session carries when it moves
 * (bp_session_serialize and each module's part of it); a reader raises
 * ERROR on a short buffer.
 */
static inline void
bp_put_string(StringInfo buf, const char *str)
{
	appendBinaryStringInfo(buf, str, strlen(str) + 1);
}

static inline void
bp_put_int32(StringInfo buf, int32 v)
{
	uint32		n = pg_hton32((uint32) v);

	appendBinaryStringInfo(buf, (char *) &n, 4);
}

static inline void
bp_put_int64(StringInfo buf, int64 v)
{
	uint64		n = pg_hton64((uint64) v);

	appendBinaryStringInfo(buf, (char *) &n, 8);
}

static inline const char *
bp_get_string(StringInfo in)
{
	return pq_getmsgrawstring(in);
}

static inline int32
bp_get_int32(StringInfo in)
{
	return (int32) pq_getmsgint(in, 4);
}

static inline int64
bp_get_int64(StringInfo in)
{
	return pq_getmsgint64(in);
}

/* The session switched in, or NULL */
extern PoolSession *bp_current;

/* true while the executor switches GUCs between sessions */
extern bool bp_switching;

extern void bp_session_module_init(void);
extern void bp_session_report_settings(void);
extern PoolSession *bp_session_create(int sock, int client_fd,
									  const PoolHandoff *handoff,
									  const char *body);
extern void bp_session_send_quick(PoolSession *s, const char *data, int len);
/* the same as the executor exits: a TLS session gets close_notify too */
extern void bp_session_send_last(PoolSession *s, const char *data, int len);
extern bool bp_setting_hidden(const char *name);
/* utility_hook.c's branches for settings: before and after core */
extern void bp_settings_utility_before(Node *stmt);
extern void bp_settings_utility_after(Node *stmt);
/* pg_settings' "setting" for s's startup option name, NULL if none */
extern char *bp_setting_startup_value(PoolSession *s, const char *name);
/* current_setting() as redirect.c calls it for the current session */
extern Datum bp_current_setting(PG_FUNCTION_ARGS);
extern void bp_setting_note_placeholder(const char *name);
extern bool bp_session_output_pending(PoolSession *s);
extern void bp_session_switch_in(PoolSession *s);
extern void bp_session_switch_out(void);
extern void bp_session_apply_startup_options(PoolSession *s);
extern bool bp_session_startup_from_memo(PoolSession *s, uint32 epoch);
extern void bp_session_remember_startup(PoolSession *s, uint32 epoch);
extern void bp_session_apply_startup(PoolSession *s, const char *name, int elevel);
extern void bp_session_discard_input(void);
extern void bp_session_destroy(PoolSession *s);
extern void bp_session_send_fatal(int sqlstate, const char *message);
extern void bp_session_send_fatal_detail(int sqlstate, const char *message,
										 const char *detail, const char *hint);

/*
 * What a backend reports as its client starts and ends (log_connections,
 * log_disconnections, pg_stat_database.sessions), for a pooled session
 */
extern void bp_session_report_start(PoolSession *s);
extern void bp_session_report_end(PoolSession *s);
extern bool bp_session_serialize(PoolSession *s, StringInfo buf, int max_len);
extern void bp_session_restore(PoolSession *s, const char *data, int len);

#endif							/* SESSION_H */
