"""`sched`: the scheduler: its counters, every P and M, the run queues and timers; with
--format scheddetail, the runtime's own SCHED text (schedtrace(true) in proc.go)."""
from __future__ import annotations

from ..runtime.sched import SUMMARY, decode_sched
from .console import json_text
from .registry import View, add_output_args, count, register

DEFAULT_RUNQ = 20


def _args(p):
    add_output_args(p)
    p.add_argument("--runq", type=count, metavar="N", default=None,
                   help=f"show the first N goroutines of the global run queue, text and "
                        f"JSON (0: all; default: text {DEFAULT_RUNQ}, JSON all)")
    p.add_argument("--format", choices=["scheddetail"], default=None,
                   help="scheddetail: exactly the runtime's own SCHED text "
                        "(GODEBUG=schedtrace=N,scheddetail=1) of this stop")
    p.add_argument("--probe", type=float, metavar="S", default=None,
                   help="let the program run S seconds under an eBPF probe of its "
                        "scheduler: per P busy fraction, runnable->running delay, "
                        "goroutines blocked by wait reason (needs CAP_BPF; live, local)")


def _run_probe(ctx, args):
    """--probe S: the program runs freely for S seconds under the casgstatus uprobe
    (runtime/ebpfsched.py), then is stopped again as it was."""
    from ..errors import UsageError
    from ..runtime import ebpfsched
    from .mapwatch import ebpf_target, free_run
    if args.format or args.runq is not None:
        raise UsageError("--probe goes alone (with --json, -o)")
    if not args.probe > 0:
        raise UsageError("--probe takes a number of seconds more than 0")
    rt, control, pid, elf, pclntab = ebpf_target(ctx, "--probe", ebpfsched.OBJECT)
    left: list = []
    rep = ebpfsched.probe_sched(pid=pid, elf=elf, pclntab=pclntab,
                                lookup_type=rt.target.lookup_type,
                                statuses=rt.layout.status,
                                wait_reasons=rt.layout.wait_reasons,
                                wait=free_run(control, args.probe, left))
    rep["errors"].extend(left)
    return json_text(rep) if args.json else probe_text(rep)


def _run(ctx, args):
    if args.probe is not None:
        return _run_probe(ctx, args)
    rt = ctx.runtime()
    rt.require_process()
    if args.format == "scheddetail":
        s = decode_sched(rt, runq_limit=0, with_gs=True, with_where=False)
        return scheddetail_text(s, rt.layout.wait_reasons)
    limit = (args.runq or None) if args.runq is not None else (None if args.json else DEFAULT_RUNQ)
    s = decode_sched(rt, runq_limit=limit)
    if args.json:
        return json_text(sched_json(s, rt.layout.go_version))
    return sched_text(s)


# --- JSON ---------------------------------------------------------------------------
def sched_json(s, go_version: str) -> dict:
    out = {"go_version": go_version, "clock": s.clock or None, "now_ns": s.now_ns or None}
    out.update((k, s.summary.get(k)) for k in SUMMARY)
    out["global_runq"] = list(s.global_runq)
    out["global_runq_size"] = s.global_runq_size
    out["ps"] = [{"id": p.id, "index": p.index, "status": p.status_name or None,
                  "status_code": p.status, "m": p.m, "schedtick": p.schedtick,
                  "syscalltick": p.syscalltick, "runqsize": p.runqsize, "runq": list(p.runq),
                  "runnext": p.runnext, "gfreecnt": p.gfreecnt, "timers": p.timerslen,
                  "next_timer": None if p.next_timer is None else {
                      "when_ns": p.next_timer.when,
                      "in_ns": p.next_timer.when - s.now_ns if s.now_ns else None,
                      "function": p.next_timer.function or None},
                  "error": p.error} for p in s.ps]
    out["ms"] = [{"id": t.m, "lwp": t.lwp or None, "p": t.p, "curg": t.curg,
                  "lockedg": t.lockedg, "spinning": t.spinning, "blocked": t.blocked,
                  "mallocing": t.mallocing, "throwing": t.throwing,
                  "preemptoff": t.preemptoff, "locks": t.locks, "dying": t.dying,
                  "startfn": t.startfn or None,
                  "where": s.where[t.m].to_json() if t.m in s.where else None,
                  "thread_at": {"function": t.function, "file": t.file, "line": t.line}
                  if t.function else None}
                 for t in s.ms]
    out["errors"] = list(s.errors)
    return out


# --- text ---------------------------------------------------------------------------
def duration_text(ns) -> str:
    """1.2ms, 850µs, 3.40s, 120ns; "-" for None."""
    if ns is None:
        return "-"
    for unit, size in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= size:
            v = ns / size
            return f"{v:.3g}{unit}" if v < 1000 else f"{v:.0f}{unit}"
    return f"{ns}ns"


_STOPPED = {"timeout": "after its seconds", "interrupt": "on interrupt",
            "exited": "the program exited"}


def _reasons(d: dict) -> str:
    return ", ".join(f"{r} {n}" for r, n in d.items()) or "-"


def probe_text(rep: dict) -> str:
    """The scheduler probe's report (runtime.ebpfsched.build_report) as text."""
    probes = ", ".join(f"{pr['function']} {pr['at']}" for pr in rep["probes"])
    out = [f"scheduler of process {rep['pid']}: {rep['seconds']}s probed, "
           f"{rep['transitions']} status changes seen ({probes}); stopped "
           f"{_STOPPED.get(rep['stopped_by'], rep['stopped_by'])}\n\n"]
    rows = [("P", "busy", "runs", "delay p50", "p99", "max", "blocked (parked, by wait reason)")]
    for p in rep["ps"]:
        d = p["delay"]
        rows.append((str(p["p"]), "-" if p["busy"] is None else f"{p['busy']:.2f}",
                     str(p["runs"]), ("≤" if d["p50_ns"] else "") + duration_text(d["p50_ns"]),
                     ("≤" if d["p99_ns"] else "") + duration_text(d["p99_ns"]),
                     duration_text(d["max_ns"]), _reasons(p["blocked"])))
    out.append(_table(rows))
    out.append(f"\nblocked, all Ps: {_reasons(rep['blocked'])}\n")
    if rep["blocked_without_p"]:
        out.append(f"blocked with no P: {_reasons(rep['blocked_without_p'])}\n")
    out.append(f"still waiting at the end (of those that parked): "
               f"{_reasons(rep['waiting_at_end'])}\n")
    out.append("busy: run time per second of the window; delay: runnable to running, "
               "on the P it ran on (p50/p99: a histogram bucket's upper bound)\n")
    out += [f"error: {e}\n" for e in rep["errors"]]
    return "".join(out)


def _v(v) -> str:
    if v is None:
        return "?"
    if v is True or v is False:
        return "true" if v else "false"
    return str(v)


def in_text(ns: int) -> str:
    """A duration from now: "in 2.3s", "in 59m58.1s", "1.5s ago"."""
    ago = ns < 0
    ns = abs(ns)
    tenths = (ns + 50_000_000) // 100_000_000
    h, rest = divmod(tenths, 36000)
    m, t = divmod(rest, 600)
    body = (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{t // 10}.{t % 10}s"
    return f"{body} ago" if ago else f"in {body}"


def _table(rows) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "".join(("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]).rstrip()
                   + "\n" for r in rows)


def sched_text(s) -> str:
    dash = lambda v: "-" if v is None else str(v)  # noqa: E731
    head = " ".join(f"{k}={_v(s.summary.get(k))}" for k in SUMMARY
                    if not (k == "needspinning" and s.summary.get(k) is None))
    out = [head + "\n"]
    if s.clock:
        out.append(f"clock: {s.clock}\n")
    out.append("\n")
    rows = [("P", "status", "schedtick", "syscalltick", "M", "runqsize", "gfreecnt", "timers",
             "next timer", "run queue (* runnext)")]
    for p in s.ps:
        if p.error and p.status is None:
            rows.append((str(p.index), "?", "", "", "", "", "", "", "", f"error: {p.error}"))
            continue
        nt = "-"
        if p.next_timer is not None:
            when = in_text(p.next_timer.when - s.now_ns) if s.now_ns else \
                f"at {p.next_timer.when}ns"
            nt = f"{when} {p.next_timer.function or '?'}"
        q = ([f"{p.runnext}*"] if p.runnext is not None else []) + [str(g) for g in p.runq]
        rq = " ".join(q) or "-"
        if p.error:
            rq += f"  error: {p.error}"
        rows.append((str(p.index) if p.id == p.index else f"{p.index} (id {dash(p.id)})",
                     p.status_name or "?", dash(p.schedtick), dash(p.syscalltick), dash(p.m),
                     dash(p.runqsize), dash(p.gfreecnt), dash(p.timerslen), nt, rq))
    out.append(_table(rows))
    out.append("\n")
    rows = [("M", "LWP", "P", "curg", "lockedg", "mallocing", "throwing", "preemptoff", "locks",
             "dying", "state", "where curg is")]
    for t in s.ms:
        state = ",".join(n for n, on in (("spinning", t.spinning), ("blocked", t.blocked)) if on)
        loc = s.where.get(t.m)
        where = f"{loc.function} {loc.file.rsplit('/', 1)[-1]}:{loc.line}" if loc else \
            (f"(started for {t.startfn})" if t.startfn and t.curg is None else "")
        rows.append((str(t.m), str(t.lwp) if t.lwp else "-", dash(t.p), dash(t.curg),
                     dash(t.lockedg), dash(t.mallocing), dash(t.throwing), t.preemptoff or "-",
                     dash(t.locks), dash(t.dying), state or "-", where))
    out.append(_table(rows))
    out.append("\n")
    n = s.global_runq_size
    ids = " ".join(map(str, s.global_runq))
    more = f" … ({n - len(s.global_runq)} more)" if len(s.global_runq) < n else ""
    out.append(f"global run queue: {n} goroutine{'' if n == 1 else 's'}"
               + (f": {ids}{more}" if ids else "") + "\n")
    out += [f"warning: {e}\n" for e in s.errors]
    return "".join(out)


def scheddetail_text(s, wait_reasons: list) -> str:
    """The runtime's schedtrace(true) text of this stop, line for line: the SCHED line,
    P<i>:, M<id>: and G<goid>: lines. Its time is the walk's clock less
    runtime.starttime (a core keeps no clock of the instant it printed)."""
    none = "nil" if s.nil_form else "-1"
    opt = lambda v: none if v is None else _v(v)  # noqa: E731
    sm = s.summary
    ms = "?"
    if s.now_ns and s.starttime:
        d = s.now_ns - s.starttime
        ms = str(d // 1_000_000 if d >= 0 else -((-d) // 1_000_000))
    line = (f"SCHED {ms}ms: gomaxprocs={_v(sm['gomaxprocs'])} idleprocs={_v(sm['idleprocs'])}"
            f" threads={_v(sm['threads'])} spinningthreads={_v(sm['spinningthreads'])}")
    if sm.get("needspinning") is not None:
        line += f" needspinning={_v(sm['needspinning'])}"
    line += (f" idlethreads={_v(sm['idlethreads'])} runqueue={_v(sm['runqueue'])}"
             f" gcwaiting={_v(sm['gcwaiting'])} nmidlelocked={_v(sm['nmidlelocked'])}"
             f" stopwait={_v(sm['stopwait'])} sysmonwait={_v(sm['sysmonwait'])}\n")
    out = [line]
    for p in s.ps:
        if p.status is None:
            out.append(f"  P{p.index}: error: {p.error}\n")
            continue
        out.append(f"  P{p.index}: status={p.status} schedtick={_v(p.schedtick)}"
                   f" syscalltick={_v(p.syscalltick)} m={opt(p.m if p.m_addr else None)}"
                   f" runqsize={_v(p.runqsize)} gfreecnt={_v(p.gfreecnt)}"
                   f" timerslen={_v(p.timerslen)}\n")
    for t in s.ms:
        out.append(f"  M{t.m}: p={opt(t.p)} curg={opt(t.curg)} mallocing={_v(t.mallocing)}"
                   f" throwing={_v(t.throwing)} preemptoff={t.preemptoff}"
                   f" locks={_v(t.locks)} dying={_v(t.dying)} spinning={_v(t.spinning)}"
                   f" blocked={_v(t.blocked)} lockedg={opt(t.lockedg)}\n")
    n = len(wait_reasons)
    for g in s.gs or ():
        if g.error:
            out.append(f"  G?: error: {g.error}\n")
            continue
        wr = wait_reasons[g.waitreason] if 0 <= g.waitreason < n else "unknown wait reason"
        out.append(f"  G{g.goid}: status={g.status}({wr}) m={opt(g.m)} lockedm={opt(g.lockedm)}\n")
    out += [f"warning: {e}\n" for e in s.errors]
    return "".join(out)


register(View("sched", "The scheduler: Ps, Ms, run queues and timers.", _run, _args,
              word_choices={"--format": ["scheddetail"]},
              doc="From runtime.sched, runtime.allp and runtime.allm: the scheduler's counters\n"
                  "under the runtime's names, each P (status, ticks, its M, its run queue in\n"
                  "order with runnext marked, free gs, timers and the next one), each M (its\n"
                  "thread, P, curg and where it is), and the global run queue.\n"
                  "--format scheddetail prints what GODEBUG=schedtrace=N,scheddetail=1 would\n"
                  "have printed at this stop, in the target's own version's format.\n"
                  "--probe S lets the program run S seconds with an eBPF uprobe on\n"
                  "runtime.casgstatus counting in the kernel, then stops it again as it was:\n"
                  "per P the busy fraction (run time per second), the runnable->running\n"
                  "delay (p50, p99, max) and the goroutines that parked, by wait reason\n"
                  "(names from runtime.waitReasonStrings). Needs root (CAP_BPF, CAP_PERFMON)\n"
                  "and a local process; `gdb-go probe-sched PID` does it with no debugger."))
