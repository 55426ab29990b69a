"""The GC's stack roots, as the runtime's markroot finds them (Go 1.22+, amd64):
every goroutine's frames as scanstack / scanframeworker walk them
(stkframe.getStackMap): the locals pointer map below varp, the args map at argp, both
at the PCDATA_StackMapIndex of the frame's continuation pc (the return address less
one for callers; -1 read as 0), the frame's stack objects (FUNCDATA_StackObjects,
their pointer mask at moduledata.rodata + gcdataoff) scanned when a pointer on the
stack reaches them, asynchronously preempted frames and their callers
conservatively; g.sched.ctxt, the defer chain (fn, link, heap records) and g._panic
as scanstack adds them. Pointers into the goroutine's own stack are not heap
pointers and are dropped (they only reach stack objects).

The physical frames come from the one unwinder (stack.Unwinder.physical, with fp/sp
per frame). Goroutines repeat a few stacks by the thousand: the goroutines with the same
start (pc, stack depth) whose return-address slots hold the same words share one
recipe (stack.Recipe; here with where, relative to sp, each pointer slot of each frame
lies), checked word by word; their slots are then read as numpy columns. Pure (no gdb), bounded, and
every problem is one line in .errors with the rest of the result kept.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..binary.pclntab import PCDATA_StackMapIndex, injected_functions, wrapper_func_id
from ..errors import DecodeError
from ..target.bulk import core_words, read_words
from .heaproots import ErrorLines, Root, RootSet, module_bias, static_read, frame_names, modules
from .stack import Recipe, Unwinder

FUNCDATA_ArgsPointerMaps = 0
FUNCDATA_LocalsPointerMaps = 1
FUNCDATA_StackObjects = 2
ARGS_SIZE_UNKNOWN = -0x80000000      # abi.ArgsSizeUnknown

MAX_STACKMAP_BITS = 1 << 20
MAX_STACK_OBJECTS = 1 << 12           # records of one function
MAX_RECIPES = 16                      # recipes per (pc, depth) group, as traceback's
MAX_DEFERS = 1 << 12                  # defer records of one goroutine
ROW_CHUNK = 1 << 15                   # goroutines of one recipe read together

_u64 = struct.Struct("<Q").unpack_from
_i32x2 = struct.Struct("<ii").unpack_from
_REC = struct.Struct("<iiiI")          # stackObjectRecord: off, size, ptrdata, gcdataoff


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


class _Scan:
    """How one stack shape is scanned: the slots (relative to sp), the stack objects
    (lo, hi relative to sp), and the Recipe (return-address slots) of the shape."""

    __slots__ = ("slots", "objects", "recipe", "error")

    def __init__(self):
        self.slots: list = []
        self.objects: list = []     # (lo, hi) relative to sp
        self.recipe: Optional[Recipe] = None
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
    def __init__(self, rt, errors: ErrorLines, names: bool = True):
        self.rt, self.errors = rt, errors
        self.use_names = names
        self.tab = rt.pclntab
        self.mem = rt.mem
        version = rt.layout.go_version
        self.unwinder = Unwinder(rt.mem, rt.pclntab, None, wrapper_func_id(version),
                                 injected_functions(version))
        # what is read of the binary (per function stack maps, DWARF names) is kept for
        # the life of the GoRuntime: it does not change when the target moves
        self.funcs, self.names = rt.per_binary("stackroots.static",
                                               lambda: ({}, frame_names(rt)))
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
        addr = self.tab.funcdata_addr(fn, FUNCDATA_StackObjects) + module_bias(self.rt)
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
                mask = static_read(self.rt, rodata + gcoff, (nw + 7) // 8) if nw else b""
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
    def scan_of(self, pc: int, sp: int, lo: int, hi: int, trap: bool) -> _Scan:
        rec = _Scan()
        phys, err, recipe, complete = self.unwinder.physical(pc, sp, lo, hi, trap)
        if not complete:
            phys = []       # (as a stack that cannot be read: none of its frames)
        rec.error = err
        if recipe is not None and recipe.offsets:
            rec.recipe = recipe
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
    """(goid, g addr, pc, sp, lo, hi, trap) as numpy columns of the goroutines (a
    GoroutineTable) a GC scans (dead ones and ones without a saved pc left out)."""
    st = rt.layout.status
    dead, running = st.dead_like, st.running
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
    keep = (codes >= 0) & (pc != 0) & ~np.isin(codes, np.array(sorted(dead), dtype=np.int64))
    return tuple(c[keep] for c in (goid, addr, pc, sp, lo, hi, trap))


_EXTRA_NAMES = ("(g.sched.ctxt)", "(defer record)", "(panic record)")


def _extras(rt, addr: np.ndarray, lo: np.ndarray, hi: np.ndarray, errors: ErrorLines) -> dict:
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


class _Found:
    """The words a stack scan finds and their roots, in columns that grow in place
    (realloc: no second copy of them): per word its value, root (int32), offset in its
    variable (int32) and address; per root its goroutine row and template (int32). The
    words come a chunk of goroutines at a time (every word of a goroutine in one chunk),
    so each chunk's roots, the distinct (row, template) pairs among its words, are
    numbered there: no key or sort over every word."""

    WORD_COLS = (("value", np.uint64), ("root", np.int32), ("offset", np.int32),
                 ("addr", np.uint64))
    ROOT_COLS = (("row", np.int32), ("tmpl", np.int32))

    def __init__(self):
        self.words = {k: np.zeros(1 << 12, dt) for k, dt in self.WORD_COLS}
        self.roots = {k: np.zeros(1 << 12, dt) for k, dt in self.ROOT_COLS}
        self.nw = self.nr = 0

    @staticmethod
    def _put(cols: dict, n: int, new: dict) -> int:
        k = len(next(iter(new.values())))
        if n + k > len(next(iter(cols.values()))):
            cap = max(n + k, len(next(iter(cols.values()))) * 3 // 2)
            for a in cols.values():
                a.resize(cap, refcheck=False)
        for name, a in cols.items():
            a[n:n + k] = new[name]
        return n + k

    def add(self, rows: np.ndarray, tmpl: np.ndarray, value: np.ndarray, offset: np.ndarray,
            addr: np.ndarray) -> None:
        """One chunk's words: rows (goroutine rows, all of each row's words in this
        chunk), tmpl (template ids), their values, offsets and addresses."""
        if not len(rows):
            return
        span = np.int64(int(tmpl.max()) + 1)
        key = rows.astype(np.int64) * span + tmpl
        order = np.argsort(key, kind="stable")
        ks = key[order]
        new = np.r_[True, ks[1:] != ks[:-1]]
        inv = np.empty(len(key), dtype=np.int64)
        inv[order] = np.cumsum(new) - 1
        u = ks[new]
        self.nw = self._put(self.words, self.nw, {
            "value": value, "root": inv + self.nr, "offset": offset, "addr": addr})
        self.nr = self._put(self.roots, self.nr, {"row": u // span, "tmpl": u % span})

    def done(self) -> tuple:
        for cols, n in ((self.words, self.nw), (self.roots, self.nr)):
            for a in cols.values():
                a.resize(n, refcheck=False)
        return self.words, self.roots


def stack_roots(rt, goroutines, names: bool = True) -> RootSet:
    """The pointer words of every goroutine's stack as scanstack finds them (see the
    module's doc). goroutines: a walk's GoroutineTable (or a selection of it; its
    columns are used, and its special rows' own fields). names=False: no DWARF read (variable and type_name None, offsets from the
    frame's CFA): the same words, without the first call's naming cost (about 0.6 s
    of 1.0 on a core of 100k goroutines)."""
    errors = ErrorLines()
    goid, gaddr, pc, sp, lo, hi, trap = _g_rows(rt, goroutines)
    n = len(goid)
    try:
        sc = _StackScanner(rt, errors, names)
    except DecodeError as e:
        return RootSet(errors=[f"stacks not scanned: {e}"])
    extras = _extras(rt, gaddr, lo, hi, errors)
    del gaddr
    extra_tmpl = []
    for name in _EXTRA_NAMES:
        extra_tmpl.append(len(sc.templates))
        sc.templates.append((name, None, None))
    mem = rt.mem
    cw = core_words(mem)
    found = _Found()

    # group the goroutines by where their unwind starts, then by recipe
    bad_rows = np.zeros(n, dtype=bool)
    ok_start = (sp >= lo) & (sp < hi) & (hi - sp < np.uint64(1 << 30))
    if not ok_start.all():
        k = int((~ok_start).sum())
        errors.add(f"{k} goroutines: sp outside their stack (not scanned)")
        bad_rows |= ~ok_start
    depth = np.where(ok_start, hi - sp, 0).astype(np.uint64)
    order = np.lexsort((trap, depth, pc)) if n else np.zeros(0, np.int64)
    order = order[ok_start[order]]
    if len(order):
        po, do, to = pc[order], depth[order], trap[order]
        cut = np.flatnonzero((po[1:] != po[:-1]) | (do[1:] != do[:-1]) | (to[1:] != to[:-1])) + 1
        del po, do, to
        bounds = np.r_[0, cut, len(order)].tolist()
    else:
        bounds = [0]
    recipes: dict = {}
    for b in range(len(bounds) - 1):
        members = order[bounds[b]:bounds[b + 1]]
        first = int(members[0])
        key = (int(pc[first]), int(depth[first]), bool(trap[first]))
        todo = members
        for _ in range(MAX_RECIPES + 1):
            if not len(todo):
                break
            cached = recipes.setdefault(key, [])
            matched = np.zeros(len(todo), dtype=bool)
            for rec in cached:
                m = rec.recipe.matches(mem, sp[todo]) & ~matched
                if m.any():
                    _scan(sc, rec, todo[m], sp, lo, hi, extras, found, cw, errors)
                    matched |= m
            todo = todo[~matched]
            if not len(todo):
                break
            r0 = int(todo[0])
            rec = sc.scan_of(int(pc[r0]), int(sp[r0]), int(lo[r0]), int(hi[r0]), bool(trap[r0]))
            if rec.error:
                errors.add(f"goroutine {int(goid[r0])}: {rec.error} (frames past it not scanned)")
            if rec.recipe is not None and len(cached) < MAX_RECIPES:
                cached.append(rec)
            else:
                _scan(sc, rec, todo[:1], sp, lo, hi, extras, found, cw, errors)
                todo = todo[1:]
        for r in todo.tolist():   # past MAX_RECIPES shapes at one start: one by one
            rec = sc.scan_of(int(pc[r]), int(sp[r]), int(lo[r]), int(hi[r]), bool(trap[r]))
            _scan(sc, rec, np.array([r]), sp, lo, hi, extras, found, cw, errors)
    # extras of goroutines whose frames could not be scanned
    for r in np.flatnonzero(bad_rows).tolist():
        got = [(v, kind) for v, kind in extras.get(r, ()) if not lo[r] <= v < hi[r]]
        if got:
            found.add(np.full(len(got), r, dtype=np.int64),
                      np.array([extra_tmpl[k] for _, k in got], dtype=np.int64),
                      np.array([v for v, _ in got], dtype=np.uint64),
                      np.zeros(len(got), np.int64), np.zeros(len(got), np.uint64))
    del order, pc, sp, lo, hi, trap, depth
    words, roots = found.done()
    root_goid = goid[roots["row"]]
    return RootSet(StackRoots(sc.templates, root_goid, roots["tmpl"]), words["value"],
                   words["root"], words["offset"], words["addr"], errors.done(), root_goid)


def _scan(sc, rec: _Scan, rows: np.ndarray, sp, lo, hi, extras: dict, found: _Found, cw,
          errors: ErrorLines) -> None:
    """The pointer words of the goroutines rows, which share recipe rec, into found."""
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
        parts = []     # (row positions in R, template, value, offset, address)
        if size:
            W, ok = read_words(sc.mem, S, size, cw, keep=offs_ok // 8)
            if not ok.all():
                errors.add(f"{int((~ok).sum())} goroutines: stack words unreadable (not scanned)")
            instack = (W >= L[:, None]) & (W < H[:, None])
            active = np.broadcast_to(kinds < 2, W.shape).copy()
            active &= ok[:, None]
            if objs:
                _reach_objects(objs, kinds, W, S, L, H, ex, instack, active)
            mask = active & (W != 0) & ~instack
            del instack, active
            ri, ci = np.nonzero(mask)
            if len(ri):
                parts.append((ri, tmpls[ci], W[ri, ci], varoffs[ci],
                              S[ri] + offs_ok[ci].astype(np.uint64)))
        # the extras that are heap (not stack) pointers
        got = [(i, v, k) for i, items in enumerate(ex) for v, k in items
               if v and not L[i] <= v < H[i]]
        if got:
            parts.append((np.array([i for i, _, _ in got], dtype=np.int64),
                          np.array([k for _, _, k in got], dtype=np.int64),
                          np.array([v for _, v, _ in got], dtype=np.uint64),
                          np.zeros(len(got), np.int64), np.zeros(len(got), np.uint64)))
        if parts:
            cols = [np.concatenate([p[j] for p in parts]) if len(parts) > 1 else parts[0][j]
                    for j in range(5)]
            found.add(R[cols[0]], cols[1], *cols[2:])


def _reach_objects(objs: list, kinds, W, S, L, H, ex: list, instack, active) -> None:
    """The stack objects (lo, hi relative to sp) that pointers on the stack (from active
    slots, the defer chain, ctxt and _panic) reach, as scanstack finds them: their
    pointer slots made active in place."""
    m = len(S)
    rel = (W - S[:, None]).view(np.int64)
    reached = np.zeros((m, len(objs)), dtype=bool)
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
