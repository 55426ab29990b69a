"""Target over gdb's Python API: memory, symbols, DWARF types, threads."""
from __future__ import annotations

from typing import Optional

import gdb  # noqa: F401  (only the gdb/ package may import it)

from ..errors import NotGoError, ReadError
from ..binary import types as T
from ..target import Thread


def _type_name(t: "gdb.Type") -> str:
    """Go's spelling of a type: gdb calls an unnamed pointer type `main.Point *`."""
    if t.name:
        return t.name
    if t.code == gdb.TYPE_CODE_PTR:
        return "*" + _type_name(t.target())
    return str(t)


class TypeConverter:
    """gdb.Type -> GoType, memoised by name; pointers resolve lazily (types are cyclic)."""

    def __init__(self, ptr_size: int):
        self.ptr_size = ptr_size
        self.memo: dict[str, T.GoType] = {}

    def convert(self, t: "gdb.Type") -> T.GoType:
        name = _type_name(t)
        hit = self.memo.get(name)
        if hit is not None:
            return hit
        s = t.strip_typedefs()
        code = s.code
        gt: T.GoType
        map_name = _underlying_map_name(t, s)
        if map_name is not None:
            target = s.target() if code == gdb.TYPE_CODE_PTR else None
            header = (lambda tt=target, n=map_name: self._map_header(tt, n)) if target is not None else None
            gt = T.map_type(name, self.ptr_size, header)
        elif name.startswith("chan ") or name.startswith("<-chan ") or name.startswith("chan<- "):
            gt = T.GoType(name, T.CHAN, self.ptr_size)
        elif code == gdb.TYPE_CODE_FUNC or name.startswith("func("):
            gt = T.GoType(name, T.FUNC, self.ptr_size)
        elif code == gdb.TYPE_CODE_PTR:
            target = s.target()
            if target.strip_typedefs().code == gdb.TYPE_CODE_VOID:
                gt = T.GoType(name, T.PTR, self.ptr_size)
            else:
                gt = T.GoType(name, T.PTR, self.ptr_size, elem=lambda tt=target: self.convert(tt))
        elif code == gdb.TYPE_CODE_STRUCT:
            gt = self._struct(name, s)
        elif code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_CHAR):
            signed = getattr(s, "is_signed", not name.startswith("u"))
            gt = T.GoType(name, T.INT if signed else T.UINT, s.sizeof)
        elif code == gdb.TYPE_CODE_BOOL:
            gt = T.GoType(name, T.BOOL, s.sizeof)
        elif code == gdb.TYPE_CODE_FLT:
            gt = T.GoType(name, T.FLOAT, s.sizeof)
        elif code == gdb.TYPE_CODE_COMPLEX:
            gt = T.GoType(name, T.COMPLEX, s.sizeof)
        elif code == gdb.TYPE_CODE_ARRAY:
            lo, hi = s.range()
            elem_t = s.target()
            gt = T.GoType(name, T.ARRAY, s.sizeof, length=hi - lo + 1,
                          elem=lambda tt=elem_t: self.convert(tt))
        else:
            gt = T.GoType(name, T.UNKNOWN, s.sizeof)
        self.memo[name] = gt
        return gt

    def _struct(self, name: str, s: "gdb.Type") -> T.GoType:
        fields = s.fields()
        names = [f.name for f in fields]
        if name == "string" and names[:2] == ["str", "len"]:
            return T.GoType(name, T.STRING, s.sizeof)
        if name.startswith("[]") and names[:3] == ["array", "len", "cap"]:
            elem_t = fields[0].type.strip_typedefs().target()
            return T.GoType(name, T.SLICE, s.sizeof, elem=lambda tt=elem_t: self.convert(tt))
        if names == ["tab", "data"]:
            return T.GoType(name, T.IFACE, s.sizeof)
        if names == ["_type", "data"]:
            return T.GoType(name, T.EFACE, s.sizeof)
        gfields = tuple(
            T.Field(f.name, f.bitpos // 8, (lambda ft=f.type: self.convert(ft)))
            for f in fields if not f.is_base_class and f.name is not None
        )
        return T.GoType(name, T.STRUCT, s.sizeof, fields=gfields)

    def _map_header(self, t: "gdb.Type", map_name: str) -> T.GoType:
        header = self.convert(t)
        header.extra["map_name"] = map_name
        return header


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
        self._types = TypeConverter(self.ptr_size)
        from ..target.direct import open_source
        self._raw = open_source(core_path=_core_path()) if not self.is_live and self.has_process \
            else open_source(pid=inf.pid) if self.is_live else None
        # reads without gdb in the way, for Memory.gather and the unwinder (see target.direct)
        self.direct = self._raw
        # facts about the target every report should carry (e.g. a truncated core)
        self.warnings: list[str] = []
        warn = getattr(self._raw, "warning", None)
        if warn is not None and warn():
            self.warnings.append(warn())
        self._symbols: dict[str, Optional[int]] = {}
        self._symtypes: dict[str, Optional[T.GoType]] = {}

    # memory
    def read(self, addr: int, size: int) -> bytes:
        if addr <= 0 or size < 0:
            raise ReadError(addr, size, "bad address")
        if self._raw is not None:
            data = self._raw.read(addr, size)
            if data is not None:
                return data
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


def _underlying_map_name(t: "gdb.Type", stripped: "gdb.Type") -> Optional[str]:
    """'map[K]V' for a map type, also behind named types (type labelMap map[string]string)."""
    for _ in range(8):
        n = _type_name(t)
        if n.startswith("map["):
            return n
        if t.code != gdb.TYPE_CODE_TYPEDEF:
            break
        t = t.target()
    if stripped.code == gdb.TYPE_CODE_PTR:
        target = stripped.target().strip_typedefs()
        tn = target.name or ""
        if target.code == gdb.TYPE_CODE_STRUCT and (tn.startswith("hash<") or tn.startswith("map<")):
            return "map[" + tn[tn.index("<") + 1:-1].replace(",", "]", 1)
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


def _is_core() -> bool:
    try:
        text = gdb.execute("info target", to_string=True)
    except gdb.error:
        return False
    return "Local core dump file" in text
