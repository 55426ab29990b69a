"""`gdb-go probe-sched PID`: the scheduler probe with no debugger and no ptrace stop.

One eBPF uprobe on runtime.casgstatus counts in the kernel (runtime/ebpfsched.py);
the status codes and wait reasons' names are read from the binary
(runtime.gStatusStrings, runtime.waitReasonStrings through /proc/PID/mem), the
offsets from its DWARF. Prints `probing the scheduler of PID (1 probe)` on stderr
once the uprobe is in, and counts until --seconds, SIGINT or SIGTERM (or the
program's exit), then writes the report (`sched --probe`'s text, or its JSON)."""
from __future__ import annotations

import os

DEFAULT_SECONDS = 10.0


def add_parser(sub) -> None:
    m = sub.add_parser("probe-sched", help="per-P busy time, run delays and blocked "
                       "goroutines of a live process (eBPF)",
                       description="Watch a running Go program's scheduler with one eBPF "
                       "uprobe on runtime.casgstatus, counting in the kernel: no debugger, "
                       "the program never stops. Per P: the busy fraction (run time per "
                       "second), the runnable->running delay (p50, p99, max) and the "
                       "goroutines that parked, by wait reason. Ends after --seconds, on "
                       "SIGINT or SIGTERM, or when the program exits. Needs CAP_BPF and "
                       "CAP_PERFMON (root), the uprobe PMU, libbpf.so.1 and the BPF object "
                       "./install.sh builds.")
    m.add_argument("pid", type=int, metavar="PID", help="the process")
    m.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, metavar="S",
                   help=f"probe for S seconds (default {DEFAULT_SECONDS:g})")
    m.add_argument("--json", action="store_true", help="the JSON report (docs/json.md)")
    m.add_argument("-o", dest="output", metavar="FILE", help="write the report to FILE")


def run(args) -> str:
    """The report's text; GoExtError (one line) for whatever stops it."""
    from gdb_go.mapwatch import probe_window, process_program
    from gdb_go_ext.errors import GoExtError
    from gdb_go_ext.runtime import ebpfmap, ebpfsched
    from gdb_go_ext.runtime.layout import Statuses
    from gdb_go_ext.target import ebpf
    from gdb_go_ext.views.console import json_text
    from gdb_go_ext.views.sched import probe_text

    if not args.seconds > 0:
        raise GoExtError("--seconds must be more than 0")
    why = ebpf.problem(ebpfsched.OBJECT)
    if why:
        raise GoExtError(f"eBPF cannot run here: {why}")
    pid = args.pid
    exe, elf, pclntab, types = process_program(pid)
    bias = ebpfmap.pie_bias(pid, exe, elf)
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError as e:
        raise GoExtError(f"cannot read process {pid}'s memory: {e.strerror}") from None

    def read(addr: int, size: int) -> bytes:
        b = os.pread(fd, size, addr)
        if len(b) != size:
            raise OSError(f"short read at {addr:#x}")
        return b

    def table(sym: str) -> list:
        s, t = elf.symbol(sym), types.symbol_type(sym)
        if s is None or t is None or not getattr(t, "length", 0):
            return []
        return ebpfsched.read_string_table(read, s[0] + bias, min(t.length, 4096))

    try:
        statuses = Statuses(table("runtime.gStatusStrings"))
        reasons = table("runtime.waitReasonStrings")
    finally:
        os.close(fd)
    rep = ebpfsched.probe_sched(
        pid=pid, elf=elf, pclntab=pclntab, lookup_type=types.lookup_type, statuses=statuses,
        wait_reasons=reasons,
        wait=probe_window(pid, args.seconds, lambda n: f"probing the scheduler of {pid} "
                     f"({n} probe{'' if n == 1 else 's'})"))
    if not reasons:
        rep["errors"].append("no runtime.waitReasonStrings in the binary: reasons are codes")
    return json_text(rep) if args.json else probe_text(rep)
