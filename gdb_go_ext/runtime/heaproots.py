"""The garbage collector's roots, as the runtime's markroot finds them (Go 1.22+, amd64).

Three kinds, each a RootSet (pointer words, the root each belongs to, its offset):

- global_roots: every module's data and bss through the bitmaps the runtime built
  for them at start-up (moduledata.gcdatamask / gcbssmask; markrootBlock), words
  grouped by the ELF symbol that holds them, typed from DWARF where the target knows
  the symbol;
- stack_roots (runtime/stackroots.py): every goroutine's frames as scanstack finds them;
- special_roots: finalizer specials (the fn word, and the pointer words of the object
  it is set on, not the object itself), cleanups (Go 1.24+) and weak handles
  (markrootSpans), from each in-use span's specials list.

Pure (no gdb), bounded, and every problem is one line in .errors with the rest of the
result kept.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..binary.framevars import FrameNames
from ..errors import DecodeError
from ..target.bulk import core_words, read_words
from .rtypes import read_modules

MAX_MODULES = 64
MAX_GLOBAL_BYTES = 1 << 30           # data + bss of one module
MAX_SPECIALS = 1 << 16                # specials of one span
MAX_ERRORS = 20

_u64 = struct.Struct("<Q").unpack_from


@dataclass(slots=True)
class Root:
    kind: str                      # "global" | "stack" | "finalizer" | "other"
    name: str                      # global: its symbol; stack: the frame's function
    goid: Optional[int] = None     # stack roots: the goroutine
    variable: Optional[str] = None  # stack roots: the DWARF name at that frame slot
    type_name: Optional[str] = None  # the global's or variable's Go type, where known


class RootSet:
    """Pointer words found at roots, columnar.

    roots: the Root of each index (a sequence; stack roots are made on demand from
    columns). value: each non-zero pointer word; root: its Root's index; offset: the
    word's offset inside its global or frame variable (for a frame word DWARF does not
    name: its offset from the frame's CFA, negative for locals); addr: where the word
    lies. root_goid: per Root, its goroutine (-1 for non-stack roots)."""

    def __init__(self, roots=None, value=None, root=None, offset=None, addr=None,
                 errors=None, root_goid=None):
        self.roots = roots if roots is not None else []
        self.value = value if value is not None else np.zeros(0, np.uint64)
        self.root = root if root is not None else np.zeros(0, np.int32)
        self.offset = offset if offset is not None else np.zeros(0, np.int64)
        self.addr = addr if addr is not None else np.zeros(0, np.uint64)
        self.errors = errors if errors is not None else []
        if root_goid is None:
            root_goid = np.array([-1 if r.goid is None else r.goid for r in self.roots],
                                 dtype=np.int64)
        self.root_goid = root_goid

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return (f"RootSet({len(self.roots)} roots, {len(self.value)} words, "
                f"{len(self.errors)} errors)")


def merge(*sets: RootSet) -> RootSet:
    """One RootSet of several (root indices renumbered; stack roots materialised)."""
    roots, vals, idx, offs, addrs, errs, goids = [], [], [], [], [], [], []
    base = 0
    for s in sets:
        roots.extend(s.roots)
        vals.append(s.value)
        idx.append(s.root.astype(np.int64) + base)
        offs.append(s.offset)
        addrs.append(s.addr)
        errs.extend(s.errors)
        goids.append(s.root_goid)
        base += len(s.roots)
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)
    return RootSet(roots, cat(vals, np.uint64), cat(idx, np.int32), cat(offs, np.int64),
                   cat(addrs, np.uint64), errs, cat(goids, np.int64))


class ErrorLines(list):
    """At most MAX_ERRORS distinct lines, then one line for the rest."""

    def __init__(self):
        super().__init__()
        self._seen: set = set()
        self._more = 0

    def add(self, line: str) -> None:
        if line in self._seen:
            return
        self._seen.add(line)
        if len(self) < MAX_ERRORS:
            self.append(line)
        else:
            self._more += 1

    def done(self) -> list:
        out = list(self)
        if self._more:
            out.append(f"... and {self._more} more problems of the same kinds")
        return out


# --- modules ---------------------------------------------------------------------------
def modules(rt, errors: list) -> list:
    """Each module's moduledata fields (rtypes.read_modules), for a binary whose
    moduledata has the GC's data/bss masks."""
    fl = rt.layout.fields("runtime.moduledata", ("data", "gcdatamask.n"))
    if fl is None or not fl.has("data") or not fl.has("gcdatamask.n"):
        errors.append("the binary has no runtime.moduledata with gcdatamask: global roots not read")
        return []
    return read_modules(rt, errors)


def module_bias(rt) -> int:
    """Live address less file address (a PIE's load bias), 0 when unknown."""
    def bias():
        try:
            live = rt.target.symbol_address("runtime.firstmoduledata")
            sym = rt.elf.symbol("runtime.firstmoduledata") if rt.elf is not None else None
            if live and sym:
                return live - sym[0]
        except DecodeError:
            pass
        return 0
    return rt.per_binary("heaproots.bias", bias)


def frame_names(rt) -> FrameNames:
    """The DWARF names of the frame slots of rt's executable (binary/framevars.py)."""
    return FrameNames(rt.target.executable(), module_bias(rt))


def static_read(rt, addr: int, n: int) -> bytes:
    """n bytes of read-only data at live address addr: from the executable (rodata is
    not always in a core), else from memory."""
    if rt.elf is not None:
        try:
            data = rt.elf.read_vaddr(addr - module_bias(rt), n)
            if data is not None and len(data) == n:
                return bytes(data)
        except DecodeError:
            pass
    return bytes(rt.mem.read(addr, n))


def _read_region(rt, addr: int, size: int, what: str, errors: list) -> np.ndarray:
    """size bytes at addr as uint8 (Memory.region: unreadable pieces zero, one line
    for them)."""
    out, bad = rt.mem.region(addr, size)
    if bad:
        errors.append(f"{what}: {bad} of {size} bytes at {addr:#x} unreadable (read as zero)")
    return out


# --- globals ---------------------------------------------------------------------------
def global_roots(rt) -> RootSet:
    """The pointer words of every module's data and bss that the GC scans (markrootBlock
    through gcdatamask / gcbssmask), one Root per ELF symbol holding them."""
    errors: list = []
    words_v, words_a = [], []
    for md in modules(rt, errors):
        for sec, lo, hi, mask_n, mask_p in (("data", "data", "edata", "gcdatamask.n",
                                             "gcdatamask.bytedata"),
                                            ("bss", "bss", "ebss", "gcbssmask.n",
                                             "gcbssmask.bytedata")):
            start, end = md.get(lo) or 0, md.get(hi) or 0
            nbits, bitp = md.get(mask_n) or 0, md.get(mask_p) or 0
            if end == start:
                continue      # (an empty section)
            size = end - start
            if size <= 0 or size > MAX_GLOBAL_BYTES or start % 8:
                errors.append(f"module at {md['addr']:#x}: implausible {sec} "
                              f"[{start:#x}, {end:#x})")
                continue
            nwords = size // 8
            if nbits <= 0 or not bitp:
                errors.append(f"module at {md['addr']:#x}: no {sec} pointer mask "
                              f"(n={nbits}): its {sec} not scanned")
                continue
            if nbits > nwords:
                errors.append(f"module at {md['addr']:#x}: {sec} pointer mask of {nbits} bits "
                              f"for {nwords} words: cut to the {sec}")
                nbits = nwords
            try:
                mask = np.frombuffer(bytes(rt.mem.read(bitp, (nbits + 7) // 8)), dtype=np.uint8)
            except DecodeError as e:
                errors.append(f"module at {md['addr']:#x}: {sec} pointer mask unreadable: {e}")
                continue
            bits = np.unpackbits(mask, bitorder="little")[:nbits].astype(bool)
            raw = _read_region(rt, start, nbits * 8, f"{sec} of module at {md['addr']:#x}",
                               errors)
            w = raw[:nbits * 8].view("<u8")
            sel = np.flatnonzero(bits & (w != 0))
            words_v.append(w[sel])
            words_a.append(np.uint64(start) + sel.astype(np.uint64) * np.uint64(8))
    value = np.concatenate(words_v) if words_v else np.zeros(0, np.uint64)
    addr = np.concatenate(words_a) if words_a else np.zeros(0, np.uint64)
    order = np.argsort(addr, kind="stable")
    value, addr = value[order], addr[order]
    roots, root_idx, offset = _by_symbol(rt, addr, errors)
    return RootSet(roots, value, root_idx, offset, addr, errors,
                   np.full(len(roots), -1, dtype=np.int64))


def _by_symbol(rt, addr: np.ndarray, errors: list) -> tuple:
    """(roots, root index per word, offset in its symbol) of sorted addresses."""
    roots: list = []
    idx = np.zeros(len(addr), dtype=np.int32)
    off = np.zeros(len(addr), dtype=np.int64)
    if not len(addr):
        return roots, idx, off
    elf, bias = rt.elf, module_bias(rt)
    by_name: dict = {}
    cur_end, cur_root, cur_start = -1, -1, 0
    types: dict = {}
    for i, a in enumerate(addr.tolist()):
        if a >= cur_end:
            hit = elf.symbol_at(a - bias) if elf is not None else None
            if hit is not None:
                name, o = hit
                start = a - o
                sym = elf.symbol(name)
                cur_end = start + max(sym[1] if sym else 8, 8)
            else:
                name, start, cur_end = f"{a:#x}", a, a + 8
            cur_start = start
            cur_root = by_name.get(name)
            if cur_root is None:
                cur_root = by_name[name] = len(roots)
                roots.append(Root("global", name, None, None, _type_name(rt, name, types)))
        idx[i] = cur_root
        off[i] = a - cur_start
    return roots, idx, off


def _type_name(rt, name: str, cache: dict) -> Optional[str]:
    if name.startswith("0x") or name.startswith("go:") or name.startswith("type:"):
        return None
    try:
        t = rt.target.symbol_type(name)
    except Exception:   # a debugger's lookup of an odd symbol name: no type, nothing more
        return None
    return getattr(t, "name", None) or None




# --- specials --------------------------------------------------------------------------
MAX_SPANS = 1 << 24                   # 128 GiB of heap in one-page spans
MAX_SPAN_ERRORS = 64                  # unreadable spans or specials before giving up


def _kinds(rt) -> dict:
    """{special kind code: name} of the kinds markrootSpans scans: from the binary's
    DWARF constants; where it has none, by the version (the runtime has no field that
    tells: Go 1.25 put _KindSpecialTinyBlock first and moved the others up)."""
    from ..binary.dwarfconst import int_constant
    out = {}
    for name in ("Finalizer", "Cleanup", "WeakHandle"):
        v = None
        try:
            v = int_constant(rt.elf, "runtime._KindSpecial" + name) if rt.elf is not None else None
        except Exception:   # no DWARF constants: the fallback below
            v = None
        if v is None:
            minor = rt.layout.version_tuple[1] if len(rt.layout.version_tuple) > 1 else 0
            v = {"Finalizer": 2 if minor >= 25 else 1,
                 "Cleanup": 7 if minor >= 25 else (6 if minor == 24 else None),
                 "WeakHandle": 3 if minor >= 25 else (2 if minor == 24 else None)}[name]
        if v is not None:
            out[v] = name
    return out


def _col(mem, cw, addrs: np.ndarray, off: int, size: int) -> tuple:
    """(values, ok): the size-byte (<= 8, not crossing a word) field at off of each struct."""
    base = off & ~7
    w, ok = read_words(mem, addrs + np.uint64(base), 8, cw)
    v = w[:, 0] >> np.uint64(8 * (off - base))
    if size < 8:
        v &= np.uint64((1 << (8 * size)) - 1)
    return v, ok


def special_roots(rt, heap) -> RootSet:
    """The roots markrootSpans finds in the specials of in-use spans: a finalizer's fn
    word and the pointer words of the object it is set on (through heap.pointers; the
    object itself is not a root), a cleanup's function words, a weak handle's handle.
    heap: HeapObjects (duck-typed: locate, pointers), or None for the special words
    alone."""
    errors = ErrorLines()
    roots: list = []
    vals, idxs, offs, addrs = [], [], [], []
    mem = rt.mem
    sf = rt.layout.fields("runtime.mspan", ("startAddr", "state.s", "specials", "elemsize",
                                            "spanclass"))
    hf = rt.layout.fields("runtime.special", ("next", "offset", "kind"))
    if sf is None or hf is None or not sf.has("specials") or not hf.has("kind"):
        return RootSet(errors=["the binary has no runtime.mspan specials: special roots not read"])
    try:
        mh = rt.global_addr("runtime.mheap_")
        t = rt.target.symbol_type("runtime.mheap_")
        found = t.find("allspans") if t is not None else None
        if found is None:
            raise DecodeError("runtime.mheap_ has no allspans")
        ptr, n = struct.unpack("<QQ", mem.read(mh + found[0], 16))
    except DecodeError as e:
        return RootSet(errors=[f"special roots not read: {e}"])
    if n > MAX_SPANS:
        errors.add(f"mheap_.allspans holds an implausible {n} spans: the first {MAX_SPANS} read")
        n = MAX_SPANS
    try:
        spans = np.frombuffer(bytes(mem.read(ptr, 8 * n)), dtype="<u8") if n else \
            np.zeros(0, np.uint64)
    except DecodeError as e:
        return RootSet(errors=[f"special roots not read: mheap_.allspans ({n} spans): {e}"])
    spans = spans[spans != 0]
    cw = core_words(mem)
    in_use = int(_const(rt, "runtime.mSpanInUse", 1))
    state, ok1 = _col(mem, cw, spans, sf.offset("state.s"), 1)
    specials, ok2 = _col(mem, cw, spans, sf.offset("specials"), 8)
    bad = int((~(ok1 & ok2)).sum())
    if bad:
        errors.add(f"{bad} spans unreadable (their specials not read)")
    sel = np.flatnonzero(ok1 & ok2 & (state == np.uint64(in_use)) & (specials != 0))
    kinds = _kinds(rt)
    types = {name: rt.layout.fields(f"runtime.{tn}", paths) for name, tn, paths in (
        ("Finalizer", "specialfinalizer", ("fn",)),
        ("Cleanup", "specialCleanup", ("fn", "cleanup.call", "cleanup.fn", "cleanup.arg")),
        ("WeakHandle", "specialWeakHandle", ("handle",)))}
    objects = []    # (root index, object address, span noscan)
    failures = 0
    for s in spans[sel].tolist():
        if failures >= MAX_SPAN_ERRORS:
            errors.add(f"more than {MAX_SPAN_ERRORS} spans or specials unreadable: the rest "
                       "not read")
            break
        try:
            span = sf.read(mem, s)
        except DecodeError as e:
            errors.add(f"span at {s:#x}: {e}")
            failures += 1
            continue
        base, esize = span["startAddr"] or 0, span["elemsize"] or 0
        noscan = bool((span["spanclass"] or 0) & 1)
        sp, seen = span["specials"], set()
        for _ in range(MAX_SPECIALS):
            if not sp or sp in seen:
                break
            seen.add(sp)
            try:
                h = hf.read(mem, sp)
            except DecodeError as e:
                errors.add(f"special at {sp:#x} of span {s:#x}: {e}")
                failures += 1
                break
            kind = kinds.get(h["kind"])
            if kind is not None:
                obj = base + (h["offset"] // esize * esize if esize else h["offset"])
                fl = types.get(kind)
                what = {"Finalizer": "finalizer", "Cleanup": "cleanup",
                        "WeakHandle": "weak handle"}[kind]
                ri = len(roots)
                roots.append(Root("finalizer" if kind == "Finalizer" else "other",
                                  f"{what} of {obj:#x}"))
                try:
                    words = fl.read(mem, sp) if fl is not None else {}
                except DecodeError as e:
                    errors.add(f"{what} special at {sp:#x}: {e}")
                    words = {}
                for path, v in words.items():
                    if v:
                        vals.append(v)
                        idxs.append(ri)
                        offs.append(fl.offset(path))
                        addrs.append(sp + fl.offset(path))
                if kind == "Finalizer":
                    objects.append((ri, obj, noscan))
            sp = h["next"]
    value = np.array(vals, dtype=np.uint64)
    root = np.array(idxs, dtype=np.int32)
    offset = np.array(offs, dtype=np.int64)
    addr = np.array(addrs, dtype=np.uint64)
    # the finalized objects' own pointer words (scanobject), not the objects
    scan = [(ri, o) for ri, o, noscan in objects if not noscan]
    if scan and heap is not None:
        try:
            at = heap.locate(np.array([o for _, o in scan], dtype=np.uint64))
            keep = [(ri, int(i)) for (ri, _), i in zip(scan, np.asarray(at).tolist()) if i >= 0]
            if len(keep) < len(scan):
                errors.add(f"{len(scan) - len(keep)} objects with finalizers not found in the heap")
            if keep:
                src, off, val = heap.pointers(np.array([i for _, i in keep], dtype=np.int64))
                src = np.asarray(src, dtype=np.int64)
                # src holds the object indices given: each maps back to its root
                order = {i: ri for ri, i in keep}
                r_of = np.array([order.get(int(x), -1) for x in src.tolist()], dtype=np.int32)
                good = r_of >= 0
                base = np.asarray(heap.addr(src[good]), dtype=np.uint64) if good.any() else \
                    np.zeros(0, np.uint64)
                value = np.concatenate([value, np.asarray(val, dtype=np.uint64)[good]])
                root = np.concatenate([root, r_of[good]])
                offset = np.concatenate([offset, np.asarray(off, dtype=np.int64)[good]])
                addr = np.concatenate([addr, base + np.asarray(off, dtype=np.uint64)[good]])
        except Exception as e:   # the heap decoder's failure: the special words stand alone
            errors.add(f"finalized objects' pointers not read: {e}")
    elif scan:
        errors.add(f"{len(scan)} objects with finalizers: their pointer words not read (no heap)")
    q = _queued(rt, errors)
    if q[0]:
        base = len(roots)
        roots.extend(q[0])
        value = np.concatenate([value, np.array(q[1], dtype=np.uint64)])
        root = np.concatenate([root, np.array(q[2], dtype=np.int32) + base])
        offset = np.concatenate([offset, np.array(q[3], dtype=np.int64)])
        addr = np.concatenate([addr, np.array(q[4], dtype=np.uint64)])
    return RootSet(roots, value, root.astype(np.int32), offset, addr, errors.done(),
                   np.full(len(roots), -1, dtype=np.int64))


MAX_QUEUE_BLOCKS = 1 << 16


def _queued(rt, errors: ErrorLines) -> tuple:
    """The finalizers queued to run (markroot's fixedRootFinalizers: each finBlock of
    runtime.allfin, its first cnt entries' fn, arg, fint and ot) and, from Go 1.25, the
    cleanups queued (fixedRootCleanups: each cleanupBlock of gcCleanups.all, its first n
    cleanupFns' call, fn and arg): (roots, values, root indices, offsets, addresses)."""
    roots, vals, idxs, offs, addrs = [], [], [], [], []
    mem = rt.mem
    for head_sym, path, count, arr, words, kind, what in (
            ("runtime.allfin", None, "cnt", "fin", ("fn", "arg", "fint", "ot"), "finalizer",
             "queued finalizer"),
            ("runtime.gcCleanups", "all", "n", "cleanups", ("call", "fn", "arg"), "other",
             "queued cleanup")):
        try:
            a = rt.target.symbol_address(head_sym)
            t = rt.target.symbol_type(head_sym)
        except DecodeError:
            continue
        if not a or t is None:
            continue
        if path is not None:
            found = t.find(path)
            if found is None:
                continue
            a += found[0]
            t = found[1]
            inner = t.find("value") if t.kind != "ptr" else None
            if inner is not None:
                a += inner[0]
                t = inner[1]
        block_t = getattr(t, "elem", None)
        if block_t is None and path is not None:     # an atomic.UnsafePointer
            block_t = rt.target.lookup_type("runtime.cleanupBlock")
        if block_t is None:
            continue
        link = block_t.find("alllink") or block_t.find("cleanupBlockHeader.alllink")
        cnt = block_t.find(count) or block_t.find("cleanupBlockHeader." + count)
        arr_f = block_t.find(arr)
        if link is None or cnt is None or arr_f is None or arr_f[1].elem is None:
            continue
        et = arr_f[1].elem
        woffs = [(w, et.find(w)[0]) for w in words if et.find(w) is not None]
        try:
            b = mem.ptr(a)
        except DecodeError as e:
            errors.add(f"{head_sym}: {e}")
            continue
        seen: set = set()
        for _ in range(MAX_QUEUE_BLOCKS):
            if not b or b in seen:
                break
            seen.add(b)
            try:
                raw = mem.read(b, block_t.size)
            except DecodeError as e:
                errors.add(f"{what} block at {b:#x}: {e}")
                break
            n = struct.unpack_from("<I", raw, cnt[0])[0]
            n = min(n, arr_f[1].length or 0)
            for k in range(n):
                base = arr_f[0] + k * et.size
                ws = [(w, o, _u64(raw, base + o)[0]) for w, o in woffs]
                if not any(v for _, _, v in ws):
                    continue
                arg = dict((w, v) for w, _, v in ws).get("arg", 0)
                ri = len(roots)
                roots.append(Root(kind, f"{what} of {arg:#x}"))
                for w, o, v in ws:
                    if v:
                        vals.append(v)
                        idxs.append(ri)
                        offs.append(o)
                        addrs.append(b + base + o)
            b = _u64(raw, link[0])[0]
    return roots, vals, idxs, offs, addrs


def _const(rt, name: str, default: int) -> int:
    from ..binary.dwarfconst import int_constant
    try:
        v = int_constant(rt.elf, name) if rt.elf is not None else None
    except Exception:   # no DWARF constants
        v = None
    return default if v is None else v
