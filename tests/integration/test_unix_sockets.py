"""keel and Unix-domain sockets: a server whose host is a directory (as libpq reads it)."""
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time

import psycopg2
import pytest

from conftest import DIRECT, MODES
from harness import PgError, Q, connect, free_port, keel_bin, keel_refuses, q1, raw, raw_login, send_cancel, wait_until

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


# --------------------------------------------------------------------------
# clients over keel's own Unix socket (keel.unix_socket_dir)
# --------------------------------------------------------------------------

@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="ks", dir="/tmp")  # short: a socket path holds 107 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def via_socket(k, sockdir, **kw):
    """psycopg2 connection through keel's Unix socket (libpq's host=DIR)."""
    conn = psycopg2.connect(host=sockdir, port=k.port, user=kw.pop("user", "app"),
                            password=kw.pop("password", "apppass"), dbname="app", connect_timeout=10, **kw)
    conn.autocommit = True
    k.clients.append(conn)
    return conn


def start_refused(tmp_path, keel_section):
    """keel started with this [keel] section (and a minimal rest) stops with an error: its output."""
    cfg = tmp_path / "k.toml"
    cfg.write_text(f'[keel]\n{keel_section}[databases.app]\nhost = "127.0.0.1"\nport = 5432\n'
                   '[users.app]\npassword = "apppass"\n')
    return keel_refuses(cfg)


def socket_file(k, sockdir):
    return os.path.join(sockdir, f".s.PGSQL.{k.port}")


@pytest.mark.parametrize("pool_mode", MODES)
def test_clients_over_unix_socket(start_keel, sockdir, pool_mode):
    k = start_keel({"keel": {"workers": 2, "unix_socket_dir": sockdir}}, pool_mode=pool_mode)
    st = os.stat(socket_file(k, sockdir))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o777
    # several clients: each worker waits on the one socket; any of them takes a connection
    conns = [via_socket(k, sockdir) for _ in range(4)]  # (session mode: pool_size 5)
    for i, c in enumerate(conns):
        assert q1(c, "select %s::int", [i]) == i
    with pytest.raises(psycopg2.OperationalError) as ei:
        via_socket(k, sockdir, password="wrong")
    assert "password authentication failed" in str(ei.value)
    assert q1(connect(k, autocommit=True), "select 'tcp too'") == "tcp too"  # the TCP listener still serves
    assert k.stop() == []
    k.proc = None
    assert not os.path.exists(socket_file(k, sockdir)), "a clean stop removes the socket file"


def test_cancel_over_unix_socket(start_keel, sockdir):
    k = start_keel({"keel": {"unix_socket_dir": sockdir}})
    c = via_socket(k, sockdir)
    err = []

    def sleep():
        try:
            c.cursor().execute("select pg_sleep(30)")
        except psycopg2.Error as e:
            err.append(e.pgcode)

    t = threading.Thread(target=sleep)
    t.start()
    wait_until(lambda: k.pg.scalar("select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' "
                                   "and state = 'active'") == 1, 10, desc="the sleep running")
    c.cancel()  # libpq sends the CancelRequest the way it connected: over the socket
    t.join(10)
    assert err == ["57014"]
    assert q1(c, "select 1") == 1


def test_stale_socket_file_is_replaced(start_keel, sockdir):
    port = free_port()
    path = os.path.join(sockdir, f".s.PGSQL.{port}")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)  # a file left by a process that is gone: bound, never listening, closed
    s.close()
    k = start_keel({"keel": {"unix_socket_dir": sockdir}}, port=port)
    assert q1(via_socket(k, sockdir), "select 1") == 1


def test_live_socket_is_refused_unless_shared(start_keel, sockdir, tmp_path):
    first = start_keel({"keel": {"unix_socket_dir": sockdir}})
    second = tmp_path / "second.toml"
    # Another TCP address (127.0.0.2), free; the same port, so the same socket file.
    text = first.config_path.read_text().replace(f"127.0.0.1:{first.port}", f"127.0.0.2:{first.port}", 1)
    assert text != first.config_path.read_text()
    second.write_text(text)
    out = keel_refuses(second)
    assert f"another process listens on {socket_file(first, sockdir)}" in out and "share_listen" in out, out
    assert q1(via_socket(first, sockdir), "select 1") == 1
    # On purpose (a restart beside it): the new keel takes the name over; the old one keeps its
    # clients and, stopping, leaves the new one's file alone.
    held = via_socket(first, sockdir)
    beside = start_keel({"keel": {"unix_socket_dir": sockdir, "share_listen": True}}, port=first.port, name="beside")
    # (its port answered at once: the first keel shares it; wait for the socket's new owner)
    wait_until(lambda: "listening on" in beside.log_text(), 10, desc="the keel beside listening")
    assert q1(via_socket(beside, sockdir), "select pg_backend_pid() > 0") is True
    assert q1(held, "select 'old client still served'") == "old client still served"
    held.close()
    assert first.stop() == []
    first.proc = None
    assert os.path.exists(socket_file(beside, sockdir)), "the first keel removed the file it no longer owned"
    for _ in range(4):
        assert q1(via_socket(beside, sockdir), "select 2") == 2


def test_take_over_refuses_no_client(start_keel, sockdir):
    """The name changes hands in one rename: connections made throughout the take-over all reach
    a listener (the old keel's or the new one's), none finds the file missing or not listening."""
    first = start_keel({"keel": {"unix_socket_dir": sockdir}})
    path = socket_file(first, sockdir)
    before = os.stat(path).st_ino
    stop, made, failed = threading.Event(), [0], []

    def hammer():
        while not stop.is_set():
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                made[0] += 1
            except OSError as e:
                failed.append(e.errno)
            finally:
                s.close()

    t = threading.Thread(target=hammer)
    t.start()
    try:
        time.sleep(0.1)
        beside = start_keel({"keel": {"unix_socket_dir": sockdir, "share_listen": True}}, port=first.port,
                            name="beside")
        wait_until(lambda: "listening on" in beside.log_text(), 10, desc="the keel beside listening")
        time.sleep(0.1)
    finally:
        stop.set()
        t.join(10)
    assert failed == [] and made[0] > 100, (made, failed[:5])
    assert os.listdir(sockdir) == [os.path.basename(path)], "the temporary name is gone"
    assert os.stat(path).st_ino != before, "the name is the new keel's socket"
    assert q1(via_socket(beside, sockdir), "select 1") == 1


def test_a_take_over_that_fails_after_it_leaves_the_name_to_the_old_keel(start_keel, sockdir, tmp_path):
    """A keel that took the socket's name over (share_listen) and then fails to start (its TCP
    address is on no interface here) gives the name back to the keel it took it from."""
    first = start_keel({"keel": {"unix_socket_dir": sockdir}})
    path = socket_file(first, sockdir)
    before = os.stat(path).st_ino
    held = via_socket(first, sockdir)
    second = tmp_path / "second.toml"
    text = first.config_path.read_text().replace(f"127.0.0.1:{first.port}", f"192.0.2.1:{first.port}", 1)
    text = text.replace("[keel]\n", "[keel]\nshare_listen = true\n", 1)
    assert "192.0.2.1" in text and "share_listen = true" in text, text
    second.write_text(text)
    out = keel_refuses(second)
    assert "192.0.2.1" in out, out
    assert os.path.exists(path), "the failed keel took the name with it"
    assert os.stat(path).st_ino == before, "the name is not the old keel's socket"
    assert os.listdir(sockdir) == [os.path.basename(path)], "a second name is left"
    assert q1(via_socket(first, sockdir), "select 'reached by name'") == "reached by name"
    assert q1(held, "select 'old client still served'") == "old client still served"
    held.close()


def test_stale_temporary_names_are_removed_at_start(start_keel, sockdir):
    """A keel killed between binding its socket under a temporary name and renaming it leaves
    that name: the next start removes such files when nobody listens on them and they are a
    minute old. A fresh one (a keel starting now) and a live one stay."""
    port = free_port()
    path = os.path.join(sockdir, f".s.PGSQL.{port}")
    old = time.time() - 120

    def bound(name, listen=False, mtime=old):
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(sockdir, name))
        if listen:
            s.listen(1)
        os.utime(os.path.join(sockdir, name), (mtime, mtime))
        return s

    stale = bound(f".s.PGSQL.{port}.ab12cd34")
    stale.close()
    stale_short = bound(".kzz99yy8")
    stale_short.close()
    fresh = bound(f".s.PGSQL.{port}.fresh000", mtime=time.time())
    fresh.close()
    live = bound(f".s.PGSQL.{port}.live0000", listen=True)
    unrelated = bound(f".s.PGSQL.{port}.not-ours")
    unrelated.close()
    try:
        k = start_keel({"keel": {"unix_socket_dir": sockdir}}, port=port)
        assert q1(via_socket(k, sockdir), "select 1") == 1
        left = sorted(os.listdir(sockdir))
        assert left == sorted([os.path.basename(path), f".s.PGSQL.{port}.fresh000", f".s.PGSQL.{port}.live0000",
                               f".s.PGSQL.{port}.not-ours"]), left
        assert "a keel that stopped while starting left" in k.log_text()
    finally:
        live.close()
        for name in (f".s.PGSQL.{port}.fresh000", f".s.PGSQL.{port}.live0000", f".s.PGSQL.{port}.not-ours"):
            try:
                os.unlink(os.path.join(sockdir, name))
            except FileNotFoundError:
                pass


def test_two_keels_starting_at_once_get_one_socket(pg, sockdir, tmp_path):
    """Two keels started together for the same socket, neither with share_listen: exactly one
    gets the name (publishing refuses a name that appeared since it looked), the other stops."""
    port = free_port()
    cfgs = []
    for i, host in enumerate(("127.0.0.1", "127.0.0.2")):  # two TCP addresses, one socket file
        cfg = tmp_path / f"k{i}.toml"
        cfg.write_text(f'[keel]\nlisten = "{host}:{port}"\nunix_socket_dir = "{sockdir}"\n'
                       f'[databases.app]\nhost = "127.0.0.1"\nport = {pg.port}\n[users.app]\npassword = "apppass"\n')
        cfgs.append(cfg)
    procs = [subprocess.Popen([keel_bin(), "--config", str(c)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True) for c in cfgs]
    try:
        time.sleep(2)  # the loser stops at once; the winner keeps running
        ended = [p for p in procs if p.poll() is not None]
        assert len(ended) == 1, [p.poll() for p in procs]
        out = ended[0].communicate(timeout=5)[0]
        assert ended[0].returncode != 0 and f"another process listens on {sockdir}/.s.PGSQL.{port}" in out, out
        assert os.listdir(sockdir) == [f".s.PGSQL.{port}"]
        conn = psycopg2.connect(host=sockdir, port=port, user="app", password="apppass", dbname="app",
                                connect_timeout=10)
        conn.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)


def test_socket_path_near_the_limit(start_keel, tmp_path):
    """A socket path with no room left for the temporary name's suffix (PATH.<8 characters>):
    keel readies the socket as DIR/.k<7 characters> instead, and publishes it by rename all the
    same. (The kernel keeps the name a socket was bound to: /proc/net/unix shows which.)"""
    base = tempfile.mkdtemp(prefix="ks", dir="/tmp")
    try:
        port = free_port()
        room = 106 - len(f"{base}/") - len(f"/.s.PGSQL.{port}")  # the path: 106 of sun_path's 107
        d = os.path.join(base, "d" * room)
        os.mkdir(d)
        assert len(os.path.join(d, f".s.PGSQL.{port}")) == 106
        k = start_keel({"keel": {"unix_socket_dir": d}}, port=port)
        assert q1(via_socket(k, d), "select 1") == 1
        assert os.listdir(d) == [f".s.PGSQL.{port}"]
        bound = [line.split()[7] for line in open("/proc/net/unix").read().splitlines()[1:]
                 if len(line.split()) >= 8 and line.split()[7].startswith(d + "/")]
        assert bound and all(os.path.basename(b).startswith(".k") and len(os.path.basename(b)) == 9
                             for b in bound), bound
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_file_that_is_not_a_socket_is_left_alone(sockdir, tmp_path):
    port = free_port()
    path = os.path.join(sockdir, f".s.PGSQL.{port}")
    with open(path, "w") as f:
        f.write("not a socket")
    out = start_refused(tmp_path, f'listen = "127.0.0.1:{port}"\nunix_socket_dir = "{sockdir}"\n')
    assert f"{path} is not a socket" in out, out
    assert open(path).read() == "not a socket"


def test_socket_mode_and_group(start_keel, sockdir):
    import grp
    k = start_keel({"keel": {"unix_socket_dir": sockdir, "unix_socket_mode": "0770",
                             "unix_socket_group": "postgres"}})
    st = os.stat(socket_file(k, sockdir))
    assert stat.S_IMODE(st.st_mode) == 0o770
    assert st.st_gid == grp.getgrnam("postgres").gr_gid
    assert q1(via_socket(k, sockdir), "select 1") == 1


def test_unknown_socket_group_stops_keel(sockdir, tmp_path):
    port = free_port()
    out = start_refused(tmp_path, f'listen = "127.0.0.1:{port}"\nunix_socket_dir = "{sockdir}"\n'
                                  'unix_socket_group = "no-such-group-here"\n')
    assert "unix_socket_group: no group named no-such-group-here" in out, out
    assert not os.path.exists(os.path.join(sockdir, f".s.PGSQL.{port}"))


def test_share_listen_never_takes_a_postgresql_socket(pg, tmp_path):
    """PostgreSQL keeps .s.PGSQL.PORT.lock beside its socket: keel takes over only a gateway's."""
    out = start_refused(tmp_path, f'listen = "127.0.0.2:{pg.port}"\nunix_socket_dir = "{pg.sockdir}"\n'
                                  'share_listen = true\n')
    assert f"a PostgreSQL server listens on {pg.sockdir}/.s.PGSQL.{pg.port}" in out, out
    assert os.path.exists(os.path.join(pg.sockdir, f".s.PGSQL.{pg.port}"))
    assert pg.scalar("select 'server still reachable over its socket'") == "server still reachable over its socket"
