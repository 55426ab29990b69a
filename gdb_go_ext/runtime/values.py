"""Go values from memory, as plain Python values shaped like their JSON.

Pure Python (never imports gdb). Used by the map decoder and by anything that
must show a Go value: keys and values of maps, pprof labels, ... Nothing here
formats: views/values.py writes a value as Go text, views/console.py as JSON.

API
---
``ValueDecoder(rt)``
    ``rt`` is a GoRuntime (or anything with ``.mem`` (a Memory) and
    ``.target`` (a Target)).

``dec.decoder(t) -> fn(buf, off) -> value``
    A compiled decoder for GoType ``t``: reads ``t.size`` bytes of ``buf``
    (bytes/memoryview) at ``off`` and returns the value. Compiled once per
    type and cached; strings, interfaces and nested maps read target memory.

``dec.value(t, addr)``
    The value of the ``t`` stored at ``addr`` in the target.

Values (their JSON is docs/json.md, "map")
------------------------------------------
integers and floats are numbers, strings are strings, bools are bools; arrays
are lists; structs are dicts keyed by field name; pointers, channels, funcs
and unsafe.Pointer are ``Addr`` (written ``"0x…"`` in JSON and text);
interfaces are ``{"type": DYNAMIC_TYPE, "value": V}`` or ``None`` when nil (the
dynamic type name comes from the runtime type descriptor, ``abi.Type.Str``
resolved against ``moduledata.types``); a nested map is
``{"type": T, "addr": Addr, "len": N}``; slices are lists of at most
``SLICE_LIMIT`` elements; complex numbers are ``"(re+imi)"`` strings. Memory
that cannot be read becomes the string ``"<unreadable 0x…>"``: one bad value
never fails the whole view.
"""
from __future__ import annotations

import math
import struct
from typing import Any, Callable, Optional

from ..errors import DecodeError
from ..binary import types as T

SLICE_LIMIT = 1024
STRING_LIMIT = 1 << 20
_MAX_DEPTH = 12

# abi.Kind values (stable since Go 1.0's reflect.Kind)
_K_BOOL, _K_INT, _K_INT8, _K_INT16, _K_INT32, _K_INT64 = 1, 2, 3, 4, 5, 6
_K_UINT, _K_UINT8, _K_UINT16, _K_UINT32, _K_UINT64, _K_UINTPTR = 7, 8, 9, 10, 11, 12
_K_FLOAT32, _K_FLOAT64, _K_COMPLEX64, _K_COMPLEX128 = 13, 14, 15, 16
_K_ARRAY, _K_CHAN, _K_FUNC, _K_IFACE, _K_MAP, _K_PTR = 17, 18, 19, 20, 21, 22
_K_SLICE, _K_STRING, _K_STRUCT, _K_UNSAFEPTR = 23, 24, 25, 26
_KIND_MASK = (1 << 5) - 1
_TFLAG_EXTRA_STAR = 1 << 1

_SCALAR_FMT = {
    _K_BOOL: "?", _K_INT8: "b", _K_INT16: "h", _K_INT32: "i", _K_INT64: "q",
    _K_UINT8: "B", _K_UINT16: "H", _K_UINT32: "I", _K_UINT64: "Q", _K_UINTPTR: "Q",
    _K_FLOAT64: "d",
}


def hexaddr(v: int) -> str:
    return f"{v:#x}"


class Addr:
    """An address held by a Go value: a pointer, channel, func, unsafe.Pointer, a map
    header. An int to the decoders (int(), index, ==, hash); views write it "0x…"."""

    __slots__ = ("value",)

    def __init__(self, value: int):
        self.value = value

    def __index__(self) -> int:
        return self.value

    __int__ = __index__

    def __eq__(self, other) -> bool:
        if isinstance(other, Addr):
            return self.value == other.value
        if isinstance(other, int) and not isinstance(other, bool):
            return self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __bool__(self) -> bool:
        return self.value != 0

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:
        return f"Addr({self.value:#x})"


_addr_at = struct.Struct("<Q").unpack_from


def float32_value(x: float) -> float:
    """The float64 whose shortest text equals the float32's shortest text (like Go prints it)."""
    if math.isnan(x) or math.isinf(x):
        return x
    packed = struct.pack("<f", x)
    for p in range(1, 10):
        s = f"{x:.{p}g}"
        try:
            if struct.pack("<f", float(s)) == packed:
                return float(s)
        except OverflowError:
            continue
    return x


class _RType:
    """Offsets in the runtime type descriptor (runtime._type / internal/abi.Type)."""

    def __init__(self, target, ptr_size: int):
        self.ptr = ptr_size
        t = target.lookup_type("internal/abi.Type") or target.lookup_type("runtime._type")
        names = {
            "size": ("Size_", "size"), "ptrdata": ("PtrBytes", "ptrdata"),
            "tflag": ("TFlag", "tflag"), "kind": ("Kind_", "kind"), "str": ("Str", "str"),
        }
        # 64-bit defaults: size 0, ptrdata 8, hash 16, tflag 20, align 21, fieldAlign 22,
        # kind 23, equal 24, gcdata 32, str 40, ptrToThis 44; header size 48.
        default = {"size": 0, "ptrdata": 8, "tflag": 20, "kind": 23, "str": 40}
        self.off = dict(default)
        self.header = t.size if t is not None and t.size else 48
        if t is not None:
            for k, cands in names.items():
                for c in cands:
                    f = t.field(c)
                    if f is not None:
                        self.off[k] = f.offset
                        break
        itab = target.lookup_type("internal/abi.ITab") or target.lookup_type("runtime.itab")
        self.itab_type = ptr_size
        if itab is not None:
            f = itab.field("Type") or itab.field("_type")
            if f is not None:
                self.itab_type = f.offset


class ValueDecoder:
    def __init__(self, rt):
        self.rt = rt
        self.mem = rt.mem
        self.target = rt.target
        self.ptr = self.mem.ptr_size
        self._cache: dict[int, Callable] = {}
        self._rtype: Optional[_RType] = None
        self._modules: Optional[list] = None
        self._type_names: dict[int, str] = {}
        self._dyn: dict[int, Callable] = {}
        self._depth = 0

    # ---- compiled decoders -------------------------------------------------
    def decoder(self, t: Optional[T.GoType]) -> Callable[[Any, int], Any]:
        if t is None:
            return lambda buf, off: None
        hit = self._cache.get(id(t))
        if hit is not None:
            return hit[1]
        # placeholder for recursive types
        self._cache[id(t)] = (t, lambda buf, off, _t=t: self._cache[id(_t)][1](buf, off))
        fn = self._compile(t)
        self._cache[id(t)] = (t, fn)
        return fn

    def _compile(self, t: T.GoType) -> Callable[[Any, int], Any]:
        k = t.kind
        fmt = T.scalar_format(t)
        if fmt is not None:
            s = struct.Struct("<" + fmt)
            if k == T.FLOAT and t.size == 4:
                return lambda buf, off: float32_value(s.unpack_from(buf, off)[0])
            return lambda buf, off: s.unpack_from(buf, off)[0]
        if k == T.COMPLEX:
            f = "<ff" if t.size == 8 else "<dd"

            def cplx(buf, off, f=f):
                re, im = struct.unpack_from(f, buf, off)
                return _complex_text(re, im)
            return cplx
        if k == T.STRING:
            return self._string
        if k in (T.PTR, T.CHAN, T.FUNC):
            return lambda buf, off: Addr(_addr_at(buf, off)[0])
        if k == T.MAP:
            return lambda buf, off, t=t: self.map_summary(t, _addr_at(buf, off)[0])
        if k == T.ARRAY:
            el = t.elem
            n = t.length
            if el is None or n < 0:
                return lambda buf, off: f"<array of unknown type {t.name}>"
            esz = el.size
            efmt = T.scalar_format(el)
            if efmt is not None and efmt != "?" and not (el.kind == T.FLOAT and el.size == 4):
                s = struct.Struct(f"<{n}{efmt}")
                return lambda buf, off: list(s.unpack_from(buf, off))
            ed = self.decoder(el)
            return lambda buf, off: [ed(buf, off + i * esz) for i in range(n)]
        if k == T.STRUCT:
            parts = [(f.name, f.offset, self.decoder(f.type)) for f in t.fields]

            def st(buf, off, parts=parts):
                return {name: d(buf, off + o) for name, o, d in parts}
            return st
        if k == T.EFACE:
            return lambda buf, off: self._iface(buf, off, False)
        if k == T.IFACE:
            return lambda buf, off: self._iface(buf, off, True)
        if k == T.SLICE:
            return lambda buf, off, t=t: self._slice(t, buf, off)
        return lambda buf, off, t=t: f"<{t.name}>"

    def value(self, t: T.GoType, addr: int) -> Any:
        if addr == 0:
            return None
        try:
            buf = self.mem.read(addr, t.size) if t.size else b""
        except DecodeError:
            return f"<unreadable {addr:#x}>"
        return self.decoder(t)(buf, 0)

    # ---- pieces --------------------------------------------------------------
    def _string(self, buf, off):
        p, n = struct.unpack_from("<QQ", buf, off)
        if n == 0:
            return ""
        if n > STRING_LIMIT or n < 0 or p == 0:
            return f"<bad string {p:#x} len {n}>"
        try:
            return self.mem.read(p, n).decode("utf-8", "replace")
        except DecodeError:
            return f"<unreadable {p:#x}>"

    def _slice(self, t, buf, off):
        p, n, _c = struct.unpack_from("<QQQ", buf, off)
        el = t.elem
        if n == 0:
            return []
        if el is None or p == 0 or n < 0:
            return f"<bad slice {p:#x} len {n}>"
        n = min(n, SLICE_LIMIT)
        try:
            data = self.mem.read(p, n * el.size) if el.size else b""
        except DecodeError:
            return f"<unreadable {p:#x}>"
        d = self.decoder(el)
        return [d(data, i * el.size) for i in range(n)]

    def map_summary(self, t: T.GoType, hdr: int) -> dict:
        return {"type": t.name, "addr": Addr(hdr), "len": self.map_len(t, hdr)}

    def map_len(self, t: T.GoType, hdr: int) -> int:
        if hdr == 0:
            return 0
        header = t.extra.get("header") if t.extra else None
        if callable(header) and not isinstance(header, T.GoType):
            header = header()
            t.extra["header"] = header
        off = 0
        if isinstance(header, T.GoType):
            f = header.field("count") or header.field("used")
            if f is not None:
                off = f.offset
        try:
            return self.mem.u64(hdr + off)
        except DecodeError:
            return -1

    # ---- interfaces -----------------------------------------------------------
    @property
    def rtype(self) -> _RType:
        if self._rtype is None:
            self._rtype = _RType(self.target, self.ptr)
        return self._rtype

    def _iface(self, buf, off, has_tab: bool):
        w0, data = struct.unpack_from("<QQ", buf, off)
        if w0 == 0:
            return None
        try:
            tp = self.mem.ptr(w0 + self.rtype.itab_type) if has_tab else w0
            return self.dynamic(tp, data)
        except DecodeError as e:
            return {"type": f"<unreadable type {w0:#x}>", "value": f"<{e}>"}

    def dynamic(self, typ: int, data: int) -> dict:
        """{"type": name, "value": V} for the interface word pair (type descriptor, data)."""
        name = self.type_name(typ)
        rt = self.rtype
        hdr = self.mem.read(typ, rt.header)
        size = struct.unpack_from("<Q", hdr, rt.off["size"])[0]
        ptrdata = struct.unpack_from("<Q", hdr, rt.off["ptrdata"])[0]
        kind = hdr[rt.off["kind"]] & _KIND_MASK
        direct = size == ptrdata == self.ptr
        if self._depth > _MAX_DEPTH:
            return {"type": name, "value": "<too deep>"}
        self._depth += 1
        try:
            if direct:
                value = self._by_kind(typ, name, kind, struct.pack("<Q", data), 0, size)
            elif size == 0:
                value = self._by_kind(typ, name, kind, b"", 0, 0)
            else:
                if size > STRING_LIMIT:
                    return {"type": name, "value": f"<{size} bytes at {data:#x}>"}
                try:
                    raw = self.mem.read(data, size)
                except DecodeError:
                    return {"type": name, "value": f"<unreadable {data:#x}>"}
                value = self._by_kind(typ, name, kind, raw, 0, size)
        finally:
            self._depth -= 1
        return {"type": name, "value": value}

    def _by_kind(self, typ: int, name: str, kind: int, buf, off: int, size: int):
        fmt = _SCALAR_FMT.get(kind)
        if kind in (_K_INT, _K_UINT):
            fmt = ("q" if kind == _K_INT else "Q") if size == 8 else ("i" if kind == _K_INT else "I")
        if fmt is not None:
            return struct.unpack_from("<" + fmt, buf, off)[0]
        if kind == _K_FLOAT32:
            return float32_value(struct.unpack_from("<f", buf, off)[0])
        if kind == _K_COMPLEX64:
            return _complex_text(*struct.unpack_from("<ff", buf, off))
        if kind == _K_COMPLEX128:
            return _complex_text(*struct.unpack_from("<dd", buf, off))
        if kind == _K_STRING:
            return self._string(buf, off)
        if kind in (_K_PTR, _K_CHAN, _K_FUNC, _K_UNSAFEPTR):
            return Addr(_addr_at(buf, off)[0])
        # composite: the DWARF type of that name, when its size agrees
        gt = self._dwarf_type(name, size)
        if gt is not None:
            return self.decoder(gt)(buf, off)
        if kind == _K_MAP:
            hdr = struct.unpack_from("<Q", buf, off)[0]
            return {"type": name, "addr": Addr(hdr), "len": None}
        if kind == _K_ARRAY:
            # arraytype: Type; elem *Type; slice *Type; len uintptr
            try:
                extra = self.mem.read(typ + self.rtype.header, 3 * self.ptr)
                elem, _sl, n = struct.unpack_from("<QQQ", extra, 0)
                eh = self.mem.read(elem, self.rtype.header)
                esz = struct.unpack_from("<Q", eh, self.rtype.off["size"])[0]
                ekind = eh[self.rtype.off["kind"]] & _KIND_MASK
                if n * esz != size or n > 4096:
                    raise DecodeError("array descriptor does not match its size")
                ename = self.type_name(elem)
                return [self._by_kind(elem, ename, ekind, buf, off + i * esz, esz) for i in range(n)]
            except DecodeError:
                pass
        return f"<{name} at {len(buf) and off}>"

    def _dwarf_type(self, name: str, size: int) -> Optional[T.GoType]:
        try:
            gt = self.target.lookup_type(name)
        except Exception:  # a backend that cannot parse the name
            gt = None
        if gt is None or gt.size != size or gt.kind == T.UNKNOWN:
            return None
        return gt

    def type_name(self, typ: int) -> str:
        hit = self._type_names.get(typ)
        if hit is not None:
            return hit
        rt = self.rtype
        hdr = self.mem.read(typ, rt.header)
        tflag = hdr[rt.off["tflag"]]
        nameoff = struct.unpack_from("<i", hdr, rt.off["str"])[0]
        base = self._module_types(typ)
        if base is None:
            name = f"<type {typ:#x}>"
        else:
            name = self._read_name(base + nameoff)
            if tflag & _TFLAG_EXTRA_STAR and name.startswith("*"):
                name = name[1:]
        self._type_names[typ] = name
        return name

    def _module_types(self, typ: int) -> Optional[int]:
        if self._modules is None:
            self._modules = []
            md_t = self.target.lookup_type("runtime.moduledata")
            addr = self.target.symbol_address("runtime.firstmoduledata")
            if md_t is not None and addr is not None:
                ot, oe, on = (md_t.field("types"), md_t.field("etypes"), md_t.field("next"))
                seen = set()
                while addr and addr not in seen and len(seen) < 64 and ot and oe:
                    seen.add(addr)
                    try:
                        self._modules.append((self.mem.ptr(addr + ot.offset),
                                              self.mem.ptr(addr + oe.offset)))
                        addr = self.mem.ptr(addr + on.offset) if on else 0
                    except DecodeError:
                        break
        for lo, hi in self._modules:
            if lo <= typ < hi:
                return lo
        return self._modules[0][0] if self._modules else None

    def _read_name(self, addr: int) -> str:
        # abi.Name: 1 flag byte, uvarint length, bytes
        head = self.mem.read(addr, 4)
        n, shift, i = 0, 0, 1
        while i < 4:
            b = head[i]
            n |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                break
            shift += 7
        if n > 4096:
            raise DecodeError(f"implausible type name length {n} at {addr:#x}")
        return self.mem.read(addr + i, n).decode("utf-8", "replace") if n else ""


def _complex_text(re: float, im: float) -> str:
    return f"({go_float(re)}{'+' if im >= 0 or math.isnan(im) else ''}{go_float(im)}i)"


def go_float(x: float) -> str:
    """A float64 as Go's %v prints it (strconv 'g' with shortest digits, exponent rule of fmt)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    r = repr(float(x))
    sign = "-" if r.startswith("-") else ""
    r = r.lstrip("-")
    mant, _, exp = r.partition("e")
    e = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    if fp == "0":
        fp = ""
    digits = (ip + fp).lstrip("0")
    # decimal exponent: value = 0.d1d2... * 10^dp
    lead_zeros = len(ip + fp) - len((ip + fp).lstrip("0"))
    dp = len(ip) + e - lead_zeros
    digits = digits.rstrip("0") or "0"
    nd = len(digits)
    eprec = 6
    if nd > eprec and nd >= dp:
        eprec = nd
    exp10 = dp - 1
    if exp10 < -4 or exp10 >= eprec:
        m = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{sign}{m}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return f"{sign}{digits}{'0' * (dp - nd)}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"
