"""Give the C heap's free pages back to the system after a bulk decode.

numpy's arrays below glibc's mmap threshold (which rises to 32 MiB as large blocks are
freed) come from the C heap, and freeing them leaves the pages resident: measured on a
1.9 GB Go heap, 320 MB of gdb's RSS after the heap roots were free blocks, returned by
one malloc_trim(0) (a few milliseconds). A no-op where the C library has none.
"""
from __future__ import annotations

import os

_libc = None
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8   # mallopt's (malloc.h)
MMAP_THRESHOLD_MAX = 32 << 20   # glibc's largest (64-bit), where its own threshold rises to


def trim() -> None:
    """Hand the C heap's free pages back (malloc_trim(0): a few milliseconds)."""
    libc = _c()
    if libc:
        libc.malloc_trim(0)


def give_back() -> None:
    """Collect cyclic garbage (the collector may have been paused through a bulk decode),
    then hand the C heap's free pages back."""
    import gc
    gc.collect()
    trim()


def _c():
    global _libc
    if _libc is None:
        try:
            import ctypes
            import ctypes.util
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    return _libc


class KeepPages:
    """While open, arrays up to 32 MiB come from the C heap and their pages stay when
    freed (and Python's cyclic collector waits): bulk steps that make and drop arrays of
    a few MB reuse the same pages instead of faulting in fresh ones each time (measured:
    30% off a run of numpy steps over 6M-element arrays). Larger ones are mapped apart
    and given back when freed (a trace's whole-generation columns: kept, the heap's
    holes between them raised the peak from 0.9 to 1.15 GB). One heap for every thread
    (a trace's next slice is ordered on a second thread: in an arena of its own, the
    peak rose by 0.2 GB). trim() in between hands back what the heap holds free. On
    close, glibc's arena limit (8 per core) is back and the free pages go back. Nesting
    is counted."""
    depth = 0
    gc_was = True

    def __enter__(self):
        import gc
        libc = _c()
        if KeepPages.depth == 0:
            if libc:
                libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
                libc.mallopt(M_ARENA_MAX, 1)
                libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
            # the cyclic collector paused too: a run of records kept alive for a block
            # makes it scan them again and again (measured: 16.8 -> 10.5 s on 5.9M events)
            KeepPages.gc_was = gc.isenabled()
            gc.disable()
        KeepPages.depth += 1
        return self

    def __exit__(self, *exc):
        import gc
        KeepPages.depth -= 1
        libc = _c()
        if KeepPages.depth == 0:
            if KeepPages.gc_was:
                gc.enable()
            if libc:
                libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
                libc.mallopt(M_ARENA_MAX, 8 * (os.cpu_count() or 1))
                libc.malloc_trim(0)
        return False
