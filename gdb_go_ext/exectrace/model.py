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
    """One event as `go tool trace -d=parsed` prints it."""
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
