"""What an ELF core file records of the process that dumped it: its mapped files (the
NT_FILE note), its command name (NT_PRPSINFO), its auxv, and the copy of the
executable's first page that the kernel (coredump_filter bit 4, on by default) and
gdb's gcore both dump, with the executable's program headers and build-ID notes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..errors import DecodeError
from .elf import PT_LOAD, ElfFile, image_headers

NT_PRPSINFO = 3
NT_AUXV = 6
NT_FILE = 0x46494C45
AT_ENTRY = 9
PAGE = 4096


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    offset: int   # in the file, bytes
    path: str


class CoreNotes:
    """The notes of one core file (an ElfFile of type ET_CORE)."""

    def __init__(self, core: ElfFile):
        self.core = core
        self.mappings: List[Mapping] = []
        self.fname = ""         # the command name, cut to 15 bytes by the kernel
        self.psargs = ""        # the command line, cut to 80 bytes
        self.entry: Optional[int] = None   # AT_ENTRY: the executable's loaded entry point
        for owner, typ, desc in core.segment_notes():
            if owner != b"CORE":
                continue
            if typ == NT_FILE:
                self.mappings = _file_mappings(desc)
            elif typ == NT_PRPSINFO and len(desc) >= 136:
                self.fname = _cstr(desc[40:56])
                self.psargs = _cstr(desc[56:136])
            elif typ == NT_AUXV:
                raw = bytes(desc)
                for key, val in struct.iter_unpack("<QQ", raw[:len(raw) - len(raw) % 16]):
                    if key == AT_ENTRY:
                        self.entry = val
                    if key == 0:
                        break

    def executable(self) -> Optional[Mapping]:
        """The executable's first mapping (file offset 0): the file that maps the entry
        point, else the first file whose name starts with the command name."""
        path = None
        if self.entry is not None:
            path = next((m.path for m in self.mappings if m.start <= self.entry < m.end), None)
        if path is None and self.fname:
            path = next((m.path for m in self.mappings
                         if m.path.rsplit("/", 1)[-1].startswith(self.fname)), None)
        if path is None:
            return None
        return next((m for m in self.mappings if m.path == path and m.offset == 0), None)

    def executable_name(self) -> Optional[str]:
        """The executable's path as the core records it (NT_FILE), else its command name
        (psinfo, at most 15 bytes), else None."""
        m = self.executable()
        if m is not None:
            return m.path.removesuffix(" (deleted)")
        return self.fname or None

    def read(self, addr: int, size: int) -> Optional[bytes]:
        """Bytes the core file holds at addr (None where it holds fewer)."""
        core = self.core
        for s in core.segments:
            if s.type == PT_LOAD and s.vaddr <= addr and addr + size <= s.vaddr + s.filesz:
                off = s.offset + addr - s.vaddr
                if off + size <= len(core.view):
                    return bytes(core.view[off:off + size])
        return None

    def executable_headers(self, guess: Optional[int] = None) -> Optional[Tuple[int, list, dict]]:
        """(load address, program headers, build IDs) of the executable from the core's
        copy of its first page; None where the core holds no such copy. guess: where
        the first page would be, for a core without an NT_FILE note."""
        m = self.executable()
        start = m.start if m is not None else guess
        if start is None:
            return None
        page = self.read(start, PAGE)
        if page is None:
            return None
        try:
            segs, ids = image_headers(page)
        except DecodeError:
            return None
        return start, segs, ids


def _file_mappings(desc) -> List[Mapping]:
    if len(desc) < 16:
        return []
    count, page = struct.unpack_from("<QQ", desc, 0)
    if count > 1 << 20 or 16 + 24 * count > len(desc):
        return []
    names = bytes(desc[16 + 24 * count:]).split(b"\0")
    out = []
    for i in range(count):
        start, end, pgoff = struct.unpack_from("<QQQ", desc, 16 + 24 * i)
        name = names[i].decode("utf-8", "replace") if i < len(names) else ""
        out.append(Mapping(start, end, pgoff * page, name))
    return out


def _cstr(b) -> str:
    return bytes(b).split(b"\0", 1)[0].decode("utf-8", "replace")
