"""The garbage collector's mark, done again from memory: what is live, what each group
of goroutines alone keeps alive, and the shortest paths from a root to an object.

Everything is columnar over the heap's object slots (heapobjs.HeapObjects): the mark is
worked out with a bool per slot and kept as bits (analysis/heapreport.HeapState); owners
(int32 per slot) and BFS parents (int32) are made only for the views that ask, from the
kept graph (int32 slot indices and offsets). The
roots come from heaproots (globals through the modules' GC bitmaps, every goroutine's
frames through their stack maps, finalizers); pointer words of objects from the heap's
own records (heap bits, malloc headers, span.largeType).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

# a bound on BFS rounds: a chain longer than this is reported, not followed forever
MAX_DEPTH = 1 << 20
EDGE_PIECE = 1 << 18   # pointers of the kept graph handed out at once (bounded temporaries)
SHARED = -2        # an owner label: kept alive by more than one group (or by other roots)
UNREACHED = -1


def unique(a: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an int array. (numpy 2's np.unique hashes: 60 times
    slower than a sort on a million random slot indices.)"""
    if len(a) < 2:
        return np.asarray(a)
    b = np.sort(a)
    return b[np.r_[True, b[1:] != b[:-1]]]


def unique_first(a: np.ndarray) -> tuple:
    """(the sorted distinct values, the index of each one's first occurrence in a)."""
    if not len(a):
        return a, np.zeros(0, np.int64)
    order = np.argsort(a, kind="stable")
    b = a[order]
    m = np.r_[True, b[1:] != b[:-1]]
    return b[m], order[m]


def roots_parts(rootsets) -> list:
    """The pointer words of every root set, one array each (for mark: no copy of them
    all in one)."""
    return [rs.value for rs in rootsets if rs is not None and len(rs.value)]


def roots_values(rootsets, keep=None) -> np.ndarray:
    """The pointer words of some roots: every word of the root sets, or those whose
    per-word mask in keep (a list parallel to rootsets) is True."""
    parts = []
    for i, rs in enumerate(rootsets):
        if rs is None or not len(rs.value):
            continue
        v = rs.value if keep is None or keep[i] is None else rs.value[keep[i]]
        parts.append(v.astype(np.uint64, copy=False))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def index_type(n: int):
    """The narrowest signed int type for indices below n."""
    return np.int32 if n < (1 << 31) else np.int64


def distinct(a: np.ndarray, n: int, scratch: Optional[np.ndarray] = None) -> np.ndarray:
    """The sorted distinct values of a (ints in range(n)): through a bool per slot when a
    is large (a flag and one scan instead of a sort), else by sorting."""
    if len(a) < max(n >> 6, 1 << 14):
        return unique(a)
    flag = np.zeros(n, dtype=bool) if scratch is None else scratch
    flag[a] = True
    return _flagged(flag)


def _flagged(flag: np.ndarray) -> np.ndarray:
    """The slots flagged, as int32 where they fit, the flags cleared (a block at a time:
    no int64 index of every slot)."""
    dt = index_type(len(flag))
    parts = []
    for lo in range(0, len(flag), 1 << 22):
        at = np.flatnonzero(flag[lo:lo + (1 << 22)])
        parts.append((at + lo).astype(dt))
    out = np.concatenate(parts) if len(parts) != 1 else parts[0]
    flag[out] = False
    return out


class Frontier:
    """The next frontier of a breadth-first pass, gathered as its pieces come: a list of the
    slots while few, a flag per slot once they are many (a level of millions costs a
    bool per slot, not an index per pointer)."""

    def __init__(self, n: int, scratch: np.ndarray):
        self.n, self.flag, self.parts, self.size = n, scratch, [], 0
        self.flags = False

    def add(self, child: np.ndarray) -> None:
        if self.flags:
            self.flag[child] = True
            return
        self.parts.append(child.astype(index_type(self.n)))
        self.size += len(child)
        if self.size >= max(self.n >> 6, 1 << 14):
            for p in self.parts:
                self.flag[p] = True
            self.parts, self.flags = [], True

    def frontier(self) -> np.ndarray:
        if self.flags:
            return _flagged(self.flag)
        if not self.parts:
            return np.zeros(0, dtype=index_type(self.n))
        return unique(np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0])


class Graph:
    """The pointers between the objects of a full mark, kept so that every later pass
    (types, the marks per root, owners, paths) reads no memory. Built piece by piece as
    the mark reads them: each piece sorted by source and appended, so a slot's pointers
    are the run first[slot] .. first[slot] + count of child (the target slot) and off
    (the pointer's byte offset in the source); first is -1 where the graph does not hold
    the slot's pointers, -2 where it holds that there are none. The count is a byte per
    slot, 255 standing for "255 or more", the counts of those looked up among a few
    (big_slot, big_count). int32 wherever it fits. While the mark runs the two edge
    arrays fill blocks of EDGE_BLOCK (allocated empty: pages resident only as they are
    written, no zero-filled spare capacity); close() makes them one array each, a block
    copied and let go at a time."""

    EDGE_BLOCK = 1 << 24

    def __init__(self, n: int):
        self.n = n
        self.first = np.full(n, -1, dtype=index_type(n))
        self.count8 = np.zeros(n, dtype=np.uint8)
        self._big: dict = {}                  # slot -> count, for counts of 255 or more
        self.big_slot = self.big_count = None  # (after close: _big as sorted arrays)
        self.child = self.off = None          # (after close)
        self._blocks: list = []               # [child block, off block, used]
        self._child_dt, self._off_dt = index_type(n), np.int32
        self.edges_total = 0

    def cover(self, objs: np.ndarray) -> None:
        """objs (not covered before) are held from now on: their pieces follow."""
        self.first[objs] = -2

    def add(self, src: np.ndarray, off: np.ndarray, child: np.ndarray) -> None:
        """One piece of pointers of covered slots (a slot's pieces consecutive)."""
        k = len(src)
        if not k:
            return
        total = self.edges_total + k
        if total >= (1 << 31) and self.first.dtype != np.int64:
            self.first = self.first.astype(np.int64)
        if int(off.max()) >= (1 << 31) and self._off_dt != np.int64:
            self._off_dt = np.int64
            for b in self._blocks:
                b[1] = b[1].astype(np.int64)
        if k > 1 and not (src[1:] >= src[:-1]).all():
            order = np.argsort(src, kind="stable")
            src, off, child = src[order], off[order], child[order]
        at = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
        u = src[at]
        cnt = np.diff(np.r_[at, k])
        new = self.first[u] < 0          # (else a large object's run, continued)
        self.first[u[new]] = at[new] + self.edges_total
        self.count8[u[new]] = np.minimum(cnt[new], 255)
        big = ~new | (cnt >= 255)
        for slot, c, fresh in zip(u[big].tolist(), cnt[big].tolist(), new[big].tolist()):
            self._big[slot] = c if fresh else self._big.get(slot, int(self.count8[slot])) + c
            self.count8[slot] = 255
        done = 0
        while done < k:
            if not self._blocks or self._blocks[-1][2] == self.EDGE_BLOCK:
                self._blocks.append([np.empty(self.EDGE_BLOCK, self._child_dt),
                                     np.empty(self.EDGE_BLOCK, self._off_dt), 0])
            b = self._blocks[-1]
            take = min(k - done, self.EDGE_BLOCK - b[2])
            b[0][b[2]:b[2] + take] = child[done:done + take]
            b[1][b[2]:b[2] + take] = off[done:done + take]
            b[2] += take
            done += take
        self.edges_total = total

    def close(self) -> None:
        """The edge arrays as one array each (a single block: a view of its filled part)."""
        big = sorted(self._big.items())
        self.big_slot = np.array([b[0] for b in big], dtype=np.int64)
        self.big_count = np.array([b[1] for b in big], dtype=np.int64)
        self._big = {}
        blocks, self._blocks = self._blocks, []
        if len(blocks) == 1:
            self.child, self.off = blocks[0][0][:blocks[0][2]], blocks[0][1][:blocks[0][2]]
            return
        for j, dt in ((0, self._child_dt), (1, self._off_dt)):
            out = np.empty(self.edges_total, dtype=dt)
            at = 0
            for b in blocks:
                out[at:at + b[2]] = b[j][:b[2]]
                at += b[2]
                b[j] = None      # (let go of the block now)
            if j == 0:
                self.child = out
            else:
                self.off = out

    def covered(self, objs: np.ndarray) -> np.ndarray:
        return self.first[objs] != -1

    def counts(self, objs: np.ndarray) -> np.ndarray:
        """The number of pointers of each of objs (covered) the graph holds (int64)."""
        out = self.count8[objs].astype(np.int64)
        many = np.flatnonzero(out == 255)
        if len(many):
            out[many] = self.big_count[np.searchsorted(self.big_slot, objs[many])]
        return out

    def edges(self, objs: np.ndarray) -> tuple:
        """(source, offset, target) of every pointer from objs (all covered)."""
        lens = self.counts(objs)
        if len(lens) and int(lens.max()) <= 1:    # (a pointer or none each: no repeats)
            one = np.flatnonzero(lens)
            src = objs[one]
            pos = self.first[src]
            return src, self.off[pos].astype(np.int64), self.child[pos].astype(np.int64)
        starts = self.first[objs].astype(np.int64)
        total = int(lens.sum())
        if not total:
            z = np.zeros(0, np.int64)
            return z, z, z
        src = np.repeat(objs, lens)
        first = np.cumsum(lens) - lens
        pos = np.arange(total, dtype=np.int64) - np.repeat(first - starts, lens)
        return src, self.off[pos].astype(np.int64), self.child[pos].astype(np.int64)

    def edge_pieces(self, objs: np.ndarray, limit: int = EDGE_PIECE):
        """edges(objs) in pieces of about limit pointers (a slot with more: in ranges of
        its own), so a large array of pointers costs bounded temporaries."""
        lens = self.counts(objs)
        cum = np.cumsum(lens)
        if not len(cum) or int(cum[-1]) <= limit:
            yield self.edges(objs)
            return
        lo = 0
        while lo < len(objs):
            base = int(cum[lo - 1]) if lo else 0
            hi = int(np.searchsorted(cum, base + limit, "right"))
            if hi > lo:
                yield self.edges(objs[lo:hi])
                lo = hi
                continue
            o, first, k = int(objs[lo]), int(self.first[objs[lo]]), int(lens[lo])
            for a in range(0, k, limit):
                pos = np.arange(first + a, first + min(k, a + limit), dtype=np.int64)
                yield (np.full(len(pos), o, dtype=np.int64), self.off[pos].astype(np.int64),
                       self.child[pos].astype(np.int64))
            lo += 1

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.first, self.count8, self.child, self.off))


def _read_edges(heap, objs: np.ndarray) -> tuple:
    parts = list(_read_pieces(heap, objs))
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z, z
    return tuple(np.concatenate([p[k] for p in parts]).astype(np.int64) for k in range(3))


def _read_pieces(heap, objs: np.ndarray):
    """(source, offset, target slot) of the pointers of objs into allocated slots, read
    from memory, in the heap's pieces where it gives them (pointer_pieces)."""
    pieces = heap.pointer_pieces(objs) if hasattr(heap, "pointer_pieces") else \
        [heap.pointers(objs)]
    for src, off, val in pieces:
        if not len(val):
            continue
        child = heap.locate(val)
        ok = child >= 0
        yield src[ok], off[ok], child[ok]


def edges(heap, objs: np.ndarray) -> tuple:
    """(source, offset, target slot) of every pointer from objs into an allocated slot:
    from the heap's Graph where it covers them, else read."""
    g = getattr(heap, "graph", None)
    if not len(objs):
        z = np.zeros(0, np.int64)
        return z, z, z
    if g is None:
        return _read_edges(heap, objs)
    cov = g.covered(objs)
    if cov.all():
        return g.edges(objs)
    a, b = g.edges(objs[cov]), _read_edges(heap, objs[~cov])
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b))


def edge_pieces(heap, objs: np.ndarray):
    """edges() in pieces of bounded size where the heap's Graph covers objs."""
    g = getattr(heap, "graph", None)
    if g is not None and len(objs) and g.covered(objs).all():
        yield from g.edge_pieces(objs)
    else:
        yield edges(heap, objs)


MARK_CHUNK = 1 << 18     # frontier slots whose pointers are read at once


def _located(heap, values, scratch: np.ndarray) -> np.ndarray:
    """The distinct slots the pointer words values (an array, or a list of arrays: the
    root sets' own, not one copy of them all) point into, located a chunk at a time."""
    found = Frontier(heap.n, scratch)
    for part in (values if isinstance(values, list) else [values]):
        part = np.asarray(part, dtype=np.uint64)
        for lo in range(0, len(part), MARK_CHUNK):
            idx = heap.locate(part[lo:lo + MARK_CHUNK])
            found.add(idx[idx >= 0])
    return found.frontier()


def mark(heap, values, base: Optional[np.ndarray] = None,
         errors: Optional[list] = None, keep: bool = False, progress=None) -> np.ndarray:
    """The slots reachable from the pointer words `values` (an array, or a list of
    arrays), as a bool array; with base
    (a bool array of slots already marked and closed under reachability), the slots
    reachable beyond it are added to a copy of it. keep: read every pointer from
    memory and keep those followed as heap.graph (the full mark, from every root),
    a frontier of at most MARK_CHUNK slots at a time; progress(what, done, total) is
    told the slots marked so far."""
    n = heap.n
    marked = np.zeros(n, dtype=bool) if base is None else base.copy()
    scratch = np.zeros(n, dtype=bool)
    graph = Graph(n) if keep else None
    frontier = _located(heap, values, scratch)
    done = 0
    if progress is not None:
        progress("marking", 0, n)
    for _ in range(MAX_DEPTH):
        frontier = frontier[~marked[frontier]]
        if not len(frontier):
            break
        marked[frontier] = True
        nxt = Frontier(n, scratch)
        if keep:
            for lo in range(0, len(frontier), MARK_CHUNK):
                objs = frontier[lo:lo + MARK_CHUNK].astype(np.int64)
                graph.cover(objs)
                for src, off, child in _read_pieces(heap, objs):
                    graph.add(src, off, child)
                    nxt.add(child[~marked[child]])
                if progress is not None:
                    progress("marking", done + lo + len(objs), n)
        else:
            for lo in range(0, len(frontier), MARK_CHUNK):
                objs = frontier[lo:lo + MARK_CHUNK].astype(np.int64)
                for _src, _off, child in edge_pieces(heap, objs):
                    nxt.add(child[~marked[child]])
        done += len(frontier)
        frontier = nxt.frontier()
    else:
        if errors is not None:
            errors.append(f"the mark stopped after {MAX_DEPTH} levels of pointers")
    if keep:
        graph.close()
        heap.graph = graph
    if progress is not None:
        progress("marking", n, n)
    return marked


def full_mark(heap, values, errors: Optional[list] = None,
              progress=None) -> np.ndarray:
    """mark() from every root, keeping the pointers it followed as heap.graph."""
    return mark(heap, values, errors=errors, keep=True, progress=progress)


def owners(heap, base: np.ndarray, seeds: np.ndarray, labels: np.ndarray,
           errors: Optional[list] = None) -> np.ndarray:
    """For each slot, the one group whose roots alone reach it, or SHARED (reached from
    base, or by two groups), or UNREACHED. base: the mark from every root outside the
    groups (closed under reachability); seeds: pointer words of the groups' roots, with
    their group in labels (ints >= 0). Each slot is expanded at most twice: once with
    its first owner, once more when it turns out to be shared."""
    label = np.full(heap.n, UNREACHED, dtype=np.int32)
    label[base] = SHARED
    idx = heap.locate(np.asarray(seeds, dtype=np.uint64))
    ok = idx >= 0
    f_obj, f_lab = idx[ok], np.asarray(labels, dtype=np.int32)[ok]
    for _ in range(2 * MAX_DEPTH):
        if not len(f_obj):
            return label
        order = np.lexsort((f_lab, f_obj))
        f_obj, f_lab = f_obj[order], f_lab[order]
        first = np.flatnonzero(np.r_[True, f_obj[1:] != f_obj[:-1]])
        obj = f_obj[first]
        lo = np.minimum.reduceat(f_lab, first)
        hi = np.maximum.reduceat(f_lab, first)
        new = np.where(lo == hi, lo, SHARED).astype(np.int32)
        cur = label[obj]
        take = cur == UNREACHED
        clash = (cur >= 0) & (cur != new)
        final = np.where(take, new, SHARED).astype(np.int32)
        changed = take | clash
        obj = obj[changed]
        label[obj] = final[changed]
        src, _off, child = edges(heap, obj)
        f_obj, f_lab = child, label[src]
    if errors is not None:
        errors.append(f"the ownership mark stopped after {2 * MAX_DEPTH} rounds")
    return label


@dataclass
class Retained:
    """What each group alone keeps alive: bytes and objects per group index."""
    bytes: np.ndarray
    objects: np.ndarray
    errors: list = field(default_factory=list)


def retained(heap, base: np.ndarray, seeds: np.ndarray, labels: np.ndarray, groups: int,
             errors: Optional[list] = None) -> Retained:
    lab = owners(heap, base, seeds, labels, errors)
    mine = lab >= 0
    size = heap.size(np.flatnonzero(mine)).astype(np.float64)
    owner = lab[mine]
    nbytes = np.bincount(owner, weights=size, minlength=groups)[:groups].astype(np.int64)
    nobj = np.bincount(owner, minlength=groups)[:groups].astype(np.int64)
    return Retained(nbytes, nobj, errors if errors is not None else [])


# --- paths ------------------------------------------------------------------------------
@dataclass
class Step:
    """One pointer on a path: from a root word or an object at offset, to object obj."""
    obj: int          # the slot pointed at
    offset: int       # where the pointer sits in what points (the root's word offset or the object's)


@dataclass
class Path:
    root: int         # index of the root word (in the concatenated root words)
    steps: list       # Step list, the last one into the target object


def bfs_parents(heap, values: np.ndarray, errors: Optional[list] = None) -> tuple:
    """A breadth-first mark from the root words `values`: (parent, poff, depth) per slot
    (int32 where they fit). parent >= 0: the slot whose pointer at byte poff first
    reached it; parent < 0: a root word, -(word index) - 2, poff 0; depth -1 where not
    reached."""
    n = heap.n
    idt = index_type(max(n, len(values) + 2))
    parent = np.full(n, -1, dtype=idt)
    poff = np.zeros(n, dtype=np.int32)
    depth = np.full(n, -1, dtype=np.int32)
    idx = heap.locate(np.asarray(values, dtype=np.uint64))
    words = np.flatnonzero(idx >= 0)
    obj = idx[words]
    obj, first = unique_first(obj)
    parent[obj] = -words[first] - 2
    depth[obj] = 0
    frontier = obj
    for d in range(1, MAX_DEPTH):
        if not len(frontier):
            return parent, poff, depth
        reached = []
        # (in pieces, in frontier order: a slot reached in an earlier piece keeps it)
        for src, off, child in (e for lo in range(0, len(frontier), MARK_CHUNK)
                                for e in edge_pieces(heap, frontier[lo:lo + MARK_CHUNK])):
            new = depth[child] < 0
            src, off, child = src[new], off[new], child[new]
            child, first = unique_first(child)
            parent[child] = src[first]
            if len(off) and int(off.max()) >= (1 << 31) and poff.dtype != np.int64:
                poff = poff.astype(np.int64)
            poff[child] = off[first]
            depth[child] = d
            reached.append(child)
        frontier = np.sort(np.concatenate(reached)) if len(reached) > 1 else reached[0]
    if errors is not None:
        errors.append(f"the path search stopped after {MAX_DEPTH} levels")
    return parent, poff, depth


def _chain(parent, poff, obj: int, limit: int = 4096) -> tuple:
    """(root word index, steps) from a root to obj through the BFS parents."""
    steps = []
    cur = int(obj)
    for _ in range(limit):
        p = int(parent[cur])
        if p < 0:
            steps.append(Step(cur, 0))
            steps.reverse()
            return -p - 2, steps
        steps.append(Step(cur, int(poff[cur])))
        cur = p
    return None, []


def shortest_paths(heap, values: np.ndarray, target: int, max_paths: int,
                   errors: Optional[list] = None) -> list:
    """Up to max_paths shortest paths from a root word to slot target, each through a
    different last pointer: the BFS path, then the ones through the target's other
    referrers (objects and root words), shortest first."""
    parent, poff, depth = bfs_parents(heap, values, errors)
    if depth[target] < 0:
        return []
    paths = []
    root, steps = _chain(parent, poff, target)
    if root is not None:
        paths.append(Path(root, steps))
    if max_paths <= 1:
        return paths
    # every other referrer of the target, ordered by its own depth
    cands = []
    vals = np.asarray(values, dtype=np.uint64)
    idx = heap.locate(vals)
    for w in np.flatnonzero(idx == target)[:max_paths * 4]:
        if paths and paths[0].root == int(w) and len(paths[0].steps) == 1:
            continue
        cands.append((0, -1, int(w), 0))
    reached = np.flatnonzero(depth >= 0)
    chunk = 1 << 16
    for s in range(0, len(reached), chunk):
        src, off, child = edges(heap, reached[s:s + chunk])
        if not len(child):
            continue
        hit = child == target
        for o, k in zip(src[hit], off[hit]):
            o, k = int(o), int(k)
            if paths and len(paths[0].steps) >= 2 and int(parent[target]) == o \
                    and int(poff[target]) == k:
                continue
            cands.append((int(depth[o]) + 1, o, -1, k))
    cands.sort()
    for d, o, w, k in cands:
        if len(paths) >= max_paths:
            break
        if o < 0:
            paths.append(Path(w, [Step(target, 0)]))
            continue
        root, steps = _chain(parent, poff, o)
        if root is None or any(s.obj == target for s in steps):
            continue
        paths.append(Path(root, steps + [Step(target, k)]))
    return paths
