"""Admin console: database `keel`, SHOW POOLS / SHOW STATS.

Column lists are tentative; only database, user, sv_active, sv_idle,
sv_total and cl_waiting are relied upon.  The raw client is used because
psycopg2 may send SET DateStyle on connect."""
import pytest

from conftest import MODES
from harness import PgError, Q, connect, q1, raw, raw_login, wait_until

POOL_COLUMNS = {"database", "user", "cl_waiting", "sv_active", "sv_idle", "sv_total"}


def show(admin, what):
    r = admin.query_ok(f"SHOW {what};")
    assert r.sets, f"SHOW {what} returned no result set"
    cols = r.sets[0]["columns"]
    return cols, [dict(zip(cols, row)) for row in r.sets[0]["rows"]]


def pool_stats(admin, database="app", user="app"):
    """SHOW POOLS numbers for (database, user), summed over matching rows."""
    cols, rows = show(admin, "POOLS")
    assert POOL_COLUMNS <= set(cols), cols
    mine = [r for r in rows if r["database"] == database and r["user"] == user]
    if not mine:
        return None
    return {c: sum(int(r[c]) for r in mine) for c in POOL_COLUMNS - {"database", "user"}}


@pytest.mark.parametrize("pool_mode", MODES)
def test_show_pools_matches_server(start_keel, pg, pool_mode):
    k = start_keel({"pool": {"pool_size": 4}}, pool_mode=pool_mode)
    conns = [connect(k, autocommit=True) for _ in range(3)]
    for c in conns:
        assert q1(c, "select 1") == 1
    admin = raw_login(k, database="keel")

    def consistent():
        s = pool_stats(admin)
        return s is not None and s["sv_total"] == pg.server_conn_count() and s
    s = wait_until(consistent, 10, desc="SHOW POOLS sv_total == server connections")
    assert 1 <= s["sv_total"] <= 4
    assert s["sv_active"] + s["sv_idle"] <= s["sv_total"]
    assert s["cl_waiting"] == 0
    if pool_mode == "session":
        assert s["sv_total"] >= 3


def test_show_pools_waiting_client(start_keel):
    k = start_keel({"pool": {"pool_size": 1}}, pool_mode="transaction")
    a = raw_login(k)
    a.query_ok("begin")
    a.query_ok("select 1")               # A holds the only server connection
    b = raw_login(k)
    b.send(Q("select 'b done'"))
    admin = raw_login(k, database="keel")
    s = wait_until(lambda: (pool_stats(admin) or {}).get("cl_waiting", 0) >= 1 and
                   pool_stats(admin), 5, desc="cl_waiting >= 1")
    assert s["sv_active"] == 1 and s["sv_total"] == 1
    a.query_ok("commit")
    assert b.read_until_ready().rows == [["b done"]]
    wait_until(lambda: pool_stats(admin)["cl_waiting"] == 0, 5, desc="cl_waiting back to 0")


def test_show_stats(start_keel):
    k = start_keel(pool_mode="transaction")
    conn = connect(k, autocommit=True)
    for i in range(5):
        assert q1(conn, "select %s", (i,)) == i
    admin = raw_login(k, database="keel")
    cols, rows = show(admin, "STATS")
    assert {"database", "user"} <= set(cols), cols
    assert any(r["database"] == "app" and r["user"] == "app" for r in rows), rows


def test_admin_requires_admin_user(start_keel):
    k = start_keel({"keel": {"admin_users": ["app"]}})
    c = raw(k)
    with pytest.raises(PgError) as ei:
        c.login("plainuser", "plainpass", "keel")
        c.query_ok("SHOW POOLS;")
    assert ei.value.code in ("28000", "42501", "08P01")
    c = raw(k)
    with pytest.raises(PgError) as ei:
        c.login("app", "not-the-password", "keel")
    assert ei.value.code == "28P01"
    assert raw_login(k, database="keel").query_ok("SHOW POOLS;")
