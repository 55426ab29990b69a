"""Every object slot of the Go heap (Go 1.22+, the allocation-header heap), as columns.

The heap is read as the runtime keeps it (mheap.go, mbitmap.go, malloc.go):
  - mheap_.allspans lists every mspan; those in state mSpanInUse hold objects: nelems
    slots of elemsize bytes from startAddr (a large object: one slot of npages pages);
  - a slot is allocated when its index is below freeindex (handed out by an mcache since
    the span was last swept) or its bit in allocBits is set (mspan.isFree);
  - the pointer words of an object, as the GC's scanobject finds them
    (typePointersOfUnchecked): none in a noscan span (spanclass & 1); for elemsize <= 512
    (heapBitsInSpan) one bit per word in the heap bitmap at the span's end (npages *
    pageSize / 64 bytes, before the Green Tea GC's inline mark bits (spanInlineMarkBits,
    Go 1.25 with GOEXPERIMENT=greenteagc, 1.26+) where 16 <= elemsize <= 512); for larger
    objects of a small size class, the malloc header: the object's first word is its
    *abi.Type and its data starts after it; for large spans, span.largeType; the type's
    pointer bitmap (rtypes.RType.ptr_mask) repeats every type size up to the slot's end.
Everything is read in bulk into numpy arrays, no Python object per heap object: per
span, never per slot (the alloc bits stay bits, a pointer's span is one look-up in a page
table); pointer_pieces() works through its objects a few MiB at a time, so a mark's
memory is bounded by what it keeps.
Layouts by DWARF field presence (runtime.mspan, runtime.mheap), constants from the
binary's DWARF with the values every version from 1.22 has used where it has none.

Pure (no gdb): problems become one-line `errors` and a partial result, never an exception.
"""
from __future__ import annotations

import struct
from typing import Optional

import numpy as np

from ..errors import GoExtError
from ..target.bulk import core_words, read_words
from .rtypes import rtypes

MAX_SPANS = 1 << 26          # allspans entries read (512 GiB of 8 KiB spans)
SPAN_CHUNK = 1 << 16         # mspan structs read at once
OBJ_CHUNK_BYTES = 1 << 22    # object bytes read at once by pointers()
LARGE_CHUNK_WORDS = 1 << 18  # words of one large object read at once
LOCATE_CHUNK = 1 << 20       # addresses located at once
MAX_PAGES = 1 << 27          # npages of one span (1 TiB)

SPAN_PATHS = ("startAddr", "npages", "freeindex", "nelems", "allocBits", "spanclass",
              "state.s", "elemsize", "largeType", "allocCount", "isUserArenaChunk")

# kinds of span, for pointers()
NOSCAN, HEAPBITS, HEADER, LARGE = 0, 1, 2, 3


class HeapLayout:
    """What the decoder needs of the runtime: mspan fields, constants."""

    def __init__(self, rt):
        from ..binary.dwarfconst import int_constant
        elf = getattr(rt, "elf", None)

        def const(names, default):
            for n in names:
                v = int_constant(elf, n) if elf is not None else None
                if v is not None:
                    return v
            return default
        t = rt.target
        self.span = rt.layout.fields("runtime.mspan", SPAN_PATHS)
        self.ok = self.span is not None and self.span.has("largeType") and self.span.has("startAddr")
        mh = t.lookup_type("runtime.mheap")
        found = mh.find("allspans") if mh is not None else None
        self.allspans_off = found[0] if found is not None else None
        self.page_size = const(("runtime.pageSize", "runtime._PageSize"), 8192)
        self.in_use = const(("runtime.mSpanInUse",), 1)
        self.min_header = const(("internal/runtime/gc.MinSizeForMallocHeader",
                                 "runtime.minSizeForMallocHeader"), 512)
        self.header_size = const(("internal/runtime/gc.MallocHeaderSize",
                                  "runtime.mallocHeaderSize"), 8)
        # the Green Tea GC's inline mark bits, at the end of small spans: present in the
        # binary as a type only when the runtime was built with them
        imb = t.lookup_type("runtime.spanInlineMarkBits")
        self.inline_marks = imb.size if imb is not None else 0
        self.span_size = (self.span.size + 7) // 8 * 8 if self.span is not None else 0
        # the size classes: each one's object size and span pages, the runtime's own tables
        self.class_size = self._table(rt, ("internal/runtime/gc.SizeClassToSize",
                                           "runtime.class_to_size"), "<u2")
        self.class_npages = self._table(rt, ("internal/runtime/gc.SizeClassToNPages",
                                             "runtime.class_to_allocnpages"), "<u1")

    @staticmethod
    def _table(rt, names, dtype) -> Optional[np.ndarray]:
        for name in names:
            t, a = rt.target.symbol_type(name), rt.target.symbol_address(name)
            if t is None or a is None or not t.length or t.length > 256:
                continue
            try:
                return np.frombuffer(rt.mem.read(a, t.size), dtype=dtype).astype(np.int64)
            except GoExtError:
                return None
        return None


class HeapObjects:
    """Every object slot of the heap's in-use spans (mSpanInUse), columnar."""

    def __init__(self, rt, progress=None):
        self.rt = rt
        self.progress = progress      # progress(what, done, total), or None
        self.errors: list = []
        self.lay = HeapLayout(rt)
        empty_u = np.zeros(0, dtype=np.uint64)
        self.span_base = self.span_end = self.span_elemsize = empty_u
        self.span_nelems = self.span_first = np.zeros(0, dtype=np.int64)
        self.span_class = np.zeros(0, dtype=np.uint8)
        self.span_large_type = empty_u
        self.span_addr = empty_u          # the mspan structs
        self.span_alloc_bits = empty_u
        self.span_freeindex = np.zeros(0, dtype=np.int64)
        self.n = 0
        # the spans' alloc bits as the runtime keeps them (a byte-aligned run per span,
        # from span_bit0), never a bool per slot
        self._abits = np.zeros(0, dtype=np.uint8)
        self.span_bit0 = np.zeros(0, dtype=np.int64)
        self._pages: Optional[np.ndarray] = None    # see _page_table
        self._page0 = 0
        self.span_kinds = np.zeros(0, dtype=np.int8)
        self._hb_rows: Optional[np.ndarray] = None   # see _heap_bits
        self._hb = self._hb_loaded = None
        self._hb_width = 0
        self._tiles: dict = {}   # (type, words) -> pointer word indices
        rtypes(rt).forget_dynamic()
        self._rtype_errors = 0
        if not self.lay.ok:
            self.errors.append("the heap views need Go 1.22+ (allocation headers): this runtime's "
                               "mspan has no largeType")
            return
        if self.lay.allspans_off is None:
            self.errors.append("runtime.mheap has no allspans: the heap cannot be read")
            return
        try:
            ptrs = self._allspans()
        except GoExtError as e:
            self.errors.append(f"mheap_.allspans unreadable: {e}")
            return
        self._read_spans(ptrs)
        self._read_alloc_bits()
        self.span_kinds = self.span_kind(np.arange(len(self.span_base), dtype=np.int64))
        self._page_table()

    # --- reading
    def _allspans(self) -> np.ndarray:
        rt = self.rt
        head = rt.mem.read(rt.global_addr("runtime.mheap_") + self.lay.allspans_off, 16)
        arr, n = struct.unpack("<QQ", head)
        if n > MAX_SPANS:
            self.errors.append(f"mheap_.allspans claims {n} spans: the first {MAX_SPANS} read")
            n = MAX_SPANS
        out = []
        step = 1 << 19
        for lo in range(0, n, step):
            m = min(step, n - lo)
            try:
                out.append(np.frombuffer(rt.mem.read(arr + 8 * lo, 8 * m), dtype="<u8"))
            except GoExtError as e:
                self.errors.append(f"mheap_.allspans unreadable from entry {lo} of {n}: {e}")
                break
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)

    def _read_spans(self, ptrs: np.ndarray) -> None:
        lay, spec = self.lay, self.lay.span.spec
        ptrs = ptrs[(ptrs != 0) & (ptrs % np.uint64(8) == 0)]
        cw = core_words(self.rt.mem)
        cols: dict = {k: [] for k in spec}
        addrs = []
        unread = 0
        for lo in range(0, len(ptrs), SPAN_CHUNK):
            a = ptrs[lo:lo + SPAN_CHUNK]
            words, ok = read_words(self.rt.mem, a, lay.span_size, cw=cw)
            unread += int((~ok).sum())
            raw = words[ok].view(np.uint8)
            for k, (off, fmt, size) in spec.items():
                dt = np.dtype(fmt)
                cols[k].append(np.ascontiguousarray(raw[:, off:off + size]).view(dt).ravel())
            addrs.append(a[ok])
            if self.progress is not None:
                self.progress("reading spans", min(lo + SPAN_CHUNK, len(ptrs)), len(ptrs))
        if unread:
            self.errors.append(f"{unread} mspan structs unreadable: their objects are not listed")
        col = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
        span_addr = np.concatenate(addrs) if addrs else np.zeros(0, dtype=np.uint64)
        ps = lay.page_size
        state = col["state.s"].astype(np.int64)
        base = col["startAddr"].astype(np.uint64)
        npages = col["npages"].astype(np.uint64)
        elemsize = col["elemsize"].astype(np.uint64)
        nelems = col["nelems"].astype(np.int64)
        inuse = state == lay.in_use
        good = inuse & (base != 0) & (base % np.uint64(ps) == 0) & (npages > 0) \
            & (npages <= np.uint64(MAX_PAGES)) & (elemsize > 0) & (nelems > 0)
        good &= elemsize.astype(np.float64) * nelems <= npages.astype(np.float64) * ps
        # a small size class: the class's object size and pages (its tables, or at least
        # what every version's are: up to 32 KiB objects in up to 16 pages)
        cls = (col["spanclass"].astype(np.int64) >> 1)
        small = cls != 0
        if lay.class_size is not None and lay.class_npages is not None:
            known = small & (cls < len(lay.class_size))
            c = np.where(known, cls, 0)
            good &= ~small | (known & (elemsize == lay.class_size[c].astype(np.uint64))
                              & (npages == lay.class_npages[c].astype(np.uint64)))
        else:
            good &= ~small | ((npages <= np.uint64(16)) & (elemsize <= np.uint64(32768)))
        good &= small | (nelems == 1)
        bad = int((inuse & ~good).sum())
        if bad:
            self.errors.append(f"{bad} in-use spans with implausible fields skipped "
                               "(garbage mspan pointers?)")
        order = np.argsort(base[good], kind="stable")
        sel = np.nonzero(good)[0][order]
        b = base[sel]
        e = b + npages[sel] * np.uint64(ps)
        # spans never overlap: one that does is garbage (the first one kept)
        if len(b) > 1:
            keep = np.ones(len(b), dtype=bool)
            overlap = b[1:] < np.maximum.accumulate(e)[:-1]
            if overlap.any():
                keep[1:] = ~overlap
                self.errors.append(f"{int(overlap.sum())} in-use spans overlap others: skipped")
                sel, b, e = sel[keep], b[keep], e[keep]
        self.span_base, self.span_end = b, e
        self.span_elemsize = elemsize[sel]
        self.span_nelems = nelems[sel]
        self.span_class = col["spanclass"][sel].astype(np.uint8)
        self.span_large_type = col["largeType"][sel].astype(np.uint64)
        self.span_alloc_bits = col["allocBits"][sel].astype(np.uint64)
        self.span_freeindex = col["freeindex"][sel].astype(np.int64)
        self.span_addr = span_addr[sel]
        first = np.zeros(len(sel), dtype=np.int64)
        if len(sel):
            np.cumsum(self.span_nelems[:-1], out=first[1:])
        self.span_first = first
        self.n = int(self.span_nelems.sum()) if len(sel) else 0

    def _read_alloc_bits(self) -> None:
        """The spans' allocBits, each span's run starting at byte span_bit0 // 8 of
        _abits (a slot is allocated when below its span's freeindex or its bit is set)."""
        ns = len(self.span_base)
        nbytes = (self.span_nelems + 7) // 8
        got = self.rt.mem.gather([(int(a), int(k)) for a, k in
                                  zip(self.span_alloc_bits.tolist(), nbytes.tolist())])
        buf = bytearray(int(nbytes.sum()))
        pos = 0
        bad = 0
        for (k, hit) in zip(nbytes.tolist(), got):
            if hit.__class__ is tuple:
                b, o = hit
                buf[pos:pos + k] = b[o:o + k]
            else:
                bad += 1
            pos += k
        if bad:
            self.errors.append(f"the alloc bits of {bad} spans unreadable: only their objects "
                               "below freeindex count as allocated")
        self._abits = np.frombuffer(bytes(buf), dtype=np.uint8)
        self.span_bit0 = np.zeros(ns, dtype=np.int64)
        if ns:
            np.cumsum(nbytes[:-1] * 8, out=self.span_bit0[1:])

    def _is_allocated(self, s: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Whether slot j (its index in its span) of each span row s is allocated."""
        bit = self.span_bit0[s] + j
        got = (self._abits[bit >> 3] >> (bit & 7).astype(np.uint8)) & np.uint8(1)
        return (got != 0) | (j < self.span_freeindex[s])

    @property
    def allocated(self) -> np.ndarray:
        """A bool per slot (made on demand: the heap keeps bits)."""
        out = np.zeros(self.n, dtype=bool)
        for lo in range(0, len(self.span_base), 1 << 14):
            hi = min(lo + (1 << 14), len(self.span_base))
            cnt = self.span_nelems[lo:hi]
            g0, g1 = int(self.span_first[lo]), int(self.span_first[hi - 1] + cnt[-1])
            s = np.repeat(np.arange(lo, hi, dtype=np.int64), cnt)
            j = np.arange(g0, g1, dtype=np.int64) - self.span_first[s]
            out[g0:g1] = self._is_allocated(s, j)
        return out

    def _page_table(self) -> None:
        """The span row of each heap page from the lowest span to the highest (int32,
        -1 where none), as the runtime's own spans table does: a pointer's span in one
        look-up. Not built when the heap's pages are spread too thinly (locate then
        searches the sorted span bases)."""
        ns = len(self.span_base)
        if not ns or ns >= (1 << 31):
            return
        ps = self.lay.page_size
        lo = int(self.span_base[0]) // ps
        hi = -(-int(self.span_end[-1]) // ps)
        npages = (self.span_end - self.span_base) // np.uint64(ps)
        if hi - lo > 2 * int(npages.sum()) + (1 << 20):
            return
        pages = np.full(hi - lo, -1, dtype=np.int32)
        first = (self.span_base // np.uint64(ps)).astype(np.int64) - lo
        cnt = npages.astype(np.int64)
        at = np.repeat(first - np.r_[0, np.cumsum(cnt)[:-1]], cnt) + \
            np.arange(int(cnt.sum()), dtype=np.int64)
        pages[at] = np.repeat(np.arange(ns, dtype=np.int32), cnt)
        self._pages, self._page0 = pages, lo

    # --- slots
    def span_of(self, idx) -> np.ndarray:
        """The span row of each slot index (-1 where out of range)."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) > len(self.span_first) and (idx[1:] >= idx[:-1]).all():
            # sorted (the marked slots, a graph's sources): the spans' first slots placed
            # among them, not each of them searched for among the spans
            at = np.searchsorted(idx, self.span_first, "left")
            s = np.repeat(np.arange(-1, len(self.span_first), dtype=np.int64),
                          np.diff(np.r_[0, at, len(idx)]))
        else:
            s = np.searchsorted(self.span_first, idx, "right").astype(np.int64) - 1
        s[(idx < 0) | (idx >= self.n)] = -1
        return s

    def locate(self, addrs) -> np.ndarray:
        """The slot index holding each address (interior pointers too), -1 if none or not
        allocated."""
        a = np.asarray(addrs, dtype=np.uint64)
        out = np.full(len(a), -1, dtype=np.int64)
        if not len(self.span_base) or not len(a):
            return out
        if len(a) > LOCATE_CHUNK:    # (bounded temporaries)
            for lo in range(0, len(a), LOCATE_CHUNK):
                out[lo:lo + LOCATE_CHUNK] = self.locate(a[lo:lo + LOCATE_CHUNK])
            return out
        if self._pages is not None:
            p = (a // np.uint64(self.lay.page_size)).astype(np.int64) - self._page0
            ok = (p >= 0) & (p < len(self._pages))
            s = self._pages[np.where(ok, p, 0)].astype(np.int64)
            ok &= s >= 0
        else:
            s = np.searchsorted(self.span_base, a, "right").astype(np.int64) - 1
            ok = s >= 0
        s[~ok] = 0
        ok &= a < self.span_end[s]
        j = ((a - self.span_base[s]) // np.where(ok, self.span_elemsize[s], 1)).astype(np.int64)
        ok &= j < self.span_nelems[s]
        j[~ok] = 0
        ok &= self._is_allocated(s, j)
        out[ok] = self.span_first[s[ok]] + j[ok]
        return out

    def addr(self, idx, s: Optional[np.ndarray] = None) -> np.ndarray:
        """The address of each slot (0 where out of range); s: their span rows, if known."""
        idx = np.asarray(idx, dtype=np.int64)
        s = self.span_of(idx) if s is None else s
        sc = np.maximum(s, 0)
        out = self.span_base[sc] + (idx - self.span_first[sc]).astype(np.uint64) * self.span_elemsize[sc]
        out[s < 0] = 0
        return out

    def size(self, idx) -> np.ndarray:
        s = self.span_of(idx)
        out = self.span_elemsize[np.maximum(s, 0)].copy() if len(self.span_base) else \
            np.zeros(len(s), dtype=np.uint64)
        out[s < 0] = 0
        return out

    def span_kind(self, s: np.ndarray) -> np.ndarray:
        """NOSCAN, HEAPBITS, HEADER or LARGE of each span row."""
        cls = self.span_class[s]
        k = np.full(len(s), HEADER, dtype=np.int8)
        k[self.span_elemsize[s] <= np.uint64(self.lay.min_header)] = HEAPBITS
        k[(cls >> 1) == 0] = LARGE
        k[(cls & 1) == 1] = NOSCAN
        return k

    def type_of(self, idx) -> np.ndarray:
        """The type address the heap records for each object (its malloc header word, or
        span.largeType), 0 if none."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.zeros(len(idx), dtype=np.uint64)
        s = self.span_of(idx)
        ok = s >= 0
        k = np.full(len(idx), NOSCAN, dtype=np.int8)
        k[ok] = self.span_kind(s[ok])
        large = ok & (k == LARGE)
        out[large] = self.span_large_type[s[large]]
        hdr = np.nonzero(ok & (k == HEADER))[0]
        if len(hdr):
            w, good = read_words(self.rt.mem, self.addr(idx[hdr]), 8, cw=core_words(self.rt.mem))
            out[hdr] = np.where(good, w[:, 0], 0)
        return out

    # --- pointers
    def pointers(self, idx) -> tuple:
        """(src, off, value): every word the GC treats as a pointer in each object of idx
        (slot indices), its byte offset in the object and its value; zero words dropped."""
        parts = list(self.pointer_pieces(idx))
        if not parts:
            return (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                    np.zeros(0, dtype=np.uint64))
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))

    def pointer_pieces(self, idx):
        """pointers() in pieces of about OBJ_CHUNK_BYTES of objects read: each object's
        pointers in one piece, except a large object's, which come in consecutive
        pieces of their own (LARGE_CHUNK_WORDS words each)."""
        idx = np.asarray(idx, dtype=np.int64)
        s = self.span_of(idx)
        k = np.where(s >= 0, self.span_kinds[np.maximum(s, 0)] if len(self.span_kinds)
                     else NOSCAN, NOSCAN)
        cw = core_words(self.rt.mem)
        # small objects with heap bits, one size class at a time
        hb = np.nonzero(k == HEAPBITS)[0]
        if len(hb):
            sizes = self.span_elemsize[s[hb]]
            if len(hb) == 1 or (sizes == sizes[0]).all():
                yield from self._heapbits(idx[hb], s[hb], int(sizes[0]), cw)
            else:
                for es in np.unique(sizes):
                    rows = hb[sizes == es]
                    yield from self._heapbits(idx[rows], s[rows], int(es), cw)
        hd = np.nonzero(k == HEADER)[0]
        if len(hd):
            yield from self._headers(idx[hd], s[hd], cw)
        for r in np.nonzero(k == LARGE)[0]:
            yield from self._large(int(idx[r]), int(s[r]))
        types = rtypes(self.rt)
        for e in types.errors[self._rtype_errors:]:
            self._error(e)
        self._rtype_errors = len(types.errors)

    def _heap_bits(self, spans: np.ndarray) -> tuple:
        """(rows, words): each span's row in words, a (k, w) uint64 matrix holding the
        heap bitmaps of the spans with heap bits (one bit per word of the span, bit j of
        word i for word 64 * i + j), read once per heap on first use."""
        lay = self.lay
        if self._hb_rows is None:
            k = self.span_kind(np.arange(len(self.span_base), dtype=np.int64)) \
                if len(self.span_base) else np.zeros(0, dtype=np.int8)
            hb = np.nonzero(k == HEAPBITS)[0]
            self._hb_rows = np.full(len(self.span_base), -1, dtype=np.int64)
            self._hb_rows[hb] = np.arange(len(hb), dtype=np.int64)
            pages = ((self.span_end[hb] - self.span_base[hb]) // np.uint64(lay.page_size)) \
                if len(hb) else np.zeros(0, dtype=np.uint64)
            npmax = int(pages.max()) if len(pages) else 1
            # spans with heap bits are one page (more only in user arena chunks)
            self._hb_width = npmax * lay.page_size // 512
            self._hb = np.zeros((len(hb), self._hb_width), dtype=np.uint64)
            self._hb_loaded = np.zeros(len(hb), dtype=bool)
            self._hb_spans = hb
        rows = self._hb_rows[spans]
        need = rows[~self._hb_loaded[rows]]
        if len(need):
            need = np.flatnonzero(np.bincount(need, minlength=len(self._hb_loaded)))
            sp = self._hb_spans[need]      # span rows, in need's order
            size = ((self.span_end[sp] - self.span_base[sp]) // np.uint64(64)).astype(np.int64)
            start = self.span_end[sp].astype(np.int64) - size
            if lay.inline_marks:
                es = self.span_elemsize[sp]
                start -= np.where((es >= np.uint64(16)) & (es <= np.uint64(lay.min_header)),
                                  lay.inline_marks, 0)
            got = self.rt.mem.gather(list(zip(start.tolist(), size.tolist())))
            bad = 0
            for r, hit, k in zip(self._hb_rows[sp].tolist(), got, size.tolist()):
                if hit.__class__ is tuple:
                    b, o = hit
                    self._hb[r, :k // 8] = np.frombuffer(b, dtype="<u8", count=k // 8, offset=o)
                else:
                    bad += 1
            self._hb_loaded[need] = True
            if bad:
                self._error(f"the heap bitmaps of {bad} spans unreadable: their objects' "
                            "pointers are not listed")
        return rows, self._hb

    def _error(self, msg: str) -> None:
        if msg not in self.errors and len(self.errors) < 200:
            self.errors.append(msg)

    def _heapbits(self, idx, spans, es, cw):
        nw = es // 8
        step = max(1, OBJ_CHUNK_BYTES // es)
        full = np.uint64((1 << nw) - 1) if nw < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
        for lo in range(0, len(idx), step):
            ii, ss = idx[lo:lo + step], spans[lo:lo + step]
            addrs = self.addr(ii, ss)
            rows, hb = self._heap_bits(ss)
            # each object's nw bits (at most 64) from the one or two bitmap words they lie in
            wo = ((addrs - self.span_base[ss]) // np.uint64(8)).astype(np.int64)
            q, sh = wo >> 6, (wo & 63).astype(np.uint64)
            low = hb[rows, np.minimum(q, hb.shape[1] - 1)] >> sh
            nxt = hb[rows, np.minimum(q + 1, hb.shape[1] - 1)]
            high = np.where(sh == 0, np.uint64(0), nxt << ((np.uint64(64) - sh) & np.uint64(63)))
            mask = (low | np.where(q + 1 < hb.shape[1], high, np.uint64(0))) & full
            some = np.flatnonzero(mask)
            if not len(some):
                continue
            ii, addrs, mask = ii[some], addrs[some], mask[some]
            words, ok = read_words(self.rt.mem, addrs, es, cw=cw)
            if not ok.all():
                self._error(f"{int((~ok).sum())} objects unreadable: their pointers are not listed")
            bits = (mask[:, None] >> np.arange(nw, dtype=np.uint64)[None, :]) & np.uint64(1)
            r, c = np.nonzero((bits != 0) & (words != 0))
            yield ii[r], c.astype(np.int64) * 8, words[r, c]

    def _type_words(self, typ: int, nwords: int) -> Optional[np.ndarray]:
        """Indices of the pointer words in nwords words tiled by the type at typ."""
        key = (typ, nwords)
        if key not in self._tiles:
            if len(self._tiles) > 4096:
                self._tiles.clear()
            self._tiles[key] = self._tile(typ, nwords)
        return self._tiles[key]

    def _tile(self, typ: int, nwords: int) -> Optional[np.ndarray]:
        t = rtypes(self.rt).at(typ)
        if t is None:
            self._error(f"type {typ:#x} of a heap object is not a type: its pointers are "
                        "not listed")
            return None
        mask = t.ptr_mask() if t.ptrbytes else np.zeros(0, dtype=bool)
        if mask is None or t.size % 8 or (t.ptrbytes and t.size == 0):
            self._error(f"type {t.name or hex(typ)}: pointer bitmap unreadable")
            return None
        if not t.ptrbytes:
            return np.zeros(0, dtype=np.int64)
        tw = t.size // 8
        pos = np.nonzero(mask)[0].astype(np.int64)
        reps = -(-nwords // tw)
        allw = (np.arange(reps, dtype=np.int64)[:, None] * tw + pos[None, :]).ravel()
        return allw[allw < nwords]

    def _headers(self, idx, spans, cw):
        hs = self.lay.header_size
        addrs = self.addr(idx, spans)
        tw, ok = read_words(self.rt.mem, addrs, 8, cw=cw)
        types = np.where(ok, tw[:, 0], 0)
        es = self.span_elemsize[spans]
        keyed = np.stack([types, es], axis=1)
        groups, inv = np.unique(keyed, axis=0, return_inverse=True)
        inv = inv.ravel()
        for g, (typ, size) in enumerate(groups.tolist()):
            if typ == 0:
                continue
            rows = np.nonzero(inv == g)[0]
            nwords = (size - hs) // 8
            keep = self._type_words(typ, nwords)
            if keep is None or not len(keep):
                continue
            step = max(1, OBJ_CHUNK_BYTES // size)
            for lo in range(0, len(rows), step):
                rr = rows[lo:lo + step]
                words, ok = read_words(self.rt.mem, addrs[rr] + np.uint64(hs), nwords * 8,
                                       cw=cw, keep=keep)
                r, c = np.nonzero(words)
                yield idx[rr][r], keep[c] * 8 + hs, words[r, c]

    def _large(self, i, s):
        typ = int(self.span_large_type[s])
        if not typ:
            return
        base, size = int(self.span_base[s]), int(self.span_elemsize[s])
        nwords = size // 8
        t = rtypes(self.rt).at(typ)
        if t is None:
            self._error(f"span.largeType {typ:#x} of the object at {base:#x} is not a type")
            return
        if not t.ptrbytes or t.size <= 0 or t.size % 8:
            return
        mask = t.ptr_mask()
        if mask is None:
            self._error(f"type {t.name or hex(typ)}: pointer bitmap unreadable")
            return
        tw = t.size // 8
        pos = np.nonzero(mask)[0].astype(np.int64)
        for lo in range(0, nwords, LARGE_CHUNK_WORDS):
            hi = min(nwords, lo + LARGE_CHUNK_WORDS)
            try:
                raw = self.rt.mem.read(base + lo * 8, (hi - lo) * 8)
            except GoExtError as e:
                self._error(f"the large object at {base:#x} unreadable from +{lo * 8:#x}: {e}")
                return
            w = np.frombuffer(raw, dtype="<u8")
            # the words of this chunk that the tiled mask marks
            k0, k1 = lo // tw, (hi - 1) // tw + 1
            allw = (np.arange(k0, k1, dtype=np.int64)[:, None] * tw + pos[None, :]).ravel()
            allw = allw[(allw >= lo) & (allw < hi)]
            v = w[allw - lo]
            nz = v != 0
            yield np.full(int(nz.sum()), i, dtype=np.int64), allw[nz] * 8, v[nz]


def read_heap(rt, progress=None) -> HeapObjects:
    """The heap of the current stop, read once (rt.forget_state drops it)."""
    h = rt.per_stop("heapobjs.heap", lambda: HeapObjects(rt, progress))
    h.progress = None
    return h
