"""Query cancellation through keel (BackendKeyData / CancelRequest)."""
import os
import random
import signal
import socket
import time

import pytest

from conftest import MODES
from harness import Q, cancel_request, raw_login, send_cancel, wait_until

SLEEP_SQL = "select pg_sleep(30)"


def active_sleeps(pg, sql=SLEEP_SQL):
    return pg.scalar("select count(*) from pg_stat_activity where query = %s "
                     "and state = 'active'", [sql])


@pytest.mark.parametrize("pool_mode", MODES)
def test_backend_key_is_keels_own(start_keel, pool_mode):
    k = start_keel(pool_mode=pool_mode)
    keys = set()
    for _ in range(3):
        c = raw_login(k)
        assert c.backend_key is not None, "no BackendKeyData"
        server_pid = int(c.scalar("select pg_backend_pid()"))
        assert c.backend_key[0] != server_pid, "keel passed the server's pid through"
        keys.add(c.backend_key)
    assert len(keys) == 3, "cancel keys must be unique per client"


@pytest.mark.parametrize("pool_mode", MODES)
def test_cancel_running_query_across_workers(start_keel, pg, pool_mode):
    n = 10
    k = start_keel({"keel": {"workers": 2}, "pool": {"pool_size": n}}, pool_mode=pool_mode)
    clients = [raw_login(k) for _ in range(n)]
    for c in clients:
        c.send(Q(SLEEP_SQL))
    wait_until(lambda: active_sleeps(pg) == n, 10, desc=f"{n} sleeps running")
    for c in clients:
        t0 = time.monotonic()
        # each cancel is a new TCP connection: SO_REUSEPORT spreads them over
        # the workers, so some land on a worker other than the client's
        send_cancel(k.host, k.port, c.backend_key)
        r = c.read_until_ready(timeout=10)
        assert [e["C"] for e in r.errors] == ["57014"]
        assert time.monotonic() - t0 < 5
        assert r.status == "I"
    for c in clients:
        assert c.scalar("select 'still usable'") == "still usable"


@pytest.mark.parametrize("pool_mode", MODES)
def test_cancel_with_wrong_key_does_nothing(start_keel, pg, pool_mode):
    k = start_keel(pool_mode=pool_mode)
    c = raw_login(k)
    other = raw_login(k)
    sql = "select pg_sleep(2)"
    c.send(Q(sql))
    wait_until(lambda: active_sleeps(pg, sql) == 1, 10, desc="sleep running")
    pid, secret = c.backend_key
    send_cancel(k.host, k.port, (pid, secret ^ 0x5A5A5A5A))
    send_cancel(k.host, k.port, (pid ^ 0x00010001, secret))
    send_cancel(k.host, k.port, other.backend_key[0:1] + (secret,))
    send_cancel(k.host, k.port, (random.getrandbits(32), random.getrandbits(32)))
    r = c.read_until_ready(timeout=10)
    assert not r.errors, r.errors
    assert r.rows == [[""]]
    assert other.scalar("select 1") == "1"


def test_cancel_idle_client_is_harmless(start_keel):
    # transaction mode: an idle client has no server connection, so there is
    # nothing to cancel; keel must simply drop the request
    k = start_keel(pool_mode="transaction")
    c = raw_login(k)
    assert c.scalar("select 1") == "1"
    send_cancel(k.host, k.port, c.backend_key)
    assert c.scalar("select 2") == "2"
    assert k.alive()


@pytest.mark.parametrize("pool_mode", MODES)
def test_cancel_connection_closes_once_the_server_has_the_cancel(start_keel, pg, pool_mode):
    # PostgreSQL closes a cancel connection only after it has signalled the backend, and clients
    # rely on it: libpq's PQcancel waits for the close, then the application sends its next
    # statement. Were keel to close first, that cancel could land on the next statement. With the
    # postmaster stopped, keel's own cancel connection gets no answer: the client's must stay open.
    k = start_keel({"keel": {"workers": 2}}, pool_mode=pool_mode)
    c = raw_login(k)
    c.send(Q(SLEEP_SQL))
    wait_until(lambda: active_sleeps(pg) == 1, 10, desc="sleep running")
    with open(os.path.join(pg.datadir, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    s = socket.create_connection((k.host, k.port), timeout=5)
    os.kill(postmaster, signal.SIGSTOP)
    try:
        s.sendall(cancel_request(c.backend_key))
        s.settimeout(1.0)
        with pytest.raises(socket.timeout):
            s.recv(1)  # still open: the server has not taken the cancel yet
    finally:
        os.kill(postmaster, signal.SIGCONT)
    s.settimeout(10)
    try:
        assert s.recv(1) == b""  # closed once the server has it
    except ConnectionResetError:
        pass
    s.close()
    r = c.read_until_ready(timeout=10)
    assert [e["C"] for e in r.errors] == ["57014"]
    assert c.scalar("select 'next statement runs'") == "next statement runs"


def test_key_of_a_client_that_left_cancels_nothing(start_keel, pg):
    """A worker reuses a gone client's pid for a later client (as PostgreSQL reuses its pids);
    the old key's secret does not cancel the new client's query."""
    k = start_keel({"keel": {"workers": 1}})
    gone = raw_login(k)
    old_key = gone.backend_key
    gone.close()
    held = []
    for _ in range(100):  # the slot is free once the session has ended
        c = raw_login(k)
        if c.backend_key[0] == old_key[0]:
            break
        held.append(c)
        time.sleep(0.05)
    else:
        pytest.fail("the gone client's pid was never given out again")
    assert c.backend_key[1] != old_key[1]
    sql = "select pg_sleep(1.5)"
    c.send(Q(sql))
    wait_until(lambda: active_sleeps(pg, sql) == 1, 10, desc="sleep running")
    send_cancel(k.host, k.port, old_key)
    r = c.read_until_ready(timeout=10)
    assert not r.errors, r.errors
