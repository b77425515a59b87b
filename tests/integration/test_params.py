"""Session parameters from the startup packet travel with the client across server
connections (transaction mode), and never leak to another client."""
import pytest

from conftest import MODES
from harness import B, E, P, Q, S, DirectTarget, connect, parse_fields, q1, raw, raw_login


@pytest.fixture(params=MODES)
def pool_mode(request):
    return request.param


def show(c, name):
    return c.scalar(f"show {name}")


def test_startup_parameters_follow_the_client(start_keel, pool_mode):
    # one worker, one server connection: every client shares it in transaction mode
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1}}, pool_mode=pool_mode)
    a = raw_login(k, params={"application_name": "client-a", "statement_timeout": "4321",
                             "options": "-c lock_timeout=1234 -c search_path=public,\\ pg_catalog"})
    assert a.params.get("application_name") == "client-a"
    assert show(a, "application_name") == "client-a"
    assert show(a, "statement_timeout") == "4321ms"
    assert show(a, "lock_timeout") == "1234ms"
    assert show(a, "search_path") == "public, pg_catalog"
    if pool_mode == "session":
        a.close()
    b = raw_login(k, params={"TimeZone": "Asia/Tokyo"})
    assert show(b, "application_name") == ""
    assert show(b, "statement_timeout") == "0"
    assert show(b, "lock_timeout") == "0"
    assert show(b, "TimeZone") == "Asia/Tokyo"
    assert show(b, "search_path") == '"$user", public'
    if pool_mode == "transaction":
        # back to a on the same server connection: its values come back
        assert show(a, "application_name") == "client-a"
        assert show(a, "TimeZone") != "Asia/Tokyo"
        assert show(a, "statement_timeout") == "4321ms"
        assert show(b, "TimeZone") == "Asia/Tokyo"


def test_login_reports_the_clients_own_values_in_place_of_the_servers(start_keel, pool_mode):
    # The pool encodes the server's ParameterStatus messages once; a login sends them with the
    # client's own values put in (once each), and the next client gets the server's again.
    k = start_keel({"keel": {"workers": 1}}, pool_mode=pool_mode)

    def reported(result):
        return [tuple(x.decode() for x in p.split(b"\0")[:2]) for t, p in result.msgs if t == "S"]

    plain = reported(raw(k).login())
    names = [n for n, _ in plain]
    assert len(names) == len(set(names)) and "TimeZone" in names and "DateStyle" in names, plain
    own = {"application_name": "mine", "TimeZone": "Asia/Tokyo", "DateStyle": "German, DMY",
           "IntervalStyle": "iso_8601"}
    c = raw(k)
    mine = reported(c.login(params=own))
    assert sorted(n for n, _ in mine) == sorted(set(names) | {"application_name"}), mine
    for n, v in mine:
        assert v == own.get(n, dict(plain).get(n)), (n, v)
    assert show(c, "TimeZone") == "Asia/Tokyo"
    assert reported(raw(k).login()) == plain


def test_statement_timeout_from_startup_is_enforced(start_keel, pool_mode):
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1}}, pool_mode=pool_mode)
    a = raw_login(k, params={"statement_timeout": "200"})
    r = a.query("select pg_sleep(3)")
    assert [e["C"] for e in r.errors] == ["57014"]
    assert a.scalar("select 1") == "1"


def test_reportable_set_is_kept_across_transactions(start_keel):
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1}}, pool_mode="transaction")
    a = raw_login(k)
    b = raw_login(k)
    a.query_ok("set application_name = 'renamed'")
    assert show(b, "application_name") == ""
    assert show(a, "application_name") == "renamed"
    assert show(b, "application_name") == ""


def test_psycopg2_options_parameter(start_keel, pool_mode):
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1}}, pool_mode=pool_mode)
    conn = connect(k, autocommit=True, options="-c statement_timeout=2500", application_name="pg2")
    assert q1(conn, "show statement_timeout") == "2500ms"
    assert q1(conn, "show application_name") == "pg2"


def test_invalid_startup_parameter_is_refused(start_keel, pool_mode):
    # PostgreSQL refuses it at login; keel applies parameters at the first statement and ends
    # the client there with the server's own SQLSTATE.
    k = start_keel({"keel": {"workers": 1}}, pool_mode=pool_mode)
    c = raw(k)
    c.login(params={"TimeZone": "Mars/Olympus_Mons"})
    c.send(Q("select 1"))
    errs = [parse_fields(p) for t, p in c.expect_closed(timeout=5) if t == "E"]
    assert [(e["S"], e["C"]) for e in errs] == [("FATAL", "22023")]
    assert raw_login(k).scalar("select 1") == "1"


CARRIED_SCRIPT = [
    "show statement_timeout",
    "set statement_timeout = '1234ms'",
    "show statement_timeout",
    "set statement_timeout = 'abc'",          # refused: 22023, the old value stays
    "show statement_timeout",
    "set extra_float_digits = 2",
    "show extra_float_digits",
    "reset statement_timeout",                 # back to the startup value
    "show statement_timeout",
    "set lock_timeout to default",
    "show lock_timeout",
]


def run_carried(c, other=None):
    out = []
    for sql in CARRIED_SCRIPT:
        r = c.query(sql)
        out.append(([e["C"] for e in r.errors], r.rows))
        if other is not None:  # another client takes the only server connection in between
            assert other.scalar("show statement_timeout") == "0"
            assert other.scalar("show extra_float_digits") == "1"
    return out


def test_set_of_carried_parameters_follows_the_client(start_keel, pg):
    params = {"statement_timeout": "5s", "options": "-c lock_timeout=777"}
    expected = run_carried(raw_login(DirectTarget(pg), params=params))
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1, "query_wait_timeout": 2}},
                   pool_mode="transaction")
    a, b = raw_login(k, params=params), raw_login(k)
    assert run_carried(a, other=b) == expected   # b never waits: a is not pinned
    admin = raw_login(k, database="keel")
    from test_admin import show as admin_show
    cols, rows = admin_show(admin, "STATS")
    assert sum(int(r["total_pins"]) for r in rows if r["database"] == "app") == 0


def test_set_in_extended_protocol_is_carried(start_keel):
    # pgjdbc sends SET extra_float_digits = 3 this way right after login
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1, "query_wait_timeout": 2}},
                   pool_mode="transaction")
    a, b = raw_login(k), raw_login(k)
    a.send(P("SET extra_float_digits = 3") + B() + E() + S())
    r = a.read_until_ready()
    assert not r.errors
    assert b.scalar("show extra_float_digits") == "1"
    assert a.scalar("show extra_float_digits") == "3"


def test_set_inside_a_transaction_pins(start_keel):
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 1, "query_wait_timeout": 1}},
                   pool_mode="transaction")
    a, b = raw_login(k), raw_login(k)
    a.query_ok("begin")
    a.query_ok("set statement_timeout = 4000")
    a.query_ok("rollback")   # PostgreSQL undoes the SET: keel must not carry it
    assert a.scalar("show statement_timeout") == "0"
    assert [e["C"] for e in b.query("select 1").errors] == ["53300"]  # a is pinned


RESET_SCRIPT = [
    "set application_name = 'changed'",
    "reset application_name",
    "show application_name",
    "set statement_timeout = 1000",
    "reset statement_timeout",
    "show statement_timeout",
    "set TimeZone = 'UTC'",
    "set TimeZone to default",
    "show TimeZone",
    "begin",
    "set application_name = 'in-tx'",
    "reset application_name",
    "show application_name",
    "rollback",
    "reset lock_timeout",            # no startup value: the server's default
    "show lock_timeout",
]


def run_reset(c):
    out = []
    for sql in RESET_SCRIPT:
        r = c.query(sql)
        out.append(([e["C"] for e in r.errors], r.rows, [s["tag"] for s in r.sets], r.params.get("application_name")))
    return out


def test_reset_returns_to_the_startup_value(start_keel, pg, pool_mode):
    params = {"application_name": "app-startup", "statement_timeout": "5s", "TimeZone": "Asia/Tokyo"}
    expected = run_reset(raw_login(DirectTarget(pg), params=params))
    assert expected[2][1] == [["app-startup"]] and expected[1][2] == ["RESET"]
    k = start_keel({"keel": {"workers": 1}, "pool": {"pool_size": 2}}, pool_mode=pool_mode)
    assert run_reset(raw_login(k, params=params)) == expected
