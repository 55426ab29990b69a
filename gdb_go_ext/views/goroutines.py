"""Goroutine views: the table, the stacks buckets, a backtrace, and their JSON.

The argument specs live here too, so gdb and delve-bridge take the same flags.
"""
from __future__ import annotations

import argparse
from typing import Optional

import numpy as np

from ..analysis import triage
from ..runtime.goroutines import BlockedOn, Goroutine
from ..runtime.gtable import GoroutineTable, factorize
from .registry import View, count, register

# ANSI colours for the plain-text renderers (rich is too slow for 100k rows)
_C = {"id": "\x1b[1m", "status": "\x1b[33m", "loc": "\x1b[36m", "dim": "\x1b[2m",
      "head": "\x1b[1;4m", "reset": "\x1b[0m"}


def _c(text: str, key: str, color: bool) -> str:
    return f"{_C[key]}{text}{_C['reset']}" if color and text else text


def add_goroutines_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", dest="all", action="store_true", help="include dead goroutines")
    p.add_argument("-s", dest="status", metavar="STATUS", help="only this status (or wait reason)")
    p.add_argument("-with", dest="with_", nargs=2, action="append", default=[],
                   metavar=("KIND", "SUBSTR"),
                   help="keep goroutines whose KIND contains SUBSTR; KIND: " + "|".join(triage.KINDS))
    p.add_argument("-without", dest="without", nargs=2, action="append", default=[],
                   metavar=("KIND", "SUBSTR"), help="drop goroutines whose KIND contains SUBSTR")
    p.add_argument("-label", dest="labels", action="append", default=[], metavar="KEY[=VALUE]",
                   help="only goroutines with this pprof label")
    p.add_argument("-group", dest="group", metavar="KIND",
                   help="group by KIND (" + "|".join(triage.GROUP_KINDS) + ")")
    p.add_argument("-t", dest="depth", type=count, default=0, metavar="DEPTH",
                   help="show stacks, up to DEPTH frames (only what is printed: filters, "
                        "groups and locations use whole stacks)")
    p.add_argument("-l", dest="show_labels", action="store_true", help="show labels")
    p.add_argument("--json", action="store_true", help="machine-readable output (docs/json.md)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")
    p.add_argument("--limit", type=count, default=None, metavar="N",
                   help="show at most N goroutines (default and 0: all; --retained: default 20)")


def add_stacks_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min", type=count, default=1, metavar="N", help="hide buckets smaller than N")
    p.add_argument("--similar", action="store_true", help="ignore line numbers when bucketing")
    p.add_argument("-t", dest="depth", type=count, default=64, metavar="DEPTH",
                   help="frames printed per stack (default 64; 0: all); buckets are made "
                        "from whole stacks")
    p.add_argument("--json", action="store_true", help="machine-readable output (docs/json.md)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def check_goroutines_args(args: argparse.Namespace, layout=None) -> None:
    """Reject bad `goroutines` flags (add_goroutines_args) before any walk: unknown
    kinds, and (with the binary's layout) a -s that is no status or wait reason of
    this Go version."""
    triage.check_kinds(args.with_, args.without, args.group)
    if layout is not None:
        if args.status:
            triage.check_status(args.status, known_statuses(layout), layout.wait_reasons)
        for flag, pairs in (("-with", args.with_), ("-without", args.without)):
            for kind, sub in pairs:
                if kind == "waitreason":
                    triage.check_wait_substring(flag, sub, layout.wait_reasons)


def known_statuses(layout) -> list:
    """The status names goroutines of this binary can show (runtime.gStatusStrings,
    and the names the walk falls back on)."""
    from ..runtime.layout import FALLBACK_NAMES
    return [n for n in layout.status.names if n] + list(FALLBACK_NAMES.values()) + \
        ["unreadable"]


def goroutines_view(go_version: str, gs: GoroutineTable, errors: list[str],
                    clock: Optional[str], args: argparse.Namespace, color: bool,
                    width: int) -> list[str]:
    """The `goroutines` view of gdb and delve-bridge from a walk's goroutines and the
    flags (add_goroutines_args): filtered and limited, as JSON, groups or the table,
    then the summary, the --limit note and the walk's warnings; as pieces that join
    to the text."""
    gs = triage.apply_filters(gs, args.status, args.with_, args.without, args.labels)
    shown = gs[: args.limit] if args.limit else gs
    groups = triage.group_by(gs, args.group) if args.group else None
    if args.json:
        return goroutines_json_pieces(go_version, shown, errors, bool(args.depth), clock,
                                      groups, args.group, depth=args.depth or None,
                                      summary_of=gs)
    if groups is not None:
        pieces = [groups_text(groups, args.group, color)]
    else:
        pieces = table_pieces(shown, args.show_labels, args.depth, color, width)
    pieces.append(summary_line(gs))
    if args.limit and len(gs) > args.limit:
        pieces.append(f"(showing {args.limit} of {len(gs)}; --limit 0 for all)\n")
    pieces += [f"warning: {e}\n" for e in errors]
    return pieces


def _loc(loc) -> str:
    return f"{loc.function} {_short(loc.file)}:{loc.line}" if loc else ""


def _short(path: str) -> str:
    parts = path.rsplit("/", 2)
    return "/".join(parts[-2:]) if len(parts) > 2 else path


def _created(g: Goroutine) -> str:
    if not g.created_by:
        return ""
    s = _loc(g.created_by)
    return s + (f" in goroutine {g.parent_id}" if g.parent_id else "")


def _fit(s: str, w: int) -> str:
    if len(s) > w:
        return s[: max(0, w - 1)] + "…"
    return s


def _table_layout(gs, show_labels: bool, color: bool, width: int, max_id: int) -> tuple:
    """(header line, each goroutine's tail key, {tail key: its text}, id width) of the
    table of gs, whose ids go up to max_id (widths follow the distinct tails)."""
    cols = ["", "id", "status", "wait", "user location", "created by"]
    if show_labels:
        cols.append("labels")
    loc_text: dict = {}

    def loc(l):
        if l is None:
            return ""
        t = loc_text.get(l)
        if t is None:
            t = loc_text[l] = _loc(l)
        return t

    tails: dict = {}      # tail tuple -> formatted text (filled once widths are known)
    by_key: dict = {}     # identity of a goroutine's shared parts -> its tail tuple
    row_tails = []        # each goroutine's tail tuple, in order
    append = row_tails.append
    for g in gs:
        if g.scan or g.thread or g.locked_to_thread or g.error or (show_labels and g.labels):
            k = None
            tail = None
        else:
            k = (g.status, g.user or g.current, g.created_by, g.parent_id, g.wait_reason,
                 g.wait_minutes)   # (Locations hash by identity)
            tail = by_key.get(k)
        if tail is None:
            status = g.status
            if g.scan:
                status += "+scan"
            if g.thread:
                status += f" (LWP {g.thread})"
            if g.locked_to_thread:
                status += " locked"
            where = loc(g.user) or loc(g.current)
            if g.error:
                where = (where + "  " if where else "") + f"[error: {g.error}]"
            created = loc(g.created_by) if g.created_by is not None else ""
            if created and g.parent_id:
                created += f" in goroutine {g.parent_id}"
            wait = g.wait_reason
            if g.wait_minutes:  # (a syscall has minutes and no reason)
                wait = f"{wait}, {g.wait_minutes} minutes" if wait else f"{g.wait_minutes} minutes"
            tail = (status, wait, where, created)
            if show_labels:
                tail += (",".join(f"{k}={v}" for k, v in sorted(g.labels.items())) if g.labels else "",)
            if k is not None:
                by_key[k] = tail
            tails[tail] = None
        append(tail)
    caps = [1, 12, 24, 36, 60, 60, 40]
    widths = [1, max(2, len(str(max_id)))]
    for i in range(2, len(cols)):
        longest = max((len(t[i - 2]) for t in tails), default=0)
        widths.append(min(caps[i], max(len(cols[i]), longest)))
    # keep within the terminal: shrink the widest columns first
    while sum(widths) + 2 * len(widths) > width and max(widths) > 16:
        widths[widths.index(max(widths))] -= 1
    head = "  ".join(_fit(c, widths[i]).ljust(widths[i]) for i, c in enumerate(cols)).rstrip()
    keys = [None, None, "status", None, "loc", None, None]
    for t in tails:
        cells = []
        for i, v in enumerate(t, start=2):
            txt = _fit(v, widths[i]).ljust(widths[i])
            cells.append(_c(txt, keys[i], color) if keys[i] else txt)
        tails[t] = "  ".join(cells).rstrip()
    return head, row_tails, tails, widths[1]


def _stack_text(g, depth: int, color: bool) -> str:
    return "".join(f"      {_c(f.function, 'loc', color)}{' (inlined)' if f.inlined else ''}\n"
                   f"          {f.file}:{f.line}\n" for f in (g.stack or ())[:depth])


def table_pieces(gs, show_labels: bool, depth: int, color: bool, width: int) -> list[str]:
    """The goroutine table of a walk's table gs as pieces that join to its text, in
    blocks of lines: a 100k-row table is written out block by block, never built as one
    string. Everything but the id repeats across leaked goroutines: rows that share
    their shape, minutes, locking, parent (and labels, when shown) share a row text,
    made once from the first of them; rows off the fast path and those with a label
    error have their own. No row becomes an object but those."""
    n = len(gs)
    if not n:
        head, _, _, _ = _table_layout([], show_labels, color, width, 0)
        return [_c(head, "head", color) + "\n"]
    t = gs
    b = t.base
    rows = t.base_rows()
    keyed = [t.shapes_of(), t.minutes_of().astype(np.uint64), t.col("lockedm") != 0,
             t.col("parent")]
    if show_labels:
        keyed.append(t.label_idx_of().astype(np.uint64))
    codes, firsts = factorize(keyed)
    reps = [t.row(int(rows[f])) for f in firsts.tolist()]
    own_rows = list(t.specials) + list(b.label_errs)
    if own_rows:
        own = np.flatnonzero(np.isin(rows, np.array(own_rows, dtype=np.int64)))
        if len(own):
            codes = codes.copy()
            for p in own.tolist():
                codes[p] = len(reps)
                reps.append(t.row(int(rows[p])))
    ids = t.col("goid")
    head, rep_tails, tails, wid = _table_layout(reps, show_labels, color, width, int(ids.max()))
    if depth and any(g.stack is not None for g in reps):
        texts = [tails[k] + "\n" + _stack_text(g, depth, color) for g, k in zip(reps, rep_tails)]
    else:
        texts = [tails[k] + "\n" for k in rep_tails]
    fmt = f"   {_C['id']}%-{wid}d{_C['reset']}  " if color else f"   %-{wid}d  "
    cur = -1
    if b.current_row >= 0:
        hit = np.flatnonzero(rows == b.current_row)
        cur = int(hit[0]) if len(hit) else -1
    pieces = [_c(head, "head", color) + "\n"]
    idl, codel = ids.tolist(), codes.tolist()
    step = 1 << 13
    for lo in range(0, n, step):   # a row is two pieces; a block is joined once
        hi = min(n, lo + step)
        p = [None] * (2 * (hi - lo))
        p[0::2] = map(fmt.__mod__, idl[lo:hi])
        p[1::2] = map(texts.__getitem__, codel[lo:hi])
        if lo <= cur < hi:
            p[2 * (cur - lo)] = "*" + p[2 * (cur - lo)][1:]
        pieces.append("".join(p))
    return pieces


def summary_line(gs: GoroutineTable) -> str:
    s = triage.summary(gs)
    parts = [f"{n} {st}" for st, n in s["by_status"].items()]
    line = f"{s['total']} goroutines: " + ", ".join(parts)
    if s["by_wait_reason"]:
        line += "; waiting on: " + ", ".join(f"{r} {n}" for r, n in s["by_wait_reason"].items())
    return line + "\n"


def groups_text(groups: list[triage.Group], kind: str, color: bool) -> str:
    lines = []
    for grp in groups:
        ids = ", ".join(str(g.id) for g in grp.goroutines[:5])
        more = ", …" if grp.count > 5 else ""
        lines.append(f"{_c(str(grp.count).rjust(7), 'id', color)}  {kind}: "
                     f"{_c(grp.key or '(none)', 'loc', color)}  [{ids}{more}]")
    return "\n".join(lines) + "\n"


def blocked_on_text(on: BlockedOn) -> str:
    """"channel 0x…" (a chan send or receive; a select's channels, comma-separated) or
    "semaphore 0x…"."""
    return ("semaphore " if on.kind == "sema" else "channel ") + ", ".join(map(hex, on.addrs))


def goroutine_json(g: Goroutine, with_stack: bool, depth: Optional[int] = None) -> dict:
    """One goroutine's object of docs/json.md; its stack (with_stack) cut at depth
    frames where given (what is printed only: the rest comes from the whole stack)."""
    d = {
        "id": g.id, "addr": f"{g.addr:#x}", "status": g.status,
        "wait_reason": g.wait_reason, "wait_minutes": g.wait_minutes,
        "locked_to_thread": g.locked_to_thread, "labels": g.labels,
        "thread": g.thread, "m": g.m_id, "parent_id": g.parent_id,
        "created_by": g.created_by.to_json() if g.created_by else None,
        "current": g.current.to_json() if g.current else None,
        "user": g.user.to_json() if g.user else None,
        "start": g.start.to_json() if g.start else None,
        "blocked_on": blocked_on_text(g.blocked_on) if g.blocked_on else None,
        "is_current": g.is_current,
        "error": g.error,
    }
    if with_stack:
        d["stack"] = [f.to_json() for f in (g.stack or [])[:depth]]
    return d


def goroutines_json(go_version: str, gs, errors: list[str], with_stack: bool,
                    clock: Optional[str] = None, groups=None, group_kind=None,
                    depth: Optional[int] = None) -> dict:
    """The `goroutines --json` document of a walk's table gs, goroutine by goroutine
    (goroutines_json_pieces writes the same text fast)."""
    return _json_doc(go_version, [goroutine_json(g, with_stack, depth) for g in gs],
                     triage.summary(gs), errors, clock, groups, group_kind)


def _json_doc(go_version: str, goroutines: list, summary: dict, errors: list[str],
              clock: Optional[str], groups, group_kind) -> dict:
    out = {"go_version": go_version, "goroutines": goroutines, "summary": summary,
           "wait_clock": clock, "errors": errors}
    if groups is not None:
        out["groups"] = [{"kind": group_kind, "key": grp.key, "count": grp.count,
                          "ids": grp.ids()} for grp in groups]
    return out


def goroutines_json_pieces(go_version: str, gs, errors: list[str],
                           with_stack: bool, clock: Optional[str] = None, groups=None,
                           group_kind=None, depth: Optional[int] = None, summary_of=None):
    """The same document as goroutines_json, written fast: one goroutine per line, as
    pieces that join to the text (a generator of blocks of lines, so a million
    goroutines are never one string or a million objects).
    Leaked goroutines share their status, locations and frames, so those parts are
    serialised once per distinct combination and pasted into each line. summary_of:
    the goroutines the summary counts, when gs is a --limit's cut of them."""
    import json
    dumps = json.dumps
    head = _json_doc(go_version, [], triage.summary(gs if summary_of is None else summary_of),
                     errors, clock, groups, group_kind)
    del head["goroutines"]
    body = dumps(head, ensure_ascii=False)[:-1] + ', "goroutines": [\n'
    return _table_json_pieces(gs, body, _JsonLines(with_stack, depth))


class _JsonLines:
    """The shared parts of goroutines' JSON lines, each serialised once: a line is
    its own head ("id", "addr"), a middle shared by every goroutine with the same
    parts and labels, its blocked_on text (shared by the goroutines on one channel)
    and an end shared by the parts."""

    def __init__(self, with_stack: bool, depth: Optional[int] = None):
        import json
        self.dumps = json.dumps
        self.with_stack = with_stack
        self.depth = depth   # frames of each stack printed (None: all)
        self.shared: dict = {}   # all but id, addr, labels and blocked_on -> their JSON text
        self.blocked_texts: dict = {}  # BlockedOn -> its JSON text
        self.keep: list = []     # keeps the stacks whose ids are keys alive
        self.label_sets: dict = {}
        self.middles: dict = {}

    def js(self, obj):
        if obj is None:
            return "null"
        return self.dumps(obj.to_json() if hasattr(obj, "to_json") else obj, ensure_ascii=False)

    def quote(self, text: str) -> str:  # "channel 0xc000..." needs no escapes; else may
        return f'"{text}"' if text.isascii() and text.isprintable() and '"' not in text \
            and "\\" not in text else self.dumps(text, ensure_ascii=False)

    def label_json(self, labels: dict) -> str:  # label sets repeat (worker=3)
        k = tuple(labels.items())
        t = self.label_sets.get(k)
        if t is None:
            t = self.label_sets[k] = self.dumps(labels, ensure_ascii=False)
        return t

    def blocked(self, on) -> Optional[str]:
        if on is None:
            return None
        return self.blocked_texts.get(on) or self.blocked_texts.setdefault(
            on, self.quote(blocked_on_text(on)))

    def parts(self, g) -> tuple:
        """(middle, end) of g's line: what follows its "addr" up to "blocked_on": and
        what follows its blocked_on text."""
        js = self.js
        stack = g.stack if self.with_stack else None
        key = (g.status, g.wait_reason, g.wait_minutes, g.locked_to_thread, g.thread, g.m_id,
               g.parent_id, g.created_by, g.current, g.user, g.start, id(stack),
               g.is_current, g.error)
        parts = self.shared.get(key)
        if parts is None:
            self.keep.append(stack)
            before = (f'"status": {js(g.status)}, "wait_reason": {js(g.wait_reason)}, '
                      f'"wait_minutes": {js(g.wait_minutes)}, '
                      f'"locked_to_thread": {"true" if g.locked_to_thread else "false"}')
            after = (f'"thread": {js(g.thread)}, "m": {js(g.m_id)}, "parent_id": {js(g.parent_id)}, '
                     f'"created_by": {js(g.created_by)}, "current": {js(g.current)}, '
                     f'"user": {js(g.user)}, "start": {js(g.start)}')
            end = f'"is_current": {"true" if g.is_current else "false"}, "error": {js(g.error)}'
            if self.with_stack:
                end += ', "stack": [' + ", ".join(js(f) for f in (stack or ())[:self.depth]) + "]"
            parts = self.shared[key] = (before, after, f", {end}}}",
                                        f'{before}, "labels": {{}}, {after}, "blocked_on": ')
        if g.labels:
            labels = self.label_json(g.labels)
            middle = self.middles.get((id(parts), labels))
            if middle is None:
                middle = self.middles[(id(parts), labels)] = (
                    f'{parts[0]}, "labels": {labels}, {parts[1]}, "blocked_on": ')
        else:
            middle = parts[3]  # no labels: the middle made with the parts
        return middle, parts[2]


def _blocked_texts(blocked, line: _JsonLines) -> list:
    """The JSON text of each of a columnar walk's BlockedOn (quote(blocked_on_text)),
    made from its address rows: hex addresses need no escapes."""
    out = []
    for kind, m in blocked.segments:
        head = '"semaphore ' if kind == "sema" else '"channel '
        texts = np.empty(len(m), dtype=object)
        # rows are packed to the left (k addresses, then zeros): the rows of one k at once
        nz = np.count_nonzero(m, axis=1)
        packed = (nz == np.count_nonzero(np.cumprod(m != 0, axis=1), axis=1)) & (nz != 0)
        for k in np.unique(nz[packed]).tolist():
            rows = np.flatnonzero(packed & (nz == k))
            fmt = (head + ", ".join(["0x%x"] * k) + '"').__mod__
            texts[rows] = list(map(fmt, m[rows, 0].tolist() if k == 1 else
                                   zip(*m[rows, :k].T.tolist())))
        for i in np.flatnonzero(~packed).tolist():
            texts[i] = head + ", ".join([hex(a) for a in m[i].tolist() if a]) + '"'
        out += texts.tolist()
    return out


def _table_json_pieces(t, body: str, line: _JsonLines):
    """The goroutine lines of a columnar walk, in blocks: rows that share their shape,
    minutes, locking, parent and labels share a middle and an end, made from the first
    of them; rows off the fast path, the current one and those with a label error
    have their own."""
    yield body
    n = len(t)
    if n:
        b = t.base
        rows = t.base_rows()
        keyed = [t.shapes_of().astype(np.uint64), t.minutes_of().astype(np.uint64),
                 (t.col("lockedm") != 0).astype(np.uint64), t.col("parent").astype(np.uint64),
                 t.label_idx_of().astype(np.uint64)]
        own = np.zeros(n, dtype=bool)
        spec = np.fromiter(t.specials, dtype=np.int64) if t.specials else np.zeros(0, np.int64)
        extra = [r for r in b.label_errs] + ([b.current_row] if b.current_row >= 0 else [])
        if len(spec) or extra:
            own = np.isin(rows, np.concatenate([spec, np.array(extra, dtype=np.int64)]))
        codes, firsts = factorize(keyed)
        mids, ends = [], []
        for f in firsts.tolist():
            m, e = line.parts(t.row(int(rows[f])))
            mids.append(m)
            ends.append(e)
        if own.any():
            codes = codes.copy()
            for p in np.flatnonzero(own).tolist():
                codes[p] = len(mids)
                m, e = line.parts(t.row(int(rows[p])))
                mids.append(m)
                ends.append(e)
        btexts = ["null"] + (_blocked_texts(b.blocked, line) if b.blocked_idx is not None else [])
        bidx = (t.blocked_idx_of() + 1).tolist() if b.blocked_idx is not None else None
        ids = t.col("goid").tolist()
        addrs = t.col("addr").tolist()
        codes = codes.tolist()
        # blocks of about 1.3 MB: warm, reused memory (1 << 13: 0.25 s slower at 1M)
        step = 1 << 10
        for lo in range(0, n, step):   # a line is eight pieces; a block is joined once
            hi = min(n, lo + step)
            k = hi - lo
            c = codes[lo:hi]
            p = [None] * (8 * k)
            p[0::8] = [',\n{"id": '] * k
            p[1::8] = map(str, ids[lo:hi])
            p[2::8] = [', "addr": "'] * k
            p[3::8] = map(hex, addrs[lo:hi])
            p[4::8] = ['", '] * k
            p[5::8] = map(mids.__getitem__, c)
            p[6::8] = map(btexts.__getitem__, bidx[lo:hi]) if bidx is not None else ["null"] * k
            p[7::8] = map(ends.__getitem__, c)
            block = "".join(p)
            yield block[2:] if lo == 0 else block
    yield "\n]}\n"


def stacks_text(buckets: list[triage.Bucket], color: bool, sample: int = 8,
                depth: Optional[int] = None) -> str:
    """The buckets' text, each stack cut at depth frames (None or 0: all)."""
    lines = []
    for b in buckets:
        ids = ", ".join(map(str, b.ids(sample)))
        more = f", … ({b.count - sample} more)" if b.count > sample else ""
        what = b.wait_reason or b.status
        wr = b.wait_range()
        dur = ""
        if wr and wr[1]:
            dur = f", {wr[0]}–{wr[1]} minutes" if wr[0] != wr[1] else f", {wr[0]} minutes"
        head = f"{b.count} goroutine{'s' if b.count != 1 else ''} [{what}{dur}]"
        lines.append(_c(head, "head", color))
        lines.append(f"  ids: {ids}{more}")
        for on, n in b.blocked_on():
            verb = "blocked on"
            if "receive" in b.wait_reason:
                verb = "blocked receiving on"
            elif "send" in b.wait_reason:
                verb = "blocked sending on"
            elif "select" in b.wait_reason:
                verb = "blocked in select on"
            lines.append(f"  {n} {verb} {blocked_on_text(on)}")
        for loc, n in b.created_by():
            lines.append(f"  created by {loc}" + (f" ({n})" if n != b.count else ""))
        labs = b.label_summary()
        if labs:
            lines.append("  labels: " + ", ".join(f"{k} ({n})" for k, n in labs))
        for f in b.frames[:depth or None]:
            name = _c(f.function, "loc", color) if f.user else f.function
            lines.append(f"    {name}{' (inlined)' if f.inlined else ''}")
            lines.append(f"        {f.file}:{f.line}")
        lines.append("")
    return "\n".join(lines)


def bucket_json(b: triage.Bucket, sample: int = 10, depth: Optional[int] = None) -> dict:
    """One bucket's object of docs/json.md ("stacks"), its stack cut at depth frames
    (None or 0: all; user_code is of the whole stack)."""
    wr = b.wait_range()
    return {
        "count": b.count,
        "ids": b.ids(sample),
        "status": b.status, "wait_reason": b.wait_reason,
        "wait_minutes": {"min": wr[0], "max": wr[1]} if wr else None,
        "created_by": [{"location": k, "count": n} for k, n in b.created_by()],
        "labels": [{"label": k, "count": n} for k, n in b.label_summary()],
        "blocked_on": [{"object": blocked_on_text(on), "count": n, "kind": on.kind,
                        "addrs": [f"{a:#x}" for a in on.addrs]} for on, n in b.blocked_on()],
        "user_code": b.has_user_code,
        "stack": [f.to_json() for f in b.frames[:depth or None]],
    }


def stacks_json(go_version: str, buckets: list[triage.Bucket], total: int, errors: list[str],
                depth: Optional[int] = None) -> dict:
    return {"go_version": go_version, "total": total,
            "buckets": [bucket_json(b, depth=depth) for b in buckets], "errors": errors}


def backtrace_text(g: Goroutine, frames, color: bool) -> str:
    """gdb `bt` style: #N  0xPC in function () at file:line; inlined frames without pc."""
    lines = []
    for i, f in enumerate(frames):
        name = _c(f.function, "loc", color)
        if f.inlined:
            lines.append(f"#{i:<3} {name} (...) at {f.file}:{f.line}")
        else:
            lines.append(f"#{i:<3} {f.pc:#018x} in {name} () at {f.file}:{f.line}")
    if g.created_by:
        lines.append(f"created by {_created(g)}")
    return "\n".join(lines) + "\n"


def _run(ctx, args):
    check_goroutines_args(args)
    # labels cost reads: fetch them only when something shows or uses them
    want_labels = bool(args.json or args.show_labels or args.labels or args.group == "label"
                       or any(k == "label" for k, _ in args.with_ + args.without))
    rt = ctx.runtime()
    check_goroutines_args(args, rt.layout)
    walker, gs = ctx.walk(rt, depth=args.depth, include_dead=args.all, want_blocked=args.json,
                          want_labels=want_labels)
    if args.retained:
        return goroutines_retained(rt, gs, walker.errors, args, ctx.color)
    return goroutines_view(rt.layout.go_version, gs, walker.errors, walker.clock, args,
                           ctx.color, ctx.width)


def goroutines_retained(rt, gs, errors: list, args, color: bool) -> str:
    """`go goroutines --retained`: the goroutines (after the filters) that alone keep
    the most heap alive, biggest first, at most --limit (default 20)."""
    from ..analysis import heapreport
    from .console import json_text
    from .gc import size_text
    heapreport.require_heap(rt)
    picked = triage.apply_filters(gs, args.status, args.with_, args.without, args.labels)
    ids = np.asarray(picked.ids(), dtype=np.int64)
    goids, nbytes, nobj, kept_errors = heapreport.retained_each(rt, gs)
    keep = np.isin(goids, ids)
    goids, nbytes, nobj = goids[keep], nbytes[keep], nobj[keep]
    top = goids[:20 if args.limit is None else (args.limit or len(goids))].tolist()
    where = {int(g): i for i, g in enumerate(ids.tolist())}
    rows = [picked[where[g]] for g in top if g in where]
    errors = list(errors) + [e for e in kept_errors if e not in errors]
    if args.json:
        return json_text({
            "go_version": rt.layout.go_version, "total": len(ids),
            "goroutines": [dict(goroutine_json(g, False), retained_bytes=int(b),
                                retained_objects=int(o))
                           for g, b, o in zip(rows, nbytes.tolist(), nobj.tolist())],
            "errors": errors})
    table = [("id", "retains", "objects", "status", "user location")]
    for g, b, o in zip(rows, nbytes.tolist(), nobj.tolist()):
        what = g.wait_reason or g.status
        table.append((str(g.id), f"{b} B ({size_text(b)})", str(o), what, _loc(g.user)))
    w = [max(len(r[i]) for r in table) for i in range(4)]
    out = ["  ".join(c.rjust(w[i]) if i < 3 else c.ljust(w[i])
                     for i, c in enumerate(r[:4])) + "  " + r[4] + "\n" for r in table]
    out.append(f"{len(ids)} goroutines; the {len(rows)} that alone keep the most heap alive"
               + (" (--limit N for more)" if len(ids) > len(rows) else "") + "\n")
    out += [f"warning: {e}\n" for e in errors]
    return "".join(out)


def _args(p):
    add_goroutines_args(p)
    p.add_argument("--retained", action="store_true",
                   help="the goroutines that alone keep the most heap alive, biggest first "
                        "(--limit N, default 20; Go 1.22+)")


register(View(
    "goroutines", "List every goroutine from runtime.allgs: status, wait reason, locations, labels.",
    _run, _args,
    doc="""Filter with -s, -with/-without KIND SUBSTR, -label; group with -group KIND;
-t DEPTH adds stacks. `*` marks the goroutine on the selected thread.""",
    word_choices={"-with": triage.KINDS, "-without": triage.KINDS, "-group": triage.GROUP_KINDS}))
