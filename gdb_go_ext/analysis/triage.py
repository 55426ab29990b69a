"""Filtering, grouping and bucketing of decoded goroutines (pure; shared by every front door)."""
from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..errors import UsageError
from ..runtime.goroutines import BlockedOn, Goroutine, Location

try:
    import numpy as np
    from ..runtime.gtable import SHARED
except ImportError:  # pragma: no cover (no columnar walks then)
    np = None
    SHARED = ()

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


def check_status(status: str, statuses: Iterable[str], wait_reasons: Iterable[str]) -> None:
    """Reject a -s STATUS that no goroutine of this Go version can have: not one of
    its statuses (runtime.gStatusStrings), "waiting", nor one of its wait reasons
    (runtime.waitReasonStrings); the closest known one is suggested. Without a wait
    reason table (a binary that has none) anything goes."""
    import difflib
    reasons = [r for r in wait_reasons if r]
    if not status or not reasons:
        return
    known = dict.fromkeys([s.lower() for s in statuses if s] + ["waiting"]
                          + [r.lower() for r in reasons])
    s = status.lower()
    if s in known:
        return
    close = difflib.get_close_matches(s, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else \
        "; a status (runnable, running, syscall, waiting, ...) or a wait reason (chan receive, ...)"
    raise UsageError(f"-s: {status!r} is no goroutine status or wait reason of this Go version"
                     + hint)


def check_wait_substring(flag: str, sub: str, wait_reasons: Iterable[str]) -> None:
    """Reject -with/-without waitreason SUBSTR that no wait reason of this Go version
    contains (runtime.waitReasonStrings): a filter that can match nothing is a typo."""
    import difflib
    reasons = [r for r in wait_reasons if r]
    if not reasons or any(sub in r for r in reasons):
        return
    close = difflib.get_close_matches(sub, reasons, n=1, cutoff=0.6)
    raise UsageError(f"{flag} waitreason: no wait reason of this Go version contains {sub!r}"
                     + (f"; did you mean {close[0]!r}?" if close else ""))


def apply_filters(gs: Iterable[Goroutine], status: Optional[str] = None,
                  with_: Iterable[tuple[str, str]] = (), without: Iterable[tuple[str, str]] = (),
                  labels: Iterable[str] = ()) -> list[Goroutine]:
    with_ = list(with_)
    without = list(without)
    labels = list(labels)
    if not (status or with_ or without or labels):
        return gs if is_table(gs) else list(gs)
    for kind, _ in with_ + without:
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if is_table(gs):
        return _table_filter(gs, status, with_, without, labels)
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

    def ids(self) -> list:
        return [g.id for g in self.goroutines]


def group_by(gs: Iterable[Goroutine], kind: str) -> list[Group]:
    if kind not in GROUP_KINDS:
        raise UsageError(f"unknown group kind {kind!r}; one of {', '.join(GROUP_KINDS)}")
    if is_table(gs):
        return _table_group_by(gs, kind)
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
    if is_table(gs):
        return _table_summary(gs)
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

    def ids(self, n: Optional[int] = None) -> list:
        return [g.id for g in (self.goroutines if n is None else self.goroutines[:n])]

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
    if is_table(gs):
        return _table_bucket(gs, similar)
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


# ---------------------------------------------------------------------------
# the same over a columnar walk (runtime/gtable.py): per shape and per label set, not
# per goroutine; results equal, item for item and in order, to the functions above
# ---------------------------------------------------------------------------
def is_table(gs) -> bool:
    return getattr(gs, "shapes", None) is not None and hasattr(gs, "base")


class _Shared:
    """What the goroutines of one shape share, as the attributes kind_value and
    status_matches read (labels: a label set's)."""
    __slots__ = SHARED + ("labels",)

    def __init__(self, shared: tuple, labels: Optional[dict] = None):
        for k, v in zip(SHARED, shared):
            setattr(self, k, v)
        self.labels = labels if labels is not None else {}


def _label_sets(t) -> list:
    """The table's label sets, with {} (no labels) first: index label_idx + 1."""
    return [{}] + list(t.base.label_sets)


def _table_filter(t, status, with_, without, labels):
    shared = [_Shared(s) for s in t.shapes]
    shape_conds = [(k, sub, True) for k, sub in with_ if k != "label"] + \
        [(k, sub, False) for k, sub in without if k != "label"]
    ok_shape = np.array([
        (not status or status_matches(s, status)) and
        all((sub in kind_value(s, k)) == want for k, sub, want in shape_conds)
        for s in shared] or [True], dtype=bool)
    mask = ok_shape[t.shapes_of()]
    label_conds = [(sub, True) for k, sub in with_ if k == "label"] + \
        [(sub, False) for k, sub in without if k == "label"]
    if label_conds or labels:
        holder = _Shared(t.shapes[0] if t.shapes else (None,) * len(SHARED))
        ok_label = []
        for ls in _label_sets(t):
            holder.labels = ls
            ok_label.append(all((sub in kind_value(holder, "label")) == want
                                for sub, want in label_conds) and
                            all(label_matches(holder, spec) for spec in labels))
        mask &= np.array(ok_label, dtype=bool)[t.label_idx_of() + 1]
    return t.select(t.base_rows()[mask])


class _TableRows:
    """Rows of a columnar walk (base rows, in walk order): their goroutines made on demand."""

    def __init__(self, table, rows):
        self._table = table
        self._rows = rows

    @property
    def count(self) -> int:
        return len(self._rows)

    @property
    def goroutines(self):
        return self._table.select(self._rows)

    def ids(self, n: Optional[int] = None) -> list:
        rows = self._rows if n is None else self._rows[:n]
        return self._table.base.cols["goid"][rows].tolist()


class TableGroup(_TableRows):
    """A Group of a columnar walk."""

    def __init__(self, key: str, table, rows):
        super().__init__(table, rows)
        self.key = key


def _keyed(t, key_of_shape, key_of_labels=None) -> tuple:
    """(keys in order of first row, per row of t the index of its key)."""
    if key_of_labels is not None:
        per = [key_of_labels(ls) for ls in _label_sets(t)]
        src = t.label_idx_of() + 1
    else:
        per = [key_of_shape(s) for s in t.shapes]
        src = t.shapes_of()
    if not len(src):
        return [], np.zeros(0, np.int64)
    u, first = np.unique(src, return_index=True)
    order = np.argsort(first, kind="stable")
    keys: dict = {}
    ids = np.zeros(max(len(per), 1), dtype=np.int64)
    for j in order.tolist():
        k = per[int(u[j])]
        ids[int(u[j])] = keys.setdefault(k, len(keys))
    return list(keys), ids[src]


def _table_group_by(t, kind: str) -> list:
    if kind == "label":
        keys, codes = _keyed(t, None, lambda ls: " ".join(f"{k}={v}" for k, v in sorted(ls.items())))
    else:
        keys, codes = _keyed(t, lambda s: kind_value(_Shared(s), kind))
    from ..runtime.gtable import groups_of
    rows = t.base_rows()
    groups = [TableGroup(k, t, rows[m]) for k, m in zip(keys, groups_of(codes, len(keys)))]
    return sorted(groups, key=lambda x: (-x.count, x.key))


def _counted(pairs) -> list:
    """(key, count) pairs in order of first occurrence, summed by key, most first
    (Counter.most_common's order)."""
    c: dict = {}
    for k, n in pairs:
        c[k] = c.get(k, 0) + n
    return sorted(c.items(), key=operator.itemgetter(1), reverse=True)


def _table_summary(t) -> dict:
    u, counts, _ = t.shape_counts()
    shapes = t.shapes
    by_status = _counted((shapes[s][1], n) for s, n in zip(u.tolist(), counts.tolist()))
    by_reason = [(k, n) for k, n in _counted((shapes[s][3], n) for s, n in
                                              zip(u.tolist(), counts.tolist())) if k != ""]
    return {"total": len(t), "by_status": dict(by_status), "by_wait_reason": dict(by_reason)}


class TableBucket(_TableRows):
    """A Bucket of a columnar walk (same attributes and methods)."""

    def __init__(self, table, status: str, wait_reason: str, frames: tuple, rows):
        self.status = status
        self.wait_reason = wait_reason
        self.frames = frames
        super().__init__(table, rows)

    @property
    def has_user_code(self) -> bool:
        return any(f.user for f in self.frames)

    def wait_range(self) -> Optional[tuple[int, int]]:
        m = self._table.minutes[self._rows]
        m = m[m >= 0]
        return (int(m.min()), int(m.max())) if len(m) else None

    def _per(self, col) -> tuple:
        """(values, counts) of col over the bucket's rows, in order of first row."""
        v = col[self._rows]
        u, first, counts = np.unique(v, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return u[order].tolist(), counts[order].tolist()

    def created_by(self) -> list[tuple[str, int]]:
        shapes = self._table.shapes
        u, counts = self._per(self._table.shape_idx)
        return _counted((_loc_text(shapes[s][5]), n) for s, n in zip(u, counts)
                        if shapes[s][5])[:3]

    def label_summary(self) -> list[tuple[str, int]]:
        li = self._table.base.label_idx
        if li is None:
            return []
        sets = self._table.base.label_sets
        u, counts = self._per(li)
        return _counted((f"{k}={v}", n) for i, n in zip(u, counts) if i >= 0
                        for k, v in sorted(sets[i].items()))[:5]

    def blocked_on(self) -> list[tuple[BlockedOn, int]]:
        bi = self._table.base.blocked_idx
        if bi is None:
            return []
        blocked = self._table.base.blocked
        # the three most common, ties in order of first row (_counted's order), without
        # a Python step per distinct object (a quarter million at 1M goroutines)
        u, first, counts = np.unique(bi[self._rows], return_index=True, return_counts=True)
        some = u >= 0
        u, first, counts = u[some], first[some], counts[some]
        top = np.lexsort((first, -counts))[:3]
        return [(blocked[int(u[j])], int(counts[j])) for j in top.tolist()]


def _table_bucket(t, similar: bool) -> list:
    def key(s):
        frames = tuple(s[8] or ())
        shape = tuple((f.function, f.file) for f in frames) if similar else \
            tuple((f.function, f.file, f.line) for f in frames)
        return (s[1], s[3], shape)
    keys, codes = _keyed(t, key)
    firsts: dict = {}
    u, first = np.unique(t.shapes_of(), return_index=True) if len(t) else ([], [])
    for s, f in sorted(zip(list(u), list(first)), key=operator.itemgetter(1)):
        firsts.setdefault(key(t.shapes[int(s)]), t.shapes[int(s)])
    from ..runtime.gtable import groups_of
    rows = t.base_rows()
    out = []
    for k, m in zip(keys, groups_of(codes, len(keys))):
        s = firsts[k]
        out.append(TableBucket(t, s[1], s[3], tuple(s[8] or ()), rows[m]))
    return sorted(out, key=lambda b: (not b.has_user_code, -b.count, b.wait_reason))
