"""runtime/heapobjs.py on memory images of the heap fixture (tests/data/heap-*.json.gz,
captured by tests/data/heap/capture.py from live processes of Go 1.22, 1.24 and 1.26 -
the GC-program era, on-demand masks, the Green Tea GC's inline mark bits): the same checks
as tests/integration/test_heap_decoders.py against the runtime's own heap.json
(ReadMemStats) and the objects the program built; and on garbage span pointers, implausible
span fields, memory cut away, a malloc header or largeType pointing at garbage and
hypothesis-corrupted span structs: one line per problem and a partial result, never an
exception or a hang."""
import os
import struct
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [TESTS, os.path.join(TESTS, "integration")]

from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime.heapobjs import HeapObjects, read_heap  # noqa: E402
from gdb_go_ext.runtime.rtypes import rtypes  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, images, poke, unmap  # noqa: E402
import test_heap_decoders as thd  # noqa: E402  (summary and check: no gdb, no pytest)

IMAGES, IDS = images("heap")


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return cached_image(request.param)


def runtime_of(image, mem=None):
    img, types, mem0 = image
    return GoRuntime(ImageTarget(img, types, copy_memory(mem0) if mem is None else mem))


def all_pointers(h):
    return h.pointers(np.flatnonzero(h.allocated))


def test_images_exist_and_are_small():
    assert len(IMAGES) >= 3
    assert all(os.path.getsize(p) < 200_000 for p in IMAGES)


def test_image_decodes_as_the_runtime_said(image):
    import json
    rt = runtime_of(image)
    truth = image[0]["truth"]
    got = json.loads(thd.summary(rt))
    facts = json.loads(json.dumps(thd.needle_facts(rt, int(truth["needle"], 16))))
    thd.check(got, facts, truth)


def test_columns_are_consistent(image):
    rt = runtime_of(image)
    h = read_heap(rt)
    assert read_heap(rt) is h   # one read per stop
    rt.forget_state()
    assert read_heap(rt) is not h
    h = read_heap(rt)
    assert h.n == int(h.span_nelems.sum()) == len(h.allocated)
    assert np.all(np.diff(h.span_base.astype(np.int64)) > 0)
    assert np.all(h.span_end[:-1] <= h.span_base[1:])
    assert np.all(h.span_first[1:] == np.cumsum(h.span_nelems)[:-1])
    idx = np.flatnonzero(h.allocated)
    a, s = h.addr(idx), h.size(idx)
    # every object found again from its first byte, its last byte and its middle
    for probe in (a, a + s - np.uint64(1), a + s // np.uint64(2)):
        assert np.array_equal(h.locate(probe), idx)
    # a free slot and addresses outside every span are not objects
    free = np.flatnonzero(~h.allocated)
    assert np.all(h.locate(h.addr(free)) == -1)
    outside = np.array([0, 8, int(h.span_base[0]) - 8, int(h.span_end[-1]), 2 ** 63], dtype=np.uint64)
    assert np.all(h.locate(outside) == -1)
    # out-of-range indices are no slot
    assert np.all(h.addr(np.array([-1, h.n])) == 0) and np.all(h.size(np.array([-1, h.n])) == 0)
    src, off, val = h.pointers(np.array([-1, h.n], dtype=np.int64))
    assert len(src) == 0
    # noscan objects have no pointers; offsets lie inside their object and are words
    src, off, val = all_pointers(h)
    assert np.all(off % 8 == 0) and np.all(off.astype(np.uint64) < h.size(src))
    assert np.all(val != 0)
    assert np.all(h.span_class[h.span_of(src)] & 1 == 0)


def test_pointers_in_any_order_and_chunks(image):
    rt = runtime_of(image)
    h = read_heap(rt)
    idx = np.flatnonzero(h.allocated)
    whole = sorted(zip(*[x.tolist() for x in h.pointers(idx)]))
    rng = np.random.default_rng(1)
    perm = rng.permutation(idx)
    parts = []
    for chunk in np.array_split(perm, 7):
        parts += list(zip(*[x.tolist() for x in h.pointers(chunk)]))
    assert sorted(parts) == whole


def test_garbage_span_pointers(image):
    img, types, mem0 = image
    rt = runtime_of(image)
    h0 = read_heap(rt)
    mheap = rt.global_addr("runtime.mheap_")
    off = rt.target.lookup_type("runtime.mheap").offset("allspans")
    arr, n = struct.unpack("<QQ", rt.mem.read(mheap + off, 16))
    mem = copy_memory(mem0)
    # a third of the span pointers to garbage: unmapped, misaligned, into the heap's data
    garbage = [0xdead0000, 0x7, int(h0.span_base[0]) + 64, 2 ** 63 + 8]
    for k in range(0, n, 3):
        poke(mem, arr + 8 * k, struct.pack("<Q", garbage[k % len(garbage)]))
    rt = runtime_of(image, mem)
    h = read_heap(rt)
    assert h.errors and len(h.errors) <= 5, h.errors
    assert 0 < len(h.span_base) < len(h0.span_base)
    all_pointers(h)
    # and allspans claiming far more entries than memory holds
    mem = copy_memory(mem0)
    poke(mem, mheap + off + 8, struct.pack("<Q", 1 << 40))
    h = read_heap(runtime_of(image, mem))
    assert any("allspans" in e for e in h.errors), h.errors


def test_implausible_span_fields(image):
    img, types, mem0 = image
    rt = runtime_of(image)
    h0 = read_heap(rt)
    lay = h0.lay.span
    mem = copy_memory(mem0)
    victims = h0.span_addr[:3].tolist()
    poke(mem, victims[0] + lay.offset("nelems"), struct.pack("<H", 65535))
    poke(mem, victims[1] + lay.offset("elemsize"), struct.pack("<Q", 0))
    poke(mem, victims[2] + lay.offset("startAddr"), struct.pack("<Q", int(h0.span_base[5])))
    h = read_heap(runtime_of(image, mem))
    assert any("implausible" in e for e in h.errors) and any("overlap" in e for e in h.errors)
    assert len(h.span_base) <= len(h0.span_base) - 3
    all_pointers(h)


def test_memory_cut_away(image):
    img, types, mem0 = image
    rt = runtime_of(image)
    h0 = read_heap(rt)
    lo, hi = int(h0.span_base[0]), int(h0.span_end[-1])
    mem = copy_memory(mem0)
    mid = (lo + hi) // 2
    mem = unmap(mem, mid, hi - mid)               # the heap's upper half
    mem = unmap(mem, int(h0.span_addr[0]), 4096)  # some mspan structs
    rt = runtime_of(image, mem)
    h = read_heap(rt)
    src, off, val = all_pointers(h)
    assert h.errors
    assert len(src) < len(all_pointers(h0)[0])
    assert all("\n" not in e for e in h.errors)


def test_header_and_large_type_to_garbage(image):
    img, types, mem0 = image
    rt = runtime_of(image)
    h0 = read_heap(rt)
    table = struct.unpack("<Q", rt.mem.read(rt.global_addr("main.table"), 8))[0]
    big = struct.unpack("<Q", rt.mem.read(rt.global_addr("main.big"), 8))[0]
    ti, bi = h0.locate(np.array([table, big], dtype=np.uint64)).tolist()
    lt_off = h0.lay.span.offset("largeType")
    bspan = int(h0.span_addr[h0.span_of(np.array([bi]))[0]])
    for bad in (0xdeadbeef000, int(h0.span_base[0]) + 8, 3):
        mem = copy_memory(mem0)
        poke(mem, table - 8, struct.pack("<Q", bad))        # the malloc header
        poke(mem, bspan + lt_off, struct.pack("<Q", bad))   # span.largeType
        rt = runtime_of(image, mem)
        h = read_heap(rt)
        src, off, val = all_pointers(h)
        assert not np.isin([ti, bi], src).any()
        assert any("not a type" in e or "unreadable" in e for e in h.errors), h.errors
        # the rest stands: the tree's pointers are all there
        assert len(src) >= len(all_pointers(h0)[0]) - 201 - 16


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_corrupted_span_structs_never_raise(image, data):
    img, types, mem0 = image
    rt = runtime_of(image)
    h0 = read_heap(rt)
    mem = copy_memory(mem0)
    size = h0.lay.span_size
    for _ in range(data.draw(st.integers(1, 6))):
        sp = int(data.draw(st.sampled_from(h0.span_addr.tolist())))
        at = data.draw(st.integers(0, size - 8))
        poke(mem, sp + at, data.draw(st.binary(min_size=1, max_size=8)))
    t0 = time.monotonic()
    h = HeapObjects(runtime_of(image, mem))
    idx = np.flatnonzero(h.allocated)
    h.pointers(idx)
    h.type_of(idx)
    h.locate(h.addr(idx))
    assert time.monotonic() - t0 < 20
    assert all(isinstance(e, str) and "\n" not in e for e in h.errors)


def test_not_an_allocation_header_heap():
    """A runtime whose mspan has no largeType (Go before 1.22) gets one line."""
    img, types, mem0 = cached_image(IMAGES[0])
    t = ImageTarget(img, types, copy_memory(mem0))
    span = t.types["runtime.mspan"]
    import copy
    old = copy.copy(span)
    old.fields = tuple(f for f in span.fields if f.name != "largeType")
    old._by_name = None
    t.types["runtime.mspan"] = old
    h = HeapObjects(GoRuntime(t))
    assert h.n == 0 and len(h.errors) == 1 and "1.22" in h.errors[0]
    assert len(h.locate(np.array([1, 2], dtype=np.uint64))) == 2
    assert len(h.pointers(np.array([0]))[0]) == 0
