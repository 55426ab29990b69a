"""`go mapwatch EXPR [--max-hits N] [--timeout S] [--writes] [--json] [-o FILE]`.

The probe itself is runtime/probes.py's run_mapwatch, the one loop gdb and the
bridge share, over gdb's execution control (gdb/control.py: breakpoints whose
stop() decides without a full stop, the timeout, and the safety on every way
out). This command checks its arguments, resolves the map and prints the report.
"""
from __future__ import annotations

import gdb

from ..errors import UsageError
from ..runtime import probes as P
from ..views import mapwatch as view
from . import session
from .commands import GoCommand, terminal_width
from .map_command import resolve


class MapWatchCommand(GoCommand):
    """Watch which keys a live program looks up in one map, by whom, and whether found.

EXPR is a map, as for `go map` (main.cache, a local, or (map[K]V)0xADDR).
Breakpoints go at the entry of the runtime's map access functions for the
map's key type (with --writes also mapassign/mapdelete); hits on other maps
are let through at once. The program runs until --max-hits hits on this map
(default 1000) or --timeout seconds (default 10), or Ctrl-C, then stops again;
every breakpoint is removed on every way out. Needs a live process (amd64)."""

    name = "mapwatch"
    pause_gc = False
    completer_class = gdb.COMPLETE_SYMBOL

    def add_arguments(self, p):
        view.add_mapwatch_args(p)

    def run(self, args):
        if args.max_hits < 1:
            raise UsageError("--max-hits must be 1 or more")
        if not args.timeout > 0:
            raise UsageError("--timeout must be more than 0 seconds")
        rt = session.runtime()
        target = rt.target
        control = target.control()   # live, amd64, stopped: or one sentence why not
        shown, gtype, addr = resolve(" ".join(args.expr))
        mt = target.convert_type(gtype)
        rep = P.run_mapwatch(control, rt, shown, mt, addr, args.max_hits, args.timeout,
                             args.writes)
        if args.json:
            self.emit_json(rep, args.output)
        else:
            self.emit(view.render_text(rep, color=self.color(args.output),
                                       width=terminal_width()), args.output)
