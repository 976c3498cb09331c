--
-- listen: LISTEN / UNLISTEN and pg_listening_channels()
--
-- NOTIFY to a listening session is checked by the TAP tests: psql prints
-- the sender's pid, which differs between runs.
SELECT * FROM pg_listening_channels();
LISTEN listen_a;
LISTEN listen_b;
LISTEN listen_a;
LISTEN "Listen Quoted";
SELECT * FROM pg_listening_channels() ORDER BY 1;
UNLISTEN listen_a;
UNLISTEN listen_not_listened;
SELECT * FROM pg_listening_channels() ORDER BY 1;
BEGIN;
LISTEN listen_c;
SELECT * FROM pg_listening_channels() ORDER BY 1;
ROLLBACK;
SELECT * FROM pg_listening_channels() ORDER BY 1;
BEGIN;
UNLISTEN *;
ROLLBACK;
SELECT * FROM pg_listening_channels() ORDER BY 1;
BEGIN;
LISTEN listen_d;
COMMIT;
SELECT * FROM pg_listening_channels() ORDER BY 1;
UNLISTEN *;
SELECT count(*) FROM pg_listening_channels();

-- NOTIFY to channels nobody listens to
NOTIFY listen_nobody;
NOTIFY listen_nobody, 'payload';
SELECT pg_notify('listen_nobody', 'via pg_notify');
SELECT pg_notify('listen_nobody', repeat('x', 8000));
LISTEN "";

-- left listening at session end: the next session must not be
LISTEN listen_left;
