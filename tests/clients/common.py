"""What every driver must observe, whatever the target.

Each driver runs the same cases and reports an observation dict (Python drivers
return it, node and Java programs print it as JSON).  `check` compares it with
the expectations below, which are the same for every driver and every target:
PostgreSQL itself (`direct`) is the oracle, and keel must be invisible.

The data used by the cases is defined here and, identically, in
node/common.js and java/JdbcCases.java.
"""
from __future__ import annotations

import hashlib

# 1 MiB of text: a 16-character pattern (with two non-ASCII characters)
BIG_TEXT = "abcdefghijklm\u00e9\u2713\n" * 65536
# 1 MiB of bytea: every byte value
BIG_BYTEA = bytes(range(256)) * 4096
UNICODE = "Gr\u00fc\u00dfe, \u4e16\u754c! \U0001F418 \u2014 \u00bd \u2211 tab\there back\\slash 'q' \"dq\""
INT_ARRAY = [1, 2, None, 3]
TEXT_ARRAY = ["a", "b,c", '"q"', None, "\u00e9\U0001F418", "", "NULL", "{x}"]
INT_ARRAY_2D = [[1, 2], [3, 4]]
JSON_DOC = {"a": [1, 2, {"b": None}], "u": "\u00e9\U0001F418", "n": 1.5, "t": True}

PREPARED_EXECUTIONS = 300
CONCURRENT_CLIENTS = 50
COPY_ROWS = 1000


def md5(b: bytes | str) -> str:
    if isinstance(b, str):
        b = b.encode()
    return hashlib.md5(b).hexdigest()


def copy_text() -> str:
    """The COPY text-format data every driver sends (and must get back)."""
    lines = []
    for i in range(1, COPY_ROWS + 1):
        note = "\\N" if i % 10 == 0 else f"note {i} \u00e9"
        lines.append(f"{i}\tname_{i}\t{note}\n")
    return "".join(lines)


EXPECT = {
    # SCRAM login works, a wrong password gets 28P01, an unknown database 3D000
    "login": {
        "select_one": 1,
        "current_user": "app",
        "wrong_password": "28P01",
        "unknown_database": "3D000",
        # "server_version" is added at run time (PostgreSQL's own value)
    },
    "params": {
        "sum": 5,                         # $1::int + $2::int with 2, 3
        "echo_text": "O'Reilly \"dq\" ; -- not a comment $1",
        "range_count": 10,                # pgbench_accounts aid between 10 and 19
        "bool": True,
        "float": 1.5,
        "numeric_text": "12345678901234567890.000000001",
        "bigint_text": "9007199254740993",
        "null_is_null": True,
        "rows": [[1, "r1"], [2, "r2"], [3, "r3"]],
    },
    # one connection runs PREPARED_EXECUTIONS executions of one prepared
    # statement while three others hold transactions on the same pool
    "prepared": {
        "executions": PREPARED_EXECUTIONS,
        "mismatches": 0,
        "in_tx": [2000, "tx!"],
        "div0": "22012",
        "after_error": 2,
        "reuse_after_error": [4, "again!"],
    },
    "transactions": {
        "after_commit": [1, 3],           # savepoint rolled back, the rest committed
        "after_rollback": [1, 3],
        "div0": "22012",
        "in_failed": "25P02",
        "after_failed": [1, 3],
        "savepoint_dup": "23505",
        "final": [1, 3, 6],
    },
    "errors": {
        "unique": "23505",
        "undefined_table": "42P01",
        "div0": "22012",
        "syntax": "42601",
        "undefined_column": "42703",
        "raised": "22023",
        "after": 1,
    },
    "types": {
        "null_text": None,
        "null_int": None,
        "unicode": UNICODE,
        "big_text_len": len(BIG_TEXT),
        "big_text_md5": md5(BIG_TEXT),
        "big_text_server_md5": md5(BIG_TEXT),
        "bytea_len": len(BIG_BYTEA),
        "bytea_md5": md5(BIG_BYTEA),
        "bytea_server_md5": md5(BIG_BYTEA),
        "int_array": INT_ARRAY,
        "text_array": TEXT_ARRAY,
        "int_array_2d": INT_ARRAY_2D,
        "json": JSON_DOC,
        "jsonb": JSON_DOC,
        "table_text_md5": md5(BIG_TEXT),
        "table_bytea_md5": md5(BIG_BYTEA),
        "table_unicode": UNICODE,
        "table_text_array": TEXT_ARRAY,
        "table_jsonb": JSON_DOC,
    },
    "copy": {
        "count": COPY_ROWS,
        "nulls": COPY_ROWS // 10,
        "sum": COPY_ROWS * (COPY_ROWS + 1) // 2,
        "copy_out_md5": md5(copy_text()),
        "bad_row": "22P02",
        "after": 1,
    },
    "concurrency": {
        "clients": CONCURRENT_CLIENTS,
        "ok": CONCURRENT_CLIENTS,
        "rows": CONCURRENT_CLIENTS,
    },
    "cancel": {
        "sqlstate": "57014",
        "after": 1,
        "quick": True,                    # the sleep ended well before its 30 s
    },
    "statement_timeout": {
        "show": "300ms",
        "sqlstate": "57014",
        "after": 1,
        "other_show": "0",                # a connection without the parameter
    },
    "notify": {
        "channel_ok": True,
        "payloads": ["hello \u00e9", "second"],
    },
}

# the cases each driver runs (psql and pgbench have their own)
DRIVER_CASES = ["login", "params", "prepared", "transactions", "errors", "types",
                "copy", "concurrency", "cancel", "statement_timeout", "notify"]


def check(case: str, observed: dict, *, extra: dict | None = None, absent=()):
    """Assert that `observed` matches EXPECT[case] (plus `extra`).

    `absent` names keys a driver cannot observe (each use says why)."""
    assert isinstance(observed, dict), f"{case}: observation is not a dict: {observed!r}"
    expected = dict(EXPECT[case])
    expected.update(extra or {})
    for k in absent:
        expected.pop(k, None)
    missing = sorted(set(expected) - set(observed))
    wrong = {k: (observed[k], expected[k]) for k in expected
             if k in observed and observed[k] != expected[k]}
    # long values (1 MiB) are never echoed in full: only md5s and lengths are
    msgs = []
    if missing:
        msgs.append(f"missing observations: {missing}")
    for k, (got, want) in sorted(wrong.items()):
        g, w = repr(got), repr(want)
        msgs.append(f"{k}: got {g[:300]}, expected {w[:300]}")
    assert not msgs, f"case {case}:\n  " + "\n  ".join(msgs)
