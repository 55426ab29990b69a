"""`xref DUMP|TRACE`: the goroutine ids of an earlier runtime goroutine dump (SIGQUIT or
crash text, pprof debug=2, `go dump`) or of an execution trace (Go 1.22+) resolved to the
state of the target now."""
from __future__ import annotations

import re
from typing import Optional

from ..analysis import dumptext
from ..errors import GoExtError
from ..runtime.stack import WHOLE_STACK
from .console import json_text
from .goroutines import blocked_on_text
from .registry import View, count, register


def _args(p):
    p.add_argument("dump", metavar="DUMP|TRACE",
                   help="a runtime goroutine dump, a go dump file or an execution trace")
    p.add_argument("-t", dest="depth", type=count, default=0, metavar="DEPTH",
                   help="frames printed per stack in --json (default and 0: all); stacks "
                        "are compared whole")
    p.add_argument("--json", action="store_true", help="machine-readable output (docs/json.md)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")




def _then(d, depth=None) -> dict:
    return {"state": d.state, "wait_minutes": d.minutes, "locked_to_thread": d.locked,
            "addr": f"{d.addr:#x}" if d.addr is not None else None,
            "stack": [f.to_json() for f in d.frames[:depth or None]]}


def _now(g, depth: Optional[int] = None) -> dict:
    return {"addr": f"{g.addr:#x}", "status": g.status, "wait_reason": g.wait_reason,
            "wait_minutes": g.wait_minutes, "locked_to_thread": g.locked_to_thread,
            "blocked_on": blocked_on_text(g.blocked_on) if g.blocked_on else None,
            "user": g.user.to_json() if g.user else None,
            "stack": [f.to_json() for f in (g.stack or ())[:depth or None]]}


def same_stack(d, g, wrappers=frozenset(), depth: Optional[int] = None) -> bool:
    """Whether DUMP's goroutine d and goroutine g now have the same stack, on the frames a
    level-1 dump shows (dumptext.cut_matches where the runtime cut d's stack, the
    innermost frames only where the walk, at depth frames, cut g's). A goroutine the
    dump printed without a stack (running on another thread then) has nothing to tell
    it apart."""
    if not d.frames:
        return True
    now = dumptext.stack_key(g.stack or (), level1=True, wrappers=wrappers)
    whole = depth is None or len(g.stack or ()) < depth
    if d.elided_at is not None:
        inner, outer = dumptext.cut_parts(d.frames, d.elided_at, wrappers=wrappers)
        return dumptext.cut_matches(now, inner, outer, whole)
    then = dumptext.stack_key(d.frames, level1=True, wrappers=wrappers)
    return then == now or (not whole and 0 < len(now) <= len(then) and then[:len(now)] == now)


def xref(dump: dumptext.Dump, gs, wrappers=frozenset(), depth: Optional[int] = None) -> list:
    """[(id, verdict, then DumpGoroutine or None, now Goroutine or None)]: DUMP's ids in
    its order, then the goroutines alive now that it does not hold (the runtime's own
    left out, as a level-1 dump hides them, unless DUMP is of level 2). Stacks are
    compared as same_stack does (wrappers: the binary's dumptext.wrapper_names)."""
    by_id = {g.id: g for g in gs}
    out = []
    for d in dump.goroutines:
        g = by_id.get(d.id)
        if g is None:
            out.append((d.id, "gone", d, None))
            continue
        same = same_stack(d, g, wrappers) and d.state == (g.wait_reason or g.status)
        out.append((d.id, "same" if same else "changed", d, g))
    ids = {d.id for d in dump.goroutines}
    for g in gs:
        if g.id in ids:
            continue
        if dump.level < 2 and not dumptext.stack_key(g.stack or (), level1=True,
                                                     wrappers=wrappers):
            continue
        out.append((g.id, "new", None, g))
    return out


def _run(ctx, args):
    try:
        with open(args.dump, "rb") as f:
            head = f.read(16)
            if is_trace(head):
                return _run_trace(ctx, args)
            data = head + f.read()
    except OSError as e:
        raise GoExtError(f"cannot read {args.dump}: {e.strerror or e}") from None
    if data[:2] == b"\x1f\x8b":
        raise GoExtError(f"{args.dump}: a gzip file is not a goroutine dump")
    dump = dumptext.parse(data)
    if not dump.goroutines:
        raise GoExtError(f"{args.dump}: {dump.problem}")
    rt = ctx.runtime()
    walker, gs = ctx.walk(rt, depth=1, want_blocked=True)   # whole stacks; -t cuts the printed
    wrappers = dumptext.dump_wrappers(rt, (d.frames for d in dump.goroutines))
    rows = xref(dump, gs, wrappers, WHOLE_STACK)   # (a stack that long may be cut)
    notes = ([f"{args.dump}: {dump.problem}"] if dump.problem else []) + list(walker.errors)
    if args.json:
        return json_text({"go_version": rt.layout.go_version,
                          "dump": {"path": args.dump, "goroutines": len(dump.goroutines),
                                   "level": dump.level},
                          "goroutines": [{"id": i, "verdict": v,
                                          "then": _then(d, args.depth) if d else None,
                                          "now": _now(g, args.depth) if g else None}
                                         for i, v, d, g in rows],
                          "errors": notes})
    table = [("id", "verdict", "then", "now", "blocked on", "g", "now at")]
    counts: dict = {}
    for i, v, d, g in rows:
        counts[v] = counts.get(v, 0) + 1
        now = where = blocked = addr = "-"
        if g is not None:
            now = g.wait_reason or g.status
            if g.wait_minutes:
                now += f", {g.wait_minutes} minutes"
            if g.locked_to_thread:
                now += ", locked"
            blocked = blocked_on_text(g.blocked_on) if g.blocked_on else "-"
            addr = f"{g.addr:#x}"
            loc = g.user or g.current
            where = f"{loc.function} {loc.file.rsplit('/', 1)[-1]}:{loc.line}" if loc else "-"
        then = "-"
        if d is not None:
            then = d.state + (f", {d.minutes} minutes" if d.minutes else "")
        table.append((str(i), v, then, now, blocked, addr, where))
    widths = [max(len(r[k]) for r in table) for k in range(len(table[0]) - 1)]
    text = "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] + "\n"
                   for r in table)
    text += (f"{len(dump.goroutines)} goroutines in {args.dump}: "
             + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("same", "changed", "gone"))
             + f"; {counts.get('new', 0)} new\n")
    return text + "".join(f"warning: {e}\n" for e in notes)


# --- an execution trace ------------------------------------------------------------------

_TRACE_HEAD = re.compile(rb"^go 1\.\d+ trace\x00")
MATCH_PCS = 4096          # distinct stack PCs of the trace checked against the binary


def is_trace(head: bytes) -> bool:
    """An execution trace's header: "go 1.NN trace" and NULs (16 bytes)."""
    return bool(_TRACE_HEAD.match(head))


def trace_pcs(s) -> dict:
    """{pc: function} of the stacks the summary kept (last transitions, creations)."""
    out: dict = {}
    for g in s.goroutines.values():
        for stack in ((g.last.stack if g.last else ()), g.created_stack):
            for f in stack:
                if f.pc and len(out) < MATCH_PCS:
                    out.setdefault(f.pc, f.function)
    return out


def check_same_program(rt, s, path: str) -> list:
    """One line (GoExtError) when the trace's stack PCs are not the binary's functions:
    a trace of another program (or another build). Warnings when it cannot be checked."""
    pcs = trace_pcs(s)
    if not pcs:
        return [f"{path}: no stacks in the trace to check it is of this program"]
    try:
        tab = rt.pclntab
    except GoExtError as e:
        return [f"cannot check {path} is of this program: {e}"]
    bad = []
    for pc, fn in pcs.items():
        names = set()
        for q in (pc, pc - 1):
            try:
                names.update(fr.function for fr in tab.frames(q))
            except GoExtError:
                pass
        if fn not in names:
            bad.append((pc, fn))
    if len(bad) * 10 > len(pcs):   # a tenth: the odd PC may be of a cgo or vdso frame
        pc, fn = bad[0]
        raise GoExtError(f"{path} is not a trace of this program: {len(bad)} of {len(pcs)} "
                         f"stack PCs fall elsewhere in its binary (e.g. {fn} at {pc:#x})")
    return []


def trace_xref(s, gs) -> tuple:
    """([(trace GoroutineSummary, Goroutine now or None)] by id, [Goroutine now that the
    trace never saw])."""
    by_id = {g.id: g for g in gs}
    rows = [(t, by_id.get(gid)) for gid, t in sorted(s.goroutines.items())]
    unseen = [g for g in gs if g.id not in s.goroutines]
    return rows, unseen


def id_ranges(ids, most: int = 8) -> str:
    """Ids compactly: runs as first-last, at most `most` runs, then "…"."""
    runs: list = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts = [f"{a}" if a == b else f"{a}, {b}" if b == a + 1 else f"{a}-{b}"
             for a, b in runs[:most]]
    return ", ".join(parts) + (", …" if len(runs) > most else "")


def parked_summary(s, parked: list) -> str:
    """The goroutines that parked in the trace and never ran again, still waiting now,
    counted per (reason in the trace, state now): [(reason, now, parked_ns, id)]."""
    if not parked:
        return ""
    from .trace import at
    groups: dict = {}
    for reason, now, t, gid in parked:
        groups.setdefault((reason, now), []).append((t, gid))
    rows = []
    for (reason, now), gs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        first, last = at(s, min(gs)[0]), at(s, max(gs)[0])
        when = first if first == last else f"{first}..{last}"
        rows.append((str(len(gs)), f"({reason})", f"now {now}", f"at {when}",
                     "id" + ("s " if len(gs) > 1 else " ") + id_ranges(g for _, g in gs)))
    w = [max(len(r[k]) for r in rows) for k in range(4)]
    n = len(parked)
    return (f"{n} goroutine{'s' if n != 1 else ''} parked in the trace and never ran again "
            f"(still waiting now):\n"
            + "".join("  " + "  ".join(c.ljust(x) for c, x in zip(r, w)) + "  " + r[-1] + "\n"
                      for r in rows))


def _run_trace(ctx, args):
    from .trace import summary_of, transition_text
    s = summary_of(ctx, args.dump)
    rt = ctx.runtime()
    notes = ([f"{args.dump}: {s.error}"] if s.error else [])
    notes += check_same_program(rt, s, args.dump)
    walker, gs = ctx.walk(rt, depth=1, want_blocked=True)   # whole stacks; -t cuts the printed
    notes += list(walker.errors)
    rows, unseen = trace_xref(s, gs)
    if args.json:
        def one(t, g):
            return {"id": t.id, "alive": g is not None, "end_state": t.end_state,
                    "last_transition": t.last.to_json() if t.last else None,
                    "last_p": t.last_p if t.last_p >= 0 else None,
                    "last_m": t.last_m if t.last_m >= 0 else None,
                    "parked_ns": t.parked_for_good(),
                    "now": _now(g, args.depth) if g is not None else None}
        return json_text({"go_version": rt.layout.go_version,
                          "trace": {"path": args.dump, "version": s.version,
                                    "start_ns": s.start_ns, "end_ns": s.end_ns,
                                    "goroutines": len(s.goroutines)},
                          "goroutines": [one(t, g) for t, g in rows],
                          "unseen": [g.id for g in unseen],
                          "errors": notes})
    table = [("id", "alive", "trace end", "last transition", "last P/M", "now",
              "blocked on", "g", "now at")]
    parked_for_good = []
    for t, g in rows:
        now = blocked = addr = where = "-"
        if g is not None:
            now = g.wait_reason or g.status
            if g.wait_minutes:
                now += f", {g.wait_minutes} minutes"
            blocked = blocked_on_text(g.blocked_on) if g.blocked_on else "-"
            addr = f"{g.addr:#x}"
            loc = g.user or g.current
            where = f"{loc.function} {loc.file.rsplit('/', 1)[-1]}:{loc.line}" if loc else "-"
            parked = t.parked_for_good()
            if parked is not None and g.status == "waiting":
                parked_for_good.append((t.last.reason or "no reason", now, parked, t.id))
        pm = (f"P{t.last_p}" if t.last_p >= 0 else "-") + "/" + \
             (f"M{t.last_m}" if t.last_m >= 0 else "-")
        table.append((str(t.id), "yes" if g is not None else "no", t.end_state,
                      transition_text(s, t.last), pm, now, blocked, addr, where))
    widths = [max(len(r[k]) for r in table) for k in range(len(table[0]) - 1)]
    text = "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] + "\n"
                   for r in table)
    alive = sum(1 for _, g in rows if g is not None)
    text += (f"{len(rows)} goroutines in {args.dump}: {alive} alive now, "
             f"{len(rows) - alive} gone\n")
    text += parked_summary(s, parked_for_good)
    if unseen:
        text += f"{len(unseen)} goroutines alive now that the trace never saw:\n"
        urows = [("id", "now", "g", "now at")]
        for g in unseen:
            loc = g.user or g.current
            urows.append((str(g.id), g.wait_reason or g.status, f"{g.addr:#x}",
                          f"{loc.function} {loc.file.rsplit('/', 1)[-1]}:{loc.line}"
                          if loc else "-"))
        w = [max(len(r[k]) for r in urows) for k in range(3)]
        text += "".join("  " + "  ".join(c.ljust(x) for c, x in zip(r, w)) + "  " + r[-1]
                        + "\n" for r in urows)
    return text + "".join(f"warning: {e}\n" for e in notes)


register(View(
    "xref", "Resolve the goroutines of an earlier goroutine dump or trace to their state now.",
    _run, _args,
    doc="""DUMP is the runtime's goroutine dump (SIGQUIT or crash text, pprof debug=2,
runtime.Stack) or a `go dump` file. For each of its goroutines: same (alive, same stack
and state), changed (alive, another stack or state) or gone; its state then and now,
the wait minutes and what it is blocked on now, its g; then the goroutines alive now
that DUMP does not hold (new). Stacks are compared on the frames a level-1 dump shows.

TRACE is an execution trace (Go 1.22+) of this program, told by its header. For each
goroutine the trace knows: whether it is alive now, its address, status, wait reason and
minutes and what it is blocked on; its last transition in the trace (time from the trace's
start, from->to, reason) and the P and M it last ran on; then how many parked in the trace
and never ran again and still wait, per reason then and state now, with their ids
(--json has each one's parked_ns); then the goroutines alive now that the trace never saw. A
trace of another program (its stack PCs are not this binary's functions) is one line."""))
