"""`delve-bridge ... mapwatch EXPR [--max-hits N] [--timeout S] [--writes] [--json] [-o FILE]`.

The Delve driver of the map-access probe. Everything that decides -- which
runtime functions, their entry addresses, whether a hit is on the watched map,
the key, the goroutine, the caller, found or missing, the summary and the JSON
-- is gdb_go_ext/runtime/probes.py, the very code `go mapwatch` runs in gdb.
This file only drives dlv's API v2:

* RPCServer.CreateBreakpoint at each probed function's exact entry address
  (``Addr``), with the server-side condition ``RBX == <map>``: Delve evaluates
  CPU registers by their upper-case names in a condition (checked with dlv
  1.20.2, 1.23.1, 1.25.2, 1.26.2 and 1.27.1), so calls on other maps never
  reach us. MapWatch still checks RBX itself.
* RPCServer.Command {"name": "continue"}; its answer lists every thread that
  stopped at one of our breakpoints; RPCServer.ListRegisters of each gives the
  Regs for MapWatch.on_entry / on_return.
* a breakpoint at each call site's return address, the first time a hit comes
  from it, to read the found flag there (RAX / BL).
* the timeout (and Ctrl-C) stop the running target through a second
  connection (Command halt) while the first waits for its `continue`.

Safety: every breakpoint created here is cleared (RPCServer.ClearBreakpoint)
in a finally block. While the probe runs, SIGINT and SIGTERM only set a flag
that the loop reads between 0.1 s waits (an exception in the middle of an RPC
could lose half of dlv's answer); Ctrl-C ends the probe as "interrupt" with
its report, SIGTERM goes to the previous handler once everything is cleared.
Delve halts with kill(SIGTRAP); when that lands while the program is stopped
the SIGTRAP stays pending and would kill the program after detach, so after a
halt settle() checks /proc for it and lets Delve collect it (Bridge.settle). The ids are also registered with the Bridge,
whose close() clears whatever is left before it detaches, and Delve's own
Detach removes its breakpoints too. Registers are never written.
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Optional

from gdb_go_ext.errors import GoExtError, UsageError
from gdb_go_ext.runtime import probes as P
from gdb_go_ext.views.mapwatch import DEFAULT_MAX_HITS, DEFAULT_TIMEOUT, add_mapwatch_args

from . import bridge as bridge_mod  # a cycle: used at run time only
from .rpc import Client, ConnectionLost, RPCError

CORE_SENTENCE = "probes need a live process, and this target is a core file."


add_arguments = add_mapwatch_args


class _Signals:
    """While the probe runs (main thread only), SIGINT and SIGTERM only set a flag: an
    exception raised in the middle of an RPC could lose half an answer from dlv and leave
    the connection unusable for the cleanup. The loop looks at the flag between short
    waits; after the cleanup a SIGTERM is handed to the handler that was there before."""

    def __init__(self):
        self.got: Optional[int] = None
        self.old: dict = {}
        self.active = threading.current_thread() is threading.main_thread()

    def _on(self, signum, frame):
        if self.got != signal.SIGTERM:
            self.got = signum

    def __enter__(self):
        if self.active:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._on)
        return self

    def restore(self) -> None:
        for sig, h in self.old.items():
            signal.signal(sig, h)
        self.old = {}

    def __exit__(self, *exc):
        self.restore()

    def deliver_term(self) -> None:
        """A SIGTERM that came during the probe, now that the cleanup is done."""
        if self.got != signal.SIGTERM:
            return
        h = signal.getsignal(signal.SIGTERM)
        if callable(h):
            h(signal.SIGTERM, None)
        elif h == signal.SIG_DFL:
            raise SystemExit(128 + signal.SIGTERM)


def _regs(client: Client, thread_id: int) -> P.Regs:
    r = client.call("ListRegisters", {"ThreadID": thread_id, "IncludeFp": False})
    vals = {}
    for x in (r or {}).get("Regs") or []:
        try:
            vals[str(x.get("Name", "")).lower()] = int(str(x.get("Value", "0")), 16)
        except ValueError:
            continue
    missing = [n for n in P.REG_NAMES if n not in vals]
    if missing:
        raise GoExtError(f"dlv gave no {', '.join(missing)} for thread {thread_id} "
                         "(probes read the amd64 register ABI)")
    return P.Regs(vals["rip"], vals["rsp"], vals["rax"], vals["rbx"], vals["rcx"],
                  vals["rdi"], vals["r14"])


class DelveMapWatch:
    """One probe run on a Bridge: bridge.runtime() is halted; run() returns stopped_by."""

    def __init__(self, bridge, watch: P.MapWatch, timeout: float, signals: "_Signals"):
        self.signals = signals
        self.bridge = bridge
        self.client: Client = bridge.client
        self.watch = watch
        self.timeout = timeout
        self.entry_ids: dict[int, int] = {}    # address -> breakpoint id
        self.ret_ids: dict[int, int] = {}
        self.returns_seen: list[int] = []
        self.running: Optional[int] = None     # id of our pending `continue`
        self.halted = False

    # --- breakpoints
    def _create(self, addr: int, cond: str = "") -> int:
        bp = {"addr": addr}
        if cond:
            bp["Cond"] = cond
        r = self.client.call("CreateBreakpoint", {"Breakpoint": bp}, timeout=30)
        bid = ((r or {}).get("Breakpoint") or {}).get("id")
        if not isinstance(bid, int):
            raise GoExtError(f"dlv made no breakpoint at {addr:#x}")
        self.bridge._breakpoints.append(bid)
        return bid

    def insert_entries(self) -> None:
        cond = f"RBX == {self.watch.map_addr}"
        for p in self.watch.probes:
            try:
                self.entry_ids[p.address] = self._create(p.address, cond)
            except RPCError as e:
                if isinstance(e, ConnectionLost):
                    raise
                raise GoExtError(f"cannot put a breakpoint at {p.function} "
                                 f"({p.address:#x}): {e.message}") from None

    def insert_return(self, addr: int) -> None:
        if addr in self.ret_ids:
            return
        try:
            self.ret_ids[addr] = self._create(addr)
            self.returns_seen.append(addr)
        except RPCError as e:
            if isinstance(e, ConnectionLost):
                raise
            self.ret_ids[addr] = -1     # never retried; those hits keep found = null
            self.watch.error(f"cannot put a breakpoint at the return address {addr:#x}: "
                             f"{e.message}")

    def clear_all(self) -> None:
        """Clear every breakpoint we made. A failure is recorded, never raised."""
        c = self.client
        for bid in list(self.entry_ids.values()) + list(self.ret_ids.values()):
            if bid < 0:
                continue
            try:
                c.call("ClearBreakpoint", {"Id": bid}, timeout=30)
            except RPCError as e:
                if "could not find" not in e.message.lower() and \
                        "no breakpoint" not in e.message.lower():
                    self.watch.error(f"breakpoint {bid} not cleared: {e.message}")
                    continue   # left in bridge._breakpoints: close() tries again
            try:
                self.bridge._breakpoints.remove(bid)
            except ValueError:
                pass
        self.entry_ids.clear()
        self.ret_ids.clear()

    # --- running
    def _halt(self) -> Optional[dict]:
        """Stop the running target (a second connection), and the state our continue returns.

        Delve halts by kill(SIGTRAP), which may stay pending: settle() deals with it."""
        rid, self.running = self.running, None
        if rid is None:
            return None
        self.bridge._running_id = None
        st = bridge_mod.halt_pending(self.client, rid)
        self.bridge.target.invalidate()
        self.halted = True
        return st

    def settle(self) -> None:
        """After a halt: no SIGTRAP of Delve's may be left pending at detach (see Bridge.settle)."""
        if not self.bridge.settle():
            self.watch.error("a SIGTRAP of dlv's halt may still be pending")

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
        self.bridge.target.invalidate()
        return st

    def _stop_reason(self) -> str:
        return "timeout" if self.signals.got is None else "interrupt"

    def run(self) -> str:
        w = self.watch
        c = self.client
        deadline = time.monotonic() + self.timeout
        entries = w.by_addr
        while True:
            try:
                st = self._continue(deadline)
            except RPCError as e:
                if isinstance(e, ConnectionLost):
                    raise
                if "exited" in e.message:
                    self.bridge.exited = True
                    return "exited"
                raise GoExtError(f"cannot continue the program: {e.message}") from None
            if st is None:
                return self._stop_reason()
            state = st.get("State") or {}
            if state.get("exited"):
                self.bridge.exited = True
                return "exited"
            threads = state.get("Threads") or []
            if not threads and state.get("currentThread"):
                threads = [state["currentThread"]]
            ours = False
            for th in threads:
                bp = th.get("breakPoint")
                if not bp:
                    continue
                pc = th.get("pc") or bp.get("addr")
                if pc in entries and bp.get("id") == self.entry_ids.get(pc):
                    ours = True
                    hit = w.on_entry(entries[pc], _regs(c, th["id"]))
                    if hit is not None and hit.ret not in self.ret_ids:
                        self.insert_return(hit.ret)
                elif pc in self.ret_ids and bp.get("id") == self.ret_ids.get(pc):
                    ours = True
                    w.on_return(_regs(c, th["id"]))
                else:
                    return "stopped"    # someone else's breakpoint (or a panic)
            if not ours:
                return "stopped"    # a halt from another client, a signal Delve stops on
            if w.done:
                return "max-hits"
            if time.monotonic() >= deadline or self.signals.got is not None:
                return self._stop_reason()


def run_mapwatch(bridge, expr: str, max_hits: int = DEFAULT_MAX_HITS,
                 timeout: float = DEFAULT_TIMEOUT, writes: bool = False) -> dict:
    """Probe one map through the bridge; the report of runtime.probes.report."""
    if max_hits < 1:
        raise UsageError("--max-hits must be 1 or more")
    if not timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if bridge.mode == "core" or not getattr(bridge.target, "is_live", False):
        raise GoExtError(CORE_SENTENCE)
    rt = bridge.runtime()
    shown, mt, addr = bridge.resolve_map(rt, expr)
    watch = P.new_watch(rt, shown, mt, addr, writes, max_hits, bridge.target.symbol_address)
    stopped_by = "error"
    with _Signals() as sigs:
        d = DelveMapWatch(bridge, watch, timeout, sigs)
        try:
            d.insert_entries()
            watch.start = watch.clock()
            stopped_by = d.run()
        except KeyboardInterrupt:   # not the main thread: Python's own Ctrl-C
            stopped_by = "interrupt"
        finally:
            watch.end = watch.clock()
            try:
                if d.running is not None:
                    d._halt()
            finally:
                d.clear_all()
                if d.halted:
                    try:
                        d.settle()
                    except RPCError as e:
                        watch.error(f"after the halt: {e}")
    sigs.deliver_term()
    # the target is halted, as the bridge keeps it between views
    bridge._rt = None
    return P.report(watch, stopped_by, mt.name, d.returns_seen)
