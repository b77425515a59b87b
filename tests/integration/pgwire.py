"""A minimal PostgreSQL v3 wire-protocol client for tests.

RawClient speaks the protocol over a plain TCP socket (startup, SSLRequest,
GSSENCRequest, CancelRequest, cleartext/md5/SCRAM-SHA-256 authentication,
simple and extended query, COPY, FunctionCall) so that tests can control
every byte, including invalid ones.  Frontend messages are built by small
functions returning bytes (Q, P, B, E, D, C, S, H, X, ...) so they can be
pipelined: c.send(P(sql) + B() + E() + S()).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
import time

PROTO_3_0 = 3 << 16
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

def short(obj, limit=1500) -> str:
    """repr() cut to `limit` characters, for assertion messages."""
    r = repr(obj)
    return r if len(r) <= limit else r[:limit] + f"... ({len(r)} chars)"


class PgError(Exception):
    """An ErrorResponse; fields keyed by their one-letter codes."""

    def __init__(self, fields: dict):
        self.fields = fields
        super().__init__(f"{self.severity} {self.code}: {fields.get('M')}")

    @property
    def code(self):
        return self.fields.get("C")

    @property
    def severity(self):
        return self.fields.get("V") or self.fields.get("S")


class Closed(Exception):
    """The server closed the connection."""


def cstr(s) -> bytes:
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def msg(t: str, payload: bytes = b"") -> bytes:
    return t.encode() + struct.pack("!i", len(payload) + 4) + payload


def parse_fields(payload: bytes) -> dict:
    out, i = {}, 0
    while i < len(payload) and payload[i] != 0:
        code = chr(payload[i])
        j = payload.index(b"\0", i + 1)
        out[code] = payload[i + 1:j].decode(errors="replace")
        i = j + 1
    return out


def startup_packet(params: dict, version=PROTO_3_0) -> bytes:
    body = struct.pack("!i", version)
    for k, v in params.items():
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


# frontend messages (bytes, so tests can pipeline them)
def Q(sql):
    return msg("Q", cstr(sql))


def P(sql, name="", oids=()):
    return msg("P", cstr(name) + cstr(sql) + struct.pack(f"!h{len(oids)}i", len(oids), *oids))


def B(params=(), stmt="", portal="", param_formats=(), result_formats=()):
    out = cstr(portal) + cstr(stmt)
    out += struct.pack(f"!h{len(param_formats)}h", len(param_formats), *param_formats)
    out += struct.pack("!h", len(params))
    for p in params:
        if p is None:
            out += struct.pack("!i", -1)
        else:
            pb = p.encode() if isinstance(p, str) else p
            out += struct.pack("!i", len(pb)) + pb
    out += struct.pack(f"!h{len(result_formats)}h", len(result_formats), *result_formats)
    return msg("B", out)


def E(portal="", max_rows=0):
    return msg("E", cstr(portal) + struct.pack("!i", max_rows))


def D(kind="S", name=""):
    return msg("D", kind.encode() + cstr(name))


def C(kind="S", name=""):
    return msg("C", kind.encode() + cstr(name))


def S():
    return msg("S")


def H():
    return msg("H")


def X():
    return msg("X")


def copy_data(data: bytes):
    return msg("d", data)


def copy_done():
    return msg("c")


def copy_fail(reason="client abort"):
    return msg("f", cstr(reason))


def function_call(oid, args=(), arg_formats=(1,), result_format=1):
    out = struct.pack("!i", oid)
    out += struct.pack(f"!h{len(arg_formats)}h", len(arg_formats), *arg_formats)
    out += struct.pack("!h", len(args))
    for a in args:
        out += struct.pack("!i", len(a)) + a
    out += struct.pack("!h", result_format)
    return msg("F", out)


def decode_datarow(payload: bytes):
    (n,) = struct.unpack_from("!h", payload)
    i, row = 2, []
    for _ in range(n):
        (ln,) = struct.unpack_from("!i", payload, i)
        i += 4
        if ln < 0:
            row.append(None)
        else:
            row.append(payload[i:i + ln])
            i += ln
    return row


def decode_rowdesc(payload: bytes):
    (n,) = struct.unpack_from("!h", payload)
    i, cols = 2, []
    for _ in range(n):
        j = payload.index(b"\0", i)
        cols.append(payload[i:j].decode())
        i = j + 1 + 18
    return cols


class Result:
    """Everything received up to (and including) a ReadyForQuery."""

    def __init__(self, msgs):
        self.msgs = msgs
        self.types = [t for t, _ in msgs]
        self.sets = []        # [{"columns": [...], "rows": [[str|None]], "tag": str}]
        self.errors, self.notices, self.params = [], [], {}
        self.status = None
        cur = None
        for t, p in msgs:
            if t == "T":
                cur = {"columns": decode_rowdesc(p), "rows": [], "tag": None}
                self.sets.append(cur)
            elif t == "D":
                if cur is None or cur["tag"] is not None:
                    cur = {"columns": None, "rows": [], "tag": None}
                    self.sets.append(cur)
                cur["rows"].append([None if v is None else v.decode(errors="replace")
                                    for v in decode_datarow(p)])
            elif t == "C":
                tag = p.rstrip(b"\0").decode()
                if cur is not None and cur["tag"] is None:
                    cur["tag"] = tag
                else:
                    self.sets.append({"columns": None, "rows": [], "tag": tag})
                cur = None
            elif t == "E":
                self.errors.append(parse_fields(p))
                cur = None
            elif t == "N":
                self.notices.append(parse_fields(p))
            elif t == "S":
                k, v = p.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif t == "Z":
                self.status = chr(p[0])

    @property
    def rows(self):
        return [r for s in self.sets for r in s["rows"]]

    def scalar(self):
        return self.rows[0][0]

    def check(self):
        if self.errors:
            raise PgError(self.errors[0])
        return self


class RawClient:
    """Minimal PostgreSQL v3 frontend over a plain TCP socket."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.params: dict[str, str] = {}
        self.backend_key = None          # (pid, secret) as unsigned ints
        self.negotiate = None            # (newest_minor, [options]) if 'v' was received
        self.auth_codes: list[int] = []  # authentication request codes seen
        self.notices, self.notifications = [], []
        self.status = None
        self.user = None

    # -- bytes -------------------------------------------------------------
    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_msg(self, t, payload=b""):
        self.send(msg(t, payload))

    def _fill(self, n, timeout):
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except ConnectionResetError as e:
                raise Closed("connection reset") from e
            if not chunk:
                raise Closed("EOF")
            self.buf += chunk

    def recv_exact(self, n, timeout=None) -> bytes:
        self._fill(n, timeout)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_msg(self, timeout=None):
        """Next backend message as (type, payload)."""
        self._fill(5, timeout)
        t = chr(self.buf[0])
        (ln,) = struct.unpack_from("!i", self.buf, 1)
        if ln < 4:
            raise AssertionError(f"bad message length {ln} for type {t!r}")
        self._fill(1 + ln, timeout)
        payload = bytes(self.buf[5:1 + ln])
        del self.buf[:1 + ln]
        if t == "A":
            (pid,) = struct.unpack_from("!i", payload)
            chan, pl = payload[4:].split(b"\0")[:2]
            self.notifications.append((pid, chan.decode(), pl.decode()))
        return t, payload

    def read_until_ready(self, timeout=None) -> Result:
        msgs = []
        while True:
            t, p = self.read_msg(timeout)
            msgs.append((t, p))
            if t == "Z":
                self.status = chr(p[0])
                return Result(msgs)

    def expect_closed(self, timeout=5.0):
        """Read until the server closes the connection; return the messages seen.

        Fails (AssertionError) if the connection stays open for `timeout` s."""
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s; got {short(msgs)}")
            try:
                msgs.append(self.read_msg(left))
            except Closed:
                return msgs
            except (socket.timeout, TimeoutError):
                raise AssertionError(f"connection still open after {timeout}s; got {short(msgs)}")
            except AssertionError:          # garbage from the server side
                return msgs

    def read_all(self, timeout=5.0) -> bytes:
        """All bytes until the server closes the connection (raw, unparsed)."""
        deadline = time.monotonic() + timeout
        data = bytes(self.buf)
        self.buf.clear()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s; got {short(data)}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                return data
            data += chunk

    def close(self, abort=False):
        """Close the socket; abort=True sends a TCP RST."""
        if self.sock is None:
            return
        if abort:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.sock.close()
        finally:
            self.sock = None

    # -- startup -----------------------------------------------------------
    def ssl_request(self) -> bytes:
        self.send(struct.pack("!ii", 8, SSL_REQUEST))
        return self.recv_exact(1)

    def gssenc_request(self) -> bytes:
        self.send(struct.pack("!ii", 8, GSSENC_REQUEST))
        return self.recv_exact(1)

    def send_startup(self, user="app", database="app", params=None, version=PROTO_3_0):
        p = {}
        if user is not None:
            p["user"] = user
        if database is not None:
            p["database"] = database
        p.update(params or {})
        self.user = user
        self.send(startup_packet(p, version))

    def login(self, user="app", password="apppass", database="app", params=None,
              version=PROTO_3_0):
        """Full startup + authentication; returns the login Result.

        Raises PgError if the server sends an ErrorResponse."""
        self.send_startup(user, database, params, version)
        return self.authenticate(password)

    def authenticate(self, password):
        msgs = []
        while True:
            t, p = self.read_msg()
            msgs.append((t, p))
            if t == "E":
                raise PgError(parse_fields(p))
            if t == "v":
                (minor, n) = struct.unpack_from("!ii", p)
                opts = [o.decode() for o in p[8:].split(b"\0")[:n]]
                self.negotiate = (minor, opts)
            elif t == "R":
                (code,) = struct.unpack_from("!i", p)
                self.auth_codes.append(code)
                if code == 0:
                    pass
                elif code == 3:
                    self._need(password, code)
                    self.send_msg("p", cstr(password))
                elif code == 5:
                    self._need(password, code)
                    salt = p[4:8]
                    inner = hashlib.md5((password + self.user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send_msg("p", cstr("md5" + outer))
                elif code == 10:
                    self._need(password, code)
                    mechs = [m.decode() for m in p[4:].split(b"\0") if m]
                    self._scram(password, mechs, msgs)
                else:
                    raise AssertionError(f"unsupported auth request {code}")
            elif t == "S":
                k, v = p.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif t == "K":
                self.backend_key = struct.unpack("!II", p[:8])
            elif t == "N":
                self.notices.append(parse_fields(p))
            elif t == "Z":
                self.status = chr(p[0])
                return Result(msgs)

    @staticmethod
    def _need(password, code):
        if password is None:
            raise AssertionError(f"server asked for a password (auth code {code}) but none given")

    def _scram(self, password, mechs, msgs):
        if "SCRAM-SHA-256" not in mechs:
            raise AssertionError(f"no SCRAM-SHA-256 in {mechs}")
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n=,r={nonce}"
        first = ("n,," + first_bare).encode()
        self.send_msg("p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first)
        t, p = self.read_msg()
        msgs.append((t, p))
        if t == "E":
            raise PgError(parse_fields(p))
        assert t == "R" and struct.unpack_from("!i", p)[0] == 11, (t, p)
        self.auth_codes.append(11)
        server_first = p[4:].decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(nonce), "server nonce does not extend ours"
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        final_bare = f"c=biws,r={attrs['r']}"
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        auth_msg = f"{first_bare},{server_first},{final_bare}".encode()
        sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.send_msg("p", f"{final_bare},p={base64.b64encode(proof).decode()}".encode())
        t, p = self.read_msg()
        msgs.append((t, p))
        if t == "E":
            raise PgError(parse_fields(p))
        assert t == "R" and struct.unpack_from("!i", p)[0] == 12, (t, p)
        self.auth_codes.append(12)
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expected = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
        got = dict(kv.split("=", 1) for kv in p[4:].decode().split(","))
        assert got.get("v", "").encode() == expected, "bad SCRAM server signature"

    # -- queries -------------------------------------------------------------
    def query(self, sql, timeout=None) -> Result:
        self.send(Q(sql))
        return self.read_until_ready(timeout)

    def query_ok(self, sql, timeout=None) -> Result:
        return self.query(sql, timeout).check()

    def scalar(self, sql):
        return self.query_ok(sql).scalar()


def cancel_request(key) -> bytes:
    """A CancelRequest packet for key = (pid, secret)."""
    pid, secret = key
    return struct.pack("!iiII", 16, CANCEL_REQUEST, pid & 0xFFFFFFFF, secret & 0xFFFFFFFF)


def send_cancel(host, port, key, timeout=5.0):
    """Send a CancelRequest on a new connection; wait for the server to close it."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cancel_request(key))
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass

