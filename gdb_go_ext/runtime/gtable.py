"""Every goroutine as columns: a walk of a million goroutines in bounded memory.

A walk (GoroutineWalker.walk) reads each g's fields into numpy arrays, one per field,
and settles the goroutines by shape (status, wait reason, start, creator, stack top)
over those arrays: the stack walk is made once per shape, and every goroutine of the
shape is checked against its recipe (the return addresses in the slots its walk read)
in one vectorised comparison. Goroutines off that path (running, in a syscall, being
scanned, with odd stacks) are decoded one by one as before, and kept as objects.

A GoroutineTable is a sequence of Goroutine rows made on demand, so every consumer that
iterates a walk keeps working; the views of this project filter, group, bucket and
write JSON over the columns themselves. Labels and blocked-on are read once per walk,
in bulk, when a view first asks for them; a walk with stacks after one without (or
the other way round) reuses the g fields already read (table_at)."""
from __future__ import annotations

import ctypes
import os
import re
import struct
from collections.abc import Sequence
from typing import Optional

import numpy as np

from ..errors import DecodeError, ReadError
from .gmodel import Goroutine
from .layout import GSCAN, GFields
from .stack import TOP_BYTES

NS_PER_MINUTE = 60_000_000_000
CHUNK = 1 << 15   # gs read together on a live target (a bounded buffer)
_MIX = np.uint64(0x9E3779B97F4A7C15)

# the shared parts of a Goroutine, in goroutine_maker's order
SHARED = ("status_code", "status", "scan", "wait_reason", "start", "created_by", "current",
          "user", "stack", "error")


def _field_dtypes(glay) -> dict:
    """{GFields name: numpy dtype} of the fields present, from the layout's struct format."""
    out = {}
    keys = iter(glay.keys)
    for count, ch in re.findall(r"(\d*)([a-zA-Z?])", glay.struct.format.lstrip("<=>!@")):
        if ch == "x":
            continue
        for _ in range(int(count or 1)):
            out[next(keys)] = np.dtype("<" + ch)
    return out


class _CoreWords:
    """Vectorised reads straight out of a core file's mapping (target/direct.py's
    CoreMem): values of one size at many addresses, and which the core holds. The
    pages a read touched are given back afterwards (release), so a walk over a core
    of millions of goroutines does not keep gigabytes of it resident."""

    def __init__(self, core):
        self.core = core
        self.starts = np.array(core.starts, dtype=np.uint64)
        segs = core.segs
        self.ends = np.array([s.vaddr + s.filesz for s in segs], dtype=np.uint64)
        self.offs = np.array([s.offset for s in segs], dtype=np.uint64)
        self.vaddrs = np.array([s.vaddr for s in segs], dtype=np.uint64)
        self.fsize = core.size
        self._views: dict = {}
        data = getattr(getattr(core, "elf", None), "_data", None)
        self._mmap = data if hasattr(data, "madvise") else None

    def release(self, offs: Optional[np.ndarray] = None, size: int = 0) -> None:
        """Drop the mapping's resident pages (they stay in the page cache): those of
        the file range offs (file offsets of a read of size bytes each) spans, or all."""
        if self._mmap is None:
            return
        import mmap
        try:
            if offs is not None and len(offs):
                start = int(offs.min()) & ~(mmap.PAGESIZE - 1)
                end = min(int(offs.max()) + size, self.fsize)
                if end > start:
                    self._mmap.madvise(mmap.MADV_DONTNEED, start, end - start)
            elif offs is None:
                self._mmap.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError, AttributeError):
            self._mmap = None

    def words_var(self, mem, addrs: np.ndarray, sizes: np.ndarray,
                  sels: np.ndarray) -> Optional[tuple]:
        """(words, ok): of the sizes[i] bytes at addrs[i], the words sels[i] (a row of
        word indices per range), and whether the core holds each range; None where a
        range is not 8-aligned in the file. The pages read are given back (release):
        callers pass ranges in address order, so each page is faulted in once."""
        offs, held = self.locate(addrs, sizes)
        if np.any(offs % np.uint64(8)):
            return None
        w = self._view(np.dtype("<u8"))[(offs // np.uint64(8)).astype(np.int64)[:, None] + sels]
        w[~held] = 0
        if held.any():
            self.release(offs[held], int(sizes.max()))
        return w, held

    def read_strided(self, addrs: np.ndarray, size: int, stride: int, buf) -> Optional[np.ndarray]:
        """size bytes at each of addrs into buf (a bytearray) at i * stride, copied from
        the file with one pread per run of ranges that lie stride apart in it (gs of one
        size class, 17 to a span): which of them the core holds (the others zeros), or
        None without a file to read. Where the mapping would fault in and give back
        every page of the gs, this copies them once (a third of the time at 1M)."""
        fd = self._fd()
        if fd is None:
            return None
        import os
        m = len(addrs)
        offs, held = self.locate(addrs, size)
        mv = memoryview(buf)
        if not held.all():
            for i in np.flatnonzero(~held).tolist():
                mv[i * stride:i * stride + size] = bytes(size)
        o = offs.astype(np.int64)
        new = np.ones(m, dtype=bool)
        new[1:] = (np.diff(o) != stride) | ~held[1:] | ~held[:-1]
        starts = np.flatnonzero(new & held)
        ends = np.append(np.flatnonzero(new)[1:], m)
        ends = ends[np.searchsorted(np.flatnonzero(new), starts)]
        try:
            for a, b, off in zip(starts.tolist(), ends.tolist(), o[starts].tolist()):
                want = (b - a - 1) * stride + size
                got = os.preadv(fd, [mv[a * stride:a * stride + want]], off)
                if got != want:
                    for i in range(a, b):
                        if (i - a) * stride + size > got:
                            held[i] = False
                            mv[i * stride:i * stride + size] = bytes(size)
        except OSError:
            return None
        return held

    def __del__(self, _close=os.close):   # bound now: no import at interpreter exit
        fd = getattr(self, "_file", None)
        if fd is not None and fd is not False:
            try:
                _close(fd)
            except OSError:
                pass

    def _fd(self):
        fd = getattr(self, "_file", False)
        if fd is False:
            import os
            path = getattr(self.core, "path", None)
            try:
                fd = os.open(path, os.O_RDONLY) if path else None
            except OSError:
                fd = None
            self._file = fd
        return fd

    def _view(self, dtype):
        v = self._views.get(dtype)
        if v is None:
            mv = self.core.mv
            v = self._views[dtype] = np.frombuffer(mv, dtype=dtype,
                                                   count=len(mv) // dtype.itemsize)
        return v

    def locate(self, addrs: np.ndarray, size: int) -> tuple:
        """(file offsets, held) of size bytes at each of addrs (uint64)."""
        if not len(self.starts):
            return np.zeros(len(addrs), np.uint64), np.zeros(len(addrs), bool)
        i = np.searchsorted(self.starts, addrs, side="right").astype(np.int64) - 1
        ok = i >= 0
        i[~ok] = 0
        size = np.asarray(size, dtype=np.uint64)   # (one for all, or one per range)
        end = addrs + size
        ok &= (end <= self.ends[i]) & (end >= addrs)
        offs = addrs - self.vaddrs[i] + self.offs[i]
        ok &= offs + size <= np.uint64(self.fsize)
        offs[~ok] = 0
        return offs, ok

    def values(self, offs: np.ndarray, dtype) -> Optional[np.ndarray]:
        """The values of dtype at file offsets (all aligned to its size), else None."""
        size = dtype.itemsize
        if len(offs) and np.any(offs % np.uint64(size)):
            return None
        return self._view(dtype)[(offs // np.uint64(size)).astype(np.int64)]


CORE_CHUNK = 1 << 12   # rows per core read: at most this many pages resident at once
LIVE_CHUNK = 1 << 15   # ranges per live read: 32 calls, for the read threads to share


class _ProcWords:
    """Reads of many ranges of one size from a stopped process with process_vm_readv,
    the iovecs built by numpy (1024 ranges a call, the calls spread over the process
    source's threads: see direct.READ_THREADS); a batch the call cannot read whole is
    read again afterwards through the memory's own gather_fixed, range by range."""

    def __init__(self, proc):
        self.proc = proc

    def _readv(self, remote: np.ndarray, local: np.ndarray) -> tuple:
        """process_vm_readv of the ranges of remote into those of local ((n, 2) uint64
        iovec tables, address and length), in calls of up to IOV_MAX ranges and about
        _CALL_BYTES, spread over the read threads: (lo, hi, short), each call's first
        range and the one after its last, and whether it read less than all of them."""
        from ..target.direct import _CALL_BYTES, _IOV_MAX
        lens = remote[:, 1]
        done = np.cumsum(lens) - lens
        call = (np.arange(len(remote)) // _IOV_MAX) * (1 << 40) + done // np.uint64(_CALL_BYTES)
        cuts = np.flatnonzero(np.diff(call)) + 1
        lo, hi = np.append(0, cuts), np.append(cuts, len(remote))
        lp, rp = local.ctypes.data, remote.ctypes.data
        got = self.proc.readv_calls([(lp + 16 * x, y - x, rp + 16 * x, y - x)
                                     for x, y in zip(lo.tolist(), hi.tolist())])
        short = np.array([g for g, _ in got], dtype=np.int64) != \
            np.add.reduceat(lens, lo).astype(np.int64)
        return lo, hi, short

    def _batches(self, addrs: np.ndarray, size: int, out: np.ndarray, lo: int, hi: int,
                 failed: list) -> None:
        """Ranges lo..hi into out's rows; the (first, count) of those calls did not
        read whole into failed."""
        n = hi - lo
        if n <= 0:
            return
        remote = np.empty((n, 2), dtype=np.uint64)
        remote[:, 0] = addrs[lo:hi]
        remote[:, 1] = size
        local = np.empty_like(remote)
        local[:, 0] = np.uint64(out.ctypes.data) + np.arange(lo, hi, dtype=np.uint64) * \
            np.uint64(size)
        local[:, 1] = size
        c_lo, c_hi, short = self._readv(remote, local)
        for k in np.flatnonzero(short).tolist():
            failed.append((lo + int(c_lo[k]), int(c_hi[k] - c_lo[k])))

    def read_strided(self, mem, addrs: np.ndarray, size: int, stride: int, buf) -> tuple:
        """size bytes at each of addrs into buf (a bytearray) at i * stride: (held, errors),
        which could be read and the errors of the others (index -> error; their bytes
        zeros). Ranges that lie stride apart (gs of one size class) are read as one run,
        cut every _CALL_BYTES so that the threads share them (see _readv). A call not
        read whole is read again range by range through the memory's gather_fixed."""
        from ..target.direct import _CALL_BYTES
        m = len(addrs)
        held = np.ones(m, dtype=bool)
        errs: dict = {}
        if not m:
            return held, errs
        a = addrs.astype(np.uint64, copy=False)
        new = np.ones(m, dtype=bool)
        new[1:] = np.diff(a) != np.uint64(stride)
        new[::max(1, _CALL_BYTES // stride)] = True
        firsts = np.flatnonzero(new)
        counts = np.diff(np.append(firsts, m))
        remote = np.empty((len(firsts), 2), dtype=np.uint64)
        remote[:, 0] = a[firsts]
        remote[:, 1] = (counts - 1) * stride + size
        local = np.empty_like(remote)
        arr = (ctypes.c_char * len(buf)).from_buffer(buf)
        try:
            local[:, 0] = np.uint64(ctypes.addressof(arr)) + firsts.astype(np.uint64) * \
                np.uint64(stride)
            local[:, 1] = remote[:, 1]
            lo, hi, short = self._readv(remote, local)
        finally:
            del arr
        mv = memoryview(buf)
        for k in np.flatnonzero(short).tolist():
            r0, r1 = int(firsts[lo[k]]), (int(firsts[hi[k]]) if hi[k] < len(firsts) else m)
            data, errors = mem.gather_fixed(a[r0:r1].tolist(), size)
            for i in range(r1 - r0):
                mv[(r0 + i) * stride:(r0 + i) * stride + size] = data[i * size:(i + 1) * size]
            for i, e in errors.items():
                held[r0 + i] = False
                errs[r0 + i] = e
        return held, errs

    def read(self, mem, addrs: np.ndarray, size: int, out: np.ndarray, ok: np.ndarray) -> None:
        """size bytes at each of addrs into out (n, size) uint8; ok[i] False where not."""
        if not self._merged(mem, addrs, size, out, ok):
            self._ranges(mem, addrs, size, out, ok)

    def _merged(self, mem, addrs: np.ndarray, size: int, out: np.ndarray, ok: np.ndarray) -> bool:
        """read() of ranges that lie close together (sudogs, label sets: small objects of
        one size class, allocated one after another): in address order, ranges less
        than MERGE_GAP apart are read as one, with what lies between. False, having
        read nothing, where that would not save a quarter of the cost."""
        from ..target.direct import _CALL_BYTES
        n = len(addrs)
        a = addrs.astype(np.uint64, copy=False)
        if n < 256 or size % 8 or not _dense(a, size) or np.any(a % np.uint64(8)):
            return False
        if np.all(a[1:] >= a[:-1]):
            order, s = np.arange(n), a
        else:
            order = np.argsort(a)
            s = a[order]
        new = np.ones(n, dtype=bool)
        new[1:] = (s[1:] - s[:-1]) > np.uint64(size + MERGE_GAP)
        part = (s - s[0]) // np.uint64(_CALL_BYTES)   # long runs cut, for the threads
        new[1:] |= part[1:] != part[:-1]
        firsts = np.flatnonzero(new)
        lasts = np.append(firsts[1:], n) - 1
        starts = s[firsts]
        lens = s[lasts] + np.uint64(size) - starts
        # (a range costs about as much as RANGE_BYTES copied)
        if len(firsts) * RANGE_BYTES + int(lens.sum()) > n * (RANGE_BYTES + size) * 3 // 4:
            return False
        place = np.cumsum(lens) - lens
        buf = _scratch_of(int(place[-1] + lens[-1]), "merged")
        remote = np.empty((len(firsts), 2), dtype=np.uint64)
        remote[:, 0], remote[:, 1] = starts, lens
        local = np.empty_like(remote)
        local[:, 0], local[:, 1] = np.uint64(buf.ctypes.data) + place, lens
        lo, hi, short = self._readv(remote, local)
        run = np.cumsum(new) - 1
        offs = (place[run] + (s - starts[run])) // np.uint64(8)
        words = buf.view(np.uint64)[offs.astype(np.int64)[:, None] +
                                    np.arange(size // 8, dtype=np.int64)[None, :]]
        out[order] = words.view(np.uint8).reshape(n, size)
        if short.any():   # those calls' ranges one by one
            bad_run = np.zeros(len(firsts), dtype=bool)
            for k in np.flatnonzero(short).tolist():
                bad_run[lo[k]:hi[k]] = True
            rows = order[bad_run[run]]
            sub_out = np.zeros((len(rows), size), dtype=np.uint8)
            sub_ok = np.ones(len(rows), dtype=bool)
            self._ranges(mem, a[rows], size, sub_out, sub_ok)
            out[rows] = sub_out
            ok[rows] = sub_ok
        return True

    def _ranges(self, mem, addrs: np.ndarray, size: int, out: np.ndarray, ok: np.ndarray) -> None:
        """read(), range by range (1024 a call)."""
        failed: list = []
        self._batches(addrs, size, out, 0, len(addrs), failed)
        for b, m in failed:
            buf, errors = mem.gather_fixed(addrs[b:b + m].tolist(), size)
            out[b:b + m] = np.frombuffer(buf, dtype=np.uint8, count=m * size).reshape(m, size)
            for i in errors:
                ok[b + i] = False


# a remote range costs process_vm_readv about as much as copying RANGE_BYTES (0.8 us
# against 0.6 ns a byte, on this VM); ranges up to MERGE_GAP apart are read as one
RANGE_BYTES = 1300
MERGE_GAP = 1024


def _dense(addrs: np.ndarray, size: int) -> bool:
    """Whether ranges at addrs mostly lie within MERGE_GAP of one another in address
    order, for _merged to pay: the median gap of a sample of about 1024, scaled."""
    n = len(addrs)
    if n < 256:
        return False
    step = max(1, n // 1024)
    smp = np.sort(addrs[::step].astype(np.uint64, copy=False))
    return float(np.median(np.diff(smp))) / step <= size + MERGE_GAP


def _proc_words(mem) -> Optional[_ProcWords]:
    direct = getattr(mem.target, "direct", None)
    if direct is None or not hasattr(direct, "_readv") or not hasattr(direct, "pid"):
        return None
    return _ProcWords(direct)


def core_words(mem) -> Optional[_CoreWords]:
    direct = getattr(mem.target, "direct", None)
    if direct is None or not hasattr(direct, "mv") or not hasattr(direct, "segs"):
        return None
    cw = getattr(direct, "_gtable_words", None)
    if cw is None:
        cw = _CoreWords(direct)
        try:
            direct._gtable_words = cw
        except AttributeError:
            pass
    return cw


_scratch: dict = {}   # reused by reads, by use: warm pages, not fresh ones


def _scratch_of(nbytes: int, use: str = "read") -> np.ndarray:
    """A reused uint8 buffer of at least nbytes, 8-aligned, one per use (a read into
    one may go on into another: read_words into "read", _merged into "merged")."""
    buf = _scratch.get(use)
    if buf is None or len(buf) < nbytes:
        words = max(nbytes, 1 << 16) // 8 + 1
        buf = _scratch[use] = np.zeros(words, dtype=np.uint64).view(np.uint8)
    return buf


def _touched(shape, dtype) -> np.ndarray:
    """np.zeros(shape, dtype) with its pages faulted in now, in one sweep. At 1M
    goroutines, filling 100 MB of fresh columns chunk by chunk, as the gs are read,
    made a first walk 0.3 s slower on this VM (median of 6: 1.53 s against 1.18 s)
    than touching them first, which costs 0.04-0.05 s."""
    a = np.empty(shape, dtype=dtype)
    a.fill(0)
    return a


def read_words(mem, addrs: np.ndarray, size: int, cw=None, keep=None) -> tuple:
    """(words, ok): of the size bytes (a multiple of 8) at each of addrs, the words
    keep (indices; all when None) as a (n, len(keep)) uint64 matrix, and whether each
    could be read (rows that could not are zeros; only the bytes from the first word
    kept to the last are read). Read in chunks into one
    reused buffer: a core from its mapping (see _CoreWords.release), a live process
    with process_vm_readv, anything else through mem.gather_fixed."""
    n = len(addrs)
    nw = size // 8
    sel = np.arange(nw, dtype=np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
    addrs = addrs.astype(np.uint64, copy=False)
    if keep is not None and len(sel) and (sel.min() or sel.max() < nw - 1):
        # only the bytes from the first word kept to the last
        first = int(sel.min())
        addrs = addrs + np.uint64(8 * first)
        size = 8 * (int(sel.max()) - first + 1)
        sel = sel - first
    out = _touched((n, len(sel)), np.uint64)
    ok = np.zeros(n, dtype=bool)
    pw = _proc_words(mem) if cw is None else None
    step = CORE_CHUNK if cw is not None else LIVE_CHUNK
    order = None
    if pw is not None and n > step and _dense(addrs, size):
        order = np.argsort(addrs)   # chunks in address order, so each is dense (_merged)
        addrs = addrs[order]
    scratch = _scratch_of(step * size) if cw is None else None
    for lo in range(0, n, step):
        a = addrs[lo:lo + step]
        m = len(a)
        if cw is not None:
            offs, held = cw.locate(a, size)
            if not np.any(offs % np.uint64(8)):
                base = (offs // np.uint64(8)).astype(np.int64)
                w = cw._view(np.dtype("<u8"))[base[:, None] + sel[None, :]]
                w[~held] = 0
                out[lo:lo + m] = w
                ok[lo:lo + m] = held
                cw.release(offs[held], size)
                continue
            scratch = _scratch_of(step * size)
        if pw is not None:
            buf = scratch[:m * size].reshape(m, size)
            good = np.ones(m, dtype=bool)
            pw.read(mem, a, size, buf, good)
        else:
            raw, errors = mem.gather_fixed(a.tolist(), size, memoryview(scratch).cast("B"))
            buf = np.frombuffer(raw, dtype=np.uint8, count=m * size).reshape(m, size)
            good = np.ones(m, dtype=bool)
            for i in errors:
                good[i] = False
        out[lo:lo + m] = buf.view("<u8")[:, sel]
        ok[lo:lo + m] = good
    out[~ok] = 0
    if order is not None:   # back in the callers' order
        rows_out, rows_ok = np.empty_like(out), np.empty_like(ok)
        rows_out[order], rows_ok[order] = out, ok
        return rows_out, rows_ok
    return out, ok


class Base:
    """What a walk read of every g it lists, with stacks or without: the g fields as
    columns (GFields names; absent ones zero), the goroutines off the fast path, the
    threads and the clock; labels and blocked-on once read."""

    def __init__(self):
        self.n = 0
        self.cols: dict = {}
        self.addr = None
        self.fast = None
        self.special_rows: list = []   # row indices off the fast path
        self.all_fast = False
        self.glay = None
        self.threads: dict = {}
        self.current_g = None
        self.current_row = -1
        self.now = 0
        self.clock = None
        self.tables: dict = {}  # 1 (whole stacks) or 0 (locations only) -> GoroutineTable
        # shape key at PRECHECK_DEPTH -> whether each member's stack top holds its recipe
        self.prechecked: dict = {}
        # labels: per row an index into label_sets (-1: none), errors by row
        self.label_idx = None
        self.label_sets: list = []
        self.label_errs: dict = {}
        # blocked on: per row an index into blocked (-1: none)
        self.blocked_idx = None
        self.blocked: list = []

    def fields(self, i: int, mem=None) -> GFields:
        """Row i's GFields: the g read again where mem is given and readable (the
        fields not kept as columns), else from the columns."""
        if mem is not None:
            glay = self.glay
            try:
                return glay.reorder(glay.struct.unpack(mem.read(int(self.addr[i]),
                                                                glay.struct.size)))
            except (ReadError, struct.error):
                pass
        cols = self.cols
        return GFields._make(int(cols[k][i]) for k in GFields._fields)

    def subset(self, rows: np.ndarray) -> "Base":
        """A Base of the given rows alone (in that order): the same threads and clock,
        nothing settled or read in bulk yet."""
        b = Base()
        b.n = len(rows)
        b.cols = {k: v[rows] for k, v in self.cols.items()}
        b.addr = self.addr[rows]
        b.fast = self.fast[rows]
        b.all_fast = bool(b.fast.all())
        b.special_rows = np.flatnonzero(~b.fast).tolist()
        b.glay = self.glay
        b.threads, b.current_g = self.threads, self.current_g
        hit = np.flatnonzero(rows == self.current_row) if self.current_row >= 0 else ()
        b.current_row = int(hit[0]) if len(hit) else -1
        b.now, b.clock = self.now, self.clock
        return b


class GoroutineTable(Sequence):
    """The goroutines of one walk, with whole stacks or without (or a selection of them: rows, an
    index array into the base, in walk order). Row r is a Goroutine made on demand."""

    def __init__(self, base: Base, depth: int, shape_idx, shapes: list, specials: dict,
                 minutes, since, rows=None):
        self.base = base
        self.depth = depth
        self.shape_idx = shape_idx   # per base row: index into shapes
        self.shapes = shapes         # tuples of SHARED
        self.specials = specials     # base row -> Goroutine (off the fast path)
        self.minutes = minutes       # per base row; -1: None
        self.since = since           # per base row
        self.rows = rows             # None: every row of base

    # --- the sequence
    def __len__(self) -> int:
        return self.base.n if self.rows is None else len(self.rows)

    def base_rows(self) -> np.ndarray:
        return np.arange(self.base.n, dtype=np.int64) if self.rows is None else self.rows

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.select(self.base_rows()[i])
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.row(int(i) if self.rows is None else int(self.rows[i]))

    def __iter__(self):
        rows = self.base_rows()
        for lo in range(0, len(rows), 4096):
            yield from map(self.row, rows[lo:lo + 4096].tolist())

    def select(self, rows) -> "GoroutineTable":
        return GoroutineTable(self.base, self.depth, self.shape_idx, self.shapes, self.specials,
                              self.minutes, self.since, np.asarray(rows, dtype=np.int64))

    def head(self, n: int) -> "GoroutineTable":
        return self.select(self.base_rows()[:n])

    # --- one row
    def row(self, r: int):
        b = self.base
        g = self.specials.get(r)
        if g is not None:
            return self._filled(g, r)
        cols = b.cols
        m = int(self.minutes[r])
        parent = int(cols["parent"][r])
        g = Goroutine(*self.shapes[int(self.shape_idx[r])], int(cols["goid"][r]), int(b.addr[r]),
                      int(self.since[r]), None if m < 0 else m, bool(cols["lockedm"][r]),
                      parent or None, r == b.current_row, int(cols["sched_pc"][r]),
                      int(cols["sched_sp"][r]), int(cols["sched_bp"][r]),
                      int(cols["stack_lo"][r]), int(cols["stack_hi"][r]))
        return self._filled(g, r)

    def _filled(self, g, r: int):
        """g with row r's labels (and their error) and blocked-on, where the walk read them."""
        b = self.base
        if b.label_idx is not None:
            li = int(b.label_idx[r])
            if li >= 0:
                g.labels = dict(b.label_sets[li])
            err = b.label_errs.get(r)
            if err is not None:
                g.error = g.error or err
        if b.blocked_idx is not None:
            bi = int(b.blocked_idx[r])
            g.blocked_on = b.blocked[bi] if bi >= 0 else None
        return g

    # --- columns of the selection
    def col(self, name: str) -> np.ndarray:
        c = self.base.cols[name] if name in self.base.cols else getattr(self.base, name)
        return c if self.rows is None else c[self.rows]

    def shapes_of(self) -> np.ndarray:
        return self.shape_idx if self.rows is None else self.shape_idx[self.rows]

    def minutes_of(self) -> np.ndarray:
        return self.minutes if self.rows is None else self.minutes[self.rows]

    def ids(self) -> np.ndarray:
        return self.col("goid")

    def label_idx_of(self) -> np.ndarray:
        li = self.base.label_idx
        if li is None:
            return np.full(len(self), -1, dtype=np.int64)
        return li if self.rows is None else li[self.rows]

    def blocked_idx_of(self) -> np.ndarray:
        bi = self.base.blocked_idx
        if bi is None:
            return np.full(len(self), -1, dtype=np.int64)
        return bi if self.rows is None else bi[self.rows]

    def shape_counts(self) -> tuple:
        """(shape indices, their counts, their first position), in order of first position."""
        s = self.shapes_of()
        if not len(s):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        u, first, counts = np.unique(s, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return u[order], counts[order], first[order]


def factorize(cols: list, members: bool = False) -> tuple:
    """(codes, first row of each code[, rows of each code]): rows equal in every column
    of cols (integer arrays of one length) share a code; codes are numbered by first
    row, and each code's rows are in row order. Hashed and sorted once, with every row
    checked against its code's first row; exact (lexsorted) on a collision."""
    n = len(cols[0])
    if n == 0:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64)) + (([],) if members else ())
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            h ^= c.astype(np.uint64, copy=False)
            h *= _MIX
            h ^= h >> np.uint64(29)
    order = np.argsort(h)   # (not stable: each code's first row is its least)
    hs = h[order]
    starts = np.flatnonzero(np.concatenate(([True], hs[1:] != hs[:-1])))
    first = np.minimum.reduceat(order, starts)
    counts = np.diff(np.append(starts, n))
    inv = _touched(n, np.int64)
    inv[order] = np.repeat(np.arange(len(starts)), counts)
    if all(np.array_equal(c, c[first][inv]) for c in cols):
        if members:
            # each code's rows in row order: a stable sort of the codes (radix when small)
            small = np.uint16 if len(starts) <= 1 << 16 else np.int64
            order = np.argsort(inv.astype(small), kind="stable")
    else:   # a collision: exact
        order = np.lexsort(cols[::-1])
        srt = [c[order] for c in cols]
        new = np.ones(n, dtype=bool)
        new[1:] = np.any(np.stack([s[1:] != s[:-1] for s in srt]), axis=0)
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, n))
        inv[order] = np.repeat(np.arange(len(starts)), counts)
        first = np.full(len(starts), n, dtype=np.int64)
        np.minimum.at(first, inv, np.arange(n))
        order = np.argsort(inv, kind="stable")   # each code's rows together, in row order
        starts = np.searchsorted(inv[order], np.arange(len(first)))
    perm = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[perm] = np.arange(len(first))
    out = (rank[inv], first[perm])
    if members:
        ends = np.append(starts[1:], n)
        out += ([order[starts[j]:ends[j]] for j in perm.tolist()],)
    return out


def groups_of(codes: np.ndarray, k: int) -> list:
    """The rows of each code 0..k-1, each in row order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(k + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(k)]


# ---------------------------------------------------------------------------
# the walk
# ---------------------------------------------------------------------------
# the g fields kept as columns: what the fast path and the views read (the others of
# GFields are read again, g by g, for the few goroutines off the fast path)
_COLUMNS = ("goid", "status", "waitreason", "waitsince", "sched_sp", "sched_pc", "sched_bp",
            "stack_lo", "stack_hi", "gopc", "startpc", "lockedm", "parent", "labels", "waiting")


def read_base(walker, include_dead: bool) -> Base:
    """The g fields of every goroutine of runtime.allgs as columns (see Base; a field
    the g lacks reads as 0). Unreadable gs (and dead ones unless include_dead) are
    dropped chunk by chunk, with one line saying how many could not be read."""
    glay = walker.glay
    if glay.whole is None:
        raise DecodeError(f"the g fields the walk reads lie past the g's size ({glay.size} "
                          "bytes): the binary's DWARF for runtime.g is inconsistent")
    mem = walker.mem
    b = Base()
    addrs = walker.g_addrs(as_array=True)
    n = len(addrs)
    b.threads, b.current_g = walker.thread_map()
    dtypes = {k: v for k, v in _field_dtypes(glay).items() if k in _COLUMNS}
    offs = glay.offsets
    cols = {k: _touched(n, dt) for k, dt in dtypes.items()}
    kept_addrs = _touched(n, np.uint64)
    progress = walker.progress
    cw = core_words(mem)
    first_err = None
    unread = 0
    w = 0   # rows kept so far
    dead = np.array(sorted(walker.dead_codes) or [-1], dtype=np.int64)
    st_dt = dtypes["status"]

    def keep_rows(lo, m, get, ok):
        """Keep the readable (and live) rows lo..lo+m of a chunk; get(k): field k's values."""
        nonlocal w
        status = get("status").astype(np.int64)
        keep = ok if include_dead else ok & ~np.isin(status & ~GSCAN, dead)
        j = int(np.count_nonzero(keep))
        if j == m:
            for k in dtypes:
                cols[k][w:w + m] = get(k)
            kept_addrs[w:w + m] = addrs[lo:lo + m]
        else:
            for k in dtypes:
                cols[k][w:w + j] = get(k)[keep]
            kept_addrs[w:w + j] = addrs[lo:lo + m][keep]
        w += j

    if cw is not None and cw._fd() is not None:
        stride = walker.g_stride(addrs[:1025].tolist())
        dt = np.dtype({"names": list(dtypes), "formats": list(dtypes.values()),
                       "offsets": [offs[k] for k in dtypes], "itemsize": stride})
        scratch = bytearray(min(n, CORE_CHUNK) * stride + stride)
        for lo in range(0, n, CORE_CHUNK):
            if progress and not lo % (CORE_CHUNK * 8):
                progress(lo // 2, n)
            chunk = addrs[lo:lo + CORE_CHUNK]
            m = len(chunk)
            held = cw.read_strided(chunk, glay.size, stride, scratch)
            if held is None:
                cw = None
                w, unread = 0, 0
                break
            unread += int(m - np.count_nonzero(held))
            keep_rows(lo, m, np.frombuffer(scratch, dtype=dt, count=m).__getitem__, held)
        else:
            cw = False
    if cw:
        for lo in range(0, n, CORE_CHUNK):
            if progress and not lo % (CORE_CHUNK * 8):
                progress(lo // 2, n)
            goffs, held = cw.locate(addrs[lo:lo + CORE_CHUNK], glay.size)
            if np.any(goffs % np.uint64(8)):
                cw = None
                break
            vals = {k: cw.values(goffs + np.uint64(offs[k]), dt) for k, dt in dtypes.items()}
            unread += int(len(held) - np.count_nonzero(held))
            keep_rows(lo, len(goffs), vals.__getitem__, held)
            cw.release(goffs[held], glay.size)
        if cw is None:
            w, unread = 0, 0
    if cw is None:   # (False: read above)
        stride = walker.g_stride(addrs[:1025].tolist())
        dt = np.dtype({"names": list(dtypes), "formats": list(dtypes.values()),
                       "offsets": [offs[k] for k in dtypes], "itemsize": stride})
        scratch = bytearray(min(n, CHUNK) * stride)
        pw = _proc_words(mem)
        for lo in range(0, n, CHUNK):
            if progress:
                progress(lo // 2, n)
            chunk = addrs[lo:lo + CHUNK]
            m = len(chunk)
            if pw is not None:
                ok, errors = pw.read_strided(mem, chunk, glay.size, stride, scratch)
                buf = scratch
            else:
                buf, errors = mem.gather_fixed(chunk.tolist(), glay.size, scratch, stride)
                ok = np.ones(m, dtype=bool)
            if len(buf) < m * stride:   # (a last g short of the stride's padding)
                buf = bytes(buf) + bytes(m * stride - len(buf))
            rec = np.frombuffer(buf, dtype=dt, count=m)
            if errors:
                ok[np.fromiter(errors, dtype=np.int64)] = False
                unread += len(errors)
                if first_err is None:
                    first_err = errors[min(errors)]
            keep_rows(lo, m, rec.__getitem__, ok)
    del st_dt
    cut = walker.allgs_cut
    if unread or cut:
        total = cut[1] if cut else n
        lost = unread + (total - n)
        why = []
        if cut:
            why.append(f"runtime.allgs is readable up to entry {n}: {cut[2]}")
        if unread:
            why.append(f"first unreadable g: {first_err or 'not in the core file'}")
        walker.errors.append(f"{lost} of {total} goroutines in runtime.allgs could not be read "
                             f"({'; '.join(why)}); the {total - lost} others are listed")
    cols = {k: v[:w] for k, v in cols.items()}
    for k in GFields._fields:
        if k not in cols:   # absent from the g, or not kept (0; see Base.fields)
            cols[k] = np.zeros(w, dtype=np.uint8)
    addrs = kept_addrs[:w]
    b.n = w
    b.addr = addrs
    b.cols = cols
    b.glay = glay
    st = walker.st
    status = cols["status"]
    sp, hi, lo = cols["sched_sp"], cols["stack_hi"], cols["stack_lo"]
    fast = ((status == st.waiting) | (status == st.runnable)) & (cols["sched_pc"] != 0) & \
        (lo <= sp) & (sp < hi)
    fast[fast] = (hi[fast] - sp[fast]) <= (1 << 30)
    b.fast = fast
    b.all_fast = bool(fast.all())
    b.special_rows = np.flatnonzero(~fast).tolist()
    if b.current_g is not None:
        hit = np.flatnonzero(addrs == np.uint64(b.current_g))
        b.current_row = int(hit[0]) if len(hit) else -1
    b.now, b.clock = walker.now_ns()
    walker.clock = b.clock
    if progress:
        progress(n // 2, n)
    return b


def settle(walker, base: Base, depth: int) -> GoroutineTable:
    """The goroutines of base with whole stacks (depth 1) or locations only (0)."""

    cols = base.cols
    n = base.n
    shapes: list = []
    interned: dict = {}

    def intern(args: tuple) -> int:
        key = tuple(a if isinstance(a, (int, str, bool)) or a is None else id(a) for a in args)
        i = interned.get(key)
        if i is None:
            i = interned[key] = len(shapes)
            shapes.append(args)
        return i

    shape_idx = np.full(n, -1, dtype=np.int64)
    minutes = np.full(n, -1, dtype=np.int64)
    since = _touched(n, np.int64)
    st = walker.st
    mem = walker.mem
    cw = core_words(mem)
    fast = np.flatnonzero(base.fast)
    progress = walker.progress
    if len(fast):
        def at(k):   # a column over the fast rows (itself when every row is)
            return cols[k] if base.all_fast else cols[k][fast]
        sp, hi, lo = at("sched_sp"), at("stack_hi"), at("stack_lo")
        key_cols = [at("status"), at("waitreason"), at("startpc"), at("gopc"),
                    at("goid") == 1, at("sched_pc"), hi - sp]
        codes, firsts, members = factorize(key_cols, members=True)
        done = 0
        plans = []   # per group: (key, shape, rows, bad, readers, key2)
        for f0, rows in zip(firsts.tolist(), members):
            key = tuple(int(c[f0]) for c in key_cols)
            key = key[:4] + (bool(key[4]),) + key[5:] + (depth, False)
            s0, lo0, hi0 = int(sp[f0]), int(lo[f0]), int(hi[f0])
            shape = walker.remembered_shape(key)
            if shape is None:
                shape = walker.shape_of(key, s0, lo0 or s0, hi0)
            known = walker.remembered_shape(key) is shape
            pre = base.prechecked.get(key)
            bad = readers = key2 = None
            if shape.reader is None or not known:
                bad = rows
            elif not shape.reader.size:
                bad = rows[:0]
            elif pre is not None and len(pre) == len(rows):
                bad = rows[~pre]
            else:
                readers = [(shape.reader, shape.want)]
                if depth != PRECHECK_DEPTH:
                    # the stacks' depth is checked in the same reads, for the view that follows
                    key2 = key[:-2] + (PRECHECK_DEPTH, False)
                    shape2 = walker.remembered_shape(key2)
                    if shape2 is None:
                        shape2 = walker.shape_of(key2, s0, lo0 or s0, hi0)
                    if walker.remembered_shape(key2) is shape2 and shape2.reader is not None and \
                            shape2.reader.size:
                        readers.append((shape2.reader, shape2.want))
            plans.append((key, shape, rows, bad, readers, key2))
        checks = _check_tops(mem, cw, sp, plans)
        for gi, (key, shape, rows, bad, readers, key2) in enumerate(plans):
            si = intern(shape.new.args)
            grows = fast[rows]
            if bad is None:
                same = checks[gi]
                if key2 is not None and len(same) > 1:
                    base.prechecked[key2] = same[1]
                bad = rows if same[0] is None else rows[~same[0]]
            shape_idx[grows] = si
            if len(bad):
                for j in bad.tolist():
                    s = int(sp[j])
                    other = walker.shape_of(key, s, int(lo[j]) or s, int(hi[j]))
                    shape_idx[fast[j]] = intern(other.new.args)
            # wait times, as the runtime's goroutineheader counts them
            if shape.wait_reason:
                ws = cols["waitsince"][grows].astype(np.int64, copy=False)
                since[grows] = ws
                now = base.now
                m = np.where((ws != 0) & (now > ws), (now - ws) // NS_PER_MINUTE, 0)
                minutes[grows] = m
            elif shape.code == st.waiting:
                minutes[grows] = 0
            done += len(rows)
            if progress and (gi % 64 == 63 or len(rows) > 4096):
                progress(n // 2 + done // 2, n)
    specials = {}
    others = []
    for r in base.special_rows:
        f = base.fields(r, mem)
        try:
            g = walker.decode_other(int(base.addr[r]), f, base.threads, base.current_g, depth)
        except DecodeError as e:   # (as decode_at: one error row)
            g = walker.decode_other(int(base.addr[r]), e, base.threads, base.current_g, 0)
        g.is_current = r == base.current_row
        specials[r] = g
        others.append((r, g))
        shape_idx[r] = intern(tuple(getattr(g, k) for k in SHARED))
    walker.fill_wait_minutes([g for _, g in others], base.now)
    for r, g in others:
        since[r] = g.wait_since_ns
        minutes[r] = -1 if g.wait_minutes is None else g.wait_minutes
    # a core whose latest stamp is older than a goroutine's waitsince: all against the
    # latest waitsince
    latest = 0 if walker.rt.target.is_live or not n else int(since.max())
    walker.clock = base.clock
    if latest > base.now:
        codes_all = np.array([s[0] for s in shapes], dtype=np.int64)[shape_idx]
        timed = (codes_all == st.waiting) | (codes_all == st.syscall)
        m = np.where((since != 0) & (latest > since), (latest - since) // NS_PER_MINUTE, 0)
        minutes[timed] = m[timed]
        for r, g in others:
            if timed[r]:
                g.wait_minutes = int(minutes[r])
        walker.clock = "core: latest waitsince among goroutines"
    if progress:
        progress(n, n)
    return GoroutineTable(base, depth, shape_idx, shapes, specials, minutes, since)


_READERS: dict = {}


def slot_words(reader: struct.Struct) -> Optional[np.ndarray]:
    """The word indices (from sp) a recipe's struct reads, or None if not 8-aligned."""
    hit = _READERS.get(reader.format)
    if hit is None:
        pos, words = 0, []
        for count, ch in re.findall(r"(\d*)([a-zA-Z?])", reader.format.lstrip("<")):
            k = int(count or 1)
            if ch == "x":
                pos += k
            else:
                for _ in range(k):
                    if pos % 8:
                        _READERS[reader.format] = False
                        return None
                    words.append(pos // 8)
                    pos += 8
        hit = _READERS[reader.format] = np.array(words, dtype=np.int64)
    return None if hit is False else hit


PRECHECK_DEPTH = 1   # whole stacks (go stacks, -t): checked along with a first walk's


def _top_words(readers: list) -> Optional[tuple]:
    """What checking stack tops against (reader, want) recipes reads: (k, slots,
    union, size), the first k recipes (up to the first that cannot be checked by
    words: not 8-aligned, or longer than TOP_BYTES), each one's word indices, the
    words they need together and the bytes from the top that hold them; None when
    the first cannot."""
    slots = []
    for r, _ in readers:
        words = slot_words(r)
        if words is None or r.size % 8 or r.size > TOP_BYTES:
            break
        slots.append(words)
    if not slots:
        return None
    k = len(slots)
    union = sorted(set().union(*(w.tolist() for w in slots)))
    return k, slots, union, max(readers[i][0].size for i in range(k))


def _same_tops(mem, cw, sps: np.ndarray, readers: list) -> list:
    """For each (reader, want) recipe, whether each stack top (at sps) holds it, from
    one read of the words they all need; None for the first where it cannot be
    checked that way (the others are then left out)."""
    plan = _top_words(readers)
    if plan is None:
        return [None]
    k, slots, union, size = plan
    pos = {w: j for j, w in enumerate(union)}
    tests = [([pos[w] for w in slots[i].tolist()],
              np.array(readers[i][1], dtype=np.uint64)[None, :]) for i in range(k)]
    n = len(sps)
    out = [np.zeros(n, dtype=bool) for _ in tests]
    for lo in range(0, n, LIVE_CHUNK):   # compared a chunk at a time: no (n, words) matrix
        top, ok = read_words(mem, sps[lo:lo + LIVE_CHUNK], size, cw, keep=union)
        for o, (cols, want) in zip(out, tests):
            o[lo:lo + len(ok)] = np.all(top[:, cols] == want, axis=1) & ok
    return out


def _check_tops(mem, cw, sp: np.ndarray, plans: list) -> list:
    """_same_tops of each plan (settle's groups) that has readers, else None: on a core
    the tops of every group at once, in address order, so that each page of stacks
    (two 2 KB stacks of goroutines of two shapes, mostly) is faulted in and given back
    once, not once per group (see _CoreWords.words_var)."""
    out: list = [None] * len(plans)
    todo = [i for i, p in enumerate(plans) if p[4] is not None]
    if cw is not None and len(todo) > 1:
        todo = _merged_tops(mem, cw, sp, plans, todo, out)
    for i in todo:
        out[i] = _same_tops(mem, cw, sp[plans[i][2]], plans[i][4])
    return out


def _merged_tops(mem, pw, sp: np.ndarray, plans: list, todo: list, out: list) -> list:
    """_check_tops over a core (pw: its _CoreWords): fills out[i] for the plans it can
    read together; the others (returned) are read group by group."""
    rest, take = [], []
    for i in todo:
        plan = _top_words(plans[i][4])
        if plan is None:
            out[i] = [None]
        elif plan[0] > 2:
            rest.append(i)
        else:
            k, slots, union, size = plan
            take.append((i, list(range(k)), slots, union, size))
    if len(take) < 2:
        return rest + [t[0] for t in take]
    K = max(len(t[3]) for t in take)
    G = len(take)
    sel = np.zeros((G, K), dtype=np.int64)
    want = np.zeros((G, 2, K), dtype=np.uint64)
    care = np.zeros((G, 2, K), dtype=bool)
    sizes = np.zeros(G, dtype=np.uint64)
    for g, (i, ok_readers, slots, union, size) in enumerate(take):
        sel[g, :len(union)] = union
        sel[g, len(union):] = union[-1]
        sizes[g] = size
        pos = {w: k for k, w in enumerate(union)}
        for j in ok_readers:
            ks = [pos[w] for w in slots[j].tolist()]
            want[g, j, ks] = np.array(plans[i][4][j][1], dtype=np.uint64)
            care[g, j, ks] = True
    rows = [plans[t[0]][2] for t in take]
    gid = np.repeat(np.arange(G), [len(r) for r in rows])
    allrows = np.concatenate(rows)
    addrs = sp[allrows].astype(np.uint64)
    if np.any(addrs % np.uint64(8)):
        return rest + [t[0] for t in take]
    n = len(addrs)
    order = np.argsort(addrs, kind="stable")
    match = np.zeros((n, 2), dtype=bool)
    okall = np.zeros(n, dtype=bool)
    step = 1 << 13
    for lo in range(0, n, step):
        idx = order[lo:lo + step]
        g = gid[idx]
        got = pw.words_var(mem, addrs[idx], sizes[g], sel[g])
        if got is None:
            return rest + [t[0] for t in take]
        w, ok = got
        for j in (0, 1):
            match[idx, j] = np.all((w == want[g, j]) | ~care[g, j], axis=1)
        okall[idx] = ok
    bounds = np.cumsum([0] + [len(r) for r in rows])
    for g, (i, ok_readers, _, _, _) in enumerate(take):
        a, b = int(bounds[g]), int(bounds[g + 1])
        out[i] = [match[a:b, j] & okall[a:b] for j in ok_readers]
    return rest
