"""Target over gdb's Python API: memory, symbols, DWARF types, threads."""
from __future__ import annotations

import re
from typing import Optional

import gdb  # noqa: F401  (only the gdb/ package may import it)

from ..errors import GoExtError, NotGoError, ReadError
from ..binary import types as T
from ..target import Thread
from ..target.base import first_direct, not_live
from ..target.corecheck import check_core, check_process, recorded_executable
from ..target.direct import CoreMem, open_source
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
        self.is_live = inf.pid != 0 and not _is_core()
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

    # expressions, evaluated by gdb in the selected frame
    def evaluate(self, expr: str, name: str) -> tuple:
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
        if t.kind not in (T.MAP, T.CHAN, T.PTR):
            return t, None
        try:
            return t, int(val.cast(gdb.lookup_type("uintptr")))
        except gdb.error:
            try:
                return t, int(val)
            except (gdb.error, ValueError) as e:
                raise GoExtError(f"cannot read the value of {expr}: {e}") from None

    def run_in_goroutine(self, g, command: str) -> None:
        """Run a gdb command with the goroutine's pc/sp/bp in place, live only; always restore."""
        if not self.is_live:
            raise GoExtError("running a command in a goroutine's context needs a live process "
                             "(on a core, `go goroutine ID` gives its backtrace)")
        if g.status == "running" and g.thread:
            for th in self.inferior.threads():
                if th.ptid[1] == g.thread:
                    prev = gdb.selected_thread()
                    th.switch()
                    try:
                        gdb.execute(command)
                    finally:
                        prev.switch()
                    return
        if not g.pc or not g.sp:
            raise GoExtError(f"goroutine {g.id} has no saved registers (status {g.status})")
        frame = gdb.newest_frame()
        saved = {r: int(frame.read_register(r)) for r in ("rip", "rsp", "rbp")}
        bp = g.bp   # the frame pointer saved with pc/sp (sched.bp, or syscallbp in a syscall)
        try:
            gdb.execute(f"set $rip = {g.pc:#x}", to_string=True)
            gdb.execute(f"set $rsp = {g.sp:#x}", to_string=True)
            gdb.execute(f"set $rbp = {bp:#x}", to_string=True)
            gdb.execute(command)
        finally:
            for r, v in saved.items():
                gdb.execute(f"set ${r} = {v:#x}", to_string=True)
            gdb.execute("select-frame 0", to_string=True)

    def selected_thread(self) -> Optional[int]:
        thread = gdb.selected_thread()
        return thread.num if thread is not None else None

    def control(self):
        """Execution control for probes (gdb/control.py): a live amd64 program, stopped."""
        if not self.is_live:
            raise not_live(self.has_process)
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


def _is_core() -> bool:
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
