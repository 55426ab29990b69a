"""The runtime traceback model (runtime/traceback.py) and `dump` on the captured images
of the goroutines fixture: level 2 holds every goroutine of the walk in allgs order,
level 1 a subset without runtime-only goroutines; stacks overwritten with garbage give
one error line per goroutine and a partial dump, never an exception."""
import os
import struct
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.runtime.goroutines import GoroutineWalker  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime.traceback import is_exported_runtime, _Rules, traceback  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, images, poke  # noqa: E402

IMAGES, IDS = images("goroutines")


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return cached_image(request.param)


def _tb(image, level, mem=None):
    img, types, mem0 = image
    rt = GoRuntime(ImageTarget(img, types, mem0 if mem is None else mem))
    walker = GoroutineWalker(rt)
    gs = walker.walk()
    return rt, walker, gs, traceback(rt, walker, gs, level)


def test_exported_runtime():
    assert is_exported_runtime("runtime.Gosched")
    assert is_exported_runtime("runtime.(*Func).Name")
    assert not is_exported_runtime("runtime.gopark")
    assert not is_exported_runtime("runtime.(*mheap).Alloc")
    assert not is_exported_runtime("main.Foo")


def test_showfuncinfo_rules():
    r = _Rules(26, 21, 1)
    assert not r.showfuncinfo("runtime.gopark", 0, True, "")
    assert r.showfuncinfo("runtime.gopanic", 0, False, "")
    assert not r.showfuncinfo("runtime.gopanic", 0, True, "")
    assert not r.showfuncinfo("main.f.gowrap1", 21, False, "main.f")
    assert r.showfuncinfo("main.f.gowrap1", 21, False, "runtime.sigpanic")
    assert r.showfuncinfo("runtime.runFinalizers", 0, False, "")
    assert not _Rules(24, 21, 1).showfuncinfo("runtime.runfinq", 0, False, "")
    assert _Rules(26, 21, 2).showfuncinfo("runtime.gopark", 0, True, "")


def test_levels_on_images(image):
    rt, walker, gs, tb2 = _tb(image, 2)
    order = {a: i for i, a in enumerate(walker.g_addrs())}
    assert [g.id for g in tb2.goroutines] == [g.id for g in sorted(gs, key=lambda g: order[g.addr])]
    tb1 = traceback(rt, walker, gs, 1)
    ids1 = [g.id for g in tb1.goroutines]
    assert set(ids1) < {g.id for g in tb2.goroutines}
    for g in tb1.goroutines:
        assert " gp=" not in g.header and g.header.startswith(f"goroutine {g.id} [")
        if g.frames and not g.running:
            assert any(not f.function.startswith("runtime.") for f in g.frames) or \
                all(f.function.startswith("runtime.") for f in g.frames)
    for g in tb2.goroutines:
        if not g.running and not g.error:
            assert g.frames and g.frames[-1].function == "runtime.goexit", g.header
            for a, b in zip(g.frames, g.frames[1:]):
                assert a.sp_off <= b.sp_off and a.fp_off <= b.fp_off


def test_garbage_stacks(image):
    img, types, mem0 = image
    mem = copy_memory(mem0)
    rt0, walker0, gs0, _ = _tb(image, 2)
    for g in gs0[:20]:
        if g.sp and g.stack_hi - g.sp >= 64:
            try:
                poke(mem, g.sp, struct.pack("<8Q", *([0xdeadbeef12345678] * 8)))
            except AssertionError:
                pass
    rt, walker, gs, tb = _tb(image, 2, mem)
    assert tb.goroutines
    assert any(g.error for g in tb.goroutines)
    _tb(image, 1, mem)
