"""The goroutine model a walk produces: Location, BlockedOn, Goroutine (one row of a
GoroutineTable, gtable.py, or a goroutine decoded on its own, goroutines.py)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional

from .stack import StackFrame


@dataclass(slots=True, eq=False)
class Location:
    """Made once per pc by a walk and shared by the goroutines there: compared and
    hashed by identity, so views can key on the objects themselves."""
    function: str
    file: str
    line: int

    def to_json(self) -> dict:
        return {"function": self.function, "file": self.file, "line": self.line}

    def text(self) -> str:
        return f"{self.function} {self.file}:{self.line}"

    @staticmethod
    def of(frame: Optional[StackFrame]) -> Optional["Location"]:
        return Location(frame.function, frame.file, frame.line) if frame else None


class BlockedOn(NamedTuple):
    """What a waiting goroutine's sudogs record it is blocked on. kind: "chan" (a channel
    send or receive: one channel), "select" (the channels of its cases, in case order,
    each once) or "sema" (the semaphore of a sync primitive); addrs: those addresses."""
    kind: str
    addrs: tuple


@dataclass(slots=True)
class Goroutine:
    """One goroutine. Its fields come in three parts: what it shares with the goroutines
    of its shape (the same status, wait reason, start, creator and stack), its own g
    fields, and what a walk fills in afterwards; a walk builds it with goroutine_maker."""
    # shared with the goroutines of its shape
    status_code: int
    status: str
    scan: bool
    wait_reason: str
    start: Optional[Location]
    created_by: Optional[Location]
    current: Optional[Location]
    user: Optional[Location]
    stack: Optional[list]              # StackFrame list when asked for
    error: Optional[str]
    # its own
    id: int
    addr: int
    wait_since_ns: int = 0
    wait_minutes: Optional[int] = None
    locked_to_thread: bool = False
    parent_id: Optional[int] = None
    is_current: bool = False
    pc: int = 0                        # raw start of the stack walk,
    sp: int = 0
    bp: int = 0                        # and the frame pointer that goes with it
    stack_lo: int = 0
    stack_hi: int = 0
    # filled in after
    labels: dict = field(default_factory=dict)
    thread: Optional[int] = None       # LWP when on a thread
    m_id: Optional[int] = None
    blocked_on: Optional[BlockedOn] = None   # with want_blocked, when its sudogs say


def goroutine_maker(status_code: int, status: str, scan: bool, wait_reason: str, start,
                    created_by, current, user, stack, error: Optional[str]) -> Callable:
    """The constructor of the goroutines of one shape, given what they share: called
    with a goroutine's own fields, in order (id, addr, wait_since_ns, wait_minutes,
    locked_to_thread, parent_id, is_current, pc, sp, bp, stack_lo, stack_hi), it
    returns its Goroutine. The one place a Goroutine is built positionally: on a core of
    100k goroutines, whose walk takes 0.2 s, keywords would add about 80 ms and a
    helper function about 10 ms; this partial adds nothing measurable."""
    return functools.partial(Goroutine, status_code, status, scan, wait_reason, start,
                             created_by, current, user, stack, error)
