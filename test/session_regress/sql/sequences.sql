--
-- sequences: nextval / currval / lastval / setval within one transaction
--
-- Through the pool a session's currval and lastval are dropped once
-- another session ran on its executor, so they are only looked at inside
-- the transaction that set them; a fresh session has none.
CREATE SEQUENCE seq_a;
SELECT currval('seq_a');
SELECT lastval();
BEGIN;
SELECT nextval('seq_a');
SELECT currval('seq_a');
SELECT lastval();
SELECT nextval('seq_a'), nextval('seq_a');
SELECT currval('seq_a'), lastval();
COMMIT;
BEGIN;
SELECT setval('seq_a', 100);
SELECT currval('seq_a');
SELECT nextval('seq_a');
SELECT setval('seq_a', 200, false);
SELECT currval('seq_a');
SELECT nextval('seq_a');
COMMIT;
-- sequences are not transactional
BEGIN;
SELECT nextval('seq_a');
ROLLBACK;
BEGIN;
SELECT nextval('seq_a');
SELECT currval('seq_a');
COMMIT;
SELECT last_value, is_called FROM seq_a;

-- serial and identity columns
CREATE TABLE seq_t (id serial PRIMARY KEY, v text);
BEGIN;
INSERT INTO seq_t (v) VALUES ('a'), ('b') RETURNING id, v;
SELECT currval('seq_t_id_seq'), lastval();
INSERT INTO seq_t (v) VALUES ('c');
SELECT lastval();
COMMIT;
SELECT * FROM seq_t ORDER BY id;
CREATE TABLE seq_ident (id int GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 5), v text);
BEGIN;
INSERT INTO seq_ident (v) VALUES ('x'), ('y') RETURNING id;
SELECT lastval();
COMMIT;
INSERT INTO seq_ident (id, v) VALUES (1, 'z');
SELECT * FROM seq_ident ORDER BY id;

-- DISCARD SEQUENCES
BEGIN;
SELECT nextval('seq_a');
DISCARD SEQUENCES;
SELECT currval('seq_a');
ROLLBACK;
BEGIN;
SELECT nextval('seq_a');
DISCARD SEQUENCES;
SELECT lastval();
ROLLBACK;

-- options
ALTER SEQUENCE seq_a RESTART WITH 7 INCREMENT BY 3;
BEGIN;
SELECT nextval('seq_a'), nextval('seq_a');
SELECT currval('seq_a');
COMMIT;
CREATE SEQUENCE seq_cycle MINVALUE 1 MAXVALUE 2 CYCLE;
SELECT nextval('seq_cycle'), nextval('seq_cycle'), nextval('seq_cycle');
CREATE SEQUENCE seq_max MAXVALUE 2;
SELECT nextval('seq_max'), nextval('seq_max');
SELECT nextval('seq_max');

DROP TABLE seq_t, seq_ident;
DROP SEQUENCE seq_a, seq_cycle, seq_max;

-- left with a value at session end: the next session has no currval
CREATE SEQUENCE seq_left;
SELECT nextval('seq_left');
