"""Malformed and hostile input must be rejected without harming keel or
other clients."""
import random
import socket
import struct

import pytest

from conftest import MODES
from harness import (PROTO_3_0, Closed, PgError, connect, cstr, msg, parse_fields, q1, raw, short,
                     raw_login, startup_packet)

MAX_MESSAGE = 1024 * 1024


@pytest.fixture(params=MODES)
def pool_mode(request):
    return request.param


@pytest.fixture
def keel(start_keel, pool_mode):
    return start_keel({"keel": {"max_message_size": MAX_MESSAGE}}, pool_mode=pool_mode)


@pytest.fixture
def bystander(keel):
    """A client connected before the bad input; must keep working after."""
    conn = connect(keel, autocommit=True)
    assert q1(conn, "select 1") == 1
    yield conn
    assert keel.alive(), "keel died"
    assert q1(conn, "select 'still here'") == "still here"
    assert q1(connect(keel, autocommit=True), "select 2") == 2


def errors_of(msgs):
    return [parse_fields(p) for t, p in msgs if t == "E"]


def expect_fatal(c, code, head: bytes, rest: bytes = b"", first_wait=2.0):
    """Send `head`; keel may reject right away (preferred) or only after
    reading `rest`, which is sent if nothing arrived within `first_wait` s.
    Then the connection must be closed after a FATAL with SQLSTATE `code`."""
    c.send(head)
    msgs = []
    try:
        msgs.append(c.read_msg(timeout=first_wait))
    except (socket.timeout, TimeoutError):
        try:
            c.send(rest)
        except OSError:
            pass
    except Closed:
        raise AssertionError("connection closed without an ErrorResponse")
    msgs += c.expect_closed(timeout=5)
    errs = errors_of(msgs)
    assert errs, f"no ErrorResponse before close: {short(msgs)}"
    assert errs[0]["S"] == "FATAL"
    assert errs[0]["C"] == code


def expect_closed_quietly(c, timeout=5):
    """Connection closed; any ErrorResponse sent must be FATAL."""
    for e in errors_of(c.expect_closed(timeout)):
        assert e["S"] == "FATAL"


# --------------------------------------------------------------------------
# startup phase (mode-independent, run once)
# --------------------------------------------------------------------------

startup_only = pytest.mark.parametrize("pool_mode", ["transaction"])


@startup_only
def test_startup_packet_too_long(keel, bystander):
    c = raw(keel)
    head = struct.pack("!ii", 20000, PROTO_3_0)
    expect_fatal(c, "08P01", head, b"\0" * (20000 - 8))


@startup_only
@pytest.mark.parametrize("length", [0, 4, 7])
def test_startup_packet_too_short(keel, bystander, length):
    c = raw(keel)
    c.send(struct.pack("!i", length) + b"\0" * max(0, length - 4))
    expect_closed_quietly(c)


@startup_only
def test_startup_without_user(keel, bystander):
    c = raw(keel)
    with pytest.raises(PgError) as ei:
        c.login(user=None, database="app")
    assert ei.value.code in ("28000", "08P01")
    c.expect_closed()


@startup_only
def test_startup_missing_terminator(keel, bystander):
    c = raw(keel)
    body = struct.pack("!i", PROTO_3_0) + cstr("user") + cstr("app") + cstr("database") + b"app"
    expect_fatal(c, "08P01", struct.pack("!i", len(body) + 4) + body)


@startup_only
def test_startup_key_without_value(keel, bystander):
    c = raw(keel)
    body = struct.pack("!i", PROTO_3_0) + cstr("user") + cstr("app") + cstr("database") + b"\0"
    expect_fatal(c, "08P01", struct.pack("!i", len(body) + 4) + body)


@startup_only
@pytest.mark.parametrize("garbage", [
    b"\xff" * 64,
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    struct.pack("!ii", 8, 0),                               # protocol 0.0
    struct.pack("!ii", 8, 12345678),                        # unknown request code
    random.Random(1).randbytes(4096),
    random.Random(2).randbytes(100),
], ids=["ff", "http", "proto0", "unknown-code", "random4k", "random100"])
def test_startup_garbage(keel, bystander, garbage):
    c = raw(keel)
    try:
        c.send(garbage)
    except OSError:
        return
    expect_closed_quietly(c)


@startup_only
def test_ssl_request_then_garbage(keel, bystander):
    c = raw(keel)
    assert c.ssl_request() == b"N"
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64)  # TLS ClientHello
    expect_closed_quietly(c)


@startup_only
def test_connect_and_drop_storm(keel, bystander):
    for i in range(200):
        s = socket.create_connection((keel.host, keel.port), timeout=5)
        if i % 3 == 1:
            s.sendall(struct.pack("!i", 100))          # half a startup packet
        elif i % 3 == 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert raw_login(keel).scalar("select 1") == "1"


@pytest.mark.parametrize("defer", [0, 1])
def test_login_timeout_closes_slow_logins_only(start_keel, defer):
    """client_login_timeout: a client that stops during start-up or authentication is closed
    (by the worker's sweep) once it has passed; a logged-in client idling as long is not. With
    tcp_defer_accept, the kernel hands a silent client over after that many seconds, and the
    timeout then applies as well."""
    keel = start_keel({"keel": {"client_login_timeout": 1, "tcp_defer_accept": defer}})
    bystander = connect(keel, autocommit=True)
    idle = raw_login(keel)                      # logged in, then silent past the timeout
    silent = raw(keel)                          # connects, sends nothing
    after_ssl = raw(keel)
    assert after_ssl.ssl_request() == b"N"      # then nothing
    mid_auth = raw(keel)
    mid_auth.send_startup()                     # then no SASL response
    t, payload = mid_auth.read_msg(timeout=5)
    assert t == "R" and struct.unpack("!i", payload[:4])[0] == 10  # AuthenticationSASL
    for c in (silent, after_ssl, mid_auth):
        expect_closed_quietly(c, timeout=5)
    assert "client_login_timeout" in keel.log_text()
    assert idle.scalar("select 'idle but logged in'") == "idle but logged in"
    assert q1(bystander, "select 1") == 1
    assert keel.alive()


@startup_only
def test_cancel_request_bad_length(keel, bystander):
    c = raw(keel)
    c.send(struct.pack("!iii", 12, 80877102, 1234))
    expect_closed_quietly(c)


# --------------------------------------------------------------------------
# after login (both pool modes)
# --------------------------------------------------------------------------

def test_message_over_max_message_size(keel, bystander):
    c = raw_login(keel)
    size = 2 * MAX_MESSAGE
    body = b"select '" + b"x" * (size - 12) + b"'\0"
    head = b"Q" + struct.pack("!i", len(body) + 4)
    expect_fatal(c, "08P01", head + body[:65536], body[65536:])


def test_message_under_max_message_size_works(keel, bystander):
    c = raw_login(keel)
    n = MAX_MESSAGE - 4096
    assert c.scalar(f"select length('{'y' * n}')") == str(n)


def test_large_server_message_not_limited(keel, bystander):
    # max_message_size limits client messages; results may be larger
    c = raw_login(keel)
    assert c.scalar(f"select length(repeat('z', {2 * MAX_MESSAGE}))") == str(2 * MAX_MESSAGE)
    assert len(c.scalar(f"select repeat('z', {2 * MAX_MESSAGE})")) == 2 * MAX_MESSAGE


def test_unknown_message_type(keel, bystander):
    c = raw_login(keel)
    expect_fatal(c, "08P01", msg("z", b"hello"))


def test_password_message_when_ready(keel, bystander):
    c = raw_login(keel)
    expect_fatal(c, "08P01", msg("p", cstr("apppass")))


def test_password_message_in_transaction(keel, bystander):
    c = raw_login(keel)
    c.query_ok("begin")
    expect_fatal(c, "08P01", msg("p", cstr("apppass")))


@pytest.mark.parametrize("length", [-1, 0, 3])
def test_bad_message_length(keel, bystander, length):
    # PostgreSQL closes silently here; keel may send FATAL 08P01 first
    c = raw_login(keel)
    c.send(b"Q" + struct.pack("!i", length))
    for e in errors_of(c.expect_closed()):
        assert (e["S"], e["C"]) == ("FATAL", "08P01")


def test_truncated_message_then_disconnect(keel, bystander):
    c = raw_login(keel)
    c.send(b"Q" + struct.pack("!i", 100) + b"select")
    c.close()
    c2 = raw_login(keel)
    assert c2.scalar("select 1") == "1"


def test_garbage_after_login(keel, bystander):
    c = raw_login(keel)
    try:
        # unknown type byte, sane length, random body
        c.send(b"\xfe" + struct.pack("!i", 1000) + random.Random(3).randbytes(2048))
    except OSError:
        return
    expect_closed_quietly(c)


def test_startup_packet_after_login(keel, bystander):
    c = raw_login(keel)
    try:
        c.send(startup_packet({"user": "app", "database": "app"}))
    except OSError:
        return
    expect_closed_quietly(c)


def test_terminate_message(keel, bystander):
    c = raw_login(keel)
    c.send(msg("X"))
    assert c.expect_closed() == []
