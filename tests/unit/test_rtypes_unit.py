"""runtime/rtypes.py: the runtime's type descriptors read from memory images of the heap
fixture (tests/data/heap-*.json.gz, see tests/data/heap/capture.py), against the
program's DWARF (field names and offsets of main.node and main.entry) and the compiler's
own pointer bitmaps; GC programs (Go 1.22/1.23) against hand-written programs in the
runtime's encoding; garbage descriptors: None and one line, never an exception."""
import os
import sys

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)

from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime.heapobjs import read_heap  # noqa: E402
from gdb_go_ext.runtime.rtypes import KIND_ARRAY, KIND_PTR, KIND_STRUCT, rtypes, run_gc_prog  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, images, poke  # noqa: E402

IMAGES, IDS = images("heap")


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return cached_image(request.param)


def runtime_of(image, mem=None):
    img, types, mem0 = image
    return GoRuntime(ImageTarget(img, types, copy_memory(mem0) if mem is None else mem))


def heap_types(rt):
    h = read_heap(rt)
    R = rtypes(rt)
    alloc = np.flatnonzero(h.allocated)
    return R, {R.at(int(a)).name: R.at(int(a)) for a in np.unique(h.type_of(alloc)) if a}


def test_heap_types_against_dwarf(image):
    rt = runtime_of(image)
    R, by_name = heap_types(rt)
    assert R.errors == []
    pnode, pentry = by_name["*main.node"], by_name["*main.entry"]
    assert pnode.kind == pentry.kind == KIND_PTR and pnode.size == pnode.ptrbytes == 8
    assert pnode.ptr_mask().tolist() == [True]
    for rtype, dwarf in ((pnode.elem, rt.type("main.node")), (pentry.elem, rt.type("main.entry"))):
        assert rtype.kind == KIND_STRUCT and rtype.name == dwarf.name
        assert rtype.size == dwarf.size
        assert [(n, o, t.size) for n, o, t in rtype.fields] == \
            [(f.name, f.offset, f.type.size) for f in dwarf.fields]
    node, entry = pnode.elem, pentry.elem
    assert node.ptrbytes == 16 and node.ptr_mask().tolist() == [True, True]
    pad = dict((n, t) for n, _, t in node.fields)["pad"]
    assert pad.kind == KIND_ARRAY and pad.length == 5 and pad.elem.name == "int64"
    # entry: name (a string: its data pointer), payload, next
    nw = entry.ptrbytes // 8
    mask = entry.ptr_mask()
    assert len(mask) == nw and mask[0] and mask[nw - 1] and mask.sum() == 2
    assert nw * 8 == rt.type("main.entry").offset("next") + 8


def test_field_paths(image):
    rt = runtime_of(image)
    R, by_name = heap_types(rt)
    node, entry = by_name["*main.node"].elem, by_name["*main.entry"].elem
    fp = R.field_path
    assert fp(node, 0) == "left" and fp(node, 8) == "right" and fp(node, 16) == "val"
    assert fp(node, 24 + 3 * 8) == "pad[3]"
    assert fp(node, node.size + 8) == "[1].right"      # an array of nodes
    assert fp(entry, 0) == "name" and fp(entry, 8) == "name.len"
    assert fp(entry, rt.type("main.entry").offset("next")) == "next"
    assert fp(entry, 16 + 7) == "payload[7]"
    assert fp(by_name["*main.node"], 0) == ""
    assert fp(None, 0x18) == "+0x18"


def test_masks_built_from_structure_match_the_compilers(image):
    """runtime.buildGCMask's work (Go 1.24+ TFlagGCMaskOnDemand types), done here from the
    struct fields and array elements, against the bitmap the compiler wrote."""
    rt = runtime_of(image)
    R, by_name = heap_types(rt)
    checked = 0
    todo, seen = list(by_name.values()), set()
    while todo and len(seen) < 500:
        t = todo.pop()
        if t is None or t.addr in seen:
            continue
        seen.add(t.addr)
        if t.kind in (KIND_ARRAY, KIND_STRUCT) and t.ptrbytes:
            built = R._build(t, 0)
            assert built is not False, (t, R.errors)
            assert built.tolist() == t.ptr_mask().tolist(), t
            checked += 1
        todo.append(t.elem)
        todo.extend(ft for _, _, ft in t.fields)
    assert checked >= 3


def test_garbage_descriptors(image):
    rt = runtime_of(image)
    R, by_name = heap_types(rt)
    node = by_name["*main.node"].elem
    h = read_heap(rt)
    zeros = int(h.span_base[0])
    for bad in (0, 3, 0xdead0000, zeros):
        assert R.at(bad) is None or R.at(bad).kind != 0
    assert R.errors and all("\n" not in e for e in R.errors)
    assert len(R.errors) <= 4
    # a descriptor whose GC bitmap or fields cannot be read
    img, types, mem0 = image
    mem = copy_memory(mem0)
    import struct
    poke(mem, node.addr + R.o_gcdata, struct.pack("<Q", 0xdead0000))
    poke(mem, node.addr + R.o_struct_fields, struct.pack("<QQ", 0xdead0000, 1 << 40))
    rt2 = runtime_of(image, mem)
    R2 = rtypes(rt2)
    t = R2.at(node.addr)
    assert t.ptr_mask() is None and t.fields == []
    assert R2.field_path(t, 8) == "+0x8"
    assert len(R2.errors) == 2, R2.errors


def test_gc_programs():
    # literal bits, then the end
    bits, err = run_gc_prog(bytes([3, 0b101, 0]), 10)
    assert err is None and bits.tolist() == [True, False, True]
    # literal "10", repeated 3 times (1nnnnnnn c)
    bits, err = run_gc_prog(bytes([2, 0b01, 0x80 | 2, 3, 0]), 100)
    assert err is None and bits.tolist() == [True, False] * 4
    # the long form: 10000000, n and c as varints (n = 1, c = 200)
    bits, err = run_gc_prog(bytes([1, 1, 0x80, 1, 0xc8, 0x01, 0]), 1000)
    assert err is None and len(bits) == 201 and bits.all()
    # 9 literal bits span two bytes
    bits, err = run_gc_prog(bytes([9, 0xff, 0x01, 0]), 100)
    assert err is None and bits.tolist() == [True] * 9
    # capped at the type's words, truncated, repeating what was never written
    bits, err = run_gc_prog(bytes([1, 1, 0x81, 0xff, 0xff, 0xff, 0x7f, 0]), 64)
    assert len(bits) == 64 and "longer" in err
    assert "truncated" in run_gc_prog(bytes([2, 0b01, 0x80 | 2]), 100)[1]
    assert "truncated" in run_gc_prog(bytes([]), 100)[1]
    assert "repeats" in run_gc_prog(bytes([1, 1, 0x80 | 5, 2, 0]), 100)[1]
