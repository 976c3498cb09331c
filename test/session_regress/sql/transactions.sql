--
-- transactions: blocks, savepoints, aborted state, implicit transactions
--
CREATE TABLE tx_t (id int PRIMARY KEY, v text);
BEGIN;
INSERT INTO tx_t VALUES (1, 'a');
SAVEPOINT s1;
INSERT INTO tx_t VALUES (2, 'b');
ROLLBACK TO s1;
INSERT INTO tx_t VALUES (3, 'c');
RELEASE SAVEPOINT s1;
COMMIT;
SELECT * FROM tx_t ORDER BY id;

-- errors abort the block
BEGIN;
INSERT INTO tx_t VALUES (1, 'duplicate');
SELECT 1;
COMMIT;
BEGIN;
SAVEPOINT a;
SELECT 1 / 0;
ROLLBACK TO a;
SELECT 'recovered' AS state;
INSERT INTO tx_t VALUES (4, 'd');
COMMIT;
BEGIN;
SAVEPOINT a;
INSERT INTO tx_t VALUES (5, 'e');
SAVEPOINT b;
INSERT INTO tx_t VALUES (6, 'f');
ROLLBACK TO a;
RELEASE a;
INSERT INTO tx_t VALUES (7, 'g');
COMMIT;
SELECT * FROM tx_t ORDER BY id;
ROLLBACK TO nosuch;
BEGIN;
ROLLBACK TO nosuch;
ROLLBACK;

-- warnings
COMMIT;
ROLLBACK;
BEGIN;
BEGIN;
COMMIT;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;

-- isolation levels and access modes
BEGIN ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
COMMIT;
START TRANSACTION;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY;
SHOW transaction_isolation;
SHOW transaction_read_only;
INSERT INTO tx_t VALUES (8, 'h');
ROLLBACK;
SHOW transaction_isolation;
SHOW transaction_read_only;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM tx_t;
COMMIT AND CHAIN;
SHOW transaction_isolation;
ROLLBACK AND CHAIN;
SHOW transaction_isolation;
COMMIT;

-- multi-statement query strings run as one implicit transaction
SELECT 1 AS one \; SELECT 2 AS two;
INSERT INTO tx_t VALUES (10, 'x') \; SELECT 1 / 0 \; INSERT INTO tx_t VALUES (11, 'y');
SELECT id FROM tx_t WHERE id >= 10;
INSERT INTO tx_t VALUES (12, 'z') \; COMMIT \; INSERT INTO tx_t VALUES (13, 'w') \; SELECT 1 / 0;
SELECT id FROM tx_t WHERE id >= 10;
BEGIN \; INSERT INTO tx_t VALUES (14, 'v') \; COMMIT;
SELECT id FROM tx_t WHERE id >= 10;
VACUUM tx_t \; SELECT 1;

-- deferred constraints
CREATE TABLE tx_parent (id int PRIMARY KEY);
CREATE TABLE tx_child (pid int REFERENCES tx_parent DEFERRABLE INITIALLY DEFERRED);
BEGIN;
INSERT INTO tx_child VALUES (1);
SELECT count(*) FROM tx_child;
COMMIT;
BEGIN;
INSERT INTO tx_child VALUES (1);
INSERT INTO tx_parent VALUES (1);
COMMIT;
BEGIN;
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO tx_child VALUES (2);
ROLLBACK;

-- two-phase commit is off (max_prepared_transactions = 0)
BEGIN;
PREPARE TRANSACTION 'tx_gid';

-- statements that refuse transaction blocks
BEGIN;
VACUUM tx_t;
ROLLBACK;
BEGIN;
CREATE INDEX CONCURRENTLY tx_t_v ON tx_t (v);
ROLLBACK;
CREATE INDEX CONCURRENTLY tx_t_v ON tx_t (v);
DROP TABLE tx_t, tx_child, tx_parent;
