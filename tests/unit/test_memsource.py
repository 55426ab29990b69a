"""Bulk reads of a live process (process_vm_readv, pread fallback) and Memory.gather.

The process read is this test process itself, through /proc/PID/mem and
process_vm_readv as the gdb and Delve backends read a stopped target: known
bytes at known addresses, unmapped ranges among them, more ranges than one
process_vm_readv call takes.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import random
import struct

import pytest

from gdb_go_ext.errors import ReadError
from gdb_go_ext.target.direct import ProcMem
from gdb_go_ext.target import Memory

N = 2500   # > 2 batches of 1024 ranges
UNMAPPED = 4096  # the first page is never mapped


@pytest.fixture(scope="module")
def pattern():
    rnd = random.Random(7)
    data = bytes(rnd.randrange(256) for _ in range(64 * 1024))
    buf = ctypes.create_string_buffer(data, len(data))
    return buf, ctypes.addressof(buf), data


def _ranges(base, data, bad_every, fixed_size=None):
    """N (addr, size) ranges of data at base, every bad_every-th unmapped, and the bytes
    each should read (None: unreadable); sizes random up to 600 unless fixed_size."""
    rnd = random.Random(11)
    ranges, want = [], []
    for i in range(N):
        size = fixed_size or rnd.randrange(1, 600)
        if bad_every and i % bad_every == 3:
            ranges.append((UNMAPPED + 8 * i, size))
            want.append(None)
            continue
        off = rnd.randrange(len(data) - 600)
        ranges.append((base + off, size))
        want.append(data[off:off + size])
    return ranges, want


def _bytes(hit, size):
    if hit is None:
        return None
    buf, off = hit
    return bytes(buf[off:off + size])


@pytest.fixture(params=[True, False], ids=["process_vm_readv", "pread"])
def source(request):
    """This process's memory through ProcMem, with process_vm_readv or with pread alone."""
    src = ProcMem(os.getpid())
    if not request.param:
        src._readv = None
    elif src._readv is None:
        pytest.fail("process_vm_readv is not available from libc")
    yield src
    src.close()


@pytest.mark.parametrize("bad_every", [0, 1, 97], ids=["all-good", "every-other-bad", "some-bad"])
def test_gather_matches_memory(pattern, source, bad_every):
    _buf, base, data = pattern
    ranges, want = _ranges(base, data, bad_every if bad_every != 1 else 2)
    got = source.gather(ranges)
    assert len(got) == len(ranges)
    for (addr, size), hit, w in zip(ranges, got, want):
        assert _bytes(hit, size) == w, f"range {addr:#x}+{size}"


def test_gather_refuses_negative_ranges(pattern):
    _buf, base, data = pattern
    src = ProcMem(os.getpid())
    try:
        got = src.gather([(base, 8), (-5, 8), (base + 8, 8)])
        assert _bytes(got[0], 8) == data[:8]
        assert got[1] is None
        assert _bytes(got[2], 8) == data[8:16]
    finally:
        src.close()


class _DirectTarget:
    """A Target whose direct source is ProcMem and whose own read fails, as a
    debugger would for an unmapped address."""
    ptr_size = 8
    is_live = True

    def __init__(self):
        self.direct = ProcMem(os.getpid())
        self.fallback_reads = 0

    def read(self, addr, size):
        self.fallback_reads += 1
        data = self.direct.read(addr, size) if addr > 0 else None
        if data is None:
            raise ReadError(addr, size, "cannot access memory")
        return data


def test_memory_gather_reports_read_errors(pattern):
    _buf, base, data = pattern
    t = _DirectTarget()
    try:
        ranges, want = _ranges(base, data, 97)
        got = Memory(t).gather(ranges)
        bad = 0
        for (addr, size), hit, w in zip(ranges, got, want):
            if w is None:
                assert isinstance(hit, ReadError)
                bad += 1
            else:
                assert _bytes(hit, size) == w
        assert bad and t.fallback_reads == bad  # only failed ranges went to the debugger
    finally:
        t.direct.close()


@pytest.mark.parametrize("scratch", [False, True], ids=["fresh", "into-used-scratch"])
@pytest.mark.parametrize("bad_every", [0, 2, 97], ids=["all-good", "every-other-bad", "some-bad"])
def test_gather_fixed_matches_memory(pattern, source, bad_every, scratch):
    _buf, base, data = pattern
    size = 472
    ranges, want = _ranges(base, data, bad_every, size)
    # a reused scratch holds old bytes, and is longer than this read needs
    used = bytearray(b"\xff" * (len(ranges) * size + 100)) if scratch else None
    buf, unread = source.gather_fixed([a for a, _ in ranges], size, used)
    assert len(buf) == len(ranges) * size
    assert sorted(unread) == [i for i, w in enumerate(want) if w is None]
    for i, w in enumerate(want):
        got = bytes(buf[i * size:(i + 1) * size])
        assert got == (w if w is not None else bytes(size)), f"range {i} at {ranges[i][0]:#x}"


def test_memory_gather_fixed_reports_read_errors(pattern):
    _buf, base, data = pattern
    t = _DirectTarget()
    try:
        size = 40
        ranges, want = _ranges(base, data, 97, size)
        addrs = [a for a, _ in ranges]
        buf, errors = Memory(t).gather_fixed(addrs, size)
        bad = [i for i, w in enumerate(want) if w is None]
        assert sorted(errors) == bad and all(isinstance(e, ReadError) for e in errors.values())
        assert t.fallback_reads == len(bad)  # only failed ranges went to the debugger
        for i, w in enumerate(want):
            if w is not None:
                assert bytes(buf[i * size:(i + 1) * size]) == w
    finally:
        t.direct.close()


# --- gather_fixed with a stride: ranges that lie stride apart are read as one run
PAGE = 4096


@pytest.fixture(scope="module")
def guarded():
    """Three pages of known bytes whose middle one is PROT_NONE: process_vm_readv
    fails there, while /proc/PID/mem (which a tracer reads) does not."""
    libc = ctypes.CDLL(None, use_errno=True)
    m = mmap.mmap(-1, 3 * PAGE)
    data = bytes(random.Random(3).randrange(256) for _ in range(3 * PAGE))
    m[:] = data
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    assert libc.mprotect(ctypes.c_void_p(addr + PAGE), PAGE, 0) == 0
    yield addr, data
    libc.mprotect(ctypes.c_void_p(addr + PAGE), PAGE, 3)


def _strided(base, data, guard, stride, size):
    """(addrs, want): runs stride apart of random lengths, lone ranges, an unmapped run
    and a negative address among them; and one run from a readable page into the
    PROT_NONE one. want: the bytes each should read, None where unreadable."""
    rnd = random.Random(13)
    addrs, want = [], []
    while len(addrs) < N:
        kind = rnd.randrange(10)
        if kind == 0:
            run = [UNMAPPED + 8 * len(addrs) + k * stride for k in range(rnd.randrange(1, 5))]
            want += [None] * len(run)
        elif kind == 1:
            run = [-stride * 2 + k * stride for k in range(2)]  # negative, then zero
            want += [None, None]
        else:
            k = rnd.randrange(1, 40) if kind > 4 else 1
            off = rnd.randrange(len(data) - k * stride)
            run = [base + off + j * stride for j in range(k)]
            want += [data[off + j * stride:off + j * stride + size] for j in range(k)]
        addrs += run
    gaddr, gdata = guard
    start = PAGE - 3 * stride - 5   # three ranges before the guarded page, the rest in it
    addrs += [gaddr + start + j * stride for j in range(8)]
    want += [gdata[start + j * stride:start + j * stride + size] for j in range(8)]
    return addrs, want


@pytest.mark.parametrize("scratch", [False, True], ids=["fresh", "into-used-scratch"])
def test_gather_fixed_strided_runs(pattern, guarded, source, scratch):
    _buf, base, data = pattern
    size, stride = 24, 40
    addrs, want = _strided(base, data, guarded, stride, size)
    singles, iovecs = [], []
    read, readv = source.read, source._readv
    source.read = lambda a, s: singles.append(a) or read(a, s)
    if readv is not None:
        source._readv = lambda pid, li, ln, ri, rn, fl: iovecs.append(rn) or readv(
            pid, li, ln, ri, rn, fl)
    used = bytearray(b"\xff" * (len(addrs) * stride + 100)) if scratch else None
    buf, unread = source.gather_fixed(addrs, size, used, stride)
    assert len(buf) == len(addrs) * stride
    assert sorted(unread) == [i for i, w in enumerate(want) if w is None]
    for i, w in enumerate(want):
        got = bytes(buf[i * stride:i * stride + size])
        assert got == (w if w is not None else bytes(size)), f"range {i} at {addrs[i]:#x}"
    if source._readv is not None:
        # runs were read whole: single reads only for the runs that failed (the
        # guarded one, the unmapped ones; negative addresses are never read)
        bad_runs = {a for a, w in zip(addrs, want) if w is None and a > 0}
        guarded_run = set(addrs[-8:])
        assert set(singles) == bad_runs | guarded_run
        runs = 1 + sum(b - a != stride for a, b in zip(addrs, addrs[1:]))
        assert runs < len(addrs) // 4 and sum(iovecs) < 2 * runs


def test_gather_fixed_strided_runs_on_threads(pattern, guarded, monkeypatch):
    """Runs cut into calls of about call_bytes, spread over the read threads, failing
    ones among them: the same bytes and unread indices as reading range by range, and
    most calls made on the read threads, not gdb's."""
    import threading
    from gdb_go_ext.target import direct
    monkeypatch.setattr(direct, "CALL_BYTES", 64)
    _buf, base, data = pattern
    size, stride = 24, 40
    addrs, want = _strided(base, data, guarded, stride, size)
    src = ProcMem(os.getpid())
    try:
        callers = []
        readv = src._readv
        src._readv = lambda *a: callers.append(threading.current_thread().name) or readv(*a)
        buf, unread = src.gather_fixed(addrs, size, None, stride)
    finally:
        src.close()
    assert sorted(unread) == [i for i, w in enumerate(want) if w is None]
    for i, w in enumerate(want):
        assert bytes(buf[i * stride:i * stride + size]) == (w if w is not None else bytes(size))
    on_threads = sum(name == "gdb_go_ext-readv" for name in callers)
    assert on_threads > len(callers) // 2, callers[:20]


def test_read_pool_interrupt_waits_for_every_part():
    """Ctrl-C while the read threads work: the parts are told to stop, the caller
    waits for all of them before the interrupt goes on, and the pool still works."""
    import threading
    import time
    from gdb_go_ext.target import direct
    pool = direct._pool()
    started, release, finished = threading.Event(), threading.Event(), []

    def part(p, stop):
        started.set()
        release.wait(5)
        finished.append((p, stop.is_set()))
        return p

    def interrupt():
        started.wait(5)
        time.sleep(0.05)
        release.set()
        raise KeyboardInterrupt

    orig = threading.Semaphore.acquire
    calls = []

    def acquire(self, *a, **k):   # the first wait is interrupted, as by SIGINT
        calls.append(1)
        if len(calls) == 1:
            interrupt()
        return orig(self, *a, **k)

    threading.Semaphore.acquire = acquire
    try:
        with pytest.raises(KeyboardInterrupt):
            pool.map(part, [1, 2, 3])
    finally:
        threading.Semaphore.acquire = orig
    assert sorted(p for p, _ in finished) == [1, 2, 3]
    assert pool.map(lambda p, stop: p * 2, [1, 2]) == [2, 4]


def test_memory_gather_fixed_strided_reports_read_errors(pattern, guarded):
    _buf, base, data = pattern
    t = _DirectTarget()
    try:
        size, stride = 16, 48
        addrs, want = _strided(base, data, guarded, stride, size)
        buf, errors = Memory(t).gather_fixed(addrs, size, None, stride)
        assert sorted(errors) == [i for i, w in enumerate(want) if w is None]
        for i, w in enumerate(want):
            if w is not None:
                assert bytes(buf[i * stride:i * stride + size]) == w
        # unpack_fixed with the stride: the same bytes as rows, zeros where unreadable
        rows, errors = Memory(t).unpack_fixed(addrs, struct.Struct(f"{size}s"), None, stride)
        assert sorted(errors) == [i for i, w in enumerate(want) if w is None]
        assert [r for (r,) in rows] == [w if w is not None else bytes(size) for w in want]
    finally:
        t.direct.close()


# --- CoreMem.gather_fixed over a small ELF core written here: three PT_LOAD
# segments with gaps between them, one of them only partly in the file
# (filesz < memsz: not served), and the same file cut short.
def _written_bytes(segs, offsets, cut, addr, size):
    """The size bytes at addr as the first two segments written hold them (None where
    they do not, or where the core was cut at cut before them)."""
    for (vaddr, data, memsz), off in zip(segs[:2], offsets):
        if vaddr <= addr and addr + size <= vaddr + len(data):
            if cut and off + addr - vaddr + size > cut:
                return None
            return data[addr - vaddr:addr - vaddr + size]
    return None


def _write_core(path, segments, cut=None):
    """segments: (vaddr, data, memsz); returns the file offset of each segment's data."""
    phoff, phentsize = 64, 56
    off = phoff + phentsize * len(segments)
    phdrs, blobs, offsets = b"", b"", []
    for vaddr, data, memsz in segments:
        offsets.append(off + len(blobs))
        phdrs += struct.pack("<IIQQQQQQ", 1, 4, off + len(blobs), vaddr, 0, len(data), memsz, 1)
        blobs += data
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 4, 62, 1, 0,
                       phoff, 0, 0, 64, phentsize, len(segments), 0, 0, 0)
    image = ehdr + phdrs + blobs
    with open(path, "wb") as f:
        f.write(image[:cut] if cut else image)
    return offsets


@pytest.mark.parametrize("truncate", [False, True], ids=["whole", "truncated"])
def test_core_gather_fixed_matches_segments(tmp_path, truncate):
    from gdb_go_ext.target.direct import CoreMem
    rnd = random.Random(5)
    segs = [(0x10000, bytes(rnd.randrange(256) for _ in range(8192)), 8192),
            (0x40000, bytes(rnd.randrange(256) for _ in range(4096)), 4096),
            (0x50000, bytes(rnd.randrange(256) for _ in range(2048)), 8192)]  # not in full
    path = str(tmp_path / "core")
    offsets = _write_core(path, segs)
    cut = offsets[1] + 1000 if truncate else None  # the second segment ends early
    if cut:
        _write_core(path, segs, cut)
    mem = CoreMem(path)
    assert mem.truncated == truncate
    size = 24

    def want(addr):
        return _written_bytes(segs, offsets, cut, addr, size)
    addrs = [-100, -8, 0, 0x10000, 0x10000 + 8192 - size, 0x10000 + 8192 - size + 1,
             0x20000, 0x40000 + 900, 0x40000 + 1000, 0x40000 + 4096 - size, 0x50000, 1 << 62]
    # runs 40 apart (read as one piece with stride 40): inside a segment, across a
    # segment's end, and across the cut of the truncated file
    for first, k in ((0x10000 + 100, 20), (0x10000 + 8192 - 5 * 40, 10), (0x40000 + 900, 10)):
        addrs += [first + j * 40 for j in range(k)]
    addrs += [rnd.randrange(0x10000 - 64, 0x41000 + 64) for _ in range(3000)]
    expect = [want(a) for a in addrs]
    assert any(w is not None for w in expect) and sum(w is None for w in expect) > 12
    for stride in (0, size, 40):   # range i at i * stride (size when 0)
        buf, unread = mem.gather_fixed(addrs, size, None, stride)
        step = stride or size
        assert len(buf) == len(addrs) * step
        assert unread == [i for i, w in enumerate(expect) if w is None]
        for i, w in enumerate(expect):
            assert bytes(buf[i * step:i * step + size]) == (w if w is not None else bytes(size)), \
                f"range {i} at {addrs[i]:#x}, stride {stride}"
    # ranges all in one segment: one offset for all, unless the file was cut short there
    for lo, hi in ((0x10000, 0x10000 + 8192), (0x40000, 0x40000 + 4096)):
        sub = [a for a in addrs if lo <= a and a + size <= hi]
        buf, unread = mem.gather_fixed(sub, size)
        exp = [want(a) for a in sub]
        assert unread == [i for i, w in enumerate(exp) if w is None]
        assert bool(unread) == (truncate and lo == 0x40000)
        for i, w in enumerate(exp):
            assert bytes(buf[i * size:(i + 1) * size]) == (w if w is not None else bytes(size))
    # unpack_fixed: the same ranges unpacked in place, zeros where not held
    shape = struct.Struct("<QxxxxI8x")
    rows, unread = mem.unpack_fixed(addrs, shape)
    assert unread == [i for i, w in enumerate(expect) if w is None]
    assert rows == [shape.unpack(w if w is not None else bytes(size)) for w in expect]
    # gather: the same ranges as views into the core's mapping, None where not held
    for i, (w, hit) in enumerate(zip(expect, mem.gather([(a, size) for a in addrs]))):
        assert _bytes(hit, size) == w, f"range {i} at {addrs[i]:#x}"


def test_read_pool_in_a_forked_child_is_its_own():
    """A child forked after the read threads started gets a pool of its own (a fork
    copies no threads): its reads spread over threads still end."""
    from gdb_go_ext.target import direct
    direct._pool()
    pid = os.fork()
    if pid == 0:   # the child: a map over the pool must not wait on the parent's threads
        try:
            ok = direct._pool().map(lambda p, stop: p + 1, [1, 2, 3]) == [2, 3, 4]
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    import time
    deadline = time.time() + 30
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the child's read pool hung")


# --- numpy reads of a live process (Memory.words, Memory.read_strided over ProcMem)
@pytest.fixture(scope="module")
def own_memory():
    """64 KB of known bytes, then a PROT_NONE page (process_vm_readv fails there, the
    pread fallback does not), then 4 KB more; and a Memory over this process."""
    page = mmap.PAGESIZE
    m = mmap.mmap(-1, 16 * page + page + page, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    data = bytes(random.Random(5).randrange(256) for _ in range(len(m)))
    m[:] = data
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mprotect(ctypes.c_void_p(base + 16 * page), page, 0) == 0
    t = _DirectTarget()
    yield t, Memory(t), base, data, 16 * page
    t.direct.close()
    libc.mprotect(ctypes.c_void_p(base + 16 * page), page, 3)


@pytest.mark.parametrize("stride", [112, 2048], ids=["dense-merged", "sparse-one-by-one"])
def test_memory_words_merged_and_not(own_memory, monkeypatch, stride):
    """Memory.words of a live process, ranges close together (read merged, by the read
    threads) or far apart (runs), some in a PROT_NONE page or unmapped: the same words
    as the memory holds, and ok False exactly where a range cannot be read (unmapped)."""
    import numpy as np
    from gdb_go_ext.target import direct
    monkeypatch.setattr(direct, "CALL_BYTES", 4096)   # many calls: the threads share them
    t, mem, base, data, guard = own_memory
    size = 24
    offs = list(range(8, len(data) - size, stride))
    rng = np.random.default_rng(3)
    rng.shuffle(offs)
    addrs = [base + o for o in offs] + [4096 + 64 * i for i in range(40)]   # + unmapped
    merged = []
    real = t.direct._read_merged
    monkeypatch.setattr(t.direct, "_read_merged", lambda *a: merged.append(real(*a)) or merged[-1])
    words, ok = mem.words(np.array(addrs, dtype=np.uint64), size)
    assert [m is not None for m in merged] == [stride < 1024]
    for i, a in enumerate(addrs):
        o = a - base
        readable = 0 <= o   # (the PROT_NONE page: through /proc/PID/mem, as a tracer)
        assert ok[i] == readable, (i, o)
        want = data[o:o + size] if readable else bytes(size)
        assert words[i].tobytes() == want, (i, o)


def test_memory_read_strided_runs_and_holes(own_memory, monkeypatch):
    """Memory.read_strided (the live walk's read of the gs): runs stride apart cut
    into many calls, a run across the PROT_NONE page and unmapped ranges among them:
    the bytes the memory holds at i * stride, and the unreadable ones reported."""
    import numpy as np
    from gdb_go_ext.target import direct
    monkeypatch.setattr(direct, "CALL_BYTES", 2048)
    t, mem, base, data, guard = own_memory
    size, stride = 40, 56
    offs = list(range(0, len(data) - size, stride))
    addrs = [base + o for o in offs]
    addrs[100:103] = [4096, 4096 + stride, 4096 + 2 * stride]
    n = len(addrs)
    buf = bytearray(b"\xff" * (n * stride))
    held, errs = mem.read_strided(np.array(addrs, dtype=np.uint64), size, stride, buf)
    for i, a in enumerate(addrs):
        o = a - base
        readable = 0 <= o   # (the PROT_NONE page: through /proc/PID/mem, as a tracer)
        assert held[i] == readable, (i, o)
        assert (i in errs) == (not readable)
        assert isinstance(errs.get(i, ReadError(0, 0, "")), ReadError)
        want = data[o:o + size] if readable else bytes(size)
        assert bytes(buf[i * stride:i * stride + size]) == want, (i, o)


@pytest.mark.parametrize("truncate", [False, True], ids=["whole", "truncated"])
def test_core_numpy_reads_match_segments(tmp_path, truncate):
    """CoreMem's numpy reads (what Memory.words and the columnar walk use on a core):
    words in place, strided copies by preadv, and Memory.words over a core target, each
    the bytes the core holds, zeros and not-held where it does not (a gap, a segment
    not in full, the cut of a truncated file)."""
    import numpy as np
    from gdb_go_ext.target.direct import CoreMem
    rnd = random.Random(9)
    segs = [(0x10000, bytes(rnd.randrange(256) for _ in range(8192)), 8192),
            (0x40000, bytes(rnd.randrange(256) for _ in range(4096)), 4096),
            (0x50000, bytes(rnd.randrange(256) for _ in range(2048)), 8192)]  # not in full
    path = str(tmp_path / "core")
    offsets = _write_core(path, segs)
    cut = offsets[1] + 1000 if truncate else None
    if cut:
        _write_core(path, segs, cut)
    core = CoreMem(path)
    size, stride = 24, 40

    def want(addr):
        return _written_bytes(segs, offsets, cut, addr, size)
    addrs = [0x10000 + 8 * rnd.randrange(1000) for _ in range(300)]
    addrs += [0x10000 + 8192 - 16, 0x20000, 0x40000 + 8 * 100, 0x40000 + 4096 - 8, 0x50000]
    addrs += [0x10000 + 800 + j * stride for j in range(20)] + [0x40000 + 960 + j * stride
                                                                 for j in range(10)]
    exp = [want(a) for a in addrs]
    assert sum(w is None for w in exp) >= 3
    a = np.array(addrs, dtype=np.uint64)
    words, held = core.words(a, size, np.arange(size // 8))
    assert held.tolist() == [w is not None for w in exp]
    for i, w in enumerate(exp):
        assert words[i].tobytes() == (w if w is not None else bytes(size)), i
    buf = bytearray(b"\xff" * (len(addrs) * stride))
    held = core.read_strided(a, size, stride, buf)
    assert held.tolist() == [w is not None for w in exp]
    for i, w in enumerate(exp):
        assert bytes(buf[i * stride:i * stride + size]) == (w if w is not None else bytes(size))

    class _CoreTarget:
        ptr_size, is_live, direct = 8, False, core

        def read(self, addr, n):
            data = core.read(addr, n)
            if data is None:
                raise ReadError(addr, n, "not in the core")
            return data
    w2, ok = Memory(_CoreTarget()).words(a, size, keep=[1, 2])
    assert ok.tolist() == [w is not None for w in exp]
    assert np.array_equal(w2, np.where(ok[:, None], words[:, 1:3], 0))
    core.close()
