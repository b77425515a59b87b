"""Self-test of the harness: PostgreSQL primary + replica and the raw client,
talking to PostgreSQL directly (no keel involved)."""
import struct

import psycopg2
import pytest

import harness
from harness import PgError, RawClient, wait_until


def direct(pg, user, password, dbname="app"):
    return psycopg2.connect(host=pg.host, port=pg.port, user=user, password=password,
                            dbname=dbname, connect_timeout=10)


@pytest.mark.parametrize("user", ["app", "md5user", "plainuser"])
def test_roles_log_in_over_tcp(pg, user):
    with direct(pg, user, harness.PASSWORDS[user]) as conn:
        assert harness.q1(conn, "select current_user") == user
    conn.close()


def test_auth_methods_per_role(pg):
    # md5user's password is stored as md5, the others as SCRAM
    rows = dict(pg.sql("select rolname, left(rolpassword, 13) from pg_authid "
                       "where rolname in ('app', 'md5user', 'plainuser')"))
    assert rows["app"].startswith("SCRAM-SHA-256")
    assert rows["plainuser"].startswith("SCRAM-SHA-256")
    assert rows["md5user"].startswith("md5")
    for user, code in [("app", 10), ("md5user", 5), ("plainuser", 3)]:
        c = RawClient(pg.host, pg.port)
        c.login(user, harness.PASSWORDS[user], "app")
        assert c.auth_codes[0] == code
        assert c.scalar("select current_user") == user
        c.close()


def test_wrong_password_rejected(pg):
    c = RawClient(pg.host, pg.port)
    with pytest.raises(PgError) as ei:
        c.login("app", "wrong", "app")
    assert ei.value.code == "28P01"
    c.expect_closed()


def test_scram_verifier_matches_postgres(pg):
    stored = pg.scalar("select rolpassword from pg_authid where rolname = 'app'")
    iters_salt = stored.split("$")[1]
    iters, salt_b64 = iters_salt.split(":")
    import base64
    assert harness.scram_verifier("apppass", base64.b64decode(salt_b64), int(iters)) == stored


def test_pgbench_tables(pg):
    assert pg.scalar("select count(*) from pgbench_accounts", dbname="app") == 100000
    assert pg.scalar("select tableowner from pg_tables where tablename = 'pgbench_branches'",
                     dbname="app") == "app"


def test_replica_streams(pg, replica):
    assert replica.scalar("select pg_is_in_recovery()") is True
    pg.create_table("harness_repl", "a int")
    pg.sql("insert into harness_repl select generate_series(1, 10)", dbname="app")
    wait_until(lambda: replica.scalar(
        "select count(*) from pg_class where relname = 'harness_repl'", dbname="app") == 1,
        desc="table replicated")
    wait_until(lambda: replica.scalar("select count(*) from harness_repl", dbname="app") == 10,
               desc="rows replicated")
    assert pg.scalar("select count(*) from pg_stat_replication") == 1


def test_raw_client_protocol_against_postgres(pg):
    c = RawClient(pg.host, pg.port)
    assert c.ssl_request() == b"N"
    c.login("app", "apppass", "app", params={"application_name": "harness"})
    assert c.backend_key is not None
    assert c.params["application_name"] == "harness"
    r = c.query("select 1; select 2")
    assert [s["rows"] for s in r.sets] == [[["1"]], [["2"]]]
    assert c.query("").types == ["I", "Z"]
    # pipeline with an error in the middle
    c.send(harness.P("select $1::int + 1", oids=[23]) + harness.B(["41"]) + harness.E()
           + harness.P("select 1 / (0 * random())::int") + harness.B() + harness.E()
           + harness.P("select 3") + harness.B() + harness.E() + harness.S())
    r = c.read_until_ready()
    assert r.types == ["1", "2", "D", "C", "1", "2", "E", "Z"]
    assert r.errors[0]["C"] == "22012"
    # FunctionCall int4pl(1, 2)
    c.send(harness.function_call(177, [struct.pack("!i", 1), struct.pack("!i", 2)]))
    r = c.read_until_ready()
    t, p = r.msgs[0]
    assert t == "V" and struct.unpack("!ii", p) == (4, 3)
    # CopyFail
    c.send(harness.Q("copy pgbench_history from stdin"))
    t, _ = c.read_msg()
    assert t == "G"
    c.send(harness.copy_fail())
    r = c.read_until_ready()
    assert r.errors[0]["C"] == "57014"
    assert c.scalar("select 42") == "42"
    c.close()


def test_negotiate_protocol_version_against_postgres(pg):
    c = RawClient(pg.host, pg.port)
    c.login("app", "apppass", "app", params={"_pq_.foo": "bar"}, version=(3 << 16) | 1)
    # PostgreSQL sends the full version number (3.0 = 196608) in the "newest
    # minor" field; the docs say just the minor.  Either way minor is 0.
    newest, opts = c.negotiate
    assert newest & 0xFFFF == 0 and newest >> 16 in (0, 3)
    assert opts == ["_pq_.foo"]
    assert c.scalar("select 1") == "1"


def test_cancel_against_postgres(pg):
    c = RawClient(pg.host, pg.port)
    c.login("app", "apppass", "app")
    c.send(harness.Q("select pg_sleep(30)"))
    wait_until(lambda: pg.scalar("select count(*) from pg_stat_activity "
                                 "where query = 'select pg_sleep(30)' and state = 'active'"),
               desc="sleep running")
    harness.send_cancel(pg.host, pg.port, c.backend_key)
    r = c.read_until_ready(timeout=5)
    assert r.errors[0]["C"] == "57014"
