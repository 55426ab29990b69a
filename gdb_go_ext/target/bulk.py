"""Bulk reads as numpy columns, for the columnar goroutine walk and the heap.

Many ranges of one size are read at once: from a core, straight out of its mapping
(target/direct.py's CoreMem: in place, or copied by preadv per run), from a stopped
process with process_vm_readv (ProcMem: runs, merged neighbours, the read threads), and
from anything else through Memory.gather_fixed, the debugger reading what the direct
source cannot. Memory (target/base.py) offers these as words and read_strided.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .direct import CoreMem, ProcMem, dense, scratch_of

CORE_CHUNK = 1 << 12   # rows per core read: at most this many pages resident at once
LIVE_CHUNK = 1 << 15   # ranges per live read: 32 calls, for the read threads to share


def core_words(mem) -> Optional[CoreMem]:
    """The core file mem reads from directly (its numpy reads in place), else None."""
    direct = mem.target.direct
    return direct if isinstance(direct, CoreMem) else None


def proc_words(mem) -> Optional[ProcMem]:
    """The stopped process mem reads from directly, else None."""
    direct = mem.target.direct
    return direct if isinstance(direct, ProcMem) else None


def zeroed(shape, dtype) -> np.ndarray:
    """np.zeros(shape, dtype) with its pages faulted in now, in one sweep. At 1M
    goroutines, filling 100 MB of fresh columns chunk by chunk, as the gs are read,
    made a first walk 0.3 s slower on this VM (median of 6: 1.53 s against 1.18 s)
    than touching them first, which costs 0.04-0.05 s."""
    a = np.empty(shape, dtype=dtype)
    a.fill(0)
    return a


def _through_memory(mem, addrs: np.ndarray, size: int, unread, out: np.ndarray,
                    ok: np.ndarray) -> dict:
    """Rows unread (indices) of a direct read read again through mem (the debugger),
    in one gather_fixed: into out's rows, ok False and {index: ReadError} for those it
    cannot read."""
    idx = list(unread)
    raw, errs = mem.gather_fixed([int(addrs[i]) for i in idx], size)
    out[idx] = np.frombuffer(raw, dtype=np.uint8, count=len(idx) * size).reshape(len(idx), size)
    errors = {}
    for j, e in errs.items():
        i = idx[j]
        ok[i] = False
        errors[i] = e
        out[i] = 0
    return errors


def read_strided(mem, addrs: np.ndarray, size: int, stride: int, buf) -> tuple:
    """size bytes at each of addrs into buf (a bytearray) at i * stride: (ok, errors),
    which could be read and the errors of the others (index -> ReadError; their bytes
    zeros). A live process reads runs of ranges that lie stride apart (gs of one size
    class) as one (ProcMem.read_strided); what it cannot, and any other target, goes
    through mem.gather_fixed."""
    m = len(addrs)
    proc = proc_words(mem)
    if proc is None:
        raw, errors = mem.gather_fixed(addrs.tolist(), size, buf, stride)
        if raw is not buf and getattr(raw, "obj", None) is not buf and len(raw):
            memoryview(buf)[:len(raw)] = raw   # (not read into buf itself)
        ok = np.ones(m, dtype=bool)
        if errors:
            ok[np.fromiter(errors, dtype=np.int64)] = False
        return ok, errors
    ok = np.ones(m, dtype=bool)
    unread = proc.read_strided(addrs, size, stride, buf)
    if not unread:
        return ok, {}
    rows = np.zeros((len(unread), size), dtype=np.uint8)
    sub_ok = np.ones(len(unread), dtype=bool)
    sub = _through_memory(mem, addrs[unread], size, range(len(unread)), rows, sub_ok)
    mv = memoryview(buf)
    for j, i in enumerate(unread):
        mv[i * stride:i * stride + size] = rows[j].tobytes()
    ok[np.array(unread)[~sub_ok]] = False
    return ok, {unread[j]: e for j, e in sub.items()}


def read_words(mem, addrs: np.ndarray, size: int, cw=None, keep=None) -> tuple:
    """(words, ok): of the size bytes (a multiple of 8) at each of addrs, the words
    keep (indices; all when None) as a (n, len(keep)) uint64 matrix, and whether each
    could be read (rows that could not are zeros; only the bytes from the first word
    kept to the last are read). Read in chunks into one reused buffer: a core from its
    mapping (cw: core_words(mem); see CoreMem.release), a live process with
    process_vm_readv, anything else through mem.gather_fixed."""
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
    out = zeroed((n, len(sel)), np.uint64)
    ok = np.zeros(n, dtype=bool)
    proc = proc_words(mem) if cw is None else None
    step = CORE_CHUNK if cw is not None else LIVE_CHUNK
    order = None
    if proc is not None and n > step and dense(addrs, size):
        order = np.argsort(addrs)   # chunks in address order, so each is dense (merged)
        addrs = addrs[order]
    scratch = scratch_of(step * size) if cw is None else None
    for lo in range(0, n, step):
        a = addrs[lo:lo + step]
        m = len(a)
        if cw is not None:
            got = cw.words(a, size, sel)
            if got is not None:
                out[lo:lo + m], ok[lo:lo + m] = got
                continue
            scratch = scratch_of(step * size)
        good = np.ones(m, dtype=bool)
        if proc is not None:
            buf = scratch[:m * size].reshape(m, size)
            unread = proc.read_rows(a, size, buf)
            if unread:
                _through_memory(mem, a, size, unread, buf, good)
        else:
            raw, errors = mem.gather_fixed(a.tolist(), size, memoryview(scratch).cast("B"))
            buf = np.frombuffer(raw, dtype=np.uint8, count=m * size).reshape(m, size)
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
