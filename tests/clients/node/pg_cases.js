'use strict'
// node-postgres (npm "pg", pure JavaScript) cases; see common.js for the protocol.
// Parameterised queries use the extended protocol with unnamed statements;
// queries given a `name` are named prepared statements (parsed once per
// connection); COPY through pg-copy-streams.
const { Readable } = require('stream')
const { pipeline } = require('stream/promises')
const pg = require('pg')
const { from: copyFrom, to: copyTo } = require('pg-copy-streams')
const C = require('./common')

function cfg (spec, over = {}) {
  return {
    host: spec.host,
    port: spec.port,
    user: spec.user,
    password: spec.password,
    database: spec.database,
    connectionTimeoutMillis: 10000,
    ...over
  }
}

async function connect (spec, over) {
  const c = new pg.Client(cfg(spec, over))
  c.on('error', () => {}) // reported through the queries
  await c.connect()
  return c
}

async function rows (c, text, values, extra = {}) {
  return (await c.query({ text, values, rowMode: 'array', ...extra })).rows
}

async function q1 (c, text, values, extra) {
  return (await rows(c, text, values, extra))[0][0]
}

const cases = {
  async login (spec) {
    const c = new pg.Client(cfg(spec))
    const params = {}
    c.connection.on('parameterStatus', m => { params[m.parameterName] = m.parameterValue })
    await c.connect()
    const obs = {
      select_one: await q1(c, 'select 1'),
      current_user: await q1(c, 'select current_user'),
      server_version: params.server_version
    }
    await c.end()
    obs.wrong_password = await C.sqlstate(connect(spec, { password: 'wrong' }))
    obs.unknown_database = await C.sqlstate(connect(spec, { database: 'ct_no_such_db' }))
    return obs
  },

  async params (spec) {
    const c = await connect(spec)
    const obs = {
      sum: await q1(c, 'select $1::int + $2::int', [2, 3]),
      echo_text: await q1(c, 'select $1::text', [C.ECHO_TEXT]),
      range_count: await q1(c, 'select count(*)::int from pgbench_accounts where aid between $1 and $2', [10, 19]),
      bool: await q1(c, 'select $1::boolean', [true]),
      float: await q1(c, 'select $1::float8', [1.5]),
      numeric_text: await q1(c, 'select ($1::numeric)::text', ['12345678901234567890.000000001']),
      bigint_text: await q1(c, 'select ($1::bigint)::text', ['9007199254740993']),
      null_is_null: await q1(c, 'select $1::int is null', [null]),
      rows: await rows(c, "select g, 'r' || g from generate_series(1, $1) g order by g", [3])
    }
    await c.end()
    return obs
  },

  async prepared (spec) {
    const c = await connect(spec)
    const stmt = { name: 'ct_prep', text: "select $1::int * 2, $2::text || '!'" }
    let mismatches = 0
    for (let i = 1; i <= C.PREPARED_EXECUTIONS; i++) {
      const r = await rows(c, stmt.text, [i, `v${i}`], { name: stmt.name })
      if (JSON.stringify(r) !== JSON.stringify([[2 * i, `v${i}!`]])) mismatches++
    }
    await c.query('begin')
    const inTx = (await rows(c, stmt.text, [1000, 'tx'], { name: stmt.name }))[0]
    await c.query('commit')
    const div = { name: 'ct_div', text: 'select 10 / $1::int' }
    const obs = {
      executions: C.PREPARED_EXECUTIONS,
      mismatches,
      in_tx: inTx,
      div0: await C.sqlstate(rows(c, div.text, [0], { name: div.name })),
      after_error: await q1(c, div.text, [5], { name: div.name }),
      reuse_after_error: (await rows(c, stmt.text, [2, 'again'], { name: stmt.name }))[0]
    }
    await c.end()
    return obs
  },

  async transactions (spec) {
    const t = `ct_tx_${spec.uid}`
    const c = await connect(spec)
    const ids = async () => (await rows(c, `select id from ${t} order by id`)).map(r => r[0])
    const ins = (id, v) => c.query(`insert into ${t} values ($1, $2)`, [id, v])
    await c.query(`create table ${t} (id int primary key, v text)`)
    const obs = {}
    await c.query('begin')
    await ins(1, 'a')
    await c.query('savepoint s1')
    await ins(2, 'b')
    await c.query('rollback to savepoint s1')
    await ins(3, 'c')
    await c.query('commit')
    obs.after_commit = await ids()
    await c.query('begin')
    await ins(4, 'd')
    await c.query('rollback')
    obs.after_rollback = await ids()
    await c.query('begin')
    await ins(5, 'e')
    obs.div0 = await C.sqlstate(c.query('select 1 / $1::int', [0]))
    obs.in_failed = await C.sqlstate(c.query('select 1'))
    await c.query('rollback')
    obs.after_failed = await ids()
    await c.query('begin')
    await ins(6, 'f')
    await c.query('savepoint s2')
    obs.savepoint_dup = await C.sqlstate(ins(1, 'dup'))
    await c.query('rollback to savepoint s2')
    await c.query('commit')
    obs.final = await ids()
    await c.query(`drop table ${t}`)
    await c.end()
    return obs
  },

  async errors (spec) {
    const t = `ct_err_${spec.uid}`
    const c = await connect(spec)
    await c.query(`create table ${t} (id int primary key)`)
    await c.query(`insert into ${t} values (1)`)
    const obs = {
      unique: await C.sqlstate(c.query(`insert into ${t} values ($1)`, [1])),
      undefined_table: await C.sqlstate(c.query(`select * from ct_missing_${spec.uid}`)),
      div0: await C.sqlstate(c.query('select 1 / $1::int', [0])),
      syntax: await C.sqlstate(c.query('selec 1')),
      undefined_column: await C.sqlstate(c.query(`select nope from ${t}`)),
      raised: await C.sqlstate(c.query("do $$ begin raise exception 'boom' using errcode = '22023'; end $$")),
      after: await q1(c, 'select 1')
    }
    await c.query(`drop table ${t}`)
    await c.end()
    return obs
  },

  async types (spec) {
    const t = `ct_types_${spec.uid}`
    const c = await connect(spec)
    const big = (await rows(c, 'select $1::text, md5($1::text)', [C.BIG_TEXT]))[0]
    const by = (await rows(c, 'select $1::bytea, md5($1::bytea)', [C.BIG_BYTEA]))[0]
    const obs = {
      null_text: await q1(c, 'select $1::text', [null]),
      null_int: await q1(c, 'select $1::int', [null]),
      unicode: await q1(c, 'select $1::text', [C.UNICODE]),
      big_text_len: big[0].length,
      big_text_md5: C.md5(big[0]),
      big_text_server_md5: big[1],
      bytea_len: by[0].length,
      bytea_md5: C.md5(by[0]),
      bytea_server_md5: by[1],
      int_array: await q1(c, 'select $1::int[]', [C.INT_ARRAY]),
      text_array: await q1(c, 'select $1::text[]', [C.TEXT_ARRAY]),
      int_array_2d: await q1(c, 'select $1::int[]', [C.INT_ARRAY_2D]),
      json: await q1(c, 'select $1::json', [C.JSON_DOC]),
      jsonb: await q1(c, 'select $1::jsonb', [C.JSON_DOC])
    }
    await c.query(`create table ${t} (t text, b bytea, u text, a text[], j jsonb)`)
    await c.query(`insert into ${t} values ($1, $2, $3, $4, $5)`,
      [C.BIG_TEXT, C.BIG_BYTEA, C.UNICODE, C.TEXT_ARRAY, C.JSON_DOC])
    const row = (await rows(c, `select t, b, u, a, j from ${t}`))[0]
    Object.assign(obs, {
      table_text_md5: C.md5(row[0]),
      table_bytea_md5: C.md5(row[1]),
      table_unicode: row[2],
      table_text_array: row[3],
      table_jsonb: row[4]
    })
    await c.query(`drop table ${t}`)
    await c.end()
    return obs
  },

  async copy (spec) {
    const t = `ct_copy_${spec.uid}`
    const c = await connect(spec)
    await c.query(`create table ${t} (id int, name text, note text)`)
    const into = c.query(copyFrom(`copy ${t} (id, name, note) from stdin`))
    await pipeline(Readable.from(C.chunks(C.copyText(), 8192)), into)
    if (into.rowCount !== C.COPY_ROWS) throw new Error(`COPY reported ${into.rowCount} rows`)
    const parts = []
    for await (const chunk of c.query(copyTo(`copy (select id, name, note from ${t} order by id) to stdout`))) {
      parts.push(chunk)
    }
    const row = (await rows(c, `select count(*)::int, count(*) filter (where note is null)::int, sum(id)::int from ${t}`))[0]
    const bad = await C.sqlstate(pipeline(Readable.from(['1\tx\t\\N\nnot-int\ty\t\\N\n']),
      c.query(copyFrom(`copy ${t} from stdin`))))
    const obs = {
      count: row[0],
      nulls: row[1],
      sum: row[2],
      copy_out_md5: C.md5(Buffer.concat(parts)),
      bad_row: bad,
      after: await q1(c, 'select 1')
    }
    await c.query(`drop table ${t}`)
    await c.end()
    return obs
  },

  async concurrency (spec) {
    const t = `ct_conc_${spec.uid}`
    const setup = await connect(spec)
    await setup.query(`create table ${t} (id int primary key)`)
    const conns = await Promise.all(Array.from({ length: C.CONCURRENT_CLIENTS }, () => connect(spec)))
    const results = await Promise.all(conns.map(async (c, i) => {
      if (await q1(c, 'select $1::int', [i]) !== i) return false
      await c.query('begin')
      await c.query(`insert into ${t} values ($1)`, [i])
      await c.query('commit')
      return (await q1(c, `select count(*)::int from ${t} where id = $1`, [i])) === 1
    }))
    await Promise.all(conns.map(c => c.end()))
    const obs = {
      clients: conns.length,
      ok: results.filter(Boolean).length,
      rows: await q1(setup, `select count(*)::int from ${t}`)
    }
    await setup.query(`drop table ${t}`)
    await setup.end()
    return obs
  },

  async cancel (spec) {
    const marker = `ct_cancel_${spec.uid}`
    const c = await connect(spec)
    const watcher = await connect(spec)
    const start = Date.now()
    const query = new pg.Query(`select pg_sleep(30), '${marker}'::text`)
    const done = new Promise(resolve => {
      query.on('error', e => resolve(e.code))
      query.on('end', () => resolve(null))
    })
    c.query(query)
    await C.waitFor(async () => q1(watcher,
      "select count(*)::int from pg_stat_activity where state = 'active' and query like $1 and wait_event = 'PgSleep' and pid <> pg_backend_pid()",
      [`%${marker}%`]), 15000, 'the pg_sleep to run')
    // node-postgres' cancel: a new client sends a CancelRequest with c's key. It does not wait,
    // as libpq's PQcancel does, for the server to close that connection, which it does once the
    // backend is signalled: before that, the signal may still land on c's next statement.
    const canceller = new pg.Client(cfg(spec))
    const closed = new Promise(resolve => canceller.connection.stream.once('close', resolve))
    canceller.cancel(c, query)
    const state = await done
    await closed
    const obs = { sqlstate: state, after: await q1(c, 'select 1'), quick: Date.now() - start < 15000 }
    await c.end()
    await watcher.end()
    return obs
  },

  async statement_timeout (spec) {
    const c = await connect(spec, { statement_timeout: 300 }) // sent as a startup parameter
    const other = await connect(spec)
    const obs = {
      show: await q1(c, 'show statement_timeout'),
      sqlstate: await C.sqlstate(c.query('select pg_sleep(10)')),
      after: await q1(c, 'select 1'),
      other_show: await q1(other, 'show statement_timeout')
    }
    await c.end()
    await other.end()
    return obs
  },

  async notify (spec) {
    const ch = `ct_ch_${spec.uid}`
    const listener = await connect(spec)
    const notifier = await connect(spec)
    const got = []
    listener.on('notification', m => got.push(m))
    await listener.query(`listen "${ch}"`)
    await notifier.query(`notify "${ch}", 'hello \u00e9'`)
    await notifier.query('select pg_notify($1, $2)', [ch, 'second'])
    await C.waitFor(() => got.length >= 2, 10000, 'two notifications').catch(() => {})
    await listener.query(`unlisten "${ch}"`)
    const obs = { channel_ok: got.every(m => m.channel === ch), payloads: got.map(m => m.payload) }
    await listener.end()
    await notifier.end()
    return obs
  }
}

C.main(cases)
