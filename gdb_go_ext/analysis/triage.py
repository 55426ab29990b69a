"""Filtering, grouping and bucketing of decoded goroutines (pure; shared by every front door)."""
from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..errors import UsageError
from ..runtime.goroutines import BlockedOn, Goroutine, Location

KINDS = ("curloc", "userloc", "goloc", "startloc", "label", "waitreason")
GROUP_KINDS = KINDS + ("status",)


def _loc_text(loc: Optional[Location]) -> str:
    return loc.text() if loc else ""


def kind_value(g: Goroutine, kind: str) -> str:
    if kind == "curloc":
        return _loc_text(g.current)
    if kind == "userloc":
        return _loc_text(g.user)
    if kind == "goloc":
        return _loc_text(g.created_by)
    if kind == "startloc":
        return _loc_text(g.start)
    if kind == "label":
        return " ".join(f"{k}={v}" for k, v in sorted(g.labels.items()))
    if kind == "waitreason":
        return g.wait_reason
    if kind == "status":
        return g.status
    raise UsageError(f"unknown kind {kind!r}; one of {', '.join(GROUP_KINDS)}")


def status_matches(g: Goroutine, status: str) -> bool:
    s = status.lower()
    return g.status.lower() == s or (s == "waiting" and g.status_code == 4) or \
        (g.wait_reason and g.wait_reason.lower() == s)


def label_matches(g: Goroutine, spec: str) -> bool:
    if "=" in spec:
        k, v = spec.split("=", 1)
        return g.labels.get(k) == v
    return spec in g.labels


def check_kinds(with_=(), without=(), group: Optional[str] = None) -> None:
    """Reject unknown KIND words before any work is done."""
    for kind, _ in list(with_) + list(without):
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if group is not None and group not in GROUP_KINDS:
        raise UsageError(f"unknown group kind {group!r}; one of {', '.join(GROUP_KINDS)}")


def apply_filters(gs: Iterable[Goroutine], status: Optional[str] = None,
                  with_: Iterable[tuple[str, str]] = (), without: Iterable[tuple[str, str]] = (),
                  labels: Iterable[str] = ()) -> list[Goroutine]:
    with_ = list(with_)
    without = list(without)
    labels = list(labels)
    if not (status or with_ or without or labels):
        return list(gs)
    for kind, _ in with_ + without:
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    out = []
    for g in gs:
        if status and not status_matches(g, status):
            continue
        if any(sub not in kind_value(g, k) for k, sub in with_):
            continue
        if any(sub in kind_value(g, k) for k, sub in without):
            continue
        if any(not label_matches(g, spec) for spec in labels):
            continue
        out.append(g)
    return out


@dataclass
class Group:
    key: str
    goroutines: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.goroutines)


def group_by(gs: Iterable[Goroutine], kind: str) -> list[Group]:
    if kind not in GROUP_KINDS:
        raise UsageError(f"unknown group kind {kind!r}; one of {', '.join(GROUP_KINDS)}")
    groups: dict[str, Group] = {}
    for g in gs:
        key = kind_value(g, kind)
        grp = groups.get(key)
        if grp is None:
            grp = groups[key] = Group(key)
        grp.goroutines.append(g)
    return sorted(groups.values(), key=lambda x: (-x.count, x.key))


_STATUS = operator.attrgetter("status")
_BLOCKED_ON = operator.attrgetter("blocked_on")
_WAIT_REASON = operator.attrgetter("wait_reason")


def summary(gs: list[Goroutine]) -> dict:
    by_status = Counter(map(_STATUS, gs))
    by_reason = Counter(map(_WAIT_REASON, gs))
    by_reason.pop("", None)
    return {"total": len(gs), "by_status": dict(by_status.most_common()),
            "by_wait_reason": dict(by_reason.most_common())}


@dataclass
class Bucket:
    status: str
    wait_reason: str
    frames: tuple                  # the shared stack (StackFrame), once
    goroutines: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.goroutines)

    @property
    def has_user_code(self) -> bool:
        return any(f.user for f in self.frames)

    def wait_range(self) -> Optional[tuple[int, int]]:
        mins = [g.wait_minutes for g in self.goroutines if g.wait_minutes is not None]
        return (min(mins), max(mins)) if mins else None

    def created_by(self) -> list[tuple[str, int]]:
        c = Counter(_loc_text(g.created_by) for g in self.goroutines if g.created_by)
        return c.most_common(3)

    def label_summary(self) -> list[tuple[str, int]]:
        c = Counter(f"{k}={v}" for g in self.goroutines for k, v in sorted(g.labels.items()))
        return c.most_common(5)

    def blocked_on(self) -> list[tuple[BlockedOn, int]]:
        """The three objects most of its goroutines are blocked on, with their counts."""
        return Counter(filter(None, map(_BLOCKED_ON, self.goroutines))).most_common(3)


def bucket(gs: Iterable[Goroutine], similar: bool = False) -> list[Bucket]:
    """Goroutines with the same stack and wait reason, in one pass (hashing, not pairwise)."""
    buckets: dict = {}
    for g in gs:
        frames = tuple(g.stack or ())
        if similar:
            shape = tuple((f.function, f.file) for f in frames)
        else:
            shape = tuple((f.function, f.file, f.line) for f in frames)
        key = (g.status, g.wait_reason, shape)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = Bucket(g.status, g.wait_reason, frames)
        b.goroutines.append(g)
    return sorted(buckets.values(), key=lambda b: (not b.has_user_code, -b.count, b.wait_reason))
