"""Filtering, grouping and bucketing of a walk's goroutines (pure; shared by every front
door). Each works over the walk's GoroutineTable (runtime/gtable.py) per shape and per
label set, not per goroutine: a filter or a group is decided once for the goroutines
that share a shape (status, wait reason, locations, stack) or a label set, and applied
to their rows as arrays; a Group or Bucket holds rows, their goroutines made on demand."""
from __future__ import annotations

import operator
from typing import Iterable, Optional

import numpy as np

from ..errors import UsageError
from ..runtime.goroutines import BlockedOn, Goroutine, Location
from ..runtime.gtable import SHARED, GoroutineTable, groups_of

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


def apply_filters(gs: GoroutineTable, status: Optional[str] = None,
                  with_: Iterable[tuple[str, str]] = (), without: Iterable[tuple[str, str]] = (),
                  labels: Iterable[str] = ()) -> GoroutineTable:
    """The goroutines of gs with status (a status name, "waiting" or a wait reason), each
    KIND of with_ containing its SUBSTR, none of without's, and every label of labels
    (KEY or KEY=VALUE), in walk order."""
    with_ = list(with_)
    without = list(without)
    labels = list(labels)
    if not (status or with_ or without or labels):
        return gs
    for kind, _ in with_ + without:
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    return _filtered(gs, status, with_, without, labels)


def group_by(gs: GoroutineTable, kind: str) -> list:
    """Groups of gs by the text of KIND, most goroutines first, then by key."""
    if kind not in GROUP_KINDS:
        raise UsageError(f"unknown group kind {kind!r}; one of {', '.join(GROUP_KINDS)}")
    if kind == "label":
        keys, codes = _keyed(gs, None, lambda ls: " ".join(f"{k}={v}" for k, v in sorted(ls.items())))
    else:
        keys, codes = _keyed(gs, lambda s: kind_value(_Shared(s), kind))
    rows = gs.base_rows()
    groups = [Group(k, gs, rows[m]) for k, m in zip(keys, groups_of(codes, len(keys)))]
    return sorted(groups, key=lambda x: (-x.count, x.key))


def summary(gs: GoroutineTable) -> dict:
    """{"total", "by_status", "by_wait_reason"}: counts, most first (ties in order of
    first goroutine)."""
    u, counts, _ = gs.shape_counts()
    shapes = gs.shapes
    by_status = _counted((shapes[s][1], n) for s, n in zip(u.tolist(), counts.tolist()))
    by_reason = [(k, n) for k, n in _counted((shapes[s][3], n) for s, n in
                                              zip(u.tolist(), counts.tolist())) if k != ""]
    return {"total": len(gs), "by_status": dict(by_status), "by_wait_reason": dict(by_reason)}


def bucket(gs: GoroutineTable, similar: bool = False) -> list:
    """Goroutines with the same stack (functions, files and lines; similar: functions and
    files) and wait reason, as Buckets: those with user code first, then most goroutines
    first, then by wait reason. Decided per shape: hashing, not pairwise."""
    def key(s):
        frames = tuple(s[8] or ())
        shape = tuple((f.function, f.file) for f in frames) if similar else \
            tuple((f.function, f.file, f.line) for f in frames)
        return (s[1], s[3], shape)
    keys, codes = _keyed(gs, key)
    firsts: dict = {}
    u, first = np.unique(gs.shapes_of(), return_index=True) if len(gs) else ([], [])
    for s, f in sorted(zip(list(u), list(first)), key=operator.itemgetter(1)):
        firsts.setdefault(key(gs.shapes[int(s)]), gs.shapes[int(s)])
    rows = gs.base_rows()
    out = []
    for k, m in zip(keys, groups_of(codes, len(keys))):
        s = firsts[k]
        out.append(Bucket(gs, s[1], s[3], tuple(s[8] or ()), rows[m]))
    return sorted(out, key=lambda b: (not b.has_user_code, -b.count, b.wait_reason))


# ---------------------------------------------------------------------------
# per shape and per label set
# ---------------------------------------------------------------------------
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


def _filtered(t, status, with_, without, labels):
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


class _Rows:
    """Rows of a walk's table (base rows, in walk order): their goroutines made on demand."""

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


class Group(_Rows):
    """The goroutines of one key of group_by."""

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


def _counted(pairs) -> list:
    """(key, count) pairs in order of first occurrence, summed by key, most first
    (Counter.most_common's order)."""
    c: dict = {}
    for k, n in pairs:
        c[k] = c.get(k, 0) + n
    return sorted(c.items(), key=operator.itemgetter(1), reverse=True)


class Bucket(_Rows):
    """The goroutines of one stack and wait reason (bucket): the stack once (frames),
    their wait minutes' range, creators, labels and what they are blocked on, most
    common first."""

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
