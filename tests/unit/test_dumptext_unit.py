"""The goroutine dump text parser and the snapshot diff (analysis/dumptext.py), no gdb:
hand-written dumps of each shape, garbage and truncation."""
import gzip
import json
import os
import re
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
           for d in dumptext.diff(snap, _Table(now))}
    assert got == {("runtime.gopark", "main.a"): ("grown", 2, 5),
                   ("runtime.gopark", "main.b"): ("shrunk", 3, 1),
                   ("runtime.gopark", "main.c"): ("new", 0, 1),
                   ("runtime.gopark", "runtime.bgsweep"): ("same", 1, 1)}
    # against a dump: the runtime frames and goroutines are left out
    dump = ("goroutine 3 [chan receive]:\nmain.a()\n\t/a.go:3 +0x1\n\n"
            "goroutine 4 [chan receive]:\nmain.d()\n\t/d.go:3 +0x1\n")
    got = {d.frames[-1].function: (d.change, d.before, d.after)
           for d in dumptext.diff(dumptext.load_snapshot(dump.encode()), _Table(now))}
    assert got == {"main.a": ("grown", 1, 5), "main.b": ("new", 0, 1),
                   "main.c": ("new", 0, 1), "main.d": ("vanished", 1, 0)}
    # --similar: functions only
    moved = [_F("runtime.gopark", "/r.go", 1), _F("main.a", "/a.go", 30)]
    got = [(d.change, d.before, d.after)
           for d in dumptext.diff(snap, _Table([_G(1, moved)]), similar=True)
           if d.frames[-1].function == "main.a"]
    assert got == [("shrunk", 2, 1)]


# one stop as each level prints it: level 2 adds gp=/fp=, the runtime's frames, the go
# statement's wrapper (gowrap1 from Go 1.22; a funcN closure before), goexit, "panic"
# for runtime.gopanic and the system goroutines
STOP_LEVEL1 = """goroutine 5 [chan receive]:
main.recv(...)
\t/src/main.go:10
main.handle(0xc000010000)
\t/src/main.go:20 +0x25
created by main.main in goroutine 1
\t/src/main.go:40 +0x1a

goroutine 6 [select]:
main.deferred()
\t/src/main.go:50 +0x2
panic({0x4b1d20?, 0x4f0e48?})
\t/go/src/runtime/panic.go:770 +0x132
main.boom(...)
\t/src/main.go:60 +0x40
main.main.func3()
\t/src/main.go:44 +0x1c
created by main.main in goroutine 1
\t/src/main.go:44 +0x9b
"""

STOP_LEVEL2 = """goroutine 2 gp=0xc000006c40 m=nil [force gc (idle)]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/go/src/runtime/proc.go:402 +0xce fp=0xc000058fa8 sp=0xc000058f88 pc=0x43a5ee
runtime.forcegchelper()
\t/go/src/runtime/proc.go:326 +0xb3 fp=0xc000058fe0 sp=0xc000058fa8 pc=0x43a453
runtime.goexit({})
\t/go/src/runtime/asm_amd64.s:1695 +0x1 fp=0xc000058fe8 sp=0xc000058fe0 pc=0x4706a1
created by runtime.init.6 in goroutine 1
\t/go/src/runtime/proc.go:314 +0x1a

goroutine 5 gp=0xc000007a40 m=nil [chan receive]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/go/src/runtime/proc.go:402 +0xce fp=0xc00004e6f8 sp=0xc00004e6d8 pc=0x43a5ee
runtime.chanrecv1(0xc000010000?, 0x0?)
\t/go/src/runtime/chan.go:489 +0x12 fp=0xc00004e720 sp=0xc00004e6f8 pc=0x4067f2
main.recv(...)
\t/src/main.go:10
main.handle(0xc000010000)
\t/src/main.go:20 +0x25 fp=0xc00004e7c8 sp=0xc00004e720 pc=0x49b145
main.main.gowrap1()
\t/src/main.go:40 +0x25 fp=0xc00004e7e0 sp=0xc00004e7c8 pc=0x49b2a5
runtime.goexit({})
\t/go/src/runtime/asm_amd64.s:1695 +0x1 fp=0xc00004e7e8 sp=0xc00004e7e0 pc=0x4706a1
created by main.main in goroutine 1
\t/src/main.go:40 +0x1a

goroutine 6 gp=0xc000007c00 m=nil [select]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/go/src/runtime/proc.go:402 +0xce fp=0xc00004e6f8 sp=0xc00004e6d8 pc=0x43a5ee
runtime.selectgo(0x0?, 0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/go/src/runtime/select.go:327 +0x725 fp=0xc00004e710 sp=0xc00004e6f8 pc=0x44a5ee
main.deferred()
\t/src/main.go:50 +0x2 fp=0xc00004e740 sp=0xc00004e710 pc=0x49b0a5
panic({0x4b1d20?, 0x4f0e48?})
\t/go/src/runtime/panic.go:770 +0x132 fp=0xc00004e790 sp=0xc00004e740 pc=0x4355f2
main.boom(...)
\t/src/main.go:60 +0x40 fp=0xc00004e7b0 sp=0xc00004e790 pc=0x49b1c0
main.main.func3()
\t/src/main.go:44 +0x1c fp=0xc00004e7c0 sp=0xc00004e7b0 pc=0x49b1dc
main.main.func3.gowrap2()
\t/src/main.go:44 +0x1c fp=0xc00004e7d8 sp=0xc00004e7c0 pc=0x49b1fc
main.(*T).run-fm()
\t<autogenerated>:1 +0x2a fp=0xc00004e7e0 sp=0xc00004e7d8 pc=0x49b22a
runtime.goexit({})
\t/go/src/runtime/asm_amd64.s:1695 +0x1 fp=0xc00004e7e8 sp=0xc00004e7e0 pc=0x4706a1
created by main.main in goroutine 1
\t/src/main.go:44 +0x9b
"""


class _Func:
    def __init__(self, name, func_id, entry):
        self.name, self.func_id, self.entry = name, func_id, entry


class _Tab:
    """A pclntab's lookup_func/frames: wrappers have func_id 22 (Go 1.22)."""
    FUNCS = {"main.main.gowrap1": (22, "/src/main.go"), "main.main.func3.gowrap2": (22, "/src/main.go"),
             "main.handle": (0, "/src/main.go"), "main.main.func3": (0, "/src/main.go"),
             # an ABI wrapper found first under the name of the function it wraps
             "main.boom": (22, "<autogenerated>")}

    NAMES = list(FUNCS)

    def lookup_func(self, name):
        hit = self.FUNCS.get(name)
        return None if hit is None else _Func(name, hit[0], self.NAMES.index(name))

    def frames(self, pc):
        return (_F(self.NAMES[pc], self.FUNCS[self.NAMES[pc]][1], 1),)


def test_levels_of_one_stop_read_back_the_same():
    names = [f.function for g in dumptext.parse(STOP_LEVEL2).goroutines for f in g.frames]
    wrappers = dumptext.wrapper_names(_Tab(), 22, names)
    assert wrappers == {"main.main.gowrap1", "main.main.func3.gowrap2"}
    d1, d2 = dumptext.parse(STOP_LEVEL1), dumptext.parse(STOP_LEVEL2)
    assert (d1.level, d2.level) == (1, 2)
    # "panic" is runtime.gopanic, which level 1 shows past the first frame
    assert [f.function for f in d1.goroutines[1].frames][1] == "runtime.gopanic"
    keys1 = {g.id: dumptext.stack_key(g.frames, level1=True, wrappers=wrappers)
             for g in d1.goroutines}
    keys2 = {g.id: dumptext.stack_key(g.frames, level1=True, wrappers=wrappers)
             for g in d2.goroutines}
    assert keys2 == {**keys1, 2: ()}, (keys1, keys2)
    assert [f for f, _, _ in keys2[6]] == ["main.deferred", "runtime.gopanic", "main.boom",
                                           "main.main.func3"]
    # without the binary's wrappers, a go statement's wrapper reads as a change
    assert dumptext.stack_key(d2.goroutines[1].frames, level1=True) != keys1[5]
    # and our own stacks (runtime frames in, wrappers and goexit out) against either
    now = [_G(5, [_F("runtime.gopark", "/go/src/runtime/proc.go", 402),
                  _F("runtime.chanrecv1", "/go/src/runtime/chan.go", 489),
                  _F("main.recv", "/src/main.go", 10), _F("main.handle", "/src/main.go", 20)]),
           _G(6, [_F("runtime.gopark", "/go/src/runtime/proc.go", 402),
                  _F("runtime.selectgo", "/go/src/runtime/select.go", 327),
                  _F("main.deferred", "/src/main.go", 50),
                  _F("runtime.gopanic", "/go/src/runtime/panic.go", 770),
                  _F("main.boom", "/src/main.go", 60), _F("main.main.func3", "/src/main.go", 44)]),
           _G(2, [_F("runtime.gopark", "/go/src/runtime/proc.go", 402),
                  _F("runtime.forcegchelper", "/go/src/runtime/proc.go", 326)])]
    for text in (STOP_LEVEL1, STOP_LEVEL2):
        got = dumptext.diff(dumptext.load_snapshot(text.encode()), _Table(now), wrappers=wrappers)
        assert [(b.change, b.before, b.after) for b in got] == [("same", 1, 1)] * 2, got


def _deep(n, elide=False, outer="main.main.func1"):
    """A goroutine n calls deep, as a level-2 dump prints it (Go 1.21+: the innermost
    and outermost 50 frames when elide)."""
    frames = [("runtime.gopark", "/go/src/runtime/proc.go", 402)]
    frames += [("main.deep", "/src/main.go", 5)] * n + [(outer, "/src/main.go", 9)]
    lines = ["goroutine 7 [chan receive]:"]
    for i, (fn, file, line) in enumerate(frames):
        if elide and 50 <= i < len(frames) - 50:
            if i == 50:
                lines.append("...%d frames elided..." % (len(frames) - 100))
            continue
        lines += ["%s(...)" % fn, "\t%s:%d +0x1" % (file, line)]
    return "\n".join(lines) + "\ncreated by main.main in goroutine 1\n\t/src/main.go:9 +0x1\n"


def test_cut_stacks_match_on_the_frames_printed_around_the_cut():
    def stack(n, outer="main.main.func1"):
        return [_F("runtime.gopark", "/go/src/runtime/proc.go", 402)] + \
            [_F("main.deep", "/src/main.go", 5)] * n + [_F(outer, "/src/main.go", 9)]
    cut = _deep(150, elide=True)
    d = dumptext.parse(cut)
    assert d.goroutines[0].elided_at == 50 and len(d.goroutines[0].frames) == 100
    same = [("same", 1, 1)]
    got = dumptext.diff(dumptext.load_snapshot(cut.encode()), _Table([_G(7, stack(150))]))
    assert [(b.change, b.before, b.after) for b in got] == same, got
    # another depth of the same recursion from the same go statement is the same cut
    # stack; a shallower one, or from elsewhere, is another stack
    got = dumptext.diff(dumptext.load_snapshot(cut.encode()), _Table([_G(7, stack(120))]))
    assert [(b.change, b.before, b.after) for b in got] == same, got
    for other in (stack(30), stack(150, "main.other")):
        got = dumptext.diff(dumptext.load_snapshot(cut.encode()), _Table([_G(7, other)]))
        assert sorted(b.change for b in got) == ["new", "vanished"], got
    # a stack the walk cut (depth) against a dump that printed it whole: its frames
    # begin the dump's stack, and no other's
    whole = dumptext.load_snapshot(_deep(70).encode())
    got = dumptext.diff(whole, _Table([_G(7, stack(150)[:40])]), depth=40)
    assert [(b.change, b.before, b.after) for b in got] == same, got
    got = dumptext.diff(whole, _Table([_G(7, stack(150)[:40])]))
    assert sorted(b.change for b in got) == ["new", "vanished"], got
    two = dumptext.load_snapshot((_deep(70) + "\n" + _deep(80).replace(
        "goroutine 7 ", "goroutine 8 ")).encode())
    got = dumptext.diff(two, _Table([_G(7, stack(150)[:40])]), depth=40)
    assert sorted(b.change for b in got) == ["new", "vanished", "vanished"], got
    # Go 1.19 cuts after 100 frames, hidden ones counted, without a word when it printed
    # fewer: a stack printed with NEAR_LIMIT frames or more is matched as cut there
    silent = dumptext.parse(re.sub(r"\.\.\.\d+ frames elided\.\.\.\n", "",
                                   _deep(150, elide=True)))
    assert silent.goroutines[0].elided_at == 100
    d = dumptext.parse(_deep(80))
    assert d.goroutines[0].elided_at is None and len(d.goroutines[0].frames) == 82
    # a stack that may be cut after its last frame, and one cut with its outermost
    # frames printed: each stack now goes to the one that says most of it
    lines = _deep(96).split("\n")
    quiet = "\n".join(lines[:1 + 2 * 95] + lines[-3:])     # cut after 95 frames, silently
    both = dumptext.load_snapshot((quiet + "\n" + _deep(150, True, "main.run").replace(
        "goroutine 7 ", "goroutine 8 ")).encode())
    assert [g.elided_at for g in both.dump.goroutines] == [95, 50]
    got = dumptext.diff(both, _Table([_G(7, stack(96)), _G(8, stack(150, "main.run"))]))
    assert [(b.change, b.before, b.after, b.ids) for b in got] == \
        [("same", 1, 1, [7]), ("same", 1, 1, [8])], got


class _Table:
    """A walk's table as dumptext reads one, of _G goroutines: shapes (status at 1,
    wait reason at 3, stack at 8), each row's shape and id."""
    base = None

    def __init__(self, gs):
        self.shapes, self._shape, self._ids, seen = [], [], [], {}
        for g in gs:
            frames = g.stack
            key = (tuple((f.function, f.file, f.line) for f in frames), g.wait_reason, g.status)
            if key not in seen:
                seen[key] = len(self.shapes)
                self.shapes.append((None, g.status, None, g.wait_reason,
                                    None, None, None, None, frames))
            self._shape.append(seen[key])
            self._ids.append(g.id)

    def shapes_of(self):
        import numpy as np
        return np.array(self._shape, dtype=np.int64)

    def ids(self):
        import numpy as np
        return np.array(self._ids, dtype=np.int64)


def test_goroutines_the_dump_printed_without_a_stack_are_not_counted():
    spin = [_F("main.spin", "/src/main.go", 7)]
    dump = ("goroutine 3 [runnable]:\nmain.spin(...)\n\t/src/main.go:7 +0x1\n\n"
            "goroutine 4 [running]:\n\tgoroutine running on other thread; stack unavailable\n\n"
            "goroutine 5 [running]:\n\tgoroutine running on other thread; stack unavailable\n")
    snap = dumptext.load_snapshot(dump.encode())
    assert dumptext.unknown_then(snap) == [4, 5]
    rows = [(3, spin, ""), (4, spin, ""), (5, spin, ""), (6, spin, "")]
    now = [_G(i, f, r) for i, f, r in rows]
    for g in now:
        g.wait_reason, g.status = "", "running"
    got = [(b.change, b.before, b.after, b.ids) for b in dumptext.diff(snap, _Table(now))]
    assert got == [("grown", 1, 2, [3, 6])], got   # 6 is new; 4 and 5 unknown then


def test_xref_levels_of_one_stop_and_unknown_stacks():
    from gdb_go_ext.views import xref
    names = [f.function for g in dumptext.parse(STOP_LEVEL2).goroutines for f in g.frames]
    wrappers = dumptext.wrapper_names(_Tab(), 22, names)
    now = [_G(5, [_F("runtime.gopark", "/go/src/runtime/proc.go", 402),
                  _F("main.recv", "/src/main.go", 10), _F("main.handle", "/src/main.go", 20)]),
           _G(6, [_F("main.deferred", "/src/main.go", 50),
                  _F("runtime.gopanic", "/go/src/runtime/panic.go", 770),
                  _F("main.boom", "/src/main.go", 60), _F("main.main.func3", "/src/main.go", 44)],
              "select"),
           _G(2, [_F("runtime.gopark", "/go/src/runtime/proc.go", 402),
                  _F("runtime.forcegchelper", "/go/src/runtime/proc.go", 326)], "force gc (idle)")]
    for text, ids in ((STOP_LEVEL1, [5, 6]), (STOP_LEVEL2, [2, 5, 6])):
        rows = xref.xref(dumptext.parse(text), now, wrappers)
        assert sorted((i, v) for i, v, _, _ in rows) == [(i, "same") for i in ids], rows
    # without the wrappers the go statement's wrapper is a change, as before
    rows = xref.xref(dumptext.parse(STOP_LEVEL2), now)
    assert {i: v for i, v, _, _ in rows}[5] == "changed"
    # printed without a stack (running then): by its state alone
    dump = dumptext.parse("goroutine 9 [running]:\n"
                          "\tgoroutine running on other thread; stack unavailable\n")
    running = _G(9, [_F("main.spin", "/src/main.go", 7)])
    running.wait_reason, running.status = "", "running"
    assert [v for _, v, _, _ in xref.xref(dump, [running])] == ["same"]
    running.wait_reason, running.status = "chan receive", "waiting"
    assert [v for _, v, _, _ in xref.xref(dump, [running])] == ["changed"]
