"""Pooling behaviour: pool limits, timeouts, session vs transaction mode."""
import select
import time

import psycopg2
import pytest

from conftest import MODES
from harness import (ConnSampler, PgError, Q, connect, parse_fields, q1, raw, raw_login,
                     run_threads, wait_until)

WAIT_CODES = ("53300", "57014")   # query_wait_timeout: keel uses 53300


def server_pid(conn):
    return q1(conn, "select pg_backend_pid()")


# --------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------

@pytest.mark.parametrize("pool_mode", MODES)
def test_many_clients_small_pool(start_keel, pg, pool_mode):
    k = start_keel({"pool": {"pool_size": 5}}, pool_mode=pool_mode)

    def client(i):
        conn = connect(k)
        try:
            for j in range(3):
                with conn.cursor() as cur:
                    cur.execute("select pg_sleep(0.02), %s::int * %s::int", (i, j))
                    assert cur.fetchone()[1] == i * j
                conn.commit()
            return True
        finally:
            conn.close()

    with ConnSampler(pg) as sampler:
        results, errors = run_threads(client, 50, timeout=60)
    assert errors == []
    assert all(results)
    assert 1 <= sampler.max <= 5, f"server connections peaked at {sampler.max}"


def test_min_pool_size(start_keel, pg):
    start_keel({"pool": {"pool_size": 5, "min_pool_size": 2},
                "users": {"md5user": None, "plainuser": None}})
    wait_until(lambda: pg.server_conn_count("app") == 2, 10,
               desc="min_pool_size server connections")
    with ConnSampler(pg) as sampler:
        time.sleep(0.5)   # observation window: no overshoot
    assert sampler.max == 2


@pytest.mark.parametrize("pool_mode", MODES)
def test_server_idle_timeout(start_keel, pg, pool_mode):
    k = start_keel({"pool": {"server_idle_timeout": 1.0}}, pool_mode=pool_mode)
    conn = connect(k, autocommit=True)
    assert q1(conn, "select 1") == 1
    assert pg.server_conn_count() >= 1
    if pool_mode == "session":
        conn.close()   # the server connection goes back to the pool
    wait_until(lambda: pg.server_conn_count() == 0, 10,
               desc="idle server connections closed")
    if pool_mode == "transaction":
        assert q1(conn, "select 2") == 2   # a fresh server connection is made
    else:
        assert q1(connect(k, autocommit=True), "select 2") == 2


def test_server_lifetime_transaction_mode(start_keel):
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1, "server_lifetime": 1.0}},
                   pool_mode="transaction")
    conn = connect(k, autocommit=True)
    first = server_pid(conn)
    wait_until(lambda: server_pid(conn) != first, 10, interval=0.1,
               desc="server connection replaced after server_lifetime")
    assert q1(conn, "select 1") == 1


def test_server_lifetime_session_mode(start_keel):
    # one worker: server connections belong to a worker, so a client on the
    # other worker would get a different one regardless of server_lifetime
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1, "server_lifetime": 1.0}},
                   pool_mode="session")
    conn = connect(k, autocommit=True)
    first = server_pid(conn)
    time.sleep(1.5)   # scenario: a session that outlives server_lifetime
    assert server_pid(conn) == first, "server connection replaced under an active session"
    conn.close()

    def new_pid():
        c = connect(k, autocommit=True)
        try:
            return server_pid(c)
        finally:
            c.close()
    wait_until(lambda: new_pid() != first, 10, interval=0.1,
               desc="server connection replaced after server_lifetime")


@pytest.mark.parametrize("pool_mode", MODES)
def test_client_idle_timeout(start_keel, pool_mode):
    k = start_keel({"pool": {"client_idle_timeout": 1.0}}, pool_mode=pool_mode)
    idle = raw_login(k)
    busy = raw_login(k)
    assert idle.scalar("select 1") == "1"
    t0 = time.monotonic()
    busy.send(Q("select pg_sleep(2)"))
    msgs = idle.expect_closed(timeout=10)
    assert time.monotonic() - t0 >= 0.5, "disconnected before client_idle_timeout"
    errors = [parse_fields(p) for t, p in msgs if t == "E"]
    assert [(e["S"], e["C"]) for e in errors] == [("FATAL", "57P05")]
    # a client waiting for a long query is not idle
    r = busy.read_until_ready(timeout=10)
    assert not r.errors
    # psycopg2: the next use after the timeout fails
    conn = connect(k, autocommit=True)
    assert q1(conn, "select 1") == 1
    readable, _, _ = select.select([conn.fileno()], [], [], 10)
    assert readable, "keel did not disconnect the idle psycopg2 client"
    with pytest.raises(psycopg2.OperationalError):
        q1(conn, "select 1")


@pytest.mark.parametrize("pool_mode", MODES)
def test_max_client_conn(start_keel, pool_mode):
    k = start_keel({"keel": {"max_client_conn": 3}}, pool_mode=pool_mode)
    conns = [connect(k, autocommit=True) for _ in range(3)]
    for c in conns:
        assert q1(c, "select 1") == 1
    extra = raw(k)
    with pytest.raises(PgError) as ei:
        extra.login()
    assert ei.value.code == "53300"
    assert ei.value.severity == "FATAL"
    extra.expect_closed()
    for c in conns:
        assert q1(c, "select 2") == 2
    conns[0].close()

    def can_login():
        c = raw(k)
        try:
            c.login()
            return c.scalar("select 3") == "3"
        except PgError as e:
            assert e.code == "53300"
            return False
        finally:
            c.close()
    wait_until(can_login, 10, interval=0.1, desc="slot freed after a client left")


def test_query_wait_timeout(start_keel):
    k = start_keel({"pool": {"pool_size": 1, "query_wait_timeout": 1.0}},
                   pool_mode="transaction")
    a = connect(k)                       # psycopg2 opens a transaction
    assert q1(a, "select 1") == 1        # A now holds the only server connection
    b = connect(k, autocommit=True)
    t0 = time.monotonic()
    with pytest.raises(psycopg2.Error) as ei:
        q1(b, "select 1")
    elapsed = time.monotonic() - t0
    assert ei.value.pgcode in WAIT_CODES
    assert 0.8 <= elapsed <= 4.0, elapsed
    a.commit()
    assert q1(b, "select 2") == 2        # B's connection is still usable
    assert q1(a, "select 3") == 3
    a.commit()


@pytest.mark.parametrize("pool_mode", MODES)
def test_pool_slot_moves_between_workers(start_keel, pool_mode):
    """pool_size=1 over 2 workers: the server connection left idle on one
    worker must not starve a client that lands on the other worker.  Each new
    connection is spread by SO_REUSEPORT, so 12 of them hit both workers
    (all on one worker with probability 2^-11)."""
    k = start_keel({"keel": {"workers": 2},
                    "pool": {"pool_size": 1, "query_wait_timeout": 3.0}}, pool_mode=pool_mode)
    for i in range(12):
        c = raw_login(k)
        assert c.scalar(f"select {i}") == str(i)
        c.close()


# --------------------------------------------------------------------------
# session mode
# --------------------------------------------------------------------------

def test_session_mode_keeps_server(start_keel):
    k = start_keel({"pool": {"pool_size": 3}}, pool_mode="session")
    others = [connect(k, autocommit=True) for _ in range(2)]
    conn = connect(k)
    pids = set()
    for _ in range(5):
        pids.add(server_pid(conn))
        conn.commit()
        for o in others:
            q1(o, "select 1")
    assert len(pids) == 1


def test_session_state_reset_between_clients(start_keel, pg):
    # one worker, one server connection: B must get the connection A used
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1}}, pool_mode="session")
    a = connect(k, autocommit=True)
    with a.cursor() as cur:
        cur.execute("set work_mem = '7MB'")
        cur.execute("create temp table keel_session_tmp (a int)")
        cur.execute("prepare keel_stmt as select 1")
        cur.execute("select pg_advisory_lock(4242)")
        cur.execute("show work_mem")
        assert cur.fetchone()[0] == "7MB"
    pid = server_pid(a)
    a.close()
    b = connect(k, autocommit=True)
    assert server_pid(b) == pid, "expected the single pooled server connection to be reused"
    assert q1(b, "show work_mem") == "4MB"
    with pytest.raises(psycopg2.Error) as ei:
        q1(b, "select * from keel_session_tmp")
    assert ei.value.pgcode == "42P01"
    with pytest.raises(psycopg2.Error) as ei:
        q1(b, "execute keel_stmt")
    assert ei.value.pgcode == "26000"
    assert pg.scalar("select count(*) from pg_locks where locktype = 'advisory' "
                     "and objid = 4242") == 0


# --------------------------------------------------------------------------
# transaction mode
# --------------------------------------------------------------------------

def test_transaction_mode_shares_server(start_keel):
    # one worker: server connections are not shared across workers
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1}}, pool_mode="transaction")
    a = connect(k, autocommit=True)
    b = connect(k, autocommit=True)
    pa = server_pid(a)
    assert server_pid(b) == pa
    assert server_pid(a) == pa


def test_transaction_mode_pid_stable_within_transaction(start_keel, pg):
    k = start_keel({"pool": {"pool_size": 3}}, pool_mode="transaction")

    def client(i):
        conn = connect(k)
        seen = set()
        try:
            for _ in range(5):
                with conn.cursor() as cur:
                    cur.execute("select pg_backend_pid()")
                    p1 = cur.fetchone()[0]
                    cur.execute("select pg_sleep(0.01)")
                    cur.execute("select pg_backend_pid()")
                    p2 = cur.fetchone()[0]
                conn.commit()
                assert p1 == p2, "server changed inside a transaction"
                seen.add(p1)
            return seen
        finally:
            conn.close()

    with ConnSampler(pg) as sampler:
        results, errors = run_threads(client, 8)
    assert errors == []
    # (over time more than 3 distinct pids may appear: keel closes a returned
    # connection so that another worker can open one; at no time more than 3)
    assert sampler.max <= 3


def test_transaction_mode_waiting_clients_served(start_keel):
    k = start_keel({"pool": {"pool_size": 1}}, pool_mode="transaction")

    def client(i):
        conn = connect(k, autocommit=True)
        try:
            return q1(conn, "select pg_sleep(0.2)::text || %s", (str(i),))
        finally:
            conn.close()

    t0 = time.monotonic()
    results, errors = run_threads(client, 5)
    assert errors == []
    assert sorted(results) == sorted(str(i) for i in range(5))
    assert time.monotonic() - t0 >= 0.9, "queries did not queue on the single connection"


# --------------------------------------------------------------------------
# per-database settings
# --------------------------------------------------------------------------

def test_per_database_pool_size(start_keel, pg):
    k = start_keel({"pool": {"pool_size": 10}, "databases": {"app": {"pool_size": 2}}},
                   pool_mode="transaction")

    def client(i):
        conn = connect(k)
        try:
            q1(conn, "select pg_sleep(0.3)")
            conn.commit()
            return True
        finally:
            conn.close()

    with ConnSampler(pg) as sampler:
        results, errors = run_threads(client, 6)
    assert errors == [] and all(results)
    assert 1 <= sampler.max <= 2


def test_per_database_pool_mode(start_keel):
    k = start_keel({"pool": {"pool_size": 10, "query_wait_timeout": 1.0},
                    "databases": {"app": {"pool_mode": "session", "pool_size": 1}}},
                   pool_mode="transaction")
    a = connect(k, autocommit=True)
    assert q1(a, "select 1") == 1        # session mode: A keeps the only server
    b = raw(k)
    with pytest.raises(PgError) as ei:   # at login or at the first query
        b.login()
        b.query_ok("select 1")
    assert ei.value.code in WAIT_CODES
    a.close()
    c = connect(k, autocommit=True)
    assert q1(c, "select 2") == 2


def test_database_name_mapping(start_keel, pg):
    k = start_keel({"databases": {
        "alias": {"host": "127.0.0.1", "port": pg.port, "dbname": "app"},
        "pgdb": {"host": "127.0.0.1", "port": pg.port, "dbname": "postgres"},
    }})
    assert q1(connect(k, dbname="alias", autocommit=True), "select current_database()") == "app"
    assert q1(connect(k, dbname="pgdb", autocommit=True),
              "select current_database()") == "postgres"
    assert q1(connect(k, autocommit=True), "select current_database()") == "app"


def test_replica_database(start_keel, replica):
    k = start_keel({"databases": {"ro": {"host": "127.0.0.1", "port": replica.port,
                                         "dbname": "app"}}})
    conn = connect(k, dbname="ro", autocommit=True)
    assert q1(conn, "select pg_is_in_recovery()") is True
    assert q1(conn, "select count(*) from pgbench_branches") == 1
    with pytest.raises(psycopg2.Error) as ei:
        q1(conn, "update pgbench_branches set bbalance = bbalance returning 1")
    assert ei.value.pgcode == "25006"
    assert q1(connect(k, autocommit=True), "select pg_is_in_recovery()") is False


def test_pool_size_holds_as_postgresql_counts_it(start_keel, pg):
    """A server connection that moves between workers (closed on one so the other can open one)
    is gone from PostgreSQL before its replacement logs in: PostgreSQL never counts more than
    pool_size backends for the pool, which matters when pool_size is sized to max_connections."""
    k = start_keel({"keel": {"workers": 2}, "pool": {"pool_size": 1}})
    # Four clients on each worker (the kernel spreads connections by hash; keel's BackendKeyData
    # pid carries the worker in bits 22 and up).
    by_worker = {0: [], 1: []}
    for _ in range(64):
        c = connect(k, autocommit=True)
        w = (c.get_backend_pid() >> 22) & 0xff
        if len(by_worker[w]) < 4:
            by_worker[w].append(c)
        else:
            c.close()
        if all(len(v) == 4 for v in by_worker.values()):
            break
    assert all(len(v) == 4 for v in by_worker.values()), "clients did not reach both workers"
    conns = [c for pair in zip(by_worker[0], by_worker[1]) for c in pair]  # alternate workers
    pids = set()
    with ConnSampler(pg, interval=0.001) as sampler:
        for _ in range(6):
            for c in conns:
                pids.add(q1(c, "select pg_backend_pid()"))
    assert len(pids) > 1, "the connection never moved between workers: nothing was tested"
    assert sampler.max == 1, f"PostgreSQL counted {sampler.max} backends for a pool of 1"
    for c in conns:
        c.close()
