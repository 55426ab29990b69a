"""The pure parts of the map-access probes (gdb_go_ext/runtime/probes.py) on the
goroutines fixture's memory images (tests/data/goroutines-*.json.gz with the
program's ELF next to it): function choice by key type and entry resolution in
the real binary's pclntab; MapWatch driven by realistic register sequences whose
RSP, R14 and string keys point into memory captured from the real process
(real return addresses into main.* on real goroutine stacks, real g structs,
real runtime strings); summarize/report; and hypothesis fuzzing of the register
values and of the memory they point at: nothing raises but DecodeError, and
nothing hangs.
"""
import os
import struct
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import DecodeError  # noqa: E402
from gdb_go_ext.runtime import probes as P  # noqa: E402
from gdb_go_ext.binary import types as T  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime.values import Addr, ValueDecoder  # noqa: E402
from gdb_go_ext.views.console import json_text  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, images, poke, unmap  # noqa: E402

IMAGES, IDS = images("goroutines")

_BINARY = {}   # executable path -> (ElfFile, PCLineTable): the file is never corrupted

MAP_ADDR = 0xc000123450      # the watched map's header (never read for accesses)
OTHER_MAP = 0xc000999990


_cached = cached_image


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return _cached(request.param)


def make_rt(image, mem=None, zeroval=True):
    """A GoRuntime over the image (or over `mem` in place of its memory), with
    runtime.zeroVal's address from the binary's symbol table (the capture did
    not record that symbol; a live target answers it from the same table)."""
    img, types, mem0 = image
    t = ImageTarget(img, types, mem0 if mem is None else mem)
    rt = GoRuntime(t)
    key = img["executable_path"]
    if key not in _BINARY:
        _BINARY[key] = (rt.elf, rt.pclntab)
    elf, tab = _BINARY[key]
    rt._elf, rt._elf_tried = elf, True
    rt.__dict__["pclntab"] = tab  # functools.cached_property's slot
    t.symbols = dict(t.symbols)
    if zeroval:
        t.symbols["runtime.zeroVal"] = elf.symbol("runtime.zeroVal")[0]
    return rt


def zeroval(image):
    return make_rt(image).target.symbol_address("runtime.zeroVal")


def gotype(image, name, kind):
    return next(t for t in image[1] if t.name == name and t.kind == kind)


def map_type(key):
    return T.GoType("map[%s]int" % key.name, T.MAP, 8, key=key)


def probes_for(rt, key):
    return P.resolve_entries(P.probe_functions(key, writes=True), P.pclntab_lookup(rt.pclntab))


def probe(probes, name):
    return next(p for p in probes if p.function == name)


def call_sites(image):
    """Real call sites: (g addr, goid, slot, return address, caller frame), where
    slot is the stack address holding a return address into a main.* function,
    and the caller frame the innermost one there, as the walk captured in gdb saw them."""
    img, _, _ = image
    t = ImageTarget(*image)
    stacks = {g: (sp, hi) for g, sp, hi in img["goroutines"]["stacks"]}
    out = []
    for g in img["goroutines"]["walk"]:
        addr = int(g["addr"], 16)
        if addr not in stacks or g["error"]:
            continue
        sp, hi = stacks[addr]
        for f in g["stack"][1:]:
            if not f["function"].startswith("main."):
                continue
            # the innermost logical frame at the return address: an inlined
            # callee (main.recvInline in (*Server).handle) when there is one
            ret = int(f["pc"], 16)
            for slot in range(sp, hi, 8):
                if struct.unpack("<Q", t.read(slot, 8))[0] == ret:
                    out.append((addr, g["id"], slot, ret, f))
                    break
            break
    assert len(out) >= 5, out
    return out


def regs(pc=0, sp=0, rax=0, rbx=0, rcx=0, rdi=0, r14=0):
    return P.Regs(pc=pc, sp=sp, rax=rax, rbx=rbx, rcx=rcx, rdi=rdi, r14=r14)


def wait_reason_string(image, i=2):
    """(data pointer, length, text) of runtime.waitReasonStrings[i], in captured memory."""
    t = ImageTarget(*image)
    arr = image[0]["symbols"]["runtime.waitReasonStrings"]
    p, n = struct.unpack("<QQ", t.read(arr + 16 * i, 16))
    text = t.read(p, n).decode()
    assert text == make_rt(image).wait_reasons[i] and n > 3
    return p, n, text


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        self.t += 0.25
        return self.t


# ---------------------------------------------------------------------------
# which functions, and where
# ---------------------------------------------------------------------------
def test_variants_for_each_key_kind(image):
    s = gotype(image, "string", T.STRING)
    i64 = gotype(image, "int64", T.INT)
    u32 = gotype(image, "uint32", T.UINT)
    u8 = gotype(image, "uint8", T.UINT)
    assert P.variants_for(s) == (P.GENERIC, P.FASTSTR)
    assert P.variants_for(i64) == (P.GENERIC, P.FAST64)
    assert P.variants_for(u32) == (P.GENERIC, P.FAST32)
    assert P.variants_for(u8) == (P.GENERIC,)
    assert P.variants_for(None) == (P.GENERIC, P.FAST32, P.FAST64, P.FASTSTR)
    # floats and interfaces hash specially: never the memory-comparable fast paths
    for k, size in ((T.FLOAT, 8), (T.FLOAT, 4), (T.COMPLEX, 8), (T.IFACE, 16), (T.EFACE, 16)):
        assert P.variants_for(T.GoType("x", k, size)) == (P.GENERIC,)
    two_int32 = T.GoType("main.pt", T.STRUCT, 8, fields=(T.Field("x", 0, gotype(image, "int32", T.INT)),
                                                         T.Field("y", 4, gotype(image, "int32", T.INT))))
    assert P.variants_for(two_int32) == (P.GENERIC, P.FAST64)
    assert P.variants_for(T.GoType("ptr", T.PTR, 8)) == (P.GENERIC, P.FAST64)
    assert P.variants_for(T.GoType("[3]int64", T.ARRAY, 24)) == (P.GENERIC,)


def test_probe_functions(image):
    s = gotype(image, "string", T.STRING)
    i64 = gotype(image, "int64", T.INT)
    u32 = gotype(image, "uint32", T.UINT)
    big = T.GoType("main.big", T.STRUCT, 24)
    assert P.probe_functions(s) == ["runtime.mapaccess1", "runtime.mapaccess2",
                                    "runtime.mapaccess1_faststr", "runtime.mapaccess2_faststr"]
    assert P.probe_functions(i64) == ["runtime.mapaccess1", "runtime.mapaccess2",
                                      "runtime.mapaccess1_fast64", "runtime.mapaccess2_fast64"]
    assert P.probe_functions(u32) == ["runtime.mapaccess1", "runtime.mapaccess2",
                                      "runtime.mapaccess1_fast32", "runtime.mapaccess2_fast32"]
    assert P.probe_functions(big) == ["runtime.mapaccess1", "runtime.mapaccess2"]
    w = P.probe_functions(i64, writes=True)
    assert set(w) == {"runtime.mapaccess1", "runtime.mapaccess2", "runtime.mapaccess1_fast64",
                      "runtime.mapaccess2_fast64", "runtime.mapassign", "runtime.mapassign_fast64",
                      "runtime.mapassign_fast64ptr", "runtime.mapdelete", "runtime.mapdelete_fast64"}
    assert set(P.probe_functions(s, writes=True)) - set(P.probe_functions(s)) == {
        "runtime.mapassign", "runtime.mapassign_faststr", "runtime.mapdelete",
        "runtime.mapdelete_faststr"}
    assert len(P.probe_functions(None, writes=True)) == len(P.FUNCTIONS)
    for name in P.probe_functions(None, writes=True):
        assert P.FUNCTIONS[name][0] in (P.ACCESS1, P.ACCESS2, P.ASSIGN, P.DELETE)


@pytest.mark.parametrize("key", ["string", "int64", "uint32", "big", None])
def test_resolve_entries_in_the_real_binary(image, key):
    rt = make_rt(image)
    kt = {"string": lambda: gotype(image, "string", T.STRING),
          "int64": lambda: gotype(image, "int64", T.INT),
          "uint32": lambda: gotype(image, "uint32", T.UINT),
          "big": lambda: T.GoType("main.big", T.STRUCT, 24), None: lambda: None}[key]()
    names = P.probe_functions(kt, writes=True)
    probes = P.resolve_entries(names, P.pclntab_lookup(rt.pclntab))
    present = [n for n in names if rt.pclntab.lookup_func(n) is not None]
    assert [p.function for p in probes] == present
    # mapaccess1/2 (generic) are in every binary
    assert {"runtime.mapaccess1", "runtime.mapaccess2"} <= {p.function for p in probes}
    for p in probes:
        f = rt.pclntab.func_for_pc(p.address)
        assert f.entry == p.address and f.name == p.function == p.symbol
        assert (p.op, p.variant) == P.FUNCTIONS[p.function]
    assert len({p.address for p in probes}) == len(probes)
    if key == "string":
        assert {"runtime.mapaccess1_faststr", "runtime.mapaccess2_faststr"} <= {
            p.function for p in probes}
    if key == "int64":
        assert "runtime.mapaccess2_fast64" in {p.function for p in probes}
        if image[0]["version"].startswith("go1.19"):
            # unreferenced by the program: dropped by the linker, not probed
            assert "runtime.mapaccess1_fast64" not in {p.function for p in probes}


def test_pclntab_lookup_and_alternative_names(image):
    rt = make_rt(image)
    look = P.pclntab_lookup(rt.pclntab)
    assert look("main.main") == rt.pclntab.lookup_func("main.main").entry
    assert look("runtime.no_such_function") is None
    # a Swiss runtime whose linker kept only the package's name
    e = look("runtime.mapaccess2_faststr")
    alt = {"internal/runtime/maps.runtime_mapaccess2_faststr": e}
    got = P.resolve_entries(["runtime.mapaccess2_faststr", "runtime.mapaccess1_faststr"], alt.get)
    assert got == [P.Probe("runtime.mapaccess2_faststr",
                           "internal/runtime/maps.runtime_mapaccess2_faststr", e,
                           P.ACCESS2, P.FASTSTR)]
    # two names at one address (aliases): probed once
    same = P.resolve_entries(["runtime.mapaccess1", "runtime.mapaccess2"], lambda s: 0x401000)
    assert [p.function for p in same] == ["runtime.mapaccess1"]
    assert P.resolve_entries(["runtime.mapaccess1"], lambda s: 0) == []


# ---------------------------------------------------------------------------
# key decoding
# ---------------------------------------------------------------------------
def test_key_bytes_and_decode_key(image):
    rt = make_rt(image)
    vd = ValueDecoder(rt)
    i64 = gotype(image, "int64", T.INT)
    u32 = gotype(image, "uint32", T.UINT)
    s = gotype(image, "string", T.STRING)
    p, n, text = wait_reason_string(image)
    r = regs(rcx=(-5) & 0xFFFFFFFFFFFFFFFF)
    assert P.key_bytes(P.FAST64, r, i64, rt.mem.read) == struct.pack("<q", -5)
    assert P.decode_key(P.FAST64, r, i64, rt.mem, vd) == -5
    assert P.decode_key(P.FAST32, regs(rcx=0xAAAA_0000_0007), u32, rt.mem, vd) == 7
    assert P.decode_key(P.FASTSTR, regs(rcx=p, rdi=n), s, rt.mem, vd) == text
    assert P.decode_key(P.FASTSTR, regs(rcx=p, rdi=0), s, rt.mem, vd) == ""
    # generic: RCX points at the key (here: the string header in the runtime's table)
    arr = image[0]["symbols"]["runtime.waitReasonStrings"]
    assert P.decode_key(P.GENERIC, regs(rcx=arr + 32), s, rt.mem, vd) == text
    assert P.decode_key(P.GENERIC, regs(rcx=image[0]["goroutines"]["gs"][0]), i64,
                        rt.mem, vd) == struct.unpack("<q", rt.mem.read(
                            image[0]["goroutines"]["gs"][0], 8))[0]
    # unreadable: text, never an exception
    assert P.decode_key(P.GENERIC, regs(rcx=0xdead0000), s, rt.mem, vd).startswith(
        "<unreadable key:")
    assert P.decode_key(P.FASTSTR, regs(rcx=0xdead0000, rdi=4), s, rt.mem, vd).startswith(
        "<unreadable")
    assert P.decode_key(P.FASTSTR, regs(rcx=p, rdi=1 << 62), s, rt.mem, vd).startswith("<bad string")
    # a 4-byte register value for an 8-byte key: said so
    assert P.decode_key(P.FAST32, regs(rcx=1), i64, rt.mem, vd) == "<key of 4 bytes for int64>"
    assert P.decode_key(P.GENERIC, regs(rcx=0), T.GoType("struct {}", T.STRUCT, 0),
                        rt.mem, vd) == {}


# ---------------------------------------------------------------------------
# MapWatch on realistic register sequences
# ---------------------------------------------------------------------------
def new_watch(image, key, mem=None, **kw):
    rt = make_rt(image, mem)
    probes = probes_for(rt, key)
    kw.setdefault("clock", Clock())
    return rt, probes, P.MapWatch(rt, MAP_ADDR, map_type(key), key, probes, **kw)


def test_int64_key_hit_found_missing_and_other_map(image):
    i64 = gotype(image, "int64", T.INT)
    rt, probes, w = new_watch(image, i64)
    zv = zeroval(image)
    assert w.zeroval == zv and zv
    a1 = probe(probes, "runtime.mapaccess1")           # generic: RCX -> key
    a2 = probe(probes, "runtime.mapaccess2_fast64")
    (g1, id1, slot1, ret1, f1), (g2, id2, slot2, ret2, f2) = call_sites(image)[:2]
    assert id1 != id2

    # another map: counted, nothing else
    assert w.on_entry(a2, regs(a2.address, slot1, 0x1, OTHER_MAP, 7, 0, g1)) is None
    assert w.other_calls == 1 and w.hits == [] and w.pending == {}

    # ours, by two goroutines at once; the generic one's key is a real int64 in memory
    keyaddr = slot2  # the return address word itself, as an int64
    h1 = w.on_entry(a2, regs(a2.address, slot1, 0x1, MAP_ADDR, 42, 0, g1))
    h2 = w.on_entry(a1, regs(a1.address, slot2, 0x1, MAP_ADDR, keyaddr, 0, g2))
    assert h1.key == 42 and h2.key == ret2
    assert (h1.goroutine, h2.goroutine) == (id1, id2)
    assert (h1.ret, h1.sp, h1.g, h1.seq) == (ret1, slot1, g1, 0)
    assert (h2.ret, h2.sp, h2.g, h2.seq) == (ret2, slot2, g2, 1)
    fr = rt.pclntab.frames_for_return(ret1)[0]
    assert h1.caller == {"function": fr.print_name, "file": fr.file, "line": fr.line}
    assert h1.caller["function"] == f1["function"] and h1.caller["line"] == f1["line"]
    assert h1.caller["file"] == f1["file"] and h1.caller["function"].startswith("main.")
    assert h2.caller["function"] == f2["function"] and h2.caller["line"] == f2["line"]
    # (*Server).handle's call site is inside inlined main.recvInline: the innermost frame
    assert any(s[4]["inlined"] for s in call_sites(image))
    assert h1.found is None and h1.op == P.ACCESS2 and h1.function == a2.function
    assert set(w.pending) == {g1, g2}

    # a return breakpoint hit by another goroutine, or at another address: not ours
    assert w.on_return(regs(ret1, slot1 + 8, 0x1, 1, 0, 0, g2)) is None
    assert w.on_return(regs(ret1 + 1, slot1 + 8, 0x1, 1, 0, 0, g1)) is None
    assert w.on_return(regs(ret1, slot1 + 8, 0x1, 1, 0, 0, 0xc0ffee)) is None
    assert set(w.pending) == {g1, g2}

    # mapaccess2: BL says it (upper bits of RBX are junk)
    assert w.on_return(regs(ret1, slot1 + 8, zv, 0xFFFF_FF00, 0, 0, g1)) is h1
    assert h1.found is False
    # mapaccess1: RAX == &zeroVal is missing, anything else found
    assert w.on_return(regs(ret2, slot2 + 8, 0xc000010000, 0, 0, 0, g2)) is h2
    assert h2.found is True
    assert w.pending == {}
    # a second return at the same place: nothing pending
    assert w.on_return(regs(ret2, slot2 + 8, zv, 0, 0, 0, g2)) is None

    h3 = w.on_entry(a1, regs(a1.address, slot2, 0x1, MAP_ADDR, keyaddr, 0, g2))
    assert w.on_return(regs(ret2, slot2 + 8, zv, 1, 0, 0, g2)).found is False and h3.seq == 2
    h4 = w.on_entry(a2, regs(a2.address, slot1, 0x1, MAP_ADDR, 42, 0, g1))
    assert w.on_return(regs(ret1, slot1 + 8, zv, 0x1, 0, 0, g1)).found is True and h4.seq == 3
    assert w.errors == [] and w.other_calls == 1 and len(w.hits) == 4


def test_string_key_from_real_memory(image):
    s = gotype(image, "string", T.STRING)
    rt, probes, w = new_watch(image, s)
    zv = zeroval(image)
    p, n, text = wait_reason_string(image)
    a1 = probe(probes, "runtime.mapaccess1_faststr")
    a2 = probe(probes, "runtime.mapaccess2_faststr")
    g, gid, slot, ret, f = call_sites(image)[2]
    h = w.on_entry(a1, regs(a1.address, slot, 0x1, MAP_ADDR, p, n, g))
    assert h.key == text and h.goroutine == gid and h.caller["function"] == f["function"]
    assert w.on_return(regs(ret, slot + 8, zv, 0, 0, 0, g)).found is False
    # a prefix of it: the length is RDI's
    h = w.on_entry(a2, regs(a2.address, slot, 0x1, MAP_ADDR, p, 2, g))
    assert h.key == text[:2]
    assert w.on_return(regs(ret, slot + 8, 0, 1, 0, 0, g)).found is True
    # a label string of the fixture, from the generic function (RCX -> string header)
    arr = image[0]["symbols"]["runtime.waitReasonStrings"]
    h = w.on_entry(probe(probes, "runtime.mapaccess1"), regs(0, slot, 0x1, MAP_ADDR, arr + 16 * 2, 0, g))
    assert h.key == text
    assert w.on_return(regs(ret, slot + 8, zv + 8, 0, 0, 0, g)).found is True
    rep = P.report(w, "count", "map[string]int")
    assert [x["key"] for x in rep["hits"]] == [text, text[:2], text]
    assert rep["summary"]["keys"][0] == {"key": text[:2], "hits": 1, "found": 1, "missing": 0,
                                         "unknown": 0} or rep["summary"]["distinct_keys"] == 2
    json_text(rep)



def test_pointer_keys_are_addresses_ordered_and_written_as_0x_text():
    keys = [Addr(0xa), Addr(0x9), Addr(0xa), Addr(0x100), 7]
    hits = [P.Hit(i, 0.0, "runtime.mapaccess1", P.ACCESS1, k, 1, None, 0, 0, 0, found=True)
            for i, k in enumerate(keys)]
    s = P.summarize(hits, 1.0)
    # numbers first, then as the JSON text orders them ("0x100" before "0x9")
    assert [d["key"] for d in s["keys"]] == [Addr(0xa), 7, Addr(0x100), Addr(0x9)]
    assert '"key": "0x100"' in json_text(s) and '"key": 7' in json_text(s)

def test_no_zeroval_symbol_leaves_access1_unknown(image):
    i64 = gotype(image, "int64", T.INT)
    rt = make_rt(image, zeroval=False)
    probes = probes_for(rt, i64)
    w = P.MapWatch(rt, MAP_ADDR, map_type(i64), i64, probes)
    g, gid, slot, ret, _ = call_sites(image)[0]
    a1 = probe(probes, "runtime.mapaccess1")
    w.on_entry(a1, regs(0, slot, 0, MAP_ADDR, slot, 0, g))
    assert w.on_return(regs(ret, 0, 0x1234, 0, 0, 0, g)).found is None


def test_goroutine_unknown_when_r14_is_not_a_g(image):
    i64 = gotype(image, "int64", T.INT)
    rt, probes, w = new_watch(image, i64)
    _, _, slot, ret, _ = call_sites(image)[0]
    a = probe(probes, "runtime.mapaccess2_fast64")
    h = w.on_entry(a, regs(0, slot, 0, MAP_ADDR, 1, 0, 0))
    assert h.goroutine is None
    w.on_return(regs(ret, 0, 0, 1, 0, 0, 0))
    h = w.on_entry(a, regs(0, slot, 0, MAP_ADDR, 1, 0, 0xdead0000))
    assert h.goroutine is None and h.g == 0xdead0000


def test_restart_after_stack_growth_and_lost_return(image):
    i64 = gotype(image, "int64", T.INT)
    img, types, mem0 = image
    (g, gid, slot, ret, f), (g2, _, slot2, ret2, _) = call_sites(image)[:2]
    mem = copy_memory(mem0)
    # the stack moved (morestack copied it): same return address at another slot
    moved = slot - 64
    poke(mem, moved, ret.to_bytes(8, "little"))
    rt, probes, w = new_watch(image, i64, mem)
    a = probe(probes, "runtime.mapaccess2_fast64")
    h = w.on_entry(a, regs(a.address, slot, 0, MAP_ADDR, 9, 0, g))
    again = w.on_entry(a, regs(a.address, moved, 0, MAP_ADDR, 9, 0, g))
    assert again is h and w.restarts == 1 and len(w.hits) == 1 and h.sp == moved
    # the same goroutine enters again from elsewhere: the first call's return was lost
    poke(mem, moved, ret2.to_bytes(8, "little"))
    h2 = w.on_entry(a, regs(a.address, moved, 0, MAP_ADDR, 9, 0, g))
    assert h2 is not h and h2.ret == ret2 and len(w.hits) == 2
    assert len(w.errors) == 1 and "never returned" in w.errors[0] and str(gid) in w.errors[0]
    assert w.pending == {g: h2} and h.found is None
    assert w.on_return(regs(ret, 0, 0, 1, 0, 0, g)) is None          # the lost one
    assert w.on_return(regs(ret2, 0, 0, 1, 0, 0, g)) is h2 and h2.found is True


def test_nested_probed_call_is_not_a_hit(image):
    """go1.27's mapaccess1_fast64 calls mapaccess2_fast64: the inner entry's return
    address lies inside a probed function; only the outer call counts."""
    i64 = gotype(image, "int64", T.INT)
    img, types, mem0 = image
    g, gid, slot, ret, _ = call_sites(image)[0]
    rt0 = make_rt(image)
    probes = probes_for(rt0, i64)
    outer = probe(probes, "runtime.mapaccess1")
    inner = probe(probes, "runtime.mapaccess2_fast64")
    inner_ret = outer.address + 0x20
    assert rt0.pclntab.func_for_pc(inner_ret).entry == outer.address
    mem = copy_memory(mem0)
    poke(mem, slot - 0x40, inner_ret.to_bytes(8, "little"))
    rt, _, w = new_watch(image, i64, mem)
    h = w.on_entry(outer, regs(outer.address, slot, 0, MAP_ADDR, slot, 0, g))
    assert w.on_entry(inner, regs(inner.address, slot - 0x40, 0, MAP_ADDR, 5, 0, g)) is None
    assert w.nested_calls == 1 and len(w.hits) == 1 and w.pending == {g: h}
    assert w.on_entry(inner, regs(inner.address, slot - 0x40, 0, MAP_ADDR, 5, 0, g)) is None
    assert w.nested_calls == 2
    assert w.on_return(regs(ret, 0, zeroval(image), 0, 0, 0, g)) is h and h.found is False


def test_unreadable_return_address(image):
    i64 = gotype(image, "int64", T.INT)
    g, gid, slot, ret, _ = call_sites(image)[0]
    mem = unmap(copy_memory(image[2]), slot, 8)
    rt, probes, w = new_watch(image, i64, mem)
    a = probe(probes, "runtime.mapaccess2_fast64")
    assert w.on_entry(a, regs(0, slot, 0, MAP_ADDR, 1, 0, g)) is None
    assert w.hits == [] and len(w.errors) == 1 and "cannot read the return address" in w.errors[0]
    for _ in range(100):
        w.on_entry(a, regs(0, slot, 0, MAP_ADDR, 1, 0, g))
    assert len(w.errors) == 50   # bounded


def test_max_hits_and_done(image):
    i64 = gotype(image, "int64", T.INT)
    sites = call_sites(image)
    rt, probes, w = new_watch(image, i64, max_hits=2)
    a = probe(probes, "runtime.mapaccess2_fast64")
    for i, (g, _, slot, _, _) in enumerate(sites[:3]):
        w.on_entry(a, regs(0, slot, 0, MAP_ADDR, i, 0, g))
    assert len(w.hits) == 2 and w.full and not w.done
    w.on_return(regs(sites[0][3], 0, 0, 1, 0, 0, sites[0][0]))
    assert not w.done
    w.on_return(regs(sites[1][3], 0, 0, 0, 0, 0, sites[1][0]))
    assert w.done and [h.found for h in w.hits] == [True, False]


def test_assign_and_delete_by_map_count(image):
    """mapassign/mapdelete: the map's count before and after says whether the key was there."""
    i64 = gotype(image, "int64", T.INT)
    img, types, mem0 = image
    g, gid, slot, ret, _ = call_sites(image)[0]
    sp, hi = next((sp, hi) for a, sp, hi in img["goroutines"]["stacks"] if a == g)
    hdr_name = "internal/runtime/maps.Map" if img["lookup_types"].get(
        "internal/runtime/maps.Map") is not None else "runtime.hmap"
    hdr = ImageTarget(*image).lookup_type(hdr_name)
    count_off = (hdr.field("count") or hdr.field("used")).offset
    mt = T.GoType("map[int64]int", T.MAP, 8, key=i64, extra={"header": hdr})
    mem = copy_memory(mem0)
    maddr = (hi - 8 * 40) & ~7   # a part of the captured stack used as a map header
    rt = make_rt(image, mem)
    probes = probes_for(rt, i64)
    w = P.MapWatch(rt, maddr, mt, i64, probes, clock=Clock())

    def count(n):
        poke(mem, maddr + count_off, n.to_bytes(8, "little"))
    asg = probe(probes, "runtime.mapassign")
    dele = probe(probes, "runtime.mapdelete")
    count(3)
    h = w.on_entry(asg, regs(0, slot, 0, maddr, slot, 0, g))
    assert h.count_before == 3 and h.op == P.ASSIGN
    count(4)
    assert w.on_return(regs(ret, 0, 0, 0, 0, 0, g)).found is False    # a new entry
    h = w.on_entry(asg, regs(0, slot, 0, maddr, slot, 0, g))
    assert w.on_return(regs(ret, 0, 0, 0, 0, 0, g)).found is True     # replaced
    h = w.on_entry(dele, regs(0, slot, 0, maddr, slot, 0, g))
    count(3)
    assert w.on_return(regs(ret, 0, 0, 0, 0, 0, g)).found is True     # one went
    h = w.on_entry(dele, regs(0, slot, 0, maddr, slot, 0, g))
    assert w.on_return(regs(ret, 0, 0, 0, 0, 0, g)).found is False    # nothing to delete
    # the header became unreadable: unknown
    h = w.on_entry(dele, regs(0, slot, 0, maddr, slot, 0, g))
    w.mem.read = lambda a, n: (_ for _ in ()).throw(DecodeError("gone")) if a == maddr + count_off \
        else rt.target.read(a, n)
    assert w.on_return(regs(ret, 0, 0, 0, 0, 0, g)).found is None
    s = P.summarize(w.hits, 2.0)
    assert s["by_op"] == {"assign": 2, "delete": 3} and s["unknown"] == 1


def test_summarize_and_report(image):
    i64 = gotype(image, "int64", T.INT)
    sites = call_sites(image)
    rt, probes, w = new_watch(image, i64)
    a1 = probe(probes, "runtime.mapaccess1")
    a2 = probe(probes, "runtime.mapaccess2_fast64")
    g0, id0, s0, r0, f0 = sites[0]
    g1, id1, s1, r1, f1 = sites[1]
    plan = [(a2, g0, s0, r0, 7, False), (a2, g0, s0, r0, 7, False), (a2, g1, s1, r1, 7, True),
            (a2, g1, s1, r1, -1, False), (a2, g0, s0, r0, 100, True)]
    for p, g, s, r, key, found in plan:
        w.on_entry(p, regs(p.address, s, 0, MAP_ADDR, key & (2 ** 64 - 1), 0, g))
        w.on_return(regs(r, 0, 0, int(found), 0, 0, g))
    w.on_entry(a1, regs(a1.address, s1, 0, MAP_ADDR, s1, 0, g1))   # never returns
    w.on_entry(a2, regs(a2.address, s0, 0, OTHER_MAP, 1, 0, g0))
    rep = P.report(w, "timeout", "map[int64]int", return_addrs={r1, r0})
    json_text(rep)
    assert rep["map"] == "0x%x" % MAP_ADDR and rep["key_type"] == "int64"
    assert rep["type"] == "map[int64]int" and rep["stopped_by"] == "timeout"
    assert rep["other_map_calls"] == 1 and rep["errors"] == []
    assert rep["return_breakpoints"] == ["0x%x" % a for a in sorted({r0, r1})]
    assert [p["function"] for p in rep["probes"]] == [p.function for p in probes]
    assert rep["probes"][0]["address"] == "0x%x" % probes[0].address
    assert [h["found"] for h in rep["hits"]] == [False, False, True, False, True, None]
    assert [h["goroutine"] for h in rep["hits"]] == [id0, id0, id1, id1, id0, id1]
    assert rep["hits"][0]["caller"]["function"] == f0["function"]
    assert all(h["t"] > 0 for h in rep["hits"])
    s = rep["summary"]
    assert (s["hits"], s["found"], s["missing"], s["unknown"]) == (6, 2, 3, 1)
    assert s["distinct_keys"] == 4
    assert s["by_function"] == {"runtime.mapaccess1": 1, "runtime.mapaccess2_fast64": 5}
    assert s["by_op"] == {"access1": 1, "access2": 5}
    assert s["top_missing"][0] == {"key": 7, "missing": 2, "hits": 3}
    assert {"key": -1, "missing": 1, "hits": 1} in s["top_missing"]
    callers = {(c["function"], c["line"]): c["hits"] for c in s["top_callers"]}
    assert callers[(f0["function"], f0["line"])] == 3
    assert callers[(f1["function"], f1["line"])] == 3
    assert s["seconds"] > 0 and s["hits_per_second"] == round(6 / s["seconds"], 1)
    assert w.pending == {}   # report() finished the watch
    # empty
    e = P.summarize([], 0.0)
    assert e["hits"] == 0 and e["hits_per_second"] is None and e["keys"] == []


# ---------------------------------------------------------------------------
# hypothesis: random registers, random memory under them
# ---------------------------------------------------------------------------
U64 = st.integers(0, 2 ** 64 - 1)


def _interesting(image):
    img = image[0]
    zv = zeroval(image)
    sites = call_sites(image)
    arr = img["symbols"]["runtime.waitReasonStrings"]
    return [0, 1, 8, 0xFF, 2 ** 63, 2 ** 64 - 1, 2 ** 64 - 8, 0xdead0000, MAP_ADDR, zv, arr,
            arr + 16, *img["goroutines"]["gs"][:3], *[s[2] for s in sites[:3]],
            *[s[3] for s in sites[:3]]]


def _reg(image):
    return st.one_of(U64, st.sampled_from(_interesting(image)))


KEY_TYPES = ["int64", "string", "uint32", "uint8", "struct0", "iface", "float64", "big"]


def _key_type(image, name):
    return {"int64": lambda: gotype(image, "int64", T.INT),
            "string": lambda: gotype(image, "string", T.STRING),
            "uint32": lambda: gotype(image, "uint32", T.UINT),
            "uint8": lambda: gotype(image, "uint8", T.UINT),
            "struct0": lambda: T.GoType("struct {}", T.STRUCT, 0),
            "iface": lambda: T.GoType("interface {}", T.EFACE, 16),
            "float64": lambda: T.GoType("float64", T.FLOAT, 8),
            "big": lambda: T.GoType("main.big", T.STRUCT, 24, fields=(
                T.Field("s", 0, gotype(image, "string", T.STRING)),
                T.Field("n", 16, gotype(image, "int64", T.INT))))}[name]()


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_fuzz_registers_and_memory(path):
    image = _cached(path)
    sites = call_sites(image)
    img, types, mem0 = image
    rt0 = make_rt(image)
    all_probes = probes_for(rt0, None)
    reg = _reg(image)
    regions = [(s, 8) for _, _, s, _, _ in sites[:4]] + [(g, 512) for g in img["goroutines"]["gs"][:4]]
    p, n, _ = wait_reason_string(image)
    regions.append((p, n))
    arr = img["symbols"]["runtime.waitReasonStrings"]
    regions.append((arr, 64))

    corruption = st.tuples(st.sampled_from(regions), st.integers(0, 4096),
                           st.binary(min_size=1, max_size=16))
    call = st.tuples(st.booleans(), st.sampled_from(all_probes),
                     st.tuples(reg, reg, reg, reg, reg, reg, reg))

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(KEY_TYPES), corrupt=st.lists(corruption, max_size=4),
           drop=st.lists(st.sampled_from(regions), max_size=2),
           calls=st.lists(call, min_size=1, max_size=12), max_hits=st.sampled_from([None, 1, 3]))
    def run(key, corrupt, drop, calls, max_hits):
        mem = copy_memory(mem0)
        for (a, size), off, data in corrupt:
            at = a + off % max(size, 1)
            try:
                poke(mem, at, data)
            except AssertionError:
                pass
        for a, size in drop:
            mem = unmap(mem, a, size)
        kt = _key_type(image, key)
        rt = make_rt(image, mem)
        vd = ValueDecoder(rt)
        t0 = time.monotonic()
        try:
            w = P.MapWatch(rt, MAP_ADDR, map_type(kt), kt, all_probes, max_hits=max_hits)
            for is_entry, pr, rr in calls:
                r = P.Regs(*rr)
                if is_entry:
                    r.rbx = MAP_ADDR if r.rbx % 3 else r.rbx
                    h = w.on_entry(pr, r)
                    if h is not None:
                        json_text(h.to_json())
                else:
                    w.on_return(r)
                P.decode_key(pr.variant, r, kt, rt.mem, vd)
            json_text(P.report(w, "fuzz", "map[x]int", return_addrs={h.ret for h in w.hits}))
        except DecodeError:
            pass
        assert time.monotonic() - t0 < 5

    run()


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_fuzz_returns_after_real_entries(path):
    """Entries from real call sites, then returns with random registers: a hit
    completes only at its own return address on its own g."""
    image = _cached(path)
    sites = call_sites(image)
    i64 = gotype(image, "int64", T.INT)
    rt = make_rt(image)
    probes = probes_for(rt, i64)
    a2 = probe(probes, "runtime.mapaccess2_fast64")
    reg = _reg(image)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(rets=st.lists(st.tuples(reg, reg, reg, reg), max_size=20))
    def run(rets):
        w = P.MapWatch(rt, MAP_ADDR, map_type(i64), i64, probes)
        for g, _, slot, _, _ in sites[:3]:
            w.on_entry(a2, regs(a2.address, slot, 0, MAP_ADDR, 1, 0, g))
        want = {s[0]: s[3] for s in sites[:3]}
        for pc, rax, rbx, r14 in rets:
            pending = w.pending.get(r14)
            h = w.on_return(regs(pc, 0, rax, rbx, 0, 0, r14))
            if h is not None:
                assert h is pending and want[r14] == pc and h.found == bool(rbx & 0xFF)
            else:
                assert pending is None or pending.ret != pc
        json_text(P.report(w, "fuzz", "map[int64]int"))

    run()


def test_faststr_key_from_signed_gdb_registers():
    image = _cached(IMAGES[0])
    rt = make_rt(image)
    s = gotype(image, "string", T.STRING)
    P.decode_key(P.FASTSTR, regs(rcx=-8, rdi=5), s, rt.mem, ValueDecoder(rt))
