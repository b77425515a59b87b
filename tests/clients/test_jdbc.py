"""pgjdbc (Debian's libpostgresql-jdbc-java) on the machine's Java.

java/JdbcCases.java is compiled once per run into a temporary directory; each
case is one JVM run printing its observations as JSON. Connections use
prepareThreshold=1, so every PreparedStatement is a named server-side
statement from its first execution on."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from common import DRIVER_CASES, check
from conftest import PROC_TIMEOUT

JAVA_DIR = Path(__file__).resolve().parent / "java"
JDBC_JAR = os.environ.get("KEEL_JDBC_JAR", "/usr/share/java/postgresql.jar")
# a short-lived JVM: start fast rather than run fast
JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k", "-Xmx512m"]


@pytest.fixture(scope="session")
def jdbc_classes(tmp_path_factory):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.fail("javac/java not found (scripts/setup installs default-jdk-headless)",
                    pytrace=False)
    if not os.path.exists(JDBC_JAR):
        pytest.fail(f"{JDBC_JAR} not found (scripts/setup installs libpostgresql-jdbc-java)",
                    pytrace=False)
    out = tmp_path_factory.mktemp("jdbc-classes")
    res = subprocess.run([javac, "-nowarn", "-encoding", "UTF-8", "-d", str(out), "-cp", JDBC_JAR,
                          str(JAVA_DIR / "JdbcCases.java")],
                         capture_output=True, text=True, timeout=180)
    if res.returncode != 0:
        pytest.fail(f"javac failed:\n{res.stdout}\n{res.stderr}", pytrace=False)
    return java, f"{out}:{JDBC_JAR}"


def run_case(run_proc, jdbc_classes, target, case, uid):
    java, cp = jdbc_classes
    cmd = [java, *JVM_FLAGS, "-cp", cp, "JdbcCases", case, target.host, str(target.port),
           target.database, target.user, target.password, uid, str(int(PROC_TIMEOUT - 5))]
    res = run_proc(cmd)
    assert res.returncode == 0, (f"JDBC case {case} exited {res.returncode}\n"
                                 f"--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}")
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith('{"observed"')]
    assert lines, f"JDBC case {case} printed no result:\n{res.stdout}\n{res.stderr}"
    return json.loads(lines[-1])["observed"]


@pytest.mark.parametrize("case", DRIVER_CASES)
def test_jdbc(target, pg, uid, run_proc, pool_busy, jdbc_classes, case):
    extra = {}
    if case == "login":
        extra["server_version"] = pg.scalar("show server_version")
    if case == "prepared":
        with pool_busy():
            obs = run_case(run_proc, jdbc_classes, target, case, uid)
    else:
        obs = run_case(run_proc, jdbc_classes, target, case, uid)
    if case == "types":
        # JDBC hands json/jsonb over as text
        for k in ("json", "jsonb", "table_jsonb"):
            obs[k] = json.loads(obs[k])
    check(case, obs, extra=extra)


def test_jdbc_batch_fetch(target, uid, run_proc, jdbc_classes):
    """addBatch/executeBatch (many Bind/Execute before one Sync) and
    setFetchSize in a transaction (a named portal suspended and resumed)."""
    obs = run_case(run_proc, jdbc_classes, target, "batch_fetch", uid)
    assert obs == {"batch_rows": 100, "fetched": 95, "fetched_sum": sum(range(5, 100))}, obs
