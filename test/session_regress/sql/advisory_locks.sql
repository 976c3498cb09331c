--
-- advisory_locks: session and transaction level, shared and exclusive
--
CREATE VIEW advisory_mine AS
  SELECT classid, objid, objsubid, mode, granted FROM pg_locks
  WHERE locktype = 'advisory' AND pid = pg_backend_pid()
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
SELECT * FROM advisory_mine;
SELECT pg_advisory_lock(1001);
SELECT pg_try_advisory_lock(1001);
SELECT pg_advisory_lock_shared(1002);
SELECT pg_advisory_lock(1003, 4);
SELECT pg_try_advisory_lock_shared(1003, 5);
SELECT * FROM advisory_mine ORDER BY classid, objid, objsubid, mode;
SELECT pg_advisory_unlock(1001), pg_advisory_unlock(1001);
SELECT pg_advisory_unlock(1001);
SELECT pg_advisory_unlock_shared(1002);
SELECT pg_advisory_unlock(1002);
SELECT * FROM advisory_mine ORDER BY classid, objid, objsubid, mode;
SELECT pg_advisory_unlock_all();
SELECT * FROM advisory_mine;

-- transaction level
BEGIN;
SELECT pg_advisory_xact_lock(1004);
SELECT pg_try_advisory_xact_lock_shared(1005);
SELECT pg_advisory_xact_lock(1006, 1);
SELECT * FROM advisory_mine ORDER BY classid, objid, objsubid, mode;
COMMIT;
SELECT * FROM advisory_mine;
SELECT pg_advisory_unlock(1004);
BEGIN;
SELECT pg_advisory_xact_lock(1004);
SELECT 1 / 0;
ROLLBACK;
SELECT * FROM advisory_mine;

-- a session lock taken in a transaction that rolls back stays held
BEGIN;
SELECT pg_advisory_lock(1007);
ROLLBACK;
SELECT * FROM advisory_mine;
SELECT pg_advisory_unlock(1007);
-- in a function
CREATE FUNCTION advisory_take(bigint) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_lock($1);
  RETURN pg_try_advisory_lock($1);
END $$;
SELECT advisory_take(1008);
SELECT * FROM advisory_mine;
SELECT pg_advisory_unlock_all();
DROP FUNCTION advisory_take(bigint);
DROP VIEW advisory_mine;

-- left held at session end: the next session must be able to take it
SELECT pg_advisory_lock(1009);
SELECT pg_advisory_lock_shared(1010);
