"""A minimal ELF64 little-endian reader for Go binaries (pure Python, stdlib only).

It reads what the Go decoders need and nothing more: section bytes by name,
the symbol table (name -> (addr, size) and addr -> name), file-backed bytes of
PT_LOAD segments by virtual address, the GNU/Go build-id notes, and the
``.go.buildinfo`` blob (Go version and main module path).

Works over ``bytes``, ``bytearray``, ``mmap.mmap`` or ``memoryview``.
Anything malformed raises :class:`gdb_go_ext.errors.DecodeError`.
"""

from __future__ import annotations

import bisect
import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from gdb_go_ext.errors import DecodeError
from .leb128 import uleb128

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
PHDR = struct.Struct("<IIQQQQQQ")
_SYM = struct.Struct("<IBBHQQ")

PT_LOAD = 1
PT_NOTE = 4
SHT_NOBITS = 8
SHT_SYMTAB = 2
SHT_NOTE = 7
STT_FUNC = 2
STT_OBJECT = 1
NT_GNU_BUILD_ID = 3   # owner "GNU"
NT_GO_BUILD_ID = 4    # owner "Go"

# Limits that keep a hostile file from making us allocate or loop forever.
_MAX_SECTIONS = 65535
_MAX_SYMBOLS = 20_000_000


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int = 0

    @property
    def end(self) -> int:
        return self.addr + self.size


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class BuildInfo:
    """What ``.go.buildinfo`` says. ``path`` is the main package path, ``module``
    the main module path (empty if the binary was built outside a module)."""

    go_version: str
    path: str = ""
    module: str = ""
    module_version: str = ""
    settings: Dict[str, str] = field(default_factory=dict)
    modinfo: str = ""


def open_program(path: Optional[str]) -> Optional["ElfFile"]:
    """The program's ELF file at path, or None where there is no path, no such file or
    no usable ELF (its decoders then do without the binary's tables)."""
    if not path or not os.path.exists(path):
        return None
    try:
        return ElfFile.open(path)
    except (DecodeError, OSError):
        return None


def _cstr(buf, off: int, limit: int = 4096) -> str:
    end = off
    stop = min(len(buf), off + limit)
    while end < stop and buf[end] != 0:
        end += 1
    return bytes(buf[off:end]).decode("utf-8", "replace")


class ElfFile:
    """An ELF64 little-endian file held in memory (bytes or mmap)."""

    def __init__(self, data, path: str = "<memory>"):
        self.path = path
        self._data = data
        self._mv = memoryview(data)
        self._symtab: Optional[Dict[str, Tuple[int, int]]] = None
        self._sym_addrs: Optional[List[int]] = None
        self._sym_by_addr: Optional[List[Tuple[int, int, str]]] = None
        self._buildinfo: Optional[BuildInfo] = None
        self._parse_headers()

    @property
    def view(self) -> memoryview:
        """The file's bytes (of its read-only mmap, when made by open)."""
        return self._mv

    def close(self) -> None:
        """Unmap the file now (a deleted core's blocks go back at once), unless views of
        it are still held elsewhere: then it goes when the last of them does."""
        data = self._data
        if not isinstance(data, mmap.mmap):
            return
        try:
            self._mv.release()
            data.close()
        except BufferError:
            pass

    @property
    def mapping(self) -> Optional[mmap.mmap]:
        """The read-only mmap of the file (made by open, for madvise), else None."""
        return self._data if isinstance(self._data, mmap.mmap) else None

    @property
    def loads(self) -> list:
        """The PT_LOAD segments, by address."""
        return self._loads

    # -- construction -------------------------------------------------------------
    @classmethod
    def open(cls, path: str) -> "ElfFile":
        """Map ``path`` read-only. Raises DecodeError if it isn't a usable ELF."""
        try:
            with open(path, "rb") as fh:
                try:
                    data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                except ValueError:  # empty file
                    data = b""
        except OSError as e:
            raise DecodeError(f"cannot open {path}: {e.strerror or e}") from None
        return cls(data, path)

    def _parse_headers(self) -> None:
        d = self._data
        if len(d) < EHDR.size:
            raise DecodeError(f"{self.path}: not an ELF file (too short)")
        ident = bytes(d[:16])
        if ident[:4] != b"\x7fELF":
            raise DecodeError(f"{self.path}: not an ELF file")
        if ident[4] != 2 or ident[5] != 1:
            raise DecodeError(f"{self.path}: only ELF64 little-endian is supported")
        (_, self.e_type, self.machine, _, self.entry, phoff, shoff, _, _, phentsize, phnum,
         shentsize, shnum, shstrndx) = EHDR.unpack_from(d, 0)

        self.segments: List[Segment] = []
        if phnum:
            if phentsize < PHDR.size or phoff + phnum * phentsize > len(d):
                raise DecodeError(f"{self.path}: truncated ELF program headers")
            for i in range(phnum):
                p_type, p_flags, off, vaddr, _, filesz, memsz, _ = PHDR.unpack_from(d, phoff + i * phentsize)
                self.segments.append(Segment(p_type, p_flags, off, vaddr, filesz, memsz))
        self._loads = sorted((s for s in self.segments if s.type == PT_LOAD), key=lambda s: s.vaddr)
        self._load_starts = [s.vaddr for s in self._loads]

        self.sections: List[Section] = []
        self._by_name: Dict[str, Section] = {}
        if shnum and shoff:
            if shnum > _MAX_SECTIONS or shentsize < _SHDR.size or shoff + shnum * shentsize > len(d):
                raise DecodeError(f"{self.path}: truncated ELF section headers")
            raw = [_SHDR.unpack_from(d, shoff + i * shentsize) for i in range(shnum)]
            strtab_off = strtab_size = 0
            if shstrndx < shnum:
                strtab_off, strtab_size = raw[shstrndx][4], raw[shstrndx][5]
                if strtab_off + strtab_size > len(d):
                    raise DecodeError(f"{self.path}: truncated section name table")
            for (name_off, sh_type, flags, addr, off, size, link, _, _, _) in raw:
                name = _cstr(d, strtab_off + name_off, 256) if name_off < strtab_size else ""
                sec = Section(name, sh_type, flags, addr, off, size, link)
                self.sections.append(sec)
                self._by_name.setdefault(name, sec)
        if not self.sections and not self.segments:
            raise DecodeError(f"{self.path}: ELF file has neither sections nor segments")

    # -- sections -----------------------------------------------------------------
    def section(self, name: str) -> Optional[Section]:
        return self._by_name.get(name)

    def section_data(self, name: str) -> Optional[memoryview]:
        """The file bytes of section ``name`` (None if absent; empty for NOBITS)."""
        sec = self._by_name.get(name)
        if sec is None:
            return None
        if sec.type == SHT_NOBITS:
            return self._mv[0:0]
        if sec.offset + sec.size > len(self._data):
            raise DecodeError(f"{self.path}: section {name} runs past end of file")
        return self._mv[sec.offset: sec.offset + sec.size]

    # -- memory by virtual address ------------------------------------------------------
    def read_vaddr(self, addr: int, n: int) -> bytes:
        """Bytes at virtual address ``addr`` backed by the file (PT_LOAD segments,
        falling back to allocated sections). The zero-filled tail of a segment
        (memsz > filesz) reads as zeros. Raises DecodeError otherwise."""
        if n < 0 or addr < 0:
            raise DecodeError(f"bad read of {n} bytes at {addr:#x}")
        i = bisect.bisect_right(self._load_starts, addr) - 1
        if i >= 0:
            seg = self._loads[i]
            if addr + n <= seg.vaddr + seg.memsz:
                rel = addr - seg.vaddr
                out = bytearray()
                if rel < seg.filesz:
                    k = min(n, seg.filesz - rel)
                    start = seg.offset + rel
                    if start + k > len(self._data):
                        raise DecodeError(f"{self.path}: segment at {seg.vaddr:#x} runs past end of file")
                    out += self._mv[start:start + k]
                out += bytes(n - len(out))
                return bytes(out)
        for sec in self.sections:
            if sec.addr and sec.addr <= addr and addr + n <= sec.addr + sec.size and sec.type != SHT_NOBITS:
                start = sec.offset + addr - sec.addr
                if start + n <= len(self._data):
                    return bytes(self._mv[start:start + n])
        raise DecodeError(f"cannot read {n} bytes at {addr:#x} from {self.path}")

    def read_u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read_vaddr(addr, 8))[0]

    def read_gostring(self, addr: int, max_len: int = 1 << 20) -> str:
        """Read a Go ``string`` header (ptr, len) at ``addr`` and its bytes."""
        ptr, ln = struct.unpack("<QQ", self.read_vaddr(addr, 16))
        if ln > max_len:
            raise DecodeError(f"string at {addr:#x} is implausibly long ({ln})")
        return self.read_vaddr(ptr, ln).decode("utf-8", "replace") if ln else ""

    # -- symbols ------------------------------------------------------------------------------
    def _load_symbols(self) -> None:
        if self._symtab is not None:
            return
        table: Dict[str, Tuple[int, int]] = {}
        by_addr: List[Tuple[int, int, str]] = []
        symsec = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
        if symsec is not None:
            link = symsec.link  # sh_link of the symtab names its string table
            strsec = self.sections[link] if link < len(self.sections) else self._by_name.get(".strtab")
            if strsec is None:
                raise DecodeError(f"{self.path}: symbol table without string table")
            if symsec.offset + symsec.size > len(self._data) or strsec.offset + strsec.size > len(self._data):
                raise DecodeError(f"{self.path}: symbol table runs past end of file")
            count = min(symsec.size // _SYM.size, _MAX_SYMBOLS)
            strs = bytes(self._mv[strsec.offset: strsec.offset + strsec.size])
            base = symsec.offset
            d = self._data
            unpack = _SYM.unpack_from
            for i in range(1, count):
                name_off, info, _, shndx, value, size = unpack(d, base + i * _SYM.size)
                if not name_off or name_off >= len(strs):
                    continue
                end = strs.find(b"\0", name_off)
                if end < 0:
                    end = len(strs)
                name = strs[name_off:end].decode("utf-8", "replace")
                table.setdefault(name, (value, size))
                if shndx != 0 and (info & 0xF) in (STT_FUNC, STT_OBJECT) and value:
                    by_addr.append((value, size, name))
        by_addr.sort()
        self._symtab = table
        self._sym_by_addr = by_addr
        self._sym_addrs = [a for a, _, _ in by_addr]

    @property
    def has_symbols(self) -> bool:
        self._load_symbols()
        return bool(self._symtab)

    def symbol(self, name: str) -> Optional[Tuple[int, int]]:
        """(address, size) of symbol ``name``, or None."""
        self._load_symbols()
        return self._symtab.get(name)

    def symbols_with_prefix(self, prefix: str) -> list:
        """The names of every symbol that starts with ``prefix``."""
        self._load_symbols()
        return [n for n in self._symtab if n.startswith(prefix)]

    def symbol_at(self, addr: int) -> Optional[Tuple[str, int]]:
        """(name, offset) of the function/object symbol containing ``addr``, or None."""
        self._load_symbols()
        i = bisect.bisect_right(self._sym_addrs, addr) - 1
        # Walk back over zero-sized symbols at the same address; bounded.
        for j in range(i, max(i - 8, -1), -1):
            a, size, name = self._sym_by_addr[j]
            if addr < a + max(size, 1):
                return name, addr - a
            if size:
                break
        return None

    # -- notes ---------------------------------------------------------------------------------
    def build_id(self) -> Optional[str]:
        """The GNU build-id as hex (``.note.gnu.build-id``), else the Go build ID
        (``.note.go.buildid``) as text, else None."""
        return self.gnu_build_id() or self.go_build_id()

    def gnu_build_id(self) -> Optional[str]:
        gnu = self._note(".note.gnu.build-id", NT_GNU_BUILD_ID, b"GNU")
        return gnu.hex() if gnu is not None else None

    def go_build_id(self) -> Optional[str]:
        go = self._note(".note.go.buildid", NT_GO_BUILD_ID, b"Go")
        return go.decode("utf-8", "replace") if go is not None else None

    def _note(self, secname: str, ntype: int, owner: bytes) -> Optional[bytes]:
        """The note from its section, else from the PT_NOTE segments (a file whose
        section headers are gone)."""
        data = self.section_data(secname)
        notes = parse_notes(data, 64) if data is not None else self.segment_notes() \
            if not self.sections else ()
        for name, typ, desc in notes:
            if typ == ntype and name == owner:
                return bytes(desc)
        return None

    def segment_notes(self):
        """(owner, type, desc) of every note in the PT_NOTE segments (a core's notes)."""
        for seg in self.segments:
            if seg.type == PT_NOTE:
                end = min(seg.offset + seg.filesz, len(self._data))
                yield from parse_notes(self._mv[seg.offset:end])

    # -- Go build info ----------------------------------------------------------------------
    def go_buildinfo(self) -> BuildInfo:
        """Decode ``.go.buildinfo``: Go version and main module path.

        Handles the 1.18+ inline format (flag bit 2: varint-prefixed strings
        right after the 32-byte header) and the older format (two pointers to
        Go string headers at offset 16). Raises DecodeError if absent/garbled."""
        if self._buildinfo is not None:
            return self._buildinfo
        data = self.section_data(".go.buildinfo")
        if data is None:
            raise DecodeError(f"{self.path}: no .go.buildinfo section (not a Go binary?)")
        magic = b"\xff Go buildinf:"
        if len(data) < 32 or bytes(data[:14]) != magic:
            raise DecodeError(f"{self.path}: .go.buildinfo has no build info header")
        ptrsize, flags = data[14], data[15]
        if flags & 2:
            vers, off = _varint_string(data, 32)
            mod, _ = _varint_string(data, off)
        else:
            if flags & 1 or ptrsize not in (4, 8):
                raise DecodeError(f"{self.path}: unsupported build info encoding (ptrsize {ptrsize}, flags {flags:#x})")
            fmt = "<Q" if ptrsize == 8 else "<I"
            vers_ptr = struct.unpack_from(fmt, data, 16)[0]
            mod_ptr = struct.unpack_from(fmt, data, 16 + ptrsize)[0]
            vers = self._read_string_header(vers_ptr, ptrsize)
            mod = self._read_string_header(mod_ptr, ptrsize) if mod_ptr else ""
        self._buildinfo = _parse_modinfo(vers, mod)
        return self._buildinfo

    def _read_string_header(self, addr: int, ptrsize: int) -> str:
        fmt = "<QQ" if ptrsize == 8 else "<II"
        ptr, ln = struct.unpack(fmt, self.read_vaddr(addr, 2 * ptrsize))
        if ln > 1 << 24:
            raise DecodeError(f"string at {addr:#x} is implausibly long ({ln})")
        return self.read_vaddr(ptr, ln).decode("utf-8", "replace") if ln else ""

    def go_version(self) -> str:
        """The Go version string such as ``go1.22.10``: from build info, falling back to
        the ``runtime.buildVersion`` string variable."""
        try:
            v = self.go_buildinfo().go_version
            if v:
                return v
        except DecodeError:
            pass
        sym = self.symbol("runtime.buildVersion")
        if sym is None:
            raise DecodeError(f"{self.path}: cannot find the Go version")
        return self.read_gostring(sym[0], 256)


def _varint_string(data, off: int) -> Tuple[str, int]:
    n, off = uleb128(data, off, -1, 10, ".go.buildinfo")
    if off + n > len(data):
        raise DecodeError(".go.buildinfo string runs past the section")
    return bytes(data[off:off + n]).decode("utf-8", "replace"), off + n


def _parse_modinfo(vers: str, mod: str) -> BuildInfo:
    # The modinfo string is framed by 16-byte sentinels; strip them if present.
    body = mod
    if len(body) >= 33 and body[-17] == "\n":
        body = body[16:-16]
    path = module = mversion = ""
    settings: Dict[str, str] = {}
    for line in body.split("\n"):
        parts = line.split("\t")
        if parts[0] == "path" and len(parts) > 1:
            path = parts[1]
        elif parts[0] == "mod" and len(parts) > 1:
            module = parts[1]
            mversion = parts[2] if len(parts) > 2 else ""
        elif parts[0] == "build" and len(parts) > 1 and "=" in parts[1]:
            k, _, v = parts[1].partition("=")
            settings[k] = v
    return BuildInfo(vers, path, module, mversion, settings, body)


def parse_notes(data, limit: int = 4096):
    """(owner, type, desc) of each ELF note in data (a note section or segment), at most
    limit of them; stops quietly where a note runs past the end."""
    off = 0
    for _ in range(limit):
        if off + 12 > len(data):
            return
        namesz, descsz, typ = struct.unpack_from("<III", data, off)
        desc = off + 12 + ((namesz + 3) & ~3)
        if desc + descsz > len(data):
            return
        yield bytes(data[off + 12:off + 12 + namesz]).rstrip(b"\0"), typ, data[desc:desc + descsz]
        off = desc + ((descsz + 3) & ~3)


def image_headers(image) -> Tuple[List[Segment], Dict[str, str]]:
    """The program headers and build IDs ({"go": ..., "gnu": hex}) of an ELF file from
    the bytes of its first mapped page(s) (a core's copy of them): only notes that lie
    wholly in image. DecodeError if image does not start with an ELF64 header."""
    if len(image) < EHDR.size or bytes(image[:4]) != b"\x7fELF" or image[4] != 2:
        raise DecodeError("no ELF64 header")
    (_, _, _, _, _, phoff, _, _, _, phentsize, phnum, _, _, _) = EHDR.unpack_from(image, 0)
    if phentsize < PHDR.size or phoff + phnum * phentsize > len(image):
        raise DecodeError("program headers beyond the image")
    segs, ids = [], {}
    for i in range(min(phnum, 256)):
        p_type, p_flags, off, vaddr, _, filesz, memsz, _ = PHDR.unpack_from(image, phoff + i * phentsize)
        segs.append(Segment(p_type, p_flags, off, vaddr, filesz, memsz))
        if p_type == PT_NOTE and off + filesz <= len(image):
            for name, typ, desc in parse_notes(image[off:off + filesz], 64):
                if name == b"Go" and typ == NT_GO_BUILD_ID:
                    ids.setdefault("go", bytes(desc).decode("utf-8", "replace"))
                elif name == b"GNU" and typ == NT_GNU_BUILD_ID:
                    ids.setdefault("gnu", bytes(desc).hex())
    return segs, ids


def open_elf(path: str) -> ElfFile:
    return ElfFile.open(path)
