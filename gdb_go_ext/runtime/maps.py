"""Go maps from memory: hmap (Go <= 1.23, 1.24 noswissmap) and Swiss tables (Go >= 1.24).

Pure Python, never imports gdb. Layouts are read from the DWARF-derived GoType
of the map (field presence and offsets), never hard-coded where DWARF has them.

API
---
``decode_map(rt, map_type, addr, limit=None, layout=False, locate=False) -> MapContents``

* ``rt``: a GoRuntime, or anything with ``.mem`` (target.Memory) and ``.target``.
* ``map_type``: the map's GoType (kind MAP; ``extra['header']`` is the header
  struct, e.g. ``hash<string,int>`` or ``map<string,int>``).
* ``addr``: the header address, i.e. the value of the map variable (0 = nil map).
* ``limit``: decode at most this many entries (the walk still counts them all).
* ``layout``: also keep every bucket / group with its tophash / control bytes.
* ``locate``: also record, per entry, where it lives (``MapContents.locations``).

``MapContents`` fields: ``type``, ``addr``, ``impl`` ('hmap' | 'swiss'), ``nil``,
``len`` (the header's count), ``entries`` (list of (key, value) values, see
runtime/values.py), ``header`` (dict), ``growth`` / ``summary`` (dicts),
``buckets`` (hmap, with layout), ``tables`` and ``groups`` (swiss),
``locations`` (with locate), ``errors`` (list of one-line strings),
``truncated`` (limit reached), and ``key_type`` / ``elem_type``. Addresses
(the header's pointers, buckets', tables' and groups' addresses) are ints or
runtime.values.Addr; views/maps.py writes them, and the JSON (``to_json``).

Example (pprof labels on Go <= 1.23)::

    from gdb_go_ext.runtime.maps import decode_map
    mc = decode_map(rt, labels_map_type, hdr_addr)
    labels = dict(mc.entries)        # {"k": "v"}

Nothing here raises anything but DecodeError (for a type that is not a map);
bad memory becomes entries of ``errors``. Every walk is bounded.

Runtime facts used (checked against Go's sources):
hmap: runtime/map.go (1.19-1.23) and runtime/map_noswiss.go (1.24) -- tophash
emptyRest 0, emptyOne 1, evacuatedX 2, evacuatedY 3, evacuatedEmpty 4,
minTopHash 5; flags iterator 1, oldIterator 2, hashWriting 4, sameSizeGrow 8;
8 slots per bucket; a bucket is evacuated when tophash[0] is 2..4. While
growing, new entries only go into new buckets whose old bucket was evacuated
first, so unevacuated old buckets + new buckets hold every entry exactly once.
Swiss: internal/runtime/maps/{map,table,group}.go (1.24-1.27) -- dirLen 0
means dirPtr is one group; otherwise dirPtr is [dirLen]*table and a table is
shared by 2^(globalDepth-localDepth) entries (counted once: entries whose
table.index differs from their position are skipped, as Delve does); 8 slots
per group; ctrl byte empty 0x80, deleted 0xFE, full = 0b0hhhhhhh (H2). Groups
are either interleaved slots {key, elem} or, with GOEXPERIMENT=mapsplitgroup
(Go 1.27), split arrays keys[8] / elems[8]; both come from the DWARF group type.
Keys/elems over 128 bytes are stored as pointers (followed here).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional

from ..errors import DecodeError
from ..binary import types as T
from .values import Addr, ValueDecoder

SLOTS = 8
EMPTY_REST, EMPTY_ONE, EVACUATED_X, EVACUATED_Y, EVACUATED_EMPTY, MIN_TOPHASH = 0, 1, 2, 3, 4, 5
TOPHASH_NAMES = {0: "emptyRest", 1: "emptyOne", 2: "evacuatedX", 3: "evacuatedY",
                 4: "evacuatedEmpty"}
HMAP_FLAGS = [(1, "iterator"), (2, "oldIterator"), (4, "hashWriting"), (8, "sameSizeGrow")]
CTRL_EMPTY, CTRL_DELETED = 0x80, 0xFE

MAX_B = 28                    # 2^28 buckets: far beyond any real map on this machine
MAX_OVERFLOW = 1 << 22        # overflow buckets walked in total
MAX_DIR = 1 << 20             # directory entries
MAX_GROUPS_PER_TABLE = 1 << 17
MAX_ENTRIES = 1 << 26
CHUNK = 1 << 22               # bytes per target read of a bucket/group array
MAX_ERRORS = 50


@dataclass
class MapContents:
    type: str
    addr: int
    impl: str
    nil: bool = False
    len: int = 0
    entries: list = field(default_factory=list)
    header: dict = field(default_factory=dict)
    growth: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    buckets: list = field(default_factory=list)     # hmap, with layout
    tables: list = field(default_factory=list)      # swiss
    groups: list = field(default_factory=list)      # swiss, with layout
    locations: list = field(default_factory=list)   # with locate, parallel to entries
    errors: list = field(default_factory=list)
    truncated: bool = False
    key_type: Optional[T.GoType] = None
    elem_type: Optional[T.GoType] = None
    full_slots: int = 0

    def error(self, msg: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(msg)
        elif len(self.errors) == MAX_ERRORS:
            self.errors.append("further errors not shown")


def header_type(map_type: T.GoType) -> T.GoType:
    if map_type is None or map_type.kind != T.MAP:
        raise DecodeError(f"{getattr(map_type, 'name', map_type)} is not a map type")
    h = map_type.extra.get("header")
    if callable(h) and not isinstance(h, T.GoType):
        h = h()
        map_type.extra["header"] = h
    if not isinstance(h, T.GoType) or h.kind != T.STRUCT:
        raise DecodeError(f"no map header type in the debug info for {map_type.name}")
    return h


def impl_of(rt, header: T.GoType) -> str:
    """"hmap" or "swiss": the binary's map implementation (rt.layout.map_impl)."""
    impl = rt.layout.map_impl
    if impl == "unknown":
        raise DecodeError(f"map header {header.name} has neither buckets nor dirPtr")
    return impl


# ---- slot layout ---------------------------------------------------------------

@dataclass
class _Slots:
    """Where keys and values sit in a bucket or group (from DWARF)."""
    size: int                 # bucket / group size
    ctrl_off: int             # tophash array (hmap) or ctrl word (swiss)
    key_off: int
    key_stride: int
    elem_off: int
    elem_stride: int
    stored_key: T.GoType
    stored_elem: T.GoType
    overflow_off: int = -1    # hmap only


def _elem(t: Optional[T.GoType]) -> Optional[T.GoType]:
    return t.elem if t is not None and t.kind in (T.PTR, T.ARRAY) else None


def _real_type(stored: T.GoType, declared_name: Optional[str]) -> tuple[T.GoType, bool]:
    """(the map's own key/elem type, stored indirectly?)."""
    if stored.kind == T.PTR and declared_name is not None and not declared_name.startswith("*") \
            and declared_name not in ("unsafe.Pointer",) and stored.elem is not None \
            and stored.elem.size > 128:
        return stored.elem, True
    return stored, False


def _slot_layout(bucket: T.GoType) -> _Slots:
    if bucket is None or bucket.kind != T.STRUCT:
        raise DecodeError("no bucket/group struct in the map's debug info")
    keys = bucket.field("keys")
    vals = bucket.field("values") or bucket.field("elems")
    th = bucket.field("tophash") or bucket.field("ctrl")
    if th is None:
        raise DecodeError(f"{bucket.name} has no tophash/ctrl field")
    if keys is not None and vals is not None:
        kt, vt = keys.type.elem, vals.type.elem
        if kt is None or vt is None:
            raise DecodeError(f"{bucket.name}: keys/elems arrays without element types")
        ov = bucket.field("overflow")
        return _Slots(bucket.size, th.offset, keys.offset, kt.size, vals.offset, vt.size, kt, vt,
                      ov.offset if ov is not None else -1)
    slots = bucket.field("slots")
    if slots is not None and slots.type.kind == T.ARRAY and slots.type.elem is not None:
        slot = slots.type.elem
        k, e = slot.field("key"), slot.field("elem")
        if k is None or e is None:
            raise DecodeError(f"{slot.name} has no key/elem fields")
        return _Slots(bucket.size, th.offset, slots.offset + k.offset, slot.size,
                      slots.offset + e.offset, slot.size, k.type, e.type)
    raise DecodeError(f"{bucket.name}: unknown bucket/group layout")


class _Decoder:
    def __init__(self, rt, map_type: T.GoType, addr: int, limit, layout, locate):
        self.rt = rt
        self.mem = rt.mem
        self.vals: ValueDecoder = rt.values
        self.mt = map_type
        self.addr = addr
        self.limit = MAX_ENTRIES if limit is None else max(0, min(limit, MAX_ENTRIES))
        self.layout = layout
        self.locate = locate
        self.header_t = header_type(map_type)
        self.impl = impl_of(rt, self.header_t)
        self.mc = MapContents(type=map_type.name, addr=addr, impl=self.impl)

    # slot decoding shared by both implementations
    def prepare(self, bucket_t: T.GoType) -> None:
        self.sl = _slot_layout(bucket_t)
        names = T.split_map_name(self.mt.name) or (None, None)
        kt, self.kind_key = _real_type(self.sl.stored_key, names[0])
        vt, self.kind_elem = _real_type(self.sl.stored_elem, names[1])
        self.mc.key_type, self.mc.elem_type = kt, vt
        self.kdec = self.vals.decoder(kt)
        self.vdec = self.vals.decoder(vt)

    def _indirect(self, t: T.GoType, buf, off):
        p = struct.unpack_from("<Q", buf, off)[0]
        if p == 0:
            return None
        return self.vals.value(t, p)

    def take(self, buf, base: int, slot: int, where) -> None:
        """Record the entry in slot `slot` of the bucket/group at buf[base:]."""
        mc = self.mc
        mc.full_slots += 1
        if len(mc.entries) >= self.limit:
            mc.truncated = True
            return
        sl = self.sl
        ko = base + sl.key_off + slot * sl.key_stride
        vo = base + sl.elem_off + slot * sl.elem_stride
        try:
            k = self._indirect(self.mc.key_type, buf, ko) if self.kind_key else self.kdec(buf, ko)
            v = self._indirect(self.mc.elem_type, buf, vo) if self.kind_elem else self.vdec(buf, vo)
        except (DecodeError, struct.error, ValueError, OverflowError) as e:
            mc.error(f"slot {where}: {e}")
            return
        mc.entries.append((k, v))
        if self.locate:
            mc.locations.append(where)

    def read_array(self, addr: int, size: int) -> Optional[memoryview]:
        """One logical read of a bucket/group array, in chunks of CHUNK bytes."""
        try:
            if size <= CHUNK:
                return memoryview(self.mem.read(addr, size))
            out = bytearray()
            for off in range(0, size, CHUNK):
                out += self.mem.read(addr + off, min(CHUNK, size - off))
            return memoryview(bytes(out))
        except DecodeError as e:
            self.mc.error(f"cannot read {size} bytes at {addr:#x}: {e}")
            return None

    # ---- hmap -------------------------------------------------------------------
    def hmap(self) -> None:
        h, mc = self.header_t, self.mc
        raw = self.mem.read(self.addr, h.size)
        hv = self.vals.decoder(h)(raw, 0)  # buckets/oldbuckets/extra are Addr
        vals = {}
        for name in ("count", "flags", "B", "noverflow", "hash0", "buckets", "oldbuckets",
                     "nevacuate", "extra"):
            f = h.field(name)
            if f is None:
                continue
            v = hv.get(name)
            vals[name] = v
        count = int(vals.get("count", 0) or 0)
        flags = int(vals.get("flags", 0) or 0)
        B = int(vals.get("B", 0) or 0)
        buckets = int(vals.get("buckets") or 0)
        old = int(vals.get("oldbuckets") or 0)
        nevac = int(vals.get("nevacuate", 0) or 0)
        hdr = dict(vals)
        hdr["flag_names"] = [n for bit, n in HMAP_FLAGS if flags & bit]
        mc.header = hdr
        mc.len = count
        bptr = h.field("buckets").type
        bucket_t = bptr.elem if bptr.kind == T.PTR else None
        self.prepare(bucket_t)
        if B > MAX_B:
            mc.error(f"implausible B={B}: buckets not walked")
            self._hmap_summary(count, B, 0, old, nevac, flags, 0)
            return
        nb = 1 << B
        growing = old != 0
        same = bool(flags & 8)
        nold = (nb if same else nb >> 1) if growing else 0
        n_overflow = 0
        # old buckets first (only unevacuated ones hold entries)
        if growing:
            n_overflow += self._walk_array(old, nold, "old")
        if buckets:
            n_overflow += self._walk_array(buckets, nb, "new")
        elif count:
            mc.error("buckets is nil but count is not 0")
        self._hmap_summary(count, B, nb, old, nevac, flags, n_overflow, nold)

    def _hmap_summary(self, count, B, nb, old, nevac, flags, n_overflow, nold=0):
        mc = self.mc
        growing = old != 0
        mc.growth = {
            "growing": growing,
            "same_size": bool(flags & 8) if growing else False,
            "old_buckets": nold,
            "nevacuate": nevac,
            "evacuated_fraction": (min(nevac, nold) / nold) if growing and nold else
            (1.0 if not growing else 0.0),
        }
        mc.summary = {
            "buckets": nb,
            "overflow_buckets": n_overflow,
            "load_factor": round(count / nb, 3) if nb else 0.0,
            "full_slots": mc.full_slots,
        }

    def _walk_array(self, base: int, n: int, which: str) -> int:
        """Walk n buckets at base and their overflow chains; returns overflow buckets seen."""
        sl = self.sl
        bsz = sl.size
        data = self.read_array(base, n * bsz)
        if data is None:
            return 0
        # level 0: the array itself
        pending = []          # (bucket index, depth, addr)
        self._buckets_in(data, base, [(i, 0, base + i * bsz, i * bsz) for i in range(n)],
                         which, pending)
        seen: set[int] = set()
        total = 0
        depth = 1
        while pending and total < MAX_OVERFLOW:
            reqs = []
            for bi, d, a in pending:
                if a in seen or (base <= a < base + n * bsz and (a - base) % bsz == 0):
                    self.mc.error(f"{which} bucket {bi}: overflow chain cycles at {a:#x}")
                    continue
                seen.add(a)
                reqs.append((bi, d, a))
            reqs = reqs[:MAX_OVERFLOW - total]
            total += len(reqs)
            got = self.mem.bulk((a, bsz) for _, _, a in reqs)
            pending = []
            items = []
            for bi, d, a in reqs:
                b = got.get(a)
                if not isinstance(b, (bytes, bytearray)):
                    self.mc.error(f"{which} bucket {bi}: overflow bucket {a:#x} unreadable")
                    continue
                items.append((bi, d, a, b))
            for bi, d, a, b in items:
                self._buckets_in(b, a, [(bi, d, a, 0)], which, pending)
            depth += 1
        if pending:
            self.mc.error(f"{which} buckets: more than {MAX_OVERFLOW} overflow buckets; stopped")
        return total

    def _buckets_in(self, buf, base, items, which, pending) -> None:
        sl = self.sl
        th_off, ov_off = sl.ctrl_off, sl.overflow_off
        keep = self.layout
        mc = self.mc
        for bi, depth, addr, off in items:
            th = bytes(buf[off + th_off: off + th_off + SLOTS])
            evacuated = which == "old" and EVACUATED_X <= th[0] <= EVACUATED_EMPTY
            if keep:
                mc.buckets.append({"which": which, "index": bi, "depth": depth,
                                   "addr": Addr(addr), "tophash": list(th),
                                   "evacuated": evacuated})
            if not evacuated:
                for s in range(SLOTS):
                    if th[s] >= MIN_TOPHASH:
                        self.take(buf, off, s, ("bucket", which, bi, depth, s, th[s]))
            if ov_off >= 0:
                ov = struct.unpack_from("<Q", buf, off + ov_off)[0]
                if ov:
                    pending.append((bi, depth + 1, ov))

    # ---- swiss ------------------------------------------------------------------
    def swiss(self) -> None:
        h, mc = self.header_t, self.mc
        raw = self.mem.read(self.addr, h.size)
        hv = self.vals.decoder(h)(raw, 0)
        hdr = {}
        for name in ("used", "seed", "dirPtr", "dirLen", "globalDepth", "globalShift",
                     "writing", "tombstonePossible", "clearSeq"):
            if h.field(name) is not None:
                hdr[name] = hv.get(name)
        mc.header = hdr
        used = int(hdr.get("used", 0) or 0)
        dirlen = int(hdr.get("dirLen", 0) or 0)
        dirptr = int(hdr.get("dirPtr") or 0)
        mc.len = used
        # **table -> *table -> table -> groups (groupReference) -> data (*group) -> group
        table_t = _elem(_elem(h.field("dirPtr").type))
        if table_t is None or table_t.field("groups") is None:
            raise DecodeError(f"{h.name}: dirPtr is not **table in the debug info")
        gref = table_t.field("groups").type
        group_t = _elem(gref.field("data").type if gref.field("data") else None)
        self.prepare(group_t)
        self.table_t, self.gref_off = table_t, table_t.field("groups").offset
        tombstones = 0
        if dirlen == 0:
            mc.summary = {"small": True, "tables": 0, "groups": 1 if dirptr else 0}
            if dirptr:
                g = self.read_array(dirptr, self.sl.size)
                if g is not None:
                    tombstones += self._groups_in(g, dirptr, 1, -1)
        else:
            if dirlen < 0 or dirlen > MAX_DIR:
                mc.error(f"implausible dirLen={dirlen}: directory not walked")
                dirlen = 0
            tombstones += self._directory(dirptr, dirlen)
            mc.summary = {"small": False, "directory": dirlen, "tables": len(mc.tables),
                          "groups": sum(t["groups"] for t in mc.tables)}
        mc.summary["full_slots"] = mc.full_slots
        mc.summary["tombstones"] = tombstones
        mc.growth = {"growing": False}

    def _directory(self, dirptr: int, dirlen: int) -> int:
        mc = self.mc
        d = self.read_array(dirptr, dirlen * 8) if dirlen else None
        if d is None:
            return 0
        ptrs = struct.unpack_from(f"<{dirlen}Q", d, 0)
        tsz = self.table_t.size
        got = self.mem.bulk((p, tsz) for p in set(ptrs) if p)
        ft = {n: self.table_t.field(n) for n in ("used", "capacity", "growthLeft",
                                                 "localDepth", "index")}
        tdec = self.vals.decoder(self.table_t)
        gref = self.table_t.field("groups").type
        data_off = self.gref_off + gref.field("data").offset
        mask_off = self.gref_off + gref.field("lengthMask").offset
        tables = []
        seen: dict[int, dict] = {}
        for i, p in enumerate(ptrs):
            if p in seen:
                seen[p]["dir"].append(i)
                continue
            raw = got.get(p) if p else None
            if not isinstance(raw, (bytes, bytearray)):
                mc.error(f"directory[{i}]: table {p:#x} unreadable")
                continue
            tv = tdec(raw, 0)
            info = {k: tv.get(k) for k in ft if ft[k] is not None}
            info["addr"] = Addr(p)
            info["dir"] = [i]
            idx = info.get("index")
            if idx is not None and idx != i:
                # a table shared with an earlier directory entry whose pointer we
                # did not see (garbage) -- count it once, at its own index
                mc.error(f"directory[{i}]: table {p:#x} has index {idx}")
            seen[p] = info
            gp = struct.unpack_from("<Q", raw, data_off)[0]
            mask = struct.unpack_from("<Q", raw, mask_off)[0]
            info["groups_addr"] = Addr(gp)
            info["groups"] = 0
            if mask + 1 > MAX_GROUPS_PER_TABLE or (mask + 1) & mask:
                mc.error(f"table {i}: implausible lengthMask {mask}")
                continue
            info["groups"] = mask + 1
            tables.append((info, gp, mask + 1))
        mc.tables = [t for t, _, _ in tables]
        tomb = 0
        sz = self.sl.size
        reqs = [(gp, n * sz) for _, gp, n in tables if gp]
        arrays = self.mem.bulk(reqs) if sum(s for _, s in reqs) <= (1 << 30) else {}
        for info, gp, n in tables:
            buf = arrays.get(gp)
            if not isinstance(buf, (bytes, bytearray)):
                buf = self.read_array(gp, n * sz)
                if buf is None:
                    continue
            full0 = mc.full_slots
            t_tomb = self._groups_in(memoryview(buf), gp, n, info["dir"][0])
            info["tombstones"] = t_tomb
            info["full"] = mc.full_slots - full0
            tomb += t_tomb
        return tomb

    def _groups_in(self, buf, base: int, n: int, table: int) -> int:
        sl = self.sl
        sz, co = sl.size, sl.ctrl_off
        tomb = 0
        keep = self.layout
        mc = self.mc
        for g in range(n):
            off = g * sz
            ctrl = bytes(buf[off + co: off + co + SLOTS])
            if keep:
                mc.groups.append({"table": table, "group": g, "addr": Addr(base + off),
                                  "ctrl": list(ctrl)})
            if ctrl == b"\x80" * 8:
                continue
            for s in range(SLOTS):
                c = ctrl[s]
                if c & 0x80 == 0:
                    self.take(buf, off, s, ("group", table, g, s, c))
                elif c == CTRL_DELETED:
                    tomb += 1
        return tomb

    def run(self) -> MapContents:
        mc = self.mc
        if self.addr == 0:
            mc.nil = True
            h = self.header_t
            try:
                # types only: fill key/elem types for views
                if self.impl == "hmap":
                    bt = h.field("buckets").type
                    self.prepare(bt.elem)
                else:
                    tt = _elem(_elem(h.field("dirPtr").type))
                    gref = tt.field("groups").type
                    self.prepare(_elem(gref.field("data").type))
            except (DecodeError, AttributeError):
                pass
            mc.growth = {"growing": False}
            return mc
        try:
            self.hmap() if self.impl == "hmap" else self.swiss()
        except DecodeError as e:
            mc.error(str(e))
        except (struct.error, ValueError, OverflowError, TypeError) as e:
            mc.error(f"map header at {self.addr:#x} does not decode: {e}")
        if mc.full_slots != mc.len and not mc.errors:
            mc.error(f"header says len {mc.len} but {mc.full_slots} full slots were found")
        return mc


def decode_map(rt, map_type: T.GoType, addr: int, limit: Optional[int] = None,
               layout: bool = False, locate: bool = False) -> MapContents:
    """Decode the map whose header is at `addr` (0 for a nil map). See the module docstring."""
    return _Decoder(rt, map_type, addr, limit, layout, locate).run()


_MISSING = object()


def one_bucket_maps(rt, map_type: T.GoType, addrs: list) -> list:
    """decode_map's entries and errors for many hmap maps at once, where each is held
    in one bucket (B 0, not growing, no overflow bucket, its count matching), as small
    maps such as pprof label sets are: [MapContents or None] per address, None where
    that does not hold or a read failed (decode_map that one). Buckets holding the same
    bytes are decoded once, and their MapContents is shared."""
    out: list = [None] * len(addrs)
    h = header_type(map_type)
    fields = [h.field(name) for name in ("count", "B", "buckets", "oldbuckets")]
    if rt.layout.map_impl != "hmap" or None in fields or not addrs:
        return out
    order = sorted(fields, key=lambda f: f.offset)
    fmt, pos = "<", 0
    for f in order:
        code = T.scalar_format(f.type) or ("Q" if f.type.size == 8 else None)
        if code is None or f.offset < pos:
            return out
        fmt, pos = fmt + f"{f.offset - pos}x{code}", f.offset + f.type.size
    i_count, i_b, i_buckets, i_old = (order.index(f) for f in fields)
    rows, errors = rt.mem.unpack_fixed(addrs, struct.Struct(fmt))
    rows = list(rows)
    picked = [i for i, r in enumerate(rows)
              if i not in errors and r[i_b] == 0 and not r[i_old] and r[i_buckets]]
    bucket_t = _elem(h.field("buckets").type)
    if bucket_t is None or not picked:
        return out
    dec = _Decoder(rt, map_type, 0, None, False, False)
    dec.prepare(bucket_t)
    size = dec.sl.size
    buf, unreadable = rt.mem.gather_fixed([rows[i][i_buckets] for i in picked], size)
    decoded: dict = {}
    for j, i in enumerate(picked):
        if j in unreadable:
            continue
        raw = bytes(buf[j * size:(j + 1) * size])
        mc = decoded.get(raw, _MISSING)
        if mc is _MISSING:
            mc = dec.mc = MapContents(type=map_type.name, addr=addrs[i], impl="hmap")
            overflow: list = []
            dec._buckets_in(raw, 0, [(0, 0, addrs[i], 0)], "new", overflow)
            decoded[raw] = mc = None if overflow else mc
        if mc is not None and mc.full_slots == rows[i][i_count]:
            out[i] = mc
    return out

