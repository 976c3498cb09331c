--
-- prepared: PREPARE / EXECUTE / DEALLOCATE, plan invalidation, errors
--
SELECT count(*) FROM pool_prepared_statements;
PREPARE p_one AS SELECT 1 AS one;
EXECUTE p_one;
PREPARE p_add(int, int) AS SELECT $1 + $2 AS sum;
EXECUTE p_add(2, 3);
EXECUTE p_add(40, 2);
PREPARE p_add(int) AS SELECT $1;
EXECUTE p_missing;
EXECUTE p_add(1);
EXECUTE p_add('x', 1);
SELECT name, statement, parameter_types, from_sql
  FROM pool_prepared_statements ORDER BY name;

-- PREPARE is not transactional
BEGIN;
PREPARE p_tx AS SELECT 'prepared in a rolled back transaction' AS v;
ROLLBACK;
EXECUTE p_tx;

-- statements on a table
CREATE TABLE prepared_t (id int PRIMARY KEY, v text);
PREPARE p_ins(int, text) AS INSERT INTO prepared_t VALUES ($1, $2) RETURNING *;
EXECUTE p_ins(1, 'a');
EXECUTE p_ins(2, 'b');
EXECUTE p_ins(1, 'duplicate');
PREPARE p_sel(int) AS SELECT v FROM prepared_t WHERE id = $1;
EXECUTE p_sel(1);
EXECUTE p_sel(2);
EXECUTE p_sel(3);
BEGIN;
EXECUTE p_ins(3, 'c');
EXECUTE p_sel(3);
ROLLBACK;
EXECUTE p_sel(3);
-- custom and generic plans
SET plan_cache_mode = force_generic_plan;
EXECUTE p_sel(1);
SET plan_cache_mode = force_custom_plan;
EXECUTE p_sel(2);
RESET plan_cache_mode;
CREATE TABLE prepared_ctas AS EXECUTE p_sel(1);
SELECT * FROM prepared_ctas;
EXPLAIN (COSTS OFF) EXECUTE p_one;

-- invalidation
PREPARE p_star AS SELECT * FROM prepared_t ORDER BY id;
EXECUTE p_star;
ALTER TABLE prepared_t ADD COLUMN w int DEFAULT 5;
EXECUTE p_star;
CREATE INDEX prepared_t_v ON prepared_t (v);
EXECUTE p_sel(2);

-- DEALLOCATE, DISCARD PLANS, DEALLOCATE ALL
DEALLOCATE p_one;
EXECUTE p_one;
DEALLOCATE p_one;
DEALLOCATE PREPARE p_add;
DISCARD PLANS;
EXECUTE p_sel(1);
SELECT name FROM pool_prepared_statements ORDER BY name;
DEALLOCATE ALL;
SELECT count(*) FROM pool_prepared_statements;
EXECUTE p_sel(1);

-- SQL functions and PL/pgSQL keep their own plans
CREATE FUNCTION prepared_f(int) RETURNS text LANGUAGE plpgsql
  AS $$ BEGIN RETURN (SELECT v FROM prepared_t WHERE id = $1); END $$;
SELECT prepared_f(1), prepared_f(2);
DROP FUNCTION prepared_f(int);
DROP TABLE prepared_t, prepared_ctas;

-- left prepared at session end: the next session must not see it
PREPARE p_left AS SELECT 'left behind';
