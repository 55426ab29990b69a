"""The `go mapwatch` report: a text summary, and the JSON (runtime.probes.report).

Input is the report dict built by runtime.probes.report; nothing here reads memory.
"""
from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .values import go_quote
from .console import json_text, render
from .registry import COMPLETE_SYMBOL, View, count, register

__all__ = ["render_text"]

_STOPPED = {
    "max-hits": "after --max-hits hits",
    "timeout": "after --timeout seconds",
    "interrupt": "interrupted (Ctrl-C)",
    "exited": "the program exited",
    "signal": "the program stopped with a signal",
    "error": "on an error",
    "stopped": "the program stopped",
}


def _where(c) -> str:
    if not c:
        return "?"
    return f"{c['function']} {c['file']}:{c['line']}"


def render_text(rep: dict, color: bool = False, width: int = 120, keys: int = 20) -> str:
    s = rep["summary"]
    rate = s["hits_per_second"]
    lines = [
        f"map {rep['map']} {rep['type']}: {s['hits']} hits in {s['seconds']}s"
        f" ({rate if rate is not None else '-'} hits/s), {s['found']} found, "
        f"{s['missing']} missing" + (f", {s['unknown']} unknown" if s["unknown"] else "")
        + f"; stopped {_STOPPED.get(rep['stopped_by'], rep['stopped_by'])}",
        "probes: " + ", ".join(p["function"] for p in rep["probes"])
        + f"; {rep['other_map_calls']} calls on other maps ignored",
    ]
    out = "\n".join(lines) + "\n"
    if s["keys"]:
        t = Table(title=None, box=None, pad_edge=False, header_style="bold")
        for col, j in (("key", "left"), ("hits", "right"), ("found", "right"),
                       ("missing", "right")):
            t.add_column(col, justify=j)
        for d in s["keys"][:keys]:
            t.add_row(Text(go_quote(d["key"])), str(d["hits"]), str(d["found"]),
                      str(d["missing"]))
        out += "\n" + render(t, color=color, width=width)
        if len(s["keys"]) > keys:
            out += f"... {len(s['keys']) - keys} more keys (--json has them all)\n"
    if s["top_missing"]:
        out += "\ntop missing keys: " + ", ".join(
            f"{go_quote(d['key'])} ({d['missing']})" for d in s["top_missing"]) + "\n"
    if s["top_callers"]:
        t = Table(box=None, pad_edge=False, header_style="bold")
        for col, j in (("caller", "left"), ("hits", "right"), ("found", "right"),
                       ("missing", "right")):
            t.add_column(col, justify=j)
        for c in s["top_callers"]:
            t.add_row(Text(_where(c)), str(c["hits"]), str(c["found"]), str(c["missing"]))
        out += "\n" + render(t, color=color, width=width)
    for e in rep["errors"]:
        out += f"error: {e}\n"
    return out


DEFAULT_MAX_HITS = 1000
DEFAULT_TIMEOUT = 10.0


def add_mapwatch_args(p) -> None:
    """The flags of `go mapwatch` and delve-bridge's `mapwatch` view."""
    p.add_argument("expr", nargs="+", metavar="EXPR", help="the map")
    p.add_argument("--max-hits", type=count, default=DEFAULT_MAX_HITS, metavar="N",
                   help=f"stop after N hits on this map (default {DEFAULT_MAX_HITS}; 0: no "
                        f"limit, until --timeout)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"stop after S seconds (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--writes", action="store_true",
                   help="also watch mapassign and mapdelete (m[k] = v, delete(m, k))")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def _run(ctx, args):
    from ..errors import UsageError
    from ..runtime import probes
    from .maps import resolve_map
    if not args.timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    rt = ctx.runtime()
    control = rt.target.control()   # live, amd64, stopped: or one sentence why not
    shown, mt, addr = resolve_map(rt, " ".join(args.expr))
    rep = probes.run_mapwatch(control, rt, shown, mt, addr, args.max_hits or None, args.timeout,
                              args.writes)
    if args.json:
        return json_text(rep)
    return render_text(rep, color=ctx.color, width=ctx.width)


register(View(
    "mapwatch", "Watch which keys a live program looks up in one map, by whom, and whether found.",
    _run, add_mapwatch_args, completes=COMPLETE_SYMBOL, pause_gc=False,
    doc="""EXPR is a map, as for `map` (main.cache, a local, or (map[K]V)0xADDR).
Breakpoints go at the entry of the runtime's map access functions for the
map's key type (with --writes also mapassign/mapdelete); hits on other maps
are let through at once. The program runs until --max-hits hits on this map
(default 1000) or --timeout seconds (default 10), or Ctrl-C, then stops again;
every breakpoint is removed on every way out. Needs a live process (amd64)."""))
