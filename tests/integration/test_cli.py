"""Command line: --help, --version, `keel check`, quick-start mode."""
import re
import subprocess
import textwrap

import pytest

from conftest import DIRECT, MODES
from harness import connect, free_port, keel_bin, keel_refuses, port_accepts, q1, scram_verifier, wait_until
from harness import run_keel as keel

VALID_CONFIG = textwrap.dedent("""\
    # a complete configuration
    [keel]
    listen = "127.0.0.1:6432"       # host:port
    workers = 2
    auth_type = "scram-sha-256"
    max_client_conn = 10000
    max_message_size = 67108864
    admin_users = ["app"]
    log_level = "info"

    [pool]
    pool_mode = "transaction"
    pool_size = 20
    min_pool_size = 0
    server_lifetime = 3600.0
    server_idle_timeout = 600.0
    client_idle_timeout = 0.0
    query_wait_timeout = 120.0
    server_connect_timeout = 5.0

    [databases.app]
    host = "127.0.0.1"
    port = 5432
    dbname = "app"
    pool_mode = "session"
    pool_size = 10

    [databases.other]
    host = "127.0.0.1"
    port = 5433

    [users.app]
    password = "apppass"

    [users.verified]
    scram_verifier = "VERIFIER"
    server_password = "secret"
    """).replace("VERIFIER", scram_verifier("secret", b"saltsaltsaltsalt"))


pytestmark = pytest.mark.skipif(DIRECT, reason="CLI tests need the keel binary")


def test_version():
    res = keel("--version")
    assert res.returncode == 0, res.stderr
    # the release build scripts/build-pgo makes names itself
    assert re.fullmatch(r"keel \d+\.\d+\.\d+\S*( \(profile-guided build\))?\n?", res.stdout), res.stdout


def test_help():
    res = keel("--help")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    for opt in ("--config", "--listen", "--primary", "check"):
        assert opt in out, f"--help does not mention {opt}"


def test_unknown_option_fails():
    res = keel("--no-such-option")
    assert res.returncode != 0


def test_check_valid(tmp_path):
    f = tmp_path / "valid.toml"
    f.write_text(VALID_CONFIG)
    res = keel("check", f)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "ok"


def with_line(text, marker, replacement):
    """Replace the line containing `marker`; return (text, 1-based line number)."""
    lines = text.splitlines()
    idx = next(i for i, l in enumerate(lines) if marker in l)
    lines[idx] = replacement
    return "\n".join(lines) + "\n", idx + 1


INVALID_CASES = {
    "unknown-key": ("pool_size = 20", "pool_sise = 20"),
    "unknown-key-keel": ("log_level =", 'log_levle = "info"'),
    "wrong-type": ("pool_size = 20", 'pool_size = "twenty"'),
    "wrong-type-port": ("port = 5432", 'port = "5432"'),
    "bad-pool-mode": ('pool_mode = "transaction"', 'pool_mode = "bogus"'),
    "bad-auth-type": ('auth_type = "scram-sha-256"', 'auth_type = "kerberos"'),
    "bad-listen": ('listen = "127.0.0.1:6432"', 'listen = "no-port-here"'),
    "wrong-type-bool": ('listen = "127.0.0.1:6432"', 'share_listen = "yes"'),
    "socket-path-too-long": ('host = "127.0.0.1"', 'host = "/' + "d" * 100 + '"'),
    "unix-socket-dir-relative": ('listen = "127.0.0.1:6432"', 'unix_socket_dir = "run/keel"'),
    "unix-socket-dir-too-long": ('listen = "127.0.0.1:6432"', 'unix_socket_dir = "/' + "d" * 100 + '"'),
    "unix-socket-mode-not-octal": ('listen = "127.0.0.1:6432"', 'unix_socket_mode = "0799"'),
    "unix-socket-mode-too-large": ('listen = "127.0.0.1:6432"', 'unix_socket_mode = "1777"'),
    "toml-syntax": ("min_pool_size = 0", "min_pool_size = = 0"),
}


@pytest.mark.parametrize("case", list(INVALID_CASES))
def test_check_invalid_reports_line(tmp_path, case):
    marker, replacement = INVALID_CASES[case]
    text, line = with_line(VALID_CONFIG, marker, replacement)
    f = tmp_path / f"{case}.toml"
    f.write_text(text)
    res = keel("check", f)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert f"{f}:{line}:" in out, f"expected {f}:{line}: in output:\n{out}"
    assert res.stdout.strip() != "ok"


def test_check_reports_every_error(tmp_path):
    text, l1 = with_line(VALID_CONFIG, "pool_size = 20", "pool_sise = 20")
    text, l2 = with_line(text, 'pool_mode = "transaction"', 'pool_mode = "bogus"')
    text, l3 = with_line(text, "max_client_conn", 'max_client_conn = "many"')
    f = tmp_path / "multi.toml"
    f.write_text(text)
    res = keel("check", f)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    for line in (l1, l2, l3):
        assert f"{f}:{line}:" in out, f"missing {f}:{line}: in output:\n{out}"
    error_lines = [l for l in out.splitlines() if l.startswith(f"{f}:")]
    assert len(error_lines) >= 3


def test_check_missing_file(tmp_path):
    res = keel("check", tmp_path / "does-not-exist.toml")
    assert res.returncode == 1


def test_invalid_config_refuses_to_start(tmp_path):
    text, _ = with_line(VALID_CONFIG, 'pool_mode = "transaction"', 'pool_mode = "bogus"')
    f = tmp_path / "bad.toml"
    f.write_text(text)
    proc = subprocess.Popen([keel_bin(), "--config", str(f)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("keel started with an invalid config")
    assert rc != 0
    assert f"{f}:" in proc.stdout.read().decode(errors="replace")


@pytest.mark.parametrize("pool_mode", MODES)
def test_quick_start(start_keel, pg, pool_mode):
    port = free_port()
    k = start_keel(args=["--listen", f"127.0.0.1:{port}",
                         "--primary", f"postgres://app:apppass@127.0.0.1:{pg.port}/app",
                         "--pool-mode", pool_mode, "--pool-size", 3, "--workers", 1],
                   port=port)
    conn = connect(k, autocommit=True)
    assert q1(conn, "select current_user || '@' || current_database()") == "app@app"
    conn.close()
    conns = [connect(k, autocommit=True) for _ in range(3)]
    for c in conns:
        assert q1(c, "select 1") == 1
    assert pg.server_conn_count() <= 3


def test_quick_start_defaults(start_keel, pg):
    port = free_port()
    k = start_keel(args=["--listen", f"127.0.0.1:{port}",
                         "--primary", f"postgres://app:apppass@127.0.0.1:{pg.port}/app"],
                   port=port)
    assert q1(connect(k, autocommit=True), "select 42") == 42


@pytest.mark.parametrize("level", ["debug", "info"])
def test_log_level_decides_what_is_logged(start_keel, level):
    """log_level: a login's details are logged at debug and not at info (keel keeps its own copy
    of the level for its checks)."""
    k = start_keel({"keel": {"log_level": level}})
    assert q1(connect(k, autocommit=True), "select 1") == 1
    logged = "login user=" in k.log_text()
    assert logged == (level == "debug")


def test_second_keel_on_the_same_address(start_keel, tmp_path):
    """A second keel on an address another one listens on refuses to start, naming the way to
    share it on purpose (keel.share_listen), rather than silently taking half the connections."""
    if DIRECT:
        pytest.skip("keel only")
    first = start_keel({"keel": {"workers": 2}})
    second = tmp_path / "second.toml"
    second.write_text(first.config_path.read_text())
    out = keel_refuses(second)
    assert f"another process listens on 127.0.0.1:{first.port}" in out and "share_listen" in out, out
    assert q1(connect(first, autocommit=True), "select 1") == 1
    # On purpose: a keel started beside it (a restart) serves the address once the first is gone.
    beside = start_keel({"keel": {"workers": 1, "share_listen": True}}, port=first.port, name="beside")
    assert first.stop() == []
    first.proc = None  # stopped here: nothing left for the teardown to stop
    # (a connection that reached the first one's queue as it closed is reset, as with any
    # SO_REUSEPORT hand-over: wait for one that gets through)
    wait_until(lambda: port_accepts(beside.host, beside.port), 5, desc="the keel beside answers")
    for _ in range(8):
        assert q1(connect(beside, autocommit=True), "select 2") == 2
