"""The goroutine dump text parser and the snapshot diff (analysis/dumptext.py), no gdb:
hand-written dumps of each shape, garbage and truncation."""
import gzip
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from gdb_go_ext.analysis import dumptext  # noqa: E402

LEVEL1 = """goroutine 1 [running]:
runtime/pprof.writeGoroutineStacks({0x5a1b00, 0xc000012018})
\t/go/src/runtime/pprof/pprof.go:703 +0x6a
main.main()
\t/src/main.go:99 +0x1c5

goroutine 5 [chan receive, 3 minutes, locked to thread]:
main.leakA(0xc000022060)
\t/src/main.go:54 +0x31
main.waitInlined(...)
\t/src/main.go:40
main.main.func2()
\t/src/main.go:107 +0x17
created by main.spawn in goroutine 1
\t/src/main.go:76 +0x3a

goroutine 6 [select (no cases)]:
main.(*T).run(0xc0000b4000, {0x0, 0x0})
\t/src/main.go:12 +0x20
...additional frames elided...
created by main.main
\t/src/main.go:20 +0x99
"""

LEVEL2 = """panic: boom

goroutine 7 gp=0xc000007a40 m=nil [chan send (leaked)]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/go/src/runtime/proc.go:435 +0xce fp=0xc00004e6f8 sp=0xc00004e6d8 pc=0x43a5ee
runtime.chansend1(...)
\t/go/src/runtime/chan.go:161 +0x1d fp=0xc00004e730 sp=0xc00004e6f8 pc=0x40683d
main.moved(...)
\t/src/main.go:70 +0x25 fp=0xc00004e760 sp=0xc00004e730 pc=0x49b145
runtime.goexit({})
\t/go/src/runtime/asm_amd64.s:1700 +0x1 fp=0xc00004e7e8 sp=0xc00004e7e0 pc=0x4765a1
created by main.main in goroutine 1
\t/src/main.go:120 +0x1a

goroutine 7 [chan send]:
second.block(...)
\t/x.go:1 +0x1
"""


def test_level1():
    d = dumptext.parse(LEVEL1)
    assert d.problem is None and d.level == 1
    assert [g.id for g in d.goroutines] == [1, 5, 6]
    g1, g5, g6 = d.goroutines
    assert g1.state == "running" and [f.function for f in g1.frames] == \
        ["runtime/pprof.writeGoroutineStacks", "main.main"]
    assert (g5.state, g5.minutes, g5.locked) == ("chan receive", 3, True)
    assert [(f.function, f.line, f.inlined) for f in g5.frames] == \
        [("main.leakA", 54, False), ("main.waitInlined", 40, True), ("main.main.func2", 107, False)]
    assert g5.created_by == ("main.spawn", "/src/main.go", 76) and g5.parent == 1
    assert g6.frames[0].function == "main.(*T).run" and g6.created_by[0] == "main.main"
    assert g6.parent is None


def test_level2_first_block_wins_and_suffixes():
    d = dumptext.parse(LEVEL2)
    assert d.level == 2 and d.problem is None and len(d.goroutines) == 1
    g = d.goroutines[0]
    assert g.addr == 0xc000007a40 and g.state == "chan send"
    assert g.frames[0].pc == 0x43a5ee
    # a level-1 dump shows only main.moved
    assert dumptext.stack_key(g.frames, level1=True) == (("main.moved", "/src/main.go", 70),)
    assert dumptext.stack_key(g.frames, similar=True, level1=True) == ("main.moved",)


@pytest.mark.parametrize("garbage", [
    "", "hello\n", "goroutine x [y]:\n", "\x00\xff" * 100, b"\xff\xfe\x00goroutine",
    "goroutine 1 [", None, 42, "goroutine 1 [running]:\n\tfile.go\n" * 3])
def test_garbage_never_raises(garbage):
    d = dumptext.parse(garbage)
    assert isinstance(d, dumptext.Dump)
    if not d.goroutines:
        assert d.problem and "\n" not in d.problem


def test_truncation():
    for cut in range(1, len(LEVEL1)):
        d = dumptext.parse(LEVEL1[:cut])
        assert d.problem is None or "\n" not in d.problem
        assert [g.id for g in d.goroutines] == [1, 5, 6][: len(d.goroutines)]
    d = dumptext.parse(LEVEL1[: LEVEL1.index("main.main.func2")])
    assert [g.id for g in d.goroutines] == [1, 5]
    assert d.problem and "ends inside goroutine 5" in d.problem
    assert [f.function for f in d.goroutines[1].frames] == ["main.leakA", "main.waitInlined"]


def test_load_snapshot_kinds_and_errors():
    snap = dumptext.load_snapshot(LEVEL1.encode())
    assert snap.kind == "dump" and snap.level1 and len(snap.entries) == 3
    stacks = {"buckets": [{"count": 3, "status": "waiting", "wait_reason": "chan receive",
                           "stack": [{"function": "main.a", "file": "/a.go", "line": 3}]}]}
    s = dumptext.load_snapshot(json.dumps(stacks).encode())
    assert s.kind == "stacks json" and s.entries[0].count == 3 and not s.level1
    gor = {"goroutines": [{"id": 4, "status": "running", "wait_reason": "",
                           "stack": [{"function": "main.a", "file": "/a.go", "line": 3}]}]}
    assert dumptext.load_snapshot(json.dumps(gor).encode()).kind == "goroutines json"
    bad = [b"", b"garbage\n", b"{}", b"[1, 2]", b'{"threads": []}', b"{not json",
           json.dumps({"goroutines": [{"id": 1}]}).encode(),
           json.dumps({"buckets": [{"count": "x"}]}).encode(),
           json.dumps({"buckets": [{"count": 1, "stack": [{"nofunction": 1}]}]}).encode(),
           gzip.compress(b"profile")[:12], gzip.compress(b"profile")]
    for data in bad:
        with pytest.raises(dumptext.SnapshotError) as e:
            dumptext.load_snapshot(data)
        assert str(e.value) and "\n" not in str(e.value), data


class _F:
    def __init__(self, function, file, line):
        self.function, self.file, self.line, self.inlined, self.pc = function, file, line, False, 1

    def to_json(self):
        return {"function": self.function}


class _G:
    def __init__(self, gid, frames, reason="chan receive"):
        self.id, self.stack, self.wait_reason, self.status = gid, frames, reason, "waiting"


def test_diff():
    a = [_F("runtime.gopark", "/r.go", 1), _F("main.a", "/a.go", 3)]
    b = [_F("runtime.gopark", "/r.go", 1), _F("main.b", "/b.go", 4)]
    c = [_F("runtime.gopark", "/r.go", 1), _F("main.c", "/c.go", 5)]
    sysg = [_F("runtime.gopark", "/r.go", 1), _F("runtime.bgsweep", "/m.go", 2)]
    old = {"buckets": [
        {"count": 2, "wait_reason": "chan receive", "stack": [f.__dict__ for f in a]},
        {"count": 3, "wait_reason": "chan receive", "stack": [f.__dict__ for f in b]},
        {"count": 1, "wait_reason": "chan receive", "stack": [f.__dict__ for f in sysg]}]}
    snap = dumptext.load_snapshot(json.dumps(old).encode())
    now = [_G(i, a) for i in range(5)] + [_G(9, b)] + [_G(10, c)] + [_G(11, sysg)]
    got = {tuple(f.function for f in d.frames): (d.change, d.before, d.after)
           for d in dumptext.diff(snap, now)}
    assert got == {("runtime.gopark", "main.a"): ("grown", 2, 5),
                   ("runtime.gopark", "main.b"): ("shrunk", 3, 1),
                   ("runtime.gopark", "main.c"): ("new", 0, 1),
                   ("runtime.gopark", "runtime.bgsweep"): ("same", 1, 1)}
    # against a dump: the runtime frames and goroutines are left out
    dump = ("goroutine 3 [chan receive]:\nmain.a()\n\t/a.go:3 +0x1\n\n"
            "goroutine 4 [chan receive]:\nmain.d()\n\t/d.go:3 +0x1\n")
    got = {d.frames[-1].function: (d.change, d.before, d.after)
           for d in dumptext.diff(dumptext.load_snapshot(dump.encode()), now)}
    assert got == {"main.a": ("grown", 1, 5), "main.b": ("new", 0, 1),
                   "main.c": ("new", 0, 1), "main.d": ("vanished", 1, 0)}
    # --similar: functions only
    moved = [_F("runtime.gopark", "/r.go", 1), _F("main.a", "/a.go", 30)]
    got = [(d.change, d.before, d.after) for d in dumptext.diff(snap, [_G(1, moved)], similar=True)
           if d.frames[-1].function == "main.a"]
    assert got == [("shrunk", 2, 1)]
