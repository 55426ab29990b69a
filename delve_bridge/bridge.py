"""A debugging session over a headless dlv, and the views it serves.

    from delve_bridge import Bridge
    with Bridge.attach(pid) as b:
        for g in b.goroutines():
            print(g.id, g.status, g.wait_reason)
        print(b.view(["stacks", "--min", "2"]))

The views are the registry's (gdb_go_ext/views): the very code gdb's `go VIEW` runs,
on a DelveTarget, so their text and JSON are the same by construction.
"""
from __future__ import annotations

import os
import shutil
import signal
import struct
import sys
import time
from typing import Optional

from gdb_go_ext.analysis import triage
from gdb_go_ext.errors import DecodeError, GoExtError, UsageError
from gdb_go_ext.binary.elf import ElfFile
from gdb_go_ext.target.corecheck import check_core, check_process, read_proc_mem
from gdb_go_ext.binary.dwarf import has_dwarf, no_dwarf_message
from gdb_go_ext.runtime.goruntime import GoRuntime
from gdb_go_ext.runtime.maps import decode_map
from gdb_go_ext.runtime.version import parse_version
from gdb_go_ext.runtime import walks
from gdb_go_ext.views import catalog, registry  # noqa: F401  (catalog registers the views)
from gdb_go_ext.views import maps as mview
from gdb_go_ext.views import version as vview
from gdb_go_ext.views.console import WalkProgress, stderr_is_terminal

from .control import DelveControl, halt_pending
from .dlv import DlvError, DlvProcess, check_listen
from .rpc import Client, ConnectionLost, RPCError
from .target import DelveTarget, executable_of_pid


def _go_version_of(binary: Optional[str]) -> Optional[tuple]:
    """The binary's Go version; first, DlvError (one line) for a binary without DWARF,
    which dlv refuses with less to go on ("could not open debug info")."""
    if not binary:
        return None
    try:
        elf = ElfFile.open(binary)
    except (OSError, DecodeError):
        return None
    if elf.section(".go.buildinfo") is not None and not has_dwarf(elf):
        raise DlvError(no_dwarf_message(binary))
    try:
        return parse_version(elf.go_version()) or None
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


def core_truncated(path: str) -> Optional[str]:
    """What is cut, as gdb's `go` commands say it, when the core file is shorter than
    its segments say (dlv then fails with a bare EOF); None if whole or not a core."""
    from gdb_go_ext.target.direct import CoreMem
    try:
        c = CoreMem(path)
        size, expected = c.size, c.expected
    except (OSError, DecodeError, ValueError) as e:
        if "truncated" not in str(e):
            return None
        # gcore writes the section headers last: a cut core loses them first
        size, expected = _core_extent(path)
    if size >= expected:
        return None
    return f"the core file {path} is truncated ({size} of {expected} bytes)"


def _core_extent(path: str) -> tuple:
    """(size, the size its ELF and program headers say) of a core file whose section
    headers are cut off."""
    from gdb_go_ext.binary.elf import EHDR, PHDR, PT_LOAD
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(1 << 20)
            (_, _, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
             _) = EHDR.unpack_from(head, 0)
            f.seek(phoff)
            ph = f.read(phnum * phentsize)
        ends = [shoff + shnum * shentsize] + [
            off + filesz for typ, _, off, _, _, filesz, _, _ in
            (PHDR.unpack_from(ph, i * phentsize) for i in range(phnum)) if typ == PT_LOAD]
        return size, max(ends)
    except (OSError, struct.error):
        return 0, 0


_CAP_SYS_PTRACE = 19


def _status_field(pid, name: str) -> Optional[list]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split()[1:]
    except OSError:
        pass
    return None


def _user(uid: int) -> str:
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def attach_denied(pid: int) -> Optional[str]:
    """Why this user may not debug process pid (the kernel lets neither a read of
    /proc/PID/exe nor dlv's ptrace through), as one sentence with what to do; None when
    nothing says so."""
    uids = _status_field(pid, "Uid")
    caps = _status_field("self", "CapEff")
    me = os.geteuid()
    if not uids or (caps and int(caps[0], 16) >> _CAP_SYS_PTRACE & 1):
        return None
    owner = int(uids[0])
    if any(int(u) != me for u in uids[:3]):
        run_as = f"as {_user(owner)}" if me == 0 else \
            "as root" if owner == 0 else f"as {_user(owner)} or as root"
        return (f"process {pid} belongs to {_user(owner)} and you are {_user(me)} without "
                f"CAP_SYS_PTRACE: permission denied to read /proc/{pid}/exe and to ptrace it "
                f"(dlv attach); run delve-bridge {run_as}, or with CAP_SYS_PTRACE")
    try:
        os.readlink(f"/proc/{pid}/exe")
    except PermissionError:
        return (f"permission denied to read /proc/{pid}/exe (process {pid} is not dumpable, "
                "so ptrace is denied too); run delve-bridge as root or with CAP_SYS_PTRACE")
    except OSError:
        pass
    return None


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
        if not os.path.exists(f"/proc/{pid}"):
            raise DlvError(f"no process {pid}")
        denied = attach_denied(pid)
        if denied:
            raise DlvError(denied)
        exe = binary or executable_of_pid(pid)
        if exe is None or not os.path.exists(exe):
            raise DlvError(f"cannot find the executable of process {pid}; pass it with --binary")
        if binary:   # another build than the process runs reads nonsense: refuse it
            verdict = check_process(pid, binary, read_proc_mem(pid))
            if verdict.error:
                raise DlvError(verdict.error + " (--binary)")
        p = DlvProcess("attach", pid=pid, binary=binary, dlv=dlv, go_version=_go_version_of(exe), **kw)
        return cls._started("attach", p, exe, pid, direct_memory=direct_memory)

    @classmethod
    def core(cls, binary: str, core: str, dlv: Optional[str] = None, direct_memory: bool = True,
             **kw) -> "Bridge":
        for f in (binary, core):
            if not os.path.isfile(f):
                raise DlvError(f"no such file {f}")
        binary = os.path.abspath(binary)
        # a core of another build decodes into nonsense: refuse it before dlv starts
        verdict = check_core(core, binary)
        if verdict.error:
            raise DlvError(verdict.error + " (as BIN)")
        cut = core_truncated(core)
        try:
            p = DlvProcess("core", binary=binary, core=os.path.abspath(core), dlv=dlv,
                           go_version=_go_version_of(binary), **kw)
            b = cls._started("core", p, binary, core=os.path.abspath(core),
                             direct_memory=direct_memory)
        except DlvError:
            if cut:   # (dlv says only EOF)
                raise DlvError(f"{cut}; dlv cannot open this cut core (was it copied whole, "
                               "or its disk full while it was written?)") from None
            raise
        # a cut core dlv still opens: what lies before the cut, and one line that says so
        for warning in (verdict.warning, cut):
            if warning:
                b.target.warnings.append(warning)
        return b

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
        walker, gs = walks.walk(rt, depth, include_dead, want_blocked)
        return rt, walker, gs

    @property
    def last_goroutines(self) -> Optional[list]:
        """The goroutines of the last walk on this stop (the REPL completes ids from it)."""
        if self._rt is None or not self._rt.walks:
            return None
        return next(reversed(self._rt.walks.values()))[1]

    # --- the Python API
    def goroutines(self, depth: int = 0, include_dead: bool = False) -> list:
        """Every goroutine; with depth (any number > 0), each with its whole stack."""
        return self._walk(depth, include_dead)[2]

    def stacks(self, depth: int = 64, similar: bool = False) -> list:
        """Buckets of goroutines by whole stack; each bucket's frames cut at depth
        (0: all) for display."""
        buckets = triage.bucket(self._walk(1)[2], similar)
        if depth:
            for b in buckets:
                b.frames = b.frames[:depth]
        return buckets

    def map(self, expr: str, limit=None, layout=False, locate=False, frame=None, goroutine=None):
        """A map's MapContents; expr is evaluated in frame `frame` of goroutine `goroutine`
        when given (as the view's --frame/--goroutine)."""
        rt = self.runtime()
        shown, mt, addr = self.resolve_map(rt, expr, frame, goroutine)
        return decode_map(rt, mt, addr, limit=limit, layout=layout, locate=locate)

    def version(self) -> dict:
        return vview.to_json(self.runtime())

    def package_variables(self, pkg: str = "main") -> list:
        return self.target.types.package_variables(pkg)

    def resolve_map(self, rt: GoRuntime, expr: str, frame=None, goroutine=None):
        """(shown, map GoType, header address) for a global, a quoted global,
        (map[K]V)ADDR, or any expression Delve can evaluate (in frame `frame` of
        goroutine `goroutine` when given)."""
        from types import SimpleNamespace
        from gdb_go_ext.views.scope import scope_of
        scope = scope_of(rt, SimpleNamespace(frame=frame, goroutine=goroutine))
        return mview.resolve_map(rt, expr, scope)

    # --- views from a command line, output as the gdb commands give it
    def view(self, argv: list, color: Optional[bool] = None, width: Optional[int] = None) -> str:
        """Run one view (['goroutines', '-t', '5'], ['map', 'main.m', '--json'], ...); returns
        its text (or 'wrote FILE' with -o)."""
        if color is None:
            color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        if width is None:
            width = shutil.get_terminal_size((120, 40)).columns if sys.stdout.isatty() else 250
        ctx = registry.Context(self.runtime, color=color, width=width,
                               progress=WalkProgress if stderr_is_terminal() else None)
        out = registry.run(ctx, argv)
        return out if isinstance(out, str) else "".join(out)

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
