"""`go mapwatch EXPR [--max-hits N] [--timeout S] [--writes] [--json] [-o FILE]`.

Breakpoints at the entry of the runtime's map functions (runtime/probes.py
says which and how to read them); each one's stop() looks at RBX and lets the
program go on unless the hit is on the watched map and its return address has
no breakpoint yet. Then the command inserts that return breakpoint and
continues. Nothing waits for the user.

Safety: every breakpoint this command inserts is deleted on every way out
(the end, an error, Ctrl-C, the timeout), in a finally block; registers are
never written; a target that was stopped is stopped again at the end, with the
thread the user had selected selected again. The timeout stops the program
with a SIGINT sent from gdb's own event loop (only while the program runs, so
no SIGINT is ever left pending), with `handle SIGINT stop nopass` in force for
the probe and the user's setting restored afterwards.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Optional

import gdb

from ..errors import GoExtError, UsageError
from ..runtime import probes as P
from ..views import mapwatch as view
from . import session
from .commands import GoCommand, terminal_width
from .map_command import resolve



class _ProbeBreakpoint(gdb.Breakpoint):
    """An internal, silent breakpoint whose stop() asks the probe."""

    def __init__(self, probe: "_Probe", addr: int, on_stop):
        super().__init__(f"*{addr:#x}", type=gdb.BP_BREAKPOINT, internal=True)
        self.silent = True
        self.probe_addr = addr
        self._probe = probe
        self._on_stop = on_stop

    def stop(self):
        return self._probe.guarded(self._on_stop, self)


def _regs() -> P.Regs:
    f = gdb.newest_frame()
    mask = (1 << 64) - 1  # gdb types rax..r14 as int64_t: keep them unsigned
    return P.Regs(*(int(f.read_register(n)) & mask for n in P.REG_NAMES))


def _sigint_handling() -> Optional[tuple[bool, bool, bool]]:
    """(stop, print, pass) of gdb's SIGINT handling."""
    try:
        text = gdb.execute("info signals SIGINT", to_string=True)
    except gdb.error:
        return None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "SIGINT" and len(parts) >= 4:
            return tuple(p == "Yes" for p in parts[1:4])  # type: ignore[return-value]
    return None


class _Probe:
    def __init__(self, watch: P.MapWatch, pid: int, timeout: float):
        self.watch = watch
        self.pid = pid
        self.timeout = timeout
        self.entry_bps: list[_ProbeBreakpoint] = []
        self.ret_bps: dict[int, _ProbeBreakpoint] = {}
        self.need_return: set[int] = set()
        self.closing = False
        self.in_continue = False
        self.sigint_sent = False
        self.sigint_seen = False
        self.interrupted = False
        self.timed_out = False
        self.last_stop = None
        self.internal_error: Optional[BaseException] = None
        self._timer: Optional[threading.Thread] = None
        self._cancel = threading.Event()

    # --- breakpoint callbacks (gdb's thread, inferior stopped) ---------------
    def guarded(self, fn, bp) -> bool:
        if self.closing:
            return False
        try:
            return fn(bp)
        except KeyboardInterrupt:
            self.interrupted = True
            return True
        except Exception as e:  # never let a bug of ours leave the program stuck
            self.watch.error(f"{type(e).__name__}: {e}")
            if self.internal_error is None:
                self.internal_error = e
            return True

    def entry_stop(self, bp) -> bool:
        regs = _regs()
        hit = self.watch.on_entry(self.watch.by_addr[bp.probe_addr], regs)
        if hit is None:
            return False
        if hit.ret not in self.ret_bps:
            self.need_return.add(hit.ret)
            return True
        return False

    def return_stop(self, bp) -> bool:
        self.watch.on_return(_regs())
        return self.watch.done

    # --- stops and the timeout -----------------------------------------------
    def on_stop_event(self, ev) -> None:
        self.last_stop = ev
        if isinstance(ev, gdb.SignalEvent) and ev.stop_signal == "SIGINT":
            self.sigint_seen = True

    def _timeout_event(self) -> None:
        # gdb's main thread, from its event loop: inside our `continue` the
        # program is running, so the SIGINT stops it now and is reported now.
        if self.closing or not self.in_continue or self.sigint_sent:
            return
        self.timed_out = True
        self.sigint_sent = True
        try:
            os.kill(self.pid, signal.SIGINT)
        except OSError:
            pass

    def start_timer(self) -> None:
        def run():
            deadline = time.monotonic() + self.timeout
            while not self._cancel.wait(min(0.25, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    gdb.post_event(self._timeout_event)
                    # repeat until the loop notices (a post can land between continues)
                    deadline = time.monotonic() + 0.5
        self._timer = threading.Thread(target=run, name="go-mapwatch-timeout", daemon=True)
        self._timer.start()

    def stop_timer(self) -> None:
        self._cancel.set()
        if self._timer is not None:
            self._timer.join(2)

    # --- breakpoints -----------------------------------------------------------
    def insert_entries(self) -> None:
        for p in self.watch.probes:
            self.entry_bps.append(_ProbeBreakpoint(self, p.address, self.entry_stop))

    def insert_returns(self) -> None:
        for addr in sorted(self.need_return):
            if addr not in self.ret_bps:
                self.ret_bps[addr] = _ProbeBreakpoint(self, addr, self.return_stop)
        self.need_return.clear()

    def delete_all(self) -> list[str]:
        """Delete every breakpoint we made; retried, never stopped by Ctrl-C."""
        left = []
        for bp in self.entry_bps + list(self.ret_bps.values()):
            for _ in range(5):
                try:
                    if bp.is_valid():
                        bp.delete()
                    break
                except KeyboardInterrupt:
                    continue
                except gdb.error as e:
                    left.append(f"{bp.probe_addr:#x}: {e}")
                    break
        self.entry_bps.clear()
        self.ret_bps.clear()
        return left


def _alive(inf) -> bool:
    try:
        return inf.is_valid() and inf.pid != 0 and len(inf.threads()) > 0
    except gdb.error:
        return False


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
        if not getattr(target, "is_live", False):
            raise GoExtError("probes need a live process, and this target is "
                             + ("a core file" if getattr(target, "has_process", False)
                                else "not running") + ".")
        inf = gdb.selected_inferior()
        arch = inf.architecture().name() if hasattr(inf, "architecture") else ""
        if "x86-64" not in arch:
            raise GoExtError(f"probes read the amd64 register ABI; this target is {arch or 'unknown'}")
        if any(th.is_running() for th in inf.threads()):
            raise GoExtError("the program is running; interrupt it first (probes insert "
                             "breakpoints into a stopped program)")
        shown, gtype, addr = resolve(" ".join(args.expr))
        mt = target.convert_type(gtype)
        watch = P.new_watch(rt, shown, mt, addr, args.writes, args.max_hits, target.symbol_address)
        returns: list[int] = []
        stopped_by = self._probe(watch, inf, args.timeout, returns)
        rep = P.report(watch, stopped_by, mt.name, returns)
        if args.json:
            self.emit_json(rep, args.output)
        else:
            self.emit(view.render_text(rep, color=self.color(args.output),
                                       width=terminal_width()), args.output)

    def _probe(self, watch: P.MapWatch, inf, timeout: float, returns: list) -> str:
        probe = _Probe(watch, inf.pid, timeout)
        thread = gdb.selected_thread()
        thread_num = thread.global_num if thread is not None else None
        sig = _sigint_handling()
        stopped_by = "error"
        gdb.events.stop.connect(probe.on_stop_event)
        try:
            if sig is not None and (not sig[0] or sig[2]):
                gdb.execute("handle SIGINT stop print nopass", to_string=True)
            probe.insert_entries()
            watch.start = watch.clock()
            probe.start_timer()
            stopped_by = self._loop(probe, inf)
        except KeyboardInterrupt:
            stopped_by = "interrupt"
        finally:
            probe.closing = True
            probe.stop_timer()
            returns.extend(probe.ret_bps)
            left = probe.delete_all()
            watch.end = watch.clock()
            try:
                self._drain_sigint(probe, inf)
            finally:
                gdb.events.stop.disconnect(probe.on_stop_event)
                if sig is not None and (not sig[0] or sig[2]):
                    gdb.execute("handle SIGINT %s %s %s" % (
                        "stop" if sig[0] else "nostop", "print" if sig[1] else "noprint",
                        "pass" if sig[2] else "nopass"), to_string=True)
                self._reselect(thread_num)
            for msg in left:
                watch.error(f"breakpoint not deleted: {msg}")
        if probe.internal_error is not None and stopped_by == "error":
            raise probe.internal_error
        return stopped_by

    def _loop(self, probe: _Probe, inf) -> str:
        watch = probe.watch
        while True:
            probe.last_stop = None
            probe.in_continue = True
            try:
                gdb.execute("continue", to_string=True)
            except KeyboardInterrupt:
                return "interrupt"
            except gdb.error as e:
                if "Quit" in str(e) or "nterrupt" in str(e):
                    return "interrupt"
                if not _alive(inf):
                    return "exited"
                raise GoExtError(f"cannot continue the program: {str(e).splitlines()[0]}") \
                    from None
            finally:
                probe.in_continue = False
            if not _alive(inf):
                return "exited"
            if probe.interrupted:
                return "interrupt"
            if probe.internal_error is not None:
                return "error"
            if watch.done:
                return "max-hits"
            if probe.need_return:
                probe.insert_returns()
                continue
            ev = probe.last_stop
            if isinstance(ev, gdb.SignalEvent) and ev.stop_signal == "SIGINT":
                return "timeout" if probe.timed_out else "interrupt"
            if isinstance(ev, gdb.BreakpointEvent):
                ours = set(probe.ret_bps.values()) | set(probe.entry_bps)
                if all(b in ours for b in ev.breakpoints):
                    continue  # ours, stopped for a reason already handled
                return "stopped"
            if isinstance(ev, gdb.SignalEvent):
                return "signal"
            return "stopped"

    @staticmethod
    def _drain_sigint(probe: _Probe, inf) -> None:
        """A SIGINT we sent must never outlive the probe (it would kill the program
        after detach). It is sent only while the program runs, so it is normally
        seen; if a breakpoint stop raced it, continue once to collect it."""
        for _ in range(3):
            if not probe.sigint_sent or probe.sigint_seen or not _alive(inf):
                return
            probe.last_stop = None
            try:
                gdb.execute("continue", to_string=True)
            except (gdb.error, KeyboardInterrupt):
                pass
            if not isinstance(probe.last_stop, gdb.SignalEvent):
                return  # stopped for something else (a user breakpoint): leave it there

    @staticmethod
    def _reselect(thread_num: Optional[int]) -> None:
        if thread_num is None:
            return
        try:
            for th in gdb.selected_inferior().threads():
                if th.global_num == thread_num and th.is_valid():
                    th.switch()
                    gdb.execute("frame 0", to_string=True)
                    return
        except gdb.error:
            pass
