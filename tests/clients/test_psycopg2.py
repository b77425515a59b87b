"""psycopg2 (Debian's python3-psycopg2, libpq 15) against every target.

psycopg2 interpolates parameters on the client and sends simple queries; its
prepared statements are SQL PREPARE/EXECUTE (which keel-tx pins)."""
import io
import re
import select
import threading
import time
from decimal import Decimal

import psycopg2
import psycopg2.extras
import pytest

import harness
from common import (BIG_BYTEA, BIG_TEXT, CONCURRENT_CLIENTS, EXPECT, INT_ARRAY, INT_ARRAY_2D,
                    JSON_DOC, PREPARED_EXECUTIONS, TEXT_ARRAY, UNICODE, check, copy_text, md5)
from conftest import wait_query_running


def libpq_message(e: Exception) -> str:
    """libpq's login error without the host/port part (it names the target)."""
    s = str(e).strip()
    s = re.sub(r'^connection to server at "[^"]*", port \d+ failed:\s*', "", s)
    s = re.sub(r"^connection failed:\s*", "", s)
    return s


def login_error(connect, **kw) -> str:
    with pytest.raises(psycopg2.OperationalError) as ei:
        connect(**kw)
    return libpq_message(ei.value)


def sqlstate(fn, *a):
    try:
        fn(*a)
    except psycopg2.Error as e:
        return e.pgcode
    return None


def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [list(r) for r in cur.fetchall()] if cur.description else None


def q1(conn, sql, params=None):
    return q(conn, sql, params)[0][0]


def test_login(target, pg):
    conn = target.psycopg2()
    obs = {"select_one": q1(conn, "select 1"), "current_user": q1(conn, "select current_user"),
           "server_version": conn.get_parameter_status("server_version")}
    # libpq gives no SQLSTATE for login failures: compare its message with
    # the one PostgreSQL itself gives this driver
    direct = lambda **kw: psycopg2.connect(**{**target.kw(host=pg.host, port=pg.port), **kw})
    via = lambda **kw: psycopg2.connect(**{**target.kw(), **kw})
    obs["wrong_password_error"] = login_error(via, password="wrong")
    obs["unknown_database_error"] = login_error(via, dbname="ct_no_such_db")
    check("login", obs, absent=("wrong_password", "unknown_database"), extra={
        "server_version": pg.scalar("show server_version"),
        "wrong_password_error": login_error(direct, password="wrong"),
        "unknown_database_error": login_error(direct, dbname="ct_no_such_db")})
    assert "FATAL" in obs["wrong_password_error"]


def test_params(target):
    conn = target.psycopg2()
    obs = {
        "sum": q1(conn, "select %s::int + %s::int", (2, 3)),
        "echo_text": q1(conn, "select %s::text", (EXPECT["params"]["echo_text"],)),
        "range_count": q1(conn, "select count(*)::int from pgbench_accounts "
                                "where aid between %s and %s", (10, 19)),
        "bool": q1(conn, "select %s::boolean", (True,)),
        "float": q1(conn, "select %s::float8", (1.5,)),
        "numeric_text": q1(conn, "select (%s::numeric)::text",
                           (Decimal("12345678901234567890.000000001"),)),
        "bigint_text": q1(conn, "select (%s::bigint)::text", (9007199254740993,)),
        "null_is_null": q1(conn, "select %s::int is null", (None,)),
        "rows": q(conn, "select g, 'r' || g from generate_series(1, %s) g order by g", (3,)),
    }
    check("params", obs)


def test_prepared(target, uid, pool_busy):
    conn = target.psycopg2()
    with pool_busy():
        q(conn, f"prepare ct_p_{uid}(int, text) as select $1 * 2, $2 || '!'")
        q(conn, f"prepare ct_d_{uid}(int) as select 10 / $1")
        mismatches = 0
        for i in range(1, PREPARED_EXECUTIONS + 1):
            if q(conn, f"execute ct_p_{uid}(%s, %s)", (i, f"v{i}")) != [[2 * i, f"v{i}!"]]:
                mismatches += 1
        conn.autocommit = False
        in_tx = q(conn, f"execute ct_p_{uid}(%s, %s)", (1000, "tx"))[0]
        conn.commit()
        conn.autocommit = True
        obs = {"executions": PREPARED_EXECUTIONS, "mismatches": mismatches, "in_tx": in_tx,
               "div0": sqlstate(q, conn, f"execute ct_d_{uid}(0)"),
               "after_error": q1(conn, f"execute ct_d_{uid}(5)"),
               "reuse_after_error": q(conn, f"execute ct_p_{uid}(2, 'again')")[0]}
        q(conn, "deallocate all")
    check("prepared", obs)


def test_transactions(target, uid):
    t = f"ct_tx_{uid}"
    conn = target.psycopg2(autocommit=False)
    ids = lambda: [r[0] for r in q(conn, f"select id from {t} order by id")]
    q(conn, f"create table {t} (id int primary key, v text)")
    conn.commit()
    q(conn, f"insert into {t} values (1, 'a')")
    q(conn, "savepoint s1")
    q(conn, f"insert into {t} values (2, 'b')")
    q(conn, "rollback to savepoint s1")
    q(conn, f"insert into {t} values (3, 'c')")
    conn.commit()
    obs = {"after_commit": ids()}
    conn.commit()
    q(conn, f"insert into {t} values (4, 'd')")
    conn.rollback()
    obs["after_rollback"] = ids()
    conn.commit()
    q(conn, f"insert into {t} values (5, 'e')")
    obs["div0"] = sqlstate(q, conn, "select 1 / %s", (0,))
    obs["in_failed"] = sqlstate(q, conn, "select 1")
    conn.rollback()
    obs["after_failed"] = ids()
    conn.commit()
    q(conn, f"insert into {t} values (6, 'f')")
    q(conn, "savepoint s2")
    obs["savepoint_dup"] = sqlstate(q, conn, f"insert into {t} values (1, 'dup')")
    q(conn, "rollback to savepoint s2")
    conn.commit()
    obs["final"] = ids()
    q(conn, f"drop table {t}")
    conn.commit()
    check("transactions", obs)


def test_errors(target, uid):
    t = f"ct_err_{uid}"
    conn = target.psycopg2()
    q(conn, f"create table {t} (id int primary key)")
    q(conn, f"insert into {t} values (1)")
    obs = {
        "unique": sqlstate(q, conn, f"insert into {t} values (%s)", (1,)),
        "undefined_table": sqlstate(q, conn, f"select * from ct_missing_{uid}"),
        "div0": sqlstate(q, conn, "select 1 / %s", (0,)),
        "syntax": sqlstate(q, conn, "selec 1"),
        "undefined_column": sqlstate(q, conn, f"select nope from {t}"),
        "raised": sqlstate(q, conn, "do $$ begin raise exception 'boom' "
                                    "using errcode = '22023'; end $$"),
        "after": q1(conn, "select 1"),
    }
    q(conn, f"drop table {t}")
    check("errors", obs)


def test_types(target, uid):
    t = f"ct_types_{uid}"
    conn = target.psycopg2()
    Json = psycopg2.extras.Json
    big = q(conn, "select %s::text, md5(%s::text)", (BIG_TEXT, BIG_TEXT))[0]
    by = q(conn, "select %s::bytea, md5(%s::bytea)",
           (psycopg2.Binary(BIG_BYTEA), psycopg2.Binary(BIG_BYTEA)))[0]
    obs = {
        "null_text": q1(conn, "select %s::text", (None,)),
        "null_int": q1(conn, "select %s::int", (None,)),
        "unicode": q1(conn, "select %s::text", (UNICODE,)),
        "big_text_len": len(big[0]), "big_text_md5": md5(big[0]), "big_text_server_md5": big[1],
        "bytea_len": len(bytes(by[0])), "bytea_md5": md5(bytes(by[0])),
        "bytea_server_md5": by[1],
        "int_array": q1(conn, "select %s::int[]", (INT_ARRAY,)),
        "text_array": q1(conn, "select %s::text[]", (TEXT_ARRAY,)),
        "int_array_2d": q1(conn, "select %s::int[]", (INT_ARRAY_2D,)),
        "json": q1(conn, "select %s::json", (Json(JSON_DOC),)),
        "jsonb": q1(conn, "select %s::jsonb", (Json(JSON_DOC),)),
    }
    q(conn, f"create table {t} (t text, b bytea, u text, a text[], j jsonb)")
    q(conn, f"insert into {t} values (%s, %s, %s, %s, %s)",
      (BIG_TEXT, psycopg2.Binary(BIG_BYTEA), UNICODE, TEXT_ARRAY, Json(JSON_DOC)))
    row = q(conn, f"select t, b, u, a, j from {t}")[0]
    obs.update(table_text_md5=md5(row[0]), table_bytea_md5=md5(bytes(row[1])),
               table_unicode=row[2], table_text_array=row[3], table_jsonb=row[4])
    q(conn, f"drop table {t}")
    check("types", obs)


def test_copy(target, uid):
    t = f"ct_copy_{uid}"
    conn = target.psycopg2()
    q(conn, f"create table {t} (id int, name text, note text)")
    with conn.cursor() as cur:
        cur.copy_expert(f"copy {t} (id, name, note) from stdin", io.StringIO(copy_text()))
        copied_in = cur.rowcount
    out = io.StringIO()
    with conn.cursor() as cur:
        cur.copy_expert(f"copy (select id, name, note from {t} order by id) to stdout", out)
    row = q(conn, f"select count(*)::int, count(*) filter (where note is null)::int, "
                  f"sum(id)::int from {t}")[0]

    def bad():
        with conn.cursor() as cur:
            cur.copy_expert(f"copy {t} from stdin", io.StringIO("1\tx\t\\N\nnot-int\ty\t\\N\n"))
    obs = {"count": row[0], "nulls": row[1], "sum": row[2],
           "copy_out_md5": md5(out.getvalue()), "bad_row": sqlstate(bad),
           "after": q1(conn, "select 1")}
    assert copied_in == EXPECT["copy"]["count"]
    q(conn, f"drop table {t}")
    check("copy", obs)


def test_concurrency(target, uid):
    t = f"ct_conc_{uid}"
    setup = target.psycopg2()
    q(setup, f"create table {t} (id int primary key)")
    conns, errors = harness.run_threads(lambda i: target.psycopg2(autocommit=False),
                                        CONCURRENT_CLIENTS)
    assert not errors, f"connecting: {errors}"

    def work(i):
        c = conns[i]
        assert q1(c, "select %s::int", (i,)) == i
        q(c, f"insert into {t} values (%s)", (i,))
        c.commit()
        n = q1(c, f"select count(*)::int from {t} where id = %s", (i,))
        c.commit()
        return n == 1
    results, errors = harness.run_threads(work, CONCURRENT_CLIENTS)
    assert not errors, f"clients failed: {errors}"
    for c in conns:
        c.close()
    obs = {"clients": len(conns), "ok": sum(1 for r in results if r),
           "rows": q1(setup, f"select count(*)::int from {t}")}
    q(setup, f"drop table {t}")
    check("concurrency", obs)


def test_cancel(target, pg, uid):
    conn = target.psycopg2()
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
    conn = target.psycopg2(options="-c statement_timeout=300")
    obs = {"show": q1(conn, "show statement_timeout"),
           "sqlstate": sqlstate(q, conn, "select pg_sleep(10)"),
           "after": q1(conn, "select 1")}
    other = target.psycopg2()
    obs["other_show"] = q1(other, "show statement_timeout")
    check("statement_timeout", obs)


def test_notify(target, uid):
    ch = f"ct_ch_{uid}"
    listener = target.psycopg2()
    notifier = target.psycopg2()
    q(listener, f'listen "{ch}"')
    q(notifier, f"notify \"{ch}\", 'hello \u00e9'")
    q(notifier, "select pg_notify(%s, %s)", (ch, "second"))
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        select.select([listener], [], [], max(0.0, deadline - time.monotonic()))
        listener.poll()
        while listener.notifies:
            got.append(listener.notifies.pop(0))
    q(listener, f'unlisten "{ch}"')
    check("notify", {"channel_ok": all(n.channel == ch for n in got),
                     "payloads": [n.payload for n in got]})
