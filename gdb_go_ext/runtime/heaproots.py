"""The garbage collector's roots, as the runtime's markroot finds them (Go 1.22+, amd64).

Three kinds, each a RootSet (pointer words, the root each belongs to, its offset):

- global_roots: every module's data and bss through the bitmaps the runtime built
  for them at start-up (moduledata.gcdatamask / gcbssmask; markrootBlock), words
  grouped by the ELF symbol that holds them, typed from DWARF where the target knows
  the symbol;
- stack_roots: every goroutine's frames as scanstack / scanframeworker walk them
  (stkframe.getStackMap): the locals pointer map below varp, the args map at argp,
  both at the PCDATA_StackMapIndex of the frame's continuation pc (the return address
  less one for callers; -1 read as 0), the frame's stack objects
  (FUNCDATA_StackObjects, their pointer mask at moduledata.rodata + gcdataoff) scanned
  when a pointer on the stack reaches them, asynchronously preempted frames and their
  callers conservatively; g.sched.ctxt, the defer chain (fn, link, heap records) and
  g._panic as scanstack adds them. Pointers into the goroutine's own stack are not
  heap pointers and are dropped (they only reach stack objects);
- special_roots: finalizer specials (the fn word, and the pointer words of the object
  it is set on, not the object itself), cleanups (Go 1.24+) and weak handles
  (markrootSpans), from each in-use span's specials list.

The physical frames come from traceback._unwind (the one unwinder with fp/sp per
frame). Goroutines repeat a few stacks by the thousand: the goroutines with the same
start (pc, stack depth) whose return-address slots hold the same words share one
"recipe" (where, relative to sp, each pointer slot of each frame lies), checked word
by word; their slots are then read as numpy columns. Pure (no gdb), bounded, and
every problem is one line in .errors with the rest of the result kept.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..binary.pclntab import PCDATA_StackMapIndex, injected_functions
from ..errors import DecodeError
from .gtable import core_words, read_words, slot_words
from .rtypes import read_modules

FUNCDATA_ArgsPointerMaps = 0
FUNCDATA_LocalsPointerMaps = 1
FUNCDATA_StackObjects = 2
ARGS_SIZE_UNKNOWN = -0x80000000      # abi.ArgsSizeUnknown

MAX_MODULES = 64
MAX_GLOBAL_BYTES = 1 << 30           # data + bss of one module
MAX_STACKMAP_BITS = 1 << 20
MAX_STACK_OBJECTS = 1 << 12           # records of one function
MAX_RECIPES = 16                      # recipes per (pc, depth) group, as traceback's
MAX_DEFERS = 1 << 12                  # defer records of one goroutine
MAX_SPECIALS = 1 << 16                # specials of one span
MAX_ERRORS = 20
ROW_CHUNK = 1 << 15                   # goroutines of one recipe read together

_u64 = struct.Struct("<Q").unpack_from
_i32x2 = struct.Struct("<ii").unpack_from
_REC = struct.Struct("<iiiI")          # stackObjectRecord: off, size, ptrdata, gcdataoff


@dataclass(slots=True)
class Root:
    kind: str                      # "global" | "stack" | "finalizer" | "other"
    name: str                      # global: its symbol; stack: the frame's function
    goid: Optional[int] = None     # stack roots: the goroutine
    variable: Optional[str] = None  # stack roots: the DWARF name at that frame slot
    type_name: Optional[str] = None  # the global's or variable's Go type, where known


class RootSet:
    """Pointer words found at roots, columnar.

    roots: the Root of each index (a sequence; stack roots are made on demand from
    columns). value: each non-zero pointer word; root: its Root's index; offset: the
    word's offset inside its global or frame variable (for a frame word DWARF does not
    name: its offset from the frame's CFA, negative for locals); addr: where the word
    lies. root_goid: per Root, its goroutine (-1 for non-stack roots)."""

    def __init__(self, roots=None, value=None, root=None, offset=None, addr=None,
                 errors=None, root_goid=None):
        self.roots = roots if roots is not None else []
        self.value = value if value is not None else np.zeros(0, np.uint64)
        self.root = root if root is not None else np.zeros(0, np.int32)
        self.offset = offset if offset is not None else np.zeros(0, np.int64)
        self.addr = addr if addr is not None else np.zeros(0, np.uint64)
        self.errors = errors if errors is not None else []
        if root_goid is None:
            root_goid = np.array([-1 if r.goid is None else r.goid for r in self.roots],
                                 dtype=np.int64)
        self.root_goid = root_goid

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return (f"RootSet({len(self.roots)} roots, {len(self.value)} words, "
                f"{len(self.errors)} errors)")


def merge(*sets: RootSet) -> RootSet:
    """One RootSet of several (root indices renumbered; stack roots materialised)."""
    roots, vals, idx, offs, addrs, errs, goids = [], [], [], [], [], [], []
    base = 0
    for s in sets:
        roots.extend(s.roots)
        vals.append(s.value)
        idx.append(s.root.astype(np.int64) + base)
        offs.append(s.offset)
        addrs.append(s.addr)
        errs.extend(s.errors)
        goids.append(s.root_goid)
        base += len(s.roots)
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)
    return RootSet(roots, cat(vals, np.uint64), cat(idx, np.int32), cat(offs, np.int64),
                   cat(addrs, np.uint64), errs, cat(goids, np.int64))


class _Errors(list):
    """At most MAX_ERRORS distinct lines, then one line for the rest."""

    def __init__(self):
        super().__init__()
        self._seen: set = set()
        self._more = 0

    def add(self, line: str) -> None:
        if line in self._seen:
            return
        self._seen.add(line)
        if len(self) < MAX_ERRORS:
            self.append(line)
        else:
            self._more += 1

    def done(self) -> list:
        out = list(self)
        if self._more:
            out.append(f"... and {self._more} more problems of the same kinds")
        return out


# --- modules ---------------------------------------------------------------------------
def modules(rt, errors: list) -> list:
    """Each module's moduledata fields (rtypes.read_modules), for a binary whose
    moduledata has the GC's data/bss masks."""
    fl = rt.layout.fields("runtime.moduledata", ("data", "gcdatamask.n"))
    if fl is None or not fl.has("data") or not fl.has("gcdatamask.n"):
        errors.append("the binary has no runtime.moduledata with gcdatamask: global roots not read")
        return []
    return read_modules(rt, errors)


def _bias(rt) -> int:
    """Live address less file address (a PIE's load bias), 0 when unknown."""
    def bias():
        try:
            live = rt.target.symbol_address("runtime.firstmoduledata")
            sym = rt.elf.symbol("runtime.firstmoduledata") if rt.elf is not None else None
            if live and sym:
                return live - sym[0]
        except DecodeError:
            pass
        return 0
    return rt.per_binary("heaproots.bias", bias)


def _static_read(rt, addr: int, n: int) -> bytes:
    """n bytes of read-only data at live address addr: from the executable (rodata is
    not always in a core), else from memory."""
    if rt.elf is not None:
        try:
            data = rt.elf.read_vaddr(addr - _bias(rt), n)
            if data is not None and len(data) == n:
                return bytes(data)
        except DecodeError:
            pass
    return bytes(rt.mem.read(addr, n))


def _read_region(rt, addr: int, size: int, what: str, errors: list) -> np.ndarray:
    """size bytes at addr as uint8, in one read, else 64 KiB pieces (unreadable ones
    zero, one line for them)."""
    try:
        return np.frombuffer(bytes(rt.mem.read(addr, size)), dtype=np.uint8)
    except DecodeError:
        pass
    out = np.zeros(size, dtype=np.uint8)
    step, bad = 1 << 16, 0
    ranges = [(a, min(step, addr + size - a)) for a in range(addr, addr + size, step)]
    for (a, n), got in zip(ranges, rt.mem.gather(ranges)):
        if got.__class__ is not tuple:
            bad += n
            continue
        buf, off = got
        out[a - addr:a - addr + n] = np.frombuffer(bytes(buf[off:off + n]), dtype=np.uint8)
    if bad:
        errors.append(f"{what}: {bad} of {size} bytes at {addr:#x} unreadable (read as zero)")
    return out


# --- globals ---------------------------------------------------------------------------
def global_roots(rt) -> RootSet:
    """The pointer words of every module's data and bss that the GC scans (markrootBlock
    through gcdatamask / gcbssmask), one Root per ELF symbol holding them."""
    errors: list = []
    words_v, words_a = [], []
    for md in modules(rt, errors):
        for sec, lo, hi, mask_n, mask_p in (("data", "data", "edata", "gcdatamask.n",
                                             "gcdatamask.bytedata"),
                                            ("bss", "bss", "ebss", "gcbssmask.n",
                                             "gcbssmask.bytedata")):
            start, end = md.get(lo) or 0, md.get(hi) or 0
            nbits, bitp = md.get(mask_n) or 0, md.get(mask_p) or 0
            if end == start:
                continue      # (an empty section)
            size = end - start
            if size <= 0 or size > MAX_GLOBAL_BYTES or start % 8:
                errors.append(f"module at {md['addr']:#x}: implausible {sec} "
                              f"[{start:#x}, {end:#x})")
                continue
            nwords = size // 8
            if nbits <= 0 or not bitp:
                errors.append(f"module at {md['addr']:#x}: no {sec} pointer mask "
                              f"(n={nbits}): its {sec} not scanned")
                continue
            if nbits > nwords:
                errors.append(f"module at {md['addr']:#x}: {sec} pointer mask of {nbits} bits "
                              f"for {nwords} words: cut to the {sec}")
                nbits = nwords
            try:
                mask = np.frombuffer(bytes(rt.mem.read(bitp, (nbits + 7) // 8)), dtype=np.uint8)
            except DecodeError as e:
                errors.append(f"module at {md['addr']:#x}: {sec} pointer mask unreadable: {e}")
                continue
            bits = np.unpackbits(mask, bitorder="little")[:nbits].astype(bool)
            raw = _read_region(rt, start, nbits * 8, f"{sec} of module at {md['addr']:#x}",
                               errors)
            w = raw[:nbits * 8].view("<u8")
            sel = np.flatnonzero(bits & (w != 0))
            words_v.append(w[sel])
            words_a.append(np.uint64(start) + sel.astype(np.uint64) * np.uint64(8))
    value = np.concatenate(words_v) if words_v else np.zeros(0, np.uint64)
    addr = np.concatenate(words_a) if words_a else np.zeros(0, np.uint64)
    order = np.argsort(addr, kind="stable")
    value, addr = value[order], addr[order]
    roots, root_idx, offset = _by_symbol(rt, addr, errors)
    return RootSet(roots, value, root_idx, offset, addr, errors,
                   np.full(len(roots), -1, dtype=np.int64))


def _by_symbol(rt, addr: np.ndarray, errors: list) -> tuple:
    """(roots, root index per word, offset in its symbol) of sorted addresses."""
    roots: list = []
    idx = np.zeros(len(addr), dtype=np.int32)
    off = np.zeros(len(addr), dtype=np.int64)
    if not len(addr):
        return roots, idx, off
    elf, bias = rt.elf, _bias(rt)
    by_name: dict = {}
    cur_end, cur_root, cur_start = -1, -1, 0
    types: dict = {}
    for i, a in enumerate(addr.tolist()):
        if a >= cur_end:
            hit = elf.symbol_at(a - bias) if elf is not None else None
            if hit is not None:
                name, o = hit
                start = a - o
                sym = elf.symbol(name)
                cur_end = start + max(sym[1] if sym else 8, 8)
            else:
                name, start, cur_end = f"{a:#x}", a, a + 8
            cur_start = start
            cur_root = by_name.get(name)
            if cur_root is None:
                cur_root = by_name[name] = len(roots)
                roots.append(Root("global", name, None, None, _type_name(rt, name, types)))
        idx[i] = cur_root
        off[i] = a - cur_start
    return roots, idx, off


def _type_name(rt, name: str, cache: dict) -> Optional[str]:
    if name.startswith("0x") or name.startswith("go:") or name.startswith("type:"):
        return None
    try:
        t = rt.target.symbol_type(name)
    except Exception:   # a debugger's lookup of an odd symbol name: no type, nothing more
        return None
    return getattr(t, "name", None) or None


# --- stacks ----------------------------------------------------------------------------
@dataclass(slots=True)
class _Slot:
    """One word a frame scan reads: off from the goroutine's sp, the template (frame +
    variable) it belongs to, its offset in that variable (or from the frame's CFA),
    kind: 0 precise, 1 conservative, 2 + j: stack object j's pointer word."""
    off: int
    tmpl: int
    varoff: int
    kind: int


class _Recipe:
    """How one stack shape is scanned: the slots (relative to sp), the stack objects
    (lo, hi relative to sp), and the return-address slots that identify the shape."""

    __slots__ = ("slots", "objects", "check", "want", "error")

    def __init__(self):
        self.slots: list = []
        self.objects: list = []     # (lo, hi) relative to sp
        self.check = None           # struct.Struct of the return-address slots
        self.want: tuple = ()
        self.error: Optional[str] = None


class _FuncInfo:
    """What getStackMap needs of one function, read once from the binary."""

    __slots__ = ("locals", "args", "objects", "args_words", "error")

    def __init__(self):
        self.locals = None   # (n, nbit, bytes) or None
        self.args = None
        self.objects = ()    # (off, size, ptr word indices as a tuple)
        self.args_words = 0
        self.error: Optional[str] = None


class _StackScanner:
    def __init__(self, rt, errors: _Errors, names: bool = True):
        self.rt, self.errors = rt, errors
        self.use_names = names
        self.tab = rt.pclntab
        self.mem = rt.mem
        self.injected = injected_functions(rt.layout.go_version)
        # what is read of the binary (per function stack maps, DWARF names) is kept for
        # the life of the GoRuntime: it does not change when the target moves
        self.funcs, self.names = rt.per_binary("heaproots.static", lambda: ({}, _FrameNames(rt)))
        self.templates: list = []           # (function, variable, type_name)
        self._tmpl_ids: dict = {}
        mods = modules(rt, [])
        self.rodata = [(m.get("gofunc") or 0, m.get("epclntab") or m.get("end") or 0,
                        m.get("rodata") or 0) for m in mods]

    # -- per function
    def _map_slots(self, rec, fn, name: str, which: str, sm, pcdata: int, continpc: int,
                   start_of, fsp: int, hi: int, sp: int, fp: int, npc: int) -> None:
        """The words a frame's locals or args stack map marks as pointers, as the recipe's
        slots; start_of(nbits): the address of the map's first word."""
        if sm[0] == "bad":
            self.errors.add(f"{name}: bad {which} stack map (n={sm[1]}, nbit={sm[2]})")
            return
        if sm[1] <= 0:
            return
        if not 0 <= pcdata < sm[0]:
            self.errors.add(f"{name}: stack map index {pcdata} of {sm[0]} at "
                            f"{continpc:#x} ({which} not scanned)")
            return
        index = FUNCDATA_LocalsPointerMaps if which == "locals" else FUNCDATA_ArgsPointerMaps
        bits = self._bitmap(fn, index, sm, pcdata)
        if bits is None:
            self.errors.add(f"{name}: {which} stack map unreadable")
            return
        start = start_of(len(bits))
        low = fsp if which == "locals" else -1
        for i in np.flatnonzero(bits).tolist():
            a = start + 8 * i
            if low <= a and a + 8 <= hi:
                t, vo = self.template(name, fn.entry, a - fp, npc)
                rec.slots.append(_Slot(a - sp, t, vo, 0))

    def _stackmap(self, fn, index: int):
        raw = self.tab.funcdata_bytes(fn, index, 8)
        if raw is None or len(raw) < 8:
            return None
        n, nbit = _i32x2(raw)
        if n <= 0 or nbit < 0 or nbit > MAX_STACKMAP_BITS or n > MAX_STACKMAP_BITS:
            return (n, nbit, b"") if n > 0 and nbit == 0 else ("bad", n, nbit)
        return (n, nbit, None)

    def _bitmap(self, fn, index: int, sm, which: int) -> Optional[np.ndarray]:
        n, nbit, _ = sm
        if nbit == 0:
            return np.zeros(0, dtype=bool)
        nb = (nbit + 7) >> 3
        raw = self.tab.funcdata_bytes(fn, index, 8 + (which + 1) * nb)
        if raw is None or len(raw) < 8 + (which + 1) * nb:
            return None
        b = np.frombuffer(raw[8 + which * nb:8 + (which + 1) * nb], dtype=np.uint8)
        return np.unpackbits(b, bitorder="little")[:nbit].astype(bool)

    def func_info(self, fn) -> _FuncInfo:
        hit = self.funcs.get(fn.entry)
        if hit is not None:
            return hit
        fi = _FuncInfo()
        try:
            fi.locals = self._stackmap(fn, FUNCDATA_LocalsPointerMaps)
            fi.args_words = fn.args // 8 if fn.args != ARGS_SIZE_UNKNOWN and fn.args > 0 else 0
            if fn.args == ARGS_SIZE_UNKNOWN:
                # reflect.makeFuncStub / methodValueCall: their maps come from a
                # reflect.methodValue at run time (not read: their args are skipped)
                fi.error = f"{fn.name}: argument map made at run time (not scanned)"
            fi.args = self._stackmap(fn, FUNCDATA_ArgsPointerMaps) if fi.args_words else None
            fi.objects = self._objects(fn)
        except DecodeError as e:
            fi.error = f"{fn.name}: {e}"
        if len(self.funcs) > 1 << 16:
            self.funcs.clear()
        self.funcs[fn.entry] = fi
        return fi

    def _objects(self, fn) -> tuple:
        raw = self.tab.funcdata_bytes(fn, FUNCDATA_StackObjects, 8)
        if raw is None or len(raw) < 8:
            return ()
        n = _u64(raw)[0]
        if n == 0:
            return ()
        if n > MAX_STACK_OBJECTS:
            raise DecodeError(f"implausible {n} stack object records")
        raw = self.tab.funcdata_bytes(fn, FUNCDATA_StackObjects, 8 + 16 * n)
        if raw is None or len(raw) < 8 + 16 * n:
            raise DecodeError("stack object records cut short")
        addr = self.tab.funcdata_addr(fn, FUNCDATA_StackObjects) + _bias(self.rt)
        rodata = next((r for lo, hi, r in self.rodata if lo <= addr < hi), None)
        if rodata is None and self.rodata:
            rodata = self.rodata[0][2]
        out = []
        for i in range(n):
            off, size, ptrdata, gcoff = _REC.unpack_from(raw, 8 + 16 * i)
            if size <= 0 or size > 1 << 24:
                raise DecodeError(f"stack object {i} of implausible size {size}")
            if ptrdata < 0:
                # Go 1.22/1.23: a GC program (objects this large on a stack are rare);
                # its words are scanned as they might all be pointers
                words = tuple(range(min(-ptrdata, size) // 8))
            else:
                nw = min(ptrdata, size) // 8
                mask = _static_read(self.rt, rodata + gcoff, (nw + 7) // 8) if nw else b""
                bits = np.unpackbits(np.frombuffer(mask, dtype=np.uint8),
                                     bitorder="little")[:nw]
                words = tuple(np.flatnonzero(bits).tolist())
            out.append((off, size, words))
        return tuple(out)

    def template(self, function: str, fn_entry: int, cfa_off: int, pc: int) -> tuple:
        """(template id, offset in it) of the frame word at CFA + cfa_off, at pc."""
        var = self.names.variable(fn_entry, cfa_off, function, pc) if self.use_names else None
        if var is None:
            key = (function, None)
            base = 0
        else:
            name, type_name, start = var
            key = (function, name, type_name, start)
            base = start
        t = self._tmpl_ids.get((fn_entry,) + key)
        if t is None:
            t = self._tmpl_ids[(fn_entry,) + key] = len(self.templates)
            self.templates.append((function, None if var is None else var[0],
                                   None if var is None else var[1]))
        return t, cfa_off - base

    # -- per stack shape
    def recipe(self, pc: int, sp: int, lo: int, hi: int, trap: bool) -> _Recipe:
        from .traceback import _unwind
        rec = _Recipe()
        try:
            phys, err, slots = _unwind(self.tab, self.mem, pc, sp, lo, hi, trap, self.injected)
        except DecodeError as e:
            phys, err, slots = [], str(e), []
        rec.error = err
        if slots and all(a[0] < b[0] for a, b in zip(slots, slots[1:])):
            fmt, pos = "<", 0
            for off, _ in slots:
                fmt += f"{off - pos}xQ" if off > pos else "Q"
                pos = off + 8
            rec.check = struct.Struct(fmt)
            rec.want = tuple(v for _, v in slots)
        conservative = trap     # a thread stopped anywhere: no stack map holds there
        callee = ""
        for k, (fn, fpc, _sym, fsp, fp) in enumerate(phys):
            name = fn.name
            varp = fp - 8
            if varp > fsp:
                varp -= 8        # the saved frame pointer (framepointer_enabled)
            argp = fp
            is_async = name in ("runtime.asyncPreempt", "runtime.debugCallV2")
            fi = self.func_info(fn)
            npc = fpc
            if conservative or is_async:
                # scanConservative of the frame's locals and outgoing area, and its args
                for a in range(fsp, varp, 8):
                    t, vo = self.template(name, fn.entry, a - fp, npc)
                    rec.slots.append(_Slot(a - sp, t, vo, 1))
                for i in range(fi.args_words):
                    a = argp + 8 * i
                    if a + 8 <= hi:
                        t, vo = self.template(name, fn.entry, a - fp, npc)
                        rec.slots.append(_Slot(a - sp, t, vo, 1))
                conservative = is_async
                callee = name
                continue
            continpc = fpc
            if callee == "runtime.sigpanic":
                continpc = fn.entry + fn.deferreturn + 1 if fn.deferreturn else 0
            callee = name
            if not continpc:
                continue          # a dead frame: nothing live in it
            pcdata = -1
            if continpc != fn.entry:
                pcdata = self.tab.pcdata(fn, PCDATA_StackMapIndex, continpc - 1)
            if pcdata == -1:
                pcdata = 0
            npc = continpc - 1 if continpc != fn.entry else continpc
            if fi.error:
                self.errors.add(fi.error)
            # locals: nbit words below varp; args at argp
            if varp - fsp > 0 and fi.locals is not None:
                self._map_slots(rec, fn, name, "locals", fi.locals, pcdata, continpc,
                                lambda n: varp - 8 * n, fsp, hi, sp, fp, npc)
            elif varp - fsp > 0 and fi.locals is None and fi.error is None:
                self.errors.add(f"{name}: frame without a locals stack map (not scanned)")
            if fi.args_words and fi.args is not None:
                self._map_slots(rec, fn, name, "args", fi.args, pcdata, continpc,
                                lambda n: argp, fsp, hi, sp, fp, npc)
            # stack objects: scanned when a pointer reaches them
            for off, size, words in fi.objects:
                obj = (varp if off < 0 else argp) + off
                if obj < fsp or obj + size > hi or obj % 8:
                    continue      # not allocated in the frame yet
                j = len(rec.objects)
                rec.objects.append((obj - sp, obj + size - sp))
                for w in words:
                    a = obj + 8 * w
                    t, vo = self.template(name, fn.entry, a - fp, npc)
                    rec.slots.append(_Slot(a - sp, t, vo, 2 + j))
        return rec


# --- frame variable names from DWARF ------------------------------------------------------
_DW_OP_fbreg, _DW_OP_cfa, _DW_OP_consts, _DW_OP_plus, _DW_OP_piece = 0x91, 0x9c, 0x11, 0x22, 0x93
_DW_OP_plus_uconst, _DW_OP_addr = 0x23, 0x03


def _leb(b, i: int, signed: bool) -> tuple:
    v = shift = 0
    for _ in range(10):
        x = b[i]
        i += 1
        v |= (x & 0x7f) << shift
        shift += 7
        if x < 0x80:
            if signed and x & 0x40:
                v -= 1 << shift
            return v, i
    raise ValueError("LEB128 too long")


def frame_pieces(expr) -> list:
    """(CFA offset, size, offset in the variable) of each piece of a DWARF location
    expression that lies in the frame (frame base = the CFA, as Go's subprograms say);
    pieces in registers are left out. [] for anything else."""
    b = bytes(expr)
    out, i, at, varoff = [], 0, None, 0
    try:
        for _ in range(64):
            if i >= len(b):
                break
            op = b[i]
            i += 1
            if op == _DW_OP_fbreg:
                at, i = _leb(b, i, True)
            elif op == _DW_OP_cfa:
                at = 0
            elif op == _DW_OP_consts and at is not None:
                k, i = _leb(b, i, True)
                if i < len(b) and b[i] == _DW_OP_plus:
                    i += 1
                    at += k
                else:
                    return []
            elif op == _DW_OP_plus_uconst and at is not None:
                k, i = _leb(b, i, False)
                at += k
            elif op == _DW_OP_piece:
                size, i = _leb(b, i, False)
                if at is not None:
                    out.append((at, size, varoff))
                varoff += size
                at = None
            elif 0x50 <= op <= 0x6f:      # DW_OP_regN: this piece is in a register
                at = None
            elif op == 0x90:               # DW_OP_regx
                _, i = _leb(b, i, False)
                at = None
            else:
                return out
    except (ValueError, IndexError):
        return out
    if at is not None:
        out.append((at, None, varoff))
    return out


class _FrameNames:
    """DWARF names of frame slots: (function entry, CFA offset) -> (variable, type name,
    the variable's CFA offset). Each package's compile units are read once, when a frame
    of one of its functions is first named; a binary without DWARF names nothing."""

    MAX_DIES = 1 << 20

    def __init__(self, rt):
        self.rt = rt
        self._dwarf = None
        self._tried = False
        self._cus: Optional[dict] = None        # package -> [CU]
        self._subs: dict = {}                   # package -> {low_pc: DIE offset}
        self._vars: dict = {}                   # entry -> [(lo, hi, name, type, start)]

    def _open(self):
        if not self._tried:
            self._tried = True
            try:
                from elftools.elf.elffile import ELFFile
                path = self.rt.target.executable()
                fh = open(path, "rb")
                elf = ELFFile(fh)
                if elf.has_dwarf_info():
                    self._dwarf = elf.get_dwarf_info()
                    self._fh = fh
                else:
                    fh.close()
            except Exception:   # no pyelftools, no file, bad DWARF: names are optional
                self._dwarf = None
        return self._dwarf

    def _package_subprograms(self, pkg: str) -> dict:
        subs = self._subs.get(pkg)
        if subs is not None:
            return subs
        subs = self._subs[pkg] = {}
        d = self._open()
        if d is None:
            return subs
        try:
            if self._cus is None:
                self._cus = {}
                for cu in d.iter_CUs():
                    a = cu.get_top_DIE().attributes.get("DW_AT_name")
                    name = a.value.decode("utf-8", "replace") if a is not None else ""
                    self._cus.setdefault(name, []).append(cu)
            n = 0
            for cu in self._cus.get(pkg, ()):
                for die in cu.get_top_DIE().iter_children():
                    n += 1
                    if n > self.MAX_DIES:
                        break
                    if die.tag == "DW_TAG_subprogram":
                        lo = die.attributes.get("DW_AT_low_pc")
                        if lo is not None:
                            subs[lo.value] = die
        except Exception:   # malformed DWARF: fewer names, never a failure
            pass
        return subs

    def _function_vars(self, entry: int, name: str) -> list:
        hit = self._vars.get(entry)
        if hit is not None:
            return hit
        out = self._vars[entry] = []
        pkg = _package_of(name)
        if pkg is None:
            return out
        die = self._package_subprograms(pkg).get(entry - _bias(self.rt))
        if die is None:
            return out
        d = self._dwarf
        try:
            todo, steps = [die], 0
            while todo and steps < 4096:
                cur = todo.pop()
                for c in cur.iter_children():
                    steps += 1
                    if c.tag == "DW_TAG_lexical_block":
                        todo.append(c)
                        continue
                    if c.tag not in ("DW_TAG_variable", "DW_TAG_formal_parameter"):
                        continue
                    n = c.attributes.get("DW_AT_name")
                    loc = c.attributes.get("DW_AT_location")
                    if n is None or loc is None:
                        continue
                    vname = n.value.decode("utf-8", "replace")
                    tname, tsize, ptrs = _die_type(c)
                    ranges = []    # (lo pc, hi pc or None for all, expression)
                    if loc.form == "DW_FORM_exprloc" or loc.form.startswith("DW_FORM_block"):
                        ranges.append((0, None, loc.value))
                    else:
                        ll = d.location_lists()
                        base = die.attributes["DW_AT_low_pc"].value
                        if ll is not None:
                            for e in ll.get_location_list_at_offset(loc.value, die=c)[:256]:
                                if hasattr(e, "base_address"):
                                    base = e.base_address
                                    continue
                                expr = getattr(e, "loc_expr", None)
                                if expr is None:
                                    continue
                                if getattr(e, "is_absolute", False):
                                    ranges.append((e.begin_offset, e.end_offset, expr))
                                else:
                                    ranges.append((base + e.begin_offset, base + e.end_offset,
                                                   expr))
                    for plo, phi, expr in ranges:
                        for at, size, varoff in frame_pieces(expr):
                            size = size or tsize or 8
                            out.append((plo, phi, at, at + size, vname, tname, at - varoff, ptrs))
        except Exception:   # malformed DWARF: fewer names
            pass
        return out

    def variable(self, entry: int, cfa_off: int, name: str, pc: int) -> Optional[tuple]:
        """(variable, type name, its CFA offset) of the frame word at CFA + cfa_off of
        function name at pc (the pc its stack map is read at), or None."""
        fpc = pc - _bias(self.rt)
        for plo, phi, lo, hi, vname, tname, start, ptrs in self._function_vars(entry, name):
            if lo <= cfa_off < hi and (phi is None or plo <= fpc < phi) \
                    and (ptrs is None or cfa_off - start in ptrs):
                return vname, tname, start
        return None


def _die_type(die) -> tuple:
    """(type name, size, offsets of its pointer words or None when not worked out)."""
    try:
        t = die.get_DIE_from_attribute("DW_AT_type")
    except Exception:   # no type attribute
        return None, None, None
    n = t.attributes.get("DW_AT_name")
    s = t.attributes.get("DW_AT_byte_size")
    budget = [256]
    try:
        ptrs = _ptr_offsets(t, 0, budget)
    except Exception:   # an odd type DIE: any word of it may be named
        ptrs = None
    return (n.value.decode("utf-8", "replace") if n is not None else None,
            s.value if s is not None else None,
            frozenset(ptrs) if ptrs is not None else None)


def _ptr_offsets(t, depth: int, budget: list) -> Optional[set]:
    """Offsets of the pointer-shaped words of a DWARF type (Go's: pointers, maps,
    channels, funcs are pointers; strings, slices and interfaces are structs of them),
    None when unknown or too big to work out."""
    for _ in range(8):
        if t.tag != "DW_TAG_typedef":
            break
        t = t.get_DIE_from_attribute("DW_AT_type")
    budget[0] -= 1
    if budget[0] < 0 or depth > 6:
        return None
    tag = t.tag
    if tag in ("DW_TAG_pointer_type", "DW_TAG_subroutine_type"):
        return {0}
    if tag in ("DW_TAG_base_type",):
        return set()
    if tag == "DW_TAG_structure_type":
        out = set()
        for m in t.iter_children():
            if m.tag != "DW_TAG_member":
                continue
            loc = m.attributes.get("DW_AT_data_member_location")
            if loc is None or not isinstance(loc.value, int):
                return None
            sub = _ptr_offsets(m.get_DIE_from_attribute("DW_AT_type"), depth + 1, budget)
            if sub is None:
                return None
            out.update(loc.value + o for o in sub)
        return out
    if tag == "DW_TAG_array_type":
        return None   # (element counts need the subrange: any word may be named)
    return None


def _package_of(name: str) -> Optional[str]:
    """The import path of a function's package: runtime.gopark -> runtime,
    net/http.(*conn).serve -> net/http, main.main.func1 -> main."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return name[:dot] if dot > 0 else None


# --- the stack roots proper ------------------------------------------------------------
class StackRoots(Sequence):
    """The Roots of stack_roots, made on demand from columns: each is a goroutine and a
    template (function, variable, type name)."""

    def __init__(self, templates: list, goid: np.ndarray, tmpl: np.ndarray):
        self.templates = templates
        self.goid = goid
        self.tmpl = tmpl

    def __len__(self) -> int:
        return len(self.goid)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        function, variable, type_name = self.templates[int(self.tmpl[i])]
        return Root("stack", function, int(self.goid[i]), variable, type_name)

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]

    def __add__(self, other):
        return list(self) + list(other)

    def __radd__(self, other):
        return list(other) + list(self)


def _g_rows(rt, goroutines) -> tuple:
    """(goid, g addr, pc, sp, lo, hi, trap) as numpy columns of the goroutines a GC
    scans (dead ones and ones without a saved pc left out)."""
    st = rt.layout.status
    dead, running = st.dead_like, st.running
    if hasattr(goroutines, "specials") and hasattr(goroutines, "col") \
            and hasattr(goroutines, "shapes"):
        t = goroutines
        n = len(t)
        goid = t.col("goid").astype(np.int64)
        addr = t.col("addr").astype(np.uint64)
        pc = t.col("sched_pc").astype(np.uint64)
        sp = t.col("sched_sp").astype(np.uint64)
        lo = t.col("stack_lo").astype(np.uint64)
        hi = t.col("stack_hi").astype(np.uint64)
        codes = (np.array([s[0] for s in t.shapes], dtype=np.int64)[t.shapes_of()]
                 if len(t.shapes) else np.zeros(n, np.int64))
        trap = np.zeros(n, dtype=bool)
        if t.specials:
            rows = t.base_rows()
            pos = np.full(t.base.n, -1, dtype=np.int64)
            pos[rows] = np.arange(len(rows))
            for r, g in t.specials.items():
                k = int(pos[r])
                if k < 0:
                    continue
                codes[k] = g.status_code
                pc[k], sp[k], lo[k], hi[k] = g.pc, g.sp, g.stack_lo, g.stack_hi
                trap[k] = g.status_code == running and g.thread is not None
    else:
        gs = list(goroutines)
        n = len(gs)
        goid = np.array([g.id for g in gs], dtype=np.int64)
        addr = np.array([getattr(g, "addr", 0) for g in gs], dtype=np.uint64)
        pc = np.array([g.pc for g in gs], dtype=np.uint64)
        sp = np.array([g.sp for g in gs], dtype=np.uint64)
        lo = np.array([g.stack_lo for g in gs], dtype=np.uint64)
        hi = np.array([g.stack_hi for g in gs], dtype=np.uint64)
        codes = np.array([g.status_code for g in gs], dtype=np.int64)
        trap = np.array([g.status_code == running and getattr(g, "thread", None) is not None
                         for g in gs], dtype=bool)
    keep = (codes >= 0) & (pc != 0) & ~np.isin(codes, np.array(sorted(dead), dtype=np.int64))
    return tuple(c[keep] for c in (goid, addr, pc, sp, lo, hi, trap))


_EXTRA_NAMES = ("(g.sched.ctxt)", "(defer record)", "(panic record)")


def _extras(rt, addr: np.ndarray, lo: np.ndarray, hi: np.ndarray, errors: _Errors) -> dict:
    """row -> [(value, extra kind)]: what scanstack adds besides frames: g.sched.ctxt,
    each defer record's fn and link (and a heap record itself), g._panic."""
    out: dict = {}
    gf = rt.layout.fields("runtime.g", ("sched.ctxt", "_defer", "_panic"))
    if gf is None or not len(addr):
        return out
    cw = core_words(rt.mem)
    cols = {}
    for path in ("sched.ctxt", "_defer", "_panic"):
        off = gf.offset(path)
        if off is None:
            continue
        w, ok = read_words(rt.mem, addr + np.uint64(off), 8, cw)
        cols[path] = w[:, 0]
    df = rt.layout.fields("runtime._defer", ("fn", "link", "heap"))
    for path, kind in (("sched.ctxt", 0), ("_panic", 2)):
        c = cols.get(path)
        if c is not None:
            for r in np.flatnonzero(c).tolist():
                out.setdefault(r, []).append((int(c[r]), kind))
    c = cols.get("_defer")
    if c is not None:
        for r in np.flatnonzero(c).tolist():
            d, seen = int(c[r]), set()
            for _ in range(MAX_DEFERS):
                if not d or d in seen or df is None:
                    break
                seen.add(d)
                try:
                    rec = df.read(rt.mem, d)
                except DecodeError as e:
                    errors.add(f"a defer record of goroutine row {r}: {e}")
                    break
                if rec.get("fn"):
                    out.setdefault(r, []).append((rec["fn"], 1))
                if rec.get("link"):
                    out.setdefault(r, []).append((rec["link"], 1))
                if rec.get("heap"):
                    out.setdefault(r, []).append((d, 1))
                d = rec.get("link") or 0
    return out


def stack_roots(rt, goroutines, names: bool = True) -> RootSet:
    """The pointer words of every goroutine's stack as scanstack finds them (see the
    module's doc). goroutines: a walk's GoroutineTable (its columns are used) or any
    iterable of Goroutine-like rows (id, addr, pc, sp, stack_lo, stack_hi, status_code,
    thread). names=False: no DWARF read (variable and type_name None, offsets from the
    frame's CFA): the same words, without the first call's naming cost (about 0.6 s
    of 1.0 on a core of 100k goroutines)."""
    errors = _Errors()
    goid, gaddr, pc, sp, lo, hi, trap = _g_rows(rt, goroutines)
    n = len(goid)
    try:
        sc = _StackScanner(rt, errors, names)
    except DecodeError as e:
        return RootSet(errors=[f"stacks not scanned: {e}"])
    extras = _extras(rt, gaddr, lo, hi, errors)
    extra_tmpl = []
    for name in _EXTRA_NAMES:
        extra_tmpl.append(len(sc.templates))
        sc.templates.append((name, None, None))
    mem = rt.mem
    cw = core_words(mem)
    out_row, out_tmpl, out_val, out_off, out_addr = [], [], [], [], []

    # group the goroutines by where their unwind starts, then by recipe
    bad_rows = np.zeros(n, dtype=bool)
    ok_start = (sp >= lo) & (sp < hi) & (hi - sp < np.uint64(1 << 30))
    if not ok_start.all():
        k = int((~ok_start).sum())
        errors.add(f"{k} goroutines: sp outside their stack (not scanned)")
        bad_rows |= ~ok_start
    depth = np.where(ok_start, hi - sp, 0).astype(np.uint64)
    keys = np.stack([pc, depth, trap.astype(np.uint64)], axis=1) if n else \
        np.zeros((0, 3), np.uint64)
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0])) if n else np.zeros(0, np.int64)
    order = order[ok_start[order]]
    if len(order):
        k = keys[order]
        cut = np.flatnonzero(np.any(k[1:] != k[:-1], axis=1)) + 1
        groups = np.split(order, cut)
    else:
        groups = []
    recipes: dict = {}
    for members in groups:
        first = int(members[0])
        key = (int(pc[first]), int(depth[first]), bool(trap[first]))
        todo = members
        for _ in range(MAX_RECIPES + 1):
            if not len(todo):
                break
            cached = recipes.setdefault(key, [])
            matched = np.zeros(len(todo), dtype=bool)
            for rec in cached:
                m = _matches(mem, cw, rec, sp[todo]) & ~matched
                if m.any():
                    _scan(sc, rec, todo[m], goid, sp, lo, hi, extras, out_row, out_tmpl,
                          out_val, out_off, out_addr, cw, errors)
                    matched |= m
            todo = todo[~matched]
            if not len(todo):
                break
            r0 = int(todo[0])
            rec = sc.recipe(int(pc[r0]), int(sp[r0]), int(lo[r0]), int(hi[r0]), bool(trap[r0]))
            if rec.error:
                errors.add(f"goroutine {int(goid[r0])}: {rec.error} (frames past it not scanned)")
            if rec.check is not None and len(cached) < MAX_RECIPES:
                cached.append(rec)
            else:
                _scan(sc, rec, todo[:1], goid, sp, lo, hi, extras, out_row, out_tmpl, out_val,
                      out_off, out_addr, cw, errors)
                todo = todo[1:]
        for r in todo.tolist():   # past MAX_RECIPES shapes at one start: one by one
            rec = sc.recipe(int(pc[r]), int(sp[r]), int(lo[r]), int(hi[r]), bool(trap[r]))
            _scan(sc, rec, np.array([r]), goid, sp, lo, hi, extras, out_row, out_tmpl, out_val,
                  out_off, out_addr, cw, errors)
    # extras of goroutines whose frames could not be scanned
    for r in np.flatnonzero(bad_rows).tolist():
        for v, kind in extras.get(r, ()):
            if not lo[r] <= v < hi[r]:
                out_row.append(np.array([r]))
                out_tmpl.append(np.array([extra_tmpl[kind]]))
                out_val.append(np.array([v], dtype=np.uint64))
                out_off.append(np.zeros(1, np.int64))
                out_addr.append(np.zeros(1, np.uint64))
    cat = lambda xs, dt: np.concatenate(xs).astype(dt, copy=False) if xs else np.zeros(0, dt)
    row, tmpl = cat(out_row, np.int64), cat(out_tmpl, np.int64)
    value, offset, addr = cat(out_val, np.uint64), cat(out_off, np.int64), cat(out_addr, np.uint64)
    ntmpl = max(len(sc.templates), 1)
    ukeys, inv = np.unique(row * ntmpl + tmpl, return_inverse=True)
    root_row, root_tmpl = ukeys // ntmpl, ukeys % ntmpl
    roots = StackRoots(sc.templates, goid[root_row], root_tmpl)
    return RootSet(roots, value, inv.astype(np.int32), offset, addr, errors.done(),
                   goid[root_row].astype(np.int64))


def _matches(mem, cw, rec: _Recipe, sps: np.ndarray) -> np.ndarray:
    """Whether each stack at sps holds the recipe's return addresses."""
    if rec.check is None:
        return np.zeros(len(sps), dtype=bool)
    words = slot_words(rec.check)
    want = np.array(rec.want, dtype=np.uint64)
    if words is not None and len(words) == len(want) and rec.check.size % 8 == 0:
        out = np.zeros(len(sps), dtype=bool)
        for c in range(0, len(sps), ROW_CHUNK):
            top, ok = read_words(mem, sps[c:c + ROW_CHUNK], rec.check.size, cw, keep=words)
            out[c:c + ROW_CHUNK] = np.all(top == want[None, :], axis=1) & ok
        return out
    buf, errs = mem.gather_fixed(sps.tolist(), rec.check.size)
    return np.array([w == rec.want and j not in errs
                     for j, w in enumerate(rec.check.iter_unpack(buf))], dtype=bool)


def _scan(sc, rec: _Recipe, rows: np.ndarray, goid, sp, lo, hi, extras: dict, out_row,
          out_tmpl, out_val, out_off, out_addr, cw, errors: _Errors) -> None:
    """The pointer words of the goroutines rows, which share recipe rec."""
    slots = rec.slots
    if slots:
        offs = np.array([s.off for s in slots], dtype=np.int64)
        good = (offs % 8 == 0) & (offs >= 0)
        offs_ok = offs[good]
        kinds = np.array([s.kind for s in slots], dtype=np.int64)[good]
        tmpls = np.array([s.tmpl for s in slots], dtype=np.int64)[good]
        varoffs = np.array([s.varoff for s in slots], dtype=np.int64)[good]
        size = int(offs_ok.max()) + 8 if len(offs_ok) else 0
    else:
        size = 0
    objs = rec.objects
    for c in range(0, len(rows), ROW_CHUNK):
        R = rows[c:c + ROW_CHUNK]
        m = len(R)
        S, L, H = sp[R], lo[R], hi[R]
        ex = [extras.get(int(r), ()) for r in R.tolist()] if extras else [()] * m
        if size:
            W, ok = read_words(sc.mem, S, size, cw, keep=offs_ok // 8)
            if not ok.all():
                errors.add(f"{int((~ok).sum())} goroutines: stack words unreadable (not scanned)")
            instack = (W >= L[:, None]) & (W < H[:, None])
            active = np.broadcast_to(kinds < 2, W.shape).copy()
            active &= ok[:, None]
            if objs:
                rel = (W - S[:, None]).view(np.int64)
                reached = np.zeros((m, len(objs)), dtype=bool)
                # pointers from the defer chain, ctxt and _panic into the stack reach objects too
                for i, items in enumerate(ex):
                    for v, _k in items:
                        if L[i] <= v < H[i]:
                            d = v - int(S[i])
                            for j, (olo, ohi) in enumerate(objs):
                                if olo <= d < ohi:
                                    reached[i, j] = True
                obj_cols = [np.flatnonzero(kinds == 2 + j) for j in range(len(objs))]
                for j in range(len(objs)):
                    if reached[:, j].any():
                        active[:, obj_cols[j]] |= reached[:, j][:, None]
                for _ in range(len(objs) + 1):
                    changed = False
                    cand = active & instack
                    for j, (olo, ohi) in enumerate(objs):
                        hit = np.any(cand & (rel >= olo) & (rel < ohi), axis=1) & ~reached[:, j]
                        if hit.any():
                            reached[:, j] |= hit
                            active[:, obj_cols[j]] |= hit[:, None]
                            changed = True
                    if not changed:
                        break
            mask = active & (W != 0) & ~instack
            ri, ci = np.nonzero(mask)
            if len(ri):
                out_row.append(R[ri])
                out_tmpl.append(tmpls[ci])
                out_val.append(W[ri, ci])
                out_off.append(varoffs[ci])
                out_addr.append(S[ri] + offs_ok[ci].astype(np.uint64))
        # the extras that are heap (not stack) pointers
        for i, items in enumerate(ex):
            for v, k in items:
                if v and not L[i] <= v < H[i]:
                    out_row.append(R[i:i + 1])
                    out_tmpl.append(np.array([k], dtype=np.int64))
                    out_val.append(np.array([v], dtype=np.uint64))
                    out_off.append(np.zeros(1, np.int64))
                    out_addr.append(np.zeros(1, np.uint64))


# --- specials --------------------------------------------------------------------------
MAX_SPANS = 1 << 24                   # 128 GiB of heap in one-page spans
MAX_SPAN_ERRORS = 64                  # unreadable spans or specials before giving up


def _kinds(rt) -> dict:
    """{special kind code: name} of the kinds markrootSpans scans: from the binary's
    DWARF constants; where it has none, by the version (the runtime has no field that
    tells: Go 1.25 put _KindSpecialTinyBlock first and moved the others up)."""
    from ..binary.dwarfconst import int_constant
    out = {}
    for name in ("Finalizer", "Cleanup", "WeakHandle"):
        v = None
        try:
            v = int_constant(rt.elf, "runtime._KindSpecial" + name) if rt.elf is not None else None
        except Exception:   # no DWARF constants: the fallback below
            v = None
        if v is None:
            minor = rt.layout.version_tuple[1] if len(rt.layout.version_tuple) > 1 else 0
            v = {"Finalizer": 2 if minor >= 25 else 1,
                 "Cleanup": 7 if minor >= 25 else (6 if minor == 24 else None),
                 "WeakHandle": 3 if minor >= 25 else (2 if minor == 24 else None)}[name]
        if v is not None:
            out[v] = name
    return out


def _col(mem, cw, addrs: np.ndarray, off: int, size: int) -> tuple:
    """(values, ok): the size-byte (<= 8, not crossing a word) field at off of each struct."""
    base = off & ~7
    w, ok = read_words(mem, addrs + np.uint64(base), 8, cw)
    v = w[:, 0] >> np.uint64(8 * (off - base))
    if size < 8:
        v &= np.uint64((1 << (8 * size)) - 1)
    return v, ok


def special_roots(rt, heap) -> RootSet:
    """The roots markrootSpans finds in the specials of in-use spans: a finalizer's fn
    word and the pointer words of the object it is set on (through heap.pointers; the
    object itself is not a root), a cleanup's function words, a weak handle's handle.
    heap: HeapObjects (duck-typed: locate, pointers), or None for the special words
    alone."""
    errors = _Errors()
    roots: list = []
    vals, idxs, offs, addrs = [], [], [], []
    mem = rt.mem
    sf = rt.layout.fields("runtime.mspan", ("startAddr", "state.s", "specials", "elemsize",
                                            "spanclass"))
    hf = rt.layout.fields("runtime.special", ("next", "offset", "kind"))
    if sf is None or hf is None or not sf.has("specials") or not hf.has("kind"):
        return RootSet(errors=["the binary has no runtime.mspan specials: special roots not read"])
    try:
        mh = rt.global_addr("runtime.mheap_")
        t = rt.target.symbol_type("runtime.mheap_")
        found = t.find("allspans") if t is not None else None
        if found is None:
            raise DecodeError("runtime.mheap_ has no allspans")
        ptr, n = struct.unpack("<QQ", mem.read(mh + found[0], 16))
    except DecodeError as e:
        return RootSet(errors=[f"special roots not read: {e}"])
    if n > MAX_SPANS:
        errors.add(f"mheap_.allspans holds an implausible {n} spans: the first {MAX_SPANS} read")
        n = MAX_SPANS
    try:
        spans = np.frombuffer(bytes(mem.read(ptr, 8 * n)), dtype="<u8") if n else \
            np.zeros(0, np.uint64)
    except DecodeError as e:
        return RootSet(errors=[f"special roots not read: mheap_.allspans ({n} spans): {e}"])
    spans = spans[spans != 0]
    cw = core_words(mem)
    in_use = int(_const(rt, "runtime.mSpanInUse", 1))
    state, ok1 = _col(mem, cw, spans, sf.offset("state.s"), 1)
    specials, ok2 = _col(mem, cw, spans, sf.offset("specials"), 8)
    bad = int((~(ok1 & ok2)).sum())
    if bad:
        errors.add(f"{bad} spans unreadable (their specials not read)")
    sel = np.flatnonzero(ok1 & ok2 & (state == np.uint64(in_use)) & (specials != 0))
    kinds = _kinds(rt)
    types = {name: rt.layout.fields(f"runtime.{tn}", paths) for name, tn, paths in (
        ("Finalizer", "specialfinalizer", ("fn",)),
        ("Cleanup", "specialCleanup", ("fn", "cleanup.call", "cleanup.fn", "cleanup.arg")),
        ("WeakHandle", "specialWeakHandle", ("handle",)))}
    objects = []    # (root index, object address, span noscan)
    failures = 0
    for s in spans[sel].tolist():
        if failures >= MAX_SPAN_ERRORS:
            errors.add(f"more than {MAX_SPAN_ERRORS} spans or specials unreadable: the rest "
                       "not read")
            break
        try:
            span = sf.read(mem, s)
        except DecodeError as e:
            errors.add(f"span at {s:#x}: {e}")
            failures += 1
            continue
        base, esize = span["startAddr"] or 0, span["elemsize"] or 0
        noscan = bool((span["spanclass"] or 0) & 1)
        sp, seen = span["specials"], set()
        for _ in range(MAX_SPECIALS):
            if not sp or sp in seen:
                break
            seen.add(sp)
            try:
                h = hf.read(mem, sp)
            except DecodeError as e:
                errors.add(f"special at {sp:#x} of span {s:#x}: {e}")
                failures += 1
                break
            kind = kinds.get(h["kind"])
            if kind is not None:
                obj = base + (h["offset"] // esize * esize if esize else h["offset"])
                fl = types.get(kind)
                what = {"Finalizer": "finalizer", "Cleanup": "cleanup",
                        "WeakHandle": "weak handle"}[kind]
                ri = len(roots)
                roots.append(Root("finalizer" if kind == "Finalizer" else "other",
                                  f"{what} of {obj:#x}"))
                try:
                    words = fl.read(mem, sp) if fl is not None else {}
                except DecodeError as e:
                    errors.add(f"{what} special at {sp:#x}: {e}")
                    words = {}
                for path, v in words.items():
                    if v:
                        vals.append(v)
                        idxs.append(ri)
                        offs.append(fl.offset(path))
                        addrs.append(sp + fl.offset(path))
                if kind == "Finalizer":
                    objects.append((ri, obj, noscan))
            sp = h["next"]
    value = np.array(vals, dtype=np.uint64)
    root = np.array(idxs, dtype=np.int32)
    offset = np.array(offs, dtype=np.int64)
    addr = np.array(addrs, dtype=np.uint64)
    # the finalized objects' own pointer words (scanobject), not the objects
    scan = [(ri, o) for ri, o, noscan in objects if not noscan]
    if scan and heap is not None:
        try:
            at = heap.locate(np.array([o for _, o in scan], dtype=np.uint64))
            keep = [(ri, int(i)) for (ri, _), i in zip(scan, np.asarray(at).tolist()) if i >= 0]
            if len(keep) < len(scan):
                errors.add(f"{len(scan) - len(keep)} objects with finalizers not found in the heap")
            if keep:
                src, off, val = heap.pointers(np.array([i for _, i in keep], dtype=np.int64))
                src = np.asarray(src, dtype=np.int64)
                # src holds the object indices given: each maps back to its root
                order = {i: ri for ri, i in keep}
                r_of = np.array([order.get(int(x), -1) for x in src.tolist()], dtype=np.int32)
                good = r_of >= 0
                base = np.asarray(heap.addr(src[good]), dtype=np.uint64) if good.any() else \
                    np.zeros(0, np.uint64)
                value = np.concatenate([value, np.asarray(val, dtype=np.uint64)[good]])
                root = np.concatenate([root, r_of[good]])
                offset = np.concatenate([offset, np.asarray(off, dtype=np.int64)[good]])
                addr = np.concatenate([addr, base + np.asarray(off, dtype=np.uint64)[good]])
        except Exception as e:   # the heap decoder's failure: the special words stand alone
            errors.add(f"finalized objects' pointers not read: {e}")
    elif scan:
        errors.add(f"{len(scan)} objects with finalizers: their pointer words not read (no heap)")
    q = _queued(rt, errors)
    if q[0]:
        base = len(roots)
        roots.extend(q[0])
        value = np.concatenate([value, np.array(q[1], dtype=np.uint64)])
        root = np.concatenate([root, np.array(q[2], dtype=np.int32) + base])
        offset = np.concatenate([offset, np.array(q[3], dtype=np.int64)])
        addr = np.concatenate([addr, np.array(q[4], dtype=np.uint64)])
    return RootSet(roots, value, root.astype(np.int32), offset, addr, errors.done(),
                   np.full(len(roots), -1, dtype=np.int64))


MAX_QUEUE_BLOCKS = 1 << 16


def _queued(rt, errors: _Errors) -> tuple:
    """The finalizers queued to run (markroot's fixedRootFinalizers: each finBlock of
    runtime.allfin, its first cnt entries' fn, arg, fint and ot) and, from Go 1.25, the
    cleanups queued (fixedRootCleanups: each cleanupBlock of gcCleanups.all, its first n
    cleanupFns' call, fn and arg): (roots, values, root indices, offsets, addresses)."""
    roots, vals, idxs, offs, addrs = [], [], [], [], []
    mem = rt.mem
    for head_sym, path, count, arr, words, kind, what in (
            ("runtime.allfin", None, "cnt", "fin", ("fn", "arg", "fint", "ot"), "finalizer",
             "queued finalizer"),
            ("runtime.gcCleanups", "all", "n", "cleanups", ("call", "fn", "arg"), "other",
             "queued cleanup")):
        try:
            a = rt.target.symbol_address(head_sym)
            t = rt.target.symbol_type(head_sym)
        except DecodeError:
            continue
        if not a or t is None:
            continue
        if path is not None:
            found = t.find(path)
            if found is None:
                continue
            a += found[0]
            t = found[1]
            inner = t.find("value") if t.kind != "ptr" else None
            if inner is not None:
                a += inner[0]
                t = inner[1]
        block_t = getattr(t, "elem", None)
        if block_t is None and path is not None:     # an atomic.UnsafePointer
            block_t = rt.target.lookup_type("runtime.cleanupBlock")
        if block_t is None:
            continue
        link = block_t.find("alllink") or block_t.find("cleanupBlockHeader.alllink")
        cnt = block_t.find(count) or block_t.find("cleanupBlockHeader." + count)
        arr_f = block_t.find(arr)
        if link is None or cnt is None or arr_f is None or arr_f[1].elem is None:
            continue
        et = arr_f[1].elem
        woffs = [(w, et.find(w)[0]) for w in words if et.find(w) is not None]
        try:
            b = mem.ptr(a)
        except DecodeError as e:
            errors.add(f"{head_sym}: {e}")
            continue
        seen: set = set()
        for _ in range(MAX_QUEUE_BLOCKS):
            if not b or b in seen:
                break
            seen.add(b)
            try:
                raw = mem.read(b, block_t.size)
            except DecodeError as e:
                errors.add(f"{what} block at {b:#x}: {e}")
                break
            n = struct.unpack_from("<I", raw, cnt[0])[0]
            n = min(n, arr_f[1].length or 0)
            for k in range(n):
                base = arr_f[0] + k * et.size
                ws = [(w, o, _u64(raw, base + o)[0]) for w, o in woffs]
                if not any(v for _, _, v in ws):
                    continue
                arg = dict((w, v) for w, _, v in ws).get("arg", 0)
                ri = len(roots)
                roots.append(Root(kind, f"{what} of {arg:#x}"))
                for w, o, v in ws:
                    if v:
                        vals.append(v)
                        idxs.append(ri)
                        offs.append(o)
                        addrs.append(b + base + o)
            b = _u64(raw, link[0])[0]
    return roots, vals, idxs, offs, addrs


def _const(rt, name: str, default: int) -> int:
    from ..binary.dwarfconst import int_constant
    try:
        v = int_constant(rt.elf, name) if rt.elf is not None else None
    except Exception:   # no DWARF constants
        v = None
    return default if v is None else v
