"""The GC's roots (runtime/heaproots.py) on memory images of the heap fixture
(tests/data/heaproots/heap-*.json.gz, captured by tests/data/heaproots/capture.py from
a live process; the ELF beside each has no DWARF, so frame variables are not named
here: tests/integration/test_heap_roots.py checks the names).

Against what the program wrote (heap.json) and what its runtime records (each buffer's
mspan elemsize as spanOf finds it, recorded at capture): the globals, one stack root per
holder goroutine pointing at the start of its own buffer, the finalizer. Then bad input:
garbage moduledata, fuzzed stack maps and stack object records, a stack cut short, a g
whose sp lies outside its stack, a cycle of specials: a partial result and one line per
problem, never an exception or a loop without end."""
import glob
import os
import random
import struct
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

from gdb_go_ext.binary import framevars  # noqa: E402
from gdb_go_ext.runtime import heaproots as H  # noqa: E402
from gdb_go_ext.runtime import stackroots as SR  # noqa: E402
from gdb_go_ext.runtime import walks  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime.gtable import GoroutineTable  # noqa: E402
from gdb_go_ext.runtime.rtypes import MODULE_PATHS  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, poke, unmap  # noqa: E402

IMAGES = sorted(glob.glob(os.path.join(HERE, "data", "heaproots", "heap-*.json.gz")))
IDS = [os.path.basename(p)[len("heap-"):-len(".json.gz")] for p in IMAGES]


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return cached_image(request.param)


def runtime_of(image, mem=None):
    img, types, mem0 = image
    return GoRuntime(ImageTarget(img, types, mem0 if mem is None else mem))


def roots(rt):
    walker, gs = walks.walk(rt, 0)
    return H.global_roots(rt), SR.stack_roots(rt, gs), gs


def test_images_exist_and_are_small():
    assert len(IMAGES) >= 2
    for p in IMAGES:
        assert os.path.getsize(p) < 200_000


def test_roots_as_the_runtime_laid_them_out(image):
    img = image[0]
    truth = img["truth"]
    rt = runtime_of(image)
    g, s, gs = roots(rt)
    assert g.errors == [] and s.errors == []
    arena = int(truth["needle"], 16) >> 26
    by_name = {r.name: i for i, r in enumerate(g.roots)}
    for name, typ in (("main.tree", "*main.node"), ("main.registry", "map[string]*main.entry"),
                      ("main.table", "[]*main.node"), ("main.big", "[]*main.entry"),
                      ("main.finalized", "*main.entry")):
        i = by_name[name]
        assert g.roots[i].kind == "global" and g.roots[i].type_name == typ
        sel = g.root == i
        assert g.offset[sel].tolist() == [0] and int(g.value[sel][0]) >> 26 == arena
        # addr is where the word lies: the symbol's own address
        assert int(g.addr[sel][0]) == rt.elf.symbol(name)[0]
    assert "main.ready" not in by_name     # a WaitGroup holds no pointer
    assert np.all(g.value != 0)
    # the stacks: each holder goroutine, one word, the start of a buffer of its size
    spans = img["spans"]
    for b in truth["buckets"]:
        idx = [i for i in range(len(s.roots)) if s.roots[i].name == b["function"]]
        got = {}
        for i in idx:
            for v, off in zip(s.value[s.root == i].tolist(), s.offset[s.root == i].tolist()):
                start, size = spans.get(str(v), (0, 0))
                if size == b["buffer"]:
                    assert (v - start) % size == 0
                    got.setdefault(s.roots[i].goid, []).append(v)
        assert len(got) == b["goroutines"], (b, len(got))
        assert all(len(v) == 1 for v in got.values())
        assert len({v[0] for v in got.values()}) == b["goroutines"]
    assert (s.root_goid >= 0).all() and len(s.root_goid) == len(s.roots)
    # specials: the finalizer of main.finalized (its fn word: a funcval in the binary)
    sp = H.special_roots(rt, None)
    fin = int(g.value[g.root == by_name["main.finalized"]][0])
    names = [r.name for r in sp.roots]
    assert "finalizer of %#x" % fin in names
    k = names.index("finalizer of %#x" % fin)
    assert sp.roots[k].kind == "finalizer" and (sp.root == k).sum() == 1
    assert any("pointer words not read (no heap)" in e for e in sp.errors)


def test_special_roots_take_the_finalized_objects_words_from_the_heap(image):
    """HeapObjects is duck-typed: a stub over the one finalized object."""
    rt = runtime_of(image)
    fin = rt.mem.u64(rt.elf.symbol("main.finalized")[0])

    class Heap:
        def locate(self, a):
            return np.where(a == np.uint64(fin), 0, -1)

        def addr(self, idx):
            return np.full(len(idx), fin, dtype=np.uint64)

        def pointers(self, idx):   # (object index, offset, value): a word at offset 208
            return idx[:1].copy(), np.array([208]), np.array([0xc0ffee0], np.uint64)

    sp = H.special_roots(rt, Heap())
    k = [r.name for r in sp.roots].index("finalizer of %#x" % fin)
    sel = sp.root == k
    assert len(sp.value[sel]) == 2 and 0xc0ffee0 in sp.value[sel].tolist()
    j = sp.value.tolist().index(0xc0ffee0)
    assert sp.offset[j] == 208 and sp.addr[j] == fin + 208
    assert all("finalizers not found" in e for e in sp.errors)   # the os.Files' are not in it


def _moduledata(rt):
    fl = rt.layout.fields("runtime.moduledata", MODULE_PATHS)
    return rt.target.symbol_address("runtime.firstmoduledata"), fl


@pytest.mark.parametrize("field,value", [
    ("gcdatamask.n", 1 << 30), ("gcdatamask.n", -5), ("gcdatamask.bytedata", 0x10),
    ("gcbssmask.bytedata", 0xdead0000), ("edata", 0), ("data", 0xdeadbeef000),
    ("next", None)])
def test_garbage_moduledata_is_a_line_and_a_partial_result(image, field, value):
    rt0 = runtime_of(image)
    md, fl = _moduledata(rt0)
    mem = copy_memory(image[2])
    off, fmt, _ = fl.spec[field]
    if value is None:
        value = md     # a cycle of modules
    poke(mem, md + off, struct.pack(fmt, value))
    rt = runtime_of(image, mem)
    t = time.monotonic()
    g = H.global_roots(rt)
    assert time.monotonic() - t < 10
    if field != "next":
        assert len(g.errors) == 1, g.errors
    names = {r.name for r in g.roots}
    if field.startswith("gcbss") or field == "next":
        assert "main.holderSize" in names   # data was read (its initialised slice)
    if field.startswith("gcdata") or field in ("edata", "data"):
        assert {"main.tree", "main.registry"} <= names   # bss was read


def _fuzzed(tab, seed):
    """pclntab.funcdata_bytes with random bytes for the stack maps and object records."""
    real = tab.funcdata_bytes
    rnd = random.Random(seed)

    def fake(fn, index, n):
        data = real(fn, index, n)
        if index not in (SR.FUNCDATA_ArgsPointerMaps, SR.FUNCDATA_LocalsPointerMaps,
                         SR.FUNCDATA_StackObjects) or data is None:
            return data
        b = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        return bytes(b)
    return fake


def test_wrong_stack_maps_never_raise_or_hang(image):
    rt = runtime_of(image)
    walker, gs = walks.walk(rt, 0)
    real = rt.pclntab.funcdata_bytes
    want = SR.stack_roots(rt, gs)
    lines = 0
    try:
        for seed in range(40):
            rt._per_binary.pop("stackroots.static", None)   # (what it read of the stack maps)
            rt.pclntab.funcdata_bytes = _fuzzed(rt.pclntab, seed)
            t = time.monotonic()
            s = SR.stack_roots(rt, gs)
            assert time.monotonic() - t < 10
            assert len(s.errors) <= H.MAX_ERRORS + 1
            assert all(isinstance(e, str) and "\n" not in e for e in s.errors)
            lines += len(s.errors)
    finally:
        rt.pclntab.funcdata_bytes = real
        rt._per_binary.pop("stackroots.static", None)   # (what it read of the stack maps)
    assert lines > 0      # some of it must have been noticed
    assert sorted(SR.stack_roots(rt, gs).value.tolist()) == sorted(want.value.tolist())


def test_a_stack_cut_short_is_a_line_and_the_others_are_scanned(image):
    rt0 = runtime_of(image)
    walker, gs = walks.walk(rt0, 0)
    want = SR.stack_roots(rt0, gs)
    holders = [g for g in gs if g.current is not None and g.current.function == "runtime.gopark"
               and g.user is not None and g.user.function == "main.holdA"]
    # (the last: the image holds whole stacks only of each shape's first goroutine, which
    # the others are checked against)
    victim = holders[-1]
    mem = unmap(copy_memory(image[2]), victim.sp, victim.stack_hi - victim.sp)
    rt = runtime_of(image, mem)
    walker, gs = walks.walk(rt, 0)
    s = SR.stack_roots(rt, gs)
    assert s.errors and len(s.errors) <= 2, s.errors
    assert victim.id not in set(s.root_goid.tolist())
    assert len(s.value) < len(want.value)
    others = {g.id for g in holders[:-1]}
    assert others <= set(s.root_goid.tolist())


def _with_rows(t, changed: dict, only=None):
    """The GoroutineTable t with the goroutines at positions changed given as these
    Goroutine rows (as a walk gives its special ones), and only the positions only."""
    rows = t.base_rows()
    specials = dict(t.specials)
    for i, g in changed.items():
        specials[int(rows[i])] = g
    return GoroutineTable(t.base, t.depth, t.shape_idx, t.shapes, specials, t.minutes,
                          t.since, rows if only is None else rows[only])


def test_sp_outside_the_stack_is_a_line(image):
    rt = runtime_of(image)
    walker, gs = walks.walk(rt, 0)
    bad = gs[0]
    bad.sp = bad.stack_hi + 4096
    s = SR.stack_roots(rt, _with_rows(gs, {0: bad}))
    assert any("sp outside their stack" in e for e in s.errors)
    assert bad.id not in set(s.root_goid.tolist())


def test_a_cycle_of_specials_ends(image):
    rt0 = runtime_of(image)
    fin = rt0.mem.u64(rt0.elf.symbol("main.finalized")[0])
    sp0 = H.special_roots(rt0, None)
    k = [r.name for r in sp0.roots].index("finalizer of %#x" % fin)
    special = int(sp0.addr[sp0.root == k][0]) - rt0.layout.fields(
        "runtime.specialfinalizer", ("fn",)).offset("fn")
    mem = copy_memory(image[2])
    poke(mem, special, struct.pack("<Q", special))      # special.next = itself
    rt = runtime_of(image, mem)
    t = time.monotonic()
    sp = H.special_roots(rt, None)
    assert time.monotonic() - t < 10
    assert "finalizer of %#x" % fin in [r.name for r in sp.roots]


def test_frame_pieces_of_dwarf_locations():
    fbreg = lambda k: [0x91] + list(_sleb(k))
    assert framevars.frame_pieces([0x9c]) == [(0, None, 0)]
    assert framevars.frame_pieces(fbreg(-80)) == [(-80, None, 0)]
    # a slice: ptr in a register, len on the stack, cap in a register
    assert framevars.frame_pieces([0x50, 0x93, 8] + fbreg(-40) + [0x93, 8, 0x51, 0x93, 8]) == \
        [(-40, 8, 8)]
    assert framevars.frame_pieces([0x9c, 0x11, 0x10, 0x22]) == [(16, None, 0)]
    assert framevars.frame_pieces([0x03] + [0] * 8) == []          # a global's address: no frame slot
    assert framevars.frame_pieces([0x91]) == []                    # cut short


def _sleb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        if (v == 0 and not b & 0x40) or (v == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def test_a_thread_stopped_anywhere_is_scanned_conservatively(image):
    """A running goroutine's innermost frame (a thread stopped at any instruction, where
    no stack map holds) is scanned word by word, as the runtime scans an asynchronously
    preempted frame: a superset of what its stack map says at a call."""
    rt = runtime_of(image)
    walker, gs = walks.walk(rt, 0)
    i = next(i for i, g in enumerate(gs) if g.user is not None
             and g.user.function == "main.holdA")
    g = gs[i]
    precise = SR.stack_roots(rt, _with_rows(gs, {i: g}, only=[i]))
    g.status_code, g.thread = rt.layout.status.running, 1
    trap = SR.stack_roots(rt, _with_rows(gs, {i: g}, only=[i]))
    assert trap.errors == [] and precise.errors == []
    assert set(precise.value.tolist()) <= set(trap.value.tolist())
    assert set(precise.addr.tolist()) <= set(trap.addr.tolist())
    assert len(trap.value) >= len(precise.value)


def test_stack_roots_are_made_on_demand_and_merge(image):
    rt = runtime_of(image)
    g, s, gs = roots(rt)
    assert isinstance(s.roots, SR.StackRoots) and len(s.roots) == len(s.root_goid)
    first = s.roots[0]
    assert first.kind == "stack" and first.goid == int(s.root_goid[0])
    assert [r.goid for r in s.roots[:3]] == s.root_goid[:3].tolist()
    both = list(g.roots) + s.roots
    assert len(both) == len(g.roots) + len(s.roots)
    sp = H.special_roots(rt, None)
    m = H.merge(g, s, sp)
    assert len(m.value) == len(g.value) + len(s.value) + len(sp.value)
    assert len(m.roots) == len(g.roots) + len(s.roots) + len(sp.roots)
    assert m.errors == g.errors + s.errors + sp.errors
    assert m.roots[int(m.root[len(g.value)])].kind == "stack"
    assert m.roots[int(m.root[0])].kind == "global"
    assert (m.root_goid[:len(g.roots)] == -1).all()
    assert (m.root_goid[len(g.roots):len(g.roots) + len(s.roots)] == s.root_goid).all()
