"""pytest fixtures for keel integration tests.

Fixtures
  pg          session: PostgreSQL 15 primary (roles app/md5user/plainuser,
              database app with pgbench tables), on a free port
  replica     session: streaming replica of pg (started on first use)
  start_keel  function: factory start_keel(config=None, *, pool_mode=None,
              args=None, port=None, env=None, wait=True) -> harness.Keel
              config is a dict deep-merged over harness.default_config()
              (None values delete keys) or a complete TOML text.

Environment
  KEEL_BIN           keel binary (default build/dev/keel, relative to the repo)
  KEEL_TEST_TIMEOUT  per-test watchdog in seconds (default 120)
  KEEL_TEST_IO_URING_SENDS=0|1  run keel with keel.io_uring_sends = false|true (unset: its default)
  KEEL_TEST_IO_URING_READS=0|1  the same for keel.io_uring_reads
  KEEL_TEST_DIRECT=1 point every "keel" at PostgreSQL itself (to validate the
                     client side of the tests; keel-specific tests then fail)
"""
import faulthandler
import os
import signal
import sys
import threading

import pytest

import harness

TEST_TIMEOUT = float(os.environ.get("KEEL_TEST_TIMEOUT", "120"))
DIRECT = os.environ.get("KEEL_TEST_DIRECT") == "1"

MODES = ["transaction", "session"]


def pytest_configure(config):
    # `timeout` (scripts/test) sends SIGTERM: turn it into KeyboardInterrupt
    # so that fixtures tear down (keel stopped, PostgreSQL stopped, dirs removed)
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)


@pytest.fixture(scope="session")
def pg():
    primary = harness.make_primary()
    state = {"primary": primary, "replica": None}
    primary._state = state
    yield primary
    harness.destroy_clusters(state["replica"], primary)


@pytest.fixture(scope="session")
def replica(pg):
    rep = harness.make_replica(pg)
    pg._state["replica"] = rep
    return rep


@pytest.fixture
def start_keel(pg, tmp_path, request):
    instances = []
    request.node._keel_instances = instances

    def factory(config=None, *, pool_mode=None, args=None, port=None, env=None,
                wait=True, name=None):
        if isinstance(config, dict) or config is None:
            config = dict(config or {})
            if pool_mode is not None:
                config["pool"] = {**config.get("pool", {}), "pool_mode": pool_mode}
        cls = harness.DirectTarget if DIRECT else harness.Keel
        k = cls(pg, tmp_path, config, args=args, port=port, env=env,
                name=name or f"keel{len(instances)}")
        instances.append(k)
        return k.start(wait=wait)

    yield factory

    problems = []
    for k in instances:
        problems += k.stop()
    pg.wait_clean()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Watchdog: if a test hangs, dump stacks and kill its keel processes so
    that blocked sockets return and the test fails instead of hanging."""
    def fire():
        sys.__stderr__.write(f"\n*** {item.nodeid} exceeded {TEST_TIMEOUT}s; "
                             "killing its keel processes\n")
        faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        for k in getattr(item, "_keel_instances", []):
            k.killed_by_watchdog = True
            k.kill()

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
