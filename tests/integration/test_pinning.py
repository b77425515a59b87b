"""Transaction mode: session state that cannot move between server connections pins the client
to its server connection until the state is gone; session_state = "reject" refuses it."""

import pytest

from harness import B, E, P, S, raw_login, wait_until
from test_admin import show

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"

# (statement that creates the state, statement that removes it)
TRIGGERS = [
    ("listen chan_pin", "unlisten *"),
    ("select pg_advisory_lock(4242)", "select pg_advisory_unlock(4242)"),
    ("create temp table pin_tmp (a int)", "discard temp"),
    ("begin; declare pin_cur cursor with hold for select 1; commit", "close pin_cur"),
    ("prepare pin_stmt as select 1", "deallocate pin_stmt"),
    ("set work_mem = '7MB'", "reset all"),
]


def pinned_count(admin):
    cols, rows = show(admin, "POOLS")
    return sum(int(r["cl_pinned"]) for r in rows if r["database"] == "app")


def keel_one_conn(start_keel, **pool):
    return start_keel({"keel": {"workers": 1},
                       "pool": {"pool_size": 1, "query_wait_timeout": 1, **pool}},
                      pool_mode="transaction")


@pytest.mark.parametrize("create,remove", TRIGGERS, ids=[t[0].split()[0] + "-" + t[1].split()[0] for t in TRIGGERS])
def test_pin_and_release(start_keel, create, remove):
    k = keel_one_conn(start_keel)
    a = raw_login(k)
    b = raw_login(k)
    pid = a.scalar("select pg_backend_pid()")
    a.query_ok(create)
    # a keeps the only server connection: b waits past query_wait_timeout
    r = b.query("select 1")
    assert [e["C"] for e in r.errors] == ["53300"]
    assert a.scalar("select pg_backend_pid()") == pid
    admin = raw_login(k, database="keel")
    assert pinned_count(admin) == 1
    a.query_ok(remove)
    assert b.scalar("select 'b runs'") == "b runs"
    assert pinned_count(admin) == 0


def test_pinned_state_is_discarded_when_client_leaves(start_keel, pg):
    k = keel_one_conn(start_keel)
    a = raw_login(k)
    a.query_ok("select pg_advisory_lock(777)")
    a.query_ok("set work_mem = '7MB'")
    a.close()
    wait_until(lambda: pg.scalar("select count(*) from pg_locks where locktype = 'advisory' and objid = 777",
                                 dbname="app") == 0, 5, desc="advisory lock released")
    b = raw_login(k)
    assert b.scalar("show work_mem") == "4MB"
    admin = raw_login(k, database="keel")
    assert pinned_count(admin) == 0


def test_notifications_reach_a_listening_client(start_keel, pg):
    k = keel_one_conn(start_keel, pool_size=2)
    a = raw_login(k)
    a.query_ok("listen chan_notify")
    b = raw_login(k)
    b.query_ok("notify chan_notify, 'hello'")
    t, p = a.read_msg(timeout=5)
    assert t == "A"
    assert b"chan_notify" in p and b"hello" in p


def test_reject_mode(start_keel):
    k = keel_one_conn(start_keel, session_state="reject")
    a = raw_login(k)
    r = a.query("listen chan_reject")
    assert [e["C"] for e in r.errors] == ["0A000"]
    assert r.status == "I"
    # extended protocol: Parse of such a statement fails, the rest is skipped to Sync
    a.send(P("select pg_advisory_lock(1)") + B() + E() + S())
    r = a.read_until_ready()
    assert [e["C"] for e in r.errors] == ["0A000"]
    assert a.scalar("select 'still usable'") == "still usable"
    assert raw_login(k).scalar("select 1") == "1"
