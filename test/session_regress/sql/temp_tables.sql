--
-- temp_tables: temporary tables, views, sequences; ON COMMIT; DISCARD TEMP
--
CREATE TABLE temp_shadow (x text);
INSERT INTO temp_shadow VALUES ('permanent');
CREATE TEMP TABLE temp_shadow (x text);
INSERT INTO temp_shadow VALUES ('temporary');
SELECT * FROM temp_shadow;
SELECT * FROM public.temp_shadow;
SELECT * FROM pg_temp.temp_shadow;
SELECT relpersistence FROM pg_class WHERE oid = 'pg_temp.temp_shadow'::regclass;

-- ON COMMIT DELETE ROWS / DROP, rollback
CREATE TEMP TABLE temp_ocdr (x int) ON COMMIT DELETE ROWS;
BEGIN;
INSERT INTO temp_ocdr VALUES (1), (2);
SELECT count(*) FROM temp_ocdr;
COMMIT;
SELECT count(*) FROM temp_ocdr;
BEGIN;
CREATE TEMP TABLE temp_ocd (x int) ON COMMIT DROP;
INSERT INTO temp_ocd VALUES (1);
SELECT * FROM temp_ocd;
COMMIT;
SELECT * FROM temp_ocd;
BEGIN;
CREATE TEMP TABLE temp_rb (x int);
ROLLBACK;
SELECT * FROM temp_rb;

-- views, sequences, SELECT INTO, indexes
CREATE TEMP VIEW temp_v AS SELECT x FROM temp_shadow;
SELECT * FROM temp_v;
CREATE VIEW temp_implicit_v AS SELECT x FROM temp_shadow;
SELECT relname, relpersistence FROM pg_class
  WHERE relname IN ('temp_v', 'temp_implicit_v') ORDER BY relname;
CREATE TEMP SEQUENCE temp_seq;
SELECT nextval('temp_seq'), nextval('temp_seq');
SELECT g AS id, 'v' || g AS v INTO TEMP temp_into FROM generate_series(1, 500) g;
CREATE INDEX ON temp_into (id);
ANALYZE temp_into;
SELECT count(*), sum(id) FROM temp_into;
SELECT v FROM temp_into WHERE id = 250;
UPDATE temp_into SET v = 'updated' WHERE id % 100 = 0;
DELETE FROM temp_into WHERE id > 400;
SELECT count(*) FILTER (WHERE v = 'updated') AS updated, count(*) FROM temp_into;

-- a temp table shadows the permanent one until dropped
DROP TABLE temp_shadow;
DROP VIEW temp_v, temp_implicit_v;
DROP TABLE temp_shadow;
SELECT * FROM temp_shadow;
CREATE TEMP TABLE temp_shadow AS SELECT 'temporary again' AS x;
SELECT * FROM temp_shadow;
CREATE TEMP VIEW temp_v AS SELECT x FROM temp_shadow;

-- DISCARD TEMP drops all of them
DISCARD TEMP;
SELECT * FROM temp_shadow;
SELECT * FROM temp_v;
SELECT * FROM temp_into;
SELECT nextval('temp_seq');
SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema();

-- temp table in a function
CREATE FUNCTION temp_fill(n int) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS temp_fn (x int);
  INSERT INTO temp_fn SELECT generate_series(1, n);
  RETURN (SELECT count(*) FROM temp_fn);
END $$;
SELECT temp_fill(3);
SELECT temp_fill(4);
DROP FUNCTION temp_fill(int);
DROP TABLE temp_fn;
DROP TABLE temp_shadow;

-- left at session end: the next session must not see it
CREATE TEMP TABLE temp_left (x int);
INSERT INTO temp_left VALUES (1);
