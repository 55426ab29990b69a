"""A JSON-RPC client for dlv's API v2 (net/rpc/jsonrpc over a stream socket).

Requests are ``{"method": "RPCServer.X", "params": [{...}], "id": N}``; each
response carries the id of its request, and responses are matched by id, so an
asynchronous call (e.g. ``Command continue``) may be answered after later ones.
Framing is streaming JSON: objects are cut from a buffer with
``json.JSONDecoder.raw_decode``, whatever the whitespace between them.

Every failure is a :class:`RPCError` with one line naming the method.
"""
from __future__ import annotations

import codecs
import itertools
import json
import select
import socket
import time
from typing import Any, Optional

from gdb_go_ext.errors import GoExtError

DEFAULT_TIMEOUT = 120.0


class RPCError(GoExtError):
    """dlv answered with an error, or the connection failed; one line."""

    def __init__(self, method: str, message: str):
        self.method = method
        self.message = message
        m = method if method.startswith("RPCServer.") or not method else "RPCServer." + method
        super().__init__(f"dlv {m}: {message}" if m else f"dlv: {message}")


class ConnectionLost(RPCError):
    """The socket was refused, closed or timed out."""


def parse_address(addr: str):
    """'unix:/path' -> (AF_UNIX, '/path'); 'host:port' -> (AF_INET, (host, port))."""
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[len("unix:"):]
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise GoExtError(f"bad dlv address {addr!r}: expected HOST:PORT or unix:PATH")
    host = host.strip("[]") or "127.0.0.1"
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, (host, int(port))


class Client:
    """One connection to a dlv API v2 server."""

    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT, connect_timeout: float = 10.0):
        self.address = address
        self.timeout = timeout
        fam, where = parse_address(address)
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(connect_timeout)
        try:
            self.sock.connect(where)
        except OSError as e:
            self.sock.close()
            raise ConnectionLost("", f"cannot connect to {address}: "
                                     f"{e.strerror or e}") from None
        if fam != socket.AF_UNIX:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._ids = itertools.count(1)
        self._buf = ""
        self._pos = 0
        self._tail: list = []
        self._tail_closed = False
        self._incomplete = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._decoder = json.JSONDecoder()
        self._pending: dict[int, dict] = {}   # answers that arrived for other ids
        self._methods: dict[int, str] = {}
        self.closed = False

    # --- wire
    def send(self, method: str, params: Optional[dict] = None) -> int:
        """Send a request without waiting; returns its id (see wait())."""
        if self.closed:
            raise ConnectionLost(method, "the connection is closed")
        if not method.startswith("RPCServer."):
            method = "RPCServer." + method
        rid = next(self._ids)
        msg = json.dumps({"method": method, "params": [params or {}], "id": rid},
                         separators=(",", ":")).encode()
        try:
            self.sock.sendall(msg)
        except OSError as e:
            self._lost()
            raise ConnectionLost(method, f"connection to dlv dropped ({e.strerror or e})") from None
        self._methods[rid] = method
        return rid

    def wait(self, rid: int, timeout: Optional[float] = None) -> Any:
        """The result of request rid, or RPCError."""
        method = self._methods.get(rid, "")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while rid not in self._pending:
            msg = self._read_message(method, deadline)
            mid = msg.get("id")
            if isinstance(mid, int):
                self._pending[mid] = msg
        msg = self._pending.pop(rid)
        self._methods.pop(rid, None)
        err = msg.get("error")
        if err:
            text = err if isinstance(err, str) else json.dumps(err)
            raise RPCError(method, " ".join(text.split()))
        return msg.get("result")

    def call(self, method: str, params: Optional[dict] = None, timeout: Optional[float] = None) -> Any:
        return self.wait(self.send(method, params), timeout)

    def _read_message(self, method: str, deadline: float) -> dict:
        """The next JSON object from the stream. Received text is joined and parsed only
        when it ends with '}' (a message may span many recv calls; several may share one)."""
        while True:
            if self._tail and self._tail_closed:
                self._buf = self._buf[self._pos:] + "".join(self._tail)
                self._pos = 0
                self._tail = []
                self._incomplete = False
            if not self._incomplete and not self._tail:
                buf, pos, n = self._buf, self._pos, len(self._buf)
                while pos < n and buf[pos] in " \t\r\n":
                    pos += 1
                self._pos = pos
                if pos < n:
                    try:
                        obj, end = self._decoder.raw_decode(buf, pos)
                    except json.JSONDecodeError:
                        self._incomplete = True  # wait for more text
                    else:
                        self._pos = end
                        if not isinstance(obj, dict):
                            raise RPCError(method, "dlv sent a message that is not a JSON object")
                        return obj
                else:
                    self._buf, self._pos = "", 0
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionLost(method, f"no answer from dlv within {self.timeout:.0f}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise ConnectionLost(method, f"no answer from dlv within {self.timeout:.0f}s") from None
            except OSError as e:
                self._lost()
                raise ConnectionLost(method, f"connection to dlv dropped ({e.strerror or e})") from None
            if not chunk:
                self._lost()
                raise ConnectionLost(method, "dlv closed the connection")
            text = self._utf8.decode(chunk)
            self._tail.append(text)
            # worth a parse only where a message may end: dlv ends each with "}\n"; a
            # "}" without the newline counts when nothing more is waiting. (Parsing
            # the joined text at every chunk that happens to end in "}" made an 80 MB
            # answer cost several full parses.)
            self._tail_closed = text.rstrip().endswith("}") and (
                text.endswith("\n") or not self._more_waiting())

    def _more_waiting(self) -> bool:
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def _lost(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self) -> None:
        if not self.closed:
            self._lost()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
