"""pytest fixtures for the client-driver compatibility suite.

Every test takes the `target` fixture and so runs three times:

  direct        PostgreSQL itself (the oracle)
  keel-tx       keel, transaction pooling, pool_size 4
  keel-session  keel, session pooling, pool_size 60

Fixtures
  pg        session: PostgreSQL 15 primary from tests/integration/harness.py
            (role app/apppass, database app with pgbench tables)
  target    function, parametrised: a Target (host, port, user, password,
            database; .keel is the harness.Keel or None)
  uid       function: a unique suffix for names; tables whose name contains
            it are dropped after the test
  pool_busy function: factory pool_busy(n=3) -> context manager holding n
            connections through the target in transactions (one of them with
            a row lock) while the body runs
  run_proc  function: run_proc(cmd, timeout=None, **kw) -> CompletedProcess,
            killed by the watchdog if the test hangs; run_proc.popen(cmd, **kw)
            starts one in the background (its process group is killed by
            kill_group and by the watchdog)

Environment
  KEEL_BIN             keel binary (default build/release/keel, relative to the repo)
  KEEL_CLIENT_TARGETS  comma-separated subset of the targets (default: all three)
  KEEL_TEST_TIMEOUT    per-test watchdog in seconds (default 120)
"""
from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))
os.environ.setdefault("KEEL_BIN", "build/release/keel")

import harness  # noqa: E402  (tests/integration/harness.py)
import psycopg2  # noqa: E402

TEST_TIMEOUT = float(os.environ.get("KEEL_TEST_TIMEOUT", "120"))
# a driver subprocess gets most of the watchdog's time, so that its own
# timeout fires first and reports what it was doing
PROC_TIMEOUT = max(10.0, TEST_TIMEOUT * 0.75)

ALL_TARGETS = ["direct", "keel-tx", "keel-session"]
TARGETS = [t.strip() for t in os.environ.get("KEEL_CLIENT_TARGETS", ",".join(ALL_TARGETS)).split(",")
           if t.strip()]
for _t in TARGETS:
    if _t not in ALL_TARGETS:
        raise ValueError(f"KEEL_CLIENT_TARGETS: unknown target {_t!r} (known: {ALL_TARGETS})")

KEEL_CONFIGS = {
    "keel-tx": {"pool": {"pool_mode": "transaction", "pool_size": 4}},
    "keel-session": {"pool": {"pool_mode": "session", "pool_size": 60}},
}


@dataclass
class Target:
    name: str
    host: str
    port: int
    pg: harness.PgCluster
    keel: harness.Keel | None = None
    user: str = "app"
    password: str = "apppass"
    database: str = "app"
    conns: list = field(default_factory=list)

    @property
    def pool_mode(self):
        return None if self.keel is None else self.keel.config["pool"]["pool_mode"]

    @property
    def pool_size(self):
        return None if self.keel is None else self.keel.config["pool"]["pool_size"]

    def kw(self, **over) -> dict:
        """libpq-style keyword arguments (psycopg2, psycopg 3)."""
        d = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                 dbname=self.database, connect_timeout=10)
        d.update(over)
        return d

    def psycopg2(self, autocommit=True, **over):
        conn = psycopg2.connect(**self.kw(**over))
        conn.autocommit = autocommit
        self.conns.append(conn)
        return conn

    def spec(self, **extra) -> dict:
        """What the node and Java programs get (as JSON / arguments)."""
        d = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                 database=self.database)
        d.update(extra)
        return d

    def close_conns(self):
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass
        self.conns.clear()


def pytest_configure(config):
    # `timeout` (scripts/test) sends SIGTERM: turn it into KeyboardInterrupt
    # so that fixtures tear down (keel stopped, PostgreSQL stopped, dirs removed)
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)


@pytest.fixture(scope="session")
def pg():
    primary = harness.make_primary()
    yield primary
    harness.destroy_clusters(primary)


@pytest.fixture(params=TARGETS)
def target(request, pg, tmp_path, uid):
    # (uid first: its cleanup, which drops tables, then runs after the
    # target's connections are closed and keel has stopped)
    name = request.param
    keel = None
    if name == "direct":
        t = Target(name, pg.host, pg.port, pg)
    else:
        keel = harness.Keel(pg, tmp_path, KEEL_CONFIGS[name], name=name)
        assert keel.config["keel"]["auth_type"] == "scram-sha-256", "clients must log in with SCRAM"
        request.node._keel_instances = [keel]
        keel.start()
        t = Target(name, keel.host, keel.port, pg, keel)
    request.node._target = t
    yield t
    t.close_conns()
    problems = keel.stop() if keel is not None else []
    pg.wait_clean(10)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def uid(pg, request):
    u = uuid.uuid4().hex[:10]
    yield u
    try:
        for (name,) in pg.sql("select tablename from pg_tables where schemaname = 'public' "
                              "and tablename like %s", [f"%{u}%"], dbname="app") or []:
            pg.sql(f"begin; set local lock_timeout = '10s'; "
                   f'drop table if exists "{name}" cascade; commit', dbname="app")
    except Exception as e:   # noqa: BLE001 - cleanup must not mask the test's result
        sys.stderr.write(f"cleanup of tables *{u}* failed: {e!r}\n")


@pytest.fixture
def run_proc(request):
    procs = []
    request.node._procs = procs

    def run(cmd, timeout=None, **kw):
        timeout = timeout or PROC_TIMEOUT
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        procs.append(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p)
            out, err = p.communicate()
            raise AssertionError(f"{cmd[0]} did not finish within {timeout}s\n"
                                 f"--- stdout ---\n{out}\n--- stderr ---\n{err}")
        finally:
            procs.remove(p)
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)

    def popen(cmd, **kw):
        """A background process in a session of its own (killed with its
        children by kill_group, and by the watchdog)."""
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        procs.append(p)
        return p

    run.popen = popen
    return run


def kill_group(p: subprocess.Popen):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class PoolBusy:
    """n connections through the target, each looping: BEGIN; SELECT ... FOR
    UPDATE of its own row; hold for `hold` seconds; COMMIT.  Entering waits
    until all n are in a transaction at once; leaving stops them and raises
    if any of them hit an error.  With keel-tx (pool_size 4) and n=3 this
    leaves one server connection for everyone else, and which one it is
    changes as the holders commit and begin again."""

    def __init__(self, target: Target, uid: str, n=3, hold=0.1):
        self.target, self.n, self.hold = target, n, hold
        self.table = f"ct_hold_{uid}"
        self.stop = threading.Event()
        self.go = threading.Event()
        self.errors: list = []
        self.transactions = 0
        self._lock = threading.Lock()
        self._in_tx = threading.Semaphore(0)

    def _run(self, i, conn):
        first = True
        try:
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    cur.execute(f"select id from {self.table} where id = %s for update", [i])
                    if first:
                        self._in_tx.release()
                        self.go.wait(30)
                        first = False
                    self.stop.wait(self.hold)
                    conn.commit()
                    with self._lock:
                        self.transactions += 1
        except Exception as e:   # noqa: BLE001 - reported when leaving
            self.errors.append((i, repr(e)))
            self._in_tx.release()

    def __enter__(self):
        setup = self.target.psycopg2()
        with setup.cursor() as cur:
            cur.execute(f"create table {self.table} (id int primary key)")
            cur.execute(f"insert into {self.table} select generate_series(0, %s)", [self.n - 1])
        setup.close()
        self.conns = [self.target.psycopg2(autocommit=False) for _ in range(self.n)]
        self.threads = [threading.Thread(target=self._run, args=(i, c), daemon=True)
                        for i, c in enumerate(self.conns)]
        for t in self.threads:
            t.start()
        deadline = time.monotonic() + 20
        for _ in range(self.n):
            assert self._in_tx.acquire(timeout=max(0.0, deadline - time.monotonic())), \
                "pool holders did not all begin a transaction"
        assert not self.errors, f"pool holders failed: {self.errors}"
        harness.wait_until(lambda: self.target.pg.idle_in_tx_count() >= self.n, 10,
                           desc=f"{self.n} server connections idle in transaction")
        self.go.set()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.go.set()
        for t in self.threads:
            t.join(20)
        hung = [i for i, t in enumerate(self.threads) if t.is_alive()]
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass
        if exc[0] is None:
            assert not hung, f"pool holders {hung} hung"
            assert not self.errors, f"pool holders failed: {self.errors}"
        return False


@pytest.fixture
def pool_busy(target, uid):
    def make(n=3, hold=0.1):
        return PoolBusy(target, uid, n=n, hold=hold)
    return make


def wait_query_running(pg: harness.PgCluster, marker: str, timeout=15.0):
    """Wait until a backend is inside pg_sleep() of a statement whose text
    contains marker (not merely parsing it: a cancel that arrives between
    Parse and Execute finds the backend idle and is ignored)."""
    harness.wait_until(lambda: pg.scalar(
        "select count(*) from pg_stat_activity where state = 'active' and query like %s "
        "and wait_event = 'PgSleep' and pid <> pg_backend_pid()", [f"%{marker}%"]), timeout,
        desc=f"a statement containing {marker} sleeping")


def wait_query_gone(pg: harness.PgCluster, marker: str, timeout=15.0):
    harness.wait_until(lambda: not pg.scalar(
        "select count(*) from pg_stat_activity where state = 'active' and query like %s "
        "and pid <> pg_backend_pid()", [f"%{marker}%"]), timeout,
        desc=f"no running statement containing {marker}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Watchdog: if a test hangs, dump stacks, kill its keel and driver
    processes and terminate the app backends (direct target), so that blocked
    sockets return and the test fails instead of hanging."""
    def fire():
        sys.__stderr__.write(f"\n*** {item.nodeid} exceeded {TEST_TIMEOUT}s; "
                             "killing its keel and driver processes\n")
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        for p in list(getattr(item, "_procs", [])):
            kill_group(p)
        for k in getattr(item, "_keel_instances", []):
            k.killed_by_watchdog = True
            k.kill()
        t = getattr(item, "_target", None)
        if t is not None and t.keel is None:
            try:
                c = t.pg.connect()
                with c.cursor() as cur:
                    cur.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                                "where backend_type = 'client backend' and usename = 'app'")
                c.close()
            except Exception as e:   # noqa: BLE001
                sys.__stderr__.write(f"watchdog: terminating backends failed: {e!r}\n")

    timer = threading.Timer(TEST_TIMEOUT, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when == "call":
        for k in getattr(item, "_keel_instances", []):
            rep.sections.append((f"{k.name} log tail", k.log_tail()))
