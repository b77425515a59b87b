"""pgbench (PostgreSQL 15's own), select-only, in each query mode:
simple (Query), extended (unnamed statements), prepared (named statements
P_0.. per client); also 50 clients at once and a new connection (SCRAM login)
per transaction."""
import re
import subprocess

import pytest

import harness
from conftest import Target

PGBENCH = str(harness.PG_BIN / "pgbench")


def pgbench(run_proc, target, *args, password=None):
    cmd = [PGBENCH, "-n", "-h", target.host, "-p", str(target.port), "-U", target.user,
           *map(str, args), target.database]
    env = harness.clean_env(PGPASSWORD=password or target.password, PGCONNECT_TIMEOUT=10)
    return run_proc(cmd, env=env)


def processed(res):
    m = re.search(r"number of transactions actually processed: (\d+)(?:/(\d+))?", res.stdout)
    f = re.search(r"number of failed transactions: (\d+)", res.stdout)
    return (int(m.group(1)) if m else None, int(f.group(1)) if f else None)


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only(target, run_proc, mode):
    clients, per_client = 8, 250
    res = pgbench(run_proc, target, "-S", "-M", mode, "-c", clients, "-j", 2, "-t", per_client)
    done, failed = processed(res)
    assert res.returncode == 0, f"pgbench exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert (done, failed) == (clients * per_client, 0), f"{res.stdout}\n{res.stderr}"


@pytest.mark.parametrize("mode", ["extended", "prepared"])
def test_pgbench_50_clients(target, run_proc, mode):
    clients, per_client = 50, 40
    res = pgbench(run_proc, target, "-S", "-M", mode, "-c", clients, "-j", 2, "-t", per_client)
    done, failed = processed(res)
    assert res.returncode == 0, f"pgbench exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert (done, failed) == (clients * per_client, 0), f"{res.stdout}\n{res.stderr}"


def test_pgbench_connect_per_transaction(target, run_proc):
    """-C: every transaction logs in anew (SCRAM each time)."""
    clients, per_client = 8, 25
    res = pgbench(run_proc, target, "-S", "-C", "-M", "extended", "-c", clients, "-j", 2,
                  "-t", per_client)
    done, failed = processed(res)
    assert res.returncode == 0, f"pgbench exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert (done, failed) == (clients * per_client, 0), f"{res.stdout}\n{res.stderr}"


def test_pgbench_tpcb_like(target, run_proc):
    """The default read-write script (BEGIN; UPDATE x3; SELECT; INSERT; END)
    with named prepared statements and more clients than keel-tx has server
    connections. One thread per client: pgbench 15 prepares each statement with a blocking
    PQprepare at its first use, so with several clients per thread a client waiting for a server
    connection would stall the thread's other clients, one of which holds that connection in its
    transaction (a deadlock of pgbench's own, on any pooler with fewer connections than clients)."""
    clients, per_client = 8, 50
    res = pgbench(run_proc, target, "-M", "prepared", "-c", clients, "-j", clients, "-t", per_client)
    done, failed = processed(res)
    assert res.returncode == 0, f"pgbench exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert (done, failed) == (clients * per_client, 0), f"{res.stdout}\n{res.stderr}"


def test_pgbench_wrong_password(target, pg, run_proc):
    """libpq shows no SQLSTATE for a failed login: pgbench's report must be
    the one PostgreSQL itself causes."""
    def attempt(t):
        res = pgbench(run_proc, t, "-S", "-t", 1, password="wrong")
        return res.returncode, re.sub(r"port \d+ failed", "port N failed", res.stderr)
    direct = attempt(Target("direct", pg.host, pg.port, pg))
    assert direct[0] != 0
    assert attempt(target) == direct
