/* builtin_pool--1.0.sql */

\echo Use "CREATE EXTENSION builtin_pool" to load this file. \quit

-- One row per executor of the pool
CREATE FUNCTION pool_status(
    OUT port integer,
    OUT database text,
    OUT role text,
    OUT pid integer,
    OUT state text,
    OUT dedicated boolean,
    OUT sessions integer,
    OUT active integer,
    OUT waiting integer,
    OUT pinned integer,
    OUT transactions bigint,
    OUT bytes_in bigint,
    OUT bytes_out bigint,
    OUT statements integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pool_status'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Connections the listener accepted, refused before a session started,
-- cancel requests it forwarded, TLS handshakes it completed, and the TLS
-- sessions whose client input it relays now, and the logins it greeted
-- itself (from what an executor sent for the same login)
CREATE FUNCTION pool_listener_stats(
    OUT accepted bigint,
    OUT rejected bigint,
    OUT cancels bigint,
    OUT tls_handshakes bigint,
    OUT tls_sessions integer,
    OUT cancels_unmatched bigint,
    -- logins refused, by cause (admin.c): authentication and pg_hba.conf
    -- (class 28), limits (53300), shutting down (57P03, 57P01), timeouts,
    -- protocol (class 08, 0A000), other (an unknown database, ...)
    OUT refused_auth bigint,
    OUT refused_limit bigint,
    OUT refused_unavailable bigint,
    OUT refused_timeout bigint,
    OUT refused_protocol bigint,
    OUT refused_other bigint,
    -- logins the listener greeted itself (greeting.c)
    OUT greeted bigint,
    -- logins checked with the role and database facts it keeps (auth.c)
    OUT auth_cached bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pool_listener_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION pool_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION pool_listener_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pool_status() TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION pool_listener_stats() TO pg_read_all_stats;

-- ---------------------------------------------------------------------
-- Admin functions and per-pool counters (admin.c)
-- ---------------------------------------------------------------------

-- Counters of every pool served since the server started, one row per
-- (port, database, role); they only grow.  wait_time in milliseconds.
CREATE FUNCTION pool_pool_stats(
    OUT port integer,
    OUT database text,
    OUT role text,
    OUT paused boolean,
    OUT waits bigint,
    OUT wait_time double precision,
    OUT pins bigint,
    OUT moves bigint,
    OUT executors_started bigint,
    OUT reserve_started bigint,
    OUT executors_lost bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pool_pool_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Totals per (port, database, role) pool: its executors now, and its
-- counters (a pool without executors keeps its row and counters)
CREATE VIEW pool_pools AS
    SELECT port, database, role,
           coalesce(s.executors, 0) AS executors,
           coalesce(s.sessions, 0) AS sessions,
           coalesce(s.active, 0) AS active,
           coalesce(s.waiting, 0) AS waiting,
           coalesce(s.pinned, 0) AS pinned,
           coalesce(s.transactions, 0) AS transactions,
           coalesce(s.bytes_in, 0) AS bytes_in,
           coalesce(s.bytes_out, 0) AS bytes_out,
           coalesce(s.statements, 0) AS statements,
           coalesce(m.paused, false) AS paused,
           coalesce(m.waits, 0) AS waits,
           coalesce(m.wait_time, 0) AS wait_time,
           coalesce(m.pins, 0) AS pins,
           coalesce(m.moves, 0) AS moves,
           coalesce(m.executors_started, 0) AS executors_started,
           coalesce(m.reserve_started, 0) AS reserve_started,
           coalesce(m.executors_lost, 0) AS executors_lost
    FROM (SELECT port, database, role,
                 count(*)::integer AS executors,
                 sum(sessions)::integer AS sessions,
                 sum(active)::integer AS active,
                 sum(waiting)::integer AS waiting,
                 sum(pinned)::integer AS pinned,
                 sum(transactions)::bigint AS transactions,
                 sum(bytes_in)::bigint AS bytes_in,
                 sum(bytes_out)::bigint AS bytes_out,
                 sum(statements)::integer AS statements
            FROM pool_status()
           GROUP BY port, database, role) s
    FULL JOIN pool_pool_stats() m USING (port, database, role);

REVOKE ALL ON FUNCTION pool_pool_stats() FROM PUBLIC;
REVOKE ALL ON pool_pools FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pool_pool_stats() TO pg_read_all_stats;
GRANT SELECT ON pool_pools TO pg_read_all_stats;

-- Holds every new transaction of the pools of database and role (NULL:
-- any) once their running transactions ended; returns when they have.
-- timeout in milliseconds (NULL: no limit); on timeout or cancel the
-- pause is lifted and an error raised.
CREATE FUNCTION pool_pause(database name DEFAULT NULL, role name DEFAULT NULL,
                           timeout bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'pool_pause'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Lifts the pauses the arguments cover (NULL: any); false if none
CREATE FUNCTION pool_resume(database name DEFAULT NULL, role name DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pool_resume'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Replaces the executors of the pools of database and role (NULL: any)
-- with fresh ones, moving their sessions between transactions; returns
-- how many executors retire
CREATE FUNCTION pool_reconnect(database name DEFAULT NULL, role name DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'pool_reconnect'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- pg_reload_conf() for the pool's reloadable settings
CREATE FUNCTION pool_reload()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pool_reload'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION pool_pause(name, name, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION pool_resume(name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION pool_reconnect(name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION pool_reload() FROM PUBLIC;

-- pg_prepared_statements under the name it has through the pool too; kept
-- for scripts written against earlier versions.  Through the pool,
-- pg_prepared_statements itself shows the calling session's statements
-- under their own names, in every database (statements_scan.c).
CREATE VIEW pool_prepared_statements AS
    SELECT * FROM pg_catalog.pg_prepared_statements;

GRANT SELECT ON pool_prepared_statements TO PUBLIC;

-- ---------------------------------------------------------------------
-- Client sessions (session_table.c): one row per pool session, and
-- cancel/terminate by session_id.  Readable by everyone, as
-- pg_stat_activity: other roles' sessions show their identity only,
-- unless the caller has pg_read_all_stats or is a member of their role.
-- ---------------------------------------------------------------------
CREATE FUNCTION pool_sessions(
    OUT session_id bigint,
    OUT port integer,
    OUT database text,
    OUT role text,
    OUT current_user_name text,
    OUT client_addr inet,
    OUT client_port integer,
    OUT application_name text,
    OUT tls_version text,
    OUT tls_cipher text,
    OUT session_start timestamptz,
    OUT state text,
    OUT xact_start timestamptz,
    OUT query_start timestamptz,
    OUT state_change timestamptz,
    OUT wait_start timestamptz,
    OUT wait_duration interval,
    OUT query text,
    OUT executor_pid integer,
    OUT pinned boolean,
    OUT pin_reason text,
    OUT statements integer,
    OUT bytes_in bigint,
    OUT bytes_out bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pool_sessions'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW pool_sessions AS SELECT * FROM pool_sessions();

-- Permissions inside, as pg_cancel_backend()/pg_terminate_backend()
CREATE FUNCTION pool_cancel_session(session_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pool_cancel_session'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION pool_terminate_session(session_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pool_terminate_session'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

GRANT SELECT ON pool_sessions TO PUBLIC;
