"""Every goroutine of the current stop, walked once and kept for the views that follow.

Triage is many views on one stop (list, filter, group, stacks, JSON): the goroutines
cannot change until the target runs, memory or registers are written, or the debugger
selects another thread (the walk marks the goroutine on the selected thread), and the
front door forgets the walks (GoRuntime.forget_state) on each of those. A walk is
kept only once it is complete: an interrupted one leaves nothing behind."""
from __future__ import annotations

from typing import Callable, Optional

from .goroutines import GoroutineWalker

KEPT = 3   # list, stacks and a JSON dump of one stop all hit


def walk(rt, depth: int = 0, include_dead: bool = False, want_blocked: bool = True,
         want_labels: bool = True, progress: Optional[Callable] = None):
    """(walker, goroutines) of the current stop: a kept walk that has at least what is
    asked for, else a new one. progress(done, total) is called during a new walk."""
    rt.require_process()
    selected = rt.target.selected_thread()
    for (d, dead, blocked, labels, sel), (walker, gs) in rt.walks.items():
        if d == depth and sel == selected and dead >= include_dead and blocked >= want_blocked \
                and labels >= want_labels:
            if dead and not include_dead:
                gs = [g for g in gs if g.status_code not in walker.dead_codes]
            return walker, gs
    walker = GoroutineWalker(rt, progress=progress)
    gs = walker.walk(with_stack=depth, include_dead=include_dead, want_blocked=want_blocked,
                     want_labels=want_labels)
    if len(rt.walks) >= KEPT:
        rt.walks.pop(next(iter(rt.walks)))
    rt.walks[(depth, include_dead, want_blocked, want_labels, selected)] = (walker, gs)
    return walker, gs
