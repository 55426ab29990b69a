"""Direct memory sources that skip the debugger's per-call overhead.

A live process stopped under ptrace can be read through /proc/PID/mem by its
tracer; a core file's dumped segments can be read straight from the file. Both
return None for anything they cannot serve, and the backend then asks the
debugger, so they only ever make reads faster, never different.
"""
from __future__ import annotations

import bisect
import os
from typing import Optional

from .errors import DecodeError, ReadError
from .runtime.elf import PT_LOAD, ElfFile


class ProcMem:
    def __init__(self, pid: int):
        self.fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)

    def read(self, addr: int, size: int) -> Optional[bytes]:
        try:
            data = os.pread(self.fd, size, addr)
        except (OSError, OverflowError, ValueError):
            return None
        return data if len(data) == size else None

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class CoreMem:
    """Reads of the segments a core file holds in full (filesz == memsz)."""

    def __init__(self, path: str):
        self.elf = ElfFile.open(path)
        segs = sorted((s for s in self.elf.segments if s.type == PT_LOAD and s.filesz == s.memsz
                       and s.filesz > 0), key=lambda s: s.vaddr)
        self.starts = [s.vaddr for s in segs]
        self.segs = segs
        self.mv = memoryview(self.elf._data)
        self.size = len(self.mv)
        self.expected = max((s.offset + s.filesz for s in self.elf.segments
                             if s.type == PT_LOAD), default=0)
        self.truncated = self.size < self.expected
        self._last = None

    def warning(self) -> Optional[str]:
        if not self.truncated:
            return None
        return (f"the core file is truncated ({self.size} of {self.expected} bytes):"
                " memory it lost reads as unreadable")

    def read(self, addr: int, size: int) -> Optional[bytes]:
        s = self._last  # neighbouring reads (stacks, g structs) mostly share a segment
        if s is None or not s.vaddr <= addr < s.vaddr + s.filesz:
            i = bisect.bisect_right(self.starts, addr) - 1
            if i < 0:
                return None
            s = self._last = self.segs[i]
        if addr + size > s.vaddr + s.filesz:
            return None
        off = s.offset + addr - s.vaddr
        if off + size > self.size:
            # the core once held these bytes; never let the executable's copy stand in
            raise ReadError(addr, size, "beyond the end of a truncated core file")
        return self.mv[off:off + size].tobytes()

    def close(self) -> None:
        pass


def open_source(pid: int = 0, core_path: Optional[str] = None):
    try:
        if core_path:
            return CoreMem(core_path)
        if pid:
            return ProcMem(pid)
    except (OSError, DecodeError):
        return None
    return None
