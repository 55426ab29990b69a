"""A debugging session over a headless dlv, and the views it serves.

    from delve_bridge import Bridge
    with Bridge.attach(pid) as b:
        for g in b.goroutines():
            print(g.id, g.status, g.wait_reason)
        print(b.view(["stacks", "--min", "2"]))

The views run the very decoders and writers the gdb commands run
(gdb_go_ext/gdb/goroutine_commands.py, map_command.py) on a DelveTarget, so
their text and JSON are the same by construction.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from typing import Optional

from gdb_go_ext.analysis import triage
from gdb_go_ext.errors import DecodeError, GoExtError, UsageError
from gdb_go_ext.gcpause import gc_paused
from gdb_go_ext.binary import types as T
from gdb_go_ext.binary.elf import ElfFile
from gdb_go_ext.runtime.goroutines import GoroutineWalker
from gdb_go_ext.runtime.goruntime import GoRuntime
from gdb_go_ext.runtime.maps import decode_map
from gdb_go_ext.runtime.version import parse_version
from gdb_go_ext.views import goroutines as gview
from gdb_go_ext.views import maps as mview
from gdb_go_ext.views import version as vview
from gdb_go_ext.views.console import json_text, write_file

from .control import DelveControl, halt_pending
from .dlv import DlvError, DlvProcess, check_listen
from .rpc import Client, ConnectionLost, RPCError
from .target import DelveTarget, executable_of_pid

VIEWS = ("goroutines", "goroutine", "stacks", "map", "mapwatch", "version")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError.of(message, self.format_usage())

    def exit(self, status=0, message=None):
        if message:
            sys.stdout.write(message)
        raise _HelpShown()


class _HelpShown(Exception):
    pass


def _parsers() -> dict:
    ps = {}
    p = ps["goroutines"] = _Parser(prog="goroutines", description="every goroutine from runtime.allgs")
    gview.add_goroutines_args(p)
    p = ps["stacks"] = _Parser(prog="stacks", description="goroutines bucketed by identical stack")
    gview.add_stacks_args(p)
    p = ps["goroutine"] = _Parser(prog="goroutine", description="backtrace of one goroutine")
    p.add_argument("id", type=int, help="goroutine id")
    p.add_argument("command", nargs="?", choices=["bt", "backtrace"], help="bt (the default)")
    p.add_argument("-t", dest="depth", type=int, default=256, help="at most this many frames")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")
    p = ps["map"] = _Parser(prog="map", description="a Go map: entries and real internals")
    mview.add_map_args(p)
    from . import mapwatch
    p = ps["mapwatch"] = _Parser(prog="mapwatch", description="which keys a live program looks up "
                                 "in one map, by whom, and whether they were found")
    mapwatch.add_arguments(p)
    p = ps["version"] = _Parser(prog="version", description="the target's Go version and runtime layouts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")
    return ps


PARSERS = _parsers()


def _go_version_of(binary: Optional[str]) -> Optional[tuple]:
    if not binary:
        return None
    try:
        return parse_version(ElfFile.open(binary).go_version()) or None
    except (OSError, DecodeError):
        return None


def sigtrap_pending(pid: int) -> Optional[bool]:
    """Is a SIGTRAP queued for the process or one of its threads? None if /proc says nothing."""
    bit = 1 << (signal.SIGTRAP - 1)
    try:
        names = [f"/proc/{pid}/status"] + [f"/proc/{pid}/task/{t}/status"
                                           for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return None
    seen = False
    for name in names:
        try:
            with open(name) as f:
                for line in f:
                    if line.startswith(("ShdPnd:", "SigPnd:")):
                        seen = True
                        if int(line.split()[1], 16) & bit:
                            return True
        except (OSError, ValueError, IndexError):
            continue
    return False if seen else None


class Bridge:
    """One dlv session. Use Bridge.exec / attach / core / connect, then views; close() ends it."""

    def __init__(self, mode: str, client: Client, executable: str, dlv: Optional[DlvProcess] = None,
                 pid: Optional[int] = None, core: Optional[str] = None, direct_memory: bool = True):
        self.mode = mode
        self.dlv = dlv
        self.client = client
        self.pid = pid
        self._running_id: Optional[int] = None   # the id of our pending `continue`
        self._halted_by_us = False
        self._breakpoints: list[int] = []
        self._rt: Optional[GoRuntime] = None
        self.closed = False
        self.exited = False
        try:
            st = client.call("State", {"NonBlocking": True}).get("State") or {}
            self.exited = bool(st.get("exited"))
            self._was_running = bool(st.get("Running"))
            direct = None
            if direct_memory and os.environ.get("DELVE_BRIDGE_DIRECT_MEMORY", "1") != "0":
                from gdb_go_ext.target.direct import open_source
                direct = open_source(core_path=core) if core else \
                    open_source(pid=pid) if pid and mode != "connect" else None
            self.target = DelveTarget(client, executable, is_live=(mode != "core"), direct=direct,
                                      pid=pid if mode in ("attach", "exec") else None, core=core,
                                      control=lambda: DelveControl(self))
        except BaseException:
            self.close()
            raise

    # --- starting
    @classmethod
    def exec(cls, binary: str, args=(), dlv: Optional[str] = None, run: bool = True,
             direct_memory: bool = True, **kw) -> "Bridge":
        binary = os.path.abspath(binary)
        if not os.path.isfile(binary):
            raise DlvError(f"no such program {binary}")
        p = DlvProcess("exec", binary=binary, args=args, dlv=dlv, go_version=_go_version_of(binary), **kw)
        b = cls._started("exec", p, binary, direct_memory=direct_memory)
        if run:
            b.cont()
        return b

    @classmethod
    def attach(cls, pid: int, binary: Optional[str] = None, dlv: Optional[str] = None,
               direct_memory: bool = True, **kw) -> "Bridge":
        exe = binary or executable_of_pid(pid)
        if exe is None or not os.path.exists(exe):
            if not os.path.exists(f"/proc/{pid}"):
                raise DlvError(f"no process {pid}")
            raise DlvError(f"cannot find the executable of process {pid}; pass it with --binary")
        p = DlvProcess("attach", pid=pid, binary=binary, dlv=dlv, go_version=_go_version_of(exe), **kw)
        return cls._started("attach", p, exe, pid, direct_memory=direct_memory)

    @classmethod
    def core(cls, binary: str, core: str, dlv: Optional[str] = None, direct_memory: bool = True,
             **kw) -> "Bridge":
        for f in (binary, core):
            if not os.path.isfile(f):
                raise DlvError(f"no such file {f}")
        binary = os.path.abspath(binary)
        p = DlvProcess("core", binary=binary, core=os.path.abspath(core), dlv=dlv,
                       go_version=_go_version_of(binary), **kw)
        return cls._started("core", p, binary, core=os.path.abspath(core), direct_memory=direct_memory)

    @classmethod
    def connect(cls, address: str, binary: Optional[str] = None, allow_remote: bool = False) -> "Bridge":
        if not address.startswith("unix:") and ":" not in address:
            raise UsageError(f"connect takes HOST:PORT or unix:PATH, not {address!r}")
        check_listen(address, allow_remote)
        client = Client(address)
        try:
            pid = client.call("ProcessPid", {}).get("Pid") or None
        except RPCError:
            pid = None
        exe = binary or (executable_of_pid(pid) if pid else None)
        if not exe or not os.path.exists(exe):
            client.close()
            raise DlvError("cannot tell which program the dlv server debugs; pass it with --binary")
        return cls("connect", client, exe, None, pid)

    @classmethod
    def _started(cls, mode, p: DlvProcess, exe: str, pid: Optional[int] = None,
                 core: Optional[str] = None, direct_memory: bool = True) -> "Bridge":
        try:
            if pid is None and mode == "exec":
                pid = p.client.call("ProcessPid", {}).get("Pid")
            return cls(mode, p.client, exe, p, pid, core=core, direct_memory=direct_memory)
        except ConnectionLost as e:
            err = p.explain(e)
            p.stop(kill_target=(mode == "exec"))
            raise err from None
        except BaseException:
            p.stop(kill_target=(mode == "exec"))
            raise

    # --- running and stopping
    def cont(self) -> None:
        """Let the target run (asynchronously); the next view halts it again."""
        if self.mode == "core" or self._running_id is not None or self.exited:
            return
        self._rt = None
        self.target.invalidate()
        self._running_id = self.client.send("Command", {"name": "continue"})

    def halt(self) -> None:
        """Stop a running target, through a second connection (the first is blocked)."""
        if self._running_id is None:
            st = self.client.call("State", {"NonBlocking": True}, timeout=10).get("State") or {}
            if not st.get("Running"):
                return
            with Client(self.client.address) as second:
                second.call("Command", {"name": "halt"}, timeout=30)
            self._halted_by_us = True
        else:
            rid, self._running_id = self._running_id, None
            if halt_pending(self.client, rid).get("exited"):
                self.exited = True
        if not self.exited:
            self.settle()
        self._rt = None
        self.target.invalidate()

    def settle(self) -> bool:
        """After a halt, no SIGTRAP of dlv's may stay queued: Delve halts with
        kill(SIGTRAP), and one that lands while the program is already stopped (our
        continue just returned, or Delve is evaluating a breakpoint condition) would
        kill it after we detach. Continue briefly so Delve collects it, halting again if
        nothing stops the program, until /proc shows none pending. False if one may
        still be pending after a few rounds."""
        pid = self.pid if self.mode in ("attach", "exec") else None
        c = self.client
        for _ in range(4):
            pending = sigtrap_pending(pid) if pid else None
            if pending is False:
                return True
            rid = c.send("Command", {"name": "continue"})
            try:
                st = c.wait(rid, timeout=0.5) or {}
            except ConnectionLost:
                if c.closed:
                    raise
                st = halt_pending(c, rid)
            self._rt = None
            self.target.invalidate()
            if st.get("exited"):
                self.exited = True
                return True
            if pending is None:
                return True     # cannot look: one round collects it
        return False

    def wait_output(self, text: str, timeout: float = 30.0) -> bool:
        """Wait until the launched program prints a line starting with text (exec only)."""
        if self.dlv is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(l.startswith(text) for l in list(self.dlv.stdout_lines)):
                return True
            if not self.dlv.alive:
                return False
            time.sleep(0.05)
        return False

    # --- the decoded runtime
    def runtime(self) -> GoRuntime:
        self.halt()
        if self.exited:
            raise GoExtError("the program has exited")
        if self._rt is None:
            self._rt = GoRuntime(self.target)
        return self._rt

    def _walk(self, depth=0, include_dead=False, want_blocked=True):
        rt = self.runtime()
        walker = GoroutineWalker(rt)
        gs = walker.walk(with_stack=depth, include_dead=include_dead, want_blocked=want_blocked)
        self.last_goroutines = gs   # the REPL completes goroutine ids from the last walk
        return rt, walker, gs

    # --- the Python API
    def goroutines(self, depth: int = 0, include_dead: bool = False) -> list:
        return self._walk(depth, include_dead)[2]

    def stacks(self, depth: int = 64, similar: bool = False) -> list:
        return triage.bucket(self._walk(depth)[2], similar)

    def map(self, expr: str, limit=None, layout=False, locate=False):
        rt = self.runtime()
        shown, mt, addr = self.resolve_map(rt, expr)
        return decode_map(rt, mt, addr, limit=limit, layout=layout, locate=locate)

    def version(self) -> dict:
        return vview.to_json(self.runtime())

    def package_variables(self, pkg: str = "main") -> list:
        return self.target.types.package_variables(pkg)

    def resolve_map(self, rt: GoRuntime, expr: str):
        """(shown, map GoType, header address) for a global, a quoted global,
        (map[K]V)ADDR, or any expression Delve can evaluate."""
        expr, cast, name = mview.parse_map_expr(expr)
        if cast:
            tname, addr = cast
            t = self.target.lookup_type(tname)
            if t is None:
                raise GoExtError(f"the program has no type {tname}")
            return expr, t, addr
        t = self.target.symbol_type(name)
        sym = self.target.symbol_address(name)
        if t is not None and sym is not None:
            if t.kind != T.MAP:
                raise GoExtError(f"{expr} is a {t.name}, not a map")
            return expr, t, rt.mem.ptr(sym)
        # a local or anything else: ask Delve
        try:
            v = self.client.call("Eval", {"Expr": name, "Scope": {"GoroutineID": -1, "Frame": 0},
                                          "Cfg": {"FollowPointers": False, "MaxVariableRecurse": 0,
                                                  "MaxStringLen": 0, "MaxArrayValues": 0,
                                                  "MaxStructFields": 0}})
        except ConnectionLost:
            raise
        except RPCError as e:
            raise GoExtError(f"no symbol {name} in the program or the selected frame ({e.message})") from None
        var = (v or {}).get("Variable") or {}
        tname = var.get("type") or ""
        t = self.target.lookup_type(tname)
        if t is None or t.kind != T.MAP:
            raise GoExtError(f"{expr} is a {tname or 'value of unknown type'}, not a map")
        addr = var.get("addr") or 0
        if not addr:
            raise GoExtError(f"cannot read the map value of {expr}: it has no address")
        return expr, t, rt.mem.ptr(addr)

    # --- views from a command line, output as the gdb commands give it
    def view(self, argv: list, color: Optional[bool] = None, width: Optional[int] = None) -> str:
        """Run one view (['goroutines', '-t', '5'], ['map', 'main.m', '--json'], ...); returns
        its text (or 'wrote FILE' with -o)."""
        if not argv:
            raise UsageError(f"no view given; one of {', '.join(VIEWS)}")
        name, rest = argv[0], list(argv[1:])
        if name not in PARSERS:
            raise UsageError(f"unknown view {name!r}; one of {', '.join(VIEWS)}")
        try:
            args = PARSERS[name].parse_args(rest)
        except _HelpShown:
            return ""
        out = getattr(args, "output", None)
        if color is None:
            color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        color = False if out else color
        if width is None:
            width = shutil.get_terminal_size((120, 40)).columns if sys.stdout.isatty() else 250
        view = getattr(self, "_view_" + name)
        if name == "mapwatch":  # a probe that runs for minutes keeps the collector
            text = view(args, color, width)
        else:
            with gc_paused():
                text = view(args, color, width)
        return write_file(out, text) if out else text

    _json = staticmethod(json_text)

    def _view_goroutines(self, args, color, width) -> str:
        gview.check_goroutines_args(args)
        rt, walker, gs = self._walk(args.depth, args.all, want_blocked=args.json)
        return "".join(gview.goroutines_view(rt.layout.go_version, gs, walker.errors,
                                             walker.clock, args, color, width))

    def _view_stacks(self, args, color, width) -> str:
        if args.depth <= 0:
            raise UsageError("-t takes a positive number of frames")
        rt, walker, gs = self._walk(args.depth)
        buckets = [b for b in triage.bucket(gs, args.similar) if b.count >= args.min]
        if args.json:
            return self._json(gview.stacks_json(rt.layout.go_version, buckets, len(gs), walker.errors))
        text = gview.stacks_text(buckets, color)
        text += f"{len(buckets)} buckets of {len(gs)} goroutines\n"
        for e in walker.errors:
            text += f"warning: {e}\n"
        return text

    def _view_goroutine(self, args, color, width) -> str:
        rt, walker, gs = self._walk(max(1, args.depth), include_dead=True)
        g = next((x for x in gs if x.id == args.id), None)
        if g is None:
            raise GoExtError(f"no goroutine {args.id}")
        if args.json:
            return self._json({"go_version": rt.layout.go_version, "goroutine": gview.goroutine_json(g, True),
                               "errors": walker.errors})
        text = gview.backtrace_text(g, g.stack or [], color)
        if g.error:
            text += f"warning: {g.error}\n"
        return text

    def _view_map(self, args, color, width) -> str:
        if args.limit is not None and args.limit < 0:
            raise UsageError("--limit must be 0 or more")
        expr = " ".join(args.expr)
        dec_limit = None if args.key is not None else args.limit
        mc = self.map(expr, limit=dec_limit, layout=args.layout, locate=args.key is not None)

        if args.key is not None:
            key = mview.parse_key(args.key, mc.key_type)
            if args.json:
                out = mview.to_json(mc, layout=args.layout)
                out["lookup"] = mview.key_json(mc, args.key, key)
                return self._json(out)
            return mview.render_key(mc, args.key, key, color=color)
        if args.json:
            return self._json(mview.to_json(mc, layout=args.layout))
        if args.layout:
            rows = args.limit if args.limit is not None else 64
            return mview.render_layout(mc, color=color, width=max(width, 100), max_rows=rows)
        return mview.render_text(mc, color=color, width=width)

    def _view_mapwatch(self, args, color, width) -> str:
        from gdb_go_ext.views import mapwatch as mwview

        from .mapwatch import run_mapwatch
        rep = run_mapwatch(self, " ".join(args.expr), args.max_hits, args.timeout, args.writes)
        if args.json:
            return self._json(rep)
        return mwview.render_text(rep, color=color, width=width)

    def _view_version(self, args, color, width) -> str:
        rt = self.runtime()
        if args.json:
            return self._json(vview.to_json(rt))
        return vview.render_text(rt, color=color, width=width)

    # --- the end
    def close(self) -> None:
        """Clear our breakpoints; detach an attached target (left running), kill a launched one,
        leave a connected server as we found it; dlv exits; nothing is left behind."""
        if self.closed:
            return
        self.closed = True
        c = self.client
        try:
            if not c.closed:
                if self._running_id is not None and self.mode == "connect":
                    pass  # it runs, as the user left it
                elif self._running_id is not None:
                    try:
                        self.halt()
                    except GoExtError:
                        pass
                for bp in self._breakpoints:
                    try:
                        c.call("ClearBreakpoint", {"Id": bp}, timeout=10)
                    except RPCError:
                        pass
                if self.mode == "connect":
                    if self._halted_by_us or (self._was_running and self._running_id is None):
                        try:
                            c.send("Command", {"name": "continue"})
                        except RPCError:
                            pass
                    c.close()
        except (RPCError, OSError):
            pass
        finally:
            try:
                self.target.close() if hasattr(self, "target") else None
            finally:
                if self.dlv is not None:
                    self.dlv.stop(kill_target=(self.mode == "exec"), client=c)
                    if self.mode == "exec" and self.pid:
                        _kill_if_alive(self.pid, self.target.executable() if hasattr(self, "target") else None)
                else:
                    c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _kill_if_alive(pid: int, exe: Optional[str]) -> None:
    """Our launched program, should it have outlived dlv (never a recycled pid)."""
    import signal
    if not exe or executable_of_pid(pid) != os.path.realpath(exe):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
