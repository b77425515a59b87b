'use strict'
// postgres.js (npm "postgres") cases; see common.js for the protocol.
// postgres.js prepares every query as a named statement (prepare: true is its
// default) and pipelines; it has its own SCRAM, COPY streams, LISTEN on a
// dedicated connection, and query.cancel().
const { Readable } = require('stream')
const { pipeline } = require('stream/promises')
const postgres = require('postgres')
const C = require('./common')

// one postgres.js instance over a single connection unless told otherwise
function mk (spec, over = {}) {
  return postgres({
    host: spec.host,
    port: spec.port,
    user: spec.user,
    pass: spec.password,
    database: spec.database,
    max: 1,
    connect_timeout: 10,
    onnotice: () => {},
    ...over
  })
}

const cases = {
  async login (spec) {
    const sql = mk(spec)
    const [r] = await sql`select 1 as one, current_user as u`
    const obs = { select_one: r.one, current_user: r.u, server_version: sql.parameters.server_version }
    await sql.end()
    for (const [key, over] of [['wrong_password', { pass: 'wrong' }], ['unknown_database', { database: 'ct_no_such_db' }]]) {
      const bad = mk(spec, over)
      obs[key] = await C.sqlstate(bad`select 1`)
      await bad.end()
    }
    return obs
  },

  async params (spec) {
    const sql = mk(spec)
    const v = async q => (await q.values())[0][0]
    const obs = {
      sum: await v(sql`select ${2}::int + ${3}::int`),
      echo_text: await v(sql`select ${C.ECHO_TEXT}::text`),
      range_count: await v(sql`select count(*)::int from pgbench_accounts where aid between ${10} and ${19}`),
      bool: await v(sql`select ${true}::boolean`),
      float: await v(sql`select ${1.5}::float8`),
      numeric_text: await v(sql`select (${'12345678901234567890.000000001'}::numeric)::text`),
      bigint_text: await v(sql`select (${9007199254740993n}::bigint)::text`),
      null_is_null: await v(sql`select ${null}::int is null`),
      rows: await sql`select g, 'r' || g from generate_series(1, ${3}) g order by g`.values()
    }
    await sql.end()
    return obs
  },

  async prepared (spec) {
    const sql = mk(spec)
    const stmt = (s, i, v) => s`select ${i}::int * 2, ${v}::text || '!'`.values()
    let mismatches = 0
    for (let i = 1; i <= C.PREPARED_EXECUTIONS; i++) {
      const r = await stmt(sql, i, `v${i}`)
      if (JSON.stringify(r) !== JSON.stringify([[2 * i, `v${i}!`]])) mismatches++
    }
    const inTx = await sql.begin(async tx => (await stmt(tx, 1000, 'tx'))[0])
    const div = i => sql`select 10 / ${i}::int`.values()
    const obs = {
      executions: C.PREPARED_EXECUTIONS,
      mismatches,
      in_tx: inTx,
      div0: await C.sqlstate(div(0)),
      after_error: (await div(5))[0][0],
      reuse_after_error: (await stmt(sql, 2, 'again'))[0]
    }
    await sql.end()
    return obs
  },

  async transactions (spec) {
    const t = `ct_tx_${spec.uid}`
    const sql = mk(spec)
    const ids = async () => (await sql`select id from ${sql(t)} order by id`.values()).map(r => r[0])
    const ins = (s, id, v) => s`insert into ${s(t)} values (${id}, ${v})`
    const ignoreRollback = e => { if (!(e instanceof C.Rollback)) throw e }
    await sql`create table ${sql(t)} (id int primary key, v text)`
    const obs = {}
    await sql.begin(async tx => {
      await ins(tx, 1, 'a')
      await tx.savepoint(async sp => {
        await ins(sp, 2, 'b')
        throw new C.Rollback()
      }).catch(ignoreRollback)
      await ins(tx, 3, 'c')
    })
    obs.after_commit = await ids()
    await sql.begin(async tx => {
      await ins(tx, 4, 'd')
      throw new C.Rollback()
    }).catch(ignoreRollback)
    obs.after_rollback = await ids()
    await sql.begin(async tx => {
      await ins(tx, 5, 'e')
      obs.div0 = await C.sqlstate(tx`select 1 / ${0}::int`)
      obs.in_failed = await C.sqlstate(tx`select 1`)
      throw new C.Rollback()
    }).catch(ignoreRollback)
    obs.after_failed = await ids()
    await sql.begin(async tx => {
      await ins(tx, 6, 'f')
      obs.savepoint_dup = await C.sqlstate(tx.savepoint(sp => ins(sp, 1, 'dup')))
    })
    obs.final = await ids()
    await sql`drop table ${sql(t)}`
    await sql.end()
    return obs
  },

  async errors (spec) {
    const t = `ct_err_${spec.uid}`
    const sql = mk(spec)
    await sql`create table ${sql(t)} (id int primary key)`
    await sql`insert into ${sql(t)} values (1)`
    const obs = {
      unique: await C.sqlstate(sql`insert into ${sql(t)} values (${1})`),
      undefined_table: await C.sqlstate(sql`select * from ${sql('ct_missing_' + spec.uid)}`),
      div0: await C.sqlstate(sql`select 1 / ${0}::int`),
      syntax: await C.sqlstate(sql.unsafe('selec 1')),
      undefined_column: await C.sqlstate(sql`select nope from ${sql(t)}`),
      raised: await C.sqlstate(sql.unsafe("do $$ begin raise exception 'boom' using errcode = '22023'; end $$")),
      after: (await sql`select 1 as v`)[0].v
    }
    await sql`drop table ${sql(t)}`
    await sql.end()
    return obs
  },

  async types (spec) {
    const t = `ct_types_${spec.uid}`
    const sql = mk(spec)
    const v = async q => (await q.values())[0][0]
    const [big] = await sql`select ${C.BIG_TEXT}::text, md5(${C.BIG_TEXT}::text)`.values()
    const [by] = await sql`select ${C.BIG_BYTEA}::bytea, md5(${C.BIG_BYTEA}::bytea)`.values()
    const obs = {
      null_text: await v(sql`select ${null}::text`),
      null_int: await v(sql`select ${null}::int`),
      unicode: await v(sql`select ${C.UNICODE}::text`),
      big_text_len: big[0].length,
      big_text_md5: C.md5(big[0]),
      big_text_server_md5: big[1],
      bytea_len: by[0].length,
      bytea_md5: C.md5(by[0]),
      bytea_server_md5: by[1],
      int_array: await v(sql`select ${sql.array(C.INT_ARRAY)}::int[]`),
      // postgres.js decodes a NULL element of text[] as the string 'NULL'
      // (its array parser does not tell NULL from "NULL"), so text[] comes
      // back through array_to_json; it is sent as text[] all the same
      text_array: await v(sql`select array_to_json(${sql.array(C.TEXT_ARRAY)}::text[])`),
      int_array_2d: await v(sql`select ${sql.array(C.INT_ARRAY_2D)}::int[]`),
      json: await v(sql`select ${sql.json(C.JSON_DOC)}::json`),
      jsonb: await v(sql`select ${sql.json(C.JSON_DOC)}::jsonb`)
    }
    await sql`create table ${sql(t)} (t text, b bytea, u text, a text[], j jsonb)`
    await sql`insert into ${sql(t)} values (${C.BIG_TEXT}, ${C.BIG_BYTEA}, ${C.UNICODE},
              ${sql.array(C.TEXT_ARRAY)}, ${sql.json(C.JSON_DOC)})`
    const [row] = await sql`select t, b, u, array_to_json(a), j from ${sql(t)}`.values()
    Object.assign(obs, {
      table_text_md5: C.md5(row[0]),
      table_bytea_md5: C.md5(row[1]),
      table_unicode: row[2],
      table_text_array: row[3],
      table_jsonb: row[4]
    })
    await sql`drop table ${sql(t)}`
    await sql.end()
    return obs
  },

  async copy (spec) {
    const t = `ct_copy_${spec.uid}`
    const sql = mk(spec)
    await sql`create table ${sql(t)} (id int, name text, note text)`
    const into = await sql`copy ${sql(t)} (id, name, note) from stdin`.writable()
    await pipeline(Readable.from(C.chunks(C.copyText(), 8192)), into)
    // COPY TO in two halves of about 12 KB: postgres.js 3.4 leaves its socket
    // paused, and the connection hung, when a COPY TO stream goes over its
    // 16 KiB high-water mark in the same chunk that ends it
    // (porsager/postgres#499); the two halves together are the whole table
    const parts = []
    for (const [lo, hi] of [[1, 500], [501, C.COPY_ROWS]]) {
      const out = await sql`copy (select id, name, note from ${sql(t)} where id between ${sql.unsafe(String(lo))} and ${sql.unsafe(String(hi))} order by id) to stdout`.readable()
      for await (const chunk of out) parts.push(chunk)
    }
    const [row] = await sql`select count(*)::int, count(*) filter (where note is null)::int, sum(id)::int from ${sql(t)}`.values()
    const bad = await C.sqlstate(async () => {
      const w = await sql`copy ${sql(t)} from stdin`.writable()
      // not ended: postgres.js loses the error of a COPY whose stream it has
      // already finished (it waits forever); the server answers a bad row at
      // once, so the stream is destroyed with the error while still open
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no error for the bad COPY row within 10 s')), 10000)
        w.on('error', e => { clearTimeout(timer); reject(e) })
        w.write('1\tx\t\\N\nnot-int\ty\t\\N\n')
      })
    })
    const obs = {
      count: row[0],
      nulls: row[1],
      sum: row[2],
      copy_out_md5: C.md5(Buffer.concat(parts)),
      bad_row: bad,
      after: (await sql`select 1 as v`)[0].v
    }
    await sql`drop table ${sql(t)}`
    await sql.end()
    return obs
  },

  async concurrency (spec) {
    const t = `ct_conc_${spec.uid}`
    const setup = mk(spec)
    await setup`create table ${setup(t)} (id int primary key)`
    const conns = Array.from({ length: C.CONCURRENT_CLIENTS }, () => mk(spec))
    // all of them connected (and logged in) at once before any works
    await Promise.all(conns.map(s => s`select 1`))
    const results = await Promise.all(conns.map(async (s, i) => {
      if ((await s`select ${i}::int as v`)[0].v !== i) return false
      await s.begin(tx => tx`insert into ${tx(t)} values (${i})`)
      return (await s`select count(*)::int as n from ${s(t)} where id = ${i}`)[0].n === 1
    }))
    await Promise.all(conns.map(s => s.end()))
    const obs = {
      clients: conns.length,
      ok: results.filter(Boolean).length,
      rows: (await setup`select count(*)::int as n from ${setup(t)}`)[0].n
    }
    await setup`drop table ${setup(t)}`
    await setup.end()
    return obs
  },

  async cancel (spec) {
    const marker = `ct_cancel_${spec.uid}`
    const sql = mk(spec)
    const watcher = mk(spec)
    await sql`select 1`
    const start = Date.now()
    const q = sql.unsafe(`select pg_sleep(30), '${marker}'::text`)
    const done = q.then(() => null, e => e.code)
    await C.waitFor(async () => (await watcher`select count(*)::int as n from pg_stat_activity
        where state = 'active' and query like ${'%' + marker + '%'} and wait_event = 'PgSleep'
        and pid <> pg_backend_pid()`)[0].n,
    15000, 'the pg_sleep to run')
    q.cancel()
    const state = await done
    const obs = { sqlstate: state, after: (await sql`select 1 as v`)[0].v, quick: Date.now() - start < 15000 }
    await sql.end()
    await watcher.end()
    return obs
  },

  async statement_timeout (spec) {
    // `connection` values are sent as startup parameters
    const sql = mk(spec, { connection: { statement_timeout: 300 } })
    const other = mk(spec)
    const obs = {
      show: (await sql`show statement_timeout`.values())[0][0],
      sqlstate: await C.sqlstate(sql`select pg_sleep(10)`),
      after: (await sql`select 1 as v`)[0].v,
      other_show: (await other`show statement_timeout`.values())[0][0]
    }
    await sql.end()
    await other.end()
    return obs
  },

  async notify (spec) {
    const ch = `ct_ch_${spec.uid}`
    const listener = mk(spec)
    const notifier = mk(spec)
    const got = []
    // listen() runs on a connection of its own and resolves once LISTEN is done
    const { unlisten } = await listener.listen(ch, payload => got.push(payload))
    await notifier.unsafe(`notify "${ch}", 'hello \u00e9'`)
    await notifier.notify(ch, 'second')
    await C.waitFor(() => got.length >= 2, 10000, 'two notifications').catch(() => {})
    await unlisten()
    // postgres.js hands each listener only its own channel's payloads
    const obs = { channel_ok: true, payloads: got }
    await listener.end()
    await notifier.end()
    return obs
  }
}

C.main(cases)
