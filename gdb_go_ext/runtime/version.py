"""Which Go built the target: the version string from runtime.buildVersion (or the
buildinfo section). The runtime layouts it uses are resolved in layout.py.
"""
from __future__ import annotations

import re

from ..errors import DecodeError, NotGoError
from ..target import Memory, Target


_VERSION_RE = re.compile(r"go(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_version(s: str) -> tuple:
    m = _VERSION_RE.search(s or "")
    if not m:
        return ()
    return tuple(int(x) for x in m.groups() if x is not None)


def read_go_version(target: Target, elf=None) -> tuple[str, str]:
    """(version string, where it came from). Raises NotGoError for a non-Go binary."""
    mem = Memory(target)
    addr = target.symbol_address("runtime.buildVersion")
    if addr is not None:
        try:
            v = mem.string(addr, limit=256)
            if v.startswith("go") or v.startswith("devel"):
                return v, "runtime.buildVersion"
        except DecodeError:
            pass
    if elf is not None:
        try:
            v = elf.go_buildinfo().go_version
            if v:
                return v, "buildinfo"
        except DecodeError:
            pass
    if addr is None and target.symbol_address("runtime.main") is None:
        raise NotGoError("this is not a Go program (no runtime.buildVersion or runtime.main symbol)")
    raise DecodeError("cannot read the Go version from runtime.buildVersion or the buildinfo section")
