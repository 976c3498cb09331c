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
-- sessions whose client input it relays now, and the logins it greeted
-- itself (from what an executor sent for the same login)
CREATE FUNCTION pool_listener_stats(
    OUT accepted bigint,
    OUT rejected bigint,
    OUT cancels bigint,
    OUT tls_handshakes bigint,
    OUT tls_sessions integer,
    OUT cancels_unmatched bigint,
    OUT greeted bigint)
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
