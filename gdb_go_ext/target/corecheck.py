"""Is this core file of this executable? One check for every door (gdb, delve-bridge,
gdb-go), made before anything is decoded: a core read with another build of the
program decodes into plausible nonsense (0 goroutines, a nil map, GOGC 132177138).

The kernel (coredump_filter bit 4, on by default) and gdb's gcore both dump the first
page of the executable's mapping: its ELF header, program headers and build-ID notes.
The core's Go build ID (else its GNU build-id) must equal the binary's, with one
exception, a twin: the same build linked with other flags, `-ldflags='-s -w'` above
all, so that a stripped production binary's core is read with an unstripped build of
the same source. A Go build ID is actionID(binary)/actionID(main.a)/contentID(main.a)/
contentID(binary) (cmd/go/internal/work/buildid.go); -s -w changes all parts but the
third, measured on go1.19, go1.22 and go1.26, and leaves the code and data segments
where they were (only the read-only segment grows, by the build setting's string).
A twin is therefore: the same contentID(main.a) (the main package compiled from the same
source against the same dependencies' export data) and the same executable and
writable segments. A change only to the body of a function of another package that
keeps every segment's size is the one rebuild this cannot tell from a twin.

A core without that page (coredump_filter without bit 4) cannot be checked: a warning
says so, and the views go on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..errors import DecodeError
from ..binary.core import CoreNotes
from ..binary.elf import PT_LOAD, ElfFile

PF_X, PF_W = 1, 2


@dataclass
class CoreCheck:
    error: Optional[str] = None      # one line: the core is not of this binary
    warning: Optional[str] = None    # one line: it could not be checked
    recorded: Optional[str] = None   # the executable the core names (NT_FILE, else psinfo)
    twin: bool = False               # accepted as the same build, linked with other flags


def recorded_executable(core) -> Optional[str]:
    """The executable's path (or command name) that core (a path or an ElfFile) records."""
    try:
        return CoreNotes(_open(core)).executable_name()
    except (DecodeError, OSError):
        return None


def check_core(core, binary) -> CoreCheck:
    """Compare core (a path or an ElfFile of the core) with binary (a path or an ElfFile).
    Never raises: what it cannot read becomes a warning."""
    try:
        notes = CoreNotes(_open(core))
    except (DecodeError, OSError) as e:
        return CoreCheck(warning=f"cannot check that the core is of this binary: {e}")
    out = CoreCheck(recorded=notes.executable_name())
    try:
        elf = _open(binary)
    except (DecodeError, OSError) as e:
        out.warning = f"cannot check that the core is of this binary: {e}"
        return out
    name = elf.path if isinstance(binary, ElfFile) else binary
    head = notes.executable_headers()
    if head is None:
        out.warning = ("cannot check that the core is of " + os.path.basename(name) + ": it holds "
                       "no copy of the executable's ELF headers (coredump_filter without bit 4)")
        return out
    _, segs, ids = head
    mine = {"go": elf.go_build_id(), "gnu": elf.gnu_build_id()}
    kind = "go" if ids.get("go") and mine["go"] else "gnu" if ids.get("gnu") and mine["gnu"] \
        else None
    if kind is None and any(ids.values()) and any(mine.values()):
        kind = "go" if ids.get("go") else "gnu"
        mine[kind] = "none"
    if kind is None:
        out.warning = (f"cannot check that the core is of {os.path.basename(name)}: "
                       "the two carry no build ID of the same kind")
        return out
    if ids[kind] == mine[kind]:
        return out
    if kind == "go" and _twins(ids["go"], mine["go"], segs, elf.segments):
        out.twin = True
        return out
    label = "Go build ID" if kind == "go" else "GNU build-id"
    out.error = (f"a core of another build: the core's executable "
                 f"{out.recorded or '(unnamed)'} had {label} {ids[kind]}, {name} has "
                 f"{mine[kind]}; use the very build that dumped the core, or that build "
                 "unstripped")
    return out


def _twins(core_id: str, bin_id: str, core_segs, bin_segs) -> bool:
    a, b = core_id.split("/"), bin_id.split("/")
    return len(a) == 4 and len(b) == 4 and a[2] == b[2] and \
        _fixed_segments(core_segs) == _fixed_segments(bin_segs)


def _fixed_segments(segs) -> list:
    """(vaddr, memsz, flags) of the executable and writable PT_LOADs (not the read-only
    one, which the build settings' string lengthens)."""
    return sorted((s.vaddr, s.memsz, s.flags & 7) for s in segs
                  if s.type == PT_LOAD and s.flags & (PF_X | PF_W))


def _open(f) -> ElfFile:
    return f if isinstance(f, ElfFile) else ElfFile.open(f)
