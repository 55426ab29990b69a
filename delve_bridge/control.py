"""Execution control over dlv's API v2 (target.base.Control), for probes: the Bridge's
DelveTarget.control().

* RPCServer.CreateBreakpoint at the exact address (``Addr``); a RegisterEquals
  condition becomes the server-side condition ``RBX == <value>``: Delve evaluates
  CPU registers by their upper-case names in a condition (checked with dlv 1.20.2,
  1.23.1, 1.25.2, 1.26.2 and 1.27.1), so calls on other maps never reach us.
* RPCServer.Command {"name": "continue"}; its answer lists every thread that
  stopped at a breakpoint; RPCServer.ListRegisters of each of ours gives the Regs
  for its on-hit.
* the deadline (and Ctrl-C) stop the running target through a second connection
  (Command halt) while the first waits for its `continue`.

Safety: while a probe runs (begin() to finish()), SIGINT and SIGTERM only set a
flag that resume() reads between 0.1 s waits (an exception in the middle of an RPC
could lose half of dlv's answer); Ctrl-C ends the probe as "interrupt" with its
report, SIGTERM goes to the previous handler once everything is cleared. Delve
halts with kill(SIGTRAP); when that lands while the program is stopped the SIGTRAP
stays pending and would kill the program after detach, so after a halt finish()
lets Bridge.settle collect it. Breakpoint ids are also registered with the Bridge,
whose close() clears whatever is left before it detaches, and Delve's own Detach
removes its breakpoints too. Registers are never written.
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Optional

from gdb_go_ext.errors import GoExtError
from gdb_go_ext.target.base import (EXITED, HIT, INTERRUPT, REG_NAMES, STOPPED, TIMEOUT, OnHit,
                                    RegisterEquals, Regs)

from .rpc import Client, ConnectionLost, RPCError


def _running(address) -> Optional[bool]:
    """dlv's State.Running, asked on a second connection; None if it does not say."""
    try:
        with Client(address) as second:
            st = second.call("State", {"NonBlocking": True}, timeout=10).get("State") or {}
        return bool(st.get("Running"))
    except RPCError:
        return None


def halt_pending(client: Client, rid: int) -> dict:
    """Halt through a second connection (the first waits on our `continue`, request rid)
    and return that continue's answer.

    A halt that reaches dlv before it has begun the continue sent just before is lost,
    and the continue then runs on: while no answer comes, halt again, but only while
    dlv says the program runs (a halt of a stopped program leaves a signal queued)."""
    waits = (0.25, 0.5, 1, 2, 2, 5, 10, 30)
    for attempt, wait in enumerate(waits):
        if attempt == 0 or _running(client.address) is not False:
            try:
                with Client(client.address) as second:
                    # (a halt that races the continue can go unanswered until its
                    # connection closes: do not wait long for it)
                    second.call("Command", {"name": "halt"}, timeout=3)
            except RPCError:
                pass    # it may have stopped by itself meanwhile: the answer below says
        try:
            return client.wait(rid, timeout=wait) or {}
        except ConnectionLost:
            if client.closed or attempt == len(waits) - 1:
                raise
        except RPCError:
            return {}
    return {}


class _Signals:
    """While the probe runs (main thread only), SIGINT and SIGTERM only set a flag: an
    exception raised in the middle of an RPC could lose half an answer from dlv and leave
    the connection unusable for the cleanup. resume() looks at the flag between short
    waits; after the cleanup a SIGTERM is handed to the handler that was there before."""

    def __init__(self):
        self.got: Optional[int] = None
        self.old: dict = {}

    def _on(self, signum, frame):
        if self.got != signal.SIGTERM:
            self.got = signum

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._on)

    def restore(self) -> None:
        for sig, h in self.old.items():
            signal.signal(sig, h)
        self.old = {}

    def deliver_term(self) -> None:
        """A SIGTERM that came during the probe, now that the cleanup is done."""
        if self.got != signal.SIGTERM:
            return
        h = signal.getsignal(signal.SIGTERM)
        if callable(h):
            h(signal.SIGTERM, None)
        elif h == signal.SIG_DFL:
            raise SystemExit(128 + signal.SIGTERM)


def _regs(client: Client, thread_id: int) -> Regs:
    r = client.call("ListRegisters", {"ThreadID": thread_id, "IncludeFp": False})
    vals = {}
    for x in (r or {}).get("Regs") or []:
        try:
            vals[str(x.get("Name", "")).lower()] = int(str(x.get("Value", "0")), 16)
        except ValueError:
            continue
    missing = [n for n in REG_NAMES if n not in vals]
    if missing:
        raise GoExtError(f"dlv gave no {', '.join(missing)} for thread {thread_id} "
                         "(probes read the amd64 register ABI)")
    return Regs(*(vals[n] for n in REG_NAMES))


class DelveControl:
    """The Control of a Bridge's live target, halted by bridge.runtime() before begin()."""

    def __init__(self, bridge):
        self.bridge = bridge            # its _running_id, _breakpoints, exited, _rt, settle()
        self.client: Client = bridge.client
        self.target = bridge.target
        self._ours: dict[int, tuple[int, OnHit]] = {}   # address -> (breakpoint id, on-hit)
        self.running: Optional[int] = None     # id of our pending `continue`
        self.halted = False
        self.signals = _Signals()

    # --- Control
    def begin(self) -> None:
        self.signals.install()

    def add_breakpoint(self, addr: int, on_hit: OnHit,
                       condition: Optional[RegisterEquals] = None) -> None:
        bp = {"addr": addr}
        if condition is not None:
            bp["Cond"] = f"{condition.register.upper()} == {condition.value}"
        try:
            r = self.client.call("CreateBreakpoint", {"Breakpoint": bp}, timeout=30)
        except RPCError as e:
            if isinstance(e, ConnectionLost):
                raise
            raise GoExtError(e.message) from None
        bid = ((r or {}).get("Breakpoint") or {}).get("id")
        if not isinstance(bid, int):
            raise GoExtError("dlv made no breakpoint there")
        self.bridge._breakpoints.append(bid)
        self._ours[addr] = (bid, on_hit)

    def resume(self, deadline: float) -> str:
        ours = self._ours
        while True:
            if self.signals.got is not None:
                return INTERRUPT
            if time.monotonic() >= deadline:
                return TIMEOUT
            try:
                st = self._continue(deadline)
            except RPCError as e:
                if isinstance(e, ConnectionLost):
                    raise
                if "exited" in e.message:
                    self.bridge.exited = True
                    return EXITED
                raise GoExtError(f"cannot continue the program: {e.message}") from None
            if st is None:
                return TIMEOUT if self.signals.got is None else INTERRUPT
            state = st.get("State") or {}
            if state.get("exited"):
                self.bridge.exited = True
                return EXITED
            threads = state.get("Threads") or []
            if not threads and state.get("currentThread"):
                threads = [state["currentThread"]]
            seen = stop = False
            for th in threads:
                bp = th.get("breakPoint")
                if not bp:
                    continue
                mine = ours.get(th.get("pc") or bp.get("addr"))
                if mine is None or bp.get("id") != mine[0]:
                    return STOPPED    # someone else's breakpoint (or a panic)
                seen = True
                if mine[1](_regs(self.client, th["id"])):
                    stop = True
            if not seen:
                return STOPPED    # a halt from another client, a signal Delve stops on
            if stop:
                return HIT

    def remove_all(self) -> list:
        left = []
        try:
            if self.running is not None:
                self._halt()
        finally:
            c = self.client
            for bid, _ in self._ours.values():
                try:
                    c.call("ClearBreakpoint", {"Id": bid}, timeout=30)
                except RPCError as e:
                    if "could not find" not in e.message.lower() and \
                            "no breakpoint" not in e.message.lower():
                        left.append(f"breakpoint {bid} not cleared: {e.message}")
                        continue   # left in bridge._breakpoints: close() tries again
                try:
                    self.bridge._breakpoints.remove(bid)
                except ValueError:
                    pass
            self._ours.clear()
        return left

    def finish(self) -> list:
        left = []
        try:
            if self.halted:
                try:
                    if not self.bridge.settle():
                        left.append("a SIGTRAP of dlv's halt may still be pending")
                except RPCError as e:
                    left.append(f"after the halt: {e}")
        finally:
            self.signals.restore()
            self.bridge._rt = None      # the program ran: decode it afresh; it is halted
        self.signals.deliver_term()
        return left

    # --- running
    def _halt(self) -> Optional[dict]:
        """Stop the running target (a second connection), and the state our continue returns.

        Delve halts by kill(SIGTRAP), which may stay pending: finish() settles it."""
        rid, self.running = self.running, None
        if rid is None:
            return None
        self.bridge._running_id = None
        st = halt_pending(self.client, rid)
        self.target.invalidate()
        self.halted = True
        return st

    def _wait(self, rid: int, deadline: float):
        """The answer to rid; None when the deadline or a signal came first."""
        c = self.client
        while True:
            if self.signals.got is not None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                return c.wait(rid, timeout=min(left, 0.1)) or {}
            except ConnectionLost:
                if c.closed:
                    raise

    def _continue(self, deadline: float) -> Optional[dict]:
        """Continue until a stop; None when the deadline or a signal came first (then the
        target is halted)."""
        c = self.client
        self.running = c.send("Command", {"name": "continue"})
        self.bridge._running_id = self.running
        try:
            st = self._wait(self.running, deadline)
        except RPCError:
            self.running = self.bridge._running_id = None
            raise
        if st is None:
            self._halt()
            return None
        self.running = self.bridge._running_id = None
        self.target.invalidate()
        return st
