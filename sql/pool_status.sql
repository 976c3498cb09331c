-- The SQL surface of builtin_pool (the pool itself is tested in t/)
CREATE EXTENSION builtin_pool;

-- settings, as documented
SHOW builtin_pool.port;
SHOW builtin_pool.session_pool_ports;
SHOW builtin_pool.session_pool_size;
SHOW builtin_pool.max_sessions;
SHOW builtin_pool.dedicated_databases;
SHOW builtin_pool.use_io_uring;
SHOW builtin_pool.idle_executor_timeout;
SHOW builtin_pool.queue_wait_timeout;
SHOW builtin_pool.smart_shutdown_guard;

-- the prefix is reserved: a typo is refused
SET builtin_pool.no_such_setting = 1;

-- postmaster settings cannot change in a running server, reloadable ones
-- not in a session
SET builtin_pool.port = 2;
SET builtin_pool.session_pool_size = 2;

-- columns of pool_status() and pool_pools
SELECT name, type
  FROM (SELECT unnest(proargnames) AS name,
               format_type(unnest(proallargtypes), NULL) AS type
          FROM pg_proc WHERE proname = 'pool_status') s;
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute
 WHERE attrelid = 'pool_pools'::regclass AND attnum > 0
 ORDER BY attnum;

-- nobody has connected through the pool port here
SELECT count(*) FROM pool_status();
SELECT count(*) FROM pool_pools;
SELECT accepted >= 0 AND rejected >= 0 AND cancels >= 0
       AND tls_handshakes >= 0 AND tls_sessions = 0
       AND cancels_unmatched = 0 AS ok
  FROM pool_listener_stats();

-- the listener runs
SELECT backend_type FROM pg_stat_activity
 WHERE backend_type = 'builtin_pool listener';

-- readable by pg_read_all_stats, not by everyone
CREATE ROLE pool_nobody;
CREATE ROLE pool_monitor IN ROLE pg_read_all_stats;
SET ROLE pool_nobody;
SELECT count(*) FROM pool_status();
SELECT count(*) FROM pool_pools;
SELECT * FROM pool_listener_stats();
RESET ROLE;
SET ROLE pool_monitor;
SELECT count(*) FROM pool_status();
SELECT count(*) FROM pool_pools;
SELECT count(*) FROM pool_listener_stats();
SELECT count(*) FROM pool_pool_stats();
-- the admin functions are for superusers and roles granted EXECUTE
SELECT pool_pause();
SELECT pool_resume();
SELECT pool_reconnect();
SELECT pool_reload();
RESET ROLE;
DROP ROLE pool_nobody;
DROP ROLE pool_monitor;

-- the admin functions with no pool served: a pause returns at once and is
-- lifted by a resume; nothing to recycle; unknown names are core's errors
SELECT pool_pause(NULL, NULL, 1000);
SELECT pool_resume(NULL, NULL);
SELECT pool_resume();
SELECT pool_reconnect();
SELECT pool_pause('no_such_database');
SELECT pool_reconnect(NULL, 'no_such_role');
SELECT pool_pause(NULL, NULL, -1);
-- at most 64 pauses at once; pausing the same pool twice is one pause
DO $$
BEGIN
  FOR i IN 1..64 LOOP
    EXECUTE format('CREATE ROLE pool_pr%s', i);
    PERFORM pool_pause(NULL, ('pool_pr' || i)::name);
  END LOOP;
END $$;
SELECT pool_pause(NULL, 'pool_pr1');
CREATE ROLE pool_pr65;
SELECT pool_pause(NULL, 'pool_pr65');
SELECT pool_resume(NULL, 'pool_pr65');
SELECT pool_resume();
SELECT pool_resume();
DO $$
BEGIN
  FOR i IN 1..65 LOOP
    EXECUTE format('DROP ROLE pool_pr%s', i);
  END LOOP;
END $$;
SELECT name, type
  FROM (SELECT unnest(proargnames) AS name,
               format_type(unnest(proallargtypes), NULL) AS type
          FROM pg_proc WHERE proname = 'pool_listener_stats') s;

-- outside the pool, pool_prepared_statements is pg_prepared_statements
PREPARE q1(int) AS SELECT $1 + 1;
SELECT name, statement, parameter_types, from_sql FROM pool_prepared_statements;
DEALLOCATE q1;
SELECT count(*) FROM pool_prepared_statements;

DROP EXTENSION builtin_pool;
