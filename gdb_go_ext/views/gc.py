"""`gc`: the garbage collector: cycles, phase, GOGC and GOMEMLIMIT, the heap goal, the
pause history (as runtime/debug.ReadGCStats returns it) and the heap in brief."""
from __future__ import annotations

import datetime

from ..runtime.gc import read_gc
from .console import json_text
from .registry import View, add_output_args, count, register

_MAX_INT64 = (1 << 63) - 1


def to_json(rt, s) -> dict:
    return {
        "go_version": rt.layout.go_version,
        "errors": s.errors,
        "num_gc": s.num_gc,
        "num_forced_gc": s.num_forced_gc,
        "phase": s.phase,
        "gc_running": s.running,
        "gc_percent": s.gc_percent,
        "memory_limit": s.memory_limit,
        "heap_live": s.heap_live,
        "heap_marked": s.heap_marked,
        "heap_goal": s.heap_goal,
        "heap_goal_by": s.heap_goal_by,
        "next_gc": s.heap_goal,
        "last_gc_unix_ns": s.last_gc_unix_ns,
        "last_gc_nanotime": s.last_gc_nanotime,
        "last_gc_ago_ns": s.last_gc_ago_ns,
        "clock": s.clock or None,
        "pause_total_ns": s.pause_total_ns,
        "pauses": [{"ns": ns, "end_unix_ns": end} for ns, end in s.pauses],
        "heap": dict(s.heap),
        "unread": s.unread,
    }


def size_text(n) -> str:
    if n is None:
        return "?"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if abs(n) >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} B"


def duration_text(ns) -> str:
    if ns is None:
        return "?"
    for unit, div in (("s", 10 ** 9), ("ms", 10 ** 6), ("µs", 10 ** 3)):
        if abs(ns) >= div:
            return f"{ns / div:.3g}{unit}" if abs(ns) < 1000 * div or unit == "s" \
                else f"{ns / div:.1f}{unit}"
    return f"{ns}ns"


def wall_text(unix_ns) -> str:
    if not unix_ns:
        return "never" if unix_ns == 0 else "?"
    try:
        t = datetime.datetime.fromtimestamp(unix_ns // 10 ** 9, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{unix_ns} ns since 1970"
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{unix_ns % 10 ** 9:09d}Z"


def render_text(s, shown: int) -> str:
    q = lambda v: "?" if v is None else str(v)  # noqa: E731
    lines = []
    running = "" if s.running is None else (" (a cycle is running)" if s.running
                                            else " (no cycle running)")
    lines.append(f"cycles      {q(s.num_gc)}, {q(s.num_forced_gc)} forced; phase {q(s.phase)}{running}")
    gogc = q(s.gc_percent) if s.gc_percent is None or s.gc_percent >= 0 else "off"
    limit = q(s.memory_limit) if s.memory_limit != _MAX_INT64 else "none (math.MaxInt64)"
    if s.memory_limit is not None and s.memory_limit != _MAX_INT64:
        limit = f"{size_text(s.memory_limit)} ({s.memory_limit} bytes)"
    lines.append(f"GOGC        {gogc}    GOMEMLIMIT {limit}")
    by = f" (by {s.heap_goal_by.replace('_', ' ')})" if s.heap_goal_by else ""
    lines.append(f"heap        live {size_text(s.heap_live)}, marked {size_text(s.heap_marked)}, "
                 f"goal {size_text(s.heap_goal)}{by}; next_gc {q(s.heap_goal)} bytes")
    ago = s.last_gc_ago_ns
    when = wall_text(s.last_gc_unix_ns)
    if ago is not None and s.last_gc_unix_ns:
        when += f", {ago / 1e9:.1f} s before the walk's clock ({s.clock})"
    lines.append(f"last GC     {when}")
    lines.append(f"pauses      total {duration_text(s.pause_total_ns)}; {len(s.pauses)} in the "
                 f"history, the last {min(shown, len(s.pauses))} (most recent first):")
    if s.pauses and shown > 0:
        rows = [("cycle", "pause", "ended")]
        for i, (ns, end) in enumerate(s.pauses[:shown]):
            cycle = str(s.num_gc - i) if s.num_gc is not None else "?"
            rows.append((cycle, duration_text(ns), wall_text(end)))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines += [f"  {r[0].rjust(w0)}  {r[1].ljust(w1)}  {r[2]}" for r in rows]
    h = s.heap
    lines.append(f"heap brief  heapAlloc {size_text(h.get('heap_alloc'))}, heapSys "
                 f"{size_text(h.get('heap_sys'))}, heapInuse {size_text(h.get('heap_inuse'))}, "
                 f"heapReleased {size_text(h.get('heap_released'))}, spans in use "
                 f"{q(h.get('spans_inuse'))}")
    if s.unread:
        lines.append("not read: " + ", ".join(s.unread))
    lines += [f"warning: {e}" for e in s.errors]
    return "\n".join(lines) + "\n"


def _args(p):
    add_output_args(p, json_help="machine-readable output (every pause of the history)")
    p.add_argument("--pauses", type=count, default=None, metavar="N",
                   help="pauses of the history shown, most recent first, text and JSON "
                        "(0: all; default: text 10, JSON all)")


def _run(ctx, args):
    rt = ctx.runtime()
    rt.require_process()
    s = read_gc(rt)
    if args.json:
        out = to_json(rt, s)
        if args.pauses:
            out["pauses"] = out["pauses"][:args.pauses]
        return json_text(out)
    return render_text(s, 10 if args.pauses is None else (args.pauses or len(s.pauses)))


register(View("gc", "The garbage collector: cycles, phase, GOGC, GOMEMLIMIT, heap goal, "
              "pause history.", _run, _args,
              doc="From runtime.memstats, runtime.gcController, runtime.gcphase and mheap_: the\n"
                  "cycle counts, the phase, GOGC and GOMEMLIMIT, heap live/marked/goal (the goal\n"
                  "as gcController.heapGoal() computes it, which is MemStats.NextGC), the last GC,\n"
                  "and the pause history as runtime/debug.ReadGCStats returns it (most recent\n"
                  "first; --pauses N shown, all of them in --json)."))
