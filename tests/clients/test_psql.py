"""psql (PostgreSQL 15's own) runs SQL scripts; its output (stdout and stderr
together, errors shown as SQLSTATEs only) must equal the expected file,
which was made against PostgreSQL itself.

KEEL_CLIENT_REGEN=1 rewrites the expected files from the direct target."""
import errno
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

import harness
from conftest import kill_group, wait_query_running

PSQL = str(harness.PG_BIN / "psql")
DIR = Path(__file__).resolve().parent / "psql"
REGEN = os.environ.get("KEEL_CLIENT_REGEN") == "1"


@pytest.fixture
def schema(pg, uid):
    """A schema of the test's own (psql's scripts use plain table names and
    get it as search_path from PGOPTIONS, a startup parameter)."""
    name = f"ct_psql_{uid}"
    pg.sql(f"create schema {name} authorization app", dbname="app")
    yield name
    pg.sql(f"begin; set local lock_timeout = '10s'; drop schema if exists {name} cascade; commit",
           dbname="app")


def psql(target, script, *, options="", password=None, variables=None, dbname=None):
    cmd = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=0", "-h", target.host, "-p", str(target.port),
           "-U", target.user, "-d", dbname or target.database, "-f", script]
    for k, v in (variables or {}).items():
        cmd += ["-v", f"{k}={v}"]
    env = harness.clean_env(PGPASSWORD=password or target.password, PGCONNECT_TIMEOUT=10,
                            PGOPTIONS=options)
    return cmd, env


def normalise(text: str, target) -> str:
    text = re.sub(r"server process with PID \d+", "server process with PID N", text)
    text = text.replace(f'port {target.port} failed', "port N failed")
    return text


def compare(target, name, out):
    expected_path = DIR / f"{name}.out"
    out = normalise(out, target)
    if REGEN and target.name == "direct":
        expected_path.write_text(out)
    expected = expected_path.read_text()
    assert out == expected, (f"psql output of {name}.sql differs from {expected_path.name}:\n"
                             f"--- got ---\n{out}\n--- expected ---\n{expected}")


def run_script(run_proc, target, name, **kw):
    cmd, env = psql(target, f"{name}.sql", **kw)
    # stderr into the same pipe as stdout: psql flushes stdout before it
    # reports an error, so the order is that of the script
    res = run_proc(cmd, env=env, cwd=DIR, stderr=subprocess.STDOUT)
    return res


def test_psql_basic(schema, target, run_proc, pool_busy):
    with pool_busy():
        res = run_script(run_proc, target, "basic", options=f"-c search_path={schema}")
    assert res.returncode == 0, res.stdout
    compare(target, "basic", res.stdout)


def test_psql_copy(schema, target, run_proc):
    res = run_script(run_proc, target, "copy", options=f"-c search_path={schema}")
    assert res.returncode == 0, res.stdout
    compare(target, "copy", res.stdout)


def test_psql_notify(target, run_proc):
    res = run_script(run_proc, target, "notify")
    assert res.returncode == 0, res.stdout
    compare(target, "notify", res.stdout)


def open_writer(fifo) -> bool:
    """Open and close the writing end of fifo if a reader has it open."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        return True
    except OSError as e:
        if e.errno == errno.ENXIO:   # no reader yet
            return False
        raise


def test_psql_listen(target, tmp_path, run_proc):
    """LISTEN in one psql, NOTIFY from another psql, printed by the first."""
    fifo = tmp_path / "listen.fifo"
    os.mkfifo(fifo)
    cmd, env = psql(target, "listen.sql")
    env["CT_FIFO"] = str(fifo)
    p = run_proc.popen(cmd, env=env, cwd=DIR, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out = b""
    try:
        # psql flushes its output before it runs \! : wait for "listening"
        deadline = time.monotonic() + 15
        while b"listening" not in out:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"psql never listened:\n{out.decode()}"
            if select.select([p.stdout], [], [], remaining)[0]:
                chunk = os.read(p.stdout.fileno(), 65536)
                assert chunk, f"psql ended before it listened:\n{out.decode()}"
                out += chunk
        ncmd, nenv = psql(target, "notify_other.sql")
        res = run_proc(ncmd, env=nenv, cwd=DIR, stderr=subprocess.STDOUT)
        assert res.returncode == 0 and res.stdout == "", res.stdout
        # open and close the fifo's writing end: the listener's \! cat ends
        harness.wait_until(lambda: open_writer(fifo), 15, desc="cat reading the fifo")
        rest, _ = p.communicate(timeout=15)
        out += rest
    finally:
        kill_group(p)
        if p.returncode is None:
            p.communicate()
    assert p.returncode == 0, out.decode()
    compare(target, "listen", out.decode())


def test_psql_statement_timeout(target, run_proc):
    res = run_script(run_proc, target, "timeout", options="-c statement_timeout=300")
    assert res.returncode == 0, res.stdout
    compare(target, "timeout", res.stdout)


def test_psql_cancel(target, pg, uid, run_proc):
    """SIGINT makes psql send a CancelRequest; a script then stops (exit 3)."""
    marker = f"ct_cancel_{uid}"
    cmd, env = psql(target, "cancel.sql", variables={"marker": marker})
    p = run_proc.popen(cmd, env=env, cwd=DIR, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        wait_query_running(pg, marker)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=15)
    finally:
        kill_group(p)
        if p.returncode is None:
            p.communicate()
    assert p.returncode == 3, out
    compare(target, "cancel", out)


def test_psql_login_errors(target, run_proc):
    cmd, env = psql(target, "notify.sql", password="wrong")
    res = run_proc(cmd, env=env, cwd=DIR, stderr=subprocess.STDOUT)
    assert res.returncode == 2, res.stdout
    cmd, env = psql(target, "notify.sql", dbname="ct_no_such_db")
    res2 = run_proc(cmd, env=env, cwd=DIR, stderr=subprocess.STDOUT)
    assert res2.returncode == 2, res2.stdout
    # libpq shows no SQLSTATE for login failures: the message must be
    # PostgreSQL's own
    compare(target, "login_errors", res.stdout + res2.stdout)
