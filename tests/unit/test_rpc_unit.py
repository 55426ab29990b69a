"""The JSON-RPC client against a scripted server on a Unix socket: answers matched by
id when they come out of order, messages split anywhere or sharing one read, a
message that ends without a newline, and a large answer parsed about once."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from delve_bridge.rpc import Client, ConnectionLost


class _Pair:
    """A Client connected to a Unix socket whose other end, .server, the test writes."""

    def __init__(self, tmp_path):
        path = str(tmp_path / "dlv.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            self.client = Client("unix:" + path, timeout=5.0)
            self.server, _ = listener.accept()

    def close(self):
        self.client.close()
        self.server.close()


@pytest.fixture
def pair(tmp_path):
    p = _Pair(tmp_path)
    yield p
    p.close()


def _answer(rid, result):
    return json.dumps({"id": rid, "result": result, "error": None}, separators=(",", ":")) + "\n"


def test_answers_out_of_order_are_matched_by_id(pair):
    c = pair.client
    r1 = c.send("RPCServer.State", {})
    r2 = c.send("RPCServer.Version", {})
    pair.server.sendall((_answer(r2, {"v": 2}) + _answer(r1, {"v": 1})).encode())
    assert c.wait(r1) == {"v": 1}
    assert c.wait(r2) == {"v": 2}


def test_a_message_split_into_single_bytes(pair):
    c = pair.client
    rid = c.send("RPCServer.State", {})
    text = _answer(rid, {"s": "a}b{c", "n": [1, {"x": "}"}]}).encode()

    def feed():
        for i in range(len(text)):
            pair.server.sendall(text[i:i + 1])
            time.sleep(0.0005)
    t = threading.Thread(target=feed)
    t.start()
    assert c.wait(rid) == {"s": "a}b{c", "n": [1, {"x": "}"}]}
    t.join()


def test_a_message_without_a_newline(pair):
    c = pair.client
    rid = c.send("RPCServer.State", {})
    pair.server.sendall(_answer(rid, {"ok": True}).rstrip("\n").encode())
    assert c.wait(rid) == {"ok": True}


def test_a_server_error_names_the_method(pair):
    from delve_bridge.rpc import RPCError
    c = pair.client
    rid = c.send("RPCServer.ListGoroutines", {})
    pair.server.sendall((json.dumps({"id": rid, "result": None, "error": "boom"}) + "\n").encode())
    with pytest.raises(RPCError, match="ListGoroutines.*boom"):
        c.wait(rid)


def test_a_closed_connection_mid_answer(pair):
    c = pair.client
    rid = c.send("RPCServer.State", {})
    pair.server.sendall(b'{"id": 1, "result": {"a": ')
    pair.server.close()
    with pytest.raises(ConnectionLost):
        c.wait(rid)


def test_a_large_answer_is_parsed_about_once(pair, monkeypatch):
    """Chunks that each end in "}" while more is on its way: parsing the joined text
    at each of them would be quadratic in the answer's size."""
    c = pair.client
    attempts = []
    decoder = c._decoder

    class Counting:
        def raw_decode(self, s, idx=0):
            attempts.append(len(s))
            return decoder.raw_decode(s, idx)
    c._decoder = Counting()
    monkeypatch.setattr(Client, "_more_waiting", lambda self: True,  # a transfer in flight
                        raising=False)
    rid = c.send("RPCServer.ListGoroutines", {"Start": 0, "Count": 0})
    gs = [{"id": i, "userCurrentLoc": {"file": "/src/main.go", "line": i}} for i in range(20000)]
    text = _answer(rid, {"Goroutines": gs})
    cuts = [i + 1 for i, ch in enumerate(text) if ch == "}"][::200]  # chunks ending in "}"
    chunks = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    assert len(chunks) > 100

    def feed():
        for ch in chunks:
            pair.server.sendall(ch.encode())
            time.sleep(0.0002)
    t = threading.Thread(target=feed)
    t.start()
    got = c.wait(rid, timeout=30)
    t.join()
    assert len(got["Goroutines"]) == 20000
    assert len(attempts) <= 3, f"{len(attempts)} parses of a {len(text)}-character answer"
