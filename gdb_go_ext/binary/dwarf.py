"""Go type layouts and global variable types from the binary's own DWARF (pyelftools).

Delve reads the same DWARF; reading it here gives GoType objects built exactly
as gdb_go_ext/gdb/backend.py builds them from gdb's view of that DWARF: both
hand what they read to binary.types.TypeBuilder (same names, kinds, sizes, field
offsets; maps with extra['header']).

Go puts every type in one compile unit and each package's globals in the
package's unit. Indexing those top-level DIEs takes a second or two with
pyelftools, so the name -> DIE offset index is cached per build-id under
$GDB_GO_EXT_CACHE/dwarf-index/.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import zlib
from typing import Optional

from ..errors import DecodeError
from . import types as T

from ..cache import cache_dir

INDEX_VERSION = 1
TYPE_TAGS = {"DW_TAG_base_type", "DW_TAG_structure_type", "DW_TAG_pointer_type", "DW_TAG_typedef",
             "DW_TAG_array_type", "DW_TAG_subroutine_type", "DW_TAG_unspecified_type"}

# DW_ATE_*
_BOOL, _CFLOAT, _FLOAT, _SIGNED, _SCHAR, _UNSIGNED, _UCHAR = 2, 3, 4, 5, 6, 7, 8

def dwarf_errors() -> tuple:
    """What pyelftools raises on DWARF it cannot read (a bad form, a cut section, a
    missing attribute), for readers that read less of it rather than fail. Imported
    when asked (an except clause asks when something was raised): pyelftools takes a
    tenth of a second to import, and loading the views does not need it."""
    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.construct.core import ConstructError
    return ELFError, DWARFError, ConstructError, KeyError, IndexError, ValueError


def die_name(die) -> Optional[str]:
    """A DIE's DW_AT_name as text, or None."""
    a = die.attributes.get("DW_AT_name")
    if a is None:
        return None
    v = a.value
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def compile_units(dwarf):
    """(name, CU) of each compile unit of a pyelftools DWARFInfo, in order: Go writes
    one per package (named like it), the types in one of their own."""
    for cu in dwarf.iter_CUs():
        yield die_name(cu.get_top_DIE()) or "", cu


def open_dwarf(path: Optional[str]):
    """(DWARF, file): pyelftools' DWARFInfo of the binary at path, and the file it
    reads, to be closed when done; DecodeError without the file, without DWARF (no_dwarf_message), or with DWARF
    pyelftools cannot read."""
    from elftools.elf.elffile import ELFFile
    if not path:
        raise DecodeError("no executable file is known")
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise DecodeError(f"cannot open {path}: {e.strerror or e}") from None
    try:
        elf = ELFFile(fh)
        if not elf.has_dwarf_info():
            raise DecodeError(no_dwarf_message(path))
        dwarf = elf.get_dwarf_info()
    except dwarf_errors() as e:
        fh.close()
        raise DecodeError(f"{path}: unreadable DWARF ({e})") from None
    except DecodeError:
        fh.close()
        raise
    return dwarf, fh


def has_dwarf(elf) -> bool:
    """Whether an ElfFile carries DWARF (.debug_info, or Go 1.19's compressed .zdebug_info)."""
    return elf.section(".debug_info") is not None or elf.section(".zdebug_info") is not None


_MAX_SECTION = 1 << 30
SHF_COMPRESSED = 0x800


def debug_section(elf, name: str) -> Optional[bytes]:
    """A debug section's bytes from an ElfFile (binary/elf.py), decompressed:
    SHF_COMPRESSED or .zdebug_* zlib, as Go writes them (None if absent or unreadable).
    The raw reads of DWARF that need no pyelftools (dwarfconst) go through it."""
    try:
        sec = elf.section(name)
        if sec is not None:
            data = elf.section_data(name)
            if sec.flags & SHF_COMPRESSED:   # Elf64_Chdr: type, reserved, size, align
                ch_type, _, size, _ = struct.unpack_from("<IIQQ", data, 0)
                if ch_type != 1 or size > _MAX_SECTION:
                    return None
                return zlib.decompressobj().decompress(bytes(data[24:]), size)
            return bytes(data)
        zname = ".z" + name[1:]
        data = elf.section_data(zname)
        if data is None or bytes(data[:4]) != b"ZLIB":
            return None
        size = struct.unpack_from(">Q", data, 4)[0]
        if size > _MAX_SECTION:
            return None
        return zlib.decompressobj().decompress(bytes(data[12:]), size)
    except Exception:  # noqa: BLE001 - a damaged file (zlib, struct, DecodeError): None
        return None


def no_dwarf_message(path: str) -> str:
    """What to do about a binary without DWARF (the runtime's type layouts live there)."""
    return (f"{path} has no DWARF debug info (stripped, or built with -ldflags=-w): load "
            "the build it was stripped from (gdb: `file PATH`; delve-bridge, gdb-go: as BIN), "
            "which has the same build ID; a build made with -ldflags='-s -w' has no such twin "
            "(build without -s -w, and ship `strip`ped copies)")

class DwarfTypes:
    """lookup_type / symbol_type over one Go binary's DWARF."""

    def __init__(self, path: str, build_id: Optional[str], ptr_size: int = 8):
        self.path = path
        self.ptr_size = ptr_size
        self.dwarf, self._fh = open_dwarf(path)
        self.lock = threading.RLock()
        key = build_id or hashlib.sha256(f"{path}:{os.path.getsize(path)}:{os.path.getmtime(path)}"
                                         .encode()).hexdigest()
        self._index_path = os.path.join(cache_dir(), "dwarf-index",
                                        hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")
        self._index = self._load_index()
        self._types = T.TypeBuilder(_DieReader(), ptr_size)
        self._by_name: dict[str, Optional[T.GoType]] = {}
        self._vars: dict[str, Optional[T.GoType]] = {}

    # --- the index: {"types": {name: off}, "vars": {name: off}, "cus": [indexed CU offsets]}
    def _load_index(self) -> dict:
        try:
            with open(self._index_path) as f:
                idx = json.load(f)
            if idx.get("v") == INDEX_VERSION:
                return idx
        except (OSError, ValueError):
            pass
        return {"v": INDEX_VERSION, "types": {}, "vars": {}, "cus": [], "cu_names": None}

    def _save_index(self) -> None:
        try:
            os.makedirs(os.path.dirname(self._index_path), exist_ok=True)
            tmp = f"{self._index_path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(self._index, f)
            os.replace(tmp, self._index_path)
        except OSError:
            pass  # a read-only cache only costs time

    def _cu_names(self) -> list:
        if self._index.get("cu_names") is None:
            self._index["cu_names"] = [[name, cu.cu_offset]
                                       for name, cu in compile_units(self.dwarf)]
        return self._index["cu_names"]

    def _index_cu(self, cu_offset: int) -> None:
        if cu_offset in self._index["cus"]:
            return
        cu = self.dwarf.get_CU_at(cu_offset)
        types, vars_ = self._index["types"], self._index["vars"]
        for die in cu.get_top_DIE().iter_children():
            tag = die.tag
            if tag == "DW_TAG_variable":
                n = die_name(die)
                if n and "DW_AT_type" in die.attributes:
                    vars_.setdefault(n, die.offset)
            elif tag in TYPE_TAGS:
                n = die_name(die)
                if n:
                    types.setdefault(n, die.offset)
        self._index["cus"].append(cu_offset)
        self._save_index()

    def _index_package(self, pkg: str) -> None:
        for name, off in self._cu_names():
            if name == pkg:
                self._index_cu(off)

    def _ensure_types(self) -> None:
        if self._index.get("types_done"):
            return
        # types live in a compile unit of their own (named like runtime's) with hardly any code;
        # index the runtime units, then the rest only if a type is still missing
        self._index_package("runtime")
        self._index["types_done"] = True
        self._save_index()

    # --- public
    def lookup_type(self, name: str) -> Optional[T.GoType]:
        with self.lock:
            if name in self._by_name:
                return self._by_name[name]
            self._ensure_types()
            off = self._index["types"].get(name)
            gt = self._types.convert(self._die(off)) if off is not None else None
            self._by_name[name] = gt
            return gt

    def symbol_type(self, name: str) -> Optional[T.GoType]:
        with self.lock:
            if name in self._vars:
                return self._vars[name]
            off = self._index["vars"].get(name)
            if off is None:
                pkg = package_of(name)
                if pkg is not None:
                    self._index_package(pkg)
                    off = self._index["vars"].get(name)
            gt = None
            if off is not None:
                die = self._die(off)
                gt = self._types.convert(die.get_DIE_from_attribute("DW_AT_type"))
            self._vars[name] = gt
            return gt

    def package_variables(self, pkg: str = "main") -> list[str]:
        with self.lock:
            self._index_package(pkg)
            pre = pkg + "."
            return sorted(n for n in self._index["vars"] if n.startswith(pre))

    def _die(self, off: int):
        return self.dwarf.get_DIE_from_refaddr(off)

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass


_TAG_KIND = {"DW_TAG_pointer_type": T.PTR, "DW_TAG_structure_type": T.STRUCT,
             "DW_TAG_array_type": T.ARRAY, "DW_TAG_subroutine_type": T.FUNC}
_ENCODING_KIND = {_BOOL: T.BOOL, _FLOAT: T.FLOAT, _CFLOAT: T.COMPLEX, _SIGNED: T.INT,
                  _SCHAR: T.INT, _UNSIGNED: T.UINT, _UCHAR: T.UINT}


def _target(die):
    if die is None or "DW_AT_type" not in die.attributes:
        return None
    return die.get_DIE_from_attribute("DW_AT_type")


class _DieReader:
    """binary.types.TypeReader over pyelftools DIEs."""

    @staticmethod
    def key(die):
        return die.offset

    def name(self, die) -> str:
        n = die_name(die)
        if n:
            return n
        if die.tag == "DW_TAG_pointer_type":
            t = _target(die)
            return "*" + (self.name(t) if t is not None else "void")
        return "?"

    @staticmethod
    def is_typedef(die) -> bool:
        return die.tag == "DW_TAG_typedef"

    target = staticmethod(_target)

    @staticmethod
    def strip(die):
        for _ in range(16):
            if die is None or die.tag != "DW_TAG_typedef":
                return die
            die = _target(die)
        return die

    @staticmethod
    def kind(die) -> str:
        if die is None:
            return T.VOID
        if die.tag == "DW_TAG_base_type":
            a = die.attributes.get("DW_AT_encoding")
            return _ENCODING_KIND.get(a.value if a is not None else 0, T.UNKNOWN)
        return _TAG_KIND.get(die.tag, T.UNKNOWN)

    @staticmethod
    def size(die) -> Optional[int]:
        a = die.attributes.get("DW_AT_byte_size") if die is not None else None
        return int(a.value) if a is not None else None

    @staticmethod
    def length(die) -> int:
        for c in die.iter_children():
            if c.tag == "DW_TAG_subrange_type":
                if "DW_AT_count" in c.attributes:
                    return int(c.attributes["DW_AT_count"].value)
                if "DW_AT_upper_bound" in c.attributes:
                    lo = c.attributes["DW_AT_lower_bound"].value \
                        if "DW_AT_lower_bound" in c.attributes else 0
                    return int(c.attributes["DW_AT_upper_bound"].value) - lo + 1
        return 0

    @staticmethod
    def members(die) -> list:
        out = []
        for c in die.iter_children():
            if c.tag != "DW_TAG_member":
                continue
            n = die_name(c)
            loc = c.attributes.get("DW_AT_data_member_location")
            off = loc.value if loc is not None and isinstance(loc.value, int) else 0
            out.append((n, off, _target(c) if n is not None else None))
        return out


def package_of(name: str) -> Optional[str]:
    """The import path of a name's package: 'main.cache' -> 'main',
    'example.com/x/y.v' -> 'example.com/x/y', net/http.(*conn).serve -> net/http."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot <= 0:
        return None
    return name[:dot]
