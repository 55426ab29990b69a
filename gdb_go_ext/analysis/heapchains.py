"""`go heap --pprof`'s reference chains: every live object once, on the chain by which
a breadth-first mark from every root first reached it (root, field steps, type).

Pure: the heap state of analysis/heapreport.py in, plain models out, written as a
pprof profile by views/heap.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..binary import types as T
from ..runtime import heapmark
from . import heapreport
from .heapreport import gotype, field_path, header_bytes, holds_array, object_types


# --- go heap --pprof: reference chains ----------------------------------------------------
MAX_CHAIN_STEPS = 32
UNTYPED_OFFSETS = 256       # a step in an untyped object past this: "[]" (any word)
CUT = "…"
_INDEX = None


def collapse_indices(via: str) -> str:
    """A step with its indices collapsed: "[7].next" -> "[].next"."""
    global _INDEX
    if _INDEX is None:
        import re
        _INDEX = re.compile(r"\[\d+\]")
    return _INDEX.sub("[]", via)


@dataclass
class ChainSample:
    frames: tuple         # root first: the root, its steps, then the objects' type
    objects: int
    bytes: int


@dataclass
class Chains:
    live_bytes: int
    live_objects: int
    samples: list         # ChainSample list, biggest first
    errors: list


def _root_frames(rt, root, roff: int) -> tuple:
    """The frames a root adds to a chain: a global's symbol (and the field path of the
    word inside it), or a frame's function and variable (and the path inside it)."""
    if root.kind == "global":
        head = ("data without a symbol",) if root.name.startswith("0x") else (root.name,)
    elif root.kind == "stack":
        head = (root.name,) + ((root.variable,) if root.variable else ())
        if not root.variable:      # a frame word DWARF does not name: no path inside it
            return head
    else:                       # finalizers, cleanups, weak handles: by kind, not object
        return (root.name.split(" of ")[0],)
    gt = gotype(rt, root.type_name)
    if gt is None:
        via = f"+{roff:#x}" if roff else ""
    elif roff == 0 and gt.kind in (T.PTR, T.MAP, T.CHAN, T.SLICE):
        via = ""
    else:
        via = field_path(gt, roff)[0]
    return head + ((collapse_indices(via),) if via else ())


def reference_chains(rt, gs, max_steps: int = MAX_CHAIN_STEPS, progress=None) -> Chains:
    """Every live object counted once, on the chain by which a breadth-first mark from
    every root first reached it: the root's frames, then one frame per pointer step (the
    field path of the pointer in the object holding it, indices collapsed to "[]"),
    then the object's type. Past max_steps steps the rest of a chain is one CUT frame.
    Identical chains are one sample."""
    st = heapreport.heap_state(rt, gs, progress)
    heap = st.heap
    errors = list(st.errors)
    live = st.live()
    if not len(live):
        return Chains(0, 0, [], errors)
    sets = [rs for rs in st.roots if len(rs.value)]
    values = heapmark.roots_values(sets)
    starts = np.cumsum([0] + [len(rs.value) for rs in sets])
    parent, poff, depth = heapmark.bfs_parents(heap, values, errors)
    tid, tys = object_types(rt, st)
    sizes_all = heap.size(live).astype(np.int64)
    tsize = np.array([t.size for t in tys] + [0], dtype=np.int64)

    # path ids: a path is (its parent path, one frame); path 0 is the empty path
    path_parent, path_frame = [-1], [-1]
    frames: list = []
    frame_id: dict = {}
    pair_id: dict = {(-1, -1): 0}

    def fid(text: str) -> int:
        i = frame_id.get(text)
        if i is None:
            i = frame_id[text] = len(frames)
            frames.append(text)
        return i

    def extend(p: int, f: int) -> int:
        k = (p, f)
        i = pair_id.get(k)
        if i is None:
            i = pair_id[k] = len(path_parent)
            path_parent.append(p)
            path_frame.append(f)
        return i

    pid = np.full(heap.n, -1, dtype=np.int32)     # each slot's path (less its type)
    d = depth[live]
    order = np.argsort(d, kind="stable")
    by_depth = live[order]
    d_sorted = d[order]
    bounds = np.flatnonzero(np.r_[True, d_sorted[1:] != d_sorted[:-1], True])
    unreached = 0
    # depth 0: the root word that first reached each object
    root_paths: dict = {}
    via_cache: dict = {}
    cut = fid(CUT)
    for b in range(len(bounds) - 1):
        objs = by_depth[bounds[b]:bounds[b + 1]]
        lvl = int(d_sorted[bounds[b]])
        if lvl < 0:
            unreached += len(objs)
            continue
        if lvl == 0:
            w = -parent[objs] - 2
            k = np.searchsorted(starts, w, side="right") - 1
            for s in heapmark.unique(k).tolist():
                rs = sets[s]
                m = np.flatnonzero(k == s)
                wi = w[m] - starts[s]
                tmpl = getattr(rs.roots, "tmpl", None)
                ri = rs.root[wi].astype(np.int64)
                who = np.asarray(tmpl, dtype=np.int64)[ri] if tmpl is not None else ri
                key = who * (1 << 32) + (rs.offset[wi].astype(np.int64) & 0xFFFFFFFF)
                keys, first = heapmark.unique_first(key)
                inv = np.searchsorted(keys, key)
                ids = np.empty(len(keys), dtype=np.int64)
                for j, (kv, f) in enumerate(zip(keys.tolist(), first.tolist())):
                    ck = (s, kv)
                    p = root_paths.get(ck)
                    if p is None:
                        root = rs.roots[int(ri[f])]
                        p = 0
                        for text in _root_frames(rt, root, int(rs.offset[wi[f]])):
                            p = extend(p, fid(text))
                        root_paths[ck] = p
                    ids[j] = p
                pid[objs[m]] = ids[inv]
            continue
        par = parent[objs]
        if lvl > max_steps:
            pp = pid[par].astype(np.int64)
            if lvl == max_steps + 1:
                up = heapmark.unique(pp)
                ext = np.array([extend(int(p), cut) for p in up.tolist()], dtype=np.int64)
                pp = ext[np.searchsorted(up, pp)]
            pid[objs] = pp
            continue
        # the field path of each pointer in its parent, per (parent type, offset); in
        # an array of values, per offset in one value (any element: "[]")
        pt = tid[par].astype(np.int64)
        off = poff[objs] - header_bytes(heap, par)
        typed = pt >= 0
        if typed.any():
            tp = par[typed]
            arr = holds_array(st, tp, pt[typed].astype(np.int32),
                              heap.size(tp).astype(np.int64))
            tsz = tsize[pt[typed]]
            o = off[typed]
            off[typed] = np.where(arr & (tsz > 0), o % np.maximum(tsz, 1) + tsz, o)
        untyped = ~typed
        # (an untyped object: its offsets, those past UNTYPED_OFFSETS as any element)
        off[untyped & (off >= UNTYPED_OFFSETS)] = -1
        key = (pt + 1) * (1 << 32) + (off & 0xFFFFFFFF)
        keys, first = heapmark.unique_first(key)
        inv = np.searchsorted(keys, key)
        step = np.empty(len(keys), dtype=np.int64)
        for j, (kv, f) in enumerate(zip(keys.tolist(), first.tolist())):
            sid = via_cache.get(kv)
            if sid is None:
                t, o = int(pt[f]), int(off[f])
                if t < 0:
                    via = f"+{o:#x}" if o >= 0 else "[]"
                else:
                    via = collapse_indices(tys[t].via(rt, o)) if o >= 0 else f"+{o:#x}"
                sid = via_cache[kv] = fid(via) if via else -1
            step[j] = sid
        pp = pid[par].astype(np.int64)
        pair = pp * (1 << 32) + (step[inv] + 1)
        upair = heapmark.unique(pair)
        pinv = np.searchsorted(upair, pair)
        ext = np.array([p if f < 0 else extend(p, f) for p, f in
                        zip((upair >> 32).tolist(), ((upair & 0xFFFFFFFF) - 1).tolist())],
                       dtype=np.int64)
        pid[objs] = ext[pinv]
    if unreached:
        errors.append(f"{unreached} live objects not reached by the breadth-first mark")
    # the objects' types: as `go heap` names them
    ids = tid[live].astype(np.int64)
    arrays = np.zeros(len(live), dtype=bool)
    typed = ids >= 0
    if typed.any():
        arrays[typed] = holds_array(st, live[typed], ids[typed].astype(np.int32),
                                    sizes_all[typed])
    leaf_key = np.where(typed, ids * 2 + arrays, -sizes_all - 1)
    leaves = heapmark.unique(leaf_key)
    skey = np.maximum(pid[live], 0).astype(np.int64) * len(leaves) + \
        np.searchsorted(leaves, leaf_key)
    usk = heapmark.unique(skey)
    sinv = np.searchsorted(usk, skey)
    ukey = [(int(k) // len(leaves), int(leaves[k % len(leaves)])) for k in usk.tolist()]
    cnt = np.bincount(sinv, minlength=len(ukey))
    byt = np.bincount(sinv, weights=sizes_all.astype(np.float64),
                      minlength=len(ukey)).astype(np.int64)
    path_frames: dict = {0: ()}

    def chain_of(p: int) -> tuple:
        todo = []
        while p not in path_frames:
            todo.append(p)
            p = path_parent[p]
        out = path_frames[p]
        for q in reversed(todo):
            out = out + (frames[path_frame[q]],)
            path_frames[q] = out
        return out

    samples = []
    for (p, lk), n, b in zip(ukey, cnt.tolist(), byt.tolist()):
        leaf = (("[]" if lk & 1 else "") + tys[lk >> 1].name) if lk >= 0 else \
            f"untyped {-lk - 1} B"
        samples.append(ChainSample(chain_of(p) + (leaf,), n, b))
    samples.sort(key=lambda s: (-s.bytes, s.frames))
    return Chains(int(sizes_all.sum()), len(live), samples, errors)
