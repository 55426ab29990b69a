"""The values the trace reader hands out."""
from dataclasses import dataclass, field
from typing import Optional

from ..errors import GoExtError


class TraceFormatError(GoExtError):
    """Not an execution trace, an old-format (Go <= 1.21) one, or an unreadable header."""


@dataclass(slots=True, frozen=True)
class Frame:
    function: str
    file: str
    line: int
    pc: int


@dataclass(slots=True)
class Event:
    """One event as `go tool trace -d=parsed` (of the toolchain that wrote the trace)
    prints it: kind, Time=, M=/P=/G= (-1 for none), Stack=, and for a StateTransition the
    resource ("Goroutine" or "Proc"), its id, from -> to, Reason= and TransitionStack=.
    attrs holds the rest of what it prints, by the printed name:
      Sync: N (go1.25+), and Trace, Mono, Wall (UTC, RFC3339 with nanoseconds) when the
        generation has a clock snapshot (go1.25+, not the closing Sync);
      Metric: Name, Value (an int); Label: Label, Resource ("Goroutine(N)");
      RangeBegin/RangeActive/RangeEnd: Name, Scope ("Goroutine(N)", "Proc(N)", "None"),
        RangeEnd also Attributes ({"bytes swept": n, "bytes reclaimed": n} or {});
      TaskBegin/TaskEnd: ID, Parent (2**64-1: none), Type; RegionBegin/RegionEnd: Task,
        Type; Log: Task, Category, Message; StateTransition, StackSample: nothing."""
    kind: str
    time: int
    m: int
    p: int
    g: int
    stack: tuple
    resource: Optional[str] = None
    id: Optional[int] = None
    from_state: Optional[str] = None
    to_state: Optional[str] = None
    reason: Optional[str] = None
    transition_stack: tuple = ()
    attrs: dict = field(default_factory=dict)
