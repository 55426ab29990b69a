"""Is this core file of this executable? One check for every door (gdb, delve-bridge,
gdb-go), made before anything is decoded: a core read with another build of the
program decodes into plausible nonsense (0 goroutines, a nil map, GOGC 132177138).

The kernel (coredump_filter bit 4, on by default) and gdb's gcore both dump the first
page of the executable's mapping: its ELF header, program headers and build-ID notes
(measured for PIE and non-PIE executables). The core's Go build ID (else its GNU
build-id) must equal the binary's. A stripped production binary's twin is the build it
was stripped from: `strip` and `objcopy --strip-debug` keep the notes and every
segment's address, so the two have one build ID and one layout.

A build linked with -ldflags='-s -w' is another build, and is refused: its build ID
differs in all parts but contentID(main.a) (actionID(binary)/actionID(main.a)/
contentID(main.a)/contentID(binary), cmd/go/internal/work/buildid.go), and its build
settings string (`build -ldflags="-s -w"`, in .go.buildinfo and runtime.modinfo) is
longer: measured with go1.22.10, that moved the pclntab and the tables after the string
by 0x20 bytes, and in one program every global too. The same contentID(main.a) only
names the case in the refusal.

A core without that page (coredump_filter without bit 4) cannot be checked: a warning
says so, and the views go on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..errors import DecodeError
from ..binary.core import CoreNotes
from ..binary.elf import PT_LOAD, ElfFile, image_headers

ET_DYN = 3


@dataclass
class CoreCheck:
    error: Optional[str] = None      # one line: the core is not of this binary
    warning: Optional[str] = None    # one line: it could not be checked
    recorded: Optional[str] = None   # the executable the core names (NT_FILE, else psinfo)


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
    head = notes.executable_headers(_first_page_guess(elf, notes.entry))
    if head is None:
        out.warning = ("cannot check that the core is of " + os.path.basename(name) + ": it holds "
                       "no copy of the executable's ELF headers (coredump_filter without bit 4)")
        return out
    _, _, ids = head
    out.error, out.warning = _compare(ids, elf, name, out.recorded, "core")
    return out


def check_process(pid: int, binary, read) -> CoreCheck:
    """The same check for a live process: the first page of its executable's mapping
    (/proc/PID/maps), read with read(addr, size) (the target's own reads, bytes or None),
    against binary. A process that cannot be looked at is not checked (no warning)."""
    out = CoreCheck()
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        start = None
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].rstrip("\n") == exe and int(parts[2], 16) == 0:
                    start = int(parts[0].split("-")[0], 16)
                    break
        elf = _open(binary)
        page = read(start, 4096) if start is not None else None
        if page is None:
            return out
        _, ids = image_headers(page)
    except (OSError, ValueError, DecodeError):
        return out
    out.recorded = exe.removesuffix(" (deleted)")
    name = elf.path if isinstance(binary, ElfFile) else binary
    out.error, _ = _compare(ids, elf, name, out.recorded, "process")
    return out


def _compare(ids: dict, elf: ElfFile, name: str, recorded: Optional[str], what: str) -> tuple:
    """(error, warning) of the build IDs found in a core or a process (ids) against
    elf's (name: its path)."""
    mine = {"go": elf.go_build_id(), "gnu": elf.gnu_build_id()}
    kind = "go" if ids.get("go") and mine["go"] else "gnu" if ids.get("gnu") and mine["gnu"] \
        else None
    if kind is None and any(ids.values()) and any(mine.values()):
        kind = "go" if ids.get("go") else "gnu"
        mine[kind] = "none"
    if kind is None:
        return None, (f"cannot check that the {what} is of {os.path.basename(name)}: "
                      "the two carry no build ID of the same kind")
    if ids[kind] == mine[kind]:
        return None, None
    label = "Go build ID" if kind == "go" else "GNU build-id"
    relinked = kind == "go" and _same_main_package(ids["go"], mine["go"])
    return (f"a {what} of another build: the {what}'s executable "
            f"{recorded or '(unnamed)'} {'had' if what == 'core' else 'has'} {label} {ids[kind]}, {name} has "
            f"{mine[kind]}" + (" (the same source linked with other flags, such as "
                               "-ldflags='-s -w', which can move globals)" if relinked else "")
            + "; use " + ("the very build that dumped the core, or that build before `strip`"
                          if what == "core" else "the build the process runs")), None


def _same_main_package(core_id: str, bin_id: str) -> bool:
    """The main package's content ID, the third part of a binary's Go build ID, agrees."""
    a, b = core_id.split("/"), bin_id.split("/")
    return len(a) == 4 and len(b) == 4 and a[2] == b[2]


def _first_page_guess(elf: ElfFile, entry: Optional[int]) -> Optional[int]:
    """Where binary's first page is loaded, from its own headers (a PIE: moved by the
    bias AT_ENTRY gives), for a core that names no mapped files."""
    first = next((s for s in elf.segments if s.type == PT_LOAD and s.offset == 0), None)
    if first is None:
        return None
    if elf.e_type != ET_DYN:
        return first.vaddr
    return first.vaddr + entry - elf.entry if entry is not None and entry >= elf.entry else None


def read_proc_mem(pid: int):
    """read(addr, size) -> bytes or None over /proc/PID/mem, for check_process."""
    def read(addr: int, size: int):
        try:
            fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        except OSError:
            return None
        try:
            data = os.pread(fd, size, addr)
        except (OSError, OverflowError):
            return None
        finally:
            os.close(fd)
        return data if len(data) == size else None
    return read


def _open(f) -> ElfFile:
    return f if isinstance(f, ElfFile) else ElfFile.open(f)
