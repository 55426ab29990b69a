"""Every runtime layout of one binary, resolved once, for every decoder.

GoRuntime builds one `Layouts` (rt.layout) for its target; the decoders take their
layout from it and never look at the debug info again. Each part is resolved the
first time a decoder asks for it and kept for the life of the GoRuntime (one
binary): the version facts, the g, pprof labels, the map implementation, sudog and
m offsets, and the status codes by name. Later layouts (p, sched, hchan) are one
more resolved part in the same way.

Everything is detected from the binary itself, by the presence of fields in its
debug info and by its own tables (runtime.gStatusStrings), never by version number.
"""
from __future__ import annotations

import functools
import operator
import re
import struct
from typing import NamedTuple, Optional

from ..errors import DecodeError, NotGoError
from ..target import Memory, Target
from ..binary import types as T
from .version import parse_version, read_go_version


# --- the g ----------------------------------------------------------------------
class GFields(NamedTuple):
    """The g fields the decoders use, by name; absent fields read as 0."""
    goid: int
    status: int        # atomicstatus (through an atomic wrapper's value)
    waitreason: int
    waitsince: int
    sched_sp: int
    sched_pc: int
    sched_bp: int
    syscallsp: int
    syscallpc: int
    stack_lo: int
    stack_hi: int
    m: int
    lockedm: int
    gopc: int
    startpc: int
    parent: int        # parentGoid, Go 1.21+
    labels: int
    waiting: int       # the first sudog of a blocked goroutine


# where each GFields field sits in runtime.g
G_PATHS = GFields(
    goid="goid", status="atomicstatus", waitreason="waitreason", waitsince="waitsince",
    sched_sp="sched.sp", sched_pc="sched.pc", sched_bp="sched.bp", syscallsp="syscallsp",
    syscallpc="syscallpc", stack_lo="stack.lo", stack_hi="stack.hi",
    m="m", lockedm="lockedm", gopc="gopc", startpc="startpc", parent="parentGoid",
    labels="labels", waiting="waiting")


class GLayout:
    """The g fields of GFields as one struct.Struct over the g.

    struct unpacks the fields present, in offset order, from the start of a g;
    whole is the same over exactly one g (for gs read back to back; None when the
    fields overrun the g's size). keys: the field names in that order. at: a GFields
    of where each field sits in those tuples, len(keys) for an absent field (so a
    tuple with one 0 added reads it as 0). reorder: such a tuple -> GFields.
    offsets: {field name: offset in the g} of the fields present; syscallbp: the offset
    of g.syscallbp (Go 1.23+; read apart, for the few goroutines in a syscall) or None."""

    def __init__(self, g: T.GoType):
        self.size = g.size
        self.offsets: dict = {}
        items = []
        for key, path in zip(GFields._fields, G_PATHS):
            found = g.find(path)
            if found is None and key == "status":
                raise DecodeError("runtime.g has no atomicstatus field")
            if found is None:
                continue
            off, t = found
            if t.kind == T.STRUCT:  # atomic wrappers: take their value field
                inner = t.find("value")
                if inner is None:
                    continue
                off += inner[0]
                t = inner[1]
            fmt = T.scalar_format(t) or ("Q" if t.size == 8 else None)
            if fmt is None:
                continue
            self.offsets[key] = off
            items.append((off, key, fmt, t.size))
        items.sort()
        fmt = "<"
        pos = 0
        keys = []
        for off, key, f, size in items:
            if off < pos:
                continue
            if off > pos:
                fmt += f"{off - pos}x"
            fmt += f
            pos = off + size
            keys.append(key)
        self.keys = tuple(keys)
        self.struct = struct.Struct(fmt)
        self.whole = struct.Struct(fmt + f"{self.size - pos}x") if pos <= self.size else None
        absent = len(keys)
        self.at = GFields._make(keys.index(k) if k in keys else absent for k in GFields._fields)
        self.absent = frozenset(k for k in GFields._fields if k not in keys)
        getter = operator.itemgetter(*self.at)
        make = GFields._make
        self.reorder = lambda raw: make(getter(raw + (0,)))
        # what the version view says of the g
        st = g.field("atomicstatus")
        self.atomicstatus = "uint32"
        if st is not None and st.type.kind == T.STRUCT and st.type.field("value") is not None:
            self.atomicstatus = st.type.name.rsplit("/", 1)[-1]
        goid = g.field("goid")
        self.goid_type = "int64" if goid is None else \
            ("int" if goid.type.kind == T.INT else "uint") + str(goid.type.size * 8)
        self.has_parent = g.field("parentGoid") is not None
        found = g.find("syscallbp")
        self.syscallbp: Optional[int] = found[0] if found is not None else None
        self.has_syscallbp = found is not None


# --- goroutine statuses -----------------------------------------------------------
GSCAN = 0x1000   # the bit the GC sets on a status while it scans the g

# the runtime's status codes, for a binary without runtime.gStatusStrings
_CODES = {"idle": 0, "runnable": 1, "running": 2, "syscall": 3, "waiting": 4, "dead": 6}
FALLBACK_NAMES = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting",
                   6: "dead", 8: "enqueue", 9: "copystack", 10: "preempted"}


class Statuses:
    """Goroutine status codes by name, from runtime.gStatusStrings where present.

    dead_like: the statuses the runtime's dump skips as it skips dead ones: _Gdead,
    and from Go 1.26 _Gdeadextra ("waiting for cgo callback")."""

    def __init__(self, names: list):
        self.names = names
        code = {n: i for i, n in reversed(list(enumerate(names))) if n}
        self.idle = code.get("idle", _CODES["idle"])
        self.runnable = code.get("runnable", _CODES["runnable"])
        self.running = code.get("running", _CODES["running"])
        self.syscall = code.get("syscall", _CODES["syscall"])
        self.waiting = code.get("waiting", _CODES["waiting"])
        self.dead = code.get("dead", _CODES["dead"])
        self.leaked = code.get("leaked")   # Go 1.26's _Gleaked (keeps its wait reason)
        self.dead_like = frozenset([self.dead] + [i for i, n in enumerate(names)
                                                  if n == "waiting for cgo callback"])

    def name(self, code: int) -> str:
        names = self.names
        if 0 <= code < len(names) and names[code]:
            return names[code]
        return FALLBACK_NAMES.get(code, f"status {code}")


# --- pprof labels ------------------------------------------------------------------
class LabelLayout:
    """How runtime/pprof keeps a goroutine's labels (g.labels points at a labelMap).

    form: "map" (Go <= 1.20: a map[string]string; map_type), "slice" (a struct holding
    a []Label; the slice header at offset, entries esize apart, key and value strings
    at koff and voff) or None (no pprof, or a shape not recognised).
    repr: what the version view says of it."""

    form: Optional[str] = None
    map_type: Optional[T.GoType] = None
    offset = esize = koff = voff = 0

    def __init__(self, t: Optional[T.GoType]):
        if t is None:
            self.repr = "none"
            return
        self.repr = "map[string]string" if t.kind == T.MAP else \
            "label-slice" if t.kind == T.STRUCT else "unknown"
        if t.kind == T.MAP:
            self.form, self.map_type = "map", t
            return
        found = _find_label_slice(t, 0, 3)
        if found is not None:
            off, elem = found
            self.form, self.offset, self.esize = "slice", off, elem.size
            self.koff = elem.offset(_ci_field(elem, "key"))
            self.voff = elem.offset(_ci_field(elem, "value"))


def _ci_field(t: T.GoType, name: str) -> str:
    for f in t.fields:
        if f.name.lower() == name:
            return f.name
    return name


def _find_label_slice(t: T.GoType, base: int, depth: int):
    """(offset, element type) of the []Label slice inside a labelMap struct, found by shape:
    a slice of structs with string key and value fields (the field names changed case over time)."""
    if depth < 0 or t.kind != T.STRUCT:
        return None
    for f in t.fields:
        ft = f.type
        if ft.kind == T.SLICE and ft.elem is not None and ft.elem.kind == T.STRUCT:
            names = {x.name.lower(): x.type.kind for x in ft.elem.fields}
            if names.get("key") == T.STRING and names.get("value") == T.STRING:
                return base + f.offset, ft.elem
        inner = _find_label_slice(ft, base + f.offset, depth - 1)
        if inner is not None:
            return inner
    return None


# --- sudog and m ---------------------------------------------------------------------
class SudogLayout(NamedTuple):
    """Offsets in a runtime.sudog: its channel, its elem (a semaphore's address for sync
    waits), the next sudog of a select; size: the bytes that cover c and waitlink."""
    c: int
    elem: Optional[int]
    waitlink: Optional[int]
    size: int


class MLayout(NamedTuple):
    """Offsets in a runtime.m (an OS thread): its thread id, its current g, its id and
    the next m of runtime.allm; size: the whole m."""
    procid: int
    curg: int
    id: int
    alllink: int
    size: int


# --- any struct's named fields ------------------------------------------------------
class Fields:
    """Named scalar fields of one runtime struct (integers, bools, floats, pointers),
    their offsets and formats resolved once from its type, through atomic wrappers'
    `value` and dotted paths (`sysmontick.schedwhen`, `runq.size`). A field the
    version lacks reads as None: the decoders ask by name and never by version."""

    def __init__(self, t: T.GoType, paths):
        self.type = t
        self.size = t.size
        self.spec: dict = {}
        for path in paths:
            found = t.find(path)
            if found is None:
                continue
            off, ft = found
            inner = ft.find("value") if ft.kind == T.STRUCT else None
            if inner is not None:
                off, ft = off + inner[0], inner[1]
            fmt = T.scalar_format(ft) or ("Q" if ft.kind in (T.PTR, T.CHAN, T.MAP, T.FUNC)
                                          or (ft.kind == T.UNKNOWN and ft.size == 8) else None)
            if fmt is not None:
                self.spec[path] = (off, "<" + fmt, ft.size)

    def has(self, path: str) -> bool:
        return path in self.spec

    def offset(self, path: str) -> Optional[int]:
        s = self.spec.get(path)
        return s[0] if s is not None else None

    def unpack(self, buf, base: int = 0) -> dict:
        """{path: value, or None where the version has no such field} from the struct's
        bytes at buf[base:]."""
        out = {}
        for path, (off, fmt, size) in self.spec.items():
            out[path] = struct.unpack_from(fmt, buf, base + off)[0] \
                if base + off + size <= len(buf) else None
        return out

    def read(self, mem: Memory, addr: int) -> dict:
        """The fields of the struct at addr (ReadError if it cannot be read)."""
        return self.unpack(mem.read(addr, self.size))


# --- the scheduler: p, schedt, the timers of a P --------------------------------------
P_PATHS = ("id", "status", "schedtick", "syscalltick", "m", "runqhead", "runqtail", "runnext",
           "gFree.n", "gFree.size")
SCHEDT_PATHS = ("npidle", "nmspinning", "needspinning", "nmidle", "nmidlelocked", "runqsize",
                "runq.size", "runq.head", "gcwaiting", "gcwaiting.u", "stopwait", "sysmonwait",
                "sysmonwait.u", "mnext", "nmfreed")


class SchedLayout:
    """What the scheduler's decoder (sched.py) reads, found by field presence.

    p, sched: Fields of runtime.p and runtime.schedt (P_PATHS, SCHEDT_PATHS: the run
    queue's size is schedt.runqsize up to Go 1.24 and schedt.runq.size after, a P's free
    count gFree.n then gFree.size; an atomic.Bool's byte is at PATH.u). bools: the
    schedt paths the runtime prints as bools (a bool or an atomic.Bool; uint32 in Go
    1.19). runq: (offset, length) of p.runq.
    timers: how a P holds its timer heap: "slice" (p.timers []*timer, up to Go 1.22),
    "heap" (p.timers.heap []timerWhen{timer, when}, Go 1.23+) or None; timers_off: the
    slice header's offset; esize, tw_timer, tw_when: a heap entry's size and fields.
    timer_when, timer_f: offsets in runtime.timer. preemptoff: of m.preemptoff (a string).
    nil_form: the runtime prints a nil P, M or G as "nil" (Go 1.21+, the sched with
    needspinning) rather than -1."""

    def __init__(self, layouts: "Layouts"):
        target = layouts.target
        self.p = layouts.fields("runtime.p", P_PATHS)
        self.sched = layouts.fields("runtime.schedt", SCHEDT_PATHS)
        self.g = layouts.fields("runtime.g", ("goid", "schedlink"))
        self.bools = frozenset()
        if self.sched is not None:
            self.bools = frozenset(p for p in SCHEDT_PATHS if _bool_typed(self.sched.type, p))
        self.nil_form = self.sched is not None and self.sched.has("needspinning")
        self.runq: Optional[tuple] = None
        self.timers: Optional[str] = None
        self.timers_off = self.esize = self.tw_timer = self.tw_when = 0
        pt = self.p.type if self.p is not None else None
        if pt is not None:
            rq = pt.find("runq")
            if rq is not None and rq[1].kind == T.ARRAY and rq[1].length:
                self.runq = (rq[0], rq[1].length)
            heap = pt.find("timers.heap")
            old = pt.find("timers")
            if heap is not None and heap[1].kind == T.SLICE and heap[1].elem is not None:
                e = heap[1].elem
                tw, wh = e.find("timer"), e.find("when")
                if tw is not None and wh is not None:
                    self.timers, self.timers_off, self.esize = "heap", heap[0], e.size
                    self.tw_timer, self.tw_when = tw[0], wh[0]
            elif old is not None and old[1].kind == T.SLICE:
                self.timers, self.timers_off, self.esize = "slice", old[0], 8
        tt = target.lookup_type("runtime.timer")
        when = tt.find("when") if tt is not None else None
        f = tt.find("f") if tt is not None else None
        self.timer_when = when[0] if when is not None else None
        self.timer_f = f[0] if f is not None else None
        mt = target.lookup_type("runtime.m")
        po = mt.find("preemptoff") if mt is not None else None
        self.preemptoff = po[0] if po is not None and po[1].kind == T.STRING else None


def _bool_typed(t: T.GoType, path: str) -> bool:
    found = t.find(path)
    if found is None:
        return False
    ft = found[1]
    return ft.kind == T.BOOL or (ft.kind == T.STRUCT and ft.name.endswith("atomic.Bool"))


# --- all of them ---------------------------------------------------------------------
class Layouts:
    """The layouts of one binary (see the module docstring). The version facts are read
    when it is made, as the first check that the target is a Go program."""

    def __init__(self, target: Target, mem: Optional[Memory] = None, elf=None):
        self.target = target
        self.mem = mem if mem is not None else Memory(target)
        self._elf = elf
        self.ptr_size = target.ptr_size

    def require_go(self) -> None:
        """NotGoError unless the target is a Go program with its runtime's debug info."""
        self.go_version  # noqa: B018 (reads the version)
        if self.target.lookup_type("runtime.g") is None:
            from ..binary.dwarf import no_dwarf_message
            raise NotGoError(no_dwarf_message(self.target.executable() or "the program"))

    # the version
    @functools.cached_property
    def _version(self) -> tuple:
        return read_go_version(self.target, self._elf)

    @property
    def go_version(self) -> str:
        """As runtime.Version() says, e.g. "go1.24.11 X:noswissmap"."""
        return self._version[0]

    @property
    def version_source(self) -> str:
        """"runtime.buildVersion" or "buildinfo"."""
        return self._version[1]

    @functools.cached_property
    def version_tuple(self) -> tuple:
        return parse_version(self.go_version)

    @functools.cached_property
    def experiments(self) -> list:
        return [x for x in re.findall(r"X:([\w,]+)", self.go_version) for x in x.split(",")]

    # the decoders' layouts
    @functools.cached_property
    def g(self) -> GLayout:
        t = self.target.lookup_type("runtime.g")
        if t is None:
            raise DecodeError("the binary has no type runtime.g")
        return GLayout(t)

    @functools.cached_property
    def labels(self) -> LabelLayout:
        return LabelLayout(self.target.lookup_type("runtime/pprof.labelMap"))

    @functools.cached_property
    def map_impl(self) -> str:
        """"hmap" when the runtime's map header has buckets, "swiss" when it has dirPtr,
        else "unknown"."""
        hmap = self.target.lookup_type("runtime.hmap")
        if hmap is not None and hmap.field("buckets") is not None:
            return "hmap"
        swiss = self.target.lookup_type("internal/runtime/maps.Map")
        if swiss is not None and swiss.field("dirPtr") is not None:
            return "swiss"
        return "unknown"

    @functools.cached_property
    def sudog(self) -> Optional[SudogLayout]:
        st = self.target.lookup_type("runtime.sudog")
        c = st.find("c") if st is not None else None
        if c is None:
            return None
        elem, link = st.find("elem"), st.find("waitlink")
        return SudogLayout(c[0], elem[0] if elem else None, link[0] if link else None,
                           max(c[0], link[0] if link else 0) + 8)

    @functools.cached_property
    def m(self) -> Optional[MLayout]:
        mt = self.target.lookup_type("runtime.m")
        if mt is None:
            return None
        return MLayout(mt.offset("procid"), mt.offset("curg"), mt.offset("id"),
                       mt.offset("alllink"), mt.size)

    def fields(self, type_name: str, paths) -> Optional[Fields]:
        """Fields of a runtime struct by name (see Fields), resolved once per set asked
        for; None when the binary has no such type."""
        key = (type_name, tuple(paths))
        cache = self.__dict__.setdefault("_fields", {})
        if key not in cache:
            t = self.target.lookup_type(type_name)
            cache[key] = Fields(t, paths) if t is not None else None
        return cache[key]

    @functools.cached_property
    def sched(self) -> SchedLayout:
        """The scheduler's layouts (SchedLayout): p, schedt, timers."""
        return SchedLayout(self)

    @functools.cached_property
    def status(self) -> Statuses:
        return Statuses(self.string_table("runtime.gStatusStrings"))

    @functools.cached_property
    def wait_reasons(self) -> list:
        """runtime.waitReasonStrings, by wait reason code."""
        return self.string_table("runtime.waitReasonStrings")

    def string_table(self, sym: str) -> list:
        """A runtime [N]string array such as runtime.waitReasonStrings, read from the binary."""
        t = self.target.symbol_type(sym)
        addr = self.target.symbol_address(sym)
        if t is None or addr is None or t.kind != T.ARRAY:
            return []
        n = min(t.length, 4096)
        raw = self.mem.read(addr, 16 * n)
        out = []
        for i in range(n):
            p, ln = struct.unpack_from("<QQ", raw, 16 * i)
            try:
                out.append(self.mem.string_data(p, ln, 4096) if p else "")
            except DecodeError:
                out.append(f"<unreadable {i}>")
        return out

    def _array_len(self, sym: str) -> int:
        t = self.target.symbol_type(sym)
        return t.length if t is not None and t.kind == T.ARRAY else 0

    def facts(self) -> dict:
        """What the `version` view shows: the version and the layouts, as plain values."""
        g = self.g
        return {
            "go_version": self.go_version,
            "version_tuple": list(self.version_tuple),
            "version_source": self.version_source,
            "experiments": list(self.experiments),
            "ptr_size": self.ptr_size,
            "atomicstatus": g.atomicstatus,     # "uint32" or "atomic.Uint32"
            "goid_type": g.goid_type,           # "int64" or "uint64"
            "parent_goid": g.has_parent,        # g.parentGoid (1.21+)
            "labels": self.labels.repr,         # "map[string]string", "label-slice" or "none"
            "maps": self.map_impl,              # "hmap" or "swiss"
            "wait_reasons": self._array_len("runtime.waitReasonStrings"),
            "status_names": self._array_len("runtime.gStatusStrings"),
            "syscallbp": g.has_syscallbp,       # g.syscallbp (1.23+)
        }
