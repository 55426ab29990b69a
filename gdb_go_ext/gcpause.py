"""Pause CPython's cyclic garbage collector around a bulk decode.

A walk of 100k goroutines builds a few hundred thousand objects that all stay
alive; every 700 allocations the collector would rescan the young ones and,
now and then, all of them: measured 0.3-0.4 s of a 1 s walk. Nothing a walk
builds is cyclic garbage (reference counting frees it), so pausing is safe.
"""
from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # what the pause built goes straight to the oldest generation, unscanned:
            # re-enabling alone would rescan all of it at the next allocation (30 ms per
            # 100k goroutines); a full collection still sees it in due course
            gc.freeze()
            gc.unfreeze()
            gc.enable()
