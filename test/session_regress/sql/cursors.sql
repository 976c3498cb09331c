--
-- cursors: DECLARE / FETCH / MOVE / CLOSE, SCROLL, WITH HOLD, pg_cursors
--
CREATE TABLE cursors_t AS SELECT g AS id, 'row ' || g AS v FROM generate_series(1, 10) g;
SELECT count(*) FROM pg_cursors;
DECLARE c0 CURSOR FOR SELECT 1;
BEGIN;
DECLARE c1 CURSOR FOR SELECT * FROM cursors_t ORDER BY id;
FETCH 2 FROM c1;
FETCH NEXT FROM c1;
MOVE 3 IN c1;
FETCH c1;
FETCH BACKWARD 1 FROM c1;
SELECT name, statement, is_holdable, is_binary, is_scrollable FROM pg_cursors ORDER BY name;
CLOSE c1;
FETCH c1;
ROLLBACK;

-- scrollable
BEGIN;
DECLARE c2 SCROLL CURSOR FOR SELECT id FROM cursors_t ORDER BY id;
FETCH LAST FROM c2;
FETCH PRIOR FROM c2;
FETCH ABSOLUTE 3 FROM c2;
FETCH RELATIVE -1 FROM c2;
FETCH FORWARD ALL FROM c2;
FETCH BACKWARD 2 FROM c2;
MOVE ABSOLUTE 0 IN c2;
FETCH 1 FROM c2;
DECLARE c2b BINARY CURSOR FOR SELECT 1;
SELECT name, is_holdable, is_binary, is_scrollable FROM pg_cursors ORDER BY name;
COMMIT;
FETCH c2;
SELECT count(*) FROM pg_cursors;

-- WITH HOLD: survives COMMIT, keeps the rows it saw
DECLARE c3 CURSOR WITH HOLD FOR SELECT id, v FROM cursors_t ORDER BY id;
FETCH 3 FROM c3;
UPDATE cursors_t SET v = 'changed';
FETCH 3 FROM c3;
BEGIN;
FETCH 1 FROM c3;
ROLLBACK;
FETCH 1 FROM c3;
MOVE BACKWARD 2 IN c3;
FETCH 1 FROM c3;
SELECT name, statement, is_holdable, is_scrollable FROM pg_cursors ORDER BY name;
BEGIN;
DECLARE c4 CURSOR WITH HOLD FOR SELECT id FROM cursors_t WHERE id > 7 ORDER BY id;
FETCH 1 FROM c4;
COMMIT;
FETCH ALL FROM c4;
SELECT name FROM pg_cursors ORDER BY name;
CLOSE c3;
FETCH c3;
CLOSE ALL;
SELECT count(*) FROM pg_cursors;

-- a WITH HOLD cursor of a rolled back transaction is gone
BEGIN;
DECLARE c5 CURSOR WITH HOLD FOR SELECT 1;
ROLLBACK;
FETCH c5;
-- an error while it is materialized at COMMIT
BEGIN;
DECLARE c6 CURSOR WITH HOLD FOR SELECT 10 / (id - 5) FROM cursors_t ORDER BY id;
COMMIT;
FETCH c6;
SELECT count(*) FROM pg_cursors;
-- duplicate names
BEGIN;
DECLARE c7 CURSOR FOR SELECT 1;
DECLARE c7 CURSOR FOR SELECT 2;
ROLLBACK;
-- cursors in PL/pgSQL
CREATE FUNCTION cursors_sum() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  c CURSOR FOR SELECT id FROM cursors_t ORDER BY id;
  total int := 0;
BEGIN
  FOR r IN c LOOP
    total := total + r.id;
  END LOOP;
  RETURN total;
END $$;
SELECT cursors_sum();
CREATE FUNCTION cursors_open(refcursor) RETURNS refcursor LANGUAGE plpgsql AS $$
BEGIN
  OPEN $1 FOR SELECT id FROM cursors_t WHERE id <= 3 ORDER BY id;
  RETURN $1;
END $$;
BEGIN;
SELECT cursors_open('c_refcursor');
FETCH ALL FROM c_refcursor;
COMMIT;
DROP FUNCTION cursors_sum(), cursors_open(refcursor);
DROP TABLE cursors_t;

-- left open at session end: the next session must not see it
DECLARE c_left CURSOR WITH HOLD FOR SELECT 'left behind';
