"""Every goroutine of the current stop, walked once and kept for the views that follow.

Triage is many views on one stop (list, filter, group, stacks, JSON): the goroutines
cannot change until the target runs, memory or registers are written, or the debugger
selects another thread (the walk marks the goroutine on the selected thread), and the
front door forgets the walks (GoRuntime.forget_state) on each of those. A walk is
kept only once it is complete: an interrupted one leaves nothing behind.

A walk's GoroutineTable keeps the g fields it read (its base): a view with stacks
after one without, or one that wants labels or blocked-on, settles the same fields
again instead of reading every g once more. Grouping, user locations and retention
never depend on a view's -t, which cuts only what it prints."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .goroutines import GoroutineWalker

KEPT = 3   # list, stacks and a JSON dump of one stop all hit


def walk(rt, depth: int = 0, include_dead: bool = False, want_blocked: bool = True,
         want_labels: bool = True, progress: Optional[Callable] = None):
    """(walker, goroutines) of the current stop: a GoroutineTable settled from a kept
    walk's g fields (any depth; labels and blocked-on read once), else from a new walk.
    depth: whole stacks when true, locations only when 0. progress(done, total) is
    called during the walk."""
    depth = 1 if depth else 0
    rt.require_process()
    selected = rt.target.selected_thread()
    for (dead, sel), (walker, gs) in rt.walks.items():
        if sel != selected or dead < include_dead:
            continue
        walker.progress = progress
        try:
            gs = walker.table_at(gs.base, depth, want_labels, want_blocked)
        finally:
            walker.progress = None
        if dead and not include_dead:
            gs = _live_only(walker, gs)
        return walker, gs
    walker = GoroutineWalker(rt, progress=progress)
    try:
        gs = walker.walk(with_stack=depth, include_dead=include_dead, want_blocked=want_blocked,
                         want_labels=want_labels)
    finally:
        walker.progress = None
    if len(rt.walks) >= KEPT:
        rt.walks.pop(next(iter(rt.walks)))
    rt.walks[(include_dead, selected)] = (walker, gs)
    return walker, gs


def _live_only(walker, table):
    """A table's goroutines but the dead ones."""
    codes = np.array([s[0] for s in table.shapes] or [0], dtype=np.int64)[table.shapes_of()]
    keep = np.ones(len(codes), dtype=bool)
    for d in walker.dead_codes:
        keep &= codes != d
    return table.select(table.base_rows()[keep])
