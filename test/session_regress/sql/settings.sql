--
-- settings: SET, SET LOCAL, RESET, SHOW, set_config(), startup values
--
-- pg_regress starts psql with PGDATESTYLE, PGTZ, PGOPTIONS (IntervalStyle)
-- and PGAPPNAME: those are this session's startup values, which RESET,
-- RESET ALL and DISCARD ALL return to.
SHOW application_name;
SHOW DateStyle;
-- PGTZ=PST8PDT (a link to America/Los_Angeles in recent tzdata)
SELECT current_setting('TimeZone') IN ('PST8PDT', 'America/Los_Angeles') AS pg_regress_timezone;
SHOW IntervalStyle;
SHOW work_mem;

-- SET, SET LOCAL, set_config(), transactions
SET work_mem = '3MB';
SHOW work_mem;
SET LOCAL work_mem = '5MB';
SHOW work_mem;
BEGIN;
SET LOCAL work_mem = '5MB';
SHOW work_mem;
COMMIT;
SHOW work_mem;
BEGIN;
SET work_mem = '6MB';
SHOW work_mem;
ROLLBACK;
SHOW work_mem;
BEGIN;
SET work_mem = '6MB';
SAVEPOINT s1;
SET work_mem = '7MB';
ROLLBACK TO s1;
SHOW work_mem;
COMMIT;
SHOW work_mem;
SELECT set_config('work_mem', '8MB', false);
SHOW work_mem;
BEGIN;
SELECT set_config('work_mem', '9MB', true);
SHOW work_mem;
COMMIT;
SHOW work_mem;
CREATE FUNCTION settings_set_wm(text) RETURNS text LANGUAGE plpgsql
  AS $$ BEGIN RETURN set_config('work_mem', $1, false); END $$;
SELECT settings_set_wm('10MB');
SHOW work_mem;
CREATE FUNCTION settings_local_wm() RETURNS text LANGUAGE sql
  SET work_mem = '11MB' AS $$ SELECT current_setting('work_mem') $$;
SELECT settings_local_wm();
SHOW work_mem;
RESET work_mem;
SHOW work_mem;

-- errors
SET work_mem = 'lots';
SHOW no_such_setting;
SET no_such_setting = 1;
SELECT current_setting('no_such_setting');
SELECT current_setting('no_such_setting', true) IS NULL AS missing_is_null;

-- formatting settings
SET DateStyle = 'ISO, DMY';
SELECT '03/04/2024'::date, '2024-01-02 03:04:05+00'::timestamptz;
SET TimeZone = 'Asia/Tokyo';
SELECT '2024-01-02 03:04:05+00'::timestamptz;
SET IntervalStyle = 'sql_standard';
SELECT interval '1 day 2 hours 3 minutes';
SET extra_float_digits = -3;
SELECT 1.0::float8 / 3;
SET bytea_output = 'escape';
SELECT 'ab\001'::bytea;
RESET DateStyle;
SHOW DateStyle;
SET TimeZone TO DEFAULT;
SELECT current_setting('TimeZone') IN ('PST8PDT', 'America/Los_Angeles') AS pg_regress_timezone;
SELECT '03/04/2024'::date, '2024-01-02 03:04:05+00'::timestamptz;
RESET ALL;
SHOW IntervalStyle;
SHOW extra_float_digits;
SHOW bytea_output;
SELECT interval '1 day 2 hours 3 minutes', 1.0::float8 / 3, 'ab'::bytea;

-- application_name
SET application_name = 'settings changed';
SHOW application_name;
RESET application_name;
SHOW application_name;

-- search_path
CREATE SCHEMA settings_s;
CREATE TABLE settings_s.settings_t (x text);
INSERT INTO settings_s.settings_t VALUES ('in settings_s');
SELECT * FROM settings_t;
SET search_path = settings_s, public;
SELECT * FROM settings_t;
SELECT current_schemas(false);
RESET search_path;
SELECT current_schemas(false);

-- custom placeholders
SET settings_app.tenant = 'tenant 1';
SHOW settings_app.tenant;
SELECT current_setting('settings_app.tenant');
BEGIN;
SET LOCAL settings_app.tenant = 'tenant 2';
SHOW settings_app.tenant;
COMMIT;
SHOW settings_app.tenant;
RESET settings_app.tenant;
SHOW settings_app.tenant;

-- transaction characteristics
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SHOW default_transaction_isolation;
BEGIN;
SHOW transaction_isolation;
COMMIT;
SET default_transaction_read_only = on;
CREATE TABLE settings_ro (x int);
RESET default_transaction_read_only;
RESET default_transaction_isolation;
SHOW transaction_isolation;

-- timeouts are per session
SET statement_timeout = '150ms';
SELECT pg_sleep(3);
RESET statement_timeout;
SELECT 'after statement_timeout' AS ok;

-- role
SET ROLE regress_pool_role;
SELECT current_user, session_user;
RESET ALL;
SELECT current_user, session_user;
RESET ROLE;
SELECT current_user, session_user;
BEGIN;
SET LOCAL ROLE regress_pool_role;
SELECT current_user;
COMMIT;
SELECT current_user;
SELECT set_config('role', 'regress_pool_role', false);
SELECT current_user;

-- DISCARD ALL returns to the startup values
SET work_mem = '12MB';
SET DateStyle = 'German';
SET application_name = 'before discard';
DISCARD ALL;
SELECT current_user, current_setting('work_mem') AS work_mem,
  current_setting('DateStyle') AS datestyle,
  current_setting('application_name') AS application_name;

DROP SCHEMA settings_s CASCADE;
DROP FUNCTION settings_set_wm(text), settings_local_wm();

-- left set at session end: the next session must not see it
SET work_mem = '13MB';
SET DateStyle = 'SQL, DMY';
SET search_path = pg_catalog;
SET ROLE regress_pool_role;
