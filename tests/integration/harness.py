"""Integration-test harness for keel.

* PgCluster: a throw-away PostgreSQL 15 primary (and streaming replica) on
  free loopback ports, owned by the `postgres` OS user.
* Keel: one keel process started from a TOML config (or CLI args), with its
  output captured to a log file.
* RawClient: a minimal PostgreSQL v3 protocol client over a plain socket,
  used for tests that need exact control over the bytes on the wire.

Only loopback addresses are used.
"""
from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
HOST = "127.0.0.1"

# Roles created in the test cluster: name -> password.
PASSWORDS = {"app": "apppass", "md5user": "md5pass", "plainuser": "plainpass"}

from pgwire import *  # noqa: F401,F403  (re-exported for the tests)
from pgwire import RawClient


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------

_used_ports: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A free TCP port on 127.0.0.1.

    Picked below the kernel's ephemeral range (32768+) so that outgoing
    connections made meanwhile cannot grab it, and never handed out twice
    in one session.  Verified free by binding it.
    """
    with _port_lock:
        for _ in range(1000):
            port = random.randint(20000, 32000)
            if port in _used_ports:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((HOST, port))
                except OSError:
                    continue
            _used_ports.add(port)
            return port
    # fall back to letting the kernel choose
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, interval=0.05, desc="condition"):
    """Poll pred() until it returns a truthy value; return that value.

    Raises AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {desc} (last: {last!r})")
        time.sleep(interval)


def port_accepts(host, port, timeout=0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def clean_env(**extra) -> dict:
    """os.environ without PG* variables (they would redirect libpq tools)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def scram_verifier(password: str, salt: bytes | None = None, iterations=4096) -> str:
    """A SCRAM-SHA-256 verifier in PostgreSQL's rolpassword format."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# --------------------------------------------------------------------------
# PostgreSQL clusters
# --------------------------------------------------------------------------

def run_as_postgres(*args, check=True, **kw):
    cmd = ["runuser", "-u", "postgres", "--", *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n"
                           f"{res.stdout}\n{res.stderr}")
    return res


PG_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockdir}'
max_connections = 200
wal_level = replica
max_wal_senders = 5
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
password_encryption = 'scram-sha-256'
# notice vanished clients (e.g. a killed keel) even while a query runs
client_connection_check_interval = 250ms
log_min_messages = warning
log_connections = off
"""

PG_HBA = """
local   all          all                      trust
local   replication  all                      trust
host    all          md5user    127.0.0.1/32  md5
host    all          plainuser  127.0.0.1/32  password
host    all          all        127.0.0.1/32  scram-sha-256
host    replication  all        127.0.0.1/32  trust
"""


class PgCluster:
    """One PostgreSQL instance living in `base/name`, sockets in `base`."""

    def __init__(self, base: str, name: str, port: int | None = None):
        self.base = base
        self.name = name
        self.datadir = os.path.join(base, name)
        self.logfile = os.path.join(base, f"{name}.log")
        self.sockdir = base
        self.host = HOST
        self.port = port or free_port()
        self._conns: dict[str, psycopg2.extensions.connection] = {}
        self._lock = threading.Lock()
        self.running = False

    # -- lifecycle -------------------------------------------------------
    def init_primary(self):
        run_as_postgres(PG_BIN / "initdb", "-D", self.datadir, "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256",
                        "-E", "UTF8", "--locale=C", "-N")
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write(PG_CONF.format(port=self.port, sockdir=self.sockdir))
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write(PG_HBA)

    def init_replica(self, primary: "PgCluster"):
        run_as_postgres(PG_BIN / "pg_basebackup", "-R", "-D", self.datadir,
                        "-h", primary.host, "-p", primary.port, "-U", "postgres",
                        "-X", "stream", "-c", "fast", "--no-sync")
        with open(os.path.join(self.datadir, "postgresql.auto.conf"), "a") as f:
            f.write(f"\nport = {self.port}\n")

    def start(self):
        run_as_postgres(PG_BIN / "pg_ctl", "-D", self.datadir, "-l", self.logfile,
                        "-w", "-t", "60", "start")
        self.running = True
        atexit.register(self.stop)

    def stop(self):
        if not self.running:
            return
        self.running = False
        for c in self._conns.values():
            try:
                c.close()
            except Exception:
                pass
        self._conns.clear()
        run_as_postgres(PG_BIN / "pg_ctl", "-D", self.datadir, "-m", "immediate",
                        "-w", "stop", check=False)

    # -- superuser access over the unix socket ----------------------------
    def connect(self, dbname="postgres", user="postgres", autocommit=True):
        conn = psycopg2.connect(host=self.sockdir, port=self.port, user=user,
                                dbname=dbname, connect_timeout=10)
        conn.autocommit = autocommit
        return conn

    def sql(self, query, params=None, dbname="postgres"):
        """Run one statement as superuser; return all rows (or None)."""
        with self._lock:
            conn = self._conns.get(dbname)
            if conn is None or conn.closed:
                conn = self._conns[dbname] = self.connect(dbname)
            try:
                with conn.cursor() as cur:
                    cur.execute(query, params)
                    return cur.fetchall() if cur.description else None
            except psycopg2.OperationalError:
                conn.close()
                raise

    def scalar(self, query, params=None, dbname="postgres"):
        rows = self.sql(query, params, dbname)
        return rows[0][0] if rows else None

    # -- observations ------------------------------------------------------
    def backends(self, user=None):
        """Client backends (not ours): list of dicts."""
        q = ("select pid, usename, datname, application_name, state, query, "
             "backend_type from pg_stat_activity where backend_type = 'client backend' "
             "and pid <> pg_backend_pid() and usename <> 'postgres'")
        params = []
        if user is not None:
            q += " and usename = %s"
            params.append(user)
        cols = ["pid", "usename", "datname", "application_name", "state", "query",
                "backend_type"]
        return [dict(zip(cols, r)) for r in self.sql(q, params)]

    def server_conn_count(self, user="app") -> int:
        return self.scalar(
            "select count(*) from pg_stat_activity where backend_type = 'client backend' "
            "and usename = %s and pid <> pg_backend_pid()", [user])

    def idle_in_tx_count(self, user="app") -> int:
        return self.scalar(
            "select count(*) from pg_stat_activity where backend_type = 'client backend' "
            "and usename = %s and state like 'idle in transaction%%'", [user])

    def terminate(self, pid) -> bool:
        return self.scalar("select pg_terminate_backend(%s)", [pid])

    def pid_exists(self, pid) -> bool:
        return bool(self.scalar("select count(*) from pg_stat_activity where pid = %s", [pid]))

    def wait_clean(self, timeout=5.0):
        """Wait until no non-superuser client backend is left (test isolation).

        Leftovers after that are terminated."""
        try:
            wait_until(lambda: not self.backends(), timeout, desc="no leftover backends")
        except AssertionError:
            self.sql("select pg_terminate_backend(pid) from pg_stat_activity "
                     "where backend_type = 'client backend' and usename <> 'postgres' "
                     "and pid <> pg_backend_pid()")
            wait_until(lambda: not self.backends(), timeout, desc="terminated backends gone")

    def create_table(self, name, columns="a int, b text", dbname="app", owner="app"):
        self.sql(f"drop table if exists {name}", dbname=dbname)
        self.sql(f"create table {name} ({columns})", dbname=dbname)
        self.sql(f"alter table {name} owner to {owner}", dbname=dbname)


def make_primary() -> PgCluster:
    base = tempfile.mkdtemp(prefix="keel-it-pg-")
    shutil.chown(base, "postgres", "postgres")
    os.chmod(base, 0o700)
    pg = PgCluster(base, "primary")
    pg.init_primary()
    pg.start()
    pg.sql("set password_encryption = 'scram-sha-256'; "
           "create role app login password 'apppass'")
    pg.sql("set password_encryption = 'md5'; "
           "create role md5user login password 'md5pass'")
    pg.sql("set password_encryption = 'scram-sha-256'; "
           "create role plainuser login password 'plainpass'")
    pg.sql("create database app owner app")
    res = subprocess.run(
        [str(PG_BIN / "pgbench"), "-i", "-s", "1", "-q", "-h", pg.host, "-p", str(pg.port),
         "-U", "app", "app"],
        capture_output=True, text=True, env=clean_env(PGPASSWORD="apppass"), timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"pgbench -i failed:\n{res.stdout}\n{res.stderr}")
    return pg


def make_replica(primary: PgCluster) -> PgCluster:
    rep = PgCluster(primary.base, "replica")
    rep.init_replica(primary)
    rep.start()
    wait_until(lambda: rep.scalar("select pg_is_in_recovery()"), 30, desc="replica in recovery")
    lsn = primary.scalar("select pg_current_wal_lsn()")
    wait_until(lambda: rep.scalar(
        "select pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]), 30, desc="replica replay")
    return rep


def destroy_clusters(*clusters):
    for c in clusters:
        if c is not None:
            c.stop()
    bases = {c.base for c in clusters if c is not None}
    for b in bases:
        shutil.rmtree(b, ignore_errors=True)


# --------------------------------------------------------------------------
# keel processes
# --------------------------------------------------------------------------

FLOAT_KEYS = re.compile(r".*(_timeout|_lifetime)$")


def keel_bin() -> str:
    b = os.environ.get("KEEL_BIN", "build/dev/keel")
    p = Path(b)
    if not p.is_absolute():
        p = p if p.exists() else REPO_ROOT / p
    return str(p.resolve())


def run_keel(*args, timeout=20) -> subprocess.CompletedProcess:
    """The keel binary run to its end (keel check, or a start that must fail); output as text."""
    return subprocess.run([keel_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def keel_refuses(config_path) -> str:
    """keel started with config_path stops with an error: its output."""
    res = run_keel("--config", config_path, timeout=10)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    return out


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if any(c in r for c in ".eEn") else r + ".0"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot encode {v!r} as TOML")


def to_toml(cfg: dict) -> str:
    lines: list[str] = []

    def table(prefix, tbl):
        scalars = {k: v for k, v in tbl.items() if not isinstance(v, dict)}
        subs = {k: v for k, v in tbl.items() if isinstance(v, dict)}
        if prefix and (scalars or not subs):
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            if FLOAT_KEYS.match(k) and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in subs.items():
            table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", cfg)
    return "\n".join(lines).lstrip() + "\n"


def deep_merge(base: dict, over: dict) -> dict:
    """Merge `over` into a copy of `base`; a None value deletes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def default_config(pg: PgCluster, port: int) -> dict:
    cfg = {
        "keel": {
            "listen": f"{HOST}:{port}",
            "workers": 2,
            "auth_type": "scram-sha-256",
            "max_client_conn": 1000,
            "admin_users": ["app"],
            "log_level": os.environ.get("KEEL_TEST_LOG_LEVEL", "info"),
        },
        "pool": {
            "pool_mode": "transaction",
            "pool_size": 5,
            "min_pool_size": 0,
            "server_lifetime": 3600.0,
            "server_idle_timeout": 600.0,
            "client_idle_timeout": 0.0,
            "query_wait_timeout": 10.0,
            "server_connect_timeout": 5.0,
        },
        "databases": {"app": {"host": HOST, "port": pg.port, "dbname": "app"}},
        "users": {u: {"password": p} for u, p in PASSWORDS.items()},
    }
    # KEEL_TEST_IO_URING_SENDS=0 or 1: every keel without or with sends batched in io_uring
    # (unset: keel's default, on).
    if os.environ.get("KEEL_TEST_IO_URING_SENDS") in ("0", "1"):
        cfg["keel"]["io_uring_sends"] = os.environ["KEEL_TEST_IO_URING_SENDS"] == "1"
    # KEEL_TEST_IO_URING_READS=0 or 1: the same for reads prefetched through io_uring.
    if os.environ.get("KEEL_TEST_IO_URING_READS") in ("0", "1"):
        cfg["keel"]["io_uring_reads"] = os.environ["KEEL_TEST_IO_URING_READS"] == "1"
    return cfg


SANITIZER_PATTERNS = [
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
    "WARNING: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
    "ERROR: MemorySanitizer",
]


class Keel:
    """A keel process under test."""

    def __init__(self, pg: PgCluster, workdir: Path, config=None, *, args=None,
                 port=None, env=None, name="keel"):
        self.pg = pg
        self.name = name
        self.host = HOST
        self.workdir = Path(workdir)
        self.log_path = self.workdir / f"{name}.log"
        self.config_path = None
        self.config = None
        self.clients: list = []          # RawClient / psycopg2 connections to close
        self.proc: subprocess.Popen | None = None
        self.killed_by_watchdog = False
        if args is not None:             # CLI (quick start) mode
            if port is None:
                raise ValueError("port= is required with args=")
            self.port = port
            self.cmd = [keel_bin(), *map(str, args)]
        else:
            if isinstance(config, str):
                m = re.search(r'^\s*listen\s*=\s*"[^"]*:(\d+)"', config, re.M)
                if not m:
                    raise ValueError("TOML text must contain listen = \"host:port\"")
                self.port = int(m.group(1))
                text = config
            else:
                self.port = port or free_port()
                self.config = deep_merge(default_config(pg, self.port), config or {})
                text = to_toml(self.config)
            self.config_path = self.workdir / f"{name}.toml"
            self.config_path.write_text(text)
            self.cmd = [keel_bin(), "--config", str(self.config_path)]
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.env.update(env or {})

    def start(self, wait=True, timeout=10.0):
        if not os.path.exists(self.cmd[0]):
            raise FileNotFoundError(f"keel binary not found: {self.cmd[0]} (set KEEL_BIN)")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env,
                                     cwd=self.workdir)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"keel exited with code {self.proc.returncode} during "
                                     f"startup:\n{self.log_tail()}")
            if port_accepts(self.host, self.port):
                return
            time.sleep(0.02)
        raise AssertionError(f"keel did not accept connections on port {self.port} "
                             f"within {timeout}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=60) -> str:
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:]) or "(keel log is empty)"

    def kill(self):
        if self.alive():
            self.proc.kill()

    def close_clients(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        self.clients.clear()

    def stop(self) -> list[str]:
        """Stop keel; return a list of problems found (empty = fine)."""
        problems = []
        if self.proc is None:
            return problems
        self.close_clients()
        rc = self.proc.poll()
        if rc is not None:
            if self.killed_by_watchdog:
                problems.append(f"{self.name}: killed by the test watchdog (test hung)")
            else:
                problems.append(f"{self.name}: process died during the test (exit code {rc})")
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(5)
                if rc not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
                    problems.append(f"{self.name}: exit code {rc} after SIGTERM")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append(f"{self.name}: did not exit within 5 s of SIGTERM")
        self._log.close()
        log = self.log_text()
        hits = [p for p in SANITIZER_PATTERNS if p in log]
        if hits:
            problems.append(f"{self.name}: sanitizer report in log ({', '.join(hits)})")
        if problems:
            problems.append(f"--- tail of {self.log_path} ---\n{self.log_tail(80)}")
        return problems


class DirectTarget:
    """Stand-in for Keel that points straight at PostgreSQL.

    Used with KEEL_TEST_DIRECT=1 to validate tests' client-side expectations
    against a real server (keel-specific tests will fail in that mode)."""

    def __init__(self, pg, *a, **kw):
        self.pg, self.host, self.port, self.name = pg, pg.host, pg.port, "direct"
        self.clients, self.proc, self.killed_by_watchdog = [], None, False
        self.config = None

    def start(self, *a, **kw):
        return self

    def alive(self):
        return True

    def log_tail(self, n=60):
        return "(direct mode: no keel)"

    kill = lambda self: None

    def stop(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        return []


# --------------------------------------------------------------------------
# client helpers
# --------------------------------------------------------------------------

def connect(keel, user="app", password="apppass", dbname="app", **kw):
    """psycopg2 connection through keel (autocommit=... accepted)."""
    autocommit = kw.pop("autocommit", False)
    kw.setdefault("connect_timeout", 10)
    if password is not None:
        kw["password"] = password
    conn = psycopg2.connect(host=keel.host, port=keel.port, user=user, dbname=dbname, **kw)
    conn.autocommit = autocommit
    keel.clients.append(conn)
    return conn


def q1(conn, sql, params=None):
    """Execute and return the first column of the first row."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def raw(keel, timeout=10.0) -> "RawClient":
    c = RawClient(keel.host, keel.port, timeout=timeout)
    keel.clients.append(c)
    return c


def raw_login(keel, user="app", password="apppass", database="app", **kw) -> "RawClient":
    c = raw(keel)
    c.login(user, password, database, **kw)
    return c


class ConnSampler:
    """Background thread sampling the number of server connections of `user`
    on the cluster (directly, via pg_stat_activity) until stopped."""

    def __init__(self, pg: PgCluster, user="app", interval=0.01):
        self.pg, self.user, self.interval = pg, user, interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._conn = pg.connect()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with self._conn.cursor() as cur:
            while not self._stop.is_set():
                cur.execute("select count(*) from pg_stat_activity where "
                            "backend_type = 'client backend' and usename = %s", [self.user])
                self.samples.append(cur.fetchone()[0])
                self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self._conn.close()

    @property
    def max(self):
        return max(self.samples, default=0)


def run_threads(fn, n, timeout=60):
    """Run fn(i) in n threads started together; return (results, errors)."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def body(i):
        try:
            barrier.wait(timeout)
            results[i] = fn(i)
        except BaseException as e:   # noqa: BLE001 - reported to the test
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    hung = [i for i, t in enumerate(threads) if t.is_alive()]
    if hung:
        errors.append(("hung", hung))
    return results, errors
