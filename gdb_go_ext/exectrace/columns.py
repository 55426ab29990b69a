"""A run of events as columns (numpy arrays), in the reader's order: what the bulk reader
gives per generation and what column summaries read. The event's record (Event's fields in
its order) is built only on demand, by Block.record(i).

Codes: kind indexes KINDS, res indexes RESOURCES, frm/to index STATES, reason indexes
the block's reasons list (-1: None, the reason of an event that is not a transition).
"""
from __future__ import annotations

from operator import itemgetter
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

KINDS = ("StateTransition", "StackSample", "Metric", "RangeBegin", "RangeEnd", "RangeActive",
         "Label", "TaskBegin", "TaskEnd", "RegionBegin", "RegionEnd", "Log", "Sync", "Bad")
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
RESOURCES = (None, "Goroutine", "Proc")
RES_CODE = {r: i for i, r in enumerate(RESOURCES)}
STATES = (None, "Undetermined", "NotExist", "Runnable", "Running", "Waiting", "Syscall", "Idle")
STATE_CODE = {s: i for i, s in enumerate(STATES)}
ST_TRANSITION = KIND_CODE["StateTransition"]
RES_G, RES_P = RES_CODE["Goroutine"], RES_CODE["Proc"]


class Block:
    """n events in order. Columns (each an array of n): t (int64, Event.time), kind (int8),
    m, p, g (int64), res (int8), rid (int64, 0 where res is None), frm, to (int8),
    reason (int32 into .reasons, -1 for None). .record(i) is event i's record."""
    __slots__ = ("t", "kind", "m", "p", "g", "res", "rid", "frm", "to", "reason", "reasons",
                 "_record", "_rows", "_many")

    def __init__(self, t, kind, m, p, g, res, rid, frm, to, reason, reasons: Sequence[str],
                 record: Optional[Callable[[int], tuple]] = None, rows=None,
                 many: Optional[Callable[[], Iterator[tuple]]] = None):
        self.t, self.kind, self.m, self.p, self.g = t, kind, m, p, g
        self.res, self.rid, self.frm, self.to, self.reason = res, rid, frm, to, reason
        self.reasons = reasons
        self._record = record
        self._rows = rows
        self._many = many

    def __len__(self) -> int:
        return len(self.t)

    def record(self, i: int) -> tuple:
        """Event i's record: (kind, time, m, p, g, stack, resource, id, from_state,
        to_state, reason, transition_stack, attrs)."""
        if self._rows is not None:
            return self._rows[i]
        return self._record(int(i))

    def records(self) -> Iterator[tuple]:
        if self._rows is not None:
            return iter(self._rows)
        if self._many is not None:
            return self._many()
        return map(self._record, range(len(self.t)))

    @classmethod
    def from_records(cls, rows: list) -> "Block":
        """A block of records as they are (what the step-by-step reader made)."""
        n = len(rows)
        if not n:
            z = np.zeros(0, dtype=np.int64)
            e = np.zeros(0, dtype=np.int8)
            return cls(z, e, z, z, z, e, z, e, e, np.zeros(0, dtype=np.int32), [], rows=rows)
        def col(k):
            return map(itemgetter(k), rows)

        def ints(k):
            return np.fromiter(col(k), dtype=np.int64, count=n)

        def codes(k, table, dtype):
            return np.fromiter(map(table.__getitem__, col(k)), dtype=dtype, count=n)
        found = set(col(10))
        found.discard(None)
        reasons = sorted(found)
        rcode = {r: k for k, r in enumerate(reasons)}
        rcode[None] = -1
        rid = np.array(list(col(7)), dtype=object)
        rid[rid == None] = 0        # noqa: E711 (an element-wise test)
        return cls(ints(1), codes(0, KIND_CODE, np.int8), ints(2), ints(3), ints(4),
                   codes(6, RES_CODE, np.int8), rid.astype(np.int64),
                   codes(8, STATE_CODE, np.int8), codes(9, STATE_CODE, np.int8),
                   codes(10, rcode, np.int32), reasons, rows=rows)
