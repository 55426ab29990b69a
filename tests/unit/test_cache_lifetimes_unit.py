"""GoRuntime's caches with a declared lifetime (runtime/goruntime.py): per_stop entries
are made once per stop and every one is dropped by forget_state; per_binary entries are
made once and kept. Held on memory images of the heap fixture, through the real cache
sites (the heap, its mark, the walks, type descriptors, stack maps, P status names)."""
import glob
import os
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [TESTS, os.path.join(TESTS, "integration")]

from gdb_go_ext.analysis import heapreport  # noqa: E402
from gdb_go_ext.runtime import walks  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime.heapobjs import read_heap  # noqa: E402
from gdb_go_ext.runtime.stackroots import stack_roots  # noqa: E402
from gdb_go_ext.runtime.rtypes import rtypes  # noqa: E402
from gdb_go_ext.runtime.sched import p_status_names  # noqa: E402
from image import ImageTarget, cached_image, copy_memory  # noqa: E402

# the heap fixture's images that have their ELF beside them (stack maps, pclntab)
IMAGES = sorted(glob.glob(os.path.join(TESTS, "data", "heaproots", "heap-*.json.gz")))
IDS = [os.path.basename(p)[len("heap-"):-len(".json.gz")] for p in IMAGES]


@pytest.fixture(scope="module", params=IMAGES[:1], ids=IDS[:1])
def image(request):
    return cached_image(request.param)


def runtime_of(image):
    img, types, mem0 = image
    return GoRuntime(ImageTarget(img, types, copy_memory(mem0)))


def test_per_stop_made_once_per_stop_per_binary_once(image):
    rt = runtime_of(image)
    made = []
    stop = lambda: rt.per_stop("test.stop", lambda: made.append("stop") or object())
    binary = lambda: rt.per_binary("test.binary", lambda: made.append("binary") or object())
    s0, b0 = stop(), binary()
    assert stop() is s0 and binary() is b0 and made == ["stop", "binary"]
    rt.forget_state()
    s1, b1 = stop(), binary()
    assert s1 is not s0 and b1 is b0 and made == ["stop", "binary", "stop"]
    # the two lifetimes are two name spaces: one key in both holds two values
    assert rt.per_stop("test.both", lambda: 1) == 1 and rt.per_binary("test.both", lambda: 2) == 2
    # a make that fails keeps nothing
    with pytest.raises(ZeroDivisionError):
        rt.per_stop("test.fails", lambda: 1 // 0)
    assert rt.per_stop("test.fails", lambda: 3) == 3


def test_forget_state_drops_every_per_stop_entry_of_the_real_sites(image):
    rt = runtime_of(image)
    _walker, gs = walks.walk(rt, 0)
    st = heapreport.heap_state(rt, gs)
    heapreport.object_types(rt, st)           # DWARF types along the way (per binary)
    heap, types, pnames = read_heap(rt), rtypes(rt), p_status_names(rt)
    stack_roots(rt, gs)                       # stack maps and frame names (per binary)
    assert rt.walks and st.heap is heap
    stop_keys, binary = set(rt._per_stop), dict(rt._per_binary)
    assert {"walks", "heapobjs.heap"} <= stop_keys
    assert any(isinstance(k, tuple) and k[0] == "heapreport.state" for k in stop_keys)
    assert {"rtypes", "stackroots.static", "sched.p_status_names"} <= set(binary)
    # nothing read of the process's memory is kept per binary
    assert not {"walks", "heapobjs.heap", "label_strings"} & set(binary)

    rt.forget_state()
    assert rt._per_stop == {} and not rt.walks
    assert rt._per_binary.keys() == binary.keys()
    assert all(rt._per_binary[k] is v for k, v in binary.items())
    assert read_heap(rt) is not heap
    assert rtypes(rt) is types and p_status_names(rt) is pnames
    _walker, gs2 = walks.walk(rt, 0)
    st2 = heapreport.heap_state(rt, gs2)
    assert st2 is not st and st2.heap is not heap
    assert st2.marked.tolist() == st.marked.tolist()   # the same memory: the same mark


def test_heap_state_is_kept_per_set_of_goroutines(image):
    """heap_state keys its mark by the goroutines whose stacks it scans: the same
    goroutines (another walk of this stop) share it, other goroutines get their own."""
    rt = runtime_of(image)
    _walker, gs = walks.walk(rt, 0)
    st = heapreport.heap_state(rt, gs)
    _walker, deeper = walks.walk(rt, 1)
    assert heapreport.heap_state(rt, deeper) is st
    assert heapreport.heap_state(rt, gs[:]) is heapreport.heap_state(rt, gs[:])
    with_stacks = [i for i in range(len(gs)) if len(stack_roots(rt, gs[i:i + 1]).value)]
    assert with_stacks, "the fixture's goroutines hold heap pointers on their stacks"
    few = gs[:0]
    st_few = heapreport.heap_state(rt, few)
    assert st_few is not st
    assert len(st_few.stacks.value) == 0 < len(st.stacks.value)
    assert heapreport.heap_state(rt, gs) is st
