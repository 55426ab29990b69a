"""`delve-bridge ... mapwatch EXPR [--max-hits N] [--timeout S] [--writes] [--json] [-o FILE]`.

The probe itself is gdb_go_ext/runtime/probes.py's run_mapwatch, the one loop
`go mapwatch` runs in gdb too, over the Bridge's execution control
(delve_bridge/control.py: dlv's breakpoints with a server-side condition, the
halts, SIGINT and SIGTERM, and the safety on every way out). This function checks
its arguments and resolves the map.
"""
from __future__ import annotations

from gdb_go_ext.errors import UsageError
from gdb_go_ext.runtime import probes as P
from gdb_go_ext.views.mapwatch import DEFAULT_MAX_HITS, DEFAULT_TIMEOUT, add_mapwatch_args

add_arguments = add_mapwatch_args


def run_mapwatch(bridge, expr: str, max_hits: int = DEFAULT_MAX_HITS,
                 timeout: float = DEFAULT_TIMEOUT, writes: bool = False) -> dict:
    """Probe one map through the bridge; the report of runtime.probes.report."""
    if max_hits < 1:
        raise UsageError("--max-hits must be 1 or more")
    if not timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    control = bridge.target.control()   # live: or one sentence why not
    rt = bridge.runtime()
    shown, mt, addr = bridge.resolve_map(rt, expr)
    return P.run_mapwatch(control, rt, shown, mt, addr, max_hits, timeout, writes)
