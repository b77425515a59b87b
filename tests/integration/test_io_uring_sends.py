"""keel.io_uring_sends: sends batched into io_uring keep every byte in order, hold back what
writes to a client that reads slowly, and let go of a client that leaves while sends wait; and
keel.io_uring_reads, the reads done through the same ring. Both are on by default
(KEEL_TEST_IO_URING_SENDS=0 and KEEL_TEST_IO_URING_READS=0 run the suite without them); these tests
turn them on themselves."""
import os
import threading
import time

import pytest

from conftest import DIRECT
from harness import Q, connect, q1, raw_login, wait_until
from pgwire import decode_datarow, parse_fields

pytestmark = pytest.mark.skipif(DIRECT, reason="keel's own send path")

ON = {"keel": {"io_uring_sends": True, "log_level": "debug"}}


def rings(k) -> int:
    """io_uring instances the keel process holds (one per worker when batching)."""
    fd_dir = f"/proc/{k.proc.pid}/fd"
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") == "anon_inode:[io_uring]":
                n += 1
        except OSError:
            pass
    return n


def size(i, trickle):
    return 6000 if trickle else (20000 if i % 7 == 0 else 40 + i % 50)


def pipeline(n, trickle=False):
    """n simple queries. trickle: each answers a 6 kB row after half a millisecond, so keel reads the
    answers one by one and sends each through the batch (up to 8 KiB); otherwise they come as
    fast as the server makes them, every 7th a 20 kB row, and keel's reads of many answers at
    once go out directly, past the batch, between the batched ones."""
    sleep = ", pg_sleep(0.0005)" if trickle else ""
    return b"".join(Q(f"select {i}, repeat('x', {size(i, trickle)}){sleep}") for i in range(n))


def read_pipeline(c, n, trickle=False, timeout=30):
    """Reads n results, checking each one's number and size: bytes in order, none lost."""
    for i in range(n):
        r = c.read_until_ready(timeout)
        rows = [decode_datarow(p) for t, p in r.msgs if t == "D"]
        assert len(rows) == 1, f"query {i}: {r.msgs[:3]}"
        assert int(rows[0][0]) == i
        assert len(rows[0][1]) == size(i, trickle)


def test_batches_through_one_ring_per_worker(start_keel):
    k = start_keel(ON)
    wait_until(lambda: rings(k) == 2, 5, desc="a ring per worker")  # the port listens just before
    assert "without io_uring" not in k.log_text()
    conn = connect(k, autocommit=True)
    for i in range(50):
        assert q1(conn, "select %s::int + 1", (i,)) == i + 1


@pytest.mark.parametrize("sends", [False, True], ids=["reads-only", "sends-and-reads"])
@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_reads_through_the_ring_keep_every_byte_in_order(start_keel, sends, pool_mode):
    """keel.io_uring_reads: the reads of a reactor run go through the ring (prefetched), on its own
    or beside the send batch: a ring per worker, and many clients' pipelined answers, small and
    larger than keel's 32 KiB buffer, each arrive whole and in order."""
    k = start_keel({"keel": {"io_uring_sends": sends, "io_uring_reads": True}, "pool": {"pool_size": 10}},
                   pool_mode=pool_mode)
    wait_until(lambda: rings(k) == 2, 5, desc="a ring per worker")
    clients = [raw_login(k) for _ in range(8)]
    n = 150
    senders = [threading.Thread(target=c.send, args=(pipeline(n),), daemon=True) for c in clients]
    for t in senders:
        t.start()
    for c in clients:
        read_pipeline(c, n)
    for t in senders:
        t.join(10)
    assert q1(connect(k, autocommit=True), "select 7") == 7


def test_off(start_keel):
    k = start_keel({"keel": {"io_uring_sends": False, "io_uring_reads": False}})
    assert q1(connect(k, autocommit=True), "select 1") == 1
    assert rings(k) == 0


@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
@pytest.mark.parametrize("trickle", [True, False], ids=["batched", "mixed"])
def test_slow_reader_gets_every_byte_in_order(start_keel, pool_mode, trickle):
    k = start_keel(ON, pool_mode=pool_mode)
    c = raw_login(k)
    n = 1200 if trickle else 400  # about 7 and 4 MB of answers: more than keel's socket holds (4 MB)
    sender = threading.Thread(target=c.send, args=(pipeline(n, trickle),), daemon=True)
    sender.start()
    if trickle:
        # Not reading: a batched send to the client fills its socket and waits for room in the
        # kernel; keel's next write to it waits behind that send.
        wait_until(lambda: "waits for room behind" in k.log_text(), 15, desc="a write waiting behind a batched send")
    time.sleep(0.5)
    read_pipeline(c, n, trickle)
    sender.join(10)
    # The connection carries on, and so does everyone else's.
    c.send(Q("select 42"))
    assert c.read_until_ready(10).scalar() == "42"
    conn = connect(k, autocommit=True)
    assert q1(conn, "select 7") == 7


def test_client_that_leaves_while_sends_wait(start_keel, pg):
    k = start_keel(ON)
    c = raw_login(k)
    sender = threading.Thread(target=lambda: _send_quietly(c, pipeline(1200, trickle=True)), daemon=True)
    sender.start()
    wait_until(lambda: "waits for room behind" in k.log_text(), 15, desc="a write waiting behind a batched send")
    c.close(abort=True)
    sender.join(10)
    # keel cancels the waiting send, drains the server connection and serves on.
    conns = [connect(k, autocommit=True) for _ in range(3)]
    for i, conn in enumerate(conns):
        assert q1(conn, "select %s::int", (i,)) == i
    wait_until(lambda: pg.scalar("select count(*) from pg_stat_activity where usename = 'app' "
                                 "and state = 'active' and query like 'select %repeat%'") == 0,
               15, desc="the left client's queries over")

def _send_quietly(c, data):
    try:
        c.send(data)
    except OSError:
        pass  # the test closed the socket under it


def test_fatal_reaches_a_slow_client_after_what_waited(start_keel, pg):
    """The server dies while sends to the client wait for room: the client still gets every
    answer the server sent, then a FATAL, then the end (not a cut-off stream). The FATAL is the
    server's (57P01) or, when the backend was terminated while blocked writing to keel (its
    socket full behind the slow client), keel's own 08006: PostgreSQL then sends none, so as not
    to break its protocol stream mid-message. Which one comes depends on timing."""
    k = start_keel(ON)
    c = raw_login(k)
    sender = threading.Thread(target=lambda: _send_quietly(c, pipeline(1200, trickle=True)), daemon=True)
    sender.start()
    wait_until(lambda: "waits for room behind" in k.log_text(), 15, desc="a write waiting behind a batched send")
    pids = pg.sql("select pid from pg_stat_activity where usename = 'app' and query like 'select %repeat%'")
    assert pids, "the client's server connection"
    pg.sql("select pg_terminate_backend(%s)", (pids[0][0],))
    msgs = c.expect_closed(30)
    errors = [p for t, p in msgs if t == "E"]
    assert errors, f"no FATAL before the end; last messages {[t for t, _ in msgs[-5:]]}"
    fields = parse_fields(errors[-1])
    assert fields.get("S") == "FATAL" and fields.get("C") in ("57P01", "08006"), fields
    assert msgs[-1][0] == "E", "the FATAL is the last message"
    answers = [decode_datarow(p) for t, p in msgs if t == "D"]
    assert [int(a[0]) for a in answers] == list(range(len(answers))), "every answer before it, in order"
    assert len(answers) > 0
