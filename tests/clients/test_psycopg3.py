"""psycopg 3 (Debian's python3-psycopg, pure-Python implementation on libpq 15).

psycopg 3 binds parameters on the server (extended query).  prepare_threshold=0
prepares every statement (named prepared statements `_pg3_N`) on first use,
prepare_threshold=1 on its second use; pipeline mode and binary results are
covered too."""
import re
import select
import threading
import time
from decimal import Decimal

import psycopg
import psycopg.errors
import pytest
from psycopg.types.json import Json, Jsonb

from common import (BIG_BYTEA, BIG_TEXT, CONCURRENT_CLIENTS, EXPECT, INT_ARRAY, INT_ARRAY_2D,
                    JSON_DOC, PREPARED_EXECUTIONS, TEXT_ARRAY, UNICODE, check, copy_text, md5)
from conftest import wait_query_running
import harness

# prepare_threshold for the cases that do not choose one themselves: 0 makes
# psycopg use named prepared statements for everything
DEFAULT_THRESHOLD = 0


def connect(target, prepare_threshold=DEFAULT_THRESHOLD, autocommit=True, **kw):
    conn = psycopg.connect(**target.kw(**kw), autocommit=autocommit,
                           prepare_threshold=prepare_threshold)
    target.conns.append(conn)
    return conn


def libpq_message(e: Exception) -> str:
    s = str(e).strip()
    s = re.sub(r'^connection to server at "[^"]*", port \d+ failed:\s*', "", s)
    s = re.sub(r"^connection failed:\s*", "", s)
    return s


def login_error(**kw) -> str:
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(**kw)
    return libpq_message(ei.value)


def sqlstate(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except psycopg.Error as e:
        return e.sqlstate
    return None


def q(conn, sql, params=None, **kw):
    with conn.cursor(**{k: v for k, v in kw.items() if k == "binary"}) as cur:
        cur.execute(sql, params, **{k: v for k, v in kw.items() if k == "prepare"})
        return [list(r) for r in cur.fetchall()] if cur.description else None


def q1(conn, sql, params=None, **kw):
    return q(conn, sql, params, **kw)[0][0]


def test_login(target, pg):
    conn = connect(target)
    obs = {"select_one": q1(conn, "select 1"), "current_user": q1(conn, "select current_user"),
           "server_version": conn.info.parameter_status("server_version")}
    obs["wrong_password_error"] = login_error(**target.kw(password="wrong"))
    obs["unknown_database_error"] = login_error(**target.kw(dbname="ct_no_such_db"))
    direct = target.kw(host=pg.host, port=pg.port)
    check("login", obs, absent=("wrong_password", "unknown_database"), extra={
        "server_version": pg.scalar("show server_version"),
        "wrong_password_error": login_error(**{**direct, "password": "wrong"}),
        "unknown_database_error": login_error(**{**direct, "dbname": "ct_no_such_db"})})
    assert "FATAL" in obs["wrong_password_error"]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_params(target, binary):
    conn = connect(target)
    kw = {"binary": binary}
    obs = {
        "sum": q1(conn, "select %s::int + %s::int", (2, 3), **kw),
        "echo_text": q1(conn, "select %s::text", (EXPECT["params"]["echo_text"],), **kw),
        "range_count": q1(conn, "select count(*)::int from pgbench_accounts "
                                "where aid between %s and %s", (10, 19), **kw),
        "bool": q1(conn, "select %s::boolean", (True,), **kw),
        "float": q1(conn, "select %s::float8", (1.5,), **kw),
        "numeric_text": q1(conn, "select (%s::numeric)::text",
                           (Decimal("12345678901234567890.000000001"),), **kw),
        "bigint_text": q1(conn, "select (%s::bigint)::text", (9007199254740993,), **kw),
        "null_is_null": q1(conn, "select %s::int is null", (None,), **kw),
        "rows": q(conn, "select g, 'r' || g from generate_series(1, %s) g order by g", (3,), **kw),
    }
    check("params", obs)


@pytest.mark.parametrize("threshold", [0, 1], ids=["threshold0", "threshold1"])
def test_prepared(target, pool_busy, threshold):
    conn = connect(target, prepare_threshold=threshold)
    stmt = "select %s::int * 2, %s::text || '!'"
    with pool_busy():
        mismatches = 0
        for i in range(1, PREPARED_EXECUTIONS + 1):
            if q(conn, stmt, (i, f"v{i}")) != [[2 * i, f"v{i}!"]]:
                mismatches += 1
        with conn.transaction():
            in_tx = q(conn, stmt, (1000, "tx"))[0]
        obs = {"executions": PREPARED_EXECUTIONS, "mismatches": mismatches, "in_tx": in_tx}
        # executed twice, so prepared with either threshold before it fails
        obs["after_error"] = q1(conn, "select 10 / %s::int", (5,))
        q1(conn, "select 10 / %s::int", (5,))
        obs["div0"] = sqlstate(q, conn, "select 10 / %s::int", (0,))
        obs["reuse_after_error"] = q(conn, stmt, (2, "again"))[0]
    check("prepared", obs)
    if target.pool_mode != "transaction":
        # psycopg really used named prepared statements (in transaction mode
        # the server connection now may not be the one that has them)
        names = [r[0] for r in q(conn, "select name from pg_prepared_statements")]
        assert names, "psycopg prepared nothing on the server"


def test_transactions(target, uid):
    t = f"ct_tx_{uid}"
    conn = connect(target)
    ids = lambda: [r[0] for r in q(conn, f"select id from {t} order by id")]
    q(conn, f"create table {t} (id int primary key, v text)")

    class Rollback(Exception):
        pass
    with conn.transaction():
        q(conn, f"insert into {t} values (%s, %s)", (1, "a"))
        try:
            with conn.transaction():          # savepoint
                q(conn, f"insert into {t} values (%s, %s)", (2, "b"))
                raise Rollback
        except Rollback:
            pass
        q(conn, f"insert into {t} values (%s, %s)", (3, "c"))
    obs = {"after_commit": ids()}
    with conn.transaction(force_rollback=True):
        q(conn, f"insert into {t} values (%s, %s)", (4, "d"))
    obs["after_rollback"] = ids()
    conn.autocommit = False
    q(conn, f"insert into {t} values (%s, %s)", (5, "e"))
    obs["div0"] = sqlstate(q, conn, "select 1 / %s::int", (0,))
    obs["in_failed"] = sqlstate(q, conn, "select 1")
    conn.rollback()
    conn.autocommit = True
    obs["after_failed"] = ids()
    with conn.transaction():
        q(conn, f"insert into {t} values (%s, %s)", (6, "f"))
        try:
            with conn.transaction():
                q(conn, f"insert into {t} values (%s, %s)", (1, "dup"))
        except psycopg.errors.UniqueViolation as e:
            obs["savepoint_dup"] = e.sqlstate
    obs["final"] = ids()
    q(conn, f"drop table {t}")
    check("transactions", obs)


def test_errors(target, uid):
    t = f"ct_err_{uid}"
    conn = connect(target)
    q(conn, f"create table {t} (id int primary key)")
    q(conn, f"insert into {t} values (1)")
    obs = {
        "unique": sqlstate(q, conn, f"insert into {t} values (%s)", (1,)),
        "undefined_table": sqlstate(q, conn, f"select * from ct_missing_{uid}"),
        "div0": sqlstate(q, conn, "select 1 / %s::int", (0,)),
        "syntax": sqlstate(q, conn, "selec 1"),
        "undefined_column": sqlstate(q, conn, f"select nope from {t}"),
        "raised": sqlstate(q, conn, "do $$ begin raise exception 'boom' "
                                    "using errcode = '22023'; end $$"),
        "after": q1(conn, "select 1"),
    }
    q(conn, f"drop table {t}")
    check("errors", obs)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_types(target, uid, binary):
    t = f"ct_types_{uid}"
    conn = connect(target)
    kw = {"binary": binary}
    big = q(conn, "select %s::text, md5(%s::text)", (BIG_TEXT, BIG_TEXT), **kw)[0]
    by = q(conn, "select %s::bytea, md5(%s::bytea)", (BIG_BYTEA, BIG_BYTEA), **kw)[0]
    obs = {
        "null_text": q1(conn, "select %s::text", (None,), **kw),
        "null_int": q1(conn, "select %s::int", (None,), **kw),
        "unicode": q1(conn, "select %s::text", (UNICODE,), **kw),
        "big_text_len": len(big[0]), "big_text_md5": md5(big[0]), "big_text_server_md5": big[1],
        "bytea_len": len(bytes(by[0])), "bytea_md5": md5(bytes(by[0])),
        "bytea_server_md5": by[1],
        "int_array": q1(conn, "select %s::int[]", (INT_ARRAY,), **kw),
        "text_array": q1(conn, "select %s::text[]", (TEXT_ARRAY,), **kw),
        "int_array_2d": q1(conn, "select %s::int[]", (INT_ARRAY_2D,), **kw),
        "json": q1(conn, "select %s::json", (Json(JSON_DOC),), **kw),
        "jsonb": q1(conn, "select %s::jsonb", (Jsonb(JSON_DOC),), **kw),
    }
    q(conn, f"create table {t} (t text, b bytea, u text, a text[], j jsonb)")
    q(conn, f"insert into {t} values (%s, %s, %s, %s, %s)",
      (BIG_TEXT, BIG_BYTEA, UNICODE, TEXT_ARRAY, Jsonb(JSON_DOC)))
    row = q(conn, f"select t, b, u, a, j from {t}", **kw)[0]
    obs.update(table_text_md5=md5(row[0]), table_bytea_md5=md5(bytes(row[1])),
               table_unicode=row[2], table_text_array=row[3], table_jsonb=row[4])
    q(conn, f"drop table {t}")
    check("types", obs)


def test_copy(target, uid):
    t = f"ct_copy_{uid}"
    conn = connect(target)
    q(conn, f"create table {t} (id int, name text, note text)")
    with conn.cursor() as cur:
        with cur.copy(f"copy {t} (id, name, note) from stdin") as cp:
            data = copy_text()
            for off in range(0, len(data), 8192):   # several CopyData messages
                cp.write(data[off:off + 8192])
        assert cur.rowcount == EXPECT["copy"]["count"]
    out = bytearray()
    with conn.cursor() as cur:
        with cur.copy(f"copy (select id, name, note from {t} order by id) to stdout") as cp:
            for chunk in cp:
                out += chunk
    row = q(conn, f"select count(*)::int, count(*) filter (where note is null)::int, "
                  f"sum(id)::int from {t}")[0]

    def bad():
        with conn.cursor() as cur:
            with cur.copy(f"copy {t} from stdin") as cp:
                cp.write("1\tx\t\\N\nnot-int\ty\t\\N\n")
    obs = {"count": row[0], "nulls": row[1], "sum": row[2], "copy_out_md5": md5(bytes(out)),
           "bad_row": sqlstate(bad), "after": q1(conn, "select 1")}
    q(conn, f"drop table {t}")
    check("copy", obs)


def test_pipeline(target, uid):
    """Pipeline mode: many statements before one Sync, an error in the middle
    of a pipeline aborts the rest of it, the connection stays usable."""
    t = f"ct_pipe_{uid}"
    conn = connect(target)
    q(conn, f"create table {t} (id int primary key, v text)")
    with conn.pipeline():
        with conn.cursor() as cur:
            cur.executemany(f"insert into {t} values (%s, %s)", [(i, f"v{i}") for i in range(100)])
        c1 = conn.execute(f"select count(*)::int, sum(id)::int from {t}")
        c2 = conn.execute("select %s::text || %s::text", ("a", "b"))
        c3 = conn.execute("select %s::int * 3", (7,))
        counted = list(c1.fetchone())
        piped = [c2.fetchone()[0], c3.fetchone()[0]]
    obs = {"counted": counted, "piped": piped}
    try:
        with conn.pipeline():
            conn.execute(f"insert into {t} values (%s, 'x')", (1000,))
            conn.execute("select 1 / %s::int", (0,))
            conn.execute(f"insert into {t} values (%s, 'y')", (1001,))
    except psycopg.Error as e:
        obs["error"] = e.sqlstate
    # the error ended the implicit transaction of that pipeline: nothing of it stays
    obs["after_error"] = q(conn, f"select count(*)::int, max(id) from {t}")[0]
    with conn.pipeline():
        with conn.transaction():
            conn.execute(f"insert into {t} values (%s, 'z')", (2000,))
        obs["in_tx"] = conn.execute(f"select count(*)::int from {t} where id = 2000").fetchone()[0]
    q(conn, f"drop table {t}")
    assert obs == {"counted": [100, 4950], "piped": ["ab", 21], "error": "22012",
                   "after_error": [100, 99], "in_tx": 1}, obs


def test_concurrency(target, uid):
    t = f"ct_conc_{uid}"
    setup = connect(target)
    q(setup, f"create table {t} (id int primary key)")
    conns, errors = harness.run_threads(lambda i: connect(target), CONCURRENT_CLIENTS)
    assert not errors, f"connecting: {errors}"

    def work(i):
        c = conns[i]
        assert q1(c, "select %s::int", (i,)) == i
        with c.transaction():
            q(c, f"insert into {t} values (%s)", (i,))
        return q1(c, f"select count(*)::int from {t} where id = %s", (i,)) == 1
    results, errors = harness.run_threads(work, CONCURRENT_CLIENTS)
    assert not errors, f"clients failed: {errors}"
    for c in conns:
        c.close()
    obs = {"clients": len(conns), "ok": sum(1 for r in results if r),
           "rows": q1(setup, f"select count(*)::int from {t}")}
    q(setup, f"drop table {t}")
    check("concurrency", obs)


def test_cancel(target, pg, uid):
    conn = connect(target)
    marker = f"ct_cancel_{uid}"
    errors = []

    def canceller():
        try:
            wait_query_running(pg, marker)
            conn.cancel()
        except BaseException as e:   # noqa: BLE001
            errors.append(repr(e))
    th = threading.Thread(target=canceller, daemon=True)
    th.start()
    start = time.monotonic()
    state = sqlstate(q, conn, f"select pg_sleep(30) /* {marker} */")
    elapsed = time.monotonic() - start
    th.join(20)
    assert not errors, errors
    check("cancel", {"sqlstate": state, "after": q1(conn, "select 1"), "quick": elapsed < 15})


def test_statement_timeout(target):
    conn = connect(target, options="-c statement_timeout=300")
    obs = {"show": q1(conn, "show statement_timeout"),
           "sqlstate": sqlstate(q, conn, "select pg_sleep(10)"),
           "after": q1(conn, "select 1")}
    other = connect(target)
    obs["other_show"] = q1(other, "show statement_timeout")
    check("statement_timeout", obs)


def test_notify(target, uid):
    ch = f"ct_ch_{uid}"
    listener = connect(target)
    notifier = connect(target)
    got = []
    listener.add_notify_handler(got.append)
    listener.execute(f'listen "{ch}"')
    notifier.execute(f"notify \"{ch}\", 'hello \u00e9'")
    notifier.execute("select pg_notify(%s, %s)", (ch, "second"))
    # psycopg 3.1's notifies() has no timeout: wait (with a deadline) until the
    # socket is readable, then let a trivial statement deliver what arrived
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        select.select([listener.fileno()], [], [], max(0.0, deadline - time.monotonic()))
        listener.execute("select 1")
    listener.execute(f'unlisten "{ch}"')
    check("notify", {"channel_ok": all(n.channel == ch for n in got),
                     "payloads": [n.payload for n in got]})
