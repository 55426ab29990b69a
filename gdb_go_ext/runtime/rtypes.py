"""The runtime's type descriptors (internal/abi.Type) read from the target's memory.

A heap object's type is known to the runtime only as the address of its abi.Type: the
malloc header of an object over 512 bytes, span.largeType of a large object. RTypes reads
such a descriptor (cached by address): its size, pointer bytes, kind and name, and the
GC's pointer bitmap of it (ptr_mask) in each form the runtime has used:
  - a plain bitmap at GCData (one bit per word of PtrBytes);
  - a GC program (Go 1.22/1.23: Kind_ & KindGCProg; GCData holds a 4-byte length and the
    program, which ptr_mask runs as runtime.runGCProg does);
  - TFlagGCMaskOnDemand (Go 1.24+): GCData points to a slot holding the bitmap the runtime
    built on first use, or nil: then the bitmap is built from the type's structure
    (arrays and struct fields), as runtime.buildGCMask does.
Offsets come from the DWARF types internal/abi.{Type,PtrType,ArrayType,StructType,...};
flag values from the binary's DWARF constants (binary/dwarfconst.py), with the values
every version from 1.22 has used where the binary has none (a DWARF-stripped image).

Pure (no gdb); bad memory gives None and one error line, never an exception.
"""
from __future__ import annotations

import struct
from typing import Optional

import numpy as np

from ..binary.leb128 import uleb128
from ..errors import DecodeError, GoExtError

# abi.Kind values (stable since Go 1.0's reflect.Kind)
KIND_ARRAY, KIND_CHAN, KIND_FUNC, KIND_IFACE, KIND_MAP, KIND_PTR, KIND_SLICE, KIND_STRING, \
    KIND_STRUCT, KIND_UNSAFEPTR = 17, 18, 19, 20, 21, 22, 23, 24, 25, 26
KIND_NAMES = {1: "bool", 2: "int", 3: "int8", 4: "int16", 5: "int32", 6: "int64", 7: "uint",
              8: "uint8", 9: "uint16", 10: "uint32", 11: "uint64", 12: "uintptr", 13: "float32",
              14: "float64", 15: "complex64", 16: "complex128", 17: "array", 18: "chan",
              19: "func", 20: "interface", 21: "map", 22: "ptr", 23: "slice", 24: "string",
              25: "struct", 26: "unsafe.Pointer"}

MAX_TYPE_SIZE = 1 << 40        # a descriptor claiming more is garbage
MAX_MASK_WORDS = 1 << 28       # pointer bitmaps built here (2 GiB of pointer words)
MAX_FIELDS = 1 << 16
MAX_MODULES = 256
MAX_NAME = 1 << 12


# the moduledata fields any decoder reads (absent ones read as None)
MODULE_PATHS = ("types", "etypes", "data", "edata", "bss", "ebss", "noptrbss", "enoptrbss",
                "rodata", "gofunc", "end", "epclntab", "gcdatamask.n", "gcdatamask.bytedata",
                "gcbssmask.n", "gcbssmask.bytedata", "next")


def read_modules(rt, errors: list) -> list:
    """Each module's moduledata fields (MODULE_PATHS -> value, "addr": where it is), from
    runtime.firstmoduledata along .next (bounded, cycles stopped); problems as lines."""
    fl = rt.layout.fields("runtime.moduledata", MODULE_PATHS)
    if fl is None:
        errors.append("the binary has no type runtime.moduledata")
        return []
    addr = rt.target.symbol_address("runtime.firstmoduledata")
    if addr is None:
        errors.append("the binary has no symbol runtime.firstmoduledata")
        return []
    out, seen = [], set()
    for _ in range(MAX_MODULES):
        if not addr or addr in seen:
            break
        seen.add(addr)
        try:
            md = fl.read(rt.mem, addr)
        except GoExtError as e:
            errors.append(f"moduledata at {addr:#x}: {e}")
            break
        md["addr"] = addr
        out.append(md)
        addr = md.get("next") or 0
    return out


class RType:
    """One abi.Type: addr, size, ptrbytes, kind (Kind_ & KindMask), tflag, name."""

    __slots__ = ("_types", "addr", "size", "ptrbytes", "kind", "kind_raw", "tflag", "gcdata",
                 "str_off", "name", "_mask", "_elem", "_fields", "_length")

    def __init__(self, types: "RTypes", addr: int, size: int, ptrbytes: int, kind_raw: int,
                 tflag: int, gcdata: int, str_off: int):
        self._types = types
        self.addr, self.size, self.ptrbytes = addr, size, ptrbytes
        self.kind_raw, self.kind = kind_raw, kind_raw & types.kind_mask
        self.tflag, self.gcdata, self.str_off = tflag, gcdata, str_off
        self.name = types._name_of(self)
        self._mask = self._elem = self._fields = self._length = None

    def __repr__(self) -> str:
        return f"RType({self.name!r} @{self.addr:#x}, size={self.size}, ptrbytes={self.ptrbytes})"

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, f"kind {self.kind}")

    def ptr_mask(self) -> Optional[np.ndarray]:
        """One bool per word of ptrbytes: the GC's pointer bitmap; None if unreadable."""
        if self._mask is None:
            self._mask = self._types._mask_of(self, 0)
        return self._mask if self._mask is not False else None

    @property
    def elem(self) -> Optional["RType"]:
        """The element type of a pointer, slice, array, chan or map (its value)."""
        if self._elem is None:
            self._elem = self._types._elem_of(self) or False
        return self._elem or None

    @property
    def length(self) -> Optional[int]:
        """The length of an array type (None for other kinds)."""
        return self._types.array_len(self)

    @property
    def fields(self) -> list:
        """[(name, offset, RType)] of a struct ([] for other kinds or unreadable)."""
        if self._fields is None:
            self._fields = self._types._fields_of(self)
        return self._fields


class RTypes:
    """The abi.Type descriptors of one GoRuntime, cached by address (see rtypes(rt))."""

    def __init__(self, rt):
        self.rt = rt
        self.mem = rt.mem
        self.errors: list = []
        self._seen_errors: set = set()
        self._cache: dict = {}
        t = rt.target
        at = t.lookup_type("internal/abi.Type") or t.lookup_type("runtime._type")
        off = (lambda name, d: d) if at is None else \
            (lambda name, d: at.offset(name) if at.field(name) is not None else d)
        self.o_size, self.o_ptrbytes = off("Size_", 0), off("PtrBytes", 8)
        self.o_tflag, self.o_kind = off("TFlag", 20), off("Kind_", 23)
        self.o_gcdata, self.o_str = off("GCData", 32), off("Str", 40)
        self.type_size = at.size if at is not None else 48

        def sub(name: str, field: str, default: int) -> int:
            st = t.lookup_type("internal/abi." + name)
            f = st.field(field) if st is not None else None
            return f.offset if f is not None else default
        base = self.type_size
        self.o_ptr_elem = sub("PtrType", "Elem", base)
        self.o_slice_elem = sub("SliceType", "Elem", base)
        self.o_chan_elem = sub("ChanType", "Elem", base)
        self.o_array_elem = sub("ArrayType", "Elem", base)
        self.o_array_len = sub("ArrayType", "Len", base + 16)
        self.o_struct_fields = sub("StructType", "Fields", base + 8)
        mt = t.lookup_type("internal/abi.SwissMapType") or t.lookup_type("internal/abi.MapType") \
            or t.lookup_type("internal/abi.OldMapType")
        ef = mt.field("Elem") if mt is not None else None
        self.o_map_elem = ef.offset if ef is not None else base + 8
        sf = t.lookup_type("internal/abi.StructField")
        self.sf_size = sf.size if sf is not None else 24
        self.sf_name = sf.offset("Name") if sf is not None and sf.field("Name") else 0
        self.sf_typ = sf.offset("Typ") if sf is not None and sf.field("Typ") else 8
        self.sf_off = sf.offset("Offset") if sf is not None and sf.field("Offset") else 16

        from ..binary.dwarfconst import int_constant

        def const(names, default):
            for n in names:
                v = int_constant(rt.elf, n) if getattr(rt, "elf", None) is not None else None
                if v is not None:
                    return v
            return default
        self.kind_mask = const(("internal/abi.KindMask",), 31)
        self.tflag_extra_star = const(("internal/abi.TFlagExtraStar",), 2)
        vt = tuple(getattr(rt.layout, "version_tuple", ()) or ())
        # TFlag bit 16 was TFlagUnrolledBitmap (a plain bitmap) up to 1.23 and is
        # TFlagGCMaskOnDemand from 1.24: the constant tells; without DWARF constants only
        # the version can (the runtime has no field that says)
        self.tflag_on_demand = const(("internal/abi.TFlagGCMaskOnDemand",),
                                     16 if vt >= (1, 24) else 0)
        self.tflag_unrolled = const(("internal/abi.TFlagUnrolledBitmap",),
                                    16 if vt and vt < (1, 24) else 0)
        # KindGCProg (64) exists up to 1.23 only
        self.kind_gcprog = const(("internal/abi.KindGCProg", "runtime.kindGCProg"),
                                 64 if vt and vt < (1, 24) else 0)
        self.in_progress = t.symbol_address("runtime.inProgress") or 0
        self._modules: Optional[list] = None

    # --- errors
    def _error(self, msg: str) -> None:
        if msg not in self._seen_errors and len(self.errors) < 100:
            self._seen_errors.add(msg)
            self.errors.append(msg)

    def _read(self, addr: int, size: int) -> Optional[bytes]:
        if addr <= 0 or size < 0 or size > (1 << 30):
            return None
        try:
            data = self.mem.read(addr, size)
        except GoExtError:
            return None
        return data if len(data) == size else None

    # --- descriptors
    def at(self, addr: int) -> Optional[RType]:
        """The abi.Type at addr, or None (and an error line once) when it is not one."""
        addr = int(addr)
        if addr in self._cache:
            return self._cache[addr]
        t = None
        raw = self._read(addr, self.type_size) if addr % 8 == 0 else None
        if raw is None:
            self._error(f"type descriptor at {addr:#x} is unreadable")
        else:
            size, = struct.unpack_from("<Q", raw, self.o_size)
            ptrbytes, = struct.unpack_from("<Q", raw, self.o_ptrbytes)
            tflag, kind = raw[self.o_tflag], raw[self.o_kind]
            gcdata, = struct.unpack_from("<Q", raw, self.o_gcdata)
            str_off, = struct.unpack_from("<i", raw, self.o_str)
            # Go 1.22/1.23 unroll a large object's GC program into a type of their own,
            # with no kind: TFlagUnrolledBitmap says GCData is a plain bitmap
            unrolled = bool(self.tflag_unrolled and tflag & self.tflag_unrolled)
            if size > MAX_TYPE_SIZE or ptrbytes > size or ptrbytes % 8 \
                    or ((kind & self.kind_mask) == 0 and not unrolled) or (ptrbytes and not gcdata):
                self._error(f"{addr:#x} is not a type descriptor (size {size}, ptrbytes "
                            f"{ptrbytes}, kind {kind})")
            else:
                t = RType(self, addr, size, ptrbytes, kind, tflag, gcdata, str_off)
        if len(self._cache) > 1 << 20:
            self._cache.clear()
        self._cache[addr] = t
        return t

    def forget_dynamic(self) -> None:
        """A new stop: drop the descriptors outside the modules' type sections (those the
        runtime made in memory it may since have freed: unrolled GC programs) and the
        error lines; the modules' own descriptors never change and stay."""
        mods = self.modules()
        self._cache = {a: t for a, t in self._cache.items()
                       if t is not None and any(lo <= a < hi for lo, hi in mods)}
        self.errors.clear()
        self._seen_errors.clear()

    # --- names
    def modules(self) -> list:
        """[(types, etypes)] of every module (read_modules)."""
        if self._modules is None:
            errors: list = []
            self._modules = [(m["types"], m["etypes"]) for m in read_modules(self.rt, errors)
                             if m.get("types") and m.get("etypes")
                             and m["types"] < m["etypes"]]
            for e in errors:
                self._error(e)
            if not self._modules and not errors:
                self._error("no module's type section found: type names unknown")
        return self._modules

    def _name_at(self, p: int) -> Optional[str]:
        """An abi.Name's string: flags byte, varint length, bytes."""
        head = self._read(p, 11)
        if head is None:
            return None
        try:
            n, i = uleb128(head, 1)
        except DecodeError:
            return None
        if n > MAX_NAME:
            return None
        data = self._read(p + i, n)
        return data.decode("utf-8", "replace") if data is not None else None

    def _name_of(self, t: RType) -> str:
        if t.str_off == 0 and not (t.tflag & self.tflag_extra_star):
            return ""   # a type the runtime made (an unrolled GC program's): no name
        for types, etypes in self.modules():
            if types <= t.addr < etypes:
                s = self._name_at(types + t.str_off)
                if s is None:
                    self._error(f"the name of type {t.addr:#x} is unreadable")
                    return ""
                if t.tflag & self.tflag_extra_star and s.startswith("*"):
                    s = s[1:]
                return s
        return ""

    # --- structure
    def _word(self, addr: int) -> Optional[int]:
        raw = self._read(addr, 8)
        return struct.unpack("<Q", raw)[0] if raw is not None else None

    def _elem_of(self, t: RType) -> Optional[RType]:
        off = {KIND_PTR: self.o_ptr_elem, KIND_SLICE: self.o_slice_elem, KIND_CHAN: self.o_chan_elem,
               KIND_ARRAY: self.o_array_elem, KIND_MAP: self.o_map_elem}.get(t.kind)
        if off is None:
            return None
        p = self._word(t.addr + off)
        return self.at(p) if p else None

    def array_len(self, t: RType) -> Optional[int]:
        if t.kind != KIND_ARRAY:
            return None
        if t._length is None:
            t._length = self._word(t.addr + self.o_array_len)
        return t._length

    def _fields_of(self, t: RType) -> list:
        if t.kind != KIND_STRUCT:
            return []
        head = self._read(t.addr + self.o_struct_fields, 16)
        if head is None:
            self._error(f"the fields of type {t.name or hex(t.addr)} are unreadable")
            return []
        arr, n = struct.unpack("<QQ", head)
        if n > MAX_FIELDS:
            self._error(f"type {t.name or hex(t.addr)} claims {n} fields")
            return []
        raw = self._read(arr, n * self.sf_size) if n else b""
        if raw is None:
            self._error(f"the fields of type {t.name or hex(t.addr)} are unreadable")
            return []
        out = []
        for i in range(n):
            b = i * self.sf_size
            name_p, = struct.unpack_from("<Q", raw, b + self.sf_name)
            typ, = struct.unpack_from("<Q", raw, b + self.sf_typ)
            off, = struct.unpack_from("<Q", raw, b + self.sf_off)
            ft = self.at(typ) if typ else None
            if ft is None or off + ft.size > t.size:
                continue
            out.append((self._name_at(name_p) or f"field{i}", off, ft))
        return out

    # --- pointer bitmaps
    def _mask_of(self, t: RType, depth: int):
        nw = t.ptrbytes // 8
        if nw == 0:
            return np.zeros(0, dtype=bool)
        if nw > MAX_MASK_WORDS:
            self._error(f"type {t.name or hex(t.addr)}: {nw} pointer words, more than read here")
            return False
        if self.kind_gcprog and t.kind_raw & self.kind_gcprog:
            return self._run_prog(t, nw)
        if self.tflag_on_demand and t.tflag & self.tflag_on_demand:
            built = self._word(t.gcdata)
            if built is None:
                self._error(f"type {t.name or hex(t.addr)}: its GC mask slot is unreadable")
                return False
            if built and built != self.in_progress:
                return self._bitmap(built, nw, t)
            return self._build(t, depth)
        return self._bitmap(t.gcdata, nw, t)

    def _bitmap(self, addr: int, nw: int, t: RType):
        raw = self._read(addr, (nw + 7) // 8)
        if raw is None:
            self._error(f"type {t.name or hex(t.addr)}: its GC bitmap is unreadable")
            return False
        return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")[:nw].astype(bool)

    def _build(self, t: RType, depth: int):
        """The mask from the type's structure (runtime.buildGCMask)."""
        nw = t.ptrbytes // 8
        if depth > 64:
            self._error(f"type {t.name or hex(t.addr)}: nested too deep")
            return False
        out = np.zeros(max(nw, t.size // 8), dtype=bool)
        if t.kind == KIND_ARRAY:
            e, n = t.elem, self.array_len(t)
            if e is None or n is None or e.size * n != t.size or e.size % 8:
                self._error(f"array type {t.name or hex(t.addr)}: element unreadable")
                return False
            em = e.ptr_mask() if e.ptrbytes else np.zeros(0, dtype=bool)
            if em is None:
                return False
            one = np.zeros(e.size // 8, dtype=bool)
            one[:len(em)] = em
            out = np.tile(one, n) if n else out
        elif t.kind == KIND_STRUCT:
            for _, off, ft in t.fields:
                if not ft.ptrbytes:
                    continue
                fm = self._mask_of(ft, depth + 1) if ft._mask is None else ft._mask
                ft._mask = fm
                if fm is False or off % 8:
                    return False
                out[off // 8:off // 8 + len(fm)] |= fm
        else:
            self._error(f"type {t.name or hex(t.addr)} ({t.kind_name}) has no GC mask")
            return False
        return out[:nw]

    def _run_prog(self, t: RType, nw: int):
        """runtime.runGCProg over the program at GCData+4, nw bits at most."""
        head = self._read(t.gcdata, 4)
        plen = struct.unpack("<I", head)[0] if head is not None else None
        prog = self._read(t.gcdata + 4, plen) if plen is not None and plen < (1 << 24) else None
        if prog is None:
            self._error(f"type {t.name or hex(t.addr)}: its GC program is unreadable")
            return False
        bits, err = run_gc_prog(prog, nw)
        if err:
            self._error(f"type {t.name or hex(t.addr)}: {err}")
        return bits

    # --- paths
    def field_path(self, t: Optional[RType], offset: int) -> str:
        """A path step for the word at offset in a value of type t: "left", "pad[3]",
        "name.len", "[7].next" (an array of t); "+0x18" when unknown."""
        if t is None or t.size <= 0:
            return f"+{offset:#x}"
        parts = []
        if offset >= t.size:
            parts.append(f"[{offset // t.size}]")
            offset %= t.size
        for _ in range(32):
            k = t.kind
            if k == KIND_STRUCT:
                hit = None
                for name, off, ft in t.fields:
                    if off <= offset < off + max(ft.size, 1):
                        hit = (name, off, ft)
                if hit is None:
                    parts.append(f"+{offset:#x}")
                    break
                parts.append(("." if parts else "") + hit[0])
                offset -= hit[1]
                t = hit[2]
            elif k == KIND_ARRAY:
                e = t.elem
                if e is None or e.size <= 0:
                    parts.append(f"+{offset:#x}")
                    break
                parts.append(f"[{offset // e.size}]")
                offset %= e.size
                t = e
            elif k in (KIND_STRING, KIND_SLICE):
                if offset:
                    parts.append({8: ".len", 16: ".cap"}.get(offset, f"+{offset:#x}"))
                break
            elif k == KIND_IFACE:
                if offset == 8:
                    parts.append(".data")
                break
            else:
                if offset:
                    parts.append(f"+{offset:#x}")
                break
        return "".join(parts) or ""


def run_gc_prog(prog: bytes, limit: int) -> tuple:
    """(bool array of at most limit bits, error or None): a GC program's output
    (0nnnnnnn: n literal bits follow; 1nnnnnnn c / 10000000 n c: repeat the previous n
    bits c times; 00000000: end)."""
    out = np.zeros(limit, dtype=bool)
    pos = 0   # bits written
    p = 0
    n_prog = len(prog)

    def varint():
        nonlocal p
        v, p = uleb128(prog, p, n_prog)
        return v
    try:
        for _ in range(n_prog + 1):
            inst = prog[p]
            p += 1
            n = inst & 0x7f
            if not inst & 0x80:
                if n == 0:
                    return out[:pos], None
                nbytes = (n + 7) // 8
                lit = np.unpackbits(np.frombuffer(prog[p:p + nbytes], dtype=np.uint8),
                                    bitorder="little")[:n].astype(bool)
                if len(lit) < n:
                    raise IndexError
                p += nbytes
                take = min(n, limit - pos)
                out[pos:pos + take] = lit[:take]
                pos += take
                if take < n:
                    return out[:pos], "GC program longer than the type"
                continue
            if n == 0:
                n = varint()
            c = varint()
            if n == 0 or n > pos:
                return out[:pos], "GC program repeats more bits than written"
            total = min(n * c, limit - pos)
            pattern = out[pos - n:pos].copy()
            reps = -(-total // n)
            out[pos:pos + total] = np.tile(pattern, reps)[:total]
            pos += total
            if total < n * c:
                return out[:pos], "GC program longer than the type"
        return out[:pos], "GC program without end"
    except (IndexError, DecodeError):
        return out[:pos], "GC program truncated"


def rtypes(rt) -> RTypes:
    """The RTypes of a GoRuntime, per binary (a new stop drops only the descriptors made
    at run time: forget_dynamic)."""
    return rt.per_binary("rtypes", lambda: RTypes(rt))
