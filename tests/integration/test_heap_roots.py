"""The GC's roots (runtime/heaproots.py) on real gdb, real dlv and real Go binaries of
the matrix, live and on a core.

The heap fixture (tests/fixtures/heap/main.go) keeps main.tree, main.registry,
main.table, main.big and main.finalized live from globals, 40 goroutines parked in
main.holdA and 25 in main.holdB each keeping a buffer (its size in heap.json) live
across the wait, and one object with a finalizer. What must hold, against what the
program itself wrote (heap.json) and what its memory says:
  - globals: each of the five is a global root of its DWARF type whose word points
    into the heap (an in-use mspan, found as the runtime's spanOf finds it); what the
    objects hold is the mark's to check;
  - stacks: every holdA / holdB goroutine has exactly one stack root named buf (DWARF;
    Go 1.27 names the spilled data pointer buf.ptr) in its frame of that function,
    whose word is the start of a heap object of the bucket's buffer size (its mspan's
    elemsize), 40 + 25 distinct buffers;
  - stack objects: each holdB frame holds chB and chC (the select's scase array, a
    stack object reached from selectgo's argument);
  - specials: a finalizer root names main.finalized's object;
  - no error line; gdb and the bridge (dlv) find the same words on the same core
    (BRIDGE_TOOLCHAINS).
"""
import json
import os
import sys

import harness

sys.path.insert(0, harness.REPO)
from delve_bridge import Bridge  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# run in gdb (rt from the gdb session) and in this process (rt from the bridge)
SUMMARY = r'''
import json as _json
import numpy as _np
from gdb_go_ext.runtime import walks as _walks
from gdb_go_ext.runtime.heaproots import global_roots as _gr, special_roots as _spr
from gdb_go_ext.runtime.stackroots import stack_roots as _sr


HEAP_GLOBALS = ("main.tree", "main.registry", "main.table", "main.big", "main.finalized")


def span_of(rt, p):
    """(startAddr, elemsize) of the mspan holding p, as the runtime's spanOf finds it:
    mheap_.arenas[0][(p + 1<<47) >> 26].spans[p / 8192 % 8192] (linux/amd64)."""
    mh = rt.global_addr("runtime.mheap_")
    arenas_off = rt.target.symbol_type("runtime.mheap_").find("arenas")[0]
    l2 = rt.mem.u64(mh + arenas_off)            # arenas[0] (arenaL1Bits = 0)
    ai = ((p + (1 << 47)) & ((1 << 64) - 1)) >> 26
    ha = rt.mem.u64(l2 + 8 * ai)
    if not ha:
        return 0, 0     # not in the heap
    spans_off = rt.type("runtime.heapArena").find("spans")[0]
    s = rt.mem.u64(ha + spans_off + 8 * ((p >> 13) % 8192))
    if not s:
        return 0, 0
    t = rt.type("runtime.mspan")
    return rt.mem.u64(s + t.find("startAddr")[0]), rt.mem.u64(s + t.find("elemsize")[0])


def heaproots_summary(rt):
    walker, gs = _walks.walk(rt, 0)
    out = {"errors": []}
    g = _gr(rt)
    out["errors"] += g.errors
    out["globals"] = {}
    for i, r in enumerate(g.roots):
        if r.name.startswith("main."):
            sel = g.root == i
            out["globals"][r.name] = {"type": r.type_name,
                                      "words": [[int(o), int(v)] for o, v in
                                                zip(g.offset[sel], g.value[sel])],
                                      "spans": [list(span_of(rt, int(v))) for v in g.value[sel]]
                                      if r.name in HEAP_GLOBALS else []}
    s = _sr(rt, gs)
    out["errors"] += s.errors
    holders = {}
    for i in range(len(s.roots)):
        r = s.roots[i]
        if r.name in ("main.holdA", "main.holdB"):
            sel = _np.flatnonzero(s.root == i)
            for k in sel.tolist():
                v = int(s.value[k])
                start, size = span_of(rt, v)
                holders.setdefault(r.name, []).append(
                    [r.goid, r.variable, r.type_name, int(s.offset[k]), v, size,
                     (v - start) % size if size else None])
    out["holders"] = holders
    out["stack_words"] = len(s.value)
    out["stack_goroutines"] = len(set(s.root_goid.tolist()))
    sp = _spr(rt, None)
    out["errors"] += [e for e in sp.errors if "their pointer words not read" not in e]
    out["finalizers"] = [[r.kind, r.name] for r in sp.roots]
    out["special_words"] = sorted(int(v) for v in sp.value)
    return out
'''


def _gdb_summary(t, tmp_path):
    script = tmp_path / "heaproots_summary.py"
    script.write_text(SUMMARY + "\nfrom gdb_go_ext.gdb import session as _session\n"
                      "print('SUMMARY=' + _json.dumps(heaproots_summary(_session.runtime())))\n")
    r = t.gdb([("summary", "source %s" % script)], timeout=300)
    assert r.error("summary") is None, r.stderr[-3000:]
    line = [x for x in r.block("summary").splitlines() if x.startswith("SUMMARY=")]
    assert line, (r.stdout[-2000:], r.stderr[-3000:])
    return json.loads(line[0][len("SUMMARY="):])


def _bridge_summary(t):
    ns: dict = {}
    exec(SUMMARY, ns)
    b = Bridge.attach(t.pid, binary=t.binary, quiet=True) if t.mode == "live" else \
        Bridge.core(t.binary, t.core, quiet=True)
    with b:
        return ns["heaproots_summary"](b.runtime())


def _check(got, truth, toolchain):
    assert got["errors"] == [], got["errors"]
    want_types = {"main.tree": "*main.node", "main.registry": "map[string]*main.entry",
                  "main.table": "[]*main.node", "main.big": "[]*main.entry",
                  "main.finalized": "*main.entry"}
    for name, typ in want_types.items():
        r = got["globals"].get(name)
        assert r is not None, (name, sorted(got["globals"]))
        assert r["type"] == typ, (name, r)
        assert len(r["words"]) == 1 and r["words"][0][0] == 0, (name, r)
        # a heap object: inside an mspan of the heap's arenas, as spanOf finds it
        start, size = r["spans"][0]
        assert size and start <= r["words"][0][1], (name, hex(r["words"][0][1]), start, size)
    # a global without pointers is no root; one with a non-heap pointer is (holderSize's
    # backing array lies in the data section)
    assert "main.ready" not in got["globals"]
    for b in truth["buckets"]:
        # Go 1.27's DWARF names the spilled data pointer of the slice "buf.ptr" (*uint8)
        is_buf = lambda r: r[1] == "buf" or (r[1] or "").startswith("buf.")
        rows = [r for r in got["holders"].get(b["function"], []) if is_buf(r)]
        others = [r for r in got["holders"].get(b["function"], []) if not is_buf(r)]
        # besides buf, only unnamed words (holdB's select cases: the channels)
        assert all(r[1] is None for r in others), others[:3]
        goids = sorted(r[0] for r in rows)
        assert len(goids) == b["goroutines"] == len(set(goids)), (b, rows[:5])
        for goid, var, typ, off, value, size, inside in rows:
            assert (var, typ) in (("buf", "[]uint8"), ("buf.ptr", "*uint8")) and off == 0, \
                rows[:3]
            # the start of a heap object of the buffer's size (its span's elemsize)
            assert size == b["buffer"] and inside == 0, (b, hex(value), size, inside)
        assert len({r[4] for r in rows}) == b["goroutines"]   # each its own buffer
        if b["function"] == "main.holdB":
            # the select's cases are a stack object of holdB's frame, reached through
            # selectgo's cas0 argument: each holds its channel, chB and chC
            chans = {got["globals"][c]["words"][0][1] for c in ("main.chB", "main.chC")}
            for goid in goids:
                assert chans <= {r[4] for r in others if r[0] == goid}, (goid, others[:4])
    fin = got["globals"]["main.finalized"]["words"][0][1]
    assert ["finalizer", "finalizer of %#x" % fin] in got["finalizers"], got["finalizers"]


# the bridge reads the same core as gdb on these (its added time across the matrix; the
# heap dump test below goes through the bridge, live, on every toolchain)
BRIDGE_TOOLCHAINS = ("go1.22.10", "go1.26.6", "go1.27.3")


def test_heap_roots(toolchain, mode, go_target, tmp_path):
    # (the heap views are for Go 1.22+; the roots are the same before, and checked there too)
    t = go_target("heap")
    truth = t.truth("heap")
    got = _gdb_summary(t, tmp_path)
    _check(got, truth, toolchain)
    if mode == "core" and toolchain in BRIDGE_TOOLCHAINS:
        via_dlv = _bridge_summary(t)
        _check(via_dlv, truth, toolchain)
        assert via_dlv == got


# --- against the runtime's own record of every frame's pointer slots ----------------------
DUMP_SRC = os.path.join(harness.REPO, "tests", "data", "heaproots", "heapdump")


def _build_dump_program(toolchain):
    """tests/data/heaproots/heapdump built with the toolchain (cached by source hash)."""
    import hashlib
    import shutil
    import subprocess
    import tempfile
    h = hashlib.sha256()
    for name in sorted(os.listdir(DUMP_SRC)):
        with open(os.path.join(DUMP_SRC, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    info = harness.toolchain(toolchain)
    h.update(json.dumps([info["version"], info.get("env", {})], sort_keys=True).encode())
    final = os.path.join(harness.cache_dir(), "builds", toolchain,
                         "heaproots-dump-" + h.hexdigest()[:16])
    binary = os.path.join(final, "heapdump")
    if os.access(binary, os.X_OK):
        return binary
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(final))
    try:
        p = subprocess.run([info["go"], "build", "-o", os.path.join(tmp, "heapdump"), "."],
                           cwd=DUMP_SRC, env=harness.go_env(toolchain), capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        try:
            os.rename(tmp, final)
        except OSError:
            assert os.access(binary, os.X_OK)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def parse_heapdump(data):
    """({goid: [(sp, size, function, [pointer slot offsets from sp])]}, {"data"/"bss":
    (address, [pointer slot offsets])}, [objects with a finalizer]) of a runtime heap
    dump (runtime/heapdump.go's records), read up to its memstats."""
    pos = 0
    hdr = b"go1.7 heap dump\n"
    assert data.startswith(hdr)
    pos = len(hdr)

    def uv():
        nonlocal pos
        v = shift = 0
        while True:
            b = data[pos]
            pos += 1
            v |= (b & 0x7f) << shift
            shift += 7
            if b < 0x80:
                return v

    def mem():
        nonlocal pos
        n = uv()
        pos += n
        return data[pos - n:pos]

    def fields():
        out = []
        while True:
            kind = uv()
            if kind == 0:
                return out
            out.append(uv())

    gs, cur, sections, finalizers = {}, None, {}, []
    defers, gaddr = {}, {}
    for _ in range(10_000_000):
        tag = uv()
        if tag == 1:      # object
            uv(), mem(), fields()
        elif tag == 2:    # other root
            mem(), uv()
        elif tag == 3:    # type
            uv(), uv(), mem(), uv()
        elif tag == 4:    # goroutine
            ga = uv()
            uv()
            goid = gaddr[ga] = uv()
            uv(), uv(), uv(), uv(), uv(), mem(), uv(), uv(), uv(), uv()
            cur = gs[goid] = []
        elif tag == 5:    # stack frame
            sp = uv()
            uv(), uv()
            frame = mem()
            uv(), uv(), uv()
            name = mem().decode()
            cur.append((sp, len(frame), name, fields()))
        elif tag == 6:    # params
            uv(), uv(), uv(), uv(), mem(), mem(), uv()
        elif tag == 8:    # itab
            uv(), uv()
        elif tag == 14:   # defer: d, gp, sp, pc, fn, fn.fn, link
            d, gp, _, _, fn, _, _ = [uv() for _ in range(7)]
            defers.setdefault(gaddr.get(gp), []).append((d, fn))
        elif tag == 15:   # panic
            for _ in range(6):
                uv()
        elif tag == 9:    # OS thread
            uv(), uv(), uv()
        elif tag in (12, 13):   # data, bss: the first module's, with its gcdata/gcbss mask
            a = uv()
            mem()
            sections["data" if tag == 12 else "bss"] = (a, fields())
        elif tag == 7:    # finalizer special
            finalizers.append(uv())
            uv(), uv(), uv(), uv()
        elif tag in (0, 10, 11):
            break
        else:
            raise AssertionError("heap dump record %d at %d" % (tag, pos))
    return gs, sections, finalizers, defers


def test_stack_slots_are_the_runtimes(toolchain, tmp_path):
    """The pointer words stack_roots finds on each of the program's 32 parked goroutines,
    against the runtime's own heap dump of the same stacks (runtime/debug.WriteHeapDump:
    each frame's pointer slots from its locals and args stack maps at the frame's pc):
    each slot the dump lists that holds a heap pointer now (the goroutines stayed
    parked) is a root word, and each root word the dump does not list lies in a frame
    with stack objects (which the heap dump leaves out and the GC scans); its defer
    records (heap ones, in a loop) and their funcs are root words of their goroutines.
    And the dump's data and bss pointer slots (the modules' gcdata/gcbss masks) holding
    a word are exactly global_roots' words; its finalizer records are special_roots'
    finalizers."""
    binary = _build_dump_program(toolchain)
    from gdb_go_ext.runtime import walks
    from gdb_go_ext.runtime.heaproots import global_roots, special_roots
    from gdb_go_ext.runtime.stackroots import FUNCDATA_StackObjects, stack_roots
    with harness.run_fixture(binary, args=[str(tmp_path)], out_dir=str(tmp_path)) as fp:
        with open(tmp_path / "heapdump", "rb") as f:
            dump, sections, finalizers, defers = parse_heapdump(f.read())
        with Bridge.attach(fp.pid, binary=binary, quiet=True) as b:
            rt = b.runtime()
            walker, gs = walks.walk(rt, 0)
            s = stack_roots(rt, gs)
            assert s.errors == []
            # without DWARF names: the same words at the same places
            bare = stack_roots(rt, gs, names=False)
            assert sorted(zip(bare.addr.tolist(), bare.value.tolist())) == \
                sorted(zip(s.addr.tolist(), s.value.tolist()))
            assert all(r.variable is None for r in bare.roots)
            rows = {g.id: g for g in gs}
            waiting = rt.layout.status.waiting
            checked = slots = extra = 0
            for goid, frames in dump.items():
                g = rows.get(goid)
                # the program's parked goroutines (the runtime's own, e.g. GC workers, may
                # have moved between the dump and now)
                if goid == 1 or g is None or g.status_code != waiting or \
                        not any(f[2].startswith("main.") for f in frames):
                    continue
                mine = {int(a) for a, r in zip(s.addr, s.root) if s.root_goid[r] == goid and a}
                listed = set()
                for sp, size, name, offs in frames:
                    for off in offs:
                        a = sp + off
                        listed.add(a)
                        v = rt.mem.u64(a)
                        if v and not g.stack_lo <= v < g.stack_hi:
                            slots += 1
                            assert a in mine, (toolchain, goid, name, hex(a), hex(v))
                for a in mine - listed:
                    fr = [f for f in frames if f[0] <= a < f[0] + f[1]]
                    assert fr, (goid, hex(a))
                    fn = rt.pclntab.lookup_func(fr[0][2])
                    assert rt.pclntab.funcdata_addr(fn, FUNCDATA_StackObjects) is not None, \
                        (goid, fr[0][2], hex(a))
                    extra += 1
                checked += 1
            assert checked >= 32 and slots >= 32 * 2, (checked, slots)
            # the defer records scanstack adds: each deferring goroutine's 3 records (a
            # defer in a loop: on the heap), the records and their funcs are its roots
            deferring = [goid for goid, frames in dump.items()
                         if any(f[2] == "main.deferring" for f in frames)]
            assert len(deferring) == 8
            for goid in deferring:
                recs = defers.get(goid, [])
                assert len(recs) == 3, recs
                mine = {int(v) for v, r in zip(s.value, s.root) if s.root_goid[r] == goid}
                for d, fn in recs:
                    assert d in mine and (fn in mine or not fn), (goid, hex(d), hex(fn))
            # the globals: exactly the dump's data and bss pointer slots that hold a word
            g = global_roots(rt)
            assert g.errors == []
            want = set()
            for name in ("data", "bss"):
                base, offs = sections[name]
                want |= {base + o for o in offs if rt.mem.u64(base + o)}
            assert want and {int(a) for a in g.addr} == want
            # the finalizer specials (os.Stdin, Stdout, Stderr's files)
            sp = special_roots(rt, None)
            assert finalizers and sorted(r.name for r in sp.roots if r.kind == "finalizer") \
                == sorted("finalizer of %#x" % o for o in finalizers)


def test_heap_roots_pie(toolchain, tmp_path):
    """A position-independent build, loaded at a bias: symbols, stack maps, stack objects'
    masks and DWARF names are read from the file at the load bias (on the oldest toolchain
    of the heap views and go1.26.6, on a core, through the bridge)."""
    if toolchain not in ("go1.22.10", "go1.26.6"):
        return
    with harness.target_for("heap", toolchain, "core", str(tmp_path), pie=True) as t:
        got = _bridge_summary(t)
        _check(got, t.truth("heap"), toolchain)
