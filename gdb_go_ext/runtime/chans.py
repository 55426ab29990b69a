"""A channel's state from its runtime.hchan: element type, buffer in receive order, the
goroutines waiting in its recvq and sendq (with what each sender sends), and the
goroutines whose stacks still hold its address.

Pure (never imports gdb). Offsets come from the binary (rt.layout.fields over
runtime.hchan, runtime.sudog and runtime.g), never from a version number. Everything
is bounded: a queue that cycles, a garbage sudog, an absurd dataqsiz, an address
that is not a channel each become an error line in ChanState.errors, and what could be
read still comes out.

The element type: from hchan.elemtype, a *runtime._type (abi.Type). Its name is the
descriptor's own string (abi.Type.Str, as the interface decoder reads it); the debug
info's `chan NAME` (a pointer to hchan<T> whose sudog<T>.elem is *T) or NAME itself
gives its layout, taken only when its size equals hchan.elemsize. A typed expression
(`chan T`) gives T directly. Where the debug info has no such type, the descriptor's
kind decodes scalars, strings and pointers, and anything else is shown as raw words.
"""
from __future__ import annotations

import bisect
import itertools
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

from ..binary import types as T
from ..errors import DecodeError, ReadError
from .values import Addr

MAX_WAITERS = 4_000_000        # a queue longer than this is cut (a cycle is caught before)
MAX_BUFFER_BYTES = 64 << 20    # a buffer larger than this is not read
MAX_ELEM_SIZE = 1 << 16        # hchan.elemsize is a uint16: never more
MAX_HOLDER_STACK = 1 << 26     # a "stack" [sp, hi) longer than this is garbage: not read

_HCHAN = ("qcount", "dataqsiz", "buf", "elemsize", "closed", "elemtype", "sendx", "recvx",
          "recvq.first", "recvq.last", "sendq.first", "sendq.last")
_SUDOG = ("g", "next", "elem", "c", "isSelect")
_KINDS = 26                    # abi.Kind: 1 (Bool) .. 26 (UnsafePointer)
_K_STRUCT = 25
_WORD = struct.Struct("<Q")

HOLDER_NOTE = ("a conservative scan of goroutine stacks only (sp to stack.hi): references "
               "held from the heap or globals are not seen")


@dataclass(slots=True)
class Waiter:
    """One sudog of a channel's recvq or sendq."""
    sudog: int
    g: int                      # the waiting g's address
    goid: Optional[int]         # None when its g cannot be read
    is_select: bool
    elem: int                   # where the value is sent from / received into (0: none)
    value: Any = None           # for a sender: the value it sends, decoded (see ChanState)


@dataclass(slots=True)
class ChanState:
    addr: int
    type_name: Optional[str]            # "chan main.Item" when the expression said so
    elemtype: int = 0                   # the element's runtime type descriptor
    elem_type: str = ""                 # its name, as the descriptor says it
    elem_size: int = 0
    elem_kind: int = 0                  # abi.Kind of the descriptor (0: unreadable)
    elem_source: str = ""               # how its layout was found (see module docstring)
    elem_gotype: Optional[T.GoType] = None
    qcount: int = 0
    dataqsiz: int = 0
    closed: bool = False
    sendx: int = 0
    recvx: int = 0
    buf: int = 0
    buffer: Optional[list] = None       # decoded elements in receive order; None: not read
    recvq: list = field(default_factory=list)      # Waiters, queue order
    sendq: list = field(default_factory=list)
    recvq_len: int = 0
    sendq_len: int = 0
    errors: list = field(default_factory=list)


def decode_chan(rt, addr: int, chan_type: Optional[T.GoType] = None,
                limit: Optional[int] = None) -> ChanState:
    """The channel whose hchan is at addr. chan_type: its `chan T` type when known.
    limit: decode at most this many buffered elements and sender values (the queues
    are always walked whole, to count them). DecodeError only when the hchan itself
    cannot be read; everything else lands in .errors."""
    hf = rt.layout.fields("runtime.hchan", _HCHAN)
    if hf is None or not (hf.has("qcount") and hf.has("recvq.first") and hf.has("elemtype")):
        raise DecodeError("the binary has no runtime.hchan with qcount, elemtype and recvq")
    if not addr:
        raise DecodeError("a nil channel (address 0) has no hchan")
    mem = rt.mem
    h = hf.read(mem, addr)      # ReadError (a DecodeError): one line, nothing to show
    cs = ChanState(addr, chan_type.name if chan_type is not None else None)
    cs.qcount, cs.dataqsiz = h["qcount"] or 0, h["dataqsiz"] or 0
    cs.closed, cs.sendx, cs.recvx = bool(h["closed"]), h["sendx"] or 0, h["recvx"] or 0
    cs.buf, cs.elem_size, cs.elemtype = h["buf"] or 0, h["elemsize"] or 0, h["elemtype"] or 0
    err = cs.errors.append
    if h["closed"] not in (0, 1, None):
        err(f"hchan.closed is {h['closed']}, neither 0 nor 1: {addr:#x} may not be a channel")
    _elem_type(rt, cs, chan_type)
    _buffer(rt, cs, limit)
    seen: set = set()
    cs.recvq, cs.recvq_len = _queue(rt, cs, "recvq", h["recvq.first"], seen)
    cs.sendq, cs.sendq_len = _queue(rt, cs, "sendq", h["sendq.first"], seen)
    _sent_values(rt, cs, limit)
    return cs


# --- the element type ----------------------------------------------------------------
def _elem_type(rt, cs: ChanState, chan_type: Optional[T.GoType]) -> None:
    vals = rt.values
    typ, size = cs.elemtype, cs.elem_size
    try:
        rtype = vals.rtype
        hdr = rt.mem.read(typ, rtype.header) if typ else b""
        if not typ:
            raise DecodeError("hchan.elemtype is nil")
        dsize = _WORD.unpack_from(hdr, rtype.off["size"])[0]
        kind = hdr[rtype.off["kind"]] & 31
        if not 1 <= kind <= _KINDS or dsize != size:
            raise DecodeError(f"the descriptor at {typ:#x} says kind {kind}, size {dsize}, "
                              f"but hchan.elemsize is {size}")
        cs.elem_kind = kind
        cs.elem_type = vals.type_name(typ)
    except DecodeError as e:
        cs.errors.append(f"hchan.elemtype {typ:#x} is not a type descriptor ({e}): "
                         f"{cs.addr:#x} may not be a channel")
    if chan_type is not None:
        el = chan_type.elem
        if el is not None and el.size == size:
            cs.elem_gotype, cs.elem_source = el, "the expression's chan type"
            cs.elem_type = cs.elem_type or el.name
            return
    if cs.elem_type and not cs.elem_type.startswith("<"):
        found = _lookup(rt.target, "chan " + cs.elem_type)
        el = found.elem if found is not None and found.kind == T.CHAN else None
        if el is None or el.size != size:
            el = _lookup(rt.target, cs.elem_type)
        if el is not None and el.size == size and el.kind != T.UNKNOWN:
            cs.elem_gotype, cs.elem_source = el, "the debug info, by the descriptor's name"
            return
    cs.elem_source = "the descriptor's kind" if cs.elem_kind else "none: raw words"


def _lookup(target, name: str) -> Optional[T.GoType]:
    try:
        return target.lookup_type(name)
    except Exception:  # a debugger that cannot parse the name: not found
        return None


def element_decoder(rt, cs: ChanState):
    """fn(buf, off) -> the value of one element at buf[off:]: by its GoType, else by
    the descriptor's kind (scalars, strings, pointers), else {"raw": [words]}."""
    size = cs.elem_size
    if cs.elem_gotype is not None:
        dec = rt.values.decoder(cs.elem_gotype)
    elif cs.elem_kind and (cs.elem_kind != _K_STRUCT or size == 0):
        by_kind = rt.values._by_kind
        typ, name, kind = cs.elemtype, cs.elem_type, cs.elem_kind

        def dec(buf, off):
            if kind == _K_STRUCT:
                return {}
            v = by_kind(typ, name, kind, buf, off, size)
            return raw(buf, off) if isinstance(v, str) and v.startswith(f"<{name} at") else v
    else:
        dec = None

    def raw(buf, off):
        words = bytes(buf[off:off + size]) + bytes(-size % 8)
        return {"raw": [Addr(w) for (w,) in _WORD.iter_unpack(words)]}

    if dec is None:
        return raw

    def safe(buf, off):
        try:
            return dec(buf, off)
        except (DecodeError, struct.error, IndexError, ValueError) as e:
            return f"<undecodable: {e}>"
    return safe


# --- the buffer ------------------------------------------------------------------------
def _buffer(rt, cs: ChanState, limit: Optional[int]) -> None:
    n, cap, size = cs.qcount, cs.dataqsiz, cs.elem_size
    if cap == 0:
        if n:
            cs.errors.append(f"qcount {n} on a channel without a buffer (dataqsiz 0)")
        else:
            cs.buffer = []
        return
    if n > cap:
        cs.errors.append(f"qcount {n} is more than dataqsiz {cap}: the buffer is not read")
        return
    if cs.recvx >= cap or cs.sendx >= cap:
        cs.errors.append(f"recvx {cs.recvx} or sendx {cs.sendx} is outside dataqsiz {cap}: "
                         f"the buffer is not read")
        return
    if cap * size > MAX_BUFFER_BYTES:
        cs.errors.append(f"a buffer of {cap} x {size} bytes is too large to read")
        return
    if not n:
        cs.buffer = []
        return
    if (cs.recvx + n) % cap != cs.sendx:
        cs.errors.append(f"recvx {cs.recvx} + qcount {n} does not reach sendx {cs.sendx} "
                         f"(mod dataqsiz {cap}): the channel is changing or damaged")
    shown = n if limit is None else min(n, limit)
    if size == 0:
        dec = element_decoder(rt, cs)
        cs.buffer = [dec(b"", 0) for _ in range(shown)]
        return
    if not cs.buf:
        cs.errors.append("hchan.buf is nil on a buffered channel")
        return
    # only the slots that hold elements: recvx onward, wrapping at dataqsiz
    first = min(shown, cap - cs.recvx)
    try:
        data = rt.mem.read(cs.buf + cs.recvx * size, first * size)
        if shown > first:
            data += rt.mem.read(cs.buf, (shown - first) * size)
    except ReadError as e:
        cs.errors.append(f"cannot read the buffer: {e}")
        return
    dec = element_decoder(rt, cs)
    cs.buffer = [dec(data, i * size) for i in range(shown)]


# --- the queues ---------------------------------------------------------------------------
def _queue(rt, cs: ChanState, which: str, first: Optional[int], seen: set) -> tuple:
    """(Waiters, count) of one wait queue, followed through sudog.next; stops at a
    cycle, an unreadable sudog or one that belongs to another channel."""
    st = rt.target.lookup_type("runtime.sudog")
    names = tuple(_address_path(st, p) for p in _SUDOG) if st is not None else _SUDOG
    sf = rt.layout.fields("runtime.sudog", names)
    if sf is None or not (sf.has("g") and sf.has("next")):
        cs.errors.append("the binary has no runtime.sudog with g and next: queues not read")
        return [], 0
    read, size = rt.mem.read, sf.size
    fmt, pos, order = "<", 0, []
    for off, p in sorted((sf.offset(p), p) for p in names if sf.has(p)):
        if off < pos:
            continue
        spec = sf.spec[p]
        fmt += f"{off - pos}x" + spec[1][1:]
        pos = off + spec[2]
        order.append(p)
    shape = struct.Struct(fmt)
    at = {p.split(".", 1)[0]: order.index(p) for p in order}
    i_g, i_next = at["g"], at["next"]
    i_elem, i_c, i_sel = at.get("elem"), at.get("c"), at.get("isSelect")
    out = []
    row_at = _chunked(read, shape)
    s = first or 0
    while s:
        if s in seen:
            cs.errors.append(f"{which} has a cycle at sudog {s:#x}: cut after {len(out)} waiters")
            break
        if len(out) >= MAX_WAITERS:
            cs.errors.append(f"{which} is longer than {MAX_WAITERS}: cut")
            break
        seen.add(s)
        try:
            row = row_at(s)
        except (ReadError, struct.error) as e:
            cs.errors.append(f"{which}: cannot read sudog {s:#x} ({e}): cut after {len(out)} waiters")
            break
        c = row[i_c] if i_c is not None else cs.addr
        if c != cs.addr:
            cs.errors.append(f"{which}: sudog {s:#x} belongs to channel {c:#x}, not {cs.addr:#x}: "
                             f"cut after {len(out)} waiters")
            break
        out.append(Waiter(s, row[i_g], None, bool(row[i_sel]) if i_sel is not None else False,
                          row[i_elem] if i_elem is not None else 0))
        s = row[i_next]
    _goids(rt, cs, out)
    return out, len(out)


CHUNK = 1 << 16


def _chunked(read, shape: struct.Struct):
    """shape unpacked at an address, read through 64 KiB chunks: the sudogs of a long
    queue lie close together (one size class), so 25,000 of them cost a few hundred
    reads, not 25,000. A chunk that cannot be read whole is read struct by struct."""
    chunks: dict = {}
    size, unpack_from = shape.size, shape.unpack_from
    mask = ~(CHUNK - 1)

    def row_at(addr: int) -> tuple:
        base = addr & mask
        if addr + size <= base + CHUNK:
            data = chunks.get(base)
            if data is None:
                try:
                    data = read(base, CHUNK)
                    if len(data) != CHUNK:
                        data = False
                except ReadError:
                    data = False
                chunks[base] = data
            if data:
                return unpack_from(data, addr - base)
        return unpack_from(read(addr, size))
    return row_at


def _address_path(t: T.GoType, name: str) -> str:
    """The path of the address a sudog field holds: the field itself, or (Go 1.26+, for
    elem and c) the `vu` of its maybeTraceablePtr, which always holds the address (vp
    may be cleared to hide it from the GC), also behind an embedded struct."""
    found = t.find(name)
    path = name
    for _ in range(4):
        if found is None or found[1].kind != T.STRUCT or not found[1].fields:
            return path
        ft = found[1]
        if ft.field("vu") is not None:
            return path + ".vu"
        path += "." + ft.fields[0].name
        found = (0, ft.fields[0].type)
    return name


def _goids(rt, cs: ChanState, waiters: list) -> None:
    """Each waiter's goroutine id, read from its g in bulk."""
    gf = rt.layout.fields("runtime.g", ("goid",))
    off = gf.offset("goid") if gf is not None else None
    if off is None or not waiters:
        return
    one = struct.Struct(gf.spec["goid"][1])
    buf, errors = rt.mem.gather_fixed([w.g + off for w in waiters], one.size)
    bad = 0
    for i, w in enumerate(waiters):
        if i in errors or not w.g:
            bad += 1
            continue
        w.goid = one.unpack_from(buf, i * one.size)[0]
    if bad:
        cs.errors.append(f"{bad} waiting goroutines could not be read (their g)")


def _sent_values(rt, cs: ChanState, limit: Optional[int]) -> None:
    """What each sender sends: its sudog.elem, read in bulk, decoded by the element type."""
    size = cs.elem_size
    senders = cs.sendq if limit is None else cs.sendq[:limit]
    if not senders:
        return
    dec = element_decoder(rt, cs)
    if size == 0:
        for w in senders:
            w.value = dec(b"", 0)
        return
    # senders of a constant share its address (c <- 1): each address is read once
    where = list(dict.fromkeys(w.elem for w in senders if w.elem))
    buf, errors = rt.mem.gather_fixed(where, size)
    values = {a: f"<unreadable {a:#x}>" if i in errors else dec(buf, i * size)
              for i, a in enumerate(where)}
    for w in senders:
        if w.elem:
            w.value = values[w.elem]


# --- holders ----------------------------------------------------------------------------
@dataclass(slots=True)
class Holder:
    goroutine: Any              # the walk's Goroutine
    slots: list                 # stack addresses holding the channel's address


def stack_holders(rt, goroutines, addr: int, exclude=frozenset()) -> tuple:
    """(Holders, errors): the goroutines (but those whose g address is in exclude) whose
    stack, from its stack pointer (the walk's, sched.sp for a parked goroutine) up to
    stack.hi, holds an aligned word equal to addr. A conservative scan of stacks only.
    The stacks are read in bulk and searched in one pass over their bytes."""
    want = _WORD.pack(addr)
    sel = [(g, g.sp & ~7, g.stack_hi) for g in goroutines if g.sp and g.addr not in exclude]
    sel = [x for x in sel if x[1] < x[2] <= x[1] + MAX_HOLDER_STACK]
    ranges = [(sp, hi - sp) for _, sp, hi in sel]
    got = rt.mem.gather(ranges)
    good = [i for i, x in enumerate(got) if x.__class__ is tuple]
    errors: list = []
    if len(good) < len(got):
        errors.append(f"{len(got) - len(good)} goroutine stacks could not be read for the "
                      f"holder scan")
    if not good:
        return [], errors
    sizes = [ranges[i][1] for i in good]
    bufs = {id(got[i][0]) for i in good}
    offs = [got[i][1] for i in good]
    if len(bufs) == 1 and offs == list(itertools.accumulate(sizes[:-1], initial=offs[0])):
        data, starts = got[good[0]][0], offs      # back to back in one buffer: as it is
        lo, hi = offs[0], offs[-1] + sizes[-1]
    else:                                           # scattered (a core's mapping): joined
        views: dict = {}
        pieces = []
        for i, off, n in zip(good, offs, sizes):
            buf = got[i][0]
            mv = views.get(id(buf))
            if mv is None:
                mv = views[id(buf)] = memoryview(buf).cast("B")
            pieces.append(mv[off:off + n])
        data = b"".join(pieces)
        del pieces, views
        starts = list(itertools.accumulate(sizes[:-1], initial=0))
        lo, hi = 0, len(data)
    found: dict = {}
    find = data.find
    i = find(want, lo, hi)
    while i >= 0:
        k = bisect.bisect_right(starts, i) - 1
        if (i - starts[k]) % 8 == 0:   # stacks start 8-aligned: an aligned word
            found.setdefault(k, []).append(ranges[good[k]][0] + i - starts[k])
        i = find(want, i + 1, hi)
    return [Holder(sel[good[k]][0], slots) for k, slots in sorted(found.items())], errors
