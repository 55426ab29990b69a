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
import operator
import os
import queue
import signal
import struct
import threading
from typing import Optional

from ..errors import DecodeError, ReadError
from ..binary.elf import PT_LOAD, ElfFile


# process_vm_readv takes at most IOV_MAX (1024) remote ranges per call
_IOV_MAX = 1024
# calls in flight at once for a big read. Each remote range costs the kernel about
# 0.8 us whatever its size (pinning its page), so a million stack tops are bound by
# that, not by the copy: at 1M on this 2-vCPU VM, 1 thread 0.65-0.80 s, 2 threads
# 0.46-0.55 s, 4 threads 0.36-0.55 s, 8 no better.
READ_THREADS = 4
_CALL_BYTES = 1 << 20   # at most about this much a call when a read is cut into calls
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
        another do, are read as one run (see _read_runs); else see _read_into. scratch: a bytearray to read into when it
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
            unread = self._read_runs(addrs, size, stride, buf)
        else:
            unread = self._read_into(addrs, None, range(0, (n + 1) * size, size), buf)
        return (buf if buf is not scratch else memoryview(buf)[:n * stride]), unread

    def _read_runs(self, addrs: list, size: int, stride: int, buf: bytearray) -> list:
        """Read size bytes at each addrs[i] into buf at i * stride; the indices it could
        not read, whose bytes it zeroes. Ranges i..j-1 with addrs[k + 1] - addrs[k] ==
        stride form a run: memory and buf hold them in the same layout, so a run is one
        iovec on each side, and one process_vm_readv takes up to 1024 runs. A run that
        fails is read range by range with pread."""
        if not addrs:
            return []
        breaks = itertools.compress(itertools.count(1), map(
            stride.__ne__, map(operator.sub, itertools.islice(addrs, 1, None), addrs)))
        bounds = [0, *breaks, len(addrs)]
        per = max(1, _CALL_BYTES // stride)
        if len(addrs) > per:   # long runs cut, so that the read threads share them
            bounds = sorted(set(bounds).union(range(per, len(addrs), per)))
        firsts = bounds[:-1]
        runs = len(firsts)
        # run r: bounds[r + 1] - bounds[r] ranges, (count - 1) * stride + size bytes
        lens = list(map(operator.add, map(operator.mul, map(operator.sub, bounds[1:], firsts),
                                          itertools.repeat(stride, runs)),
                        itertools.repeat(size - stride, runs)))
        unread: list = []
        local = (ctypes.c_char * max(len(buf), 1)).from_buffer(buf)
        base = ctypes.addressof(local)
        places = list(map(operator.add, map(operator.mul, firsts, itertools.repeat(stride, runs)),
                          itertools.repeat(base, runs)))
        starts = list(map(addrs.__getitem__, firsts))
        # runs no iovec can hold (a negative address) are read alone, and end a batch
        odd = [j for j, a in enumerate(starts) if not 0 <= a < 1 << 64] \
            if min(starts) < 0 or max(starts) >= 1 << 64 else []
        odd.append(runs)
        iov_local = array.array("Q", bytes(16 * min(runs, _IOV_MAX)))
        iov_remote = array.array("Q", iov_local)

        def one_by_one(r: int, end: int) -> None:
            """Runs r..end-1 a batch at a time, a failing run range by range."""
            while r < end:
                bad = r   # without process_vm_readv: each run range by range
                m = min(end, odd[bisect.bisect_left(odd, r)], r + _IOV_MAX) - r
                if self._readv is not None and m:
                    sizes = lens[r:r + m]
                    iov_remote[0:2 * m:2] = array.array("Q", starts[r:r + m])
                    iov_local[0:2 * m:2] = array.array("Q", places[r:r + m])
                    iov_local[1:2 * m:2] = iov_remote[1:2 * m:2] = array.array("Q", sizes)
                    got = self._readv(self.pid, iov_local.buffer_info()[0], m,
                                      iov_remote.buffer_info()[0], m, 0)
                    if got < 0 and ctypes.get_errno() in (1, 38):  # EPERM, ENOSYS
                        self._readv = None
                        continue
                    if got == sum(sizes):
                        r += m
                        continue
                    bad = stood(r, m, got)
                alone(bad)
                r = bad + 1

        def stood(r: int, m: int, got: int) -> int:
            """The run a call of runs r..r+m-1 failed at: transfers stop at an iovec's
            boundary, so the runs before it stand."""
            return r + bisect.bisect_right(list(itertools.accumulate(lens[r:r + m])), max(got, 0))

        def alone(bad: int) -> None:
            """Run bad range by range."""
            for i in range(bounds[bad], bounds[bad + 1]):
                addr = addrs[i]
                data = self.read(addr, size) if addr > 0 else None
                if data is None:
                    unread.append(i)
                    data = bytes(size)
                buf[i * stride:i * stride + size] = data

        try:
            # every batch at once (see readv_calls); those not read whole, one by one
            batches, r = [], 0
            ends = list(itertools.accumulate(lens, initial=0))
            while r < runs:
                m = min(runs, odd[bisect.bisect_left(odd, r)], r + _IOV_MAX,
                        max(r + 1, bisect.bisect_left(ends, ends[r] + _CALL_BYTES))) - r
                batches.append((r, max(m, 1), m))
                r += max(m, 1)
            calls, keep = {}, []
            for r, _, m in batches:
                if not m or self._readv is None:
                    continue
                rem = array.array("Q", bytes(16 * m))
                loc = array.array("Q", bytes(16 * m))
                rem[0::2] = array.array("Q", starts[r:r + m])
                loc[0::2] = array.array("Q", places[r:r + m])
                loc[1::2] = rem[1::2] = array.array("Q", lens[r:r + m])
                keep.append((loc, rem))
                calls[r] = (loc.buffer_info()[0], m, rem.buffer_info()[0], m)
            results = dict(zip(calls, self.readv_calls(list(calls.values()))))
            for r, width, m in batches:
                got, errno = results.get(r, (-1, 0))
                if got == sum(lens[r:r + m]):
                    continue
                if r not in results or (got < 0 and errno in (1, 38)):   # EPERM, ENOSYS
                    one_by_one(r, r + width)
                    continue
                bad = stood(r, m, got)
                alone(bad)
                one_by_one(bad + 1, r + width)
        finally:
            del local  # release the export so buf stays an ordinary bytearray
        return unread

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
        iov = array.array("Q", bytes(16 * min(n, _IOV_MAX)))
        i = 0
        try:
            while i < n:
                k = i   # without process_vm_readv: each range on its own
                if self._readv is not None:
                    m = min(n - i, _IOV_MAX)
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
        self.mv = memoryview(self.elf._data)
        self.size = len(self.mv)
        self.expected = max((s.offset + s.filesz for s in self.elf.segments
                             if s.type == PT_LOAD), default=0)
        self.truncated = self.size < self.expected
        self._last = None
        self._tables = None  # see _locate

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
