"""Which Go built the target, and which runtime layouts it uses.

Everything is detected from the binary: the version from runtime.buildVersion
(or the buildinfo section), layouts by the presence of fields in the debug info.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ..errors import DecodeError, NotGoError
from ..target import Memory, Target
from ..binary import types as T


@dataclass
class Layout:
    go_version: str                 # e.g. "go1.24.11 X:noswissmap" as runtime.Version() says
    version_tuple: tuple            # (1, 24, 11)
    version_source: str             # "runtime.buildVersion" or "buildinfo"
    experiments: list = field(default_factory=list)
    ptr_size: int = 8
    atomicstatus: str = "uint32"    # "uint32" or "atomic.Uint32"
    goid_type: str = "int64"        # "int64" or "uint64"
    parent_goid: bool = False       # g.parentGoid present (1.21+)
    labels: str = "none"            # "map[string]string", "label-slice" or "none" (no pprof)
    maps: str = "hmap"              # "hmap" or "swiss"
    wait_reasons: int = 0           # entries in runtime.waitReasonStrings
    status_names: int = 0           # entries in runtime.gStatusStrings
    syscallbp: bool = False         # g.syscallbp present (1.23+)

    def facts(self) -> dict:
        d = asdict(self)
        d["version_tuple"] = list(self.version_tuple)
        return d


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


def detect(target: Target, elf=None) -> Layout:
    version, source = read_go_version(target, elf)
    g = target.lookup_type("runtime.g")
    if g is None:
        raise NotGoError("no DWARF type runtime.g: is this a Go binary built without -w?")
    lay = Layout(go_version=version, version_tuple=parse_version(version), version_source=source,
                 ptr_size=target.ptr_size)
    lay.experiments = [x for x in re.findall(r"X:([\w,]+)", version) for x in x.split(",")]

    st = g.field("atomicstatus")
    if st is not None and st.type.kind == T.STRUCT and st.type.field("value") is not None:
        lay.atomicstatus = st.type.name.rsplit("/", 1)[-1]
    goid = g.field("goid")
    if goid is not None:
        lay.goid_type = ("int" if goid.type.kind == T.INT else "uint") + str(goid.type.size * 8)
    lay.parent_goid = g.field("parentGoid") is not None
    lay.syscallbp = g.field("syscallbp") is not None
    lay.labels = _labels_repr(target)
    lay.maps = detect_map_impl(target)
    lay.wait_reasons = _array_len(target, "runtime.waitReasonStrings")
    lay.status_names = _array_len(target, "runtime.gStatusStrings")
    return lay


def _array_len(target: Target, sym: str) -> int:
    t = target.symbol_type(sym)
    return t.length if t is not None and t.kind == T.ARRAY else 0


def _labels_repr(target: Target) -> str:
    t = target.lookup_type("runtime/pprof.labelMap")
    if t is None:
        return "none"
    if t.kind == T.MAP:
        return "map[string]string"
    if t.kind == T.STRUCT:
        return "label-slice"
    return "unknown"


def detect_map_impl(target: Target) -> str:
    """'swiss' when the runtime's map header has dirPtr, 'hmap' when it has buckets."""
    hmap = target.lookup_type("runtime.hmap")
    if hmap is not None and hmap.field("buckets") is not None:
        return "hmap"
    swiss = target.lookup_type("internal/runtime/maps.Map")
    if swiss is not None and swiss.field("dirPtr") is not None:
        return "swiss"
    return "unknown"
