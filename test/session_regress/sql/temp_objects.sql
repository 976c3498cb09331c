--
-- temp_objects: objects in pg_temp that are not relations (functions,
-- domains, types).  This session creates no temp table.
--
CREATE FUNCTION pg_temp.temp_objects_f(int) RETURNS int LANGUAGE sql
  AS $$ SELECT $1 * 2 $$;
SELECT pg_temp.temp_objects_f(21);
CREATE DOMAIN pg_temp.temp_objects_dom AS int CHECK (VALUE > 0);
SELECT 5::pg_temp.temp_objects_dom;
SELECT (-5)::pg_temp.temp_objects_dom;
CREATE TYPE pg_temp.temp_objects_enum AS ENUM ('a', 'b');
SELECT 'b'::pg_temp.temp_objects_enum;
SELECT 'c'::pg_temp.temp_objects_enum;
SELECT 'function' AS kind, proname::text AS name FROM pg_proc
  WHERE pronamespace = pg_my_temp_schema()
UNION ALL
SELECT 'type', typname::text FROM pg_type
  WHERE typnamespace = pg_my_temp_schema()
ORDER BY 1, 2;
DROP TYPE pg_temp.temp_objects_enum;
DROP FUNCTION pg_temp.temp_objects_f(int);
SELECT pg_temp.temp_objects_f(1);
-- functions in pg_temp are not found without a schema name
CREATE FUNCTION pg_temp.temp_objects_g() RETURNS text LANGUAGE sql
  AS $$ SELECT 'temp function' $$;
SELECT temp_objects_g();
SELECT pg_temp.temp_objects_g();

-- left at session end: the next session must not see them
CREATE FUNCTION pg_temp.temp_objects_left() RETURNS text LANGUAGE sql
  AS $$ SELECT 'left behind' $$;
