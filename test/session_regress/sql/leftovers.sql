--
-- leftovers: runs alone after every other test ended.  Several of them
-- left state behind at their end (settings, a role, a prepared statement,
-- a temp table, temp functions and a temp domain, a WITH HOLD cursor,
-- advisory locks, LISTEN, a currval); this new session must find none of
-- it, as on a backend of its own.
--
SELECT current_user = session_user AS own_user;
SHOW work_mem;
SHOW DateStyle;
SHOW search_path;
SHOW application_name;
SELECT count(*) FROM pool_prepared_statements;
EXECUTE p_left;
SELECT count(*) FROM pg_cursors;
FETCH c_left;
SELECT count(*) FROM pg_listening_channels();
SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema();
SELECT to_regclass('pg_temp.temp_left') IS NULL AS no_temp_left;
SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema();
SELECT count(*) FROM pg_type WHERE typnamespace = pg_my_temp_schema();
SELECT * FROM temp_left;
SELECT currval('seq_left');
SELECT lastval();
-- the locks are free (waiting, bounded, for a session still ending)
SET lock_timeout = '20s';
SELECT pg_advisory_lock(1009);
SELECT pg_advisory_lock(1010);
SELECT pg_advisory_unlock_all();
RESET lock_timeout;
DROP SEQUENCE seq_left;
