"""`--frame K` and `--goroutine N`: where a view's expression is evaluated.

Shared by every view that takes an expression (map, chan, mapwatch); the target
evaluates in that scope (gdb: that frame of that goroutine's stack; Delve: its Eval
scope), so both doors take the same flags.
"""
from __future__ import annotations

from typing import Optional

from ..errors import GoExtError, UsageError
from ..target.base import Scope


def add_scope_args(p) -> None:
    p.add_argument("--frame", type=int, metavar="K",
                   help="evaluate EXPR in frame K (0 the innermost) instead of the selected one")
    p.add_argument("--goroutine", type=int, metavar="N",
                   help="evaluate EXPR in goroutine N's stack (frame 0 unless --frame)")


def scope_of(rt, args) -> Optional[Scope]:
    """The Scope the flags ask for, or None (the debugger's selected frame)."""
    frame, gid = getattr(args, "frame", None), getattr(args, "goroutine", None)
    if frame is None and gid is None:
        return None
    if frame is not None and frame < 0:
        raise UsageError("--frame must be 0 or more")
    g = None
    if gid is not None:
        from ..runtime.goroutines import GoroutineWalker
        g = GoroutineWalker(rt).find(gid, 1)
        if g is None:
            raise GoExtError(f"no goroutine {gid}")
    return Scope(goroutine=gid, frame=frame if frame is not None else (0 if gid is not None else None),
                 g=g)
