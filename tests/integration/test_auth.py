"""Client authentication to keel and keel's authentication to servers."""
import psycopg2
import pytest

from conftest import MODES
from harness import PASSWORDS, PgError, connect, q1, raw, raw_login, scram_verifier


@pytest.mark.parametrize("pool_mode", MODES)
def test_scram_right_password(start_keel, pool_mode):
    k = start_keel(pool_mode=pool_mode)
    c = raw(k)
    c.login("app", "apppass", "app")     # verifies keel's SCRAM server signature
    assert c.auth_codes == [10, 11, 12, 0]
    assert c.scalar("select current_user") == "app"
    conn = connect(k)
    assert q1(conn, "select session_user") == "app"


@pytest.mark.parametrize("pool_mode", MODES)
def test_wrong_password(start_keel, pool_mode):
    k = start_keel(pool_mode=pool_mode)
    c = raw(k)
    with pytest.raises(PgError) as ei:
        c.login("app", "wrong-password", "app")
    assert ei.value.code == "28P01"
    assert ei.value.severity == "FATAL"
    c.expect_closed()
    with pytest.raises(psycopg2.OperationalError):
        connect(k, password="wrong-password")
    # keel still serves correct logins
    assert raw_login(k).scalar("select 1") == "1"


def test_unknown_user_same_as_wrong_password(start_keel):
    k = start_keel()
    c = raw(k)
    with pytest.raises(PgError) as ei:
        c.login("nosuchuser", "whatever", "app")
    assert ei.value.code == "28P01"
    assert ei.value.severity == "FATAL"
    c.expect_closed()


def test_unknown_database(start_keel):
    k = start_keel()
    c = raw(k)
    with pytest.raises(PgError) as ei:
        c.login("app", "apppass", "nosuchdb")
    assert ei.value.code == "3D000"
    assert ei.value.severity == "FATAL"
    c.expect_closed()


@pytest.mark.parametrize("pool_mode", MODES)
@pytest.mark.parametrize("user", ["app", "md5user", "plainuser"])
def test_server_login_methods(start_keel, pool_mode, user):
    """keel logs in to PostgreSQL with SCRAM (app), md5 (md5user) and
    cleartext password (plainuser), as pg_hba.conf demands."""
    k = start_keel(pool_mode=pool_mode)
    conn = connect(k, user=user, password=PASSWORDS[user], autocommit=True)
    assert q1(conn, "select current_user") == user
    assert q1(conn, "select current_database()") == "app"
    conn2 = connect(k, user=user, password=PASSWORDS[user], autocommit=True)
    assert q1(conn2, "select 2") == 2


def test_database_server_user(start_keel, pg):
    """[databases.X] server_user/server_password: keel logs in to the server
    as another user than the client's."""
    k = start_keel({"databases": {"as_md5": {"host": "127.0.0.1", "port": pg.port,
                                             "dbname": "app", "server_user": "md5user",
                                             "server_password": "md5pass"}}})
    conn = connect(k, dbname="as_md5", autocommit=True)
    assert q1(conn, "select current_user") == "md5user"
    assert q1(connect(k, autocommit=True), "select current_user") == "app"


def test_scram_verifier_config(start_keel):
    k = start_keel({"users": {"app": {
        "password": None,
        "scram_verifier": scram_verifier("apppass"),
        "server_password": "apppass",
    }}})
    c = raw(k)
    c.login("app", "apppass", "app")
    assert c.scalar("select current_user") == "app"
    bad = raw(k)
    with pytest.raises(PgError) as ei:
        bad.login("app", "apppass-wrong", "app")
    assert ei.value.code == "28P01"


def test_trust_auth(start_keel):
    k = start_keel({"keel": {"auth_type": "trust"}})
    c = raw(k)
    c.login("app", None, "app")          # fails if a password is requested
    assert c.auth_codes == [0]
    assert c.scalar("select current_user") == "app"
    conn = connect(k, password=None, autocommit=True)
    assert q1(conn, "select current_user") == "app"
    conn = connect(k, user="md5user", password=None, autocommit=True)
    assert q1(conn, "select current_user") == "md5user"


def test_many_logins(start_keel):
    k = start_keel()
    for i in range(20):
        c = raw_login(k)
        assert c.scalar(f"select {i}") == str(i)
        c.close()
