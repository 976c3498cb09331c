#!/usr/bin/env python3
#
# asyncpg through a PostgreSQL port (builtin_pool's pool port, or the main
# port as a control).  asyncpg prepares every query (its statement cache)
# and introspects types with prepared queries of its own, so everything it
# does goes through Parse/Describe/Bind/Execute/Sync.  Checked: the
# statement cache (a query prepared once, then reused), explicit prepare()
# with a chosen name, the same name for different queries in 100
# concurrent connections (asyncio.gather), transactions, executemany,
# COPY (copy_records_to_table, copy_from_query), type introspection (enum,
# composite, array), recovery from InvalidCachedStatementError after ALTER
# TABLE, errors, and asyncpg's own connection pool.
#
# Usage: asyncpg_test.py --host H --port P --database D --user U
#                        --label pool|main [--max-executors N] [--clients 100]
# Prints one line per check; exits 1 if a check failed, 2 on an unexpected
# exception.

import argparse
import asyncio
import sys
import traceback

import asyncpg

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


async def run(a):
    kw = dict(host=a.host, port=a.port, database=a.database, user=a.user)
    tbl = f"apg_{a.label}"
    print(f"# asyncpg {asyncpg.__version__}, {a.label}: {kw}")

    conn = await asyncpg.connect(**kw)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {tbl}, {tbl}_c; DROP TYPE IF EXISTS {tbl}_mood, {tbl}_pair")
        await conn.execute(f"CREATE TABLE {tbl} (a int, b text)")
        await conn.execute(f"CREATE TYPE {tbl}_mood AS ENUM ('sad', 'ok', 'happy')")
        await conn.execute(f"CREATE TYPE {tbl}_pair AS (x int, y text)")
        eq(await conn.fetchval("SELECT 1"), 1, "connect and fetchval")

        # statement cache: one prepared statement reused
        for i in range(20):
            v = await conn.fetchval("SELECT $1::int + 1 AS plus_one", i)
            if v != i + 1:
                check(False, f"cached statement, run {i}", v)
        check(True, "the same query 20 times through the statement cache")
        n = await conn.fetchval(
            "SELECT count(*) FROM pool_prepared_statements WHERE statement = 'SELECT $1::int + 1 AS plus_one'")
        eq(n, 1, "statement cache: prepared once (pool_prepared_statements)")

        # explicit prepare with a name, fetch / fetchrow / cursor
        st = await conn.prepare("SELECT g, g * $1::int AS m FROM generate_series(1, 10) g", name="mystmt")
        eq([r["m"] for r in await st.fetch(3)], [g * 3 for g in range(1, 11)], "prepare(name=): fetch")
        eq(tuple(await st.fetchrow(5)), (1, 5), "prepared fetchrow")
        eq([a_.name for a_ in st.get_attributes()], ["g", "m"], "prepared statement attributes (Describe)")
        eq([t.name for t in st.get_parameters()], ["int4"], "prepared statement parameters (Describe)")
        async with conn.transaction():
            got = [r["g"] async for r in st.cursor(2, prefetch=3)]
        eq(got, list(range(1, 11)), "cursor over a prepared statement (Execute with a row limit)")
        async with conn.transaction():
            cur = await st.cursor(2)
            first = await cur.fetch(4)
            await cur.forward(2)
            rest = await cur.fetch(10)
        eq(([r["g"] for r in first], [r["g"] for r in rest]), ([1, 2, 3, 4], [7, 8, 9, 10]),
           "scrollable cursor: fetch, forward, fetch")

        # types: enum, composite, array, numeric, bytea, jsonb (introspection
        # runs asyncpg's own prepared queries)
        r = await conn.fetchrow(
            f"SELECT 'happy'::{tbl}_mood AS m, ROW(1, 'one')::{tbl}_pair AS p, ARRAY[1,2,3] AS arr, "
            "1.25::numeric AS n, '\\x00ff'::bytea AS b, '{\"k\": [1, 2]}'::jsonb AS j")
        eq((r["m"], tuple(r["p"]), r["arr"], str(r["n"]), r["b"], r["j"]),
           ("happy", (1, "one"), [1, 2, 3], "1.25", b"\x00\xff", '{"k": [1, 2]}'),
           "type introspection: enum, composite, array, numeric, bytea, jsonb")
        eq(await conn.fetchval(f"SELECT $1::{tbl}_mood::text", "ok"), "ok", "enum parameter")

        # transactions
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {tbl} VALUES ($1, $2)", 1, "committed")
        try:
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {tbl} VALUES ($1, $2)", 2, "rolled back")
                raise RuntimeError("rollback please")
        except RuntimeError:
            pass
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {tbl} VALUES ($1, $2)", 3, "outer")
            try:
                async with conn.transaction():
                    await conn.execute(f"INSERT INTO {tbl} VALUES ($1, $2)", 4, "savepoint")
                    await conn.execute("SELECT 1/0")
            except asyncpg.DivisionByZeroError:
                pass
        eq(await conn.fetchval(f"SELECT string_agg(b, ',' ORDER BY a) FROM {tbl}"), "committed,outer",
           "transactions: commit, rollback, savepoint")

        # errors
        try:
            await conn.fetchval("SELECT 1/$1::int", 0)
            got = None
        except asyncpg.DivisionByZeroError as e:
            got = e.sqlstate
        eq(got, "22012", "error through a prepared statement: 22012")
        try:
            await conn.fetchval("SELECT nosuchcolumn")
            got = None
        except asyncpg.UndefinedColumnError as e:
            got = e.sqlstate
        eq(got, "42703", "error at Parse: 42703")
        eq(await conn.fetchval("SELECT 'fine'"), "fine", "connection usable after errors")

        # executemany
        await conn.executemany(f"INSERT INTO {tbl} VALUES ($1, $2)", [(100 + i, f"m{i}") for i in range(500)])
        eq(await conn.fetchval(f"SELECT count(*) FROM {tbl} WHERE b LIKE 'm%'"), 500, "executemany: 500 rows")

        # COPY
        await conn.execute(f"CREATE TABLE {tbl}_c (a int, b text, c float8)")
        res = await conn.copy_records_to_table(f"{tbl}_c", records=[(i, f"c{i}", i / 2) for i in range(1000)])
        eq(res, "COPY 1000", "copy_records_to_table: COPY 1000")
        import io
        buf = io.BytesIO()
        res = await conn.copy_from_query(f"SELECT a, b FROM {tbl}_c WHERE a < 3 ORDER BY a", output=buf)
        eq((res, buf.getvalue()), ("COPY 3", b"0\tc0\n1\tc1\n2\tc2\n"), "copy_from_query")
        res = await conn.copy_to_table(f"{tbl}_c", source=io.BytesIO(b"5000\tx\t1\n5001\ty\t2\n"), columns=["a", "b", "c"])
        eq(res, "COPY 2", "copy_to_table (COPY FROM STDIN)")

        # a cached statement whose result type changes: asyncpg gets 0A000
        # ("cached plan must not change result type") and prepares again
        q = f"SELECT * FROM {tbl}_c WHERE a = $1"
        eq(len(await conn.fetchrow(q, 1)), 3, "cached SELECT *: 3 columns")
        await conn.execute(f"ALTER TABLE {tbl}_c ADD COLUMN d int DEFAULT 7")
        r = await conn.fetchrow(q, 1)
        eq((len(r), r["d"]), (4, 7), "after ALTER TABLE the cached statement is re-prepared (4 columns)")
    finally:
        await conn.close()

    # --- many concurrent connections, the same statement names
    async def client(i):
        c = await asyncpg.connect(**kw)
        try:
            # the same explicit name in every connection, a different query
            st = await c.prepare(f"SELECT $1::int * {i + 1} AS v", name="same_name")
            out = []
            for k in range(20):
                out.append(await st.fetchval(k))
                # and the statement cache with a shared text
                v = await c.fetchval("SELECT $1::int + $2::int", k, i)
                if v != k + i:
                    out.append(("bad", k, v))
                if k % 5 == 0:
                    async with c.transaction():
                        await c.execute(f"INSERT INTO {tbl} VALUES ($1, 'conc')", i)
            pid = await c.fetchval("SELECT pg_backend_pid()")
            return i, out, pid
        finally:
            await c.close()

    results = await asyncio.gather(*(client(i) for i in range(a.clients)), return_exceptions=True)
    errs = [r for r in results if isinstance(r, BaseException)]
    check(not errs, f"{a.clients} concurrent connections connected and ran", errs[:3])
    bad = []
    pids = set()
    for r in results:
        if isinstance(r, BaseException):
            continue
        i, out, pid = r
        pids.add(pid)
        if out != [k * (i + 1) for k in range(20)]:
            bad.append((i, out[:5]))
    check(not bad, f"{a.clients} connections: statement 'same_name' ran each connection's own query", bad[:3])
    print(f"# {len(pids)} distinct pg_backend_pid() over {a.clients} connections")
    if a.max_executors:
        check(len(pids) <= a.max_executors,
              f"pool: at most {a.max_executors} executors served {a.clients} connections", len(pids))

    # --- asyncpg's pool (it resets connections on release: RESET ALL,
    # UNLISTEN *, CLOSE ALL, pg_advisory_unlock_all())
    pool = await asyncpg.create_pool(min_size=5, max_size=10, **kw)
    try:
        async def task(k):
            async with pool.acquire() as c:
                return await c.fetchval("SELECT $1::int * 3", k)

        vals = await asyncio.gather(*(task(k) for k in range(300)))
        eq(vals, [k * 3 for k in range(300)], "asyncpg pool: 300 tasks over 10 connections")
    finally:
        await pool.close()

    c = await asyncpg.connect(**kw)
    try:
        eq(await c.fetchval(f"SELECT count(*) FROM {tbl} WHERE b = 'conc'"), a.clients * 4,
           "concurrent transactions committed")
        await c.execute(f"DROP TABLE IF EXISTS {tbl}, {tbl}_c; DROP TYPE IF EXISTS {tbl}_mood, {tbl}_pair")
    finally:
        await c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--database", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--max-executors", type=int, default=0)
    ap.add_argument("--clients", type=int, default=100)
    a = ap.parse_args()
    asyncio.run(asyncio.wait_for(run(a), 180))
    print(f"# {checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("FAIL - unexpected exception")
        sys.exit(2)
