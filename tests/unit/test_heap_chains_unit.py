"""The reference chains of `go heap --pprof` (analysis/heapchains.reference_chains) over
small hand-made heaps: the columnar, memoised chains against a plain walk up each
object's BFS parents, the cut after max_steps, and the totals."""
import types

import numpy as np
import pytest

from gdb_go_ext.analysis import heapchains, heapreport
from gdb_go_ext.runtime import heapmark
from gdb_go_ext.runtime.heaproots import Root, RootSet

from test_heapmark_unit import SIZE, FakeHeap, ptr


class UntypedHeap(FakeHeap):
    """FakeHeap's objects in spans without malloc headers (and no types)."""

    lay = types.SimpleNamespace(header_size=8)

    def span_of(self, idx):
        return np.zeros(len(np.asarray(idx)), np.int64)

    def span_kind(self, spans):
        return np.ones(len(np.asarray(spans)), np.int8)      # HEAPBITS


def chains_of(monkeypatch, heap, roots, max_steps):
    """reference_chains over heap with the globals roots: [(name, slot, offset)]."""
    names = sorted({r[0] for r in roots})
    rs = RootSet([Root("global", n) for n in names],
                 np.array([ptr(s) for _, s, _ in roots], np.uint64),
                 np.array([names.index(n) for n, _, _ in roots], np.int32),
                 np.array([o for _, _, o in roots], np.int64))
    marked = heapmark.full_mark(heap, rs.value)
    st = heapreport.HeapState(heap, [rs, RootSet(), RootSet()], marked)
    st.types = (np.full(heap.n, -1, np.int32), [])
    monkeypatch.setattr(heapreport, "heap_state", lambda rt, gs, progress=None: st)
    return heapchains.reference_chains(types.SimpleNamespace(), [], max_steps), rs, marked


def plain(heap, rs, marked, max_steps):
    """{chain: objects}: each live object's chain by walking its BFS parents one by one."""
    parent, poff, depth = heapmark.bfs_parents(heap, rs.value)
    out = {}
    for o in np.flatnonzero(marked).tolist():
        steps, cur = [], o
        while parent[cur] >= 0:
            steps.append(f"+{int(poff[cur]):#x}")
            cur = int(parent[cur])
        w = -int(parent[cur]) - 2
        root = rs.roots[int(rs.root[w])].name
        off = int(rs.offset[w])
        steps.reverse()
        if len(steps) > max_steps:
            steps = steps[:max_steps] + ["…"]
        chain = (root,) + ((f"+{off:#x}",) if off else ()) + tuple(steps) + (f"untyped {SIZE} B",)
        out[chain] = out.get(chain, 0) + 1
    return out


@pytest.mark.parametrize("seed", range(20))
def test_random_heaps_against_a_plain_walk(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    n = 80
    edges = {i: [(8 * int(k), int(j)) for k, j in
                 zip(rng.integers(0, 4, 3), rng.integers(0, n, rng.integers(0, 4)))]
             for i in range(n)}
    heap = UntypedHeap(n, edges, set(rng.integers(0, n, 5).tolist()))
    roots = [(f"main.g{int(k)}", int(s), 8 * int(o)) for k, s, o in
             zip(rng.integers(0, 3, 5), rng.integers(0, n, 5), rng.integers(0, 2, 5))]
    roots = [r for r in roots if heap.alloc[r[1]]]
    max_steps = int(rng.integers(1, 6))
    c, rs, marked = chains_of(monkeypatch, heap, roots, max_steps)
    want = plain(heap, rs, marked, max_steps)
    assert {s.frames: s.objects for s in c.samples} == want
    assert c.live_objects == int(marked.sum()) == sum(s.objects for s in c.samples)
    assert c.live_bytes == SIZE * c.live_objects == sum(s.bytes for s in c.samples)
    assert len({s.frames for s in c.samples}) == len(c.samples)


def test_a_long_list_is_cut(monkeypatch):
    n = 50
    heap = UntypedHeap(n, {i: [(0, i + 1)] for i in range(n - 1)})
    c, _rs, _m = chains_of(monkeypatch, heap, [("main.list", 0, 0)], 4)
    got = {s.frames: s.objects for s in c.samples}
    leaf = f"untyped {SIZE} B"
    assert got == {("main.list", leaf): 1, ("main.list", "+0x0", leaf): 1,
                   ("main.list", "+0x0", "+0x0", leaf): 1,
                   ("main.list", "+0x0", "+0x0", "+0x0", leaf): 1,
                   ("main.list", "+0x0", "+0x0", "+0x0", "+0x0", leaf): 1,
                   ("main.list", "+0x0", "+0x0", "+0x0", "+0x0", "…", leaf): n - 5}


def test_steps_in_untyped_objects_past_256_bytes_are_any_element(monkeypatch):
    heap = UntypedHeap(8, {0: [(8, 1), (512, 2), (1024, 3)]})
    c, _rs, _m = chains_of(monkeypatch, heap, [("main.t", 0, 0)], 32)
    leaf = f"untyped {SIZE} B"
    assert {s.frames: s.objects for s in c.samples} == {
        ("main.t", leaf): 1, ("main.t", "+0x8", leaf): 1, ("main.t", "[]", leaf): 2}
