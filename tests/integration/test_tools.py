"""Real clients through keel: pgbench and psql."""
import re
import subprocess
import textwrap

import pytest

from conftest import MODES
from harness import PG_BIN, ConnSampler, clean_env

POOL_SIZE = 5


def pgbench(keel, *args, timeout=180):
    cmd = [str(PG_BIN / "pgbench"), "-h", keel.host, "-p", str(keel.port), "-U", "app",
           "-n", *map(str, args), "app"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env=clean_env(PGPASSWORD="apppass"))
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"pgbench exit {res.returncode}:\n{out[-4000:]}"
    return out


def parse_pgbench(out):
    m = re.search(r"number of transactions actually processed: (\d+)/(\d+)", out)
    assert m, out
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert failed, out
    clients = re.search(r"number of clients: (\d+)", out)
    return {"processed": int(m.group(1)), "expected": int(m.group(2)),
            "failed": int(failed.group(1)), "clients": int(clients.group(1))}


@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_pgbench_many_clients_small_pool(start_keel, pg, protocol):
    k = start_keel({"pool": {"pool_size": POOL_SIZE, "query_wait_timeout": 60.0}},
                   pool_mode="transaction")
    with ConnSampler(pg, interval=0.02) as sampler:
        out = pgbench(k, "-c", 50, "-j", 2, "-t", 40, "-M", protocol)
    r = parse_pgbench(out)
    assert r == {"processed": 2000, "expected": 2000, "failed": 0, "clients": 50}, out
    assert 1 <= sampler.max <= POOL_SIZE


@pytest.mark.parametrize("pool_mode", MODES)
def test_pgbench_connect_per_transaction(start_keel, pg, pool_mode):
    k = start_keel({"pool": {"pool_size": POOL_SIZE, "query_wait_timeout": 60.0}},
                   pool_mode=pool_mode)
    with ConnSampler(pg, interval=0.02) as sampler:
        out = pgbench(k, "-C", "-c", 8, "-j", 2, "-t", 50)
    r = parse_pgbench(out)
    assert r == {"processed": 400, "expected": 400, "failed": 0, "clients": 8}, out
    assert 1 <= sampler.max <= POOL_SIZE


def test_pgbench_select_only_extended(start_keel):
    k = start_keel({"pool": {"pool_size": POOL_SIZE}}, pool_mode="transaction")
    r = parse_pgbench(pgbench(k, "-S", "-M", "extended", "-c", 10, "-j", 2, "-t", 200))
    assert (r["processed"], r["failed"]) == (2000, 0)


PSQL_SCRIPT = textwrap.dedent("""\
    \\set ON_ERROR_STOP 1
    select 1 as one;
    begin;
    create temp table psql_t (a int, b text);
    copy psql_t from stdin;
    1\tone
    2\ttwo
    \\.
    insert into psql_t values (3, 'three');
    select a, b from psql_t order by a;
    \\copy (select a from psql_t order by a desc) to stdout
    commit;
    select count(*) as n, sum(a) as s from generate_series(1, 10) a \\gset
    select :n * 2 as doubled, :s as s;
    select $$dollar 'quoted'$$, E'tab\\there', null is null;
    select 'done';
    """)

PSQL_EXPECTED = textwrap.dedent("""\
    1
    1|one
    2|two
    3|three
    3
    2
    1
    20|55
    dollar 'quoted'|tab\there|t
    done
    """)


def psql(keel, script, *extra):
    cmd = [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
           "-h", keel.host, "-p", str(keel.port), "-U", "app", "-d", "app", *extra]
    return subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=60,
                          env=clean_env(PGPASSWORD="apppass"))


@pytest.mark.parametrize("pool_mode", MODES)
def test_psql_script(start_keel, pool_mode):
    k = start_keel(pool_mode=pool_mode)
    res = psql(k, PSQL_SCRIPT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == PSQL_EXPECTED, res.stdout + res.stderr


@pytest.mark.parametrize("pool_mode", MODES)
def test_psql_on_error_stop(start_keel, pool_mode):
    k = start_keel(pool_mode=pool_mode)
    res = psql(k, "select 'before';\nselect 1/0;\nselect 'after';\n")
    assert res.returncode == 3
    assert res.stdout == "before\n"
    assert "ERROR" in res.stderr
    res = psql(k, "", "-c", "select 'again'")
    assert (res.returncode, res.stdout) == (0, "again\n")
