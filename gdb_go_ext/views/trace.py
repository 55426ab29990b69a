"""`trace FILE`: an execution trace (Go 1.22+) summarised per goroutine and per P.

Needs no target: it reads the file only (gdb with no program, `delve-bridge trace FILE`,
`gdb-go trace FILE`)."""
from __future__ import annotations

import contextlib
import re

from ..analysis.tracecolumns import summarize_trace
from ..analysis.tracesummary import parse_window
from ..errors import GoExtError
from .console import json_text
from .registry import View, register


def _args(p):
    p.add_argument("file", metavar="FILE", help="an execution trace (runtime/trace, go test "
                   "-trace, /debug/pprof/trace) of Go 1.22 or later")
    p.add_argument("--goroutine", type=int, metavar="ID",
                   help="one goroutine's timeline: each transition, with its stack")
    p.add_argument("--p", action="store_true", dest="procs",
                   help="per P: utilisation, idle spans, the longest gaps while goroutines "
                        "were runnable, GC time")
    p.add_argument("--window", metavar="T0..T1",
                   help="only this time range, from the trace's start (e.g. 10ms..250ms; "
                        "ns, us, ms or s; either side may be left out)")
    p.add_argument("--memory", metavar="SIZE", type=parse_size,
                   help="the most memory a generation of the trace may take to be read in "
                        "bulk, about three times faster (e.g. 2G; default 300M: a larger "
                        "one is read step by step in about 100 MB)")
    p.add_argument("--json", action="store_true", help="machine-readable output (docs/json.md)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def parse_size(text: str) -> int:
    """'2G', '500M', '1.5g', '123456' -> bytes."""
    m = re.match(r"^\s*(\d+(?:\.\d*)?)\s*([kKmMgG]?)[bB]?\s*$", text)
    if not m:
        raise GoExtError(f"--memory takes a size such as 2G or 500M, not {text!r}")
    return int(float(m[1]) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m[2].lower()])


def open_trace(path: str):
    """The exectrace.Trace of path, or one line saying why not."""
    from ..exectrace import TraceFormatError, read_trace
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise GoExtError(f"cannot read {path}: {e.strerror or e}") from None
    if not head:
        raise GoExtError(f"{path}: an empty file is not an execution trace")
    if head[:2] == b"\x1f\x8b":
        raise GoExtError(f"{path}: a gzip file (a pprof profile?) is not an execution trace")
    try:
        return read_trace(path)
    except TraceFormatError as e:
        raise GoExtError(f"{path}: {e}") from None
    except OSError as e:
        raise GoExtError(f"cannot read {path}: {e.strerror or e}") from None


def summary_of(ctx, path: str, window=None, timeline_for=None, memory=None):
    """The TraceSummary of the trace at path, with a progress bar by bytes read where the
    front door shows progress (a terminal) and the read takes over a second. memory:
    the bytes a generation read in bulk may take (None: the reader's default)."""
    trace = open_trace(path)
    if memory is not None:
        trace.bulk_memory = memory
    bar = ctx.progress("reading the trace", in_bytes=True) if ctx.progress is not None \
        else contextlib.nullcontext(None)
    with bar as report:
        trace.progress = report
        return summarize_trace(trace, window=window, timeline_for=timeline_for)


# --- formatting --------------------------------------------------------------------------

def dur(ns) -> str:
    """A duration as people read it: 850ns, 12.3µs, 4.56ms, 2.01s."""
    ns = int(ns or 0)
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.3g}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.3g}ms"
    return f"{ns / 1e9:.3f}s"


def at(s, t) -> str:
    """A trace time as the offset from the trace's start."""
    if t is None:
        return "-"
    return "+" + dur(t - s.start_ns)


def frame_text(f) -> str:
    return f"{f.function} {f.file.rsplit('/', 1)[-1]}:{f.line}"


def user_frame(stack):
    """The first frame outside the runtime (else the top one), or None."""
    for f in stack:
        if not f.function.startswith(("runtime.", "internal/", "sync.", "runtime/")):
            return f
    return stack[0] if stack else None


def transition_text(s, tr, with_time=True) -> str:
    if tr is None:
        return "-"
    text = f"{tr.from_state}->{tr.to_state}"
    if tr.reason:
        text += f" ({tr.reason})"
    return (f"{at(s, tr.time)} " if with_time else "") + text


def goroutine_json(g) -> dict:
    return {"id": g.id, "transitions": g.transitions, "end_state": g.end_state,
            "created_ns": g.created_ns, "created_by": g.created_by,
            "start_function": g.start_function or None,
            "running_ns": g.running_ns, "runnable_ns": g.runnable_ns,
            "blocked_ns": dict(sorted(g.blocked_ns.items(), key=lambda kv: -kv[1])),
            "syscall_ns": g.syscall_ns, "ps": list(g.ps),
            "running_ns_by_p": {str(p): ns for p, ns in g.ps.items()},
            "last_p": g.last_p if g.last_p >= 0 else None,
            "last_m": g.last_m if g.last_m >= 0 else None,
            "parked_ns": g.parked_for_good(),
            "last_transition": g.last.to_json() if g.last else None}


def p_json(pp) -> dict:
    return {"id": pp.id, "utilisation": round(pp.utilisation(), 6), "running_ns": pp.running_ns,
            "idle_ns": pp.idle_ns, "idle_spans": pp.idle_spans,
            "longest_idle_ns": pp.longest_idle_ns,
            "runnable_waiting_ns": pp.waiting_idle_ns,
            "longest_gaps": [{"start_ns": t, "ns": d} for d, t in pp.longest_gaps()],
            "goroutines_run": pp.goroutines_run, "end_state": pp.state,
            "gc_ns": pp.gc_ns, "gc_worker_ns": pp.gc_worker_ns,
            "gc_assist_ns": pp.gc_assist_ns, "gc_sweep_ns": pp.gc_sweep_ns}


def _table(rows) -> str:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] + "\n"
                   for r in rows)


def _head(path, s) -> str:
    w = ""
    if s.window is not None:
        lo, hi = s.window
        w = f", window {at(s, lo)}..{at(s, hi) if hi is not None else 'end'}"
    return (f"{path}: {s.version or 'trace'}, {dur(s.duration_ns)}{w}, {s.events} events, "
            f"{len(s.goroutines)} goroutines, {len(s.ps)} Ps; GC: {s.gc_cycles} cycles, "
            f"mark {dur(s.gc_mark_ns)}, stop-the-world {dur(s.stw_ns)}\n")


def _goroutine_rows(s) -> str:
    rows = [("G", "end", "blocked", "top reason", "runnable", "running", "syscall", "Ps",
             "created", "last transition", "at")]
    for g in s.by_blocked():
        top = max(g.blocked_ns.items(), key=lambda kv: kv[1])[0] if g.blocked_ns else "-"
        created = "-"
        if g.created_ns is not None:
            created = at(s, g.created_ns) + (f" by g{g.created_by}" if g.created_by >= 0 else "")
        f = user_frame(g.last.stack) if g.last else None
        rows.append((str(g.id), g.end_state, dur(g.blocked_total_ns), top, dur(g.runnable_ns),
                     dur(g.running_ns), dur(g.syscall_ns),
                     ",".join(map(str, g.ps)) or "-", created,
                     transition_text(s, g.last), frame_text(f) if f else "-"))
    return _table(rows)


def _p_rows(s) -> str:
    rows = [("P", "util", "running", "idle", "idle spans", "longest idle",
             "idle with runnable G", "GC", "longest gaps with runnable G (at)")]
    for pp in sorted(s.ps.values(), key=lambda p: p.id):
        gaps = ", ".join(f"{dur(d)} at {at(s, t)}" for d, t in pp.longest_gaps()) or "-"
        rows.append((str(pp.id), f"{100 * pp.utilisation():.1f}%", dur(pp.running_ns),
                     dur(pp.idle_ns), str(pp.idle_spans), dur(pp.longest_idle_ns),
                     dur(pp.waiting_idle_ns), dur(pp.gc_ns), gaps))
    return _table(rows)


def _timeline(s, g) -> str:
    out = [f"goroutine {g.id}: {g.end_state} at the end; {g.transitions} transitions; "
           f"running {dur(g.running_ns)}, runnable {dur(g.runnable_ns)}, "
           f"blocked {dur(g.blocked_total_ns)}"
           + "".join(f" ({r} {dur(ns)})" for r, ns in sorted(g.blocked_ns.items(),
                                                               key=lambda kv: -kv[1]))
           + f", syscall {dur(g.syscall_ns)}; Ps {','.join(map(str, g.ps)) or '-'}\n"]
    if g.created_ns is not None:
        out.append(f"created {at(s, g.created_ns)}"
                   + (f" by goroutine {g.created_by}" if g.created_by >= 0 else "")
                   + (f", starts in {g.start_function}" if g.start_function else "") + "\n")
        for f in g.created_stack:
            out.append(f"    {f.function}\n        {f.file}:{f.line}\n")
    for tr in g.timeline or ():
        where = f"  P{tr.p} M{tr.m}" if tr.p >= 0 or tr.m >= 0 else ""
        out.append(f"{transition_text(s, tr)}{where}\n")
        for f in tr.stack:
            out.append(f"    {f.function}\n        {f.file}:{f.line}\n")
    return "".join(out)


def _run(ctx, args):
    window = parse_window(args.window) if args.window else None
    s = summary_of(ctx, args.file, window=window, timeline_for=args.goroutine,
                   memory=args.memory)
    errors = [s.error] if s.error else []
    if s.start_ns is None and not errors:
        errors.append("the trace holds no events")
    if args.goroutine is not None and args.goroutine not in s.goroutines:
        raise GoExtError(f"goroutine {args.goroutine} is not in {args.file}"
                         + (" in that window" if window else ""))
    if args.json:
        trace = {"path": args.file, "version": s.version, "start_ns": s.start_ns,
                 "end_ns": s.end_ns, "duration_ns": s.duration_ns, "events": s.events,
                 "window": ({"from_ns": s.window[0], "to_ns": s.window[1]}
                            if s.window else None),
                 "gc_cycles": s.gc_cycles, "gc_mark_ns": s.gc_mark_ns, "stw_ns": s.stw_ns}
        if args.goroutine is not None:
            g = s.goroutines[args.goroutine]
            gj = goroutine_json(g)
            gj["created_stack"] = [{"function": f.function, "file": f.file, "line": f.line,
                                    "pc": f.pc} for f in g.created_stack]
            gj["timeline"] = [t.to_json() for t in g.timeline or ()]
            goroutines = [gj]
        else:
            goroutines = [goroutine_json(g) for g in s.by_blocked()]
        return json_text({"trace": trace, "goroutines": goroutines,
                          "ps": [p_json(p) for p in sorted(s.ps.values(), key=lambda p: p.id)],
                          "errors": errors})
    parts = [_head(args.file, s)]
    if args.goroutine is not None:
        parts.append(_timeline(s, s.goroutines[args.goroutine]))
    elif args.procs:
        parts.append(_p_rows(s))
    else:
        parts.append(_goroutine_rows(s) if s.goroutines else "no goroutines\n")
    parts += [f"warning: {e}\n" for e in errors]
    return parts


register(View(
    "trace", "Summarise an execution trace per goroutine (or per P); needs no target.",
    _run, _args, needs_target=False,
    doc="""FILE is an execution trace of Go 1.22 or later (runtime/trace, go test -trace,
/debug/pprof/trace). Per goroutine: when and by whom it was created, its time running,
runnable (scheduler latency), blocked (by the reason of the transition that parked it)
and in syscalls, the Ps it ran on, its last transition (time from the trace's start,
from->to, reason, stack) and its state at the end; longest blocked first. --goroutine ID
gives one goroutine's timeline; --p per P: utilisation, idle spans, the longest gaps while
goroutines were runnable and the P idle, GC time (mark workers, assists, sweeps).
--window T0..T1 restricts everything to that range. A damaged trace is read up to the
damage, and a warning says where it stopped."""))
