"""`gdb-go mapwatch PID EXPR`: the eBPF map probe with no debugger and no ptrace stop.

The map's address is the global EXPR's value (its ELF symbol plus the PIE bias, read
through /proc/PID/mem); its type and the g's goid offset come from the binary's DWARF.
Prints `watching EXPR (map 0x…, N probes)` on stderr once the uprobes are in, and
counts until --seconds, SIGINT or SIGTERM (or the program's exit), then writes the
report (the `mapwatch` view's text, or its JSON with --json)."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time


def add_parser(sub) -> None:
    m = sub.add_parser("mapwatch", help="count one map's lookups in a live process (eBPF)",
                       description="Count which keys a running Go program looks up in one "
                       "global map, by whom and (with --found) whether found, with eBPF "
                       "uprobes counting in the kernel: no debugger, the program never "
                       "stops. Ends after --seconds, on SIGINT or SIGTERM, or when the "
                       "program exits, then writes the report. Needs CAP_BPF and "
                       "CAP_PERFMON (root), the uprobe PMU, libbpf.so.1 and the BPF "
                       "object ./install.sh builds.")
    m.add_argument("pid", type=int, metavar="PID", help="the process")
    m.add_argument("expr", metavar="EXPR", help="a global map variable, e.g. main.cache")
    m.add_argument("--found", action="store_true",
                   help="also tell found from missing (probes every RET: slower)")
    m.add_argument("--hits", action="store_true",
                   help="also list every hit in order (key, goroutine, caller, found), "
                   "from a BPF ring buffer; the counts stay complete")
    m.add_argument("--max-hits", type=int, default=10000, metavar="N",
                   help="with --hits: list at most N hits (default 10000; 0: no cap)")
    m.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: at SIGINT or SIGTERM)")
    m.add_argument("--json", action="store_true", help="the JSON report (docs/json.md)")
    m.add_argument("-o", dest="output", metavar="FILE", help="write the report to FILE")


def probe_window(pid: int, seconds, announce):
    """wait(n_uprobes): until the deadline, SIGINT/SIGTERM or the process's end.
    announce(n_uprobes): the stderr line once the probes are in."""
    def wait(n: int) -> str:
        stop = threading.Event()
        why = ["timeout"]

        def on_signal(signum, frame):
            why[0] = "interrupt"
            stop.set()
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            sys.stderr.write(announce(n) + "\n")
            sys.stderr.flush()
            deadline = None if seconds is None else time.monotonic() + seconds
            while not stop.is_set():
                left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if left <= 0:
                    break
                stop.wait(left)
                if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
                    why[0] = "exited"
                    break
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return why[0]
    return wait


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return True


def process_program(pid: int) -> tuple:
    """(exe path, ElfFile, PCLineTable, DwarfTypes) of a live process's program, or a
    one-line GoExtError."""
    from gdb_go_ext.binary.dwarf import DwarfTypes
    from gdb_go_ext.binary.elf import ElfFile
    from gdb_go_ext.binary.pclntab import PCLineTable
    from gdb_go_ext.errors import DecodeError, GoExtError
    exe = f"/proc/{pid}/exe"
    try:
        elf = ElfFile.open(exe)
    except (OSError, DecodeError) as e:
        raise GoExtError(f"cannot read the program of process {pid}: "
                         f"{getattr(e, 'strerror', None) or e}") from None
    return exe, elf, PCLineTable.from_elf(elf), DwarfTypes(exe, elf.build_id())


def run(args) -> str:
    """The report's text; GoExtError (one line) for whatever stops it."""
    from gdb_go_ext.binary import types as T
    from gdb_go_ext.errors import GoExtError
    from gdb_go_ext.runtime import ebpfmap
    from gdb_go_ext.target import ebpf
    from gdb_go_ext.views.console import json_text
    from gdb_go_ext.views.mapwatch import render_text

    if args.seconds is not None and not args.seconds > 0:
        raise GoExtError("--seconds must be more than 0")
    if args.max_hits < 0:
        raise GoExtError("--max-hits must be 0 (no cap) or more")
    why = ebpf.problem()
    if why:
        raise GoExtError(f"eBPF cannot run here: {why}")
    pid = args.pid
    exe, elf, pclntab, types = process_program(pid)
    sym = elf.symbol(args.expr)
    if sym is None:
        raise GoExtError(f"no global {args.expr} in the program (a global map's name, "
                         "e.g. main.cache)")
    mt = types.symbol_type(args.expr)
    if mt is None or mt.kind != T.MAP:
        raise GoExtError(f"{args.expr} is {'a ' + mt.name if mt else 'of unknown type'}, "
                         "not a map")
    names = T.split_map_name(mt.name)
    key_t = (types.lookup_type(names[0]) if names else None) or mt.key
    if key_t is None:
        raise GoExtError(f"cannot find the key type of {mt.name} in the debug info")
    g = types.lookup_type("runtime.g")
    goid = g.find("goid") if g is not None else None
    if goid is None:
        raise GoExtError("no runtime.g.goid in the debug info")
    bias = ebpfmap.pie_bias(pid, exe, elf)
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        try:
            raw = os.pread(fd, 8, sym[0] + bias)
        finally:
            os.close(fd)
    except OSError as e:
        raise GoExtError(f"cannot read {args.expr} in process {pid}: {e.strerror}") from None
    map_addr = int.from_bytes(raw, "little")
    if map_addr == 0:
        raise GoExtError(f"{args.expr} is a nil map")
    rep = ebpfmap.probe_map(pid=pid, elf=elf, pclntab=pclntab, map_addr=map_addr,
                         map_type_name=mt.name, key_t=key_t, goid_off=goid[0],
                         found=args.found, hits=args.hits, max_hits=args.max_hits,
                         wait=probe_window(pid, args.seconds, lambda n: f"watching {args.expr} "
                                      f"(map {map_addr:#x}, {n} probes)"))
    if args.json:
        return json_text(rep)
    return render_text(rep)


def cmd_mapwatch(args, run=run) -> int:
    from gdb_go.run import BatchError
    from gdb_go_ext.errors import GoExtError
    try:
        text = run(args)
    except GoExtError as e:
        raise BatchError(str(e)) from None
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w") as f:
            f.write(text)
    except OSError as e:
        raise BatchError(f"cannot write {args.output}: {e.strerror or e}") from None
    return 0
