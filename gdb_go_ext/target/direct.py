"""Direct memory sources that skip the debugger's per-call overhead.

A live process stopped under ptrace can be read through /proc/PID/mem by its
tracer; a core file's dumped segments can be read straight from the file. Both
return None for anything they cannot serve, and the backend then asks the
debugger, so they only ever make reads faster, never different.
"""
from __future__ import annotations

import array
import bisect
import ctypes
import itertools
import mmap
import operator
import os
import queue
import signal
import struct
import threading
from typing import Optional

import numpy as np

from ..errors import DecodeError, ReadError
from ..binary.elf import PT_LOAD, ElfFile


# process_vm_readv takes at most IOV_MAX (1024) remote ranges per call
IOV_MAX = 1024
# calls in flight at once for a big read. Each remote range costs the kernel about
# 0.8 us whatever its size (pinning its page), so a million stack tops are bound by
# that, not by the copy: at 1M on this 2-vCPU VM, 1 thread 0.65-0.80 s, 2 threads
# 0.46-0.55 s, 4 threads 0.36-0.55 s, 8 no better.
READ_THREADS = 4
CALL_BYTES = 1 << 20   # at most about this much a call when a read is cut into calls
# a remote range costs process_vm_readv about as much as copying RANGE_BYTES (0.8 us
# against 0.6 ns a byte, on this VM); ranges up to MERGE_GAP apart are read as one
RANGE_BYTES = 1300
MERGE_GAP = 1024
# signals the read threads never take, so that gdb's main thread gets Ctrl-C
_ASYNC_SIGNALS = set(signal.valid_signals()) - {
    signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
    signal.SIGABRT, signal.SIGSYS, signal.SIGKILL, signal.SIGSTOP}


class _ReadPool:
    """READ_THREADS daemon threads, started once with the asynchronous signals blocked,
    that run parts of a read: they only call process_vm_readv through ctypes (which
    lets go of the GIL), never the debugger."""

    def __init__(self, n: int):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
        try:
            for _ in range(n):
                threading.Thread(target=self._serve, name="gdb_go_ext-readv",
                                 daemon=True).start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _serve(self) -> None:
        while True:
            fn, part, stop, box, done = self.jobs.get()
            try:
                box.append(fn(part, stop))
            except BaseException as e:   # handed to the caller
                box.append(e)
            finally:
                done.release()

    def map(self, fn, parts: list) -> list:
        """[fn(part, stop) for part in parts], the parts at once on the threads; fn
        stops early once stop is set. An interrupt (Ctrl-C) while waiting sets it and
        waits for every part to end, so no thread writes into a buffer after return."""
        stop = threading.Event()
        done = threading.Semaphore(0)
        boxes: list = [[] for _ in parts]
        for part, box in zip(parts, boxes):
            self.jobs.put((fn, part, stop, box, done))
        waited = 0
        try:
            while waited < len(parts):
                done.acquire()
                waited += 1
        except BaseException:
            stop.set()
            while waited < len(parts):   # (each part ends within a call: ~1 ms)
                try:
                    done.acquire()
                except KeyboardInterrupt:   # a second Ctrl-C: still wait
                    continue
                waited += 1
            raise
        for box in boxes:
            if isinstance(box[0], BaseException):
                raise box[0]
        return [box[0] for box in boxes]


_POOL: list = []
os.register_at_fork(after_in_child=_POOL.clear)   # (a forked child has none of the threads)


def _pool() -> _ReadPool:
    if not _POOL:
        _POOL.append(_ReadPool(READ_THREADS))
    return _POOL[0]


def as_addrs(addrs: list) -> np.ndarray:
    """Addresses as uint64, those no read can reach (negative, 2**64 or more) as 0,
    which is never read."""
    try:
        return np.array(addrs, dtype=np.uint64)
    except OverflowError:
        return np.array([a if 0 <= a < 1 << 64 else 0 for a in addrs], dtype=np.uint64)


def dense(addrs: np.ndarray, size: int) -> bool:
    """Whether ranges at addrs mostly lie within MERGE_GAP of one another in address
    order, for a merged read to pay: the median gap of a sample of about 1024, scaled."""
    n = len(addrs)
    if n < 256:
        return False
    step = max(1, n // 1024)
    smp = np.sort(addrs[::step].astype(np.uint64, copy=False))
    return float(np.median(np.diff(smp))) / step <= size + MERGE_GAP


_scratch: dict = {}   # reused by reads, by use: warm pages, not fresh ones


def scratch_of(nbytes: int, use: str = "read") -> np.ndarray:
    """A reused uint8 buffer of at least nbytes, 8-aligned, one per use (a read into
    one may go on into another: read_words into "read", a merged read into "merged")."""
    buf = _scratch.get(use)
    if buf is None or len(buf) < nbytes:
        words = max(nbytes, 1 << 16) // 8 + 1
        buf = _scratch[use] = np.zeros(words, dtype=np.uint64).view(np.uint8)
    return buf


def _process_vm_readv():
    try:
        fn = ctypes.CDLL(None, use_errno=True).process_vm_readv
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                   ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_ssize_t
    return fn


class ProcMem:
    def __init__(self, pid: int):
        self.pid = pid
        self.fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        self._readv = _process_vm_readv()

    def readv_calls(self, calls: list) -> list:
        """process_vm_readv(pid, local, nlocal, remote, nremote) for each tuple of
        calls: each one's (bytes read, errno), in order; many calls are spread over
        READ_THREADS threads (see READ_THREADS)."""
        fn, pid = self._readv, self.pid
        if fn is None:
            return [(-1, 38)] * len(calls)

        def run(part, stop):
            out = []
            for local, nlocal, remote, nremote in part:
                if stop.is_set():
                    out.append((-1, 4))   # EINTR: not read
                    continue
                got = fn(pid, local, nlocal, remote, nremote, 0)
                out.append((got, ctypes.get_errno() if got < 0 else 0))
            return out

        if len(calls) < 2 * READ_THREADS:
            return run(calls, threading.Event())
        k = READ_THREADS
        bounds = [len(calls) * i // k for i in range(k + 1)]
        parts = _pool().map(run, [calls[bounds[i]:bounds[i + 1]] for i in range(k)])
        return [r for part in parts for r in part]

    def read(self, addr: int, size: int) -> Optional[bytes]:
        try:
            data = os.pread(self.fd, size, addr)
        except (OSError, OverflowError, ValueError):
            return None
        return data if len(data) == size else None

    def gather(self, ranges: list) -> list:
        """[(buffer, offset) or None] for each (addr, size): scattered ranges (the tops
        of 100k goroutine stacks), back to back in one buffer (see _read_into)."""
        sizes = [size if size > 0 else 0 for _, size in ranges]
        starts = list(itertools.accumulate(sizes, initial=0))
        buf = bytearray(starts[-1])
        unread = set(self._read_into([a for a, _ in ranges], sizes, starts, buf))
        unread.update(i for i, (_, size) in enumerate(ranges) if size < 0)
        return [(buf, start) if i not in unread else None for i, start in enumerate(starts[:-1])]

    def gather_fixed(self, addrs: list, size: int, scratch: Optional[bytearray] = None,
                     stride: int = 0) -> tuple:
        """(buffer, unread): range i of (addr, size) at offset i * stride of one buffer
        (stride: size when 0; the bytes between ranges are unspecified); unread lists
        the indices it could not read (their bytes are zero). With a stride, ranges that
        lie stride apart in memory, as objects of one size class allocated one after
        another do, are read as one run (see read_strided); else see _read_into. scratch: a bytearray to read into when it
        is long enough (a view of it is returned), so a walk reuses warm memory instead
        of faulting in fresh pages."""
        n = len(addrs)
        stride = max(stride, size)
        if size <= 0:
            return bytearray(), list(range(n)) if size < 0 else []
        if scratch is not None and len(scratch) >= n * stride:
            buf = scratch
        else:
            buf = bytearray(n * stride)
        if stride > size:
            unread = self.read_strided(as_addrs(addrs), size, stride, buf)
        else:
            unread = self._read_into(addrs, None, range(0, (n + 1) * size, size), buf)
        return (buf if buf is not scratch else memoryview(buf)[:n * stride]), unread

    def read_strided(self, addrs: np.ndarray, size: int, stride: int, buf) -> list:
        """Read size bytes at each of addrs (uint64; 0 is never read) into buf (a
        writable buffer) at i * stride; the indices it could not read, whose bytes it
        zeroes. Ranges that lie stride apart in memory (gs of one size class, 17 to a
        span; neighbours when stride == size) form a run, one iovec on each side; runs
        are cut every CALL_BYTES and read up to IOV_MAX a call, the calls spread over
        the read threads (readv_calls). In a call that reads short, the runs before the
        failing one stand (a transfer stops at an iovec's boundary), the failing run is
        read range by range with pread, and the call goes on after it."""
        m = len(addrs)
        if not m or size <= 0:
            return list(range(m)) if size < 0 else []
        a = addrs.astype(np.uint64, copy=False)
        new = np.ones(m, dtype=bool)
        new[1:] = np.diff(a) != np.uint64(stride)
        new[::max(1, CALL_BYTES // stride)] = True
        bounds = np.append(np.flatnonzero(new), m)
        firsts = bounds[:-1]
        lens = np.diff(bounds).astype(np.uint64) * np.uint64(stride) - np.uint64(stride - size)
        here = np.frombuffer(buf, dtype=np.uint8)   # (holds buf's export while reading)
        unread: list = []

        def alone(j: int) -> None:
            """Run j range by range."""
            for i in range(int(bounds[j]), int(bounds[j + 1])):
                addr = int(a[i])
                data = self.read(addr, size) if addr > 0 else None
                if data is None:
                    unread.append(i)
                    data = bytes(size)
                here[i * stride:i * stride + size] = np.frombuffer(data, dtype=np.uint8)

        # runs at 0 (addresses no iovec can hold) are never read, and end a call
        heads = a[firsts]
        if heads.all():
            runs, fr, rl, zeros_before = None, firsts, lens, None
        else:
            zero = heads == 0
            for j in np.flatnonzero(zero).tolist():
                alone(j)
            runs = np.flatnonzero(~zero)
            fr, rl, zeros_before = firsts[runs], lens[runs], np.cumsum(zero)[runs]
        nr = len(fr)
        if self._readv is None or not nr:
            for j in (runs.tolist() if runs is not None else range(nr)):
                alone(j)
            return unread
        remote = np.empty((nr, 2), dtype=np.uint64)
        remote[:, 0], remote[:, 1] = a[fr], rl
        local = np.empty_like(remote)
        local[:, 0] = np.uint64(here.ctypes.data) + fr.astype(np.uint64) * np.uint64(stride)
        local[:, 1] = rl
        # calls: up to IOV_MAX runs and about CALL_BYTES each
        cut = np.diff(np.cumsum(rl) // np.uint64(CALL_BYTES)) != 0
        cut[IOV_MAX - 1::IOV_MAX] = True
        if zeros_before is not None:
            cut |= np.diff(zeros_before) != 0
        lo = np.append(0, np.flatnonzero(cut) + 1)
        hi = np.append(lo[1:], nr)
        if runs is None:
            runs = np.arange(nr)
        lp, rp = local.ctypes.data, remote.ctypes.data
        got = self.readv_calls([(lp + 16 * x, y - x, rp + 16 * x, y - x)
                                for x, y in zip(lo.tolist(), hi.tolist())])
        want = np.add.reduceat(rl, lo).astype(np.int64)
        for k in np.flatnonzero(np.array([g for g, _ in got], dtype=np.int64) != want).tolist():
            x, y = int(lo[k]), int(hi[k])
            n, errno = got[k]
            while x < y:
                if n < 0 and errno in (1, 38):   # EPERM, ENOSYS: never again
                    self._readv = None
                if self._readv is None:
                    for j in runs[x:y].tolist():
                        alone(j)
                    break
                # the run it failed at: those wholly within the bytes read stand
                bad = x + int(np.searchsorted(np.cumsum(rl[x:y]), max(n, 0), side="right"))
                alone(int(runs[min(bad, y - 1)]))
                x = bad + 1
                if x < y:   # the call goes on after it
                    n = self._readv(self.pid, lp + 16 * x, y - x, rp + 16 * x, y - x, 0)
                    errno = ctypes.get_errno() if n < 0 else 0
                    if n == int(rl[x:y].sum()):
                        break
        return unread

    def read_rows(self, addrs: np.ndarray, size: int, out: np.ndarray) -> list:
        """size bytes at each of addrs (uint64) into the rows of out ((n, size) uint8);
        the indices it could not read (zeros). Ranges that lie close together (sudogs,
        label sets: small objects of one size class, allocated one after another) are
        read merged where that pays (see _read_merged), the others as runs."""
        unread = self._read_merged(addrs, size, out)
        return unread if unread is not None else self.read_strided(addrs, size, size, out)

    def _read_merged(self, addrs: np.ndarray, size: int, out: np.ndarray) -> Optional[list]:
        """read_rows of ranges that lie close together: in address order, ranges less
        than MERGE_GAP apart are read as one, with what lies between. None, having read
        nothing, where that would not save a quarter of the cost."""
        n = len(addrs)
        a = addrs.astype(np.uint64, copy=False)
        if n < 256 or size % 8 or not dense(a, size) or np.any(a % np.uint64(8)):
            return None
        if np.all(a[1:] >= a[:-1]):
            order, s = np.arange(n), a
        else:
            order = np.argsort(a)
            s = a[order]
        new = np.ones(n, dtype=bool)
        new[1:] = (s[1:] - s[:-1]) > np.uint64(size + MERGE_GAP)
        part = (s - s[0]) // np.uint64(CALL_BYTES)   # long runs cut, for the threads
        new[1:] |= part[1:] != part[:-1]
        firsts = np.flatnonzero(new)
        lasts = np.append(firsts[1:], n) - 1
        starts = s[firsts]
        lens = s[lasts] + np.uint64(size) - starts
        # (a range costs about as much as RANGE_BYTES copied)
        if len(firsts) * RANGE_BYTES + int(lens.sum()) > n * (RANGE_BYTES + size) * 3 // 4:
            return None
        place = np.cumsum(lens) - lens
        buf = scratch_of(int(place[-1] + lens[-1]), "merged")
        spans = self._read_spans(starts, lens, place, buf)
        run = np.cumsum(new) - 1
        offs = (place[run] + (s - starts[run])) // np.uint64(8)
        words = buf.view(np.uint64)[offs.astype(np.int64)[:, None] +
                                    np.arange(size // 8, dtype=np.int64)[None, :]]
        out[order] = words.view(np.uint8).reshape(n, size)
        unread = []
        if spans:   # the spans not read whole: their ranges one by one
            bad_span = np.zeros(len(firsts), dtype=bool)
            bad_span[spans] = True
            rows = order[bad_span[run]]
            sub = np.zeros((len(rows), size), dtype=np.uint8)
            sub_unread = self.read_strided(a[rows], size, size, sub)
            out[rows] = sub
            unread = rows[sub_unread].tolist()
        return unread

    def _read_spans(self, starts: np.ndarray, lens: np.ndarray, place: np.ndarray,
                    buf: np.ndarray) -> list:
        """lens[i] bytes at starts[i] into buf at place[i], in calls of up to IOV_MAX
        spans and about CALL_BYTES spread over the read threads: the spans of the calls
        that read short."""
        remote = np.empty((len(starts), 2), dtype=np.uint64)
        remote[:, 0], remote[:, 1] = starts, lens
        local = np.empty_like(remote)
        local[:, 0], local[:, 1] = np.uint64(buf.ctypes.data) + place, lens
        if self._readv is None:
            return list(range(len(starts)))
        done = np.cumsum(lens) - lens
        call = (np.arange(len(remote)) // IOV_MAX) * (1 << 40) + done // np.uint64(CALL_BYTES)
        cuts = np.flatnonzero(np.diff(call)) + 1
        lo, hi = np.append(0, cuts), np.append(cuts, len(remote))
        lp, rp = local.ctypes.data, remote.ctypes.data
        got = self.readv_calls([(lp + 16 * x, y - x, rp + 16 * x, y - x)
                                for x, y in zip(lo.tolist(), hi.tolist())])
        short = np.array([g for g, _ in got], dtype=np.int64) != \
            np.add.reduceat(lens, lo).astype(np.int64)
        return [j for k in np.flatnonzero(short).tolist() for j in range(lo[k], hi[k])]

    def _read_into(self, addrs: list, sizes: Optional[list], starts, buf: bytearray) -> list:
        """Read size bytes at each addr into buf at starts[i], where the ranges lie back
        to back (starts[i + 1] = starts[i] + size; sizes None: all equal); the indices
        it could not read, whose bytes it zeroes. One process_vm_readv per 1024 ranges,
        which costs about half of one pread each; its remote iovec is built by array
        slicing, not per range. A failing range ends a transfer at a range boundary: the
        ones before it stand, it is read on its own with pread, and the batch goes on
        after it. Falls back to pread when the call is refused."""
        unread: list = []
        n = len(addrs)
        if not n:
            return unread
        local = (ctypes.c_char * max(len(buf), 1)).from_buffer(buf)
        base = ctypes.addressof(local)
        iov = array.array("Q", bytes(16 * min(n, IOV_MAX)))
        i = 0
        try:
            while i < n:
                k = i   # without process_vm_readv: each range on its own
                if self._readv is not None:
                    m = min(n - i, IOV_MAX)
                    want = starts[i + m] - starts[i]
                    try:
                        iov[0:2 * m:2] = array.array("Q", addrs[i:i + m])
                        iov[1:2 * m:2] = (array.array("Q", sizes[i:i + m]) if sizes is not None
                                          else array.array("Q", (want // m,)) * m)
                    except OverflowError:  # a negative address or size: read() refuses it
                        got = -1
                    else:
                        got = self._readv(self.pid, struct.pack("<QQ", base + starts[i], want), 1,
                                          iov.buffer_info()[0], m, 0)
                        if got < 0 and ctypes.get_errno() in (1, 38):  # EPERM, ENOSYS
                            self._readv = None
                            continue
                    if got == want:
                        i += m
                        continue
                    # the ranges wholly within the bytes read stand; k is the failing one
                    k = bisect.bisect_right(starts, starts[i] + max(got, 0), i, i + m) - 1
                addr, size = addrs[k], starts[k + 1] - starts[k]
                data = self.read(addr, size) if addr > 0 else None
                if data is None:
                    unread.append(k)
                    data = bytes(size)
                buf[starts[k]:starts[k] + len(data)] = data
                i = k + 1
        finally:
            del local  # release the export so buf stays an ordinary bytearray
        return unread

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class CoreMem:
    """Reads of the segments a core file holds in full (filesz == memsz)."""

    def __init__(self, path: str):
        self.path = path
        self.elf = ElfFile.open(path)
        segs = sorted((s for s in self.elf.segments if s.type == PT_LOAD and s.filesz == s.memsz
                       and s.filesz > 0), key=lambda s: s.vaddr)
        self.starts = [s.vaddr for s in segs]
        self.segs = segs
        self.mv = self.elf.view
        self.size = len(self.mv)
        self.expected = max((s.offset + s.filesz for s in self.elf.segments
                             if s.type == PT_LOAD), default=0)
        self.truncated = self.size < self.expected
        self._last = None
        self._tables = None  # see _locate
        self._np = None      # see _arrays
        self._views: dict = {}
        self._fd = False     # see _file: an fd for preadv, opened on first use
        self._mmap = self.elf.mapping

    def warning(self) -> Optional[str]:
        if not self.truncated:
            return None
        return (f"the core file is truncated ({self.size} of {self.expected} bytes):"
                " memory it lost reads as unreadable")

    def read(self, addr: int, size: int) -> Optional[bytes]:
        s = self._last  # neighbouring reads (stacks, g structs) mostly share a segment
        if s is None or not s.vaddr <= addr < s.vaddr + s.filesz:
            i = bisect.bisect_right(self.starts, addr) - 1
            if i < 0:
                return None
            s = self._last = self.segs[i]
        if addr + size > s.vaddr + s.filesz:
            return None
        off = s.offset + addr - s.vaddr
        if off + size > self.size:
            # the core once held these bytes; never let the executable's copy stand in
            raise ReadError(addr, size, "beyond the end of a truncated core file")
        return self.mv[off:off + size].tobytes()

    def gather(self, ranges: list) -> list:
        """[(buffer, offset) or None] for each (addr, size), without copying: the
        buffer is the core file's own mapping."""
        addrs = [a for a, _ in ranges]
        offs, fits = self._locate(addrs, [size for _, size in ranges])
        mv = self.mv
        return [(mv, off) if ok else None for off, ok in zip(offs, fits)]

    def gather_fixed(self, addrs: list, size: int, scratch: Optional[bytearray] = None,
                     stride: int = 0) -> tuple:
        """(buffer, unread): range i of (addr, size) at offset i * stride (size when 0)
        of one buffer, copied from the core's mapping, zeros between ranges; unread
        lists the indices it could not read."""
        n = len(addrs)
        if size <= 0:
            return bytes(0), list(range(n)) if size < 0 else []
        offs, fits = self._locate(addrs, size)
        unread = [i for i, ok in enumerate(fits) if not ok] if False in fits else []
        mv = self.mv
        pieces = list(map(mv.__getitem__, map(slice, offs,
                                              map(operator.add, offs, itertools.repeat(size, n)))))
        if unread:
            zero = bytes(size)
            for i in unread:
                pieces[i] = zero
        if stride > size:   # (a walk unpacks gs in place instead: unpack_fixed)
            gap = bytes(stride - size)
            return gap.join(pieces) + gap, unread
        return b"".join(pieces), unread

    def unpack_fixed(self, addrs: list, shape: struct.Struct) -> tuple:
        """(rows, unread): shape unpacked straight from the core's mapping at each of
        addrs, zeros where the core does not hold the range (listed in unread)."""
        n = len(addrs)
        offs, fits = self._locate(addrs, shape.size)
        if False not in fits:
            return list(map(shape.unpack_from, itertools.repeat(self.mv, n), offs)), []
        unread = [i for i, ok in enumerate(fits) if not ok]
        for i in unread:
            offs[i] = 0   # unpacked from the file's start, then replaced
        rows = list(map(shape.unpack_from, itertools.repeat(self.mv, n), offs))
        zero = shape.unpack(bytes(shape.size))
        for i in unread:
            rows[i] = zero
        return rows, unread

    # --- numpy reads, straight out of the mapping. The pages a read touched are given
    # back afterwards (release), so a walk over a core of millions of goroutines does
    # not keep gigabytes of it resident.
    def _arrays(self) -> tuple:
        """(starts, ends, file offsets, vaddrs) of the segments as uint64 arrays."""
        if self._np is None:
            segs = self.segs
            self._np = tuple(np.array(v, dtype=np.uint64) for v in (
                self.starts, [s.vaddr + s.filesz for s in segs], [s.offset for s in segs],
                [s.vaddr for s in segs]))
        return self._np

    def locate(self, addrs: np.ndarray, size) -> tuple:
        """(file offsets, held) of size bytes (one for all, or one per range) at each of
        addrs (uint64)."""
        starts, ends, foffs, vaddrs = self._arrays()
        if not len(starts):
            return np.zeros(len(addrs), np.uint64), np.zeros(len(addrs), bool)
        i = np.searchsorted(starts, addrs, side="right").astype(np.int64) - 1
        ok = i >= 0
        i[~ok] = 0
        size = np.asarray(size, dtype=np.uint64)
        end = addrs + size
        ok &= (end <= ends[i]) & (end >= addrs)
        offs = addrs - vaddrs[i] + foffs[i]
        ok &= offs + size <= np.uint64(self.size)
        offs[~ok] = 0
        return offs, ok

    def values(self, offs: np.ndarray, dtype) -> Optional[np.ndarray]:
        """The values of dtype at file offsets (all aligned to its size), else None."""
        size = dtype.itemsize
        if len(offs) and np.any(offs % np.uint64(size)):
            return None
        return self._view(dtype)[(offs // np.uint64(size)).astype(np.int64)]

    def words(self, addrs: np.ndarray, size, sels: np.ndarray) -> Optional[tuple]:
        """(words, held): of the size bytes (one for all, or one per range) at each of
        addrs, the words sels (indices, one row for all or a row per range), and
        whether the core holds each range (rows it does not are zeros); None where a
        range is not 8-aligned in the file. The pages read are given back (release):
        callers pass ranges in address order, so each page is faulted in once."""
        offs, held = self.locate(addrs, size)
        if np.any(offs % np.uint64(8)):
            return None
        base = (offs // np.uint64(8)).astype(np.int64)
        w = self._view(np.dtype("<u8"))[base[:, None] + (sels if sels.ndim == 2 else sels[None, :])]
        w[~held] = 0
        if held.any():
            self.release(offs[held], int(np.max(size)))
        return w, held

    def read_strided(self, addrs: np.ndarray, size: int, stride: int, buf) -> Optional[np.ndarray]:
        """size bytes at each of addrs into buf (a bytearray) at i * stride, copied from
        the file with one preadv per run of ranges that lie stride apart in it (gs of one
        size class, 17 to a span): which of them the core holds (the others zeros), or
        None without a file to read. Where the mapping would fault in and give back
        every page of the gs, this copies them once (a third of the time at 1M)."""
        fd = self._file()
        if fd is None:
            return None
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

    def has_file(self) -> bool:
        """Whether read_strided can copy from the file (else read in place)."""
        return self._file() is not None

    def release(self, offs: Optional[np.ndarray] = None, size: int = 0) -> None:
        """Drop the mapping's resident pages (they stay in the page cache): those of
        the file range offs (file offsets of a read of size bytes each) spans, or all."""
        if self._mmap is None:
            return
        try:
            if offs is not None and len(offs):
                start = int(offs.min()) & ~(mmap.PAGESIZE - 1)
                end = min(int(offs.max()) + size, self.size)
                if end > start:
                    self._mmap.madvise(mmap.MADV_DONTNEED, start, end - start)
            elif offs is None:
                self._mmap.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError, AttributeError):
            self._mmap = None

    def _file(self) -> Optional[int]:
        if self._fd is False:
            try:
                self._fd = os.open(self.path, os.O_RDONLY) if self.path else None
            except OSError:
                self._fd = None
        return self._fd

    def _view(self, dtype):
        v = self._views.get(dtype)
        if v is None:
            mv = self.mv
            v = self._views[dtype] = np.frombuffer(mv, dtype=dtype,
                                                   count=len(mv) // dtype.itemsize)
        return v

    def _locate(self, addrs: list, sizes) -> tuple:
        """([file offset], [whether the core holds it]) of each range addrs[i] of
        sizes[i] bytes (sizes: a list, or one size for all). Segments and offsets are
        found by mapping C functions over addrs, not by a Python step per range."""
        n = len(addrs)
        if not self.segs or not n:
            return [0] * n, [False] * n
        # per segment, 1-based as bisect_right counts: file offset - address, and end
        # of its address range; index 0 stands for "below every segment"
        if self._tables is None:
            self._tables = ([0] + [s.offset - s.vaddr for s in self.segs],
                            [float("-inf")] + [s.vaddr + s.filesz for s in self.segs])
        deltas, ends = self._tables

        def each_size():
            return itertools.repeat(sizes, n) if isinstance(sizes, int) else sizes
        # ranges that all lie in one segment (the stacks or gs of a chunk, mostly):
        # one offset for all, no search per range
        lo, hi = min(addrs), max(map(operator.add, addrs, each_size()))
        first = bisect.bisect_right(self.starts, lo)
        if hi <= ends[first] and (not self.truncated or hi + deltas[first] <= self.size):
            return list(map(operator.add, addrs, itertools.repeat(deltas[first], n))), [True] * n
        seg = list(map(bisect.bisect_right, itertools.repeat(self.starts, n), addrs))
        offs = list(map(operator.add, addrs, map(deltas.__getitem__, seg)))
        fits = map(operator.le, map(operator.add, addrs, each_size()), map(ends.__getitem__, seg))
        if self.truncated:  # the core once held these bytes: never read past its end
            fits = map(operator.and_, fits, map(operator.le, map(operator.add, offs, each_size()),
                                                itertools.repeat(self.size, n)))
        return offs, list(fits)

    def close(self) -> None:
        """Let go of the core: its fd and, where no view of it is held any more, its
        mapping (whoever still holds this object, the file's blocks then go back)."""
        fd, self._fd = self._fd, None
        if fd is not None and fd is not False:
            try:
                os.close(fd)
            except OSError:
                pass
        self._views.clear()
        self._np = self._tables = self._last = self._mmap = None
        self.mv = memoryview(b"")
        self.elf.close()

    def __del__(self, _close=os.close):   # bound now: no import at interpreter exit
        fd = getattr(self, "_fd", None)
        if fd is not None and fd is not False:
            try:
                _close(fd)
            except OSError:
                pass


def open_source(pid: int = 0, core_path: Optional[str] = None):
    try:
        if core_path:
            return CoreMem(core_path)
        if pid:
            return ProcMem(pid)
    except (OSError, DecodeError):
        return None
    return None
