"""The mark, ownership and path search of runtime/heapmark.py over small hand-made heaps
whose answers are worked out by hand in each test."""
import numpy as np
import pytest

from gdb_go_ext.runtime import heapmark

BASE = 0x10000
SIZE = 64


class FakeHeap:
    """n objects of SIZE bytes at BASE + i*SIZE; edges[i] = [(offset, j), ...];
    free: slots not allocated."""

    def __init__(self, n, edges, free=()):
        self.n = n
        self.edges = edges
        self.alloc = np.ones(n, bool)
        self.alloc[list(free)] = False
        self.calls = 0

    def locate(self, addrs):
        a = np.asarray(addrs, dtype=np.uint64).astype(np.int64)
        i = (a - BASE) // SIZE
        ok = (a >= BASE) & (i < self.n)
        out = np.where(ok, i, -1)
        out[ok] = np.where(self.alloc[i[ok]], i[ok], -1)
        return out

    def pointers(self, idx):
        self.calls += 1
        src, off, val = [], [], []
        for i in np.asarray(idx).tolist():
            for o, j in self.edges.get(i, ()):
                src.append(i)
                off.append(o)
                val.append(BASE + j * SIZE + 8)   # interior pointers too
        return (np.array(src, np.int64), np.array(off, np.int64), np.array(val, np.uint64))

    def size(self, idx):
        return np.full(len(np.asarray(idx)), SIZE, np.uint64)

    def addr(self, idx):
        return BASE + np.asarray(idx, np.uint64) * SIZE


def ptr(i):
    return BASE + i * SIZE


def test_mark_follows_pointers_stops_on_cycles_and_skips_free_slots():
    # 0 -> 1 -> 2 -> 0 (a cycle), 2 -> 3 (free), 4 unreached, 5 -> 6 from a second root
    h = FakeHeap(7, {0: [(0, 1)], 1: [(8, 2)], 2: [(0, 0), (8, 3)], 5: [(0, 6)]}, free=[3])
    m = heapmark.mark(h, np.array([ptr(0), ptr(5), 0x42, ptr(3)], np.uint64))
    assert np.flatnonzero(m).tolist() == [0, 1, 2, 5, 6]
    assert h.calls < 10


def test_owners_split_groups_shared_and_base():
    # group 0 roots 0, group 1 roots 2; 0 -> 1 -> 4; 2 -> 3 -> 4 (4 shared by both),
    # 2 -> 5 -> 6 and base (other roots) reach 6: only 3 and 5 are group 1's own
    edges = {0: [(0, 1)], 1: [(0, 4)], 2: [(0, 3), (8, 5)], 3: [(0, 4)], 4: [(0, 7)],
             5: [(0, 6)]}
    h = FakeHeap(8, edges)
    base = heapmark.mark(h, np.array([ptr(6)], np.uint64))
    lab = heapmark.owners(h, base, np.array([ptr(0), ptr(2)], np.uint64), np.array([0, 1]))
    assert lab.tolist() == [0, 0, 1, 1, -2, 1, -2, -2]
    r = heapmark.retained(h, base, np.array([ptr(0), ptr(2)], np.uint64), np.array([0, 1]), 2)
    assert r.bytes.tolist() == [2 * SIZE, 3 * SIZE] and r.objects.tolist() == [2, 3]


def test_owners_shared_late_propagates_to_what_was_owned():
    # group 0 reaches 1 -> 2 -> 3 first (a long way); group 1 reaches 2 directly, later
    # in the same search: 2 and 3 become shared, 1 stays group 0's
    edges = {0: [(0, 1)], 1: [(0, 2)], 2: [(0, 3)], 9: [(0, 8)], 8: [(0, 7)], 7: [(0, 2)]}
    h = FakeHeap(10, edges)
    base = np.zeros(10, bool)
    lab = heapmark.owners(h, base, np.array([ptr(0), ptr(9)], np.uint64), np.array([0, 1]))
    assert lab[[0, 1]].tolist() == [0, 0]
    assert lab[[2, 3]].tolist() == [-2, -2]
    assert lab[[9, 8, 7]].tolist() == [1, 1, 1]


def test_shortest_paths_through_distinct_last_pointers():
    # root words: w0 -> 0, w1 -> 5; 0 -> 1 (off 16) -> 2 (off 24) -> T=3 (off 8);
    # 5 -> 3 (off 40): the shortest path is w1 -> 5 -> 3, then w0 -> 0 -> 1 -> 2 -> 3
    edges = {0: [(16, 1)], 1: [(24, 2)], 2: [(8, 3)], 5: [(40, 3)]}
    h = FakeHeap(6, edges)
    paths = heapmark.shortest_paths(h, np.array([ptr(0), ptr(5)], np.uint64), 3, 5)
    assert [(p.root, [(s.obj, s.offset) for s in p.steps]) for p in paths] == [
        (1, [(5, 0), (3, 40)]),
        (0, [(0, 0), (1, 16), (2, 24), (3, 8)])]
    assert heapmark.shortest_paths(h, np.array([ptr(0)], np.uint64), 4, 3) == []


@pytest.mark.parametrize("seed", range(20))
def test_random_graphs_against_a_plain_search(seed):
    rng = np.random.default_rng(seed)
    n = 60
    edges = {i: [(8 * k, int(j)) for k, j in enumerate(rng.integers(0, n, rng.integers(0, 4)))]
             for i in range(n)}
    free = set(rng.integers(0, n, 5).tolist())
    h = FakeHeap(n, edges, free)
    roots = rng.integers(0, n, 4)
    # a plain depth-first search by hand
    seen, todo = set(), [int(r) for r in roots if int(r) not in free]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo += [j for _, j in edges[i] if j not in free]
    m = heapmark.mark(h, np.array([ptr(int(r)) for r in roots], np.uint64))
    assert set(np.flatnonzero(m).tolist()) == seen


@pytest.mark.parametrize("seed", range(10))
def test_the_kept_graph_answers_as_memory_does(seed):
    """After full_mark keeps the pointers it followed, marks, owners and paths read
    no memory and answer as they do when reading it."""
    rng = np.random.default_rng(100 + seed)
    n = 80
    edges = {i: [(8 * k, int(j)) for k, j in enumerate(rng.integers(0, n, rng.integers(0, 4)))]
             for i in range(n)}
    roots = np.array([ptr(int(r)) for r in rng.integers(0, n, 5)], np.uint64)
    plain = FakeHeap(n, edges)
    kept = FakeHeap(n, edges)
    full = heapmark.full_mark(kept, roots)
    assert (full == heapmark.mark(plain, roots)).all()
    calls = kept.calls
    sub = roots[:2]
    assert (heapmark.mark(kept, sub) == heapmark.mark(plain, sub)).all()
    base = heapmark.mark(plain, roots[:1])
    seeds, labels = roots[1:], np.arange(len(roots) - 1)
    assert (heapmark.owners(kept, base, seeds, labels) ==
            heapmark.owners(plain, base, seeds, labels)).all()
    for target in np.flatnonzero(full)[:10].tolist():
        a = heapmark.shortest_paths(kept, roots, target, 3)
        b = heapmark.shortest_paths(plain, roots, target, 3)
        assert [(p.root, [(s.obj, s.offset) for s in p.steps]) for p in a] == \
            [(p.root, [(s.obj, s.offset) for s in p.steps]) for p in b]
    assert kept.calls == calls     # nothing read after the full mark


@pytest.mark.parametrize("seed", range(5))
def test_the_kept_graph_in_bounded_pieces_holds_every_edge_once(seed):
    """Graph.edge_pieces with a small limit (a slot holding more pointers than the limit
    split into ranges of its own) gives edges() exactly, in the same order."""
    rng = np.random.default_rng(300 + seed)
    n = 50
    edges = {i: [(8 * k, int(j)) for k, j in enumerate(rng.integers(0, n, rng.integers(0, 9)))]
             for i in range(n)}
    h = FakeHeap(n, edges)
    heapmark.full_mark(h, np.array([ptr(i) for i in range(n)], np.uint64))
    objs = np.arange(n, dtype=np.int64)
    whole = h.graph.edges(objs)
    for limit in (1, 3, 7, 1000):
        pieces = list(h.graph.edge_pieces(objs, limit))
        got = [np.concatenate([p[k] for p in pieces]) for k in range(3)]
        assert all((a == b).all() for a, b in zip(got, whole))
        if limit < 1000:
            assert max(len(p[0]) for p in pieces) <= limit


def test_a_mark_of_many_slots_gathers_its_frontier_in_flags():
    """A heap large enough that a level's children go through a flag per slot (heapmark
    Frontier past n/64 children) marks what a plain search marks, kept or not."""
    rng = np.random.default_rng(7)
    n = 100000
    targets = rng.integers(0, n, (n, 2))
    edges = {i: [(0, int(targets[i, 0])), (8, int(targets[i, 1]))] for i in range(0, n, 3)}
    edges.update({i: [(0, int(targets[i, 0]))] for i in range(1, n, 3)})
    edges.update({i: [(0, int(targets[i, 0])), (8, int(targets[i, 1])), (16, (i * 7) % n)]
                  for i in range(2, n, 3)})
    roots = np.array([ptr(int(r)) for r in rng.integers(0, n, 300)], np.uint64)
    seen, todo = set(), [int((int(r) - BASE) // SIZE) for r in roots]
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo += [j for _, j in edges.get(i, ())]
    kept = FakeHeap(n, edges)
    assert set(np.flatnonzero(heapmark.full_mark(kept, roots)).tolist()) == seen
    assert set(np.flatnonzero(heapmark.mark(kept, roots)).tolist()) == seen
    assert set(np.flatnonzero(heapmark.mark(FakeHeap(n, edges), roots)).tolist()) == seen


def test_the_kept_graph_counts_past_a_byte_and_runs_continued_over_pieces():
    """Slots with 0, 1, 254, 255, 256 and 700 pointers (the last given in three pieces, as
    a large object's words come), among slots the graph covers and ones it does not:
    edges() and edge_pieces() give back exactly what was added, per slot, in order."""
    g = heapmark.Graph(10)
    want = {0: 0, 1: 1, 2: 254, 3: 255, 4: 256, 6: 700}
    g.cover(np.array(sorted(want), dtype=np.int64))
    rng = np.random.default_rng(11)
    added = {s: (np.arange(c, dtype=np.int64) * 8, rng.integers(0, 10, c)) for s, c in want.items()}

    def piece(slots, part=slice(None)):
        src = np.concatenate([np.full(len(added[s][0][part]), s, np.int64) for s in slots])
        return (src, np.concatenate([added[s][0][part] for s in slots]),
                np.concatenate([added[s][1][part] for s in slots]))
    g.add(*piece([0, 1, 2]))
    g.add(*piece([3, 4]))
    for part in (slice(0, 300), slice(300, 301), slice(301, None)):
        g.add(*piece([6], part))
    g.close()
    assert list(g.covered(np.arange(10))) == [s in want for s in range(10)]
    objs = np.array(sorted(want), dtype=np.int64)
    assert g.counts(objs).tolist() == [want[s] for s in sorted(want)]
    src, off, child = g.edges(objs)
    for s in sorted(want):
        m = src == s
        assert (off[m] == added[s][0]).all() and (child[m] == added[s][1]).all()
    pieces = list(g.edge_pieces(objs, 100))
    got = [np.concatenate([p[k] for p in pieces]) for k in range(3)]
    assert all((a == b).all() for a, b in zip(got, (src, off, child)))
