"""Transaction mode: named prepared statements (protocol Parse with a name) follow their client to
whichever server connection it lands on. keel prepares them lazily there under its own names,
re-uses one already prepared with the same text and types, answers Close itself, handles
DEALLOCATE [ALL] and DISCARD ALL, and bounds each server connection's cache.

Behaviour is checked against PostgreSQL itself: the same message script runs directly and
through keel, and the responses (types, SQLSTATEs, tags, rows, statuses) must be equal."""
import os
import subprocess

import pytest

from harness import B, C, D, E, H, P, Q, S, DirectTarget, raw_login
from test_admin import show

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


def summary(result):
    """What the client sees, without what may differ between servers (pids, notices)."""
    out = []
    for t, p in result.msgs:
        if t in ("S", "N", "K"):
            continue
        if t == "E":
            fields = {}
            for part in p.rstrip(b"\0").split(b"\0"):
                if part:
                    fields[chr(part[0])] = part[1:].decode()
            out.append(("E", fields.get("C")))
        elif t == "C":
            out.append(("C", p.rstrip(b"\0").decode()))
        elif t == "D":
            out.append(("D", p))
        elif t == "Z":
            out.append(("Z", chr(p[0])))
        else:
            out.append((t,))
    return out


def run_script(client, steps):
    """steps: list of bytes to send; each is followed by reading up to ReadyForQuery."""
    return [summary(_send(client, s)) for s in steps]


def _send(client, data):
    client.send(data)
    return client.read_until_ready()


def keel_tx(start_keel, pool_size=1, **pool):
    pool.setdefault("query_wait_timeout", 5)
    return start_keel({"keel": {"workers": 1},
                       "pool": {"pool_size": pool_size, **pool}},
                      pool_mode="transaction")


def warm(keel, sqls):
    """Another client prepares these texts first, so keel's cache paths are the ones taken."""
    w = raw_login(keel)
    for i, sql in enumerate(sqls):
        w.send(P(sql, name=f"warm{i}") + S())
        assert not w.read_until_ready().errors
    w.close()


SQL1 = "select $1::int * 2"
SQL2 = "select $1::text || '!'"

SCRIPTS = {
    "parse-bind-execute": [
        P(SQL1, name="s1") + S(),
        B(params=["21"], stmt="s1") + E() + S(),
        B(params=["5"], stmt="s1") + E() + S(),
    ],
    "pipeline-in-one-go": [
        P(SQL1, name="s1") + B(params=["1"], stmt="s1") + E() + P(SQL2, name="s2") + D("S", "s2")
        + B(params=["x"], stmt="s2") + E() + B(params=["3"], stmt="s1") + E() + S(),
    ],
    "duplicate-name": [
        P(SQL1, name="s1") + S(),
        P(SQL2, name="s1") + B(params=["x"], stmt="s1") + E() + S(),
        B(params=["4"], stmt="s1") + E() + S(),
    ],
    "duplicate-name-in-pipeline-aborts-implicit-tx": [
        Q("create temp table if not exists dup_t (a int)"),
        P(SQL1, name="s1") + S(),
        P("insert into dup_t values (1)") + B() + E() + P(SQL2, name="s1") + S(),
        Q("select count(*) from dup_t"),
    ],
    "unknown-name": [
        B(params=["1"], stmt="nope") + E() + S(),
        D("S", "nope") + S(),
        Q("select 1"),
    ],
    "failed-parse-is-not-defined": [
        P("selec $1", name="bad") + S(),
        B(params=["1"], stmt="bad") + E() + S(),
        P("select 1", name="bad") + B(stmt="bad") + E() + S(),
    ],
    "skipped-after-error": [
        P("select 1/0") + B() + E() + P(SQL1, name="late") + C("S", "nothing") + S(),
        B(params=["2"], stmt="late") + E() + S(),
    ],
    "close-then-bind": [
        P(SQL1, name="s1") + S(),
        C("S", "s1") + S(),
        B(params=["1"], stmt="s1") + E() + S(),
        C("S", "never-there") + C("P", "") + S(),
        P(SQL1, name="s1") + B(params=["7"], stmt="s1") + E() + S(),
    ],
    "close-skipped-keeps-statement": [
        P(SQL1, name="s1") + S(),
        P("select 1/0") + B() + E() + C("S", "s1") + S(),
        B(params=["8"], stmt="s1") + E() + S(),
    ],
    "close-and-reparse-in-one-pipeline": [
        P(SQL1, name="s1") + S(),
        C("S", "s1") + P(SQL2, name="s1") + B(params=["y"], stmt="s1") + E() + S(),
    ],
    "describe": [
        P(SQL2, name="s2") + D("S", "s2") + S(),
        B(params=["a"], stmt="s2", portal="p") + D("P", "p") + E("p") + S(),
    ],
    "deallocate": [
        P(SQL1, name="s1") + P(SQL2, name="s2") + S(),
        Q("deallocate s1"),
        B(params=["1"], stmt="s1") + E() + S(),
        B(params=["z"], stmt="s2") + E() + S(),
        Q("deallocate s1"),
        Q("begin"), Q("select 1/0"), Q("deallocate s2"), Q("rollback"),
        B(params=["w"], stmt="s2") + E() + S(),
    ],
    "deallocate-all": [
        P(SQL1, name="s1") + P(SQL2, name="s2") + S(),
        Q("deallocate all"),
        B(params=["1"], stmt="s1") + E() + S(),
        P(SQL1, name="s1") + B(params=["9"], stmt="s1") + E() + S(),
    ],
    "discard-all": [
        P(SQL1, name="s1") + S(),
        Q("discard all"),
        B(params=["1"], stmt="s1") + E() + S(),
        P(SQL1, name="s1") + B(params=["6"], stmt="s1") + E() + S(),
    ],
    "aborted-transaction": [
        Q("begin"),
        Q("select 1/0"),
        P(SQL1, name="s1") + S(),
        Q("rollback"),
        P(SQL1, name="s1") + B(params=["2"], stmt="s1") + E() + S(),
    ],
    "inside-transaction": [
        Q("begin"),
        P(SQL1, name="s1") + B(params=["1"], stmt="s1") + E() + S(),
        Q("commit"),
        B(params=["2"], stmt="s1") + E() + S(),
    ],
    "sql-prepare-shares-the-namespace": [
        Q("prepare sq as select 40 + 2"),
        B(stmt="sq") + E() + S(),
        Q("deallocate sq"),
    ],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_same_responses_as_postgres(start_keel, pg, name):
    direct = raw_login(DirectTarget(pg))
    expected = run_script(direct, SCRIPTS[name])
    k = keel_tx(start_keel)
    warm(k, [SQL1, SQL2])  # the statements exist on the server connection already
    got = run_script(raw_login(k), SCRIPTS[name])
    assert got == expected
    # and on a connection that has none of them
    k2 = keel_tx(start_keel)
    assert run_script(raw_login(k2), SCRIPTS[name]) == expected


def pid_of(c):
    return c.scalar("select pg_backend_pid()")


def test_statement_follows_client_to_another_connection(start_keel):
    k = keel_tx(start_keel, pool_size=2)
    a, b = raw_login(k), raw_login(k)
    a.send(P(SQL1, name="s1") + B(params=["1"], stmt="s1") + E() + S() + Q("select pg_backend_pid()"))
    r = a.read_until_ready()
    assert not r.errors
    first_pid = a.read_until_ready().scalar()
    # b holds the connection a had (the most recently released) inside a transaction
    b.query_ok("begin")
    assert pid_of(b) == first_pid
    a.send(B(params=["21"], stmt="s1") + E() + S() + Q("select pg_backend_pid()"))
    r = a.read_until_ready()
    assert not r.errors and r.rows == [["42"]]
    assert a.read_until_ready().scalar() != first_pid
    b.query_ok("commit")


def prepared_on_server(client):
    return int(client.scalar("select count(*) from pg_prepared_statements"))


def stats(k):
    admin = raw_login(k, database="keel")
    cols, rows = show(admin, "STATS")
    return next(r for r in rows if r["database"] == "app")


def test_same_text_is_prepared_once_per_connection(start_keel):
    k = keel_tx(start_keel)
    clients = [raw_login(k) for _ in range(5)]
    for i, c in enumerate(clients):
        c.send(P(SQL1, name=f"mine{i}") + B(params=[str(i)], stmt=f"mine{i}") + E() + S())
        r = c.read_until_ready()
        assert not r.errors and r.rows == [[str(2 * i)]]
    assert prepared_on_server(clients[0]) == 1
    st = stats(k)
    assert int(st["total_prepares"]) == 1
    assert int(st["total_prepare_reuses"]) == 4


def test_cache_is_bounded_and_evicts_least_recently_used(start_keel):
    k = keel_tx(start_keel, max_prepared_statements=3)
    c = raw_login(k)
    texts = [f"select $1::int + {n}" for n in range(8)]
    for n, t in enumerate(texts):
        c.send(P(t, name=f"q{n}") + S())
        assert not c.read_until_ready().errors
    for rounds in range(3):
        for n in range(len(texts)):
            c.send(B(params=["100"], stmt=f"q{n}") + E() + S())
            r = c.read_until_ready()
            assert not r.errors and r.rows == [[str(100 + n)]]
    assert prepared_on_server(c) <= 3
    assert int(stats(k)["total_prepare_evictions"]) >= 8 * 3 - 3


def test_parse_and_flush_only_gets_its_answer(start_keel):
    # Drivers send Parse + Flush (no Sync) and wait: keel's own ParseComplete must come.
    k = keel_tx(start_keel)
    warm(k, [SQL1])
    c = raw_login(k)
    c.send(P(SQL1, name="s1") + H())
    t, _ = c.read_msg(timeout=5)
    assert t == "1"
    c.send(C("S", "s1") + H())
    t, _ = c.read_msg(timeout=5)
    assert t == "3"
    c.send(S())
    r = c.read_until_ready()
    assert r.status == "I" and not r.errors


def test_client_with_named_statements_is_not_pinned(start_keel):
    k = keel_tx(start_keel)
    a, b = raw_login(k), raw_login(k)
    a.send(P(SQL1, name="s1") + S())
    assert not a.read_until_ready().errors
    assert b.scalar("select 'b runs'") == "b runs"  # the only server connection is free
    a.send(B(params=["3"], stmt="s1") + E() + S())
    assert a.read_until_ready().rows == [["6"]]


def test_big_bind_to_named_statement(start_keel):
    k = keel_tx(start_keel)
    c = raw_login(k)
    c.send(P("select length($1::text)", name="len") + S())
    assert not c.read_until_ready().errors
    big = "x" * (3 << 20)
    for _ in range(2):
        c.send(B(params=[big], stmt="len") + E() + S())
        r = c.read_until_ready(timeout=30)
        assert not r.errors and r.rows == [[str(len(big))]]


def test_parse_larger_than_a_buffer_pins_until_closed(start_keel):
    k = keel_tx(start_keel, query_wait_timeout=1)
    a, b = raw_login(k), raw_login(k)
    big = "select length('" + "y" * 40000 + "')"
    a.send(P(big, name="huge") + B(stmt="huge") + E() + S())
    r = a.read_until_ready()
    assert not r.errors and r.rows == [["40000"]]
    assert [e["C"] for e in b.query("select 1").errors] == ["53300"]  # a keeps the connection
    a.send(B(stmt="huge") + E() + C("S", "huge") + S())
    assert a.read_until_ready().rows == [["40000"]]
    assert b.scalar("select 'b runs'") == "b runs"


def test_pinned_state_reset_forgets_statements(start_keel, pg):
    # A pinned client leaving makes keel run DISCARD ALL: the connection's cache must be empty after.
    k = keel_tx(start_keel)
    a = raw_login(k)
    a.send(P(SQL1, name="s1") + S())
    a.read_until_ready()
    a.query_ok("listen chan_prepared")
    a.close()
    b = raw_login(k)
    b.send(P(SQL1, name="t1") + B(params=["4"], stmt="t1") + E() + S())
    r = b.read_until_ready()
    assert not r.errors and r.rows == [["8"]]


def test_max_prepared_statements_zero_pins_instead(start_keel):
    k = keel_tx(start_keel, max_prepared_statements=0)
    a, b = raw_login(k), raw_login(k)
    a.send(P(SQL1, name="s1") + S())
    assert not a.read_until_ready().errors
    k_admin = raw_login(k, database="keel")
    cols, rows = show(k_admin, "POOLS")
    assert sum(int(r["cl_pinned"]) for r in rows if r["database"] == "app") == 1
    a.send(C("S", "s1") + S())
    a.read_until_ready()
    assert b.scalar("select 'b runs'") == "b runs"


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_pgbench_prepared_more_clients_than_connections(start_keel, mode):
    k = start_keel({"pool": {"pool_size": 3}}, pool_mode=mode)
    clients = "16" if mode == "transaction" else "3"
    out = subprocess.run([PGBENCH, "-h", k.host, "-p", str(k.port), "-U", "app", "-n", "-S", "-M", "prepared",
                          "-c", clients, "-j", "2", "-t", "200", "app"],
                         env={**os.environ, "PGPASSWORD": "apppass"}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n = int(clients) * 200
    assert f"number of transactions actually processed: {n}/{n}" in out.stdout
    assert "number of failed transactions: 0" in out.stdout


def test_named_statement_survives_a_quiet_spell(start_keel):
    """A client quiet for a second parks, keeping nothing it does not use (test_memory); its named
    statements stay with it. One that parks with none starts keeping them again after."""
    from test_memory import buffers_in_use
    from harness import wait_until
    k = keel_tx(start_keel, pool_size=1)
    a = raw_login(k)
    a.send(P(SQL1, name="s1") + B(params=["1"], stmt="s1") + E() + S())
    assert not a.read_until_ready().errors
    a.query_ok("set statement_timeout = '7s'")
    admin = raw_login(k, database="keel")
    wait_until(lambda: buffers_in_use(admin) <= 1, 5, desc="the quiet client parked")
    a.send(B(params=["21"], stmt="s1") + E() + S())
    r = a.read_until_ready()
    assert not r.errors and r.rows == [["42"]]
    assert a.scalar("show statement_timeout") == "7s"
    b = raw_login(k)
    b.send(P(SQL1) + B(params=["2"]) + E() + S())  # unnamed only: it keeps nothing
    assert b.read_until_ready().rows == [["4"]]
    wait_until(lambda: buffers_in_use(admin) <= 1, 5, desc="the second client parked")
    b.send(P(SQL2, name="s2") + B(params=["x"], stmt="s2") + E() + S())
    assert b.read_until_ready().rows == [["x!"]]
    b.send(B(params=["y"], stmt="s2") + E() + S())
    assert b.read_until_ready().rows == [["y!"]]
