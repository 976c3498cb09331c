#!/usr/bin/env node
//
// node-postgres (npm "pg") through a PostgreSQL port (builtin_pool's pool
// port, or the main port as a control): named statements
// ({name, text, values}: Parse once per connection, then Bind/Execute),
// several queries in flight on one client, 20 clients using the same
// statement name for different queries, errors inside named statements,
// transactions, binary results, rowMode 'array', and pg.Pool.
//
// Usage: node pg_test.js --host H --port P --database D --user U
//                        --label pool|main [--max-executors N]
// Prints one line per check; exits 1 if a check failed, 2 on an unexpected
// error.

'use strict';

// pg 8 queues queries issued while one runs (this test does it on purpose:
// several queries in flight) and warns that pg 9 will not.
process.noDeprecation = true;

const { Client, Pool } = require('pg');

let failures = 0;
let checks = 0;

function check(cond, what, detail) {
  checks++;
  if (cond) {
    console.log(`ok - ${what}`);
  } else {
    failures++;
    console.log(`FAIL - ${what}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
  }
  return cond;
}

function eq(got, want, what) {
  return check(JSON.stringify(got) === JSON.stringify(want), what,
    { got, want });
}

function parseArgs() {
  const a = { maxExecutors: 0 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    const v = argv[i + 1];
    if (k === 'max-executors') a.maxExecutors = parseInt(v, 10);
    else a[k] = v;
  }
  for (const k of ['host', 'port', 'database', 'user', 'label']) {
    if (!a[k]) throw new Error(`missing --${k}`);
  }
  a.port = parseInt(a.port, 10);
  return a;
}

async function main() {
  const a = parseArgs();
  const cfg = { host: a.host, port: a.port, database: a.database, user: a.user };
  const tbl = `npg_${a.label}`;
  const pgVersion = require('pg/package.json').version;
  console.log(`# node ${process.version}, pg ${pgVersion}, ${a.label}: ${JSON.stringify(cfg)}`);

  const c = new Client(cfg);
  await c.connect();
  try {
    await c.query(`DROP TABLE IF EXISTS ${tbl}`);
    await c.query(`CREATE TABLE ${tbl} (a int, b text)`);
    eq((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'connect and simple query');

    // named statements: Parse once, Bind/Execute each time
    for (let i = 0; i < 5; i++) {
      const r = await c.query({ name: 'x', text: 'SELECT $1::int * 2 AS v', values: [i] });
      eq(r.rows[0].v, i * 2, `named statement x, run ${i}`);
    }
    const own = await c.query(
      "SELECT name, statement FROM pool_prepared_statements WHERE name = 'x'");
    eq(own.rows, [{ name: 'x', statement: 'SELECT $1::int * 2 AS v' }],
      'pool_prepared_statements shows x under its own name');

    // unnamed extended-protocol queries with parameters
    eq((await c.query('SELECT $1::text || $2::text AS s', ['a', 'b'])).rows[0].s, 'ab',
      'unnamed statement with parameters');
    eq((await c.query({ text: 'SELECT $1::int AS i, $2::text AS t', values: [7, 'seven'], rowMode: 'array' })).rows,
      [[7, 'seven']], "rowMode 'array'");
    const bin = await c.query({ text: 'SELECT 42::int4 AS i, \'txt\'::text AS t', binary: true });
    eq([bin.rows[0].i, bin.rows[0].t.toString()], [42, 'txt'], 'binary result format');
    eq((await c.query({ text: 'SELECT NULL::int AS n', values: [] })).rows[0].n, null, 'NULL result');

    // several queries in flight on one client
    const inflight = [];
    for (let i = 0; i < 50; i++) {
      if (i % 3 === 0) {
        inflight.push(c.query({ name: 'flight', text: 'SELECT $1::int + 1000 AS v', values: [i] }));
      } else if (i % 3 === 1) {
        inflight.push(c.query('SELECT $1::int + 2000 AS v', [i]));
      } else {
        inflight.push(c.query(`SELECT ${i} + 3000 AS v`));
      }
    }
    const got = (await Promise.all(inflight)).map((r) => r.rows[0].v);
    eq(got, [...Array(50).keys()].map((i) => (i % 3 === 0 ? i + 1000 : i % 3 === 1 ? i + 2000 : i + 3000)),
      '50 queries in flight on one client (named, unnamed, simple), results in order');

    // an error inside a named statement, in flight with others
    const p1 = c.query({ name: 'div', text: 'SELECT 10 / $1::int AS v', values: [2] });
    const p2 = c.query({ name: 'div', text: 'SELECT 10 / $1::int AS v', values: [0] }).then(
      () => 'no error', (e) => e.code);
    const p3 = c.query({ name: 'div', text: 'SELECT 10 / $1::int AS v', values: [5] });
    const [r1, e2, r3] = await Promise.all([p1, p2, p3]);
    eq([r1.rows[0].v, e2, r3.rows[0].v], [5, '22012', 2], 'error in a named statement between two good runs');
    const e4 = await c.query({ name: 'bad', text: 'SELECT nosuch', values: [] }).then(() => 'no error', (e) => e.code);
    eq(e4, '42703', 'error at Parse of a named statement');
    eq((await c.query('SELECT 1 AS ok')).rows[0].ok, 1, 'client usable after errors');

    // transactions
    await c.query('BEGIN');
    await c.query({ name: 'ins', text: `INSERT INTO ${tbl} VALUES ($1, $2)`, values: [1, 'committed'] });
    await c.query('COMMIT');
    await c.query('BEGIN');
    await c.query({ name: 'ins', text: `INSERT INTO ${tbl} VALUES ($1, $2)`, values: [2, 'rolled back'] });
    await c.query('ROLLBACK');
    await c.query('BEGIN');
    const eTx = await c.query('SELECT 1/0').then(() => 'no error', (e) => e.code);
    const eAborted = await c.query({ name: 'ins', text: `INSERT INTO ${tbl} VALUES ($1, $2)`, values: [3, 'x'] })
      .then(() => 'no error', (e) => e.code);
    await c.query('ROLLBACK');
    eq([eTx, eAborted], ['22012', '25P02'], 'error in a transaction block, then 25P02');
    eq((await c.query(`SELECT string_agg(b, ',') AS s FROM ${tbl}`)).rows[0].s, 'committed',
      'transactions: only the committed row');
  } finally {
    await c.end();
  }

  // 20 clients: the same statement name for different queries, interleaved
  const n = 20;
  const clients = [];
  for (let i = 0; i < n; i++) {
    const cl = new Client(cfg);
    await cl.connect();
    clients.push(cl);
  }
  try {
    const pids = new Set();
    const jobs = clients.map(async (cl, i) => {
      const out = [];
      for (let k = 0; k < 20; k++) {
        const r = await cl.query({ name: 'same', text: `SELECT $1::int * ${i + 1} AS v`, values: [k] });
        out.push(r.rows[0].v);
        if (k % 4 === 0) {
          await cl.query('BEGIN');
          await cl.query({ name: 'ins', text: `INSERT INTO ${tbl} VALUES ($1, 'conc')`, values: [i] });
          await cl.query('COMMIT');
        }
      }
      pids.add((await cl.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      return out;
    });
    const outs = await Promise.all(jobs);
    const bad = outs.map((o, i) => [i, o]).filter(([i, o]) =>
      JSON.stringify(o) !== JSON.stringify([...Array(20).keys()].map((k) => k * (i + 1))));
    check(bad.length === 0, `${n} clients: statement 'same' ran each client's own query`, bad.slice(0, 3));
    console.log(`# ${pids.size} distinct pg_backend_pid() over ${n} clients`);
    if (a.maxExecutors) {
      check(pids.size <= a.maxExecutors, `pool: at most ${a.maxExecutors} executors served ${n} clients`, pids.size);
    }
    // many in flight on every client at once
    const all = clients.map((cl, i) => Promise.all(
      [...Array(10).keys()].map((k) => cl.query({ name: 'same', text: `SELECT $1::int * ${i + 1} AS v`, values: [k] }))));
    const res = await Promise.all(all);
    const ok = res.every((rs, i) => rs.every((r, k) => r.rows[0].v === k * (i + 1)));
    check(ok, `${n} clients x 10 named queries in flight at once`);
    const cnt = (await clients[0].query(`SELECT count(*)::int AS n FROM ${tbl} WHERE b = 'conc'`)).rows[0].n;
    eq(cnt, n * 5, 'concurrent transactions committed');
  } finally {
    await Promise.all(clients.map((cl) => cl.end()));
  }

  // pg.Pool
  const pool = new Pool({ ...cfg, max: 20 });
  try {
    const ps = [];
    for (let k = 0; k < 200; k++) {
      ps.push(pool.query({ name: 'poolq', text: 'SELECT $1::int + 1 AS v', values: [k] }));
    }
    const vals = (await Promise.all(ps)).map((r) => r.rows[0].v);
    eq(vals, [...Array(200).keys()].map((k) => k + 1), 'pg.Pool: 200 named queries over 20 connections');
  } finally {
    await pool.end();
  }

  const d = new Client(cfg);
  await d.connect();
  await d.query(`DROP TABLE IF EXISTS ${tbl}`);
  await d.end();

  console.log(`# ${checks} checks, ${failures} failed`);
  return failures ? 1 : 0;
}

const timer = setTimeout(() => {
  console.log('FAIL - timed out after 180 s');
  process.exit(2);
}, 180000);

main().then((rc) => {
  clearTimeout(timer);
  process.exit(rc);
}, (e) => {
  console.log(e && e.stack ? e.stack : e);
  console.log('FAIL - unexpected error');
  process.exit(2);
});
