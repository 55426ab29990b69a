"""`go chan` on real gdb and real dlv, every toolchain of the matrix, live and core.

The chans fixture (tests/fixtures/chans/main.go) writes each channel's contents and the
ids of its waiting goroutines, each reported by the goroutine itself from its
runtime.Stack header, in the order they parked. `go chan` must say exactly that, by
expression and by the bare address `go stacks` prints, and the holder scan must find
the goroutine that keeps main.chHeld in a local across a wait. The bridge's JSON must
equal gdb's.
"""
import json

import pytest

import harness
from test_bridge import open_bridge
from truth import _norm

# what differs between a channel asked for by expression and by bare address
BY_EXPRESSION = ("type", "elem_type_source")


def check_chan(name, got, want, holder=None):
    assert got["errors"] == [], (name, got["errors"])
    assert got["nil"] is False
    for k in ("addr", "elem_type", "len", "cap", "closed", "sendx", "recvx"):
        assert got[k] == want[k], (name, k, got[k], want[k])
    assert _norm(got["buffer"]) == _norm(want["buffer"]), name
    assert [w["id"] for w in got["recvq"]] == [w["id"] for w in want["recvq"]], name
    assert [w["id"] for w in got["sendq"]] == [w["id"] for w in want["sendq"]], name
    assert got["recvq_len"] == len(want["recvq"]) and got["sendq_len"] == len(want["sendq"])
    for g, w in zip(got["sendq"], want["sendq"]):
        assert _norm(g["value"]) == _norm(w["value"]), (name, g, w)
    for w in got["recvq"] + got["sendq"]:
        assert w["status"] == "waiting" and w["wait_reason"] in ("chan send", "chan receive",
                                                                  "select"), (name, w)
        assert w["user"]["function"].startswith("main."), (name, w)
        assert isinstance(w["wait_minutes"], int), (name, w)
    waiters = {w["id"] for w in got["recvq"] + got["sendq"]}
    holders = {h["id"] for h in got["holders"]}
    assert not holders & waiters, name
    assert got["holders_len"] == len(got["holders"])
    assert "conservative" in got["holders_scan"]
    if holder is not None:
        assert holder in holders, (name, holder, got["holders"])
        h = next(h for h in got["holders"] if h["id"] == holder)
        assert h["user"]["function"] == "main.holder" and h["slots"], h


def test_chan_matches_fixture(toolchain, mode, go_target, tmp_path):
    t = go_target("chans")
    truth = t.truth("chans")
    chans = truth["chans"]
    out = tmp_path / "json"
    out.mkdir()
    cmds = []
    for name, want in sorted(chans.items()):
        cmds.append(("json %s" % name, "go chan %s --json -o %s/%s.json" % (name, out, name)))
        cmds.append(("addr %s" % name, "go chan %s --json -o %s/addr-%s.json"
                     % (want["addr"], out, name)))
    item, unbuf = chans["main.chItem"], chans["main.chUnbufS"]
    cmds += [
        ("text item", "go chan main.chItem"),
        ("text ring", "go chan 'main.chRing' --limit 2"),
        ("text held", "go chan main.chHeld"),
        ("text lead", "go chan channel %s" % unbuf["addr"]),
        ("cast", "go chan (chan main.Item)%s --json" % item["addr"]),
        ("limit", "go chan main.chUnbufS --json --limit 1"),
        ("nil", "go chan main.chNil"),
        ("stacks", "go stacks"),
        ("stacks json", "go stacks --json"),
        # bad input: one line, never a traceback
        ("not-a-chan-expr", "go chan main.anchor"),
        ("not-a-chan-addr", "go chan %#x" % (int(item["addr"], 16) + 8)),
        ("unreadable", "go chan 0x10"),
        ("unknown", "go chan main.noSuchThing"),
        ("bad-limit", "go chan main.chInt --limit -1"),
        ("after", "python print('still usable')"),
    ]
    r = t.gdb(cmds, timeout=600)
    gdb_docs = {}
    for name, want in sorted(chans.items()):
        assert r.error("json %s" % name) is None, (name, r.error("json %s" % name), r.stderr)
        got = json.load(open(out / ("%s.json" % name)))
        check_chan(name, got, want, truth["holder"] if name == truth["held"] else None)
        assert got["type"].startswith("chan "), got["type"]
        by_addr = json.load(open(out / ("addr-%s.json" % name)))
        assert by_addr["type"] is None
        assert {k: v for k, v in by_addr.items() if k not in BY_EXPRESSION} == \
            {k: v for k, v in got.items() if k not in BY_EXPRESSION}, name
        gdb_docs[name] = got

    text = r.block("text item")
    assert "main.Item" in text and "{1 one 0x" in text and "sends {3 three 0x" in text
    assert "conservative scan of goroutine stacks only" in text
    ring = r.block("text ring")
    assert "[0] 3" in ring and "[1] 4" in ring and "[2]" not in ring and "1 more" in ring
    assert "recvx/sendx 2/1" in ring
    assert "main.holder" in r.block("text held")
    lead = r.block("text lead")
    for s in unbuf["sendq"]:
        assert "%d  sends %d" % (s["id"], s["value"]) in lead, lead
    cast = json.loads(r.block("cast"))
    assert cast["type"] == "chan main.Item" and cast["buffer"] == gdb_docs["main.chItem"]["buffer"]
    limited = json.loads(r.block("limit"))
    assert limited["sendq_len"] == 3 and len(limited["sendq"]) == 1
    assert "nil" in r.block("nil") and r.error("nil") is None

    # following a lead: go stacks names the channel, and its JSON carries the address
    assert "blocked sending on channel %s" % unbuf["addr"] in r.block("stacks")
    buckets = json.loads(r.block("stacks json"))["buckets"]
    on = [o for b in buckets for o in b["blocked_on"] if o["addrs"] == [unbuf["addr"]]]
    assert on and on[0]["kind"] == "chan" and on[0]["count"] == 3, on
    assert on[0]["object"] == "channel " + unbuf["addr"]
    sel = [o for b in buckets for o in b["blocked_on"] if o["kind"] == "select"]
    assert sel and chans["main.chUnbufR"]["addr"] in sel[0]["addrs"], sel

    assert "not a channel" in r.error("not-a-chan-expr")
    bad = r.block("not-a-chan-addr")
    assert r.error("not-a-chan-addr") is None and "may not be a channel" in bad, bad
    assert "cannot read" in r.error("unreadable")
    assert "main.noSuchThing" in r.error("unknown")
    assert r.error("bad-limit") is not None
    for n in ("not-a-chan-expr", "not-a-chan-addr", "unreadable", "unknown", "bad-limit"):
        assert "Traceback" not in r.block(n) and "internal error" not in (r.error(n) or "")
    assert r.block("after").strip() == "still usable"
    assert "Traceback" not in r.stderr

    # the bridge: the same JSON as gdb, by expression and by address
    with open_bridge(t) as b:
        for name, want in sorted(chans.items()):
            mine = json.loads(b.view(["chan", name, "--json"]))
            assert mine == gdb_docs[name], name
            by_addr = json.loads(b.view(["chan", want["addr"], "--json"]))
            assert by_addr == json.load(open(out / ("addr-%s.json" % name))), name
        assert b.view(["chan", "main.chItem"]) == r.block("text item") + "\n"
        for bad, words in ((["chan", "main.anchor"], "not a channel"),
                           (["chan", "0x10"], "cannot read"),
                           (["chan", "main.noSuchThing"], "main.noSuchThing")):
            with pytest.raises(Exception) as e:
                b.view(bad)
            assert words in str(e.value), (bad, str(e.value))
