"""node-postgres (npm pg) and postgres.js (npm postgres) on node: each case
is one `node <driver>_cases.js CASE SPEC` run that prints its observations
as JSON (see node/common.js); they are checked against the same
expectations as every other driver.

The packages come from node/package-lock.json (`npm ci`, done by
scripts/setup; done here too if node_modules is missing or stale)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from common import DRIVER_CASES, check
from conftest import PROC_TIMEOUT

NODE_DIR = Path(__file__).resolve().parent / "node"
DRIVERS = {"node-pg": "pg_cases.js", "postgres.js": "postgres_cases.js"}


@pytest.fixture(scope="session")
def node_modules():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/setup installs it)", pytrace=False)
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        res = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                             capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{res.stdout}\n{res.stderr}",
                        pytrace=False)
    return node


def run_case(run_proc, node, target, driver, case, uid):
    spec = target.spec(uid=uid, timeout=int(PROC_TIMEOUT - 5))
    res = run_proc([node, DRIVERS[driver], case, json.dumps(spec)], cwd=NODE_DIR,
                   env={**os.environ, "NODE_NO_WARNINGS": "1"})
    assert res.returncode == 0, (f"{driver} case {case} exited {res.returncode}\n"
                                 f"--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}")
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith('{"observed"')]
    assert lines, f"{driver} case {case} printed no result:\n{res.stdout}\n{res.stderr}"
    return json.loads(lines[-1])["observed"]


@pytest.mark.parametrize("case", DRIVER_CASES)
@pytest.mark.parametrize("driver", list(DRIVERS))
def test_node(target, pg, uid, run_proc, pool_busy, node_modules, driver, case):
    extra = {}
    if case == "login":
        extra["server_version"] = pg.scalar("show server_version")
    if case == "prepared":
        with pool_busy():
            obs = run_case(run_proc, node_modules, target, driver, case, uid)
    else:
        obs = run_case(run_proc, node_modules, target, driver, case, uid)
    check(case, obs, extra=extra)
