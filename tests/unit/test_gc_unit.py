"""The gc decoder (runtime/gc.py) and view on memory images of the gc fixture
(tests/data/gc-*.json.gz, captured by tests/fixtures/gc/capture.py from a live process
that had forced 300 collections): the same answer as in gdb and as the runtime's own
ReadGCStats and ReadMemStats, and on unreadable, missing and hypothesis-corrupted
memory one line per problem and a partial result, never an exception or a hang."""
import json
import os
import struct
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gdb_go_ext.views.catalog  # noqa: E402,F401 (the views registered in their order)
from gdb_go_ext.runtime.gc import read_gc  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.views.console import json_text  # noqa: E402
from gdb_go_ext.views.gc import render_text, to_json  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, images, poke, unmap  # noqa: E402

IMAGES, IDS = images("gc")
# a decode of bad input must end; the bound is loose so that a busy machine (two test
# workers and a benchmark on two cores took 8 s once) does not fail it
HANG_SECONDS = 30
_MOMENT = ("last_gc_ago_ns", "clock", "last_gc_nanotime")


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return cached_image(request.param)


def decode(image, mem=None, drop_types=()):
    img, types, mem0 = image
    t = ImageTarget(img, types, mem0 if mem is None else mem)
    for name in drop_types:
        t.types[name] = None
    rt = GoRuntime(t)
    s = read_gc(rt)
    return rt, s, to_json(rt, s)


def field_addr(image, sym, type_name, path):
    img, types, mem = image
    t = ImageTarget(img, types, mem)
    found = t.lookup_type(type_name).find(path)
    off, ft = found
    inner = ft.find("value") if ft.kind == "struct" else None
    if inner is not None:
        off += inner[0]
    return img["addrs"][sym] + off


def test_images_exist_and_are_small():
    assert len(IMAGES) >= 2
    assert all(os.path.getsize(p) < 200_000 for p in IMAGES)


def test_image_decodes_as_in_gdb_and_as_the_runtime_said(image):
    img = image[0]
    rt, s, got = decode(image)
    want = dict(img["gc"])
    for k in _MOMENT:
        got.pop(k), want.pop(k)
    assert got == want
    truth = img["truth"]
    assert got["pauses"] == truth["gcstats"]["Pause"] and len(got["pauses"]) == 256
    assert got["num_gc"] == truth["gcstats"]["NumGC"]
    assert got["last_gc_unix_ns"] == truth["gcstats"]["LastGC"]
    assert got["next_gc"] == truth["memstats"]["NextGC"]
    assert got["gc_percent"] == 137 and got["memory_limit"] == truth["memory_limit"]
    # an image is not live: the clock is the core's, and the last GC is one of its stamps
    assert s.clock.startswith("core: latest runtime stamp") and s.last_gc_ago_ns >= 0
    assert "cycles      300, 300 forced; phase off" in render_text(s, 10)


@pytest.mark.parametrize("numgc", [0, 1, 5, 255, 256, 257, 1000, 0xFFFFFFFF])
def test_the_pause_ring_as_readGCStats_walks_it(image, numgc):
    img, types, mem0 = image
    mem = copy_memory(mem0)
    poke(mem, field_addr(image, "runtime.memstats", "runtime.mstats", "numgc"),
         struct.pack("<I", numgc))
    t = ImageTarget(img, types, mem)
    mt = t.lookup_type("runtime.mstats")
    base = img["addrs"]["runtime.memstats"]
    ring = struct.unpack("<256Q", t.read(base + mt.offset("pause_ns"), 2048))
    ends = struct.unpack("<256Q", t.read(base + mt.offset("pause_end"), 2048))
    _, s, got = decode(image, mem)
    n = min(numgc, 256)
    # readGCStats_m: j := (numgc - 1 - i) % len(pause_ns), in uint32
    want = [{"ns": ring[(numgc - 1 - i) % (1 << 32) % 256],
             "end_unix_ns": ends[(numgc - 1 - i) % (1 << 32) % 256]} for i in range(n)]
    assert got["pauses"] == want and got["num_gc"] == numgc and got["errors"] == []


def test_unreadable_memstats_is_one_line_and_the_rest_is_read(image):
    img = image[0]
    addr = img["addrs"]["runtime.memstats"]
    mem = unmap(copy_memory(image[2]), addr, 1 << 16)
    _, s, got = decode(image, mem)
    assert got["num_gc"] is None and got["pauses"] == [] and got["pause_total_ns"] is None
    assert any("cannot read runtime.memstats" in e for e in got["errors"])
    assert all("\n" not in e for e in got["errors"])
    assert "memstats.numgc" in got["unread"] and "memstats.pause_ns/pause_end" in got["unread"]
    assert got["gc_percent"] == 137 and got["next_gc"] == img["truth"]["memstats"]["NextGC"]
    assert "not read: memstats.numgc" in render_text(s, 10)


def test_unreadable_gc_controller(image):
    img = image[0]
    mem = unmap(copy_memory(image[2]), img["addrs"]["runtime.gcController"], 1 << 12)
    _, s, got = decode(image, mem)
    assert got["gc_percent"] is None and got["heap_goal"] is None and got["memory_limit"] is None
    assert got["num_gc"] == img["truth"]["gcstats"]["NumGC"] and len(got["pauses"]) == 256
    assert any("cannot read runtime.gcController" in e for e in got["errors"])
    render_text(s, 10)


def test_types_the_binary_lacks_are_named(image):
    _, s, got = decode(image, drop_types=("runtime.mstats", "runtime.mheap"))
    assert "the binary has no runtime.mstats" in got["errors"]
    assert "the binary has no runtime.mheap" in got["errors"]
    assert got["num_gc"] is None and got["heap"]["spans_inuse"] is None
    assert "mheap_.spanalloc.inuse/size" in got["unread"]
    assert got["gc_percent"] == 137


def test_a_phase_the_runtime_has_no_name_for(image):
    img, types, mem0 = image
    for code, name, running in ((1, "mark", True), (2, "mark termination", True), (7, "phase 7", True)):
        mem = copy_memory(mem0)
        poke(mem, img["addrs"]["runtime.gcphase"], struct.pack("<I", code))
        _, s, got = decode(image, mem)
        assert (got["phase"], got["gc_running"]) == (name, running)


def test_counters_caught_mid_update(image):
    img, types, mem0 = image
    mem = copy_memory(mem0)
    poke(mem, field_addr(image, "runtime.gcController", "runtime.gcControllerState", "mappedReady"),
         struct.pack("<Q", 0))
    _, s, got = decode(image, mem)
    assert any("caught mid-update" in e for e in got["errors"])
    assert got["heap_goal"] == img["truth"]["memstats"]["NextGC"]   # the GOGC goal stands


def test_a_low_memory_limit_sets_the_goal(image):
    """GOMEMLIMIT below the GOGC goal: heapGoal is memoryLimitHeapGoal's, never below
    heapMarked."""
    img, types, mem0 = image
    mem = copy_memory(mem0)
    poke(mem, field_addr(image, "runtime.gcController", "runtime.gcControllerState", "memoryLimit"),
         struct.pack("<q", 1 << 20))
    _, s, got = decode(image, mem)
    assert got["heap_goal_by"] == "memory_limit"
    assert got["heap_goal"] == got["heap_marked"]   # a 1 MiB limit is below what is marked


# ---------------------------------------------------------------------------
# hypothesis: corrupt any byte or word the decoder read
# ---------------------------------------------------------------------------
CORRUPTIONS = st.lists(
    st.tuples(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6),
              st.one_of(st.integers(0, 255).map(lambda b: ("byte", b)),
                        st.sampled_from([0, 1, 0xFF, 1 << 31, (1 << 32) - 1, (1 << 63) - 1,
                                         (1 << 64) - 1, 0xc000000000]).map(lambda v: ("word", v)),
                        st.integers(0, (1 << 64) - 1).map(lambda v: ("word", v)))),
    min_size=1, max_size=30)


def _fuzz_one(image, corruptions):
    img, types, mem0 = image
    mem = copy_memory(mem0)
    for which, pos, (kind, v) in corruptions:
        start, buf = mem[which % len(mem)]
        size = len(buf)
        if kind == "byte":
            poke(mem, start + pos % size, bytes([v]))
        elif size >= 8:
            poke(mem, start + ((pos % (size - 7)) & ~7), v.to_bytes(8, "little"))
    # the runtime is made on the intact image (the Go version is read once, at the
    # start of a session); then its memory is the corrupted one
    target = ImageTarget(img, types, mem0)
    rt = GoRuntime(target)
    target.mem, target.starts = mem, [a for a, _ in mem]
    t0 = time.monotonic()
    try:
        s = read_gc(rt)
        got = to_json(rt, s)
    except Exception as e:   # noqa: BLE001 - the contract: nothing escapes
        pytest.fail(f"read_gc raised {e!r}")
    json.loads(json_text(got))
    render_text(s, 300)
    assert all(isinstance(e, str) and "\n" not in e for e in got["errors"])
    assert len(got["pauses"]) <= 256
    assert time.monotonic() - t0 < HANG_SECONDS


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(corruptions=CORRUPTIONS)
def test_corrupted_images_never_raise_or_hang(path, corruptions):
    _fuzz_one(cached_image(path), corruptions)
