"""The one unwinder's Recipe (runtime/stack.py) on the captured images of the goroutines
fixture: a stack holds another goroutine's recipe exactly when it unwinds, on its own,
to the same physical frames; the word reads, the byte reads and the core's merged reads
of every group at once say the same; a stack overwritten with garbage holds no recipe."""
import os
import struct
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import DecodeError  # noqa: E402
from gdb_go_ext.runtime.goroutines import GoroutineWalker  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime import stack  # noqa: E402
from gdb_go_ext.runtime.stack import Recipe, check_groups, holding  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, images, poke  # noqa: E402

IMAGES, IDS = images("goroutines")


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return cached_image(request.param)


def _walk(image, mem=None):
    img, types, mem0 = image
    rt = GoRuntime(ImageTarget(img, types, mem0 if mem is None else mem))
    walker = GoroutineWalker(rt)
    gs = [g for g in walker.walk() if g.pc and g.stack_lo <= g.sp < g.stack_hi
          and g.thread is None]
    return rt, walker, gs


def _shape(phys, sp):
    """A physical unwind relative to its sp: what two goroutines of one recipe share."""
    return [(fn.entry, pc, sym, s - sp, fp - sp) for fn, pc, sym, s, fp in phys]


class _Core:
    """words as a core's mapping gives them (target CoreMem.words: one size and word
    selection for all, or one per address), over a Memory."""

    def __init__(self, mem):
        self.mem = mem
        self.calls = 0

    def words(self, addrs, sizes, sels):
        mem = self.mem
        self.calls += 1
        sizes = np.broadcast_to(sizes, addrs.shape)
        if sels.ndim == 1:
            sels = np.broadcast_to(sels, (len(addrs), len(sels)))
        w = np.zeros(sels.shape, dtype=np.uint64)
        held = np.zeros(len(addrs), dtype=bool)
        for i, (a, n) in enumerate(zip(addrs.tolist(), sizes.tolist())):
            try:
                row = np.frombuffer(bytes(mem.read(a, n)), dtype="<u8")
            except DecodeError:
                continue
            w[i] = row[sels[i]]
            held[i] = True
        return w, held


def test_a_stack_holds_a_recipe_exactly_when_it_unwinds_alike(image):
    rt, walker, gs = _walk(image)
    unw = walker.unwinder
    groups: dict = {}
    for g in gs:
        groups.setdefault((g.pc, g.stack_hi - g.sp), []).append(g)
    shared = checked = 0
    for members in groups.values():
        first = members[0]
        phys, err, recipe, complete = unw.physical(first.pc, first.sp, first.stack_lo,
                                                   first.stack_hi)
        assert complete and recipe is not None and phys
        assert recipe.offsets == tuple(sorted(recipe.offsets)) and recipe.size <= \
            first.stack_hi - first.sp
        sps = np.array([g.sp for g in members], dtype=np.uint64)
        assert recipe.words is not None
        by_words = recipe.matches(rt.mem, sps)
        by_bytes = recipe.matches_from_bytes(rt.mem, sps)
        assert by_words.tolist() == by_bytes.tolist()
        want = _shape(phys, first.sp)
        for g, same in zip(members, by_words.tolist()):
            own = unw.physical(g.pc, g.sp, g.stack_lo, g.stack_hi)[0]
            assert same == (_shape(own, g.sp) == want), g.id
            checked += 1
            shared += same and g is not first
        # and the logical walk's recipe is the physical one's, to the same top frame
        unw.walk(first.pc, first.sp, first.stack_lo, first.stack_hi, 4096)
        assert unw.last_recipe.offsets == recipe.offsets
        assert unw.last_recipe.want == recipe.want
    assert checked == len(gs) and shared > 0


def test_garbage_holds_no_recipe_and_every_read_agrees(image, monkeypatch):
    img, types, mem0 = image
    rt0, walker0, gs0 = _walk(image)
    unw = walker0.unwinder
    groups: dict = {}
    for g in gs0:
        groups.setdefault((g.pc, g.stack_hi - g.sp), []).append(g)
    recipes = []
    for members in groups.values():
        f = members[0]
        r = unw.physical(f.pc, f.sp, f.stack_lo, f.stack_hi)[2]
        if r is not None and r.offsets and len(members) > 1:
            recipes.append((r, members))
    assert len(recipes) >= 2
    mem = copy_memory(mem0)
    spoiled = set()
    for r, members in recipes:
        g = members[-1]
        poke(mem, g.sp + r.offsets[0], struct.pack("<Q", r.want[0] ^ 0x5a5a))
        spoiled.add(g.sp)
    rt = GoRuntime(ImageTarget(img, types, mem))
    sp = np.array([g.sp for g in gs0], dtype=np.uint64)
    row_of = {g.sp: i for i, g in enumerate(gs0)}
    plan = [([r, Recipe(r.offsets[:1], r.want[:1])],
             np.array([row_of[g.sp] for g in members], dtype=np.int64))
            for r, members in recipes] + [None]
    alone = check_groups(plan, rt.mem, sp)
    core = _Core(rt.mem)
    with monkeypatch.context() as patch:   # as on a core: every group's tops read at once
        patch.setattr(stack, "core_words", lambda mem: core)
        merged = check_groups(plan, rt.mem, sp)
    assert core.calls > 0 and alone[-1] is None and merged[-1] is None
    for (r, members), a, m in zip(recipes, alone, merged):
        assert [x.tolist() for x in a] == [x.tolist() for x in m]
        before = r.matches(rt0.mem, [g.sp for g in members]).tolist()
        want = [b and g.sp not in spoiled for b, g in zip(before, members)]
        assert want[0] and not want[-1]
        assert a[0].tolist() == want
        first = [struct.unpack("<Q", rt.mem.read(g.sp + r.offsets[0], 8))[0] == r.want[0]
                 for g in members]
        assert a[1].tolist() == first and not first[-1]
        assert r.matches(rt.mem, [g.sp for g in members]).tolist() == want
        assert r.matches_from_bytes(rt.mem, [g.sp for g in members]).tolist() == want
        assert holding([r], rt.mem, sp[plan[0][1]][:0])[0].tolist() == []
    # a slot off the 8-byte grid is read from bytes, and unreadable stacks hold nothing
    r = recipes[0][0]
    odd = Recipe((r.offsets[0] + 4,), (0,))
    assert odd.words is None
    got = odd.matches(rt.mem, [recipes[0][1][0].sp, 8])
    assert got.tolist()[1] is False
