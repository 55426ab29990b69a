"""`xref DUMP`: the goroutine ids of an earlier runtime goroutine dump (SIGQUIT or
crash text, pprof debug=2, `go dump`) resolved to the state of the target now."""
from __future__ import annotations

from ..analysis import dumptext
from ..errors import GoExtError
from .console import json_text
from .goroutines import blocked_on_text
from .registry import View, register


def _args(p):
    p.add_argument("dump", metavar="DUMP", help="a runtime goroutine dump or a go dump file")
    p.add_argument("-t", dest="depth", type=int, default=100, metavar="DEPTH",
                   help="frames compared per stack (default 100, the runtime's limit)")
    p.add_argument("--json", action="store_true", help="machine-readable output (docs/json.md)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def _then(d) -> dict:
    return {"state": d.state, "wait_minutes": d.minutes, "locked_to_thread": d.locked,
            "addr": f"{d.addr:#x}" if d.addr is not None else None,
            "stack": [f.to_json() for f in d.frames]}


def _now(g) -> dict:
    return {"addr": f"{g.addr:#x}", "status": g.status, "wait_reason": g.wait_reason,
            "wait_minutes": g.wait_minutes, "locked_to_thread": g.locked_to_thread,
            "blocked_on": blocked_on_text(g.blocked_on) if g.blocked_on else None,
            "user": g.user.to_json() if g.user else None,
            "stack": [f.to_json() for f in (g.stack or ())]}


def xref(dump: dumptext.Dump, gs) -> list:
    """[(id, verdict, then DumpGoroutine or None, now Goroutine or None)]: DUMP's ids in
    its order, then the goroutines alive now that it does not hold (the runtime's own
    left out, as a level-1 dump hides them, unless DUMP is of level 2)."""
    by_id = {g.id: g for g in gs}
    out = []
    for d in dump.goroutines:
        g = by_id.get(d.id)
        if g is None:
            out.append((d.id, "gone", d, None))
            continue
        same = (dumptext.stack_key(d.frames, level1=True)
                == dumptext.stack_key(g.stack or (), level1=True)
                and d.state == (g.wait_reason or g.status))
        out.append((d.id, "same" if same else "changed", d, g))
    ids = {d.id for d in dump.goroutines}
    for g in gs:
        if g.id in ids:
            continue
        if dump.level < 2 and not dumptext.stack_key(g.stack or (), level1=True):
            continue
        out.append((g.id, "new", None, g))
    return out


def _run(ctx, args):
    try:
        with open(args.dump, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GoExtError(f"cannot read {args.dump}: {e.strerror or e}") from None
    if data[:2] == b"\x1f\x8b":
        raise GoExtError(f"{args.dump}: a gzip file is not a goroutine dump")
    dump = dumptext.parse(data)
    if not dump.goroutines:
        raise GoExtError(f"{args.dump}: {dump.problem}")
    rt = ctx.runtime()
    walker, gs = ctx.walk(rt, depth=args.depth, want_blocked=True)
    rows = xref(dump, gs)
    notes = ([f"{args.dump}: {dump.problem}"] if dump.problem else []) + list(walker.errors)
    if args.json:
        return json_text({"go_version": rt.layout.go_version,
                          "dump": {"path": args.dump, "goroutines": len(dump.goroutines),
                                   "level": dump.level},
                          "goroutines": [{"id": i, "verdict": v,
                                          "then": _then(d) if d else None,
                                          "now": _now(g) if g else None}
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


register(View(
    "xref", "Resolve the goroutines of an earlier goroutine dump to their state now.",
    _run, _args,
    doc="""DUMP is the runtime's goroutine dump (SIGQUIT or crash text, pprof debug=2,
runtime.Stack) or a `go dump` file. For each of its goroutines: same (alive, same stack
and state), changed (alive, another stack or state) or gone; its state then and now,
the wait minutes and what it is blocked on now, its g; then the goroutines alive now
that DUMP does not hold (new). Stacks are compared on the frames a level-1 dump shows."""))
