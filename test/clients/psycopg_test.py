#!/usr/bin/env python3
#
# psycopg 3 through a PostgreSQL port (builtin_pool's pool port, or the main
# port as a control): server-side prepared statements (prepare_threshold 0
# and 1, prepare=True), pipeline mode with many queries in flight and an
# error inside a pipeline, executemany, COPY (text and binary, both ways),
# transactions and savepoints, and 20 connections whose prepared statements
# carry the same names (_pg3_0, ...) for different queries, run
# interleaved and from threads, with DISCARD ALL / DEALLOCATE ALL in one of
# them.
#
# Usage: psycopg_test.py --dsn 'host=... port=... dbname=... user=...'
#                        --label pool|main [--max-executors N]
# Prints one line per check ("ok - ..." / "FAIL - ..."); exits 1 if any
# check failed, 2 on an unexpected exception.

import argparse
import sys
import threading
import traceback

import psycopg
from psycopg import errors

failures = 0
checks = 0


def check(cond, what, detail=""):
    global failures, checks
    checks += 1
    if cond:
        print(f"ok - {what}", flush=True)
    else:
        failures += 1
        print(f"FAIL - {what}{': ' + str(detail) if detail != '' else ''}", flush=True)
    return cond


def eq(got, want, what):
    return check(got == want, what, f"got {got!r}, want {want!r}")


def own_statements(conn, like=None):
    """The session's own prepared statements: (name, statement) rows.
    pool_prepared_statements is pg_prepared_statements on the main port."""
    q = "SELECT name, statement FROM pool_prepared_statements"
    if like:
        q += " WHERE statement LIKE %s"
        return conn.execute(q, [like], prepare=False).fetchall()
    return conn.execute(q, prepare=False).fetchall()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--max-executors", type=int, default=0)
    a = ap.parse_args()
    dsn = a.dsn
    tbl = f"psy_{a.label}"

    print(f"# psycopg {psycopg.__version__}, libpq {psycopg.pq.version()}, "
          f"impl {psycopg.pq.__impl__}, {a.label}: {dsn}")

    # setup
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {tbl}, {tbl}_copy")
        c.execute(f"CREATE TABLE {tbl} (a int, b text)")
        c.execute(f"CREATE TABLE {tbl}_copy (a int, b text, c numeric, d bytea)")
        eq(c.execute("SELECT 1").fetchone()[0], 1, "connect and SELECT 1")

    # --- prepare_threshold = 0: every query prepared on first execution
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as c:
        for i in range(5):
            eq(c.execute("SELECT %s::int * 2", [i]).fetchone()[0], i * 2,
               f"threshold 0: SELECT %s::int * 2 ({i})")
        rows = own_statements(c, "SELECT $1::int * 2")
        eq(len(rows), 1, "threshold 0: prepared once, server-side")
        check(rows and rows[0][0].startswith("_pg3_"),
              "threshold 0: psycopg's name (_pg3_N) shown", rows)
        # a prepared statement with several parameter types
        for i in range(3):
            r = c.execute("SELECT %s::text || %s::text, %s::numeric + 1, %s::bool",
                          ["x", str(i), 1.5, True]).fetchone()
            eq(r, (f"x{i}", 2.5, True), f"threshold 0: mixed parameter types ({i})")
        # binary results through a prepared statement
        with c.cursor(binary=True) as cur:
            for i in range(3):
                eq(cur.execute("SELECT %s::int8, %s::text, %s::float8",
                               [i, "bin", 0.5]).fetchone(), (i, "bin", 0.5),
                   f"threshold 0: binary results ({i})")

    # --- prepare_threshold = 1: prepared on the second execution
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=1) as c:
        q = "SELECT %s::int + 1000"
        eq(c.execute(q, [1]).fetchone()[0], 1001, "threshold 1: first execution")
        eq(len(own_statements(c, "SELECT $1::int + 1000")), 0,
           "threshold 1: not prepared after one execution")
        eq(c.execute(q, [2]).fetchone()[0], 1002, "threshold 1: second execution")
        eq(c.execute(q, [3]).fetchone()[0], 1003, "threshold 1: third execution")
        eq(len(own_statements(c, "SELECT $1::int + 1000")), 1,
           "threshold 1: prepared after the second execution")

    # --- prepare=True with the default threshold (5); prepare=False
    with psycopg.connect(dsn, autocommit=True) as c:
        eq(c.execute("SELECT %s::text", ["p"], prepare=True).fetchone()[0], "p",
           "prepare=True")
        eq(len(own_statements(c, "SELECT $1::text")), 1, "prepare=True: prepared at once")
        for i in range(6):
            c.execute("SELECT %s::int - 1", [5], prepare=False)
        eq(len(own_statements(c, "SELECT $1::int - 1")), 0, "prepare=False: never prepared")

    # --- pipeline mode
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as c:
        check(psycopg.Pipeline.is_supported(), "pipeline mode supported by libpq")
        with c.pipeline():
            curs = []
            for i in range(50):
                curs.append(c.execute("SELECT %s::int, repeat('p', %s)", [i, i % 7]))
            ins = c.execute(f"INSERT INTO {tbl} VALUES (%s, %s) RETURNING a", [1, "pipe"])
            tx = c.execute("SELECT %s::text || ' in flight'", ["many"])
        eq([cur.fetchone() for cur in curs], [(i, "p" * (i % 7)) for i in range(50)],
           "pipeline: 50 prepared queries in flight, results in order")
        eq(ins.fetchone()[0], 1, "pipeline: INSERT RETURNING")
        eq(tx.fetchone()[0], "many in flight", "pipeline: last result")

        # an error inside a pipeline: later queries are aborted, the
        # connection recovers
        got = None
        try:
            with c.pipeline():
                c.execute("SELECT 1")
                c.execute("SELECT 1/0")
                c.execute("SELECT 2")
        except errors.DivisionByZero:
            got = "22012"
        except Exception as e:  # noqa: BLE001
            got = repr(e)
        eq(got, "22012", "pipeline: error inside raises DivisionByZero")
        eq(c.execute("SELECT 'after'").fetchone()[0], "after", "pipeline: connection usable after error")

        # explicit syncs inside one pipeline
        with c.pipeline() as p:
            r1 = c.execute("SELECT %s::int", [1])
            p.sync()
            r2 = c.execute("SELECT %s::int", [2])
            p.sync()
            r3 = c.execute("SELECT %s::int", [3])
        eq([r1.fetchone()[0], r2.fetchone()[0], r3.fetchone()[0]], [1, 2, 3],
           "pipeline: several syncs")

        # a pipeline inside a transaction
        with c.transaction():
            with c.pipeline():
                for i in range(10):
                    c.execute(f"INSERT INTO {tbl} VALUES (%s, %s)", [100 + i, "tx"])
        eq(c.execute(f"SELECT count(*) FROM {tbl} WHERE b = 'tx'").fetchone()[0], 10,
           "pipeline inside a transaction: committed")
        try:
            with c.transaction():
                with c.pipeline():
                    c.execute(f"INSERT INTO {tbl} VALUES (%s, %s)", [200, "rolled"])
                raise RuntimeError("rollback please")
        except RuntimeError:
            pass
        eq(c.execute(f"SELECT count(*) FROM {tbl} WHERE b = 'rolled'").fetchone()[0], 0,
           "pipeline inside a transaction: rolled back")

    # --- executemany (pipelined by psycopg), returning
    with psycopg.connect(dsn, autocommit=False) as c:
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {tbl} VALUES (%s, %s)",
                            [(1000 + i, f"many{i}") for i in range(1000)])
            eq(cur.rowcount, 1000, "executemany: 1000 rows")
            cur.executemany(f"INSERT INTO {tbl} VALUES (%s, %s) RETURNING a * 2",
                            [(5000 + i, "ret") for i in range(20)], returning=True)
            got = []
            while True:
                got.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
            eq(got, [(5000 + i) * 2 for i in range(20)], "executemany returning: 20 results")
        c.commit()
        eq(c.execute(f"SELECT count(*), sum(a) FROM {tbl} WHERE b LIKE 'many%%'").fetchone(),
           (1000, sum(1000 + i for i in range(1000))), "executemany: rows committed")
        c.commit()

    # --- COPY
    with psycopg.connect(dsn, autocommit=True) as c:
        with c.cursor() as cur:
            with cur.copy(f"COPY {tbl}_copy (a, b, c, d) FROM STDIN") as cp:
                for i in range(500):
                    cp.write_row((i, f"row\t{i}\n", i / 4, bytes([i % 256, 0, 255])))
            eq(c.execute(f"SELECT count(*), sum(a), sum(c) FROM {tbl}_copy").fetchone(),
               (500, sum(range(500)), sum(i / 4 for i in range(500))),
               "COPY FROM STDIN (text): 500 rows")
            with cur.copy(f"COPY (SELECT a, b, d FROM {tbl}_copy ORDER BY a) TO STDOUT") as cp:
                rows = list(cp.rows())
            eq(len(rows), 500, "COPY TO STDOUT (text): 500 rows")
            eq(rows[7], ("7", "row\t7\n", "\\x0700ff"), "COPY TO STDOUT (text): escaping round trip")
            with cur.copy(f"COPY {tbl}_copy (a, b) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "text"])
                for i in range(300):
                    cp.write_row((10000 + i, "bin"))
            with cur.copy(f"COPY (SELECT a, b FROM {tbl}_copy WHERE b = 'bin' ORDER BY a) TO STDOUT (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "text"])
                rows = list(cp.rows())
            eq((len(rows), rows[0], rows[-1]), (300, (10000, "bin"), (10299, "bin")),
               "COPY binary both ways: 300 rows")
            # a failing COPY FROM leaves the connection usable
            got = None
            try:
                with cur.copy(f"COPY {tbl}_copy (a) FROM STDIN") as cp:
                    cp.write("1\nnot a number\n")
            except errors.InvalidTextRepresentation:
                got = "22P02"
            except Exception as e:  # noqa: BLE001
                got = repr(e)
            eq(got, "22P02", "COPY FROM with bad data: 22P02")
            eq(c.execute("SELECT 'copy ok'").fetchone()[0], "copy ok", "connection usable after a failed COPY")

    # --- transactions and savepoints
    with psycopg.connect(dsn) as c:
        with c.transaction():
            c.execute(f"INSERT INTO {tbl} VALUES (1, 'outer')")
            try:
                with c.transaction():
                    c.execute(f"INSERT INTO {tbl} VALUES (2, 'inner')")
                    c.execute("SELECT 1/0")
            except errors.DivisionByZero:
                pass
            c.execute(f"INSERT INTO {tbl} VALUES (3, 'outer')")
        eq(c.execute(f"SELECT count(*) FROM {tbl} WHERE b IN ('outer', 'inner')").fetchone()[0], 2,
           "savepoint rolled back, outer transaction committed")
        c.commit()

    # --- 20 connections, same statement names, different queries
    n = 20
    conns = [psycopg.connect(dsn, autocommit=True, prepare_threshold=0) for _ in range(n)]
    try:
        for i, c in enumerate(conns):
            # the first statement each connection prepares is named _pg3_0
            eq(c.execute(f"SELECT %s::int + {i}", [0]).fetchone()[0], i,
               f"conn {i}: its own first statement")
        for rnd in range(5):
            for i, c in enumerate(conns):
                r = c.execute(f"SELECT %s::int + {i}", [rnd * 100]).fetchone()[0]
                if r != rnd * 100 + i:
                    check(False, f"conn {i} round {rnd}", f"got {r}")
        check(True, "20 connections x 5 rounds interleaved: each ran its own _pg3_0")
        names = [own_statements(c, "SELECT $1::int + %")[0][0] for c in conns[:3]]
        eq(len(set(names)), 1, f"the same statement name in several sessions ({names[0]})")
        pids = {c.execute("SELECT pg_backend_pid()", prepare=False).fetchone()[0] for c in conns}
        print(f"# {len(pids)} distinct pg_backend_pid() over {n} connections")
        if a.max_executors:
            check(len(pids) <= a.max_executors,
                  f"pool: at most {a.max_executors} executors serve {n} connections", len(pids))

        # DISCARD ALL and DEALLOCATE ALL in one connection leave the others'
        conns[0].execute("DISCARD ALL")
        conns[1].execute("DEALLOCATE ALL")
        ok = True
        for i, c in enumerate(conns[2:], start=2):
            r = c.execute(f"SELECT %s::int + {i}", [7]).fetchone()[0]
            ok = ok and r == 7 + i
        check(ok, "after DISCARD ALL (conn 0) and DEALLOCATE ALL (conn 1) the other 18 connections run their own statements")
        eq(len(own_statements(conns[5], "SELECT $1::int + %")), 1,
           "conn 5 still has its prepared statement")
        # psycopg 3.1 does not notice DISCARD ALL / DEALLOCATE ALL: its cache
        # still names _pg3_0, which the server dropped (same on the main port)
        for i in (0, 1):
            got = None
            try:
                conns[i].execute(f"SELECT %s::int + {i}", [7])
            except errors.InvalidSqlStatementName:
                got = "26000"
            except Exception as e:  # noqa: BLE001
                got = repr(e)
            eq(got, "26000", f"conn {i}: its own statement really is gone (26000)")
            eq(len(own_statements(conns[i])), 0, f"conn {i}: no statement left")
        for i in (0, 1):
            conns[i].close()
            conns[i] = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
            eq(conns[i].execute(f"SELECT %s::int + {i}", [0]).fetchone()[0], i,
               f"conn {i} reconnected")

        # threads: each connection in its own thread, transactions with
        # prepared statements
        errs = []

        def worker(i, c):
            try:
                for k in range(30):
                    with c.transaction():
                        r = c.execute(f"SELECT %s::int + {i}", [k]).fetchone()[0]
                        if r != k + i:
                            errs.append(f"conn {i}: {r} != {k + i}")
                        c.execute(f"INSERT INTO {tbl} VALUES (%s, %s)", [i, "thread"])
            except Exception as e:  # noqa: BLE001
                errs.append(f"conn {i}: {e!r}")

        ths = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(conns)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
        check(not any(t.is_alive() for t in ths), "threads finished")
        check(not errs, "20 threads x 30 transactions with prepared statements", errs[:5])
        eq(conns[0].execute(f"SELECT count(*) FROM {tbl} WHERE b = 'thread'").fetchone()[0], n * 30,
           "all thread inserts committed")
    finally:
        for c in conns:
            c.close()

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {tbl}, {tbl}_copy")

    print(f"# {checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("FAIL - unexpected exception")
        sys.exit(2)
