"""Execution control over gdb (target.base.Control), for probes: GdbTarget.control().

Our breakpoints are internal, silent gdb.Breakpoints whose stop() reads the
registers of the thread that hit and asks the probe's on-hit, in gdb, without a
full stop: False lets the program go on at once (calls on other maps, calls
whose return address has a breakpoint already). A breakpoint's condition is left
to the on-hit, which counts the calls on other maps.

The deadline stops the program with a SIGINT sent from gdb's own event loop,
only while the program runs (so none is ever left pending), with `handle SIGINT
stop print nopass` in force from begin() to finish(), which restores the user's
setting, collects a SIGINT a breakpoint stop may have raced, and selects the
thread the user had selected again. Registers are never written.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Optional

import gdb

from ..errors import GoExtError
from ..target.base import (EXITED, HIT, INTERRUPT, REG_NAMES, SIGNAL, STOPPED, TIMEOUT, OnHit,
                           RegisterEquals, Regs)

_U64 = (1 << 64) - 1  # gdb types rax..r14 as int64_t: keep them unsigned


def _regs() -> Regs:
    f = gdb.newest_frame()
    return Regs(*(int(f.read_register(n)) & _U64 for n in REG_NAMES))


class _Breakpoint(gdb.Breakpoint):
    """An internal, silent breakpoint whose stop() asks the on-hit."""

    def __init__(self, control: "GdbControl", addr: int, on_hit: OnHit):
        super().__init__(f"*{addr:#x}", type=gdb.BP_BREAKPOINT, internal=True)
        self.silent = True
        self.addr = addr
        self._control = control
        self._on_hit = on_hit

    def stop(self):
        c = self._control
        if c.closing:
            return False
        try:
            if self._on_hit(_regs()):
                c.asked_stop = True
                return True
            return False
        except KeyboardInterrupt:
            c.interrupted = True
            return True
        except Exception as e:  # never let a bug of ours leave the program stuck: resume raises it
            if c.internal_error is None:
                c.internal_error = e
            return True


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


def _alive(inf) -> bool:
    try:
        return inf.is_valid() and inf.pid != 0 and len(inf.threads()) > 0
    except gdb.error:
        return False


class GdbControl:
    """The Control of the selected inferior: live (GdbTarget.control checks), amd64, stopped."""

    def __init__(self, inferior):
        arch = inferior.architecture().name() if hasattr(inferior, "architecture") else ""
        if "x86-64" not in arch:
            raise GoExtError(f"probes read the amd64 register ABI; this target is {arch or 'unknown'}")
        if any(th.is_running() for th in inferior.threads()):
            raise GoExtError("the program is running; interrupt it first (probes insert "
                             "breakpoints into a stopped program)")
        self.inf = inferior
        self.pid = inferior.pid
        self._bps: list[_Breakpoint] = []
        self.closing = False
        self.asked_stop = False
        self.interrupted = False
        self.internal_error: Optional[BaseException] = None
        self.in_continue = False
        self.sigint_sent = False
        self.sigint_seen = False
        self.timed_out = False
        self.last_stop = None
        self._thread_num: Optional[int] = None
        self._sig: Optional[tuple] = None
        self._handling_changed = False
        self._connected = False
        self._deadline = 0.0
        self._timer: Optional[threading.Thread] = None
        self._cancel = threading.Event()

    # --- Control
    def begin(self) -> None:
        thread = gdb.selected_thread()
        self._thread_num = thread.global_num if thread is not None else None
        self._sig = _sigint_handling()
        gdb.events.stop.connect(self._on_stop_event)
        self._connected = True
        if self._sig is not None and (not self._sig[0] or self._sig[2]):
            self._handling_changed = True
            gdb.execute("handle SIGINT stop print nopass", to_string=True)

    def add_breakpoint(self, addr: int, on_hit: OnHit,
                       condition: Optional[RegisterEquals] = None) -> None:
        try:
            self._bps.append(_Breakpoint(self, addr, on_hit))
        except gdb.error as e:
            raise GoExtError(str(e).splitlines()[0] if str(e) else "gdb refused") from None

    def resume(self, deadline: float) -> str:
        self._deadline = deadline
        if self._timer is None:
            self._start_timer()
        while True:
            if self.interrupted:
                return INTERRUPT
            if time.monotonic() >= deadline:
                return TIMEOUT
            why = self._continue()
            if why is not None:
                return why

    def remove_all(self) -> list:
        """Delete every breakpoint we made; retried, never stopped by Ctrl-C."""
        self.closing = True
        self._stop_timer()
        bps, self._bps, left = self._bps, [], []
        for bp in bps:
            for _ in range(5):
                try:
                    if bp.is_valid():
                        bp.delete()
                    break
                except KeyboardInterrupt:
                    continue
                except gdb.error as e:
                    left.append(f"breakpoint not deleted: {bp.addr:#x}: {e}")
                    break
        return left

    def finish(self) -> list:
        self.closing = True
        self._stop_timer()
        try:
            self._drain_sigint()
        finally:
            if self._connected:
                gdb.events.stop.disconnect(self._on_stop_event)
                self._connected = False
            if self._handling_changed:
                stop, prt, pas = self._sig
                gdb.execute("handle SIGINT %s %s %s" % (
                    "stop" if stop else "nostop", "print" if prt else "noprint",
                    "pass" if pas else "nopass"), to_string=True)
                self._handling_changed = False
            self._reselect()
        return []

    # --- running
    def _continue(self) -> Optional[str]:
        """One `continue`: why it ended, or None to continue again."""
        self.last_stop = None
        self.asked_stop = False
        self.in_continue = True
        try:
            gdb.execute("continue", to_string=True)
        except KeyboardInterrupt:
            return INTERRUPT
        except gdb.error as e:
            if "Quit" in str(e) or "nterrupt" in str(e):
                return INTERRUPT
            if not _alive(self.inf):
                return EXITED
            raise GoExtError(f"cannot continue the program: {str(e).splitlines()[0]}") from None
        finally:
            self.in_continue = False
        if not _alive(self.inf):
            return EXITED
        if self.interrupted:
            return INTERRUPT
        if self.internal_error is not None:
            raise self.internal_error
        if self.asked_stop:
            return HIT
        ev = self.last_stop
        if isinstance(ev, gdb.SignalEvent) and ev.stop_signal == "SIGINT":
            return TIMEOUT if self.timed_out else INTERRUPT
        if isinstance(ev, gdb.BreakpointEvent):
            ours = set(self._bps)
            if all(b in ours for b in ev.breakpoints):
                return None  # ours, stopped for a reason already handled
            return STOPPED
        if isinstance(ev, gdb.SignalEvent):
            return SIGNAL
        return STOPPED

    def _on_stop_event(self, ev) -> None:
        self.last_stop = ev
        if isinstance(ev, gdb.SignalEvent) and ev.stop_signal == "SIGINT":
            self.sigint_seen = True

    # --- the deadline
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

    def _start_timer(self) -> None:
        def run():
            deadline = self._deadline
            while not self._cancel.wait(min(0.25, max(0.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    gdb.post_event(self._timeout_event)
                    # repeat until the loop notices (a post can land between continues)
                    deadline = time.monotonic() + 0.5
        self._timer = threading.Thread(target=run, name="go-probe-timeout", daemon=True)
        self._timer.start()

    def _stop_timer(self) -> None:
        self._cancel.set()
        if self._timer is not None:
            self._timer.join(2)

    # --- leaving it as it was
    def _drain_sigint(self) -> None:
        """A SIGINT we sent must never outlive the probe (it would kill the program
        after detach). It is sent only while the program runs, so it is normally
        seen; if a breakpoint stop raced it, continue once to collect it."""
        for _ in range(3):
            if not self.sigint_sent or self.sigint_seen or not _alive(self.inf):
                return
            self.last_stop = None
            try:
                gdb.execute("continue", to_string=True)
            except (gdb.error, KeyboardInterrupt):
                pass
            if not isinstance(self.last_stop, gdb.SignalEvent):
                return  # stopped for something else (a user breakpoint): leave it there

    def _reselect(self) -> None:
        if self._thread_num is None:
            return
        try:
            for th in self.inf.threads():
                if th.global_num == self._thread_num and th.is_valid():
                    th.switch()
                    gdb.execute("frame 0", to_string=True)
                    return
        except gdb.error:
            pass
