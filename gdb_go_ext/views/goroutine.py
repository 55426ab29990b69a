"""`goroutine ID [CMD...]`: one goroutine's backtrace, or a debugger command run in its
context where the debugger can (gdb, live)."""
from __future__ import annotations

from ..errors import GoExtError
from ..runtime.goroutines import GoroutineWalker
from .console import json_text
from .goroutines import backtrace_text, goroutine_json
from .registry import COMPLETE_GOROUTINE, View, count, register


def _arguments(p):
    p.add_argument("id", type=int, help="goroutine id")
    p.add_argument("-t", dest="depth", type=count, default=0, metavar="DEPTH",
                   help="print at most DEPTH frames (default and 0: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def _run(ctx, args):
    rt = ctx.runtime()
    rt.require_process()
    walker = GoroutineWalker(rt)
    g = walker.find(args.id, with_stack=True)
    if g is None:
        raise GoExtError(f"no goroutine {args.id}")
    cmd = ctx.extra.strip() if isinstance(ctx.extra, str) else ""
    if cmd and cmd not in ("bt", "backtrace"):
        rt.target.run_in_goroutine(g, cmd)
        return ""
    if args.json:
        return json_text({"go_version": rt.layout.go_version, "goroutine": goroutine_json(g, True, args.depth or None),
                          "errors": walker.errors})
    text = backtrace_text(g, (g.stack or [])[:args.depth or None], ctx.color)
    if g.error:
        text += f"warning: {g.error}\n"
    return text


register(View(
    "goroutine", "Backtrace of one goroutine (default), or run a gdb command in its context.",
    _run, _arguments, completes=COMPLETE_GOROUTINE, tail_command=True,
    doc="""goroutine ID            backtrace, live or on a core (registers untouched)
goroutine ID CMD...     gdb, live only: run CMD with that goroutine's registers,
                        restored afterwards (e.g. `info locals`, `frame 2`); commands
                        that would resume or change the program are refused"""))
