--
-- errors: messages, fields, notices, recovery after an error
--
SELECT 1 / 0;
SELEC 1;
SELECT * FROM no_such_table;
SELECT no_such_column FROM (SELECT 1 AS a) s;
SELECT 'abc'::int;
SELECT repeat('x', 3)::int;
CREATE TABLE err_t (id int PRIMARY KEY, v text NOT NULL CHECK (v <> ''));
INSERT INTO err_t VALUES (1, 'a');
INSERT INTO err_t VALUES (1, 'b');
INSERT INTO err_t VALUES (2, NULL);
INSERT INTO err_t VALUES (3, '');
SELECT * FROM err_t;

-- PL/pgSQL errors, notices, context
CREATE FUNCTION err_f(int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF $1 < 0 THEN
    RAISE EXCEPTION 'negative: %', $1
      USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = '22023';
  END IF;
  RAISE NOTICE 'ok: %', $1;
  RETURN $1;
END $$;
SELECT err_f(1);
SELECT err_f(-1);
CREATE FUNCTION err_outer(int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN err_f($1) + 1;
END $$;
SELECT err_outer(2);
SELECT err_outer(-2);
DO $$ BEGIN RAISE WARNING 'a warning' USING DETAIL = 'warning detail'; END $$;
DO $$
BEGIN
  PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
  RAISE NOTICE 'caught: % (%)', SQLERRM, SQLSTATE;
END $$;
DO $$
DECLARE
  st text; msg text; det text;
BEGIN
  INSERT INTO err_t VALUES (1, 'again');
EXCEPTION WHEN unique_violation THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
  RAISE NOTICE '% / % / %', st, msg, det;
END $$;

-- client_min_messages is per session
SET client_min_messages = warning;
SELECT err_f(2);
DO $$ BEGIN RAISE WARNING 'still shown'; END $$;
RESET client_min_messages;
SELECT err_f(3);

-- verbosity
\set VERBOSITY terse
SELECT err_f(-3);
\set VERBOSITY default
\set SHOW_CONTEXT always
SELECT err_f(4);
\set SHOW_CONTEXT errors

-- statement_timeout cancels only this session's statement
SET statement_timeout = '200ms';
SELECT pg_sleep(5);
SELECT 'next statement runs' AS ok;
BEGIN;
SELECT pg_sleep(5);
ROLLBACK;
RESET statement_timeout;

-- an error at execution of a prepared statement
PREPARE err_p(int) AS SELECT 10 / $1;
EXECUTE err_p(2);
EXECUTE err_p(0);
DEALLOCATE err_p;

-- a long error message
SELECT repeat('long ', 200)::int;

DROP FUNCTION err_outer(int), err_f(int);
DROP TABLE err_t;
