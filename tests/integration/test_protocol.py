"""Wire protocol through keel: startup, simple/extended query, COPY,
FunctionCall, notices, ParameterStatus, notifications."""
import io
import select
import struct
import time

import pytest

import harness
from conftest import MODES
from harness import (B, D, E, P, Q, S, connect, copy_data, copy_done, copy_fail,
                     function_call, q1, raw, raw_login)

PROTO_3_1 = (3 << 16) | 1


@pytest.fixture(params=MODES)
def keel(request, start_keel):
    return start_keel(pool_mode=request.param)


# --------------------------------------------------------------------------
# startup
# --------------------------------------------------------------------------

def test_startup_parameters(keel):
    c = raw(keel)
    c.login(params={"application_name": "keel-proto-test", "client_encoding": "UTF8"})
    assert c.status == "I"
    assert c.backend_key is not None
    for p in ("server_version", "client_encoding", "standard_conforming_strings"):
        assert p in c.params, f"missing ParameterStatus {p}: {c.params}"
    assert c.params["client_encoding"] == "UTF8"
    assert c.scalar("select current_user") == "app"
    assert c.scalar("select current_database()") == "app"


def test_startup_parameters_reach_the_server(keel):
    c = raw(keel)
    c.login(params={"application_name": "keel-proto-test"})
    assert c.scalar("show application_name") == "keel-proto-test"


def test_psycopg2_basic(keel):
    conn = connect(keel)
    assert conn.server_version >= 150000
    assert q1(conn, "select 40 + 2") == 42
    conn.commit()


@pytest.mark.parametrize("request_kind", ["ssl", "gssenc", "ssl+gssenc"])
def test_encryption_requests_declined(keel, request_kind):
    c = raw(keel)
    for kind in request_kind.split("+"):
        answer = c.ssl_request() if kind == "ssl" else c.gssenc_request()
        assert answer == b"N"
    c.login()
    assert c.scalar("select 1") == "1"


@pytest.mark.parametrize("params, expected_opts", [
    ({"_pq_.foo": "bar"}, ["_pq_.foo"]),
    ({"_pq_.foo": "1", "_pq_.bar": "2"}, ["_pq_.foo", "_pq_.bar"]),
    ({}, []),
])
def test_negotiate_protocol_version(keel, params, expected_opts):
    c = raw(keel)
    c.login(params=params, version=PROTO_3_1)
    assert c.negotiate is not None, "no NegotiateProtocolVersion received"
    newest, opts = c.negotiate
    # newest minor must be 0 (PostgreSQL itself sends 196608 = 3.0; accept both)
    assert newest & 0xFFFF == 0 and newest >> 16 in (0, 3), newest
    assert sorted(opts) == sorted(expected_opts)
    assert c.scalar("select 1") == "1"


@pytest.mark.parametrize("major", [4, 2])
def test_unsupported_protocol_major(keel, major):
    c = raw(keel)
    c.send_startup(version=major << 16)
    data = c.read_all(timeout=5)
    assert data[:1] == b"E", data
    (ln,) = struct.unpack_from("!i", data, 1)
    if ln == len(data) - 1:              # v3 ErrorResponse
        fields = harness.parse_fields(data[5:])
        assert fields["C"] in ("0A000", "08P01")
        assert fields["S"] == "FATAL"
    else:                                # v2-style error (what PostgreSQL sends to 2.0)
        assert major == 2 and b"FATAL" in data, data


# --------------------------------------------------------------------------
# simple query
# --------------------------------------------------------------------------

def test_multi_statement_query(keel):
    c = raw_login(keel)
    r = c.query("select 1 as a; select 2 as b, 3 as c")
    assert [s["rows"] for s in r.sets] == [[["1"]], [["2", "3"]]]
    assert [s["columns"] for s in r.sets] == [["a"], ["b", "c"]]
    assert [s["tag"] for s in r.sets] == ["SELECT 1", "SELECT 1"]
    assert r.status == "I"
    assert r.types.count("Z") == 1


def test_multi_statement_error_stops(keel):
    c = raw_login(keel)
    r = c.query("select 1; select 1/0; select 3")
    assert r.rows == [["1"]]
    assert [e["C"] for e in r.errors] == ["22012"]
    assert r.status == "I"
    assert c.scalar("select 4") == "4"


def test_empty_query(keel):
    c = raw_login(keel)
    r = c.query("")
    assert r.types == ["I", "Z"]
    assert c.scalar("select 1") == "1"


def test_error_then_usable(keel):
    c = raw_login(keel)
    assert c.query("select * from no_such_table_xyz").errors[0]["C"] == "42P01"
    assert c.query("selec 1").errors[0]["C"] == "42601"
    r = c.query("begin; select 1/0")
    assert r.errors[0]["C"] == "22012" and r.status == "E"
    assert c.query("select 1").errors[0]["C"] == "25P02"
    assert c.query("rollback").status == "I"
    assert c.scalar("select 5") == "5"


def test_large_result_row(keel):
    c = raw_login(keel)
    assert c.query_ok("select repeat('x', 3000000)").scalar() == "x" * 3000000


def test_many_rows(keel):
    conn = connect(keel)
    with conn.cursor() as cur:
        cur.execute("select i, md5(i::text) from generate_series(1, 100000) i")
        rows = cur.fetchall()
    assert len(rows) == 100000 and rows[-1][0] == 100000
    conn.commit()


# --------------------------------------------------------------------------
# extended query
# --------------------------------------------------------------------------

def test_extended_pipeline_error_skips_to_sync(keel):
    c = raw_login(keel)
    c.send(P("select $1::int + 1", oids=[23]) + B(["41"]) + E()
           + P("select 1 / (0 * random())::int") + B() + E()
           + P("select 3") + B() + E() + S())
    r = c.read_until_ready()
    assert r.types == ["1", "2", "D", "C", "1", "2", "E", "Z"]
    assert r.rows == [["42"]]
    assert r.errors[0]["C"] == "22012"
    assert r.status == "I"
    # next batch works
    c.send(P("select 'after'") + B() + E() + S())
    r = c.read_until_ready()
    assert r.types == ["1", "2", "D", "C", "Z"] and r.rows == [["after"]]


def test_extended_several_syncs_pipelined(keel):
    c = raw_login(keel)
    batch = b""
    for i in range(5):
        batch += P("select $1::int * 2", oids=[23]) + B([str(i)]) + E() + S()
    c.send(batch)
    for i in range(5):
        r = c.read_until_ready()
        assert r.rows == [[str(i * 2)]]
        assert r.status == "I"


def test_extended_in_explicit_transaction(keel):
    c = raw_login(keel)
    c.send(P("begin") + B() + E() + S())
    assert c.read_until_ready().status == "T"
    c.send(P("select pg_backend_pid()") + B() + E() + S())
    pid1 = c.read_until_ready().scalar()
    c.send(P("select pg_backend_pid()") + B() + E() + P("commit") + B() + E() + S())
    r = c.read_until_ready()
    assert r.rows == [[pid1]] and r.status == "I"


def test_describe_statement_and_portal(keel):
    c = raw_login(keel)
    c.send(P("select $1::int as a, $2::text as b") + D("S") + S())
    r = c.read_until_ready()
    assert r.types == ["1", "t", "T", "Z"]
    c.send(P("select $1::int as a, $2::text as b") + B(["7", "seven"]) + D("P") + E() + S())
    r = c.read_until_ready()
    assert r.types == ["1", "2", "T", "D", "C", "Z"]
    assert r.rows == [["7", "seven"]]
    assert r.sets[0]["columns"] == ["a", "b"]


def test_extended_binary_params_and_results(keel):
    c = raw_login(keel)
    c.send(P("select $1::int4 + 1", oids=[23])
           + B([struct.pack("!i", 99)], param_formats=[1], result_formats=[1]) + E() + S())
    r = c.read_until_ready()
    data_rows = [p for t, p in r.msgs if t == "D"]
    assert len(data_rows) == 1
    assert harness.decode_datarow(data_rows[0]) == [struct.pack("!i", 100)]


def test_execute_with_row_limit(keel):
    c = raw_login(keel)
    c.send(harness.Q("begin"))
    c.read_until_ready()
    c.send(P("select generate_series(1, 5)") + B() + E(max_rows=2) + E(max_rows=2)
           + E(max_rows=2) + S())
    r = c.read_until_ready()
    assert r.types == ["1", "2", "D", "D", "s", "D", "D", "s", "D", "C", "Z"]
    c.query_ok("commit")


def test_named_statement_in_session_mode(start_keel):
    k = start_keel(pool_mode="session")
    c = raw_login(k)
    c.send(P("select $1::text || '!'", name="stmt1") + S())
    assert c.read_until_ready().types == ["1", "Z"]
    for word in ("a", "b"):
        c.send(B([word], stmt="stmt1") + E() + S())
        assert c.read_until_ready().rows == [[word + "!"]]
    c.send(harness.C("S", "stmt1") + S())
    assert c.read_until_ready().types == ["3", "Z"]


# --------------------------------------------------------------------------
# COPY
# --------------------------------------------------------------------------

N_COPY_ROWS = 200_000
ROW_PAD = "x" * 95


def test_copy_from_stdin_large(keel):
    data = "".join(f"{i}\t{ROW_PAD}\n" for i in range(N_COPY_ROWS)).encode()
    assert len(data) > 20_000_000
    conn = connect(keel)
    with conn.cursor() as cur:
        cur.execute("create temp table copy_in_t (a int, b text)")
        cur.copy_expert("copy copy_in_t from stdin", io.BytesIO(data))
        cur.execute("select count(*), sum(a), sum(length(b)) from copy_in_t")
        assert cur.fetchone() == (N_COPY_ROWS, N_COPY_ROWS * (N_COPY_ROWS - 1) // 2,
                                  N_COPY_ROWS * 95)
    conn.rollback()
    assert q1(conn, "select 1") == 1


def test_copy_to_stdout_large(keel):
    conn = connect(keel)
    buf = io.BytesIO()
    with conn.cursor() as cur:
        cur.copy_expert(f"copy (select i, '{ROW_PAD}' from generate_series(1, {N_COPY_ROWS}) i)"
                        " to stdout", buf)
    conn.commit()
    lines = buf.getvalue().split(b"\n")
    assert lines[-1] == b""
    assert len(lines) - 1 == N_COPY_ROWS
    assert lines[0] == f"1\t{ROW_PAD}".encode()
    assert lines[-2] == f"{N_COPY_ROWS}\t{ROW_PAD}".encode()
    assert q1(conn, "select 1") == 1


def test_copy_binary_roundtrip(keel):
    conn = connect(keel)
    out = io.BytesIO()
    with conn.cursor() as cur:
        cur.copy_expert("copy (select i::int4, repeat('y', 50) from generate_series(1, 50000) i)"
                        " to stdout (format binary)", out)
        blob = out.getvalue()
        assert blob.startswith(b"PGCOPY\n\xff\r\n\x00")
        cur.execute("create temp table copy_bin_t (a int4, b text)")
        cur.copy_expert("copy copy_bin_t from stdin (format binary)", io.BytesIO(blob))
        cur.execute("select count(*), sum(a), min(b) = max(b) from copy_bin_t")
        assert cur.fetchone() == (50000, 50000 * 50001 // 2, True)
    conn.rollback()


def test_copy_raw_in_and_fail(keel, pg):
    pg.create_table("copy_raw_t", "a int, b text")
    c = raw_login(keel)
    c.send(Q("copy copy_raw_t from stdin"))
    t, _ = c.read_msg()
    assert t == "G"
    c.send(copy_data(b"1\tone\n") + copy_data(b"2\ttwo\n") + copy_done())
    r = c.read_until_ready()
    assert r.sets[0]["tag"] == "COPY 2" and not r.errors
    # CopyFail: server answers 57014, connection stays usable
    c.send(Q("copy copy_raw_t from stdin"))
    t, _ = c.read_msg()
    assert t == "G"
    c.send(copy_data(b"3\tthree\n") + copy_fail("client changed its mind"))
    r = c.read_until_ready()
    assert [e["C"] for e in r.errors] == ["57014"]
    assert r.status == "I"
    assert c.scalar("select count(*) from copy_raw_t") == "2"


def test_copy_data_pipelined_behind_the_statement(keel, pg):
    # asyncpg sends COPY data without waiting for CopyInResponse: none of it may be lost.
    pg.create_table("copy_pipe_t", "a int, b text")
    c = raw_login(keel)
    for n in range(20):
        c.send(Q("copy copy_pipe_t from stdin") + copy_data(b"1\tone\n") + copy_data(b"2\ttwo\n") + copy_done())
        r = c.read_until_ready()
        assert not r.errors and r.sets[0]["tag"] == "COPY 2", n
        # a bad row fails the COPY; the connection stays usable
        c.send(Q("copy copy_pipe_t from stdin") + copy_data(b"x\tbad\n") + copy_done())
        r = c.read_until_ready()
        assert [e["C"] for e in r.errors] == ["22P02"] and r.status == "I"
    assert c.scalar("select count(*) from copy_pipe_t") == "40"


def test_copy_out_raw(keel):
    c = raw_login(keel)
    r = c.query("copy (select generate_series(1, 3)) to stdout")
    assert r.types == ["H", "d", "d", "d", "c", "C", "Z"]
    assert [p for t, p in r.msgs if t == "d"] == [b"1\n", b"2\n", b"3\n"]


# --------------------------------------------------------------------------
# FunctionCall, notices, ParameterStatus, notifications
# --------------------------------------------------------------------------

def test_function_call(keel):
    c = raw_login(keel)
    c.send(function_call(177, [struct.pack("!i", 1), struct.pack("!i", 2)]))  # int4pl
    r = c.read_until_ready()
    assert r.types == ["V", "Z"]
    assert struct.unpack("!ii", r.msgs[0][1]) == (4, 3)
    assert c.scalar("select 1") == "1"


def test_notice_forwarded(keel):
    c = raw_login(keel)
    r = c.query("do $$ begin raise notice 'keel notice %', 42; end $$")
    assert not r.errors
    assert len(r.notices) == 1
    n = r.notices[0]
    assert n["C"] == "00000" and n.get("V", n["S"]) == "NOTICE"
    assert n["M"] == "keel notice 42"
    # psycopg2 sees it too
    conn = connect(keel, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("do $$ begin raise notice 'hello from psycopg2'; end $$")
    assert any("hello from psycopg2" in x for x in conn.notices)


def test_parameter_status_on_set(keel):
    c = raw_login(keel)
    r = c.query("set application_name = 'changed_by_set'")
    assert r.params.get("application_name") == "changed_by_set"
    assert c.scalar("show application_name") == "changed_by_set"


def test_listen_notify_session_mode(start_keel):
    k = start_keel(pool_mode="session")
    listener = raw_login(k)
    listener.query_ok("listen keel_chan")
    sender = connect(k, autocommit=True)
    with sender.cursor() as cur:
        cur.execute("notify keel_chan, 'payload-1'")
    t, _ = listener.read_msg(timeout=5)
    assert t == "A"
    assert listener.notifications[-1][1:] == ("keel_chan", "payload-1")
    # psycopg2 listener as well
    l2 = connect(k, autocommit=True)
    with l2.cursor() as cur:
        cur.execute("listen keel_chan2")
    with sender.cursor() as cur:
        cur.execute("notify keel_chan2, 'payload-2'")
    deadline = time.monotonic() + 5
    while not l2.notifies and time.monotonic() < deadline:
        select.select([l2], [], [], 0.2)
        l2.poll()
    assert [n.payload for n in l2.notifies] == ["payload-2"]
