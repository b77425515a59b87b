"""Memory follows activity: a client that has gone quiet holds no I/O buffer (SHOW MEM)."""
import time

import pytest

from conftest import MODES
from harness import raw_login, wait_until
from test_admin import show


def buffers_in_use(admin):
    cols, rows = show(admin, "MEM")
    return sum(int(r["buffers_in_use"]) for r in rows)


@pytest.mark.parametrize("pool_mode", MODES)
def test_idle_clients_hold_no_buffer(start_keel, pool_mode):
    size = 4 if pool_mode == "transaction" else 45  # session mode: a server connection each
    k = start_keel({"pool": {"pool_size": size}}, pool_mode=pool_mode)
    clients = [raw_login(k) for _ in range(40)]
    for c in clients:
        for _ in range(3):
            assert c.scalar("select 1") == "1"
    admin = raw_login(k, database="keel")
    # busy clients read straight into a buffer; within about a second of quiet they give it back
    # (the admin session's own read holds at most one)
    wait_until(lambda: buffers_in_use(admin) <= 1, 5, desc="idle clients' buffers returned")
    for c in clients:
        assert c.scalar("select 2") == "2"  # and they still work


def test_a_client_idle_in_a_transaction_holds_one_buffer_until_it_ends(start_keel):
    """Transaction mode: between a transaction's statements the pump keeps its buffer (its next
    read goes through the worker's batch), so a client idle in a transaction holds one, beside
    the server connection it holds anyway; it gives it back when the transaction ends."""
    k = start_keel({"pool": {"pool_size": 4}}, pool_mode="transaction")
    admin = raw_login(k, database="keel")
    clients = [raw_login(k) for _ in range(3)]
    for c in clients:
        c.query_ok("begin")
        assert c.scalar("select 1") == "1"
    # Quiet readers park after about a second; each pump keeps one buffer (the admin's read: one).
    time.sleep(2.5)
    n = buffers_in_use(admin)
    assert len(clients) <= n <= len(clients) + 1, n
    for c in clients:
        c.query_ok("commit")
    wait_until(lambda: buffers_in_use(admin) <= 1, 5, desc="buffers returned when the transactions ended")
