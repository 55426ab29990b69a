"""The scheduler probe (`gdb-go probe-sched PID`, `sched --probe S`): where the uprobe
goes, what the BPF program is told, and what its counts say (pure Python).

The BPF program (target/bpf/sched.bpf.c) sees every call of runtime.casgstatus, the
one function every goroutine status change goes through (casgstatus(gp, old, new):
gp in AX, the statuses in BX and CX). It is nosplit: the uprobe sits on the jb of its
first check (status_check_jb: the arguments still in their registers, and a jump the
kernel emulates, ~10x cheaper than the single-stepped first instruction), else at its
entry; a build where it has a stack check gets the probe at the check's jbe (the same
finder as mapwatch's, ebpfmap.stack_check_jbe) with restarts skipped.

By looking, never by version: the status codes from runtime.gStatusStrings (the
runtime's own defaults where it is missing), the wait reasons' names from
runtime.waitReasonStrings, the offsets of g.m, g.waitreason, m.p and p.id from DWARF,
the PIE bias from /proc/PID/maps.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import GoExtError
from . import ebpfmap

OBJECT = "sched.bpf.o"
PROGRAM = "sched"
FUNCTION = "runtime.casgstatus"
MAX_PS = 512            # the BPF program's MAX_PS; P ids up to MAX_PS - 2
NO_P = MAX_PS - 1
NBUCKETS = 256
NREASONS = 256
STATS = ("events", "without_p", "runs_begun_before", "untracked", "out_of_step")
KIND_CAS, KIND_SYSENTER, KIND_SYSEXIT = 0, 1, 2
SYSCALL_FUNCTIONS = (("runtime.reentersyscall", KIND_SYSENTER),
                     ("runtime.exitsyscall", KIND_SYSEXIT))
LOCK_CMPXCHG = re.compile(rb"\xf0[\x40-\x4f]?\x0f\xb1")

CONFIG = struct.Struct("<QQQQQIIIIII")     # start, 4 offsets, 5 statuses, pad
GSTATE = struct.Struct("<QIIII")        # ts, status, p, reason, pad
U64 = struct.Struct("<Q")


def bucket_bounds(b: int) -> tuple[int, int]:
    """[low, high) in ns of delay histogram bucket b (the BPF program's bucket())."""
    if b < 4:
        return b, b + 1
    msb, sub = b // 4 + 1, b % 4
    return (4 + sub) << (msb - 2), (5 + sub) << (msb - 2)


def percentile(hist: dict, q: float) -> Optional[int]:
    """The upper bound (ns) of the bucket holding the q-quantile, None if empty."""
    n = sum(hist.values())
    if not n:
        return None
    need = q * n
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= need:
            return bucket_bounds(b)[1]
    return bucket_bounds(max(hist))[1]


def field_offset(lookup_type: Callable, type_name: str, field: str) -> int:
    t = lookup_type(type_name)
    f = t.find(field) if t is not None else None
    if f is None:
        raise GoExtError(f"no {type_name}.{field} in the debug info")
    return f[0]


# casgstatus's opening, where its arguments are still in their registers: the frame
# set up (push %rbp; mov %rsp,%rbp; sub $N,%rsp, or sub $N,%rsp; mov %rbp,d(%rsp);
# lea d(%rsp),%rbp), AX, BX, CX stored to the frame and nothing else written, then
# `bt $0xc,%ebx` (oldval's _Gscan bit) and its `jb`. A uprobe on that jb is emulated by
# the kernel (a conditional jump), not single-stepped as one on the first instruction is.
_SUB_RSP = rb"(?:\x48\x83\xec.|\x48\x81\xec.{4})"
_OPENING = re.compile(
    rb"(?:\x55\x48\x89\xe5" + _SUB_RSP + rb"|" + _SUB_RSP
    + rb"\x48\x89\x6c\x24.\x48\x8d\x6c\x24.)"
    rb"(?:\x48\x89\x44\x24.|\x48\x89\x84\x24.{4}|\x89\x5c\x24.|\x89\x9c\x24.{4}"
    rb"|\x89\x4c\x24.|\x89\x8c\x24.{4}){0,3}"
    rb"\x0f\xba\xe3\x0c\x90*(?=\x72)", re.DOTALL)


def status_check_jb(code: bytes):
    """Offset of the jb on oldval's _Gscan bit in casgstatus's first bytes, where AX,
    BX and CX still hold its arguments; None if its opening is not the one we know."""
    m = _OPENING.match(code)
    return m.end() if m else None


@dataclass(frozen=True)
class Site:
    function: str
    kind: int           # KIND_*
    address: int        # link-time
    at_jbe: bool        # at a stack check's jbe (restarts skipped), else the entry

    at_jb: bool = False     # casgstatus: at its status check's jb

    @property
    def cookie(self) -> int:
        return self.kind | int(self.at_jbe) << 8

    @property
    def at(self) -> str:
        return ("status check jb" if self.at_jb else
                "stack check jbe" if self.at_jbe else "entry")


def _site(elf, func, kind: int) -> Site:
    jbe = ebpfmap.stack_check_jbe(elf.read_vaddr(func.entry, 32))
    return Site(func.name, kind, func.entry + (jbe or 0), jbe is not None)


def probe_sites(elf, pclntab) -> list:
    """casgstatus's probe; and where reentersyscall and exitsyscall switch Running <->
    Syscall with their own compare-and-swap (a `lock cmpxchg` in their code, Go 1.26),
    those two functions' too."""
    f = pclntab.lookup_func(FUNCTION)
    if f is None:
        raise GoExtError(f"the binary has no {FUNCTION}")
    site = _site(elf, f, KIND_CAS)
    jb = None if site.at_jbe else status_check_jb(elf.read_vaddr(f.entry, 64))
    sites = [site if jb is None else Site(f.name, KIND_CAS, f.entry + jb, False, True)]
    for name, kind in SYSCALL_FUNCTIONS:
        g = pclntab.lookup_func(name)
        if g is not None and LOCK_CMPXCHG.search(elf.read_vaddr(g.entry, g.end - g.entry)):
            sites.append(_site(elf, g, kind))
    return sites


def read_string_table(read: Callable[[int, int], bytes], addr: int, n: int) -> list[str]:
    """A runtime [n]string array at addr (loaded address), read through read(addr, size)."""
    out = []
    try:
        raw = read(addr, 16 * n)
    except OSError:
        return []
    for i in range(n):
        p, ln = struct.unpack_from("<QQ", raw, 16 * i)
        try:
            out.append(read(p, min(ln, 256)).decode("utf-8", "replace") if p and ln else "")
        except OSError:
            out.append("")
    return out


def build_report(*, pid: int, seconds: float, window_ns: int, stopped_by: str,
                 sites: list, stats: dict, run_ns: dict, runs: dict, delay_max: dict,
                 delays: dict, waits: dict, open_runs: dict, waiting_now: dict,
                 wait_reasons: list, errors: list) -> dict:
    """The report (docs/json.md, probe-sched). run_ns, runs, delay_max: {P: n};
    delays: {P: {bucket: n}}; waits: {P: {reason code: n}} (P NO_P: made with no P);
    open_runs: {P: ns} of runs still going at the window's end; waiting_now:
    {reason code: goroutines} that parked in the window and wait at its end."""
    def reason(code: int) -> str:
        if 0 <= code < len(wait_reasons) and wait_reasons[code]:
            return wait_reasons[code]
        return f"wait reason {code}"

    def by_reason(counts: dict) -> dict:
        out: dict = {}
        for code, n in counts.items():
            out[reason(code)] = out.get(reason(code), 0) + n
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    ids = sorted(p for p in set(run_ns) | set(runs) | set(waits) | set(open_runs)
                 if p != NO_P)
    ps = []
    for p in ids:
        ns = run_ns.get(p, 0) + open_runs.get(p, 0)
        hist = delays.get(p, {})
        ps.append({
            "p": p,
            "busy": round(ns / window_ns, 4) if window_ns else None,
            "run_ns": ns,
            "runs": runs.get(p, 0),
            "delay": {"count": sum(hist.values()),
                      "p50_ns": percentile(hist, 0.50), "p99_ns": percentile(hist, 0.99),
                      "max_ns": delay_max.get(p) if hist else None,
                      "buckets": [{"le_ns": bucket_bounds(b)[1], "count": n}
                                  for b, n in sorted(hist.items())]},
            "blocked": by_reason(waits.get(p, {})),
        })
    total: dict = {}
    for p, counts in waits.items():
        for code, n in counts.items():
            total[code] = total.get(code, 0) + n
    return {
        "engine": "ebpf",
        "pid": pid,
        "seconds": round(seconds, 3),
        "stopped_by": stopped_by,
        "probes": sites,
        "transitions": stats.get("events", 0),
        "runs_begun_before": stats.get("runs_begun_before", 0),
        "out_of_step": stats.get("out_of_step", 0),
        "ps": ps,
        "blocked": by_reason(total),
        "blocked_without_p": by_reason(waits.get(NO_P, {})),
        "waiting_at_end": by_reason(waiting_now),
        "errors": list(errors) + ([f"{stats['untracked']} transitions of goroutines not "
                                   "tracked (the BPF map was full)"]
                                  if stats.get("untracked") else []),
    }


def probe_sched(*, pid: int, elf, pclntab, lookup_type: Callable, statuses,
                wait_reasons: list, wait) -> dict:
    """Probe process pid's scheduler while wait(n_uprobes) runs (it returns how the
    window ended: "timeout", "interrupt", "exited", ...), remove the uprobe, and return
    the report. statuses: layout.Statuses; lookup_type(name) -> GoType (DWARF)."""
    import os
    import time
    from ..target.ebpf import BpfObject
    exe = f"/proc/{pid}/exe"
    if not os.path.exists(f"/proc/{pid}"):
        raise GoExtError(f"no process {pid}")
    g = lookup_type("runtime.g")
    wr = g.find("waitreason") if g is not None else None
    if wr is not None and wr[1] is not None and wr[1].size not in (None, 1):
        raise GoExtError(f"runtime.g.waitreason is {wr[1].size} bytes: the probe reads one")
    offs = [field_offset(lookup_type, *tf) for tf in (
        ("runtime.g", "m"), ("runtime.m", "p"), ("runtime.p", "id"),
        ("runtime.g", "waitreason"))]
    sites = probe_sites(elf, pclntab)
    bias = ebpfmap.pie_bias(pid, exe, elf)
    shown = [{"function": st.function, "address": f"{st.address + bias:#x}",
              "at": st.at} for st in sites]
    errors: list = []
    stats: dict = {}
    with BpfObject(name=OBJECT) as bpf:
        stopped_by = "error"
        start = time.monotonic_ns()
        def configure():
            bpf.update("config", b"\0" * 4, CONFIG.pack(
                start, *offs, statuses.runnable, statuses.running, statuses.syscall,
                statuses.waiting, statuses.dead, 0))
        configure()
        end = start
        try:
            for st in sites:
                bpf.attach_uprobe(PROGRAM, pid, exe, ebpfmap.file_offset(elf, st.address),
                                  st.cookie)
            start = time.monotonic_ns()     # the window begins with the probes in
            configure()
            stopped_by = wait(len(sites))
        finally:
            end = time.monotonic_ns()
            errors.extend(bpf.detach())     # first stop counting, then read

        def u64(name: str, i: int) -> int:
            v = bpf.lookup(name, i.to_bytes(4, "little"), 8)
            return int.from_bytes(v, "little") if v else 0
        for i, name in enumerate(STATS):
            stats[name] = u64("stats", i)
        run_ns, runs, delay_max, delays, waits = {}, {}, {}, {}, {}
        open_runs: dict = {}
        waiting_now: dict = {}
        for _, v in bpf.items("gstates", 8, GSTATE.size):
            ts, status, p, reason, _ = GSTATE.unpack(v)
            if status == statuses.running and p != NO_P:
                open_runs[p] = open_runs.get(p, 0) + max(0, end - max(ts, start))
            elif status == statuses.waiting:
                waiting_now[reason] = waiting_now.get(reason, 0) + 1
        for p in range(MAX_PS):
            if p != NO_P:
                for name, d in (("run_ns", run_ns), ("runs", runs), ("delay_max", delay_max)):
                    v = u64(name, p)
                    if v:
                        d[p] = v
            if p in runs or p in run_ns or p == NO_P:
                h = {b: n for b in range(NBUCKETS) if (n := u64("delays", p * NBUCKETS + b))}
                if h:
                    delays[p] = h
                w = {r: n for r in range(NREASONS) if (n := u64("waits", p * NREASONS + r))}
                if w:
                    waits[p] = w
    return build_report(pid=pid, seconds=(end - start) / 1e9, window_ns=end - start,
                        stopped_by=stopped_by, sites=shown, stats=stats, run_ns=run_ns,
                        runs=runs, delay_max=delay_max, delays=delays, waits=waits,
                        open_runs=open_runs, waiting_now=waiting_now,
                        wait_reasons=wait_reasons, errors=errors)
