"""Map-access probes: which keys a running program looks up in one map.

Pure Python (never imports gdb), the whole probe for gdb (`go mapwatch`) and
the Delve bridge alike: ``run_mapwatch`` runs it over the target's execution
control (target.base.Control, which gdb and Delve each implement). Its loop,
``watch_calls``, puts breakpoints at the entry of the runtime's map functions
(``probe_functions`` + ``resolve_entries``) and at the return addresses of our
calls, and hands the registers of each thread that stops there to
``MapWatch.on_entry`` / ``MapWatch.on_return``, which decide whether the hit is
ours, decode the key, find the goroutine and the caller, and tell found from
missing. ``report`` (and ``summarize``) turns the hits into the report.

amd64 register ABI (ABIInternal), checked on every toolchain of the test
matrix (go1.19, 1.21, 1.22, 1.23, 1.24 Swiss and noswissmap, 1.25, 1.26,
1.27) by disassembling the fixture's call sites and by tests/test_mapwatch.py
against a live process:

* at the entry of every ``runtime.mapaccess{1,2}*``, ``mapassign*`` and
  ``mapdelete*``: RAX = map type, RBX = map header (the map value), and the key
  in RCX: ``_fast32`` the key in ECX (any 4-byte memory-comparable key),
  ``_fast64``/``_fast64ptr`` the key in RCX (any 8-byte memory-comparable
  key, structs of two int32 included), ``_faststr`` the string's data in RCX
  and its length in RDI, the generic functions a pointer to the key in RCX.
* RSP points at the return address; R14 holds the current g.
* at the return address: RAX = mapaccess1's result, a pointer to the value, or
  ``&runtime.zeroVal`` when the key is absent; mapaccess2 returns that pointer
  in RAX and the found bool in BL. mapassign/mapdelete say nothing about the
  key having been there: the map's count before and after tells it.
* the symbols are named ``runtime.mapaccess1_fast64`` etc. in every version:
  on Swiss runtimes (1.24+) the code lives in internal/runtime/maps and is
  linknamed to the runtime names. Unreferenced variants are dropped by the
  linker, so only the ones present in the binary are probed.
"""
from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..errors import DecodeError, GoExtError
from ..binary import types as T
from ..target.base import HIT, RegisterEquals, Regs
from .values import ValueDecoder, hexaddr

ACCESS1, ACCESS2, ASSIGN, DELETE = "access1", "access2", "assign", "delete"
GENERIC, FAST32, FAST64, FASTSTR = "generic", "fast32", "fast64", "faststr"

# runtime function -> (operation, how the key is passed)
FUNCTIONS: dict[str, tuple[str, str]] = {
    "runtime.mapaccess1": (ACCESS1, GENERIC),
    "runtime.mapaccess2": (ACCESS2, GENERIC),
    "runtime.mapaccess1_fast32": (ACCESS1, FAST32),
    "runtime.mapaccess2_fast32": (ACCESS2, FAST32),
    "runtime.mapaccess1_fast64": (ACCESS1, FAST64),
    "runtime.mapaccess2_fast64": (ACCESS2, FAST64),
    "runtime.mapaccess1_faststr": (ACCESS1, FASTSTR),
    "runtime.mapaccess2_faststr": (ACCESS2, FASTSTR),
    "runtime.mapassign": (ASSIGN, GENERIC),
    "runtime.mapassign_fast32": (ASSIGN, FAST32),
    "runtime.mapassign_fast64": (ASSIGN, FAST64),
    "runtime.mapassign_fast64ptr": (ASSIGN, FAST64),
    "runtime.mapassign_faststr": (ASSIGN, FASTSTR),
    "runtime.mapdelete": (DELETE, GENERIC),
    "runtime.mapdelete_fast32": (DELETE, FAST32),
    "runtime.mapdelete_fast64": (DELETE, FAST64),
    "runtime.mapdelete_faststr": (DELETE, FASTSTR),
}

# Where the linker may have put the same code under its package name instead.
_ALT_PREFIXES = ("internal/runtime/maps.runtime_",)

MAX_HITS_KEPT = 1_000_000   # the probe never keeps more hits than this
TOP = 10


def variants_for(key: Optional[T.GoType]) -> tuple[str, ...]:
    """Key-passing variants the compiler may use for a map with this key type.

    The compiler picks _fast32/_fast64/_faststr by the key's hash algorithm
    (4- or 8-byte memory-comparable, string) and falls back to the generic
    functions for big values; the generic ones are always included."""
    if key is None:
        return (GENERIC, FAST32, FAST64, FASTSTR)
    if key.kind == T.STRING:
        return (GENERIC, FASTSTR)
    if key.kind in (T.FLOAT, T.COMPLEX, T.IFACE, T.EFACE):
        return (GENERIC,)
    if key.size == 4:
        return (GENERIC, FAST32)
    if key.size == 8:
        return (GENERIC, FAST64)
    return (GENERIC,)


def probe_functions(key: Optional[T.GoType], writes: bool = False) -> list[str]:
    """Names of the runtime functions to probe for a map with this key type."""
    ops = {ACCESS1, ACCESS2} | ({ASSIGN, DELETE} if writes else set())
    vs = set(variants_for(key))
    return [name for name, (op, v) in FUNCTIONS.items() if op in ops and v in vs]


@dataclass(frozen=True)
class Probe:
    function: str     # runtime name, e.g. runtime.mapaccess1_fast64
    symbol: str       # the symbol found in the binary (the same, or a package name)
    address: int      # entry address
    op: str
    variant: str


def resolve_entries(names: list[str], lookup: Callable[[str], Optional[int]]) -> list[Probe]:
    """Entry addresses of those functions present in the binary.

    lookup(symbol) -> entry address or None (pclntab or the debugger)."""
    out = []
    seen = set()
    for name in names:
        op, variant = FUNCTIONS[name]
        cands = [name] + [p + name[len("runtime."):] for p in _ALT_PREFIXES]
        for sym in cands:
            addr = lookup(sym)
            if addr:
                if addr not in seen:
                    seen.add(addr)
                    out.append(Probe(name, sym, addr, op, variant))
                break
    return out


def pclntab_lookup(pclntab) -> Callable[[str], Optional[int]]:
    def look(sym: str) -> Optional[int]:
        try:
            f = pclntab.lookup_func(sym)
        except DecodeError:
            return None
        return f.entry if f is not None else None
    return look


_U64 = (1 << 64) - 1  # gdb reads general registers as int64_t: negative above 2**63


def key_bytes(variant: str, regs: Regs, key: T.GoType, read: Callable[[int, int], bytes]) -> bytes:
    """The key's bytes, as the map stores them, from the entry registers."""
    if variant == FAST32:
        return struct.pack("<I", regs.rcx & 0xFFFFFFFF)
    if variant == FAST64:
        return struct.pack("<Q", regs.rcx & 0xFFFFFFFFFFFFFFFF)
    if variant == FASTSTR:
        return struct.pack("<QQ", regs.rcx & _U64, regs.rdi & _U64)
    if key.size == 0:
        return b""
    return read(regs.rcx, key.size)


def decode_key(variant: str, regs: Regs, key: T.GoType, mem, values: ValueDecoder) -> Any:
    try:
        buf = key_bytes(variant, regs, key, mem.read)
    except DecodeError as e:
        return f"<unreadable key: {e}>"
    if len(buf) < key.size:
        return f"<key of {len(buf)} bytes for {key.name}>"
    try:
        return values.decoder(key)(buf, 0)
    except (DecodeError, struct.error) as e:
        return f"<undecodable key: {e}>"


@dataclass
class Hit:
    seq: int
    t: float                # seconds since the probe started
    function: str
    op: str
    key: Any
    goroutine: Optional[int]
    caller: Optional[dict]  # {"function", "file", "line"}
    ret: int                # return address
    sp: int                 # RSP at entry
    g: int                  # the g (R14) at entry
    found: Optional[bool] = None   # None until the call returned (or never seen)
    count_before: int = -1

    def to_json(self) -> dict:
        return {"key": self.key, "found": self.found, "function": self.function,
                "op": self.op, "goroutine": self.goroutine, "caller": self.caller,
                "t": round(self.t, 6)}


class MapWatch:
    """The probe's state: hits, calls waiting for their return, the stop decision.

    rt: GoRuntime (mem, target, pclntab). map_type: the map's GoType,
    key_type: its key's GoType, map_addr: the header address to match in RBX.
    """

    def __init__(self, rt, map_addr: int, map_type: T.GoType, key_type: T.GoType,
                 probes: list[Probe], max_hits: Optional[int] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.rt = rt
        self.mem = rt.mem
        self.map_addr = map_addr
        self.map_type = map_type
        self.key_type = key_type
        self.by_addr = {p.address: p for p in probes}
        self.probes = probes
        self.max_hits = max_hits
        self.clock = clock
        self.start = clock()
        self.end: Optional[float] = None
        self.values = ValueDecoder(rt)
        self.hits: list[Hit] = []
        self.pending: dict[int, Hit] = {}   # g -> the call of ours it is inside
        self.other_calls = 0                # entry hits on other maps
        self.restarts = 0                   # re-entries after stack growth
        self.nested_calls = 0               # probed functions called by probed functions
        self._nested_at: dict[int, bool] = {}
        self.errors: list[str] = []
        self.zeroval = rt.target.symbol_address("runtime.zeroVal")
        self._callers: dict[int, Optional[dict]] = {}
        self._goid_off = self._find_goid_offset(rt)

    @staticmethod
    def _find_goid_offset(rt) -> Optional[int]:
        g = rt.target.lookup_type("runtime.g")
        if g is None:
            return None
        f = g.find("goid")
        return f[0] if f else None

    # --- decisions ----------------------------------------------------------
    @property
    def full(self) -> bool:
        return self.max_hits is not None and len(self.hits) >= self.max_hits

    @property
    def done(self) -> bool:
        """Enough hits, and every one of them has returned."""
        return self.full and not self.pending

    def error(self, msg: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(msg)

    def on_entry(self, probe: Probe, regs: Regs) -> Optional[Hit]:
        """A thread is at the entry of probe.function; the hit, if it is ours."""
        if regs.rbx != self.map_addr:
            self.other_calls += 1
            return None
        if self.full or len(self.hits) >= MAX_HITS_KEPT:
            return None
        try:
            ret = self.mem.ptr(regs.sp)
        except DecodeError as e:
            self.error(f"{probe.function}: cannot read the return address: {e}")
            return None
        if self._nested(ret):
            # a probed function delegating to another (go1.27: mapaccess1_fast64
            # calls mapaccess2_fast64): the outer call is the hit
            self.nested_calls += 1
            return None
        key = decode_key(probe.variant, regs, self.key_type, self.mem, self.values)
        g = regs.r14
        prev = self.pending.get(g)
        if prev is not None:
            if prev.ret == ret and prev.function == probe.function and prev.key == key:
                # the function's prologue grew the stack and restarted it: same call
                prev.sp = regs.sp
                self.restarts += 1
                return prev
            self.error(f"goroutine {prev.goroutine}: the {prev.function} call of hit "
                       f"{prev.seq} never returned")
            del self.pending[g]
        hit = Hit(len(self.hits), self.clock() - self.start, probe.function, probe.op, key,
                  self._goid(g), self._caller(ret), ret, regs.sp, g)
        if probe.op in (ASSIGN, DELETE):
            hit.count_before = self._count()
        self.hits.append(hit)
        self.pending[g] = hit
        return hit

    def on_return(self, regs: Regs) -> Optional[Hit]:
        """A thread is at a return address we asked for; the hit it completes, if any."""
        hit = self.pending.get(regs.r14)
        if hit is None or hit.ret != regs.pc:
            return None
        del self.pending[regs.r14]
        if hit.op == ACCESS1:
            hit.found = regs.rax != self.zeroval if self.zeroval else None
        elif hit.op == ACCESS2:
            hit.found = bool(regs.rbx & 0xFF)
        else:
            after = self._count()
            if after < 0 or hit.count_before < 0:
                hit.found = None
            elif hit.op == ASSIGN:
                hit.found = after == hit.count_before   # no new entry: the key was there
            else:
                hit.found = after < hit.count_before    # an entry went: the key was there
        return hit

    def finish(self) -> None:
        """The probe ended: calls that never returned keep found = None."""
        if self.end is None:
            self.end = self.clock()
        self.pending.clear()

    # --- pieces -------------------------------------------------------------
    def _goid(self, g: int) -> Optional[int]:
        if not g or self._goid_off is None:
            return None
        try:
            return self.mem.u64(g + self._goid_off)
        except DecodeError:
            return None

    def _count(self) -> int:
        return self.values.map_len(self.map_type, self.map_addr)

    def _nested(self, ret: int) -> bool:
        hit = self._nested_at.get(ret)
        if hit is None:
            try:
                f = self.rt.pclntab.func_for_pc(ret)
            except DecodeError:
                f = None
            hit = self._nested_at[ret] = f is not None and f.entry in self.by_addr
        return hit

    def _caller(self, ret: int) -> Optional[dict]:
        if ret in self._callers:
            return self._callers[ret]
        loc = None
        try:
            frames = self.rt.pclntab.frames_for_return(ret)
            if frames:
                fr = frames[0]
                loc = {"function": fr.print_name, "file": fr.file, "line": fr.line}
        except DecodeError as e:
            self.error(f"cannot symbolize {ret:#x}: {e}")
        self._callers[ret] = loc
        return loc

    @property
    def elapsed(self) -> float:
        return (self.end if self.end is not None else self.clock()) - self.start


def key_id(key: Any) -> str:
    """A key's identity and its place among keys: its JSON text (an Addr as "0x…")."""
    return json.dumps(key, sort_keys=True, ensure_ascii=False, default=hex)


def key_order(key: Any):
    """Numbers in numeric order, before everything else in JSON text order."""
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key, "")
    return (1, 0, key_id(key))


def summarize(hits: list[Hit], elapsed: float, top: int = TOP) -> dict:
    """Per key hits/found/missing, top missing keys, top callers, hits per second."""
    per_key: dict[str, dict] = {}
    callers: dict[tuple, dict] = {}
    by_function: dict[str, int] = {}
    by_op: dict[str, int] = {}
    found = missing = unknown = 0
    for h in hits:
        k = per_key.get(key_id(h.key))
        if k is None:
            k = per_key[key_id(h.key)] = {"key": h.key, "hits": 0, "found": 0, "missing": 0,
                                         "unknown": 0}
        c_loc = h.caller or {"function": "?", "file": "?", "line": 0}
        ck = (c_loc["function"], c_loc["file"], c_loc["line"])
        c = callers.get(ck)
        if c is None:
            c = callers[ck] = dict(c_loc, hits=0, found=0, missing=0, unknown=0)
        which = "unknown" if h.found is None else "found" if h.found else "missing"
        for d in (k, c):
            d["hits"] += 1
            d[which] += 1
        found += h.found is True
        missing += h.found is False
        unknown += h.found is None
        by_function[h.function] = by_function.get(h.function, 0) + 1
        by_op[h.op] = by_op.get(h.op, 0) + 1
    return summary_of(per_key, callers, (found, missing, unknown), by_function, by_op,
                      elapsed, top)


def summary_of(per_key: dict, callers: dict, totals: tuple, by_function: dict, by_op: dict,
               seconds: float, top: int = TOP) -> dict:
    """The summary's JSON (docs/json.md, "mapwatch") from counts per key and per caller
    (dicts with hits/found/missing/unknown) and the (found, missing, unknown) totals."""
    found, missing, unknown = totals
    keys = sorted(per_key.values(), key=lambda d: (-d["hits"], key_order(d["key"])))
    top_missing = sorted((d for d in keys if d["missing"]),
                         key=lambda d: (-d["missing"], key_order(d["key"])))[:top]
    all_callers = sorted(callers.values(), key=lambda d: (-d["hits"], d["function"], d["line"]))
    hits = sum(d["hits"] for d in keys)
    return {
        "hits": hits, "found": found, "missing": missing, "unknown": unknown,
        "seconds": round(seconds, 3),
        "hits_per_second": round(hits / seconds, 1) if seconds > 0 else None,
        "distinct_keys": len(keys),
        "by_function": dict(sorted(by_function.items())),
        "by_op": dict(sorted(by_op.items())),
        "keys": keys,
        "top_missing": [{"key": d["key"], "missing": d["missing"], "hits": d["hits"]}
                        for d in top_missing],
        "top_callers": all_callers[:top],
    }


def report(watch: MapWatch, stopped_by: str, map_type_name: str,
           return_addrs=None) -> dict:
    """The whole result, as JSON (docs/json.md, "mapwatch")."""
    watch.finish()
    return {
        "map": hexaddr(watch.map_addr),
        "type": map_type_name,
        "key_type": watch.key_type.name,
        "probes": [{"function": p.function, "symbol": p.symbol, "address": hexaddr(p.address)}
                   for p in watch.probes],
        "return_breakpoints": [hexaddr(a) for a in sorted(return_addrs or ())],
        "stopped_by": stopped_by,
        "other_map_calls": watch.other_calls,
        "errors": list(watch.errors),
        "hits": [h.to_json() for h in watch.hits],
        "summary": summarize(watch.hits, watch.elapsed),
    }


def new_watch(rt, shown: str, map_type: T.GoType, addr: int, writes: bool, max_hits: int,
              fallback_lookup: Callable[[str], Optional[int]]) -> "MapWatch":
    """Everything both front doors check before probing one map, then its MapWatch."""
    from .maps import decode_map
    if map_type.kind != T.MAP:
        raise GoExtError(f"{shown} is a {map_type.name}, not a map")
    if addr == 0:
        raise GoExtError(f"{shown} is a nil map: every nil map looks the same to a probe")
    # the key type exactly as the map decoder finds it (types only: nil address)
    key_t = decode_map(rt, map_type, 0).key_type or map_type.key
    if key_t is None:
        raise GoExtError(f"cannot find the key type of {map_type.name} in the debug info")
    try:
        look = pclntab_lookup(rt.pclntab)
    except GoExtError:
        look = fallback_lookup
    probes = resolve_entries(probe_functions(key_t, writes), look)
    if not probes:
        raise GoExtError("the binary has none of the runtime's map access functions")
    return MapWatch(rt, addr, map_type, key_t, probes, max_hits=max_hits)


def run_mapwatch(control, rt, shown: str, map_type: T.GoType, map_addr: int, max_hits: int,
                 timeout: float, writes: bool = False) -> dict:
    """Probe one map of a live program through control (target.base.Control, from
    rt.target.control()): the report (see report)."""
    watch = new_watch(rt, shown, map_type, map_addr, writes, max_hits, rt.target.symbol_address)
    stopped_by, returns = watch_calls(control, watch, timeout)
    return report(watch, stopped_by, map_type.name, returns)


def watch_calls(control, watch: MapWatch, timeout: float,
                monotonic: Callable[[], float] = time.monotonic) -> tuple[str, list]:
    """The probe loop, the one both debuggers run: (stopped_by, the return addresses that
    had a breakpoint).

    A breakpoint at each probed function's entry, with the condition RBX == the map; a
    call on our map stops the program only the first time its return address is seen,
    to put a breakpoint there; the return breakpoints stop it when the last hit wanted
    (--max-hits) has returned. Ends at max-hits, the timeout, Ctrl-C, the program's exit
    or a stop not ours. On every way out (an exception too) every breakpoint of ours is
    removed and the program is left stopped as the user had it (control.remove_all,
    control.finish); what they could not do is among the report's errors."""
    returns: dict[int, bool] = {}   # return address -> its breakpoint is in (False: failed)
    wanted: set = set()             # return addresses seen since the last stop

    def entry(probe: Probe):
        def on_hit(regs: Regs) -> bool:
            hit = watch.on_entry(probe, regs)
            if hit is None or hit.ret in returns:
                return False
            wanted.add(hit.ret)
            return True
        return on_hit

    def on_return(regs: Regs) -> bool:
        watch.on_return(regs)
        return watch.done

    stopped_by = "error"
    try:
        control.begin()
        cond = RegisterEquals("rbx", watch.map_addr)
        for p in watch.probes:
            try:
                control.add_breakpoint(p.address, entry(p), cond)
            except GoExtError as e:
                raise GoExtError(f"cannot put a breakpoint at {p.function} "
                                 f"({p.address:#x}): {e}") from None
        watch.start = watch.clock()
        deadline = monotonic() + timeout
        while True:
            why = control.resume(deadline)
            if why != HIT:
                stopped_by = why
                break
            if watch.done:
                stopped_by = "max-hits"
                break
            for addr in sorted(wanted):
                if addr in returns:
                    continue
                try:
                    control.add_breakpoint(addr, on_return)
                    returns[addr] = True
                except GoExtError as e:     # never retried: those hits keep found = null
                    returns[addr] = False
                    watch.error(f"cannot put a breakpoint at the return address {addr:#x}: {e}")
            wanted.clear()
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        watch.end = watch.clock()
        try:
            for msg in control.remove_all():
                watch.error(msg)
        finally:
            for msg in control.finish():
                watch.error(msg)
    return stopped_by, [a for a, ok in returns.items() if ok]
