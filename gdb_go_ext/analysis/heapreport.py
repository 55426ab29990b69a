"""The heap a program keeps: live bytes by size class, type and root; what each leak
bucket (or goroutine) alone keeps alive; the shortest paths from a root to an object.

Pure: a GoRuntime's heap (runtime/heapobjs.py), its roots (runtime/heaproots.py) and
the mark (runtime/heapmark.py) in; plain models out, formatted by views/heap.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..binary import types as T
from ..errors import NotGoError
from ..runtime import heapmark

PAGE = 8192


def require_heap(rt) -> None:
    """The heap views read the allocation-header heap of Go 1.22+ (mspan.largeType)."""
    rt.require_process()
    span = rt.layout.fields("runtime.mspan", ("largeType",))
    if span is None or not span.has("largeType"):
        raise NotGoError(f"the heap views need Go 1.22 or later (the allocation-header heap); "
                         f"this program is {rt.layout.go_version}")


@dataclass
class HeapState:
    """One stop's heap, its roots and their full mark (as bits, one per slot; given as
    bools, packed), kept for the views that follow."""
    heap: object
    roots: list                 # RootSet list: globals, stacks, specials
    marked: np.ndarray
    errors: list = field(default_factory=list)
    types: Optional[tuple] = None          # object_types(): (type id per slot, names)

    def __post_init__(self):
        if self.marked.dtype == bool:
            self.marked = np.packbits(self.marked, bitorder="little")

    def live(self) -> np.ndarray:
        """The marked slots, in order (int32 where they fit)."""
        parts = list(self.live_chunks())
        dt = heapmark.index_type(self.heap.n)
        return np.concatenate(parts).astype(dt, copy=False) if parts else np.zeros(0, dt)

    def live_chunks(self, chunk: int = 1 << 20):
        """The marked slots, in order, in pieces of at most chunk slots (int32 where they
        fit): no index of every live object at once."""
        dt = heapmark.index_type(self.heap.n)
        for lo in range(0, self.heap.n, chunk):
            bits = np.unpackbits(self.marked[lo >> 3:(lo + chunk) >> 3],
                                 count=min(chunk, self.heap.n - lo), bitorder="little")
            at = np.flatnonzero(bits)
            if len(at):
                yield (at + lo).astype(dt)

    @property
    def globals(self):
        return self.roots[0]

    @property
    def stacks(self):
        return self.roots[1]

    @property
    def specials(self):
        return self.roots[2]

    def values(self) -> np.ndarray:
        return heapmark.roots_values(self.roots)


def heap_state(rt, gs, progress=None) -> HeapState:
    """The heap of this stop, marked from every root, the stacks of the goroutines gs
    (kept per stop and per set of goroutines). progress(what, done, total): told how the
    spans, the roots and the mark go. The C heap's free pages are given back after
    each (memtrim)."""
    return rt.per_stop(("heapreport.state", _goroutines_key(gs)),
                       lambda: _heap_state(rt, gs, progress))


def _goroutines_key(gs) -> tuple:
    """What the roots depend on of gs: its goroutines (by g address, in order); a stop's
    goroutine has one stack."""
    return np.ascontiguousarray(gs.col("addr")).tobytes()   # (a GoroutineTable's column)


def _heap_state(rt, gs, progress) -> HeapState:
    from ..memtrim import give_back
    from ..runtime.heapobjs import read_heap
    from ..runtime.heaproots import global_roots, special_roots
    from ..runtime.stackroots import stack_roots
    heap = read_heap(rt, progress)
    errors = list(heap.errors)
    tell = progress or (lambda what, done, total: None)
    # (with DWARF's names and types of frame variables: they type what they point at)
    tell("reading roots", 0, 3)
    roots = [global_roots(rt)]
    tell("reading roots", 1, 3)
    roots.append(stack_roots(rt, gs))
    tell("reading roots", 2, 3)
    roots.append(special_roots(rt, heap))
    tell("reading roots", 3, 3)
    give_back()
    for rs in roots:
        errors += [e for e in rs.errors if e not in errors]
    marked = heapmark.full_mark(heap, heapmark.roots_parts(roots), errors=errors,
                                progress=progress)
    state = HeapState(heap, roots, marked, _fold_truncation(rt, errors))
    del marked
    give_back()
    return state


def _fold_truncation(rt, errors: list) -> list:
    """On a core cut short, the reads past the cut as one line: what lies before the cut
    is marked, and the rest of the lines are other problems."""
    direct = getattr(rt.target, "direct", None)
    warn = getattr(direct, "warning", lambda: None)()
    if not warn:
        return errors
    cut = [e for e in errors if "truncated core" in e]
    rest = [e for e in errors if "truncated core" not in e]
    if not cut:
        return [warn] + rest
    return [f"{warn}; {len(cut)} of the heap's tables lie past the cut, so only what they "
            f"describe before it is marked (first: {cut[0]})"] + rest


# --- go heap ------------------------------------------------------------------------
@dataclass
class Tally:
    name: str
    objects: int
    bytes: int


@dataclass
class HeapReport:
    live_bytes: int
    live_objects: int
    by_class: list      # (size_class, elem_size, objects, bytes)
    by_type: list       # Tally
    by_root: list       # (kind, name, objects, bytes)
    errors: list


def _tally(keys: np.ndarray, sizes: np.ndarray) -> tuple:
    """(unique keys, counts, byte sums), biggest first."""
    if not len(keys):
        return keys, keys, keys
    u = heapmark.unique(keys)
    inv = np.searchsorted(u, keys)
    counts = np.bincount(inv, minlength=len(u))
    sums = np.bincount(inv, weights=sizes.astype(np.float64)).astype(np.int64)
    order = np.lexsort((u, -sums))
    return u[order], counts[order], sums[order]


def _package(symbol: str) -> str:
    """The package of a global's symbol: "net/http.DefaultClient" -> "net/http"."""
    if symbol.startswith("0x"):
        return "data without a symbol"
    slash = symbol.rfind("/")
    dot = symbol.find(".", slash + 1)
    return symbol[:dot] if dot > 0 else symbol


CHUNK = 1 << 18      # slots tallied or followed at once (bounded temporaries)


def _merge(acc: dict, keys, counts, sums) -> None:
    for k, n, b in zip(keys.tolist(), counts.tolist(), sums.tolist()):
        was = acc.get(k, (0, 0))
        acc[k] = (was[0] + n, was[1] + b)


def marked_bytes(heap, m: np.ndarray) -> tuple:
    """(objects, bytes) of the slots marked in the bool array m: counted per span."""
    if not heap.n or not len(heap.span_first):
        return 0, 0
    objects = nbytes = 0
    first = heap.span_first
    for a in range(0, len(first), 1 << 14):     # (a block of spans: bounded temporaries)
        b = min(a + (1 << 14), len(first))
        end = int(first[b]) if b < len(first) else heap.n
        per_span = np.add.reduceat(m[int(first[a]):end], first[a:b] - first[a],
                                   dtype=np.int32).astype(np.int64)
        objects += int(per_span.sum())
        nbytes += int((per_span * heap.span_elemsize[a:b].astype(np.int64)).sum())
    return objects, nbytes


def heap_report(rt, gs, progress=None) -> HeapReport:
    st = heap_state(rt, gs, progress)
    heap = st.heap
    # by type: what the heap records; else the static type of a typed pointer to it
    if progress is not None:
        progress("typing objects", 0, 1)
    tid, names = object_types(rt, st)
    classes: dict = {}
    typed: dict = {}
    total = 0
    count = 0
    for objs in st.live_chunks(CHUNK):
        count += len(objs)
        spans = heap.span_of(objs)
        sizes = heap.span_elemsize[spans].astype(np.int64)
        total += int(sizes.sum())
        # by size class (0: large objects, a span each)
        cls = (heap.span_class[spans] >> 1).astype(np.int64)
        _merge(classes, *_tally(np.where(cls == 0, -sizes, cls), sizes))
        ids = tid[objs]
        arrays = holds_array(st, objs, ids, sizes)
        # (untyped: by size, as -1 - size)
        _merge(typed, *_tally(np.where(ids >= 0, ids.astype(np.int64) * 2 + arrays,
                                       -1 - sizes), sizes))
    by_class = [(k if k > 0 else 0, -k if k <= 0 else b // n, n, b) for k, (n, b) in
                sorted(classes.items(), key=lambda kv: (-kv[1][1], kv[0]))]
    by_type = [Tally(("[]" if t & 1 else "") + names[t >> 1].name if t >= 0 else
                     f"untyped {-1 - t} B", n, b) for t, (n, b) in typed.items()]
    by_type.sort(key=lambda t: (-t.bytes, t.name))
    # by root: each package's globals, every goroutine stack, the finalizers
    by_root = []
    g = st.globals
    if len(g.value):
        pkgs = np.array([_package(r.name) for r in g.roots] or [""], dtype=object)
        word_pkg = pkgs[g.root] if len(g.roots) else pkgs[:0]
        for p in sorted(set(word_pkg.tolist())):
            n, nbytes = marked_bytes(heap, heapmark.mark(heap, g.value[word_pkg == p]))
            if n:
                by_root.append(("globals", p, n, nbytes))
    for kind, rs in (("stacks", st.stacks), ("finalizers", st.specials)):
        if len(rs.value):
            n, nbytes = marked_bytes(heap, heapmark.mark(heap, rs.value))
            if n:
                by_root.append((kind, "goroutine stacks" if kind == "stacks" else "finalizers",
                                n, nbytes))
    by_root.sort(key=lambda r: (-r[3], r[1]))
    return HeapReport(total, count, by_class, by_type, by_root, st.errors)


def holds_array(st: HeapState, objs: np.ndarray, ids: np.ndarray,
                sizes: np.ndarray) -> np.ndarray:
    """Whether each typed object holds an array of its type (a slice's backing array, a
    make([]T, n)): room for two or more values after its malloc header."""
    tys = st.types[1]
    tsize = np.array([t.size for t in tys] + [0], dtype=np.int64)[ids]   # (-1: the 0)
    data = sizes - header_bytes(st.heap, objs)
    return (tsize > 0) & (data >= 2 * tsize)


def header_bytes(heap, objs: np.ndarray) -> np.ndarray:
    """The malloc header before each object's data (0 where it has none), as the heap's
    span kinds say."""
    from ..runtime.heapobjs import HEADER
    kind = heap.span_kind(np.maximum(heap.span_of(objs), 0))
    return np.where(kind == HEADER, heap.lay.header_size, 0).astype(np.int64)


class Ty:
    """The type of what an object holds (one value, or an array of them): the runtime's
    type descriptor where the heap records one (rtypes.RType), else the DWARF type of
    the pointer that reached it (binary.types.GoType)."""

    __slots__ = ("name", "go", "r")

    def __init__(self, name: str, go=None, r=None):
        self.name, self.go, self.r = name, go, r

    @property
    def size(self) -> int:
        return (self.r.size if self.r is not None else self.go.size if self.go is not None
                else 0)

    def via(self, rt, off: int) -> str:
        """The field or index path of the word at off in what the object holds."""
        if self.r is not None:
            from ..runtime.rtypes import rtypes
            return rtypes(rt).field_path(self.r, off)
        size = self.size
        if self.go is None or not size:
            return f"+{off:#x}"
        i, rest = divmod(off, size)
        inner = field_path(self.go, rest)[0]
        return (f"[{i}]" if i else "") + inner

    def pointee(self, rt, off: int) -> Optional["Ty"]:
        """The type of what the pointer word at off points at, where the type says."""
        size = self.size
        if not size:
            return None
        off %= size
        if self.r is not None:
            return _r_pointee(rt, self.r, off)
        return _go_pointee(rt, self.go, off)


def _r_pointee(rt, t, off: int) -> Optional[Ty]:
    from ..runtime import rtypes as R
    for _ in range(32):
        if t is None:
            return None
        k = t.kind
        if k == R.KIND_STRUCT:
            hit = None
            for _name, o, ft in t.fields:
                if o <= off < o + max(ft.size, 1):
                    hit = (o, ft)
            if hit is None:
                return None
            off -= hit[0]
            t = hit[1]
        elif k == R.KIND_ARRAY:
            e = t.elem
            if e is None or e.size <= 0:
                return None
            off %= e.size
            t = e
        elif off:
            return None
        elif k in (R.KIND_PTR, R.KIND_SLICE):
            e = t.elem
            return Ty(e.name, None, e) if e is not None else None
        elif k == R.KIND_STRING:
            return Ty("string bytes")
        else:   # maps, chans, funcs: their runtime structs, by DWARF
            go = gotype(rt, t.name)
            return _go_pointee(rt, go, 0) if go is not None else None
    return None


def _go_pointee(rt, t: Optional[T.GoType], off: int) -> Optional[Ty]:
    _, ft = field_path(t, off) if t is not None else (None, None)
    if ft is None:
        return None
    if ft.kind in (T.PTR, T.SLICE) and ft.elem is not None:
        return Ty(ft.elem.name, ft.elem)   # a slice: its backing array holds them
    if ft.kind == T.STRING:
        return Ty("string bytes")
    if ft.kind == T.MAP:
        header = ft.extra.get("header")
        if callable(header) and not isinstance(header, T.GoType):
            header = header()
            ft.extra["header"] = header
        return Ty(header.name, header) if header is not None else None
    if ft.kind == T.CHAN:
        hchan = gotype(rt, "runtime.hchan")
        return Ty("runtime.hchan", hchan) if hchan is not None else None
    return None


MAX_TYPE_ROUNDS = 256


def object_types(rt, st: HeapState) -> tuple:
    """(type id per slot, -1 where unknown; the Ty of each id): the type the heap
    records (malloc header, span.largeType), else the static type of the first typed
    pointer that reaches it, from a DWARF-typed root (a global, a frame variable) or
    from the field of a typed object, breadth first. Kept on the state; the C heap's
    free pages given back once its temporaries are gone."""
    if st.types is None:
        from ..memtrim import give_back
        st.types = _object_types(rt, st)
        give_back()
    return st.types


def _object_types(rt, st: HeapState) -> tuple:
    from ..runtime.rtypes import rtypes
    reg = rtypes(rt)
    heap = st.heap
    tid = np.full(heap.n, -1, dtype=np.int32)
    tys: list = []
    ids: dict = {}

    def intern(ty: Ty) -> int:
        i = ids.get(ty.name)
        if i is None:
            i = ids[ty.name] = len(tys)
            tys.append(ty)
        return i

    pointees: dict = {}
    kind_id: dict = {}
    for objs in st.live_chunks(CHUNK):
        rec = heap.type_of(objs)
        have = np.flatnonzero(rec)
        kinds = heapmark.unique(rec[have])    # per distinct type descriptor, not per object
        for a in kinds.tolist():
            if a not in kind_id:
                r = reg.at(int(a))
                kind_id[a] = intern(Ty(r.name, None, r)) if r is not None and r.name else -1
        if len(have):
            got = np.array([kind_id[a] for a in kinds.tolist()], dtype=np.int32)
            tid[objs[have]] = got[np.searchsorted(kinds, rec[have])]
    # one pointer away from typed roots: per (root type, offset), not per word; a million
    # words at a time (an object two roots type differently: the first chunk's, then
    # the smaller key's)
    root_ty: dict = {}
    for rs in (st.globals, st.stacks):
        tnames, tname_of_root = _root_type_names(rs) if len(rs.value) else ([], None)
        for lo in range(0, len(rs.value), CHUNK):
            idx = heap.locate(rs.value[lo:lo + CHUNK])
            hit = np.flatnonzero(idx >= 0) + lo
            if not len(hit):
                continue
            idx = idx[hit - lo]
            key = tname_of_root[rs.root[hit]].astype(np.int64) * (1 << 32) + \
                (rs.offset[hit].astype(np.int64) & 0xFFFFFFFF)
            keys, first = heapmark.unique_first(key)
            inv = np.searchsorted(keys, key)
            for k, (kv, f) in enumerate(zip(keys.tolist(), first.tolist())):
                ck = (id(rs), kv)
                if ck not in root_ty:
                    name = tnames[kv >> 32] if kv >> 32 < len(tnames) else None
                    off = int(rs.offset[hit[f]])
                    root_ty[ck] = _go_pointee(rt, gotype(rt, name), off) if name else None
                ty = root_ty[ck]
                if ty is None:
                    continue
                objs = idx[inv == k]
                tid[objs[tid[objs] < 0]] = intern(ty)
    # then field by field, breadth first
    dt = heapmark.index_type(heap.n)     # (the typed slots a block at a time: no int64 index)
    frontier = np.concatenate([(np.flatnonzero(tid[lo:lo + CHUNK] >= 0) + lo).astype(dt)
                               for lo in range(0, heap.n, CHUNK)] or [np.zeros(0, dt)])
    scratch = np.zeros(heap.n, dtype=bool)
    for _ in range(MAX_TYPE_ROUNDS):
        if not len(frontier):
            break
        found = heapmark.Frontier(heap.n, scratch)
        for lo in range(0, len(frontier), CHUNK):
            for piece in heapmark.edge_pieces(heap, frontier[lo:lo + CHUNK]):
                c = _type_children(rt, heap, tid, tys, intern, pointees, piece)
                found.add(c[tid[c] >= 0])
        frontier = found.frontier()
    return tid, tys


def _type_children(rt, heap, tid, tys, intern, pointees, piece) -> np.ndarray:
    """One step of object_types over a piece of edges (source, offset, target) from typed
    slots: their untyped children typed by the field each pointer sits in; the children
    reached."""
    src, off, child = piece
    if not len(child):
        return child
    ok = tid[child] < 0
    src, off, child = src[ok], off[ok], child[ok]
    if not len(child):
        return child
    data = off - header_bytes(heap, src)
    src_ids = tid[src]
    types = heapmark.unique(tid[src[np.r_[True, src[1:] != src[:-1]]]])   # (src: sorted)
    for t in types.tolist():
        ty = tys[t]
        if not ty.size:
            continue
        m = np.flatnonzero(src_ids == t) if len(types) > 1 else np.arange(len(src_ids))
        if not len(m):
            continue
        rel = data[m] % ty.size
        lo, hi = int(rel.min()), int(rel.max())
        for r in ([lo] if lo == hi else heapmark.unique(rel).tolist()):
            if (t, r) not in pointees:
                pointees[(t, r)] = ty.pointee(rt, int(r))
            p = pointees[(t, r)]
            if p is not None:
                c = child[m[rel == r]]
                tid[c[tid[c] < 0]] = intern(p)
    return child


def _root_type_names(rs) -> tuple:
    """(distinct type names, the index of each root's type name in them; -1 for none),
    from a stack root set's columns where it has them, not a Root object per root."""
    roots = rs.roots
    templates, tmpl = getattr(roots, "templates", None), getattr(roots, "tmpl", None)
    if templates is not None and tmpl is not None:
        names = [t[2] for t in templates]
        return names, np.asarray(tmpl)
    names: list = []
    pos: dict = {}
    out = np.empty(len(roots), dtype=np.int64)
    for i, r in enumerate(roots):
        n = getattr(r, "type_name", None)
        if n not in pos:
            pos[n] = len(names)
            names.append(n)
        out[i] = pos[n]
    return names, out


# --- types along a path ------------------------------------------------------------------
def gotype(rt, name: Optional[str]) -> Optional[T.GoType]:
    """The DWARF type of a name: a debugger may not look up "*T" or "[]T" by name, so
    those are made from T."""
    if not name:
        return None
    cache = rt.per_binary("heapreport.gotypes", dict)
    if name in cache:
        return cache[name]
    cache[name] = None          # (a recursive name stops here)
    try:
        t = rt.target.lookup_type(name)
    except Exception:   # a debugger's lookup of a name it cannot parse
        t = None
    if t is None and name == "string":   # gdb has no Go string type by that name
        t = T.GoType(name, T.STRING, 2 * rt.layout.ptr_size)
    elif t is None and name.startswith("*"):
        e = gotype(rt, name[1:])
        t = T.GoType(name, T.PTR, rt.layout.ptr_size, elem=e) if e is not None else None
    elif t is None and name.startswith("[]"):
        e = gotype(rt, name[2:])
        t = T.GoType(name, T.SLICE, 3 * rt.layout.ptr_size, elem=e) if e is not None else None
    cache[name] = t
    return t


def field_path(t: Optional[T.GoType], off: int, depth: int = 8) -> tuple:
    """(the field or index path at byte off in a value of type t, the type there)."""
    path = ""
    for _ in range(depth):
        if t is None:
            break
        if off == 0 and t.kind not in (T.STRUCT, T.ARRAY):
            return path, t
        if t.kind == T.STRUCT:
            hit = None
            for f in t.fields:
                ft = f.type
                if f.offset <= off < f.offset + max(ft.size, 1):
                    hit = f
            if hit is None:
                break
            path += ("." if path else "") + hit.name
            off -= hit.offset
            t = hit.type
        elif t.kind == T.ARRAY and t.elem is not None and t.elem.size:
            i = off // t.elem.size
            path += f"[{i}]"
            off -= i * t.elem.size
            t = t.elem
        else:
            break
    return (path + (f"+{off:#x}" if off else "")) or f"+{off:#x}", None


# --- go stacks --retained / go goroutines --retained -----------------------------------------
def retained_by(rt, gs, group_of_goid: dict, groups: int) -> heapmark.Retained:
    """What the goroutines of each group alone keep alive (group_of_goid: goid -> group
    index in range(groups)); goroutines in no group count as other roots."""
    st = heap_state(rt, gs)
    heap = st.heap
    s = st.stacks
    goids = np.asarray(s.root_goid, dtype=np.int64)
    if len(goids) and len(group_of_goid):
        keys = np.fromiter(group_of_goid.keys(), dtype=np.int64, count=len(group_of_goid))
        vals = np.fromiter(group_of_goid.values(), dtype=np.int64, count=len(group_of_goid))
        order = np.argsort(keys)
        keys, vals = keys[order], vals[order]
        at = np.clip(np.searchsorted(keys, goids), 0, len(keys) - 1)
        lut = np.where(keys[at] == goids, vals[at], -1)
    else:
        lut = np.full(len(goids), -1, dtype=np.int64)
    word_group = lut[s.root] if len(goids) else np.zeros(0, np.int64)
    mine = word_group >= 0
    errors = list(st.errors)
    base = heapmark.mark(heap, heapmark.roots_values(
        [st.globals, s, st.specials], [None, ~mine, None]), errors=errors)
    return heapmark.retained(heap, base, s.value[mine], word_group[mine], groups, errors)


def retained_each(rt, gs) -> tuple:
    """(goids, bytes, objects), biggest first: what each goroutine alone keeps alive
    (every goroutine its own group)."""
    st = heap_state(rt, gs)
    goids = heapmark.unique(np.asarray(st.stacks.root_goid, dtype=np.int64))
    goids = goids[goids >= 0]
    kept = retained_by(rt, gs, dict(zip(goids.tolist(), range(len(goids)))), len(goids))
    order = np.lexsort((goids, -kept.bytes))
    return goids[order], kept.bytes[order], kept.objects[order], kept.errors


# --- go paths -------------------------------------------------------------------------------
@dataclass
class PathStep:
    address: int          # the object's start
    size: int
    type: Optional[str]
    via: str              # the field path, index or offset of the pointer in what points


@dataclass
class HeapPath:
    root: object          # heaproots.Root
    root_via: str         # where in the root the first pointer sits
    steps: list           # PathStep list, the last one the object holding ADDR


def paths_to(rt, gs, addr: int, max_paths: int, progress=None) -> tuple:
    """(the object holding addr as (start, size, type) or None, [HeapPath], errors)."""
    st = heap_state(rt, gs, progress)
    heap = st.heap
    target = int(heap.locate(np.array([addr], dtype=np.uint64))[0])
    if target < 0:
        return None, [], st.errors
    tid, tys = object_types(rt, st)

    def obj_info(o):
        a = np.array([o])
        t = int(tid[o])
        return int(heap.addr(a)[0]), int(heap.size(a)[0]), tys[t] if t >= 0 else None

    # the concatenated root words, in order, and their root sets
    sets = [rs for rs in st.roots if len(rs.value)]
    values = heapmark.roots_values(sets)
    starts = np.cumsum([0] + [len(rs.value) for rs in sets])
    errors = list(st.errors)
    found = heapmark.shortest_paths(heap, values, target, max_paths, errors)
    out = []
    for p in found:
        k = int(np.searchsorted(starts, p.root, side="right") - 1)
        rs, w = sets[k], p.root - int(starts[k])
        root = rs.roots[int(rs.root[w])]
        roff = int(rs.offset[w])
        gt = gotype(rt, getattr(root, "type_name", None))
        via = field_path(gt, roff)[0] if gt is not None else f"+{roff:#x}"
        if roff == 0 and gt is not None and gt.kind in (T.PTR, T.MAP, T.CHAN, T.SLICE):
            via = ""    # the variable itself
        steps = []
        prev = None
        for s in p.steps:
            a, sz, ty = obj_info(s.obj)
            if prev is None:
                step_via = via
            elif prev[2] is None:
                step_via = f"+{s.offset:#x}"
            else:
                hdr = int(header_bytes(heap, np.array([prev[3]]))[0])
                step_via = prev[2].via(rt, s.offset - hdr) if s.offset >= hdr else \
                    f"+{s.offset:#x}"
            steps.append(PathStep(a, sz, _held(st, s.obj, sz, ty), step_via))
            prev = (a, sz, ty, s.obj)
        out.append(HeapPath(root, via, steps))
    obj = obj_info(target)
    return (obj[0], obj[1], _held(st, target, obj[1], obj[2])), out, errors


def _held(st: HeapState, obj: int, size: int, ty) -> Optional[str]:
    """What an object holds, by name: T, or []T for an array of them."""
    if ty is None:
        return None
    o = np.array([obj])
    arr = holds_array(st, o, st.types[0][o], np.array([size], dtype=np.int64))[0]
    return ("[]" if arr else "") + ty.name
