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
    OUT bytes_out bigint)
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
           sum(bytes_out)::bigint AS bytes_out
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

-- The calling session's prepared statements under their own names.  Through
-- the pool, pg_prepared_statements lists every statement of the executor
-- under internal keys; this view keeps the caller's, named as it named them.
CREATE FUNCTION pool_statement_prefix()
RETURNS text
AS 'MODULE_PATHNAME', 'pool_statement_prefix'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION pool_session_statements(OUT key text, OUT name text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pool_session_statements'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW pool_prepared_statements AS
    SELECT coalesce(o.name, s.name) AS name,
           s.statement, s.prepare_time, s.parameter_types, s.from_sql,
           s.generic_plans, s.custom_plans
    FROM pg_prepared_statements s
         LEFT JOIN pool_session_statements() o ON o.key = s.name
    WHERE pool_statement_prefix() IS NULL OR o.key IS NOT NULL;

GRANT SELECT ON pool_prepared_statements TO PUBLIC;

-- Through the pool, calls of nextval(), currval(), lastval() and setval(),
-- and identity columns' next values, are pointed at these functions (see
-- sequences.c): they act as core's do and keep each session's currval() and
-- lastval() values across transactions, which core keeps per process.
-- Called directly, outside the pool, they are core's.
CREATE FUNCTION pool_nextval(regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pool_nextval'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pool_currval(regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pool_currval'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pool_lastval()
RETURNS bigint
AS 'MODULE_PATHNAME', 'pool_lastval'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pool_setval(regclass, bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pool_setval'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pool_setval(regclass, bigint, boolean)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pool_setval3'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- An identity column's next value: needs USAGE on the sequence, or INSERT
-- or UPDATE on the table whose identity it is.
CREATE FUNCTION pool_identity_nextval(regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pool_identity_nextval'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- Through the pool, current_setting() calls are pointed at these: as core's,
-- except that a custom placeholder ("myapp.x") another session created does
-- not exist for a session that never set it, as on its own backend.
CREATE FUNCTION pool_current_setting(text)
RETURNS text
AS 'MODULE_PATHNAME', 'pool_current_setting'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE FUNCTION pool_current_setting(text, boolean)
RETURNS text
AS 'MODULE_PATHNAME', 'pool_current_setting'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
