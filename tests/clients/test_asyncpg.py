"""asyncpg (Debian's python3-asyncpg): its own protocol implementation, every
statement is a named prepared statement (cached per connection), type
introspection queries, binary formats throughout, binary COPY for records."""
import asyncio
import io
import json
import threading
import time
from decimal import Decimal

import asyncpg
import pytest

from common import (BIG_BYTEA, BIG_TEXT, CONCURRENT_CLIENTS, EXPECT, INT_ARRAY, INT_ARRAY_2D,
                    JSON_DOC, PREPARED_EXECUTIONS, TEXT_ARRAY, UNICODE, check, copy_text, md5)
from conftest import PROC_TIMEOUT, wait_query_gone, wait_query_running


def run(coro):
    """Run one case with a deadline, on an event loop in a thread of its own:
    a driver stuck where cancelling cannot reach it (e.g. closing a connection
    whose server vanished) then fails the test instead of hanging pytest."""
    result, done = {}, threading.Event()

    def body():
        try:
            result["value"] = asyncio.run(asyncio.wait_for(coro, PROC_TIMEOUT))
        except BaseException as e:   # noqa: BLE001 - re-raised in the test
            result["error"] = e
        finally:
            done.set()
    threading.Thread(target=body, daemon=True, name="asyncpg-case").start()
    if not done.wait(PROC_TIMEOUT + 10):
        raise AssertionError(f"asyncpg case did not finish within {PROC_TIMEOUT + 10}s "
                             "(its event loop is stuck)")
    if "error" in result:
        raise result["error"]
    return result["value"]


async def connect(target, **kw):
    args = dict(host=target.host, port=target.port, user=target.user,
                password=target.password, database=target.database, timeout=10)
    args.update(kw)
    return await asyncpg.connect(**args)


async def sqlstate(aw):
    try:
        await aw
    except asyncpg.PostgresError as e:
        return e.sqlstate
    return None


def test_login(target, pg):
    async def case():
        conn = await connect(target)
        obs = {"select_one": await conn.fetchval("select 1"),
               "current_user": await conn.fetchval("select current_user"),
               "server_version": conn.get_settings().server_version}
        await conn.close()
        obs["wrong_password"] = await sqlstate(connect(target, password="wrong"))
        obs["unknown_database"] = await sqlstate(connect(target, database="ct_no_such_db"))
        return obs
    check("login", run(case()), extra={"server_version": pg.scalar("show server_version")})


def test_params(target):
    async def case():
        conn = await connect(target)
        try:
            return {
                "sum": await conn.fetchval("select $1::int + $2::int", 2, 3),
                "echo_text": await conn.fetchval("select $1::text", EXPECT["params"]["echo_text"]),
                "range_count": await conn.fetchval(
                    "select count(*)::int from pgbench_accounts where aid between $1 and $2",
                    10, 19),
                "bool": await conn.fetchval("select $1::boolean", True),
                "float": await conn.fetchval("select $1::float8", 1.5),
                "numeric_text": await conn.fetchval(
                    "select ($1::numeric)::text", Decimal("12345678901234567890.000000001")),
                "bigint_text": await conn.fetchval("select ($1::bigint)::text", 9007199254740993),
                "null_is_null": await conn.fetchval("select $1::int is null", None),
                "rows": [list(r) for r in await conn.fetch(
                    "select g, 'r' || g from generate_series(1, $1) g order by g", 3)],
            }
        finally:
            await conn.close()
    check("params", run(case()))


def test_prepared(target, pool_busy):
    async def case():
        conn = await connect(target)
        try:
            stmt = await conn.prepare("select $1::int * 2, $2::text || '!'")
            mismatches = 0
            for i in range(1, PREPARED_EXECUTIONS + 1):
                if list(await stmt.fetchrow(i, f"v{i}")) != [2 * i, f"v{i}!"]:
                    mismatches += 1
            async with conn.transaction():
                in_tx = list(await stmt.fetchrow(1000, "tx"))
                # a server-side cursor (named portal) over the same statement kind
                cursor_rows = [r[0] async for r in conn.cursor(
                    "select g from generate_series(1, $1) g", 250, prefetch=100)]
            div = await conn.prepare("select 10 / $1::int")
            obs = {"executions": PREPARED_EXECUTIONS, "mismatches": mismatches, "in_tx": in_tx,
                   "div0": await sqlstate(div.fetchval(0)),
                   "after_error": await div.fetchval(5),
                   "reuse_after_error": list(await stmt.fetchrow(2, "again"))}
            return obs, cursor_rows
        finally:
            await conn.close()
    with pool_busy():
        obs, cursor_rows = run(case())
    check("prepared", obs)
    assert cursor_rows == list(range(1, 251))


def test_transactions(target, uid):
    t = f"ct_tx_{uid}"

    class Rollback(Exception):
        pass

    async def case():
        conn = await connect(target)
        ids = lambda: conn.fetch(f"select id from {t} order by id")
        obs = {}
        try:
            await conn.execute(f"create table {t} (id int primary key, v text)")
            async with conn.transaction():
                await conn.execute(f"insert into {t} values ($1, $2)", 1, "a")
                try:
                    async with conn.transaction():      # savepoint
                        await conn.execute(f"insert into {t} values ($1, $2)", 2, "b")
                        raise Rollback
                except Rollback:
                    pass
                await conn.execute(f"insert into {t} values ($1, $2)", 3, "c")
            obs["after_commit"] = [r[0] for r in await ids()]
            tr = conn.transaction()
            await tr.start()
            await conn.execute(f"insert into {t} values ($1, $2)", 4, "d")
            await tr.rollback()
            obs["after_rollback"] = [r[0] for r in await ids()]
            tr = conn.transaction()
            await tr.start()
            await conn.execute(f"insert into {t} values ($1, $2)", 5, "e")
            obs["div0"] = await sqlstate(conn.fetchval("select 1 / $1::int", 0))
            obs["in_failed"] = await sqlstate(conn.fetchval("select 1"))
            await tr.rollback()
            obs["after_failed"] = [r[0] for r in await ids()]
            async with conn.transaction():
                await conn.execute(f"insert into {t} values ($1, $2)", 6, "f")
                try:
                    async with conn.transaction():
                        await conn.execute(f"insert into {t} values ($1, $2)", 1, "dup")
                except asyncpg.UniqueViolationError as e:
                    obs["savepoint_dup"] = e.sqlstate
            obs["final"] = [r[0] for r in await ids()]
            await conn.execute(f"drop table {t}")
            return obs
        finally:
            await conn.close()
    check("transactions", run(case()))


def test_errors(target, uid):
    t = f"ct_err_{uid}"

    async def case():
        conn = await connect(target)
        try:
            await conn.execute(f"create table {t} (id int primary key); "
                               f"insert into {t} values (1)")
            obs = {
                "unique": await sqlstate(conn.execute(f"insert into {t} values ($1)", 1)),
                "undefined_table": await sqlstate(conn.fetch(f"select * from ct_missing_{uid}")),
                "div0": await sqlstate(conn.fetchval("select 1 / $1::int", 0)),
                "syntax": await sqlstate(conn.fetch("selec 1")),
                "undefined_column": await sqlstate(conn.fetch(f"select nope from {t}")),
                "raised": await sqlstate(conn.execute(
                    "do $$ begin raise exception 'boom' using errcode = '22023'; end $$")),
                "after": await conn.fetchval("select 1"),
            }
            await conn.execute(f"drop table {t}")
            return obs
        finally:
            await conn.close()
    check("errors", run(case()))


def test_types(target, uid):
    t = f"ct_types_{uid}"

    async def case():
        conn = await connect(target)
        try:
            for typ in ("json", "jsonb"):
                await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads,
                                          schema="pg_catalog")
            big = await conn.fetchrow("select $1::text, md5($1::text)", BIG_TEXT)
            by = await conn.fetchrow("select $1::bytea, md5($1::bytea)", BIG_BYTEA)
            obs = {
                "null_text": await conn.fetchval("select $1::text", None),
                "null_int": await conn.fetchval("select $1::int", None),
                "unicode": await conn.fetchval("select $1::text", UNICODE),
                "big_text_len": len(big[0]), "big_text_md5": md5(big[0]),
                "big_text_server_md5": big[1],
                "bytea_len": len(by[0]), "bytea_md5": md5(by[0]), "bytea_server_md5": by[1],
                "int_array": await conn.fetchval("select $1::int[]", INT_ARRAY),
                "text_array": await conn.fetchval("select $1::text[]", TEXT_ARRAY),
                "int_array_2d": await conn.fetchval("select $1::int[]", INT_ARRAY_2D),
                "json": await conn.fetchval("select $1::json", JSON_DOC),
                "jsonb": await conn.fetchval("select $1::jsonb", JSON_DOC),
            }
            await conn.execute(f"create table {t} (t text, b bytea, u text, a text[], j jsonb)")
            await conn.execute(f"insert into {t} values ($1, $2, $3, $4, $5)",
                               BIG_TEXT, BIG_BYTEA, UNICODE, TEXT_ARRAY, JSON_DOC)
            row = await conn.fetchrow(f"select t, b, u, a, j from {t}")
            obs.update(table_text_md5=md5(row[0]), table_bytea_md5=md5(row[1]),
                       table_unicode=row[2], table_text_array=row[3], table_jsonb=row[4])
            await conn.execute(f"drop table {t}")
            return obs
        finally:
            await conn.close()
    check("types", run(case()))


def test_copy(target, uid):
    t = f"ct_copy_{uid}"

    async def case():
        conn = await connect(target)
        try:
            await conn.execute(f"create table {t} (id int, name text, note text)")
            status = await conn.copy_to_table(t, source=io.BytesIO(copy_text().encode()),
                                              columns=["id", "name", "note"], format="text")
            assert status == f"COPY {EXPECT['copy']['count']}", status
            out = io.BytesIO()
            await conn.copy_from_query(f"select id, name, note from {t} order by id",
                                       output=out, format="text")
            row = await conn.fetchrow(f"select count(*)::int, count(*) filter "
                                      f"(where note is null)::int, sum(id)::int from {t}")
            bad = await sqlstate(conn.copy_to_table(
                t, source=io.BytesIO(b"1\tx\t\\N\nnot-int\ty\t\\N\n"), format="text"))
            obs = {"count": row[0], "nulls": row[1], "sum": row[2],
                   "copy_out_md5": md5(out.getvalue()), "bad_row": bad,
                   "after": await conn.fetchval("select 1")}
            # binary COPY of records
            await conn.copy_records_to_table(t, records=[(5000 + i, f"rec{i}", None)
                                                         for i in range(500)])
            records = await conn.fetchval(f"select count(*)::int from {t} where id >= 5000")
            await conn.execute(f"drop table {t}")
            return obs, records
        finally:
            await conn.close()
    obs, records = run(case())
    check("copy", obs)
    assert records == 500


def test_concurrency(target, uid):
    t = f"ct_conc_{uid}"

    async def case():
        setup = await connect(target)
        try:
            await setup.execute(f"create table {t} (id int primary key)")
            conns = await asyncio.gather(*[connect(target) for _ in range(CONCURRENT_CLIENTS)])

            async def work(i, c):
                assert await c.fetchval("select $1::int", i) == i
                async with c.transaction():
                    await c.execute(f"insert into {t} values ($1)", i)
                return await c.fetchval(f"select count(*)::int from {t} where id = $1", i) == 1
            try:
                results = await asyncio.gather(*[work(i, c) for i, c in enumerate(conns)])
            finally:
                await asyncio.gather(*[c.close() for c in conns], return_exceptions=True)
            obs = {"clients": len(conns), "ok": sum(1 for r in results if r),
                   "rows": await setup.fetchval(f"select count(*)::int from {t}")}
            await setup.execute(f"drop table {t}")
            return obs
        finally:
            await setup.close()
    check("concurrency", run(case()))


def test_cancel(target, pg, uid):
    """asyncpg cancels a statement when its task is cancelled (a CancelRequest
    to the server, then it waits for the server's error); it reports the
    cancellation, not the server's 57014, so the server side is checked."""
    marker = f"ct_cancel_{uid}"

    async def case():
        conn = await connect(target)
        try:
            loop = asyncio.get_running_loop()
            start = time.monotonic()
            task = asyncio.ensure_future(conn.fetchval(f"select pg_sleep(30) /* {marker} */"))
            await loop.run_in_executor(None, wait_query_running, pg, marker)
            task.cancel()
            try:
                await task
                cancelled = False
            except asyncio.CancelledError:
                cancelled = True
            await loop.run_in_executor(None, wait_query_gone, pg, marker)
            elapsed = time.monotonic() - start
            return {"cancelled": cancelled, "after": await conn.fetchval("select 1"),
                    "quick": elapsed < 15}
        finally:
            await conn.close()
    check("cancel", run(case()), absent=("sqlstate",), extra={"cancelled": True})


def test_statement_timeout(target):
    async def case():
        conn = await connect(target, server_settings={"statement_timeout": "300"})
        other = await connect(target)
        try:
            return {"show": await conn.fetchval("show statement_timeout"),
                    "sqlstate": await sqlstate(conn.fetchval("select pg_sleep(10)")),
                    "after": await conn.fetchval("select 1"),
                    "other_show": await other.fetchval("show statement_timeout")}
        finally:
            await conn.close()
            await other.close()
    check("statement_timeout", run(case()))


def test_notify(target, uid):
    ch = f"ct_ch_{uid}"

    async def case():
        listener = await connect(target)
        notifier = await connect(target)
        got = []
        two = asyncio.Event()

        def on_notify(conn, pid, channel, payload):
            got.append((channel, payload))
            if len(got) >= 2:
                two.set()
        try:
            await listener.add_listener(ch, on_notify)
            await notifier.execute(f"notify \"{ch}\", 'hello \u00e9'")
            await notifier.execute("select pg_notify($1, $2)", ch, "second")
            try:
                await asyncio.wait_for(two.wait(), 10)
            except asyncio.TimeoutError:
                pass
            await listener.remove_listener(ch, on_notify)
            return {"channel_ok": all(c == ch for c, _ in got), "payloads": [p for _, p in got]}
        finally:
            await listener.close()
            await notifier.close()
    check("notify", run(case()))
