'use strict'
// Shared by pg_cases.js and postgres_cases.js: the test data (identical to
// tests/clients/common.py) and the runner.
//
//   node <driver>_cases.js CASE '{"host":...,"port":...,"user":...,"password":...,
//                                 "database":...,"uid":...}'
//
// prints one line {"observed": {...}} (checked by test_node.py) and exits 0,
// or prints the error and exits 1.
const crypto = require('crypto')

const BIG_TEXT = 'abcdefghijklm\u00e9\u2713\n'.repeat(65536)
const BIG_BYTEA = Buffer.alloc(1048576)
for (let i = 0; i < BIG_BYTEA.length; i++) BIG_BYTEA[i] = i % 256
const UNICODE = 'Gr\u00fc\u00dfe, \u4e16\u754c! \u{1F418} \u2014 \u00bd \u2211 tab\there back\\slash \'q\' "dq"'
const INT_ARRAY = [1, 2, null, 3]
const TEXT_ARRAY = ['a', 'b,c', '"q"', null, '\u00e9\u{1F418}', '', 'NULL', '{x}']
const INT_ARRAY_2D = [[1, 2], [3, 4]]
const JSON_DOC = { a: [1, 2, { b: null }], u: '\u00e9\u{1F418}', n: 1.5, t: true }
const ECHO_TEXT = 'O\'Reilly "dq" ; -- not a comment $1'
const PREPARED_EXECUTIONS = 300
const CONCURRENT_CLIENTS = 50
const COPY_ROWS = 1000

function md5 (x) {
  return crypto.createHash('md5').update(typeof x === 'string' ? Buffer.from(x, 'utf8') : x).digest('hex')
}

function copyText () {
  let s = ''
  for (let i = 1; i <= COPY_ROWS; i++) {
    const note = i % 10 === 0 ? '\\N' : `note ${i} \u00e9`
    s += `${i}\tname_${i}\t${note}\n`
  }
  return s
}

// split a string into chunks of n characters (several CopyData messages)
function chunks (s, n) {
  const out = []
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n))
  return out
}

// the SQLSTATE of a PostgreSQL error, or null; anything else is rethrown
async function sqlstate (p) {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code
    throw e
  }
  return null
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// poll an async predicate until it is truthy, or fail after timeoutMs
async function waitFor (pred, timeoutMs, desc) {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${desc}`)
    await sleep(20)
  }
}

class Rollback extends Error {}

function main (cases) {
  const [name, specJson] = process.argv.slice(2)
  const fn = cases[name]
  if (!fn) {
    console.error(`unknown case ${name}; known: ${Object.keys(cases).join(', ')}`)
    process.exit(2)
  }
  const spec = JSON.parse(specJson)
  const limit = (spec.timeout || 60) * 1000
  const timer = setTimeout(() => {
    console.error(`case ${name} did not finish within ${limit} ms`)
    process.exit(3)
  }, limit)
  fn(spec).then(observed => {
    clearTimeout(timer)
    process.stdout.write(JSON.stringify({ observed }) + '\n', () => process.exit(0))
  }, err => {
    clearTimeout(timer)
    console.error(`case ${name} failed: ${err && err.stack ? err.stack : err}`)
    if (err && err.code) console.error(`code: ${err.code}`)
    process.exit(1)
  })
}

module.exports = {
  BIG_TEXT,
  BIG_BYTEA,
  UNICODE,
  INT_ARRAY,
  TEXT_ARRAY,
  INT_ARRAY_2D,
  JSON_DOC,
  ECHO_TEXT,
  PREPARED_EXECUTIONS,
  CONCURRENT_CLIENTS,
  COPY_ROWS,
  md5,
  copyText,
  chunks,
  sqlstate,
  waitFor,
  Rollback,
  main
}
