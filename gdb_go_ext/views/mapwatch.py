"""The `go mapwatch` report: a text summary, and the JSON (runtime.probes.report).

Input is the report dict built by runtime.probes.report; nothing here reads memory.
"""
from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .values import go_quote
from .console import json_text, render
from .registry import COMPLETE_SYMBOL, View, count, register
from .scope import add_scope_args, scope_of

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


def _stopped(rep: dict) -> str:
    if rep.get("engine") == "ebpf" and rep["stopped_by"] == "timeout":
        return "after --seconds seconds"
    return _STOPPED.get(rep["stopped_by"], rep["stopped_by"])


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
        + f"; stopped {_stopped(rep)}",
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
    if rep.get("engine") == "ebpf":
        out += ebpf_lines(rep)
    for e in rep["errors"]:
        out += f"error: {e}\n"
    return out


def ebpf_lines(rep: dict) -> str:
    """What only the eBPF probe has: goroutines, restarts skipped, the key cut."""
    s = rep["summary"]
    out = (f"\neBPF: {len(rep['uprobes'])} uprobes, every call counted in the kernel; "
           f"{len(s['by_goroutine'])} goroutines, {len(s['callers'])} call sites, "
           f"{rep['restarts_skipped']} stack-growth restarts skipped"
           + ("" if rep["found_tracked"] else "; found/missing not tracked (--found)") + "\n")
    if rep.get("hits_recorded"):
        cap = rep["max_hits"]
        out += (f"hits: {len(rep['hits'])} listed in order"
                + (f" (at most {cap}; {rep['hits_beyond_max']} more not listed)"
                   if rep["hits_beyond_max"] else "")
                + (f"; {rep['hits_dropped']} dropped, the ring buffer was full"
                   if rep["hits_dropped"] else "") + " (--json has them)\n")
    if rep.get("string_key_bytes"):
        out += (f"string keys are cut at {rep['string_key_bytes']} bytes"
                + (" (some were)" if rep.get("keys_truncated") else "") + "\n")
    return out


DEFAULT_MAX_HITS = 1000
EBPF_MAX_HITS = 10000     # runtime.ebpfmap.DEFAULT_MAX_HITS (not imported: views load light)
DEFAULT_TIMEOUT = 10.0


def add_mapwatch_args(p) -> None:
    """The flags of `go mapwatch` and delve-bridge's `mapwatch` view."""
    p.add_argument("expr", nargs="+", metavar="EXPR", help="the map")
    p.add_argument("--max-hits", type=count, default=None, metavar="N",
                   help=f"stop after N hits on this map (default {DEFAULT_MAX_HITS}; 0: no "
                        f"limit, until --timeout); with --ebpf --hits: list at most N hits "
                        f"(default {EBPF_MAX_HITS}; 0: no cap), counting goes on")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"stop after S seconds (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--writes", action="store_true",
                   help="also watch mapassign and mapdelete (m[k] = v, delete(m, k))")
    add_scope_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")
    p.add_argument("--ebpf", action="store_true",
                   help="count in the kernel with eBPF uprobes: the program runs freely "
                   "for --seconds, every lookup counted (needs CAP_BPF)")
    p.add_argument("--found", action="store_true",
                   help="with --ebpf: also tell found from missing (probes every RET)")
    p.add_argument("--hits", action="store_true",
                   help="with --ebpf: also list every hit in order (a BPF ring buffer), "
                   f"at most --max-hits (default {EBPF_MAX_HITS})")
    p.add_argument("--seconds", type=float, default=None, metavar="S",
                   help=f"with --ebpf: count for S seconds (default {DEFAULT_TIMEOUT:g})")


def target_pid(target):
    """The program's local process id, or None (a remote or core target)."""
    for obj, attr in ((target, "pid"), (getattr(target, "direct", None), "pid"),
                      (target, "_pid")):
        v = getattr(obj, attr, None) if obj is not None else None
        if isinstance(v, int) and v > 0:
            return v
    return None


def ebpf_target(ctx, flag: str, bpf_object: str, fallback: str = ""):
    """What an eBPF window (`--ebpf`, `--probe`) needs of the stopped live program:
    (runtime, its Control, pid, ElfFile of /proc/PID/exe, its PCLineTable); otherwise
    one sentence why not (fallback: what still works without eBPF)."""
    from ..binary.elf import ElfFile
    from ..binary.pclntab import PCLineTable
    from ..errors import GoExtError
    from ..target import ebpf
    why = ebpf.problem(bpf_object)
    if why:
        raise GoExtError(f"eBPF cannot run here: {why}" + (f" ({fallback})" if fallback else ""))
    rt = ctx.runtime()
    control = rt.target.control()   # live, stopped: or one sentence why not
    pid = target_pid(rt.target)
    if pid is None:
        raise GoExtError(f"{flag} needs the program's local process id (a process on this "
                         "machine)")
    elf = ElfFile.open(f"/proc/{pid}/exe")
    return rt, control, pid, elf, PCLineTable.from_elf(elf)


def free_run(control, seconds: float, left: list):
    """wait(n_uprobes) for an eBPF probe: the stopped program let run for seconds (or
    until Ctrl-C) through its Control, then stopped again as it was; what could not
    be undone goes to left. Returns how the window ended."""
    import time

    def wait(n: int) -> str:
        why = "error"
        try:
            control.begin()
            why = control.resume(time.monotonic() + seconds)
        except KeyboardInterrupt:
            why = "interrupt"
        finally:
            try:
                left.extend(control.remove_all())
            finally:
                left.extend(control.finish())
        return why
    return wait


def _run_ebpf(ctx, args):
    """`--ebpf`: the map resolved while stopped, the program let run for --seconds with
    the uprobes in, then stopped again as the user had it, every uprobe removed."""
    from ..errors import GoExtError, UsageError
    from ..runtime import ebpfmap
    from ..runtime.maps import decode_map
    from ..runtime.values import ValueDecoder
    from ..target import ebpf
    from .maps import resolve_map
    seconds = DEFAULT_TIMEOUT if args.seconds is None else args.seconds
    if not seconds > 0:
        raise UsageError("--seconds must be more than 0")
    rt, control, pid, elf, pclntab = ebpf_target(ctx, "--ebpf", ebpf.OBJECT_NAME,
                                                 "mapwatch without --ebpf still can")
    shown, mt, addr = resolve_map(rt, " ".join(args.expr), scope_of(rt, args))
    if addr == 0:
        raise GoExtError(f"{shown} is a nil map")
    key_t = decode_map(rt, mt, 0).key_type or mt.key
    g = rt.target.lookup_type("runtime.g")
    goid = g.find("goid") if g is not None else None
    if key_t is None or goid is None:
        raise GoExtError("the debug info lacks the map's key type or runtime.g.goid")
    dec = ValueDecoder(rt).decoder(key_t)
    left: list = []
    wait = free_run(control, seconds, left)
    rep = ebpfmap.probe_map(pid=pid, elf=elf, pclntab=pclntab, map_addr=addr,
                         map_type_name=mt.name, key_t=key_t, goid_off=goid[0],
                         found=args.found, wait=wait, values=lambda raw: dec(raw, 0),
                         hits=args.hits,
                         max_hits=EBPF_MAX_HITS if args.max_hits is None else args.max_hits)
    rep["errors"].extend(left)
    return rep


def _run(ctx, args):
    from ..errors import UsageError
    from ..runtime import probes
    from .maps import resolve_map
    if not args.timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if args.ebpf:
        rep = _run_ebpf(ctx, args)
        return json_text(rep) if args.json else render_text(rep, color=ctx.color,
                                                             width=ctx.width)
    if args.found or args.seconds is not None or args.hits:
        raise UsageError("--found, --hits and --seconds go with --ebpf (without it: --timeout)")
    rt = ctx.runtime()
    control = rt.target.control()   # live, amd64, stopped: or one sentence why not
    shown, mt, addr = resolve_map(rt, " ".join(args.expr), scope_of(rt, args))
    max_hits = DEFAULT_MAX_HITS if args.max_hits is None else args.max_hits
    rep = probes.run_mapwatch(control, rt, shown, mt, addr, max_hits or None, args.timeout,
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
every breakpoint is removed on every way out. Needs a live process (amd64).

--ebpf counts every call in the kernel instead (eBPF uprobes at each function's
stack check, and with --found at its RETs): the program runs freely for
--seconds (default 10) or until Ctrl-C, then is stopped again as it was, every
uprobe removed. The JSON adds per key and op found/missing, every goroutine and
every call site. --hits also lists every hit in order (key, goroutine, caller,
found), read from a BPF ring buffer, at most --max-hits of them (default 10000);
the counts stay complete. Needs root (CAP_BPF, CAP_PERFMON) and a local process."""))
