"""`mapwatch --ebpf`: where to put the uprobes and what their counts say (pure Python).

The BPF program (target/bpf/mapwatch.bpf.c) counts in the kernel; this module finds
its probe sites in the binary, by looking, never by Go version:

* the map access functions of the key type (probes.probe_functions), by name in
  pclntab;
* in each, the `jbe` of the stack check that opens the prologue: `cmp 0x10(%r14),%rsp`
  (or `lea -N(%rsp),%r12; cmp 0x10(%r14),%r12` for big frames) then `jbe`. A
  uprobe there sees the flags of the compare: CF or ZF set means the function is about
  to grow its stack and start again, so that hit is skipped;
* every RET of the function (with --found): the starts of the pcsp table's ranges
  where the frame is gone (SP delta 0), past one-byte NOPs, on a 0xc3 byte. pcsp
  changes only at instruction boundaries, so these are whole instructions (the
  tests check them against objdump on every toolchain);
* the functions' code ranges: a call whose return address lies inside a probed
  function (go1.27's mapaccess1_fast64 calling mapaccess2_fast64) is the inner half
  of a call already counted.

It also builds the program's config and turns the maps it read into the report, in
mapwatch's JSON schema (docs/json.md) plus the complete counts.
"""
from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..binary import types as T
from ..errors import DecodeError, GoExtError
from ..target.ebpf import pie_bias  # noqa: F401 (ebpfmap.pie_bias, for its callers)
from . import probes as P

KEY_BYTES = 64          # a string key's bytes kept (the BPF program's KEY_BYTES)
MAX_RANGES = 16
KIND_ENTRY, KIND_RET = 0, 1
OPS = {P.ACCESS1: 1, P.ACCESS2: 2}
VARIANTS = {P.GENERIC: 0, P.FAST32: 1, P.FAST64: 2, P.FASTSTR: 3}
MISSING, FOUND, UNKNOWN = 0, 1, 2
STATS = ("other_map_calls", "restarts_skipped", "nested_skipped", "overwritten",
         "mismatched_returns", "lost_full", "returns_seen", "hits_dropped")
DEFAULT_MAX_HITS = 10000      # --hits: records kept in the report's hits list
HITS_RING_BYTES = 1 << 24     # --hits: the ring buffer (112 bytes a record: ~150,000)
IDLE_RING_BYTES = 1 << 12     # without --hits: one page, never written

CONFIG = struct.Struct("<QQQQIIII%dQ%dQ" % (MAX_RANGES, MAX_RANGES))
MKEY = struct.Struct("<IIQ%ds" % KEY_BYTES)        # func, state, len, data
CKEY = struct.Struct("<QII")                       # ret, func, state
PENDING = struct.Struct("<IIQ%dsQQ" % KEY_BYTES)  # mkey, ret, goid
HIT = struct.Struct("<IIQ%dsQQQ" % KEY_BYTES)     # mkey, goid, ret, t_ns
U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class Site:
    index: int          # the probed function's index (in the cookie)
    probe: P.Probe
    kind: int           # KIND_ENTRY (the jbe) or KIND_RET
    address: int        # link-time address

    @property
    def cookie(self) -> int:
        return (self.index | self.kind << 8 | OPS[self.probe.op] << 16
                | VARIANTS[self.probe.variant] << 24)


def stack_check_jbe(code: bytes) -> Optional[int]:
    """Offset of the stack check's jbe in a function's first bytes, or None."""
    i = 0
    if code[:3] == b"\x4c\x8d\x64" and code[3:4] == b"\x24":      # lea -d8(%rsp),%r12
        i = 5
        cmp = b"\x4d\x3b\x66\x10"                                  # cmp 0x10(%r14),%r12
    elif code[:4] == b"\x4c\x8d\xa4\x24":                          # lea -d32(%rsp),%r12
        i = 8
        cmp = b"\x4d\x3b\x66\x10"
    else:
        cmp = b"\x49\x3b\x66\x10"                                  # cmp 0x10(%r14),%rsp
    if code[i:i + 4] != cmp:
        return None
    j = i + 4
    if code[j:j + 1] == b"\x76" or code[j:j + 2] == b"\x0f\x86":   # jbe rel8 / rel32
        return j
    return None


def ret_addresses(pclntab, func, code: bytes) -> list[int]:
    """Every RET of func (code: its bytes): where pcsp says the frame is gone (after the
    entry), a 0xc3 byte, after nothing but one-byte NOPs (0x90)."""
    if not func.pcsp:
        return []
    ends, vals = pclntab.pcvalue_table(func.entry, func.pcsp)
    out = []
    start = func.entry
    for end, val in zip(ends, vals):
        if val == 0 and start != func.entry:
            pos = start - func.entry
            stop = min(end, func.end) - func.entry
            while pos < stop and code[pos] == 0x90:
                pos += 1
            if pos < stop and code[pos] == 0xC3:
                out.append(func.entry + pos)
        start = end
    return out


def find_sites(elf, pclntab, probes: list[P.Probe], found: bool):
    """(sites, [(start, end)] code ranges (link-time), errors) for these functions."""
    sites: list[Site] = []
    ranges: list[tuple[int, int]] = []
    errors: list[str] = []
    for idx, p in enumerate(probes):
        try:
            f = pclntab.func_for_pc(p.address)
        except DecodeError:
            f = None
        if f is None or f.entry != p.address:
            errors.append(f"{p.function}: not a function entry in pclntab")
            continue
        code = elf.read_vaddr(f.entry, f.end - f.entry)
        jbe = stack_check_jbe(code[:32])
        if jbe is None:
            errors.append(f"{p.function}: no stack check (cmp 0x10(%r14); jbe) at its entry: "
                          "not probed")
            continue
        rets = ret_addresses(pclntab, f, code)
        if found and not rets:
            errors.append(f"{p.function}: no RET found: not probed")
            continue
        ranges.append((f.entry, f.end))
        sites.append(Site(idx, p, KIND_ENTRY, f.entry + jbe))
        if found:
            sites.extend(Site(idx, p, KIND_RET, a) for a in rets)
    if len(ranges) > MAX_RANGES:
        raise GoExtError(f"{len(ranges)} functions to probe: more than {MAX_RANGES}")
    return sites, ranges, errors


def file_offset(elf, vaddr: int) -> int:
    """The file offset of a link-time address of the executable's code."""
    for seg in elf.loads:
        if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
            return seg.offset + vaddr - seg.vaddr
    raise GoExtError(f"{vaddr:#x} is not in the executable's file")


def config_bytes(map_addr: int, zeroval: int, goid_off: int, key: T.GoType, found: bool,
                 ranges: list[tuple[int, int]], bias: int, hits: bool = False) -> bytes:
    starts = [s + bias for s, _ in ranges] + [0] * (MAX_RANGES - len(ranges))
    ends = [e + bias for _, e in ranges] + [0] * (MAX_RANGES - len(ranges))
    return CONFIG.pack(map_addr, zeroval, goid_off, key.size or 0,
                       int(key.kind == T.STRING), int(found), len(ranges), int(hits),
                       *starts, *ends)


# --- the counts, read back ------------------------------------------------------------
def decode_key(key_t: T.GoType, data: bytes, length: int,
               values: Optional[Callable[[bytes], Any]] = None) -> tuple[Any, bool]:
    """(the key as mapwatch's JSON has it, whether it was cut at KEY_BYTES)."""
    if key_t.kind == T.STRING:
        return data[:min(length, KEY_BYTES)].decode("utf-8", "replace"), length > KEY_BYTES
    size = key_t.size or 0
    raw = data[:size]
    if key_t.kind in (T.INT, T.UINT) and size in (1, 2, 4, 8):
        return int.from_bytes(raw, "little", signed=key_t.kind == T.INT), False
    if key_t.kind == T.BOOL and size == 1:
        return bool(raw[0]), False
    if values is not None and size <= KEY_BYTES:
        try:
            return values(raw), False
        except (DecodeError, struct.error, GoExtError):
            pass
    return "0x" + raw.hex(), size > KEY_BYTES


def build_report(*, map_addr: int, map_type: str, key_t: T.GoType, probes: list[P.Probe],
                 sites: list[Site], bias: int, counts: list, goroutines: list, callers: list,
                 pendings: list, stats: dict, seconds: float, stopped_by: str,
                 errors: list, symbolize: Callable[[int], Optional[dict]], found: bool,
                 values=None, hit_records: Optional[list] = None, max_hits: int = 0,
                 hits_beyond_max: int = 0, t0_ns: int = 0) -> dict:
    """The report in mapwatch's schema (runtime.probes.report) with the complete counts.

    counts: [(MKEY bytes, n)], goroutines: [(goid, n)], callers: [(CKEY bytes, n)],
    pendings: [PENDING bytes] (calls whose RET the window did not see: unknown).
    hit_records (--hits): [HIT bytes] in the ring buffer's order, at most max_hits (0: no
    cap); hits_beyond_max: records read past the cap; t0_ns: CLOCK_MONOTONIC at the start."""
    per_key: dict[str, dict] = {}
    by_function: dict[str, int] = {}
    by_op: dict[str, int] = {}
    totals = {"found": 0, "missing": 0, "unknown": 0}
    truncated = False
    which = {MISSING: "missing", FOUND: "found", UNKNOWN: "unknown"}

    def count_key(func: int, state: int, length: int, data: bytes, n: int) -> None:
        nonlocal truncated
        if not 0 <= func < len(probes):
            return
        p = probes[func]
        key, cut = decode_key(key_t, data, length, values)
        kid = P.key_id(key) + (f"/{length}" if cut else "")
        d = per_key.get(kid)
        if d is None:
            d = per_key[kid] = {"key": key, "hits": 0, "found": 0, "missing": 0, "unknown": 0,
                                "by_op": {}}
            if cut:
                d["length"] = length
                d["truncated"] = True
                truncated = True
        w = which.get(state, "unknown")
        d["hits"] += n
        d[w] += n
        o = d["by_op"].setdefault(p.op, {"hits": 0, "found": 0, "missing": 0})
        o["hits"] += n
        if w != "unknown":
            o[w] += n
        totals[w] += n
        by_function[p.function] = by_function.get(p.function, 0) + n
        by_op[p.op] = by_op.get(p.op, 0) + n

    for kb, n in counts:
        func, state, length, data = MKEY.unpack(kb)
        count_key(func, state, length, data, n)
    cmap: dict[tuple, dict] = {}

    def count_caller(ret: int, state: int, n: int) -> None:
        loc = symbolize(ret) or {"function": "?", "file": "?", "line": 0}
        ck = (loc["function"], loc["file"], loc["line"])
        c = cmap.get(ck)
        if c is None:
            c = cmap[ck] = dict(loc, hits=0, found=0, missing=0, unknown=0)
        c["hits"] += n
        c[which.get(state, "unknown")] += n

    for cb, n in callers:
        ret, func, state = CKEY.unpack(cb)
        count_caller(ret, state, n)
    for pb in pendings:
        func, _, length, data, ret, _goid = PENDING.unpack(pb)
        count_key(func, UNKNOWN, length, data, 1)
        count_caller(ret, UNKNOWN, 1)

    for d in per_key.values():
        d["by_op"] = dict(sorted(d["by_op"].items()))
    summary = P.summary_of(per_key, cmap, (totals["found"], totals["missing"],
                                           totals["unknown"]), by_function, by_op, seconds)
    summary["callers"] = sorted(cmap.values(), key=lambda d: (-d["hits"], d["function"],
                                                               d["line"]))
    summary["by_goroutine"] = sorted(({"goroutine": g, "hits": n} for g, n in goroutines),
                                     key=lambda d: (-d["hits"], d["goroutine"]))
    rep = {
        "map": f"{map_addr:#x}",
        "type": map_type,
        "key_type": key_t.name,
        "engine": "ebpf",
        "probes": [{"function": p.function, "symbol": p.symbol, "address": f"{p.address + bias:#x}"}
                   for p in probes if any(s.probe is p for s in sites)],
        "uprobes": [{"function": s.probe.function,
                     "kind": "entry" if s.kind == KIND_ENTRY else "return",
                     "address": f"{s.address + bias:#x}"} for s in sites],
        "return_breakpoints": [],
        "found_tracked": found,
        "stopped_by": stopped_by,
        "other_map_calls": stats.get("other_map_calls", 0),
        "restarts_skipped": stats.get("restarts_skipped", 0),
        "nested_skipped": stats.get("nested_skipped", 0),
        "errors": list(errors),
        "hits": [],
        "summary": summary,
    }
    if hit_records is not None:
        rep["hits"] = hit_list(key_t, probes, hit_records, pendings, symbolize, found, values,
                               max_hits, t0_ns)
        beyond = hits_beyond_max + max(0, len(hit_records) + len(pendings) - len(rep["hits"]))
        rep["hits_recorded"] = True
        rep["max_hits"] = max_hits
        rep["hits_beyond_max"] = beyond
        rep["hits_dropped"] = stats.get("hits_dropped", 0)
        if rep["hits_dropped"]:
            rep["errors"].append(f"{rep['hits_dropped']} hits dropped from the hits list: the "
                                 "ring buffer was full (the counts have them)")
    if key_t.kind == T.STRING:
        rep["string_key_bytes"] = KEY_BYTES
        rep["keys_truncated"] = truncated
    for name in ("lost_full", "overwritten", "mismatched_returns"):
        if stats.get(name):
            rep["errors"].append(f"{stats[name]} hits {name.replace('_', ' ')} (BPF counts)")
    return rep


def hit_list(key_t, probes, records: list, pendings: list, symbolize, found: bool, values,
             max_hits: int, t0_ns: int) -> list[dict]:
    """The report's hits, in the kernel's order, then the calls still pending (found
    null, t null): mapwatch's per-hit entries (docs/json.md)."""
    which = {MISSING: False, FOUND: True}
    out: list[dict] = []

    def add(func, state, length, data, goid, ret, t):
        if not 0 <= func < len(probes) or (max_hits and len(out) >= max_hits):
            return
        p = probes[func]
        key, cut = decode_key(key_t, data, length, values)
        h = {"key": key, "found": which.get(state) if found else None,
             "function": p.function, "op": p.op, "goroutine": goid,
             "caller": symbolize(ret), "t": t}
        if cut:
            h["length"] = length
            h["truncated"] = True
        out.append(h)

    for rb in records:
        func, state, length, data, goid, ret, t_ns = HIT.unpack(rb[:HIT.size])
        add(func, state, length, data, goid, ret, round((t_ns - t0_ns) / 1e9, 6))
    for pb in pendings:
        func, _, length, data, ret, goid = PENDING.unpack(pb)
        add(func, UNKNOWN, length, data, goid, ret, None)
    return out


def pclntab_symbolizer(pclntab, bias: int) -> Callable[[int], Optional[dict]]:
    cache: dict[int, Optional[dict]] = {}

    def sym(ret: int) -> Optional[dict]:
        if ret in cache:
            return cache[ret]
        loc = None
        try:
            frames = pclntab.frames_for_return(ret - bias)
            if frames:
                fr = frames[0]
                loc = {"function": fr.print_name, "file": fr.file, "line": fr.line}
        except DecodeError:
            pass
        cache[ret] = loc
        return loc
    return sym


# --- the probe ----------------------------------------------------------------------------
PROGRAM = "mapwatch"


def probe_map(*, pid: int, elf, pclntab, map_addr: int, map_type_name: str, key_t,
              goid_off: int, found: bool, wait, values=None, hits: bool = False,
              max_hits: int = DEFAULT_MAX_HITS) -> dict:
    """Count the lookups of the map at map_addr in process pid while wait(n_uprobes)
    runs (it returns how the window ended: "timeout", "interrupt", "exited", ...), then
    remove every uprobe and return the report (runtime/ebpfmap.py's build_report).
    hits: also list every call, in order (the ring buffer, read by a thread while the
    window runs and drained at its end), at most max_hits of them (0: no cap).

    elf/pclntab: the process's executable (link-time addresses; the PIE bias comes from
    /proc/PID/maps)."""
    import os
    import time
    from ..target.ebpf import BpfObject
    exe = f"/proc/{pid}/exe"
    if not os.path.exists(f"/proc/{pid}"):
        raise GoExtError(f"no process {pid}")
    probes = P.resolve_entries([n for n in P.probe_functions(key_t) if n in P.FUNCTIONS],
                               P.pclntab_lookup(pclntab))
    if not probes:
        raise GoExtError("the binary has none of the runtime's map access functions")
    sites, ranges, errors = find_sites(elf, pclntab, probes, found)
    if not sites:
        raise GoExtError("no map access function could be probed: " + "; ".join(errors))
    bias = pie_bias(pid, exe, elf)
    zv = elf.symbol("runtime.zeroVal")
    zeroval = zv[0] + bias if zv else 0
    if found and not zeroval:
        errors.append("no runtime.zeroVal symbol: mapaccess1's found/missing is unknown")
    stats: dict = {}
    records: list = []
    beyond = [0]

    def on_record(raw: bytes) -> None:
        if max_hits and len(records) >= max_hits:
            beyond[0] += 1
        else:
            records.append(raw)
    ring = {"hits": HITS_RING_BYTES if hits else IDLE_RING_BYTES}
    with BpfObject(max_entries=ring) as bpf:
        bpf.update("config", b"\0" * 4,
                   config_bytes(map_addr, zeroval, goid_off, key_t, found, ranges, bias, hits))
        reader = bpf.ring_buffer("hits", on_record) if hits else None
        stop = threading.Event()
        poller = None
        if reader is not None:
            poller = threading.Thread(target=_poll, args=(reader, stop), daemon=True,
                                      name="mapwatch-hits")
            poller.start()
        stopped_by = "error"
        t0 = t1 = time.monotonic()
        t0_ns = time.monotonic_ns()
        try:
            for s in sites:
                bpf.attach_uprobe(PROGRAM, pid, exe, file_offset(elf, s.address), s.cookie)
            t0 = time.monotonic()
            stopped_by = wait(len(sites))
        finally:
            t1 = time.monotonic()
            errors.extend(bpf.detach())     # first stop counting, then read
            if reader is not None:
                stop.set()
                poller.join()
                reader.consume()            # what the thread had not read yet
                reader.free()
        for i, name in enumerate(STATS):
            v = bpf.lookup("stats", i.to_bytes(4, "little"), 8)
            stats[name] = int.from_bytes(v, "little") if v else 0
        counts = [(k, int.from_bytes(v, "little"))
                  for k, v in bpf.items("counts", MKEY.size, 8)]
        gor = [(int.from_bytes(k, "little"), int.from_bytes(v, "little"))
               for k, v in bpf.items("goroutines", 8, 8)]
        callers = [(k, int.from_bytes(v, "little"))
                   for k, v in bpf.items("callers", CKEY.size, 8)]
        pend = [v for _, v in bpf.items("pendings", 8, PENDING.size)] if found else []
    return build_report(
        map_addr=map_addr, map_type=map_type_name, key_t=key_t, probes=probes, sites=sites,
        bias=bias, counts=counts, goroutines=gor, callers=callers, pendings=pend, stats=stats,
        seconds=t1 - t0, stopped_by=stopped_by, errors=errors, found=found,
        symbolize=pclntab_symbolizer(pclntab, bias), values=values,
        hit_records=records if hits else None, max_hits=max_hits, hits_beyond_max=beyond[0],
        t0_ns=t0_ns)


def _poll(reader, stop) -> None:
    """The --hits reader thread: hands records over until stop (signals blocked here, so
    they go to the main thread: gdb's, or gdb-go's SIGINT/SIGTERM)."""
    import signal
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))
    except (OSError, ValueError, AttributeError):
        pass
    while not stop.is_set():
        if reader.poll(100) < 0:
            stop.wait(0.1)
