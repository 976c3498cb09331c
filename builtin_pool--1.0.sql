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

-- Totals per (port, database, role) pool
CREATE VIEW pool_pools AS
    SELECT port, database, role,
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
    GROUP BY port, database, role;

-- Connections the listener accepted, refused before a session started,
-- cancel requests it forwarded, TLS handshakes it completed, and the TLS
-- sessions whose client input it relays now
CREATE FUNCTION pool_listener_stats(
    OUT accepted bigint,
    OUT rejected bigint,
    OUT cancels bigint,
    OUT tls_handshakes bigint,
    OUT tls_sessions integer,
    OUT cancels_unmatched bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pool_listener_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION pool_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION pool_listener_stats() FROM PUBLIC;
REVOKE ALL ON pool_pools FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pool_status() TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION pool_listener_stats() TO pg_read_all_stats;
GRANT SELECT ON pool_pools TO pg_read_all_stats;

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
