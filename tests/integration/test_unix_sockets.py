"""keel and Unix-domain sockets: a server whose host is a directory (as libpq reads it)."""
import time

import pytest

from conftest import DIRECT, MODES
from harness import PgError, Q, raw, raw_login, send_cancel, wait_until

pytestmark = pytest.mark.skipif(DIRECT, reason="keel's own server connections")


def over_socket(pg):
    return {"databases": {"app": {"host": pg.sockdir, "port": pg.port, "dbname": "app"}}}


@pytest.mark.parametrize("pool_mode", MODES)
def test_server_over_unix_socket(start_keel, pg, pool_mode):
    k = start_keel(over_socket(pg), pool_mode=pool_mode)
    c = raw_login(k)
    # PostgreSQL shows no client address for a connection over its Unix socket.
    assert c.scalar("select coalesce(host(inet_client_addr()), 'unix')") == "unix"
    assert c.scalar("select count(*) from generate_series(1, 1000)") == "1000"
    others = [raw_login(k) for _ in range(3)]
    for o in others:
        assert o.scalar("select coalesce(host(inet_client_addr()), 'unix')") == "unix"
    assert c.scalar("select 'still usable'") == "still usable"


@pytest.mark.parametrize("pool_mode", MODES)
def test_cancel_reaches_server_over_unix_socket(start_keel, pg, pool_mode):
    k = start_keel(over_socket(pg), pool_mode=pool_mode)
    c = raw_login(k)
    sql = "select pg_sleep(30)"
    c.send(Q(sql))
    wait_until(lambda: pg.scalar("select count(*) from pg_stat_activity where query = %s and state = 'active'",
                                 [sql]) == 1, 10, desc="the sleep running")
    t0 = time.monotonic()
    send_cancel(k.host, k.port, c.backend_key)
    r = c.read_until_ready(timeout=10)
    assert [e["C"] for e in r.errors] == ["57014"]
    assert time.monotonic() - t0 < 5
    assert c.scalar("select 'still usable'") == "still usable"


def test_missing_server_socket_is_a_connection_failure(start_keel, pg, tmp_path):
    empty = tmp_path / "nosocket"
    empty.mkdir()
    k = start_keel({"databases": {"app": {"host": str(empty), "port": pg.port, "dbname": "app"}},
                    "pool": {"server_connect_timeout": 2.0, "query_wait_timeout": 3.0}})
    c = raw(k)
    with pytest.raises(PgError) as ei:  # at login or at the first query
        c.login()
        c.query_ok("select 1")
    assert ei.value.code == "08006", ei.value.fields
    assert f'on socket "{empty}/.s.PGSQL.{pg.port}"' in ei.value.fields["M"], ei.value.fields
    # keel itself is fine: a database on the real socket still serves.
    ok = start_keel(over_socket(pg))
    assert raw_login(ok).scalar("select 1") == "1"
