#!/usr/bin/env python3
#
# ParameterStatus as psycopg 3 (libpq) sees it, through a PostgreSQL port
# (builtin_pool's pool port, or the main port as a control): several
# connections run seeded random SET / RESET / SET LOCAL / transactions /
# aborted transactions / RESET ALL / DISCARD ALL of reported settings; one
# connection at a time keeps its transaction open over several steps, so
# that on the pool port the sessions queued behind it move to another
# executor, and one at a time pins its executor with a temp table.  After
# each statement, conn.info.parameter_status(name) must equal SHOW name for
# every setting the statements change.
#
# Usage: psycopg_paramstatus.py --dsn '...' --seed N [--steps N] [--conns N]
# Prints the failures; exits 1 if any check failed, 2 on an unexpected
# exception.

import argparse
import random
import sys

import psycopg

VALUES = {
    "standard_conforming_strings": ["on", "off"],
    "DateStyle": ["'ISO, MDY'", "'SQL, DMY'", "'Postgres, YMD'", "'German'"],
    "IntervalStyle": ["postgres", "iso_8601", "sql_standard"],
    "TimeZone": ["'UTC'", "'Europe/Paris'", "'Asia/Tokyo'"],
    "application_name": ["'p1'", "'p2'", "''"],
    "client_encoding": ["'UTF8'", "'LATIN1'"],
}
NAMES = sorted(VALUES)


def statement(rng, in_xact, holder_free, pin_free, is_pinner):
    name = rng.choice(NAMES)
    value = rng.choice(VALUES[name])
    r = rng.random()
    if in_xact:
        if r < 0.35:
            return f"SET LOCAL {name} = {value}"
        if r < 0.55:
            return f"SET {name} = {value}"
        if r < 0.60:
            return f"RESET {name}"
        if r < 0.65:
            return "SELECT 1/0"
        if r < 0.85:
            return "COMMIT"
        return "ROLLBACK"
    if r < 0.45:
        return f"SET {name} = {value}"
    if r < 0.55:
        return f"RESET {name}"
    if r < 0.60:
        return "RESET ALL"
    if r < 0.63:
        return "DISCARD ALL"
    if r < 0.75 and holder_free:
        return "BEGIN"
    if r < 0.80 and pin_free:
        return "CREATE TEMP TABLE pst_py (x int)"
    if r < 0.88 and is_pinner:
        return "DROP TABLE pst_py"
    return "SELECT 1"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--conns", type=int, default=6)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    # DISCARD ALL drops prepared statements: psycopg must not make any
    conns = [psycopg.connect(a.dsn, autocommit=True, prepare_threshold=None)
             for _ in range(a.conns)]
    holder = None
    pinner = None
    failures = 0
    for step in range(1, a.steps + 1):
        i = rng.randrange(len(conns))
        c = conns[i]
        sql = statement(rng, holder == i, holder is None, pinner is None,
                        pinner == i)
        try:
            c.execute(sql)
        except psycopg.Error:
            pass
        status = c.info.transaction_status
        if status == psycopg.pq.TransactionStatus.IDLE:
            if holder == i:
                holder = None
        else:
            holder = i
        if sql.startswith("CREATE TEMP") and status == psycopg.pq.TransactionStatus.IDLE:
            pinner = i
        if pinner == i and sql in ("DROP TABLE pst_py", "DISCARD ALL"):
            pinner = None
        if status == psycopg.pq.TransactionStatus.INERROR:
            continue
        for name in NAMES:
            shown = c.execute(f"SHOW {name}").fetchone()[0]
            told = c.info.parameter_status(name)
            if told != shown:
                failures += 1
                print(f"FAIL - step {step}, connection {i} after {sql}: "
                      f"{name} told {told!r}, SHOW {shown!r}", flush=True)
        if failures >= 5:
            break
    for c in conns:
        c.close()
    print(f"{a.steps} steps, {failures} failures (seed {a.seed})", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001
        print(f"unexpected exception: {e!r}", flush=True)
        sys.exit(2)
