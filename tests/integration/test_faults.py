"""Faults: server connections terminated under keel, clients that vanish
mid-transaction / mid-COPY / mid-query, unreachable servers."""
import socket
import time

import pytest

from conftest import MODES
from harness import (Closed, PgError, Q, connect, copy_data, free_port, parse_fields, q1, raw,
                     raw_login, short, wait_until)

TERMINATED_CODES = ("57P01", "08006")


def server_gone(pg, pid):
    return lambda: not pg.pid_exists(pid)


def no_idle_in_tx(pg):
    return lambda: pg.idle_in_tx_count("app") == 0


# --------------------------------------------------------------------------
# server connections terminated behind keel's back
# --------------------------------------------------------------------------

@pytest.mark.parametrize("pool_mode", MODES)
def test_terminate_server_of_client_in_transaction(start_keel, pg, pool_mode):
    k = start_keel({"pool": {"pool_size": 3}}, pool_mode=pool_mode)
    other = raw_login(k)
    victim = raw_login(k)
    victim.query_ok("begin")
    pid = int(victim.scalar("select pg_backend_pid()"))
    assert pg.terminate(pid)
    wait_until(server_gone(pg, pid), 5, desc="server backend gone")
    # keel may tell the client right away; otherwise the next query must fail
    msgs = []
    try:
        msgs.append(victim.read_msg(timeout=1.0))
    except (socket.timeout, TimeoutError):
        try:
            victim.send(Q("select 1"))
        except OSError:
            pass
    except Closed:
        pass
    if victim.sock is not None:
        try:
            msgs += victim.expect_closed(timeout=5)
        except AssertionError:
            raise AssertionError(f"client connection not closed; got {short(msgs)}")
    errors = [parse_fields(p) for t, p in msgs if t == "E"]
    assert errors, f"client saw no error: {short(msgs)}"
    # keel may forward the server's FATAL and/or send its own error
    assert any(e["C"] in TERMINATED_CODES for e in errors), errors
    # other clients unaffected; the dead server connection is not reused
    assert other.scalar("select 1") == "1"
    fresh = connect(k, autocommit=True)
    for _ in range(3):
        assert q1(fresh, "select pg_backend_pid()") != pid
    assert other.scalar("select pg_backend_pid()") != str(pid)


@pytest.mark.parametrize("pool_mode", MODES)
def test_terminate_idle_pooled_server(start_keel, pg, pool_mode):
    k = start_keel({"pool": {"pool_size": 2}}, pool_mode=pool_mode)
    conn = connect(k, autocommit=True)
    pid = q1(conn, "select pg_backend_pid()")
    if pool_mode == "session":
        conn.close()                     # server connection returns to the pool
    assert pg.terminate(pid)
    wait_until(server_gone(pg, pid), 5, desc="server backend gone")
    if pool_mode == "session":
        conn = connect(k, autocommit=True)
    for i in range(3):
        assert q1(conn, "select %s::int", (i,)) == i
        assert q1(conn, "select pg_backend_pid()") != pid
    assert k.alive()


# --------------------------------------------------------------------------
# clients that disappear
# --------------------------------------------------------------------------

KILL_STYLES = ["close", "reset"]


def kill_client(c, style):
    c.close(abort=(style == "reset"))


@pytest.mark.parametrize("style", KILL_STYLES)
@pytest.mark.parametrize("pool_mode", MODES)
def test_client_killed_holding_advisory_lock(start_keel, pg, pool_mode, style):
    k = start_keel({"pool": {"pool_size": 2}}, pool_mode=pool_mode)
    a = raw_login(k)
    a.query_ok("begin")
    a.query_ok("select pg_advisory_xact_lock(42)")
    kill_client(a, style)
    wait_until(no_idle_in_tx(pg), 5, desc="no server connection idle in transaction")
    b = connect(k)
    with b.cursor() as cur:
        cur.execute("set local lock_timeout = '5s'")
        cur.execute("select pg_advisory_xact_lock(42)")
    b.commit()
    assert pg.scalar("select count(*) from pg_locks where locktype = 'advisory' "
                     "and objid = 42") == 0


@pytest.mark.parametrize("style", KILL_STYLES)
@pytest.mark.parametrize("pool_mode", MODES)
def test_client_killed_holding_table_lock(start_keel, pg, pool_mode, style):
    pg.create_table("fault_lock_t", "a int")
    k = start_keel({"pool": {"pool_size": 2}}, pool_mode=pool_mode)
    a = raw_login(k)
    a.query_ok("begin")
    a.query_ok("lock table fault_lock_t in access exclusive mode")
    kill_client(a, style)
    wait_until(no_idle_in_tx(pg), 5, desc="no server connection idle in transaction")
    b = connect(k)
    with b.cursor() as cur:
        cur.execute("set local lock_timeout = '5s'")
        cur.execute("select count(*) from fault_lock_t")
        assert cur.fetchone()[0] == 0
    b.commit()


@pytest.mark.parametrize("style", KILL_STYLES)
@pytest.mark.parametrize("pool_mode", MODES)
def test_client_killed_with_uncommitted_insert(start_keel, pg, pool_mode, style):
    pg.create_table("fault_insert_t", "a int")
    # pool_size 1: if keel handed the server connection on without rolling
    # back, the next client would run inside the dead client's transaction
    k = start_keel({"pool": {"pool_size": 1}}, pool_mode=pool_mode)
    a = raw_login(k)
    a.query_ok("begin")
    a.query_ok("insert into fault_insert_t values (999)")
    kill_client(a, style)
    b = connect(k, autocommit=True)
    assert q1(b, "select count(*) from fault_insert_t") == 0
    assert q1(b, "select count(*) from pg_stat_activity where pid = pg_backend_pid() "
                 "and backend_xid is not null") == 0
    wait_until(no_idle_in_tx(pg), 5, desc="no server connection idle in transaction")
    assert pg.scalar("select count(*) from fault_insert_t", dbname="app") == 0


@pytest.mark.parametrize("pool_mode", MODES)
def test_client_killed_during_copy_in(start_keel, pg, pool_mode):
    pg.create_table("fault_copy_t", "a int, b text")
    k = start_keel({"pool": {"pool_size": 1}}, pool_mode=pool_mode)
    a = raw_login(k)
    a.send(Q("copy fault_copy_t from stdin"))
    t, _ = a.read_msg()
    assert t == "G"
    a.send(b"".join(copy_data(f"{i}\trow {i}\n".encode()) for i in range(1000)))
    a.close()
    b = raw_login(k)                     # socket timeout: fails rather than hangs
    assert b.scalar("select 'after copy'") == "after copy"
    assert b.scalar("select count(*) from fault_copy_t") == "0"
    b.close()  # session mode: b holds the only server connection until it leaves
    c = raw_login(k)
    assert c.scalar("select 1") == "1"
    assert pg.scalar("select count(*) from pg_stat_activity where query like 'copy fault_copy_t%%' "
                     "and state = 'active'") == 0


@pytest.mark.parametrize("pool_mode", MODES)
def test_client_killed_during_long_query(start_keel, pg, pool_mode):
    k = start_keel({"pool": {"pool_size": 1}}, pool_mode=pool_mode)
    a = raw_login(k)
    a.send(Q("select pg_sleep(30)"))
    wait_until(lambda: pg.scalar("select count(*) from pg_stat_activity where "
                                 "query = 'select pg_sleep(30)' and state = 'active'") == 1,
               5, desc="query running")
    t0 = time.monotonic()
    a.close(abort=True)
    # keel must cancel the query or drop the server connection, not wait 30 s
    b = raw_login(k)
    assert b.query_ok("select 'next'", timeout=15).scalar() == "next"
    assert time.monotonic() - t0 < 15


def test_client_disconnect_while_waiting_for_server(start_keel, pg):
    k = start_keel({"pool": {"pool_size": 1}}, pool_mode="transaction")
    holder = raw_login(k)
    holder.query_ok("begin")
    holder.query_ok("select 1")
    waiters = [raw_login(k) for _ in range(5)]
    for w in waiters:
        w.send(Q("select 1"))
    for w in waiters:
        w.close(abort=True)
    holder.query_ok("commit")
    assert raw_login(k).scalar("select 'ok'") == "ok"
    assert k.alive()


# --------------------------------------------------------------------------
# unreachable server
# --------------------------------------------------------------------------

def test_unreachable_server(start_keel, pg):
    dead_port = free_port()              # nothing listens there
    k = start_keel({"pool": {"server_connect_timeout": 1.0, "query_wait_timeout": 3.0},
                    "databases": {"down": {"host": "127.0.0.1", "port": dead_port,
                                           "dbname": "app"}}})
    t0 = time.monotonic()
    c = raw(k)
    with pytest.raises(PgError) as ei:   # at login or at the first query
        c.login(database="down")
        c.query_ok("select 1")
    assert ei.value.severity in ("ERROR", "FATAL")
    assert time.monotonic() - t0 < 8
    assert k.alive()
    assert raw_login(k).scalar("select 'app still works'") == "app still works"


def test_server_that_accepts_and_never_answers(start_keel, pg):
    """server_connect_timeout covers the login, not only the TCP connect: a server that accepts
    and then says nothing costs the client an error, not a hang."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    try:
        k = start_keel({"pool": {"server_connect_timeout": 1.0, "query_wait_timeout": 3.0},
                        "databases": {"mute": {"host": "127.0.0.1", "port": mute.getsockname()[1],
                                               "dbname": "app"}}})
        t0 = time.monotonic()
        c = raw(k, timeout=15)
        with pytest.raises(PgError) as ei:   # at login or at the first query
            c.login(database="mute")
            c.query_ok("select 1")
        assert ei.value.code == "08006", ei.value.fields
        assert time.monotonic() - t0 < 6
        assert raw_login(k).scalar("select 'app still works'") == "app still works"
    finally:
        mute.close()


# --------------------------------------------------------------------------
# resets that come with the last bytes read (no later epoll edge: src/net/edge_io.hpp)
# --------------------------------------------------------------------------

def _cl_active(admin):
    r = admin.query_ok("SHOW POOLS;")
    cols = r.sets[0]["columns"]
    return sum(int(dict(zip(cols, row))["cl_active"]) for row in r.sets[0]["rows"]
               if dict(zip(cols, row))["database"] == "app")


@pytest.mark.parametrize("pool_mode", MODES)
@pytest.mark.parametrize("tail", ["partial", "query", "query+partial"])
@pytest.mark.parametrize("end", ["reset", "fin"])
def test_client_leaves_right_after_bytes(start_keel, pool_mode, tail, end):
    """A client that sends bytes and leaves at once, with a reset or with its FIN in the same
    segment as the bytes: one epoll event brings both and none comes later. keel's read takes
    the bytes (fewer than it asked for: the socket counts as drained), so only the sweep's poll
    (POLLERR/POLLHUP, POLLRDHUP) tells it the client left. Its session must still end promptly,
    whatever the bytes were, and the pool serve others."""
    k = start_keel({"pool": {"pool_size": 2}}, pool_mode=pool_mode)
    admin = raw_login(k, database="keel")
    body = {"partial": Q("select 1")[:3],
            "query": Q("select pg_sleep(0.05)"),
            "query+partial": Q("select 1") + Q("select 2")[:7]}[tail]
    clients = [raw_login(k) for _ in range(8)]
    wait_until(lambda: _cl_active(admin) == 8, 5, desc="8 clients counted")
    for c in clients:
        if end == "reset":
            c.send(body)
            c.close(abort=True)
        else:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)  # hold the bytes ...
            c.send(body)
            c.sock.shutdown(socket.SHUT_WR)  # ... so the FIN leaves with them
    if end == "fin":
        for c in clients:
            c.expect_closed(timeout=5)
    wait_until(lambda: _cl_active(admin) == 0, 5, desc="sessions of the clients that left end")
    assert raw_login(k).scalar("select 'still serving'") == "still serving"
    assert k.alive()
