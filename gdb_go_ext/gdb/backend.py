"""Target over gdb's Python API: memory, symbols, DWARF types, threads."""
from __future__ import annotations

import contextlib
import re
import struct
from typing import Optional

import gdb  # noqa: F401  (only the gdb/ package may import it)
import gdb.unwinder

from ..errors import DecodeError, GoExtError, NotGoError, ReadError
from ..binary import types as T
from ..binary.generics import is_shape
from ..target import Thread
from ..target.base import Scope, first_direct, not_live
from ..target.corecheck import check_core, check_process, recorded_executable
from ..target.direct import CoreMem, open_source
from . import borrowed
from .control import GdbControl


def _type_name(t: "gdb.Type") -> str:
    """Go's spelling of a type: gdb calls an unnamed pointer type `main.Point *`."""
    if t.name:
        return t.name
    if t.code == gdb.TYPE_CODE_PTR:
        return "*" + _type_name(t.target())
    return str(t)


_CODE_KIND = {gdb.TYPE_CODE_PTR: T.PTR, gdb.TYPE_CODE_STRUCT: T.STRUCT,
              gdb.TYPE_CODE_ARRAY: T.ARRAY, gdb.TYPE_CODE_FUNC: T.FUNC,
              gdb.TYPE_CODE_BOOL: T.BOOL, gdb.TYPE_CODE_FLT: T.FLOAT,
              gdb.TYPE_CODE_COMPLEX: T.COMPLEX, gdb.TYPE_CODE_VOID: T.VOID}


class _GdbTypeReader:
    """binary.types.TypeReader over gdb.Type; memoised by name."""

    key = name = staticmethod(_type_name)

    @staticmethod
    def is_typedef(t: "gdb.Type") -> bool:
        return t.code == gdb.TYPE_CODE_TYPEDEF

    @staticmethod
    def target(t: "gdb.Type") -> "gdb.Type":
        return t.target()

    @staticmethod
    def strip(t: "gdb.Type") -> "gdb.Type":
        return t.strip_typedefs()

    @staticmethod
    def kind(s: "gdb.Type") -> str:
        code = s.code
        if code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_CHAR):
            return T.INT if getattr(s, "is_signed", not _type_name(s).startswith("u")) else T.UINT
        return _CODE_KIND.get(code, T.UNKNOWN)

    @staticmethod
    def size(s: "gdb.Type") -> int:
        return s.sizeof

    @staticmethod
    def length(s: "gdb.Type") -> int:
        lo, hi = s.range()
        return hi - lo + 1

    @staticmethod
    def members(s: "gdb.Type") -> list:
        return [(None if f.is_base_class else f.name, f.bitpos // 8, f.type) for f in s.fields()]


class GdbTarget:
    """The Target protocol over the selected gdb inferior."""

    def __init__(self):
        inf = gdb.selected_inferior()
        if inf is None or not gdb.objfiles():
            raise NotGoError("no program is loaded; use `file BINARY`, `attach PID` or `core CORE`")
        self.inferior = inf
        ptr_t = gdb.lookup_type("void").pointer()
        self.ptr_size = ptr_t.sizeof
        self.is_live = inf.pid != 0 and not is_core()
        self.has_process = inf.pid != 0
        self._types = T.TypeBuilder(_GdbTypeReader(), self.ptr_size)
        # reads without gdb in the way, for Memory.gather and the unwinder (see target.direct)
        self.direct = open_source(core_path=_core_path()) if not self.is_live and self.has_process \
            else open_source(pid=inf.pid) if self.is_live else None
        # facts about the target every report should carry (e.g. a truncated core)
        self.warnings: list[str] = []
        warn = self.direct.warning() if isinstance(self.direct, CoreMem) else None
        if warn:
            self.warnings.append(warn)
        self._symbols: dict[str, Optional[int]] = {}
        self._symtypes: dict[str, Optional[T.GoType]] = {}
        self.read = first_direct(self.direct, self._read_gdb)
        # a core or a process of another build decodes into nonsense: refuse it
        if self.has_process and not self.is_live:
            self._check_core()
        elif self.is_live:
            self._check_process()

    def _check_core(self) -> None:
        """NotGoError unless the core is of the loaded executable (target.corecheck)."""
        core = self.direct.elf if isinstance(self.direct, CoreMem) else _core_path()
        if core is None:
            return
        prog = gdb.current_progspace()
        exe = prog.filename if prog is not None else None
        if not exe:
            named = recorded_executable(core)
            raise NotGoError("no executable is loaded with this core" + (
                f": it was dumped by {named}; load it with `file {named}`" if named else
                "; load the program that dumped it with `file PATH`"))
        verdict = check_core(core, exe)
        if verdict.error:
            raise NotGoError(verdict.error + " (`file PATH`)")
        if verdict.warning:
            self.warnings.append(verdict.warning)

    def _check_process(self) -> None:
        """NotGoError when the loaded executable is not the build the process runs."""
        prog = gdb.current_progspace()
        exe = prog.filename if prog is not None else None
        if not exe:
            return

        def read(addr, size):
            try:
                return self.read(addr, size)
            except ReadError:
                return None
        verdict = check_process(self.inferior.pid, exe, read)
        if verdict.error:
            raise NotGoError(verdict.error + " (`file /proc/PID/exe`)")

    # memory
    def _read_gdb(self, addr: int, size: int) -> bytes:
        if addr <= 0 or size < 0:
            raise ReadError(addr, size, "bad address")
        try:
            return self.inferior.read_memory(addr, size).tobytes()
        except (gdb.MemoryError, gdb.error, OverflowError, ValueError) as e:
            raise ReadError(addr, size, str(e).split("\n")[0]) from None

    # symbols
    def symbol_address(self, name: str) -> Optional[int]:
        if name in self._symbols:
            return self._symbols[name]
        addr = None
        try:
            sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
            if sym is not None:  # a variable or a function alike
                addr = int(sym.value().address)
        except gdb.error:
            addr = None
        if addr is None:
            try:  # a minimal symbol (no debug info), e.g. runtime.text
                addr = int(gdb.parse_and_eval(f"&'{name}'"))
            except (gdb.error, ValueError):
                addr = None
        self._symbols[name] = addr
        return addr

    def symbol_type(self, name: str) -> Optional[T.GoType]:
        if name in self._symtypes:
            return self._symtypes[name]
        gt = None
        try:
            sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
            if sym is not None:
                gt = self._types.convert(sym.type)
        except gdb.error:
            gt = None
        self._symtypes[name] = gt
        return gt

    def lookup_type(self, name: str) -> Optional[T.GoType]:
        try:
            return self._types.convert(gdb.lookup_type(name))
        except gdb.error:
            return None

    def convert_type(self, t: "gdb.Type") -> T.GoType:
        return self._types.convert(t)

    def executable(self) -> Optional[str]:
        prog = gdb.current_progspace()
        if prog is not None and prog.filename:
            return prog.filename
        objs = gdb.objfiles()
        return objs[0].filename if objs else None

    # expressions, evaluated by gdb in the selected frame (or a Scope's)
    def evaluate(self, expr: str, name: str, scope: Optional[Scope] = None) -> tuple:
        with self._in_scope(scope) as frame:
            val = None
            try:
                sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
                if sym is not None and sym.is_variable:
                    val = sym.value()
            except gdb.error:
                val = None
            if val is None:
                val = _evaluate(expr, name)
            t = self._types.convert(val.type)
            t = self.go_named(t)
            if t.kind not in (T.MAP, T.CHAN, T.PTR):
                return t, None
            try:
                return t, int(val.cast(gdb.lookup_type("uintptr")))
            except gdb.error:
                try:
                    return t, int(val)
                except (gdb.error, ValueError) as e:
                    raise GoExtError(f"cannot read the value of {expr}: {e}") from None

    def go_named(self, t: T.GoType) -> T.GoType:
        """`t`, a type of the selected frame, named as Go names it (generic code)."""
        try:
            frame = gdb.selected_frame()
        except gdb.error:
            return t
        if not is_shape(t.name):
            return t
        return T.named_in_frame(t, _frame_function(frame), self._elf(), self._frame_words(frame),
                                self.symbol_address)

    def _frame_words(self, frame) -> list:
        """The frame's dictionary pointer where the DWARF says where it is (its `.dict`
        variable, Go 1.27 on), else the words from the frame's sp to its caller's sp (the
        CFA) and the argument spill slots above it: where a generic body keeps it."""
        try:
            return [int(frame.read_var(".dict"))]
        except (gdb.error, ValueError, RuntimeError):
            pass
        try:
            sp = int(frame.read_register("rsp"))
            caller = frame.older()
            cfa = int(caller.read_register("rsp")) if caller is not None else sp
            n = max(0, min(cfa - sp, 1 << 16)) + 64
            data = self.read(sp, n - n % 8)
        except (gdb.error, ReadError, ValueError):
            return []
        return list(struct.unpack(f"<{len(data) // 8}Q", data))

    def _elf(self):
        """The program's ElfFile (its symbol names), or None."""
        if getattr(self, "_elf_file", 0) == 0:
            from ..binary.elf import ElfFile
            path = self.executable()
            try:
                self._elf_file = ElfFile.open(path) if path else None
            except (OSError, DecodeError):
                self._elf_file = None
        return self._elf_file

    @contextlib.contextmanager
    def _in_scope(self, scope: Optional[Scope]):
        """Select frame scope.frame of goroutine scope.goroutine for the body; the user's
        thread and frame are selected again after. A goroutine running on a thread is
        that thread's stack; a parked one is reached through _GoroutineFrames, which
        makes its saved pc/sp/bp the caller of the selected thread's frame 0: nothing
        is written (so it works on a core too), and its frame K is gdb's frame K+1."""
        try:
            here = gdb.selected_frame()
        except gdb.error:
            here = None
        if scope is None:
            yield here
            return
        thread = gdb.selected_thread()
        spliced = False
        try:
            g = scope.g
            skip = 0
            if g is not None:
                on = [th for th in self.inferior.threads()
                      if g.status == "running" and g.thread and th.ptid[1] == g.thread]
                if on:
                    on[0].switch()
                elif not g.pc or not g.sp:
                    raise GoExtError(f"goroutine {g.id} has no saved registers (status {g.status})")
                else:
                    _GOROUTINE_FRAMES.splice(g.pc, g.sp, g.bp)
                    spliced, skip = True, 1
            frame = here if scope.frame is None and g is None else gdb.newest_frame()
            for _ in range((scope.frame or 0) + skip):
                frame = frame.older() if frame is not None else None
            if frame is None:
                who = f"goroutine {g.id}" if g is not None else "the selected thread"
                raise GoExtError(f"{who} has no frame {scope.frame}")
            frame.select()
            yield frame
        finally:
            if spliced:
                _GOROUTINE_FRAMES.splice(None)
            if thread is not None and thread.is_valid():
                thread.switch()
            if here is not None and here.is_valid():
                here.select()

    def run_in_goroutine(self, g, command: str) -> None:
        """Run a gdb command in the goroutine's context, live only (gdb/borrowed.py): on its
        thread if it runs, else with its pc/sp/bp lent to the selected thread; registers,
        memory and the selected thread and frame are as before when it returns."""
        if not self.is_live:
            raise GoExtError("running a command in a goroutine's context needs a live process "
                             "(on a core, `go goroutine ID` gives its backtrace)")
        if g.status == "running" and g.thread:
            for th in self.inferior.threads():
                if th.ptid[1] == g.thread:
                    borrowed.run_on_thread(th, command)
                    return
        if not g.pc or not g.sp:
            raise GoExtError(f"goroutine {g.id} has no saved registers (status {g.status})")
        borrowed.run_borrowed(g, command)

    def selected_thread(self) -> Optional[int]:
        thread = gdb.selected_thread()
        return thread.num if thread is not None else None

    def control(self):
        """Execution control for probes (gdb/control.py): a live amd64 program, stopped."""
        if not self.is_live:
            raise not_live(self.has_process)
        if borrowed.active:
            raise GoExtError("a probe cannot run in a goroutine's borrowed context")
        return GdbControl(self.inferior)

    def threads(self) -> list[Thread]:
        out: list[Thread] = []
        selected = gdb.selected_thread()
        frame = None
        try:
            frame = gdb.selected_frame()
        except gdb.error:
            frame = None
        try:
            for th in self.inferior.threads():
                try:
                    th.switch()
                    f = gdb.newest_frame()
                    pc = int(f.read_register("rip"))
                    sp = int(f.read_register("rsp"))
                    bp = int(f.read_register("rbp"))
                except gdb.error:
                    continue
                out.append(Thread(th.ptid[1] or th.ptid[0], pc, sp, bp, th == selected))
        finally:
            if selected is not None and selected.is_valid():
                selected.switch()
                if frame is not None and frame.is_valid():
                    frame.select()
        return out


class _GoroutineFrames(gdb.unwinder.Unwinder):
    """While spliced: the caller of the selected thread's frame 0 is a parked goroutine's
    top frame (its saved pc, sp, bp); gdb's own unwinders walk on from there. Only
    frames are described, no register is written."""

    def __init__(self):
        super().__init__("gdb_go_ext goroutine frames")
        self.regs = None

    def splice(self, pc: Optional[int], sp: int = 0, bp: int = 0) -> None:
        self.regs = None if pc is None else (pc, sp, bp)
        gdb.invalidate_cached_frames()

    def __call__(self, pending):
        if self.regs is None or pending.level() != 0:
            return None
        pc, sp, bp = self.regs
        rip, rsp = pending.read_register("rip"), pending.read_register("rsp")
        # frame 0 says its stack lies just below the goroutine's, else gdb stops at the
        # goroutine's first frame ("previous frame inner to this frame")
        info = pending.create_unwind_info(_FrameId(gdb.Value(sp - 16).cast(rsp.type), rip))
        info.add_saved_register("rip", gdb.Value(pc).cast(rip.type))
        info.add_saved_register("rsp", gdb.Value(sp).cast(rsp.type))
        info.add_saved_register("rbp", gdb.Value(bp).cast(pending.read_register("rbp").type))
        return info


class _FrameId:
    """The frame's own id (gdb.Values of its sp and pc), as gdb's unwinder API wants it."""

    def __init__(self, sp: "gdb.Value", pc: "gdb.Value"):
        self.sp, self.pc = sp, pc


_GOROUTINE_FRAMES = _GoroutineFrames()
gdb.unwinder.register_unwinder(None, _GOROUTINE_FRAMES, replace=True)


def _frame_function(frame) -> Optional[str]:
    try:
        return frame.name() if frame is not None and frame.is_valid() else None
    except gdb.error:
        return None


def _core_path() -> Optional[str]:
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "Local core dump file" in line and i + 1 < len(lines):
            nxt = lines[i + 1].strip()
            if nxt.startswith("`") and "'" in nxt:
                return nxt[1:nxt.index("'")]
    return None


def is_core() -> bool:
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return False
    return "Local core dump file" in text


_DOTTED = re.compile(r"^[\w/]+(\.[\w/]+)+$")


def _first_is_symbol(name: str) -> bool:
    head = name.split(".", 1)[0]
    try:
        return gdb.lookup_symbol(head)[0] is not None
    except (gdb.error, RuntimeError):
        try:
            return gdb.lookup_global_symbol(head) is not None
        except gdb.error:
            return False


def _evaluate(expr: str, name: str) -> "gdb.Value":
    """gdb.parse_and_eval, working around Go-mode parsing of pkg.name.

    gdb 13 in Go mode cannot parse `runtime.allgs` (it wants 'runtime.allgs'),
    and once a quoted Go symbol has been evaluated, parsing `main.missing`
    unquoted crashes it (SIGSEGV). So a dotted name is tried quoted first, and
    unquoted only when its first part is itself a symbol (a local struct).
    """
    if _DOTTED.match(name):
        try:
            return gdb.parse_and_eval(f"'{name}'")
        except gdb.error as e:
            err = str(e).splitlines()[0]
        if not _first_is_symbol(name):
            raise GoExtError(f"no symbol {name} in the program or the selected frame ({err})")
    try:
        return gdb.parse_and_eval(expr)
    except gdb.error as e:
        raise GoExtError(f"cannot evaluate {expr}: {str(e).splitlines()[0]}") from None
