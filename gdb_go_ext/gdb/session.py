"""The decoded runtime of the current gdb target, rebuilt when the target changes."""
from __future__ import annotations

from typing import Optional

import gdb

from ..runtime.goruntime import GoRuntime
from .backend import GdbTarget, is_core

_cached: Optional[GoRuntime] = None
_key = None


def _target_key():
    inf = gdb.selected_inferior()
    prog = gdb.current_progspace()
    return (inf.num, inf.pid, prog.filename if prog else None, is_core())


def runtime() -> GoRuntime:
    """The GoRuntime for the selected inferior; raises NotGoError without a Go target."""
    global _cached, _key
    key = _target_key()
    if _cached is None or key != _key:
        _cached = None
        _cached = GoRuntime(GdbTarget())
        _key = key
    return _cached


def invalidate(*_args) -> None:
    global _cached
    _cached = None


def target_moved(*_args) -> None:
    """The target may have changed under us: forget what was decoded from its memory."""
    if _cached is not None:
        _cached.forget_state()


def connect_events() -> None:
    for name in ("new_objfile", "clear_objfiles", "exited", "new_inferior", "inferior_deleted"):
        reg = getattr(gdb.events, name, None)
        if reg is not None:
            reg.connect(invalidate)
    for name in ("cont", "memory_changed", "register_changed", "inferior_call_pre",
                 "inferior_call_post", "stop"):
        reg = getattr(gdb.events, name, None)
        if reg is not None:
            reg.connect(target_moved)
