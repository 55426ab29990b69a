"""Unwind a goroutine's stack from memory with the pclntab, like the runtime does
(traceback.go's unwinder on amd64: fp = sp + pcsp(pc) + 8, the return address at
fp - 8): the one unwinder, Unwinder, whose walk gives the logical frames (stacks,
locations) and physical the physical ones with sp/fp (tracebacks, stack roots).

Never touches registers: the start (pc, sp) comes from g.sched, the syscall
pc/sp, or a thread's registers read by the backend. Works the same on cores.

Each unwind is also a Recipe, the stack slots it read and the words there; the
goroutines of one start (pc, depth) are checked against it together (Recipe.matches,
holding, check_groups), for stacks, tracebacks, heap roots and the columnar walk.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import DecodeError
from ..target import Memory
from ..target.bulk import core_words, read_words

MAX_PHYSICAL_FRAMES = 1024
# logical frames of a whole stack: what grouping, user locations and retention use;
# a view's -t DEPTH cuts only what it prints
WHOLE_STACK = 4 * MAX_PHYSICAL_FRAMES
TOP_BYTES = 1024   # read first from a stack's top (sp up to hi); most leaked stacks fit


@dataclass(frozen=True)
class StackFrame:
    function: str
    file: str
    line: int
    pc: int
    inlined: bool
    user: bool = False
    # a compiler-generated wrapper (abi.FuncIDWrapper: a go statement's closure, a
    # method value, an ABI wrapper): printed, as the runtime's crash traceback prints
    # it; never a user frame; runtime.Callers and profiles elide it (elide_wrappers)
    wrapper: bool = False

    def to_json(self) -> dict:
        return {"function": self.function, "file": self.file, "line": self.line,
                "pc": f"{self.pc:#x}", "inlined": self.inlined, "wrapper": self.wrapper}


RECIPE_CHUNK = 1 << 15   # stacks compared with a recipe together (bounded matrices)


class Recipe:
    """What one unwind read of a stack: the slots (byte offsets from sp, increasing)
    and the return addresses it found there. A stack with the same start (pc, depth)
    whose slots hold the same words unwinds, by construction, to the same frames: that
    is checked word by word (matches, holds), never assumed. Leaked goroutines repeat
    a few stacks by the thousand, so stacks, tracebacks, heap roots and the columnar
    walk each unwind one and check the others against its recipe."""

    __slots__ = ("offsets", "want", "size", "struct", "_words", "_want")

    def __init__(self, offsets: tuple, want: tuple):
        self.offsets = offsets
        self.want = want
        self.size = offsets[-1] + 8 if offsets else 0     # bytes from sp that hold them
        fmt, pos = "<", 0
        for off in offsets:
            fmt += f"{off - pos}xQ" if off > pos else "Q"
            pos = off + 8
        self.struct = struct.Struct(fmt)   # the slots of size bytes, for scalar checks
        self._words = self._want = None

    @classmethod
    def of(cls, slots) -> Optional["Recipe"]:
        """The Recipe of an unwind's slots [(offset, word)], or None when they do not
        follow each other (an unwind goes outward: they always should)."""
        if not all(a[0] + 8 <= b[0] for a, b in zip(slots, slots[1:])):
            return None
        return cls(tuple(o for o, _ in slots), tuple(w for _, w in slots))

    @property
    def words(self) -> Optional[np.ndarray]:
        """The slots as word indices from sp, or None when one is not 8-aligned."""
        if self._words is None:
            offs = np.array(self.offsets, dtype=np.int64)
            self._words = False if np.any(offs % 8) else offs // 8
        return None if self._words is False else self._words

    @property
    def want_words(self) -> np.ndarray:
        if self._want is None:
            self._want = np.array(self.want, dtype=np.uint64)
        return self._want

    def holds(self, buf) -> bool:
        """Whether the stack top in buf (from sp) holds the recipe's words."""
        return self.size <= len(buf) and self.struct.unpack_from(buf) == self.want

    def matches(self, mem, sps) -> np.ndarray:
        """Whether the stack at each of sps holds the recipe's words (False where it
        cannot be read), compared at once: from the words at the slots (target bulk
        read_words) when they are on the 8-byte grid, else matches_from_bytes."""
        sps = np.asarray(sps, dtype=np.uint64)
        if not self.offsets:
            return np.ones(len(sps), dtype=bool)
        if self.words is not None:
            return holding([self], mem, sps)[0]
        return self.matches_from_bytes(mem, sps)

    def matches_from_bytes(self, mem, sps) -> np.ndarray:
        """matches, from the tops read as bytes through mem.gather_fixed, the slots cut
        out of them (on the 8-byte grid or not)."""
        sps = np.asarray(sps, dtype=np.uint64)
        n = len(sps)
        if not self.offsets:
            return np.ones(n, dtype=bool)
        out = np.zeros(n, dtype=bool)
        want = self.want_words
        cols = (np.array(self.offsets, dtype=np.int64)[:, None] + np.arange(8)).ravel()
        for c in range(0, n, RECIPE_CHUNK):
            part = sps[c:c + RECIPE_CHUNK]
            buf, errs = mem.gather_fixed(part.tolist(), self.size)
            raw = np.frombuffer(buf, dtype=np.uint8, count=len(part) * self.size)
            got = np.ascontiguousarray(raw.reshape(len(part), self.size)[:, cols]).view("<u8")
            same = np.all(got == want[None, :], axis=1)
            if errs:
                same[list(errs)] = False
            out[c:c + RECIPE_CHUNK] = same
        return out


def _top_words(recipes: list, limit: Optional[int]) -> Optional[tuple]:
    """What checking stacks against recipes reads: (k, slots, union, size), the first
    k recipes (up to the first that cannot be checked by words: not 8-aligned, or
    longer than limit), each one's word indices, the words they need together and the
    bytes from sp that hold them; None when the first cannot."""
    slots = []
    for r in recipes:
        words = r.words
        if words is None or (limit is not None and r.size > limit):
            break
        slots.append(words)
    if not slots:
        return None
    k = len(slots)
    union = sorted(set().union(*(w.tolist() for w in slots)))
    return k, slots, union, max(recipes[i].size for i in range(k))


def holding(recipes: list, mem, sps: np.ndarray, limit: Optional[int] = None) -> list:
    """For each recipe, whether each stack (at sps) holds it, from one read of the
    words they all need (target bulk read_words: a core from its mapping); None for
    the first where it cannot be checked that way (the others are then left out)."""
    plan = _top_words(recipes, limit)
    if plan is None:
        return [None]
    k, slots, union, size = plan
    pos = {w: j for j, w in enumerate(union)}
    every = list(range(len(union)))
    tests = [([pos[w] for w in slots[i].tolist()], recipes[i].want_words[None, :])
             for i in range(k)]
    n = len(sps)
    out = [np.zeros(n, dtype=bool) for _ in tests]
    cw = core_words(mem)
    for lo in range(0, n, RECIPE_CHUNK):   # a chunk at a time: no (n, words) matrix
        top, ok = read_words(mem, sps[lo:lo + RECIPE_CHUNK], size, cw, keep=union)
        for o, (cols, want) in zip(out, tests):
            words = top if cols == every else top[:, cols]
            o[lo:lo + len(ok)] = np.all(words == want, axis=1) & ok
    return out


def check_groups(groups: list, mem, sp: np.ndarray, limit: Optional[int] = None) -> list:
    """holding of each group, (recipes, rows: indices into sp), or None for a group
    without recipes. On a core (target CoreMem.words), the stacks of every group are
    read at once, in address order, so that each page of stacks (two 2 KB stacks of
    goroutines of two shapes, mostly) is faulted in and given back once, not once per
    group."""
    out: list = [None] * len(groups)
    todo = [i for i, grp in enumerate(groups) if grp is not None]
    core = core_words(mem)
    if core is not None and len(todo) > 1:
        todo = _merged(mem, core, sp, groups, todo, out, limit)
    for i in todo:
        recipes, rows = groups[i]
        out[i] = holding(recipes, mem, sp[rows], limit)
    return out


def _merged(mem, core, sp: np.ndarray, groups: list, todo: list, out: list, limit) -> list:
    """check_groups over a core: fills out[i] for the groups it can read together;
    the others (returned) are read group by group."""
    rest, take = [], []
    for i in todo:
        plan = _top_words(groups[i][0], limit)
        if plan is None:
            out[i] = [None]
        elif plan[0] > 2:
            rest.append(i)
        else:
            k, slots, union, size = plan
            take.append((i, list(range(k)), slots, union, size))
    if len(take) < 2:
        return rest + [t[0] for t in take]
    K = max(len(t[3]) for t in take)
    G = len(take)
    sel = np.zeros((G, K), dtype=np.int64)
    want = np.zeros((G, 2, K), dtype=np.uint64)
    care = np.zeros((G, 2, K), dtype=bool)
    sizes = np.zeros(G, dtype=np.uint64)
    for g, (i, usable, slots, union, size) in enumerate(take):
        sel[g, :len(union)] = union
        sel[g, len(union):] = union[-1]
        sizes[g] = size
        pos = {w: k for k, w in enumerate(union)}
        for j in usable:
            ks = [pos[w] for w in slots[j].tolist()]
            want[g, j, ks] = groups[i][0][j].want_words
            care[g, j, ks] = True
    rows = [groups[t[0]][1] for t in take]
    gid = np.repeat(np.arange(G), [len(r) for r in rows])
    allrows = np.concatenate(rows)
    addrs = sp[allrows].astype(np.uint64)
    if np.any(addrs % np.uint64(8)):
        return rest + [t[0] for t in take]
    n = len(addrs)
    order = np.argsort(addrs, kind="stable")
    match = np.zeros((n, 2), dtype=bool)
    okall = np.zeros(n, dtype=bool)
    step = 1 << 13
    for lo in range(0, n, step):
        idx = order[lo:lo + step]
        g = gid[idx]
        got = core.words(addrs[idx], sizes[g], sel[g])
        if got is None:
            return rest + [t[0] for t in take]
        w, ok = got
        for j in (0, 1):
            match[idx, j] = np.all((w == want[g, j]) | ~care[g, j], axis=1)
        okall[idx] = ok
    bounds = np.cumsum([0] + [len(r) for r in rows])
    for g, (i, usable, _, _, _) in enumerate(take):
        a, b = int(bounds[g]), int(bounds[g + 1])
        out[i] = [match[a:b, j] & okall[a:b] for j in usable]
    return rest


class Unwinder:
    """Symbolizes and unwinds stacks; caches everything per PC.

    goroot_src: prefix of standard-library source files, used to tell user frames.
    """

    def __init__(self, mem: Memory, pclntab, goroot_src: Optional[str], wrapper_id: int,
                 injected: frozenset = frozenset()):
        self.mem = mem
        self.tab = pclntab
        self.goroot_src = goroot_src
        self.wrapper_id = wrapper_id
        # functions whose caller's frame was interrupted (see pclntab.injected_functions)
        self.injected = injected
        # pc -> (func, spdelta, frames, topframe, has user frame, injected); separate
        # caches for exact pcs and return addresses
        self._exact: dict = {}
        self._recipes: dict = {}   # walk's key -> [(Recipe, frames, error)]
        # a backend's direct memory source (returns None instead of raising), if any
        direct = mem.target.direct
        self._fast_read = direct.read if direct is not None else None
        self._ret: dict = {}
        self._phys: dict = {}   # (pc, exact) -> physical's info
        # the Recipe of the last walk, when it was or became one
        self.last_recipe: Optional[Recipe] = None

    def is_user_file(self, file: str, function: str) -> bool:
        if self.goroot_src and file.startswith(self.goroot_src):
            return False
        if not self.goroot_src:
            pkg = function.split(".", 1)[0]
            first = pkg.split("/", 1)[0]
            return function.startswith("main.") or "." in first
        return True

    def _info(self, pc: int, exact: bool):
        cache = self._exact if exact else self._ret
        hit = cache.get(pc)
        if hit is not None:
            return hit
        f = self.tab.func_for_pc(pc)
        if f is None:
            info = (None, -1, (), True, False, False)
        else:
            logical = self.tab.frames(pc) if exact else self.tab.frames_for_return(pc)
            wid = self.wrapper_id
            frames = [StackFrame(lf.print_name, lf.file, lf.line, pc, lf.inlined,
                                 lf.func_id != wid and self.is_user_file(lf.file, lf.function),
                                 lf.func_id == wid)
                      for lf in logical]
            delta = self.tab.pcsp(f, pc)
            top = f.is_topframe or f.name in _TOP_FUNCS
            if f.name == "runtime.goexit":
                frames = []
            info = (f, delta, tuple(frames), top, any(fr.user for fr in frames),
                    f.name in self.injected)
        if len(cache) > 1 << 16:
            cache.clear()
        cache[pc] = info
        return info

    def symbolize(self, pc: int, exact: bool = False) -> tuple:
        return self._info(pc, exact)[2]

    def _start(self, pc: int, sp: int, lo: int, hi: int) -> Optional[str]:
        """Why an unwind cannot start at (pc, sp) in the stack [lo, hi), or None."""
        if pc == 0:
            return "no saved pc"
        if not (lo <= sp < hi) or hi - sp > 1 << 30:
            return f"sp {sp:#x} outside the stack [{lo:#x}, {hi:#x})"
        return None

    def walk(self, pc: int, sp: int, lo: int, hi: int, max_frames: int = 64,
             stop_at_user: bool = False, trap: bool = False) -> tuple[list[StackFrame], Optional[str]]:
        """Frames from (pc, sp) outward, innermost first, and an error or None.

        Lines follow the runtime's traceback: pc is a return address (g.sched,
        syscallpc) and is symbolized at pc - 1, as every caller's is, unless trap (a
        thread stopped at pc itself); a frame an injected call (asyncPreempt,
        sigpanic) returns to is symbolized at its pc.

        stop_at_user: stop once a user frame has been produced (cheap locations).
        Bounded by max_frames logical frames and MAX_PHYSICAL_FRAMES; stops on a
        non-increasing stack pointer. The returned list is shared: do not modify it.

        Each walk is remembered as a Recipe (last_recipe): a goroutine with the same
        pc and depth whose stack holds it has, by construction, the same frames."""
        self.last_recipe = None
        err = self._start(pc, sp, lo, hi)
        if err is not None:
            return [], err
        size = hi - sp if hi - sp < TOP_BYTES else TOP_BYTES
        try:
            buf = self._fast_read(sp, size) if self._fast_read is not None else None
            if buf is None:
                buf = self.mem.read(sp, size)
        except DecodeError as e:
            return [], str(e)
        key = (pc, hi - sp, max_frames, stop_at_user, trap)
        recipes = self._recipes.get(key)
        if recipes is not None:
            # several stacks can share pc and depth (e.g. chan send vs receive); each recipe
            # reads all its slots in one unpack and compares them in one go
            for recipe, frames, err in recipes:
                if recipe.holds(buf):
                    self.last_recipe = recipe
                    return frames, err
        frames: list[StackFrame] = []

        def visit(info, pc, sp):
            frames.extend(info[2])
            if len(frames) >= max_frames:
                del frames[max_frames:]
                return True
            return info[3] or (stop_at_user and info[4])

        err, slots, complete = self._unwind(pc, sp, hi, buf, trap, self._info, visit)
        if complete:
            if len(self._recipes) > 1 << 16:
                self._recipes.clear()
            if recipes is None:
                recipes = self._recipes[key] = []
            recipe = Recipe.of(slots) if len(recipes) < 16 else None
            if recipe is not None:
                recipes.append((recipe, frames, err))
                self.last_recipe = recipe
        return frames, err

    def physical(self, pc: int, sp: int, lo: int, hi: int, trap: bool = False) -> tuple:
        """The physical frames from (pc, sp) outward as the runtime's unwinder sees
        them on amd64, innermost first: (func, pc, symbolized pc, sp, fp) with fp = sp
        + pcsp(pc) + 8 and the return address at fp - 8, to a top frame (the goexit
        frame included). Returns (frames, error or None, Recipe or None, complete:
        False when a stack read failed, the frames then cut there)."""
        err = self._start(pc, sp, lo, hi)
        if err is not None:
            return [], err, None, True
        out: list = []

        def visit(info, pc, sp):
            f, delta, sym, top = info[0], info[1], info[2], info[3]
            if delta < 0:
                return f"no frame size for {f.name} at {pc:#x}"
            out.append((f, pc, sym, sp, sp + delta + 8))
            return top

        err, slots, complete = self._unwind(pc, sp, hi, b"", trap, self._phys_info, visit)
        return out, err, Recipe.of(slots) if complete else None, complete

    def _phys_info(self, pc: int, exact: bool):
        """_info's tuple for physical: its frames replaced by the pc the frame's line
        is read at (pc itself when exact, else pc - 1 past the function's entry)."""
        key = (pc, exact)
        hit = self._phys.get(key)
        if hit is None:
            f = self.tab.func_for_pc(pc)
            if f is None:
                hit = (None, -1, pc, True, False, False)
            else:
                hit = (f, self.tab.pcsp(f, pc), pc - 1 if not exact and pc > f.entry else pc,
                       f.is_topframe or f.name in _TOP_FUNCS, False, f.name in self.injected)
            if len(self._phys) > 1 << 16:
                self._phys.clear()
            self._phys[key] = hit
        return hit

    def _unwind(self, pc, sp, hi, buf, trap, info_of, visit):
        """The unwinding proper, of walk and physical: from (pc, sp) outward, each
        physical frame's info_of(pc, exact) given to visit(info, pc, sp), which says
        whether to stop there (True, or an error). buf: the stack from sp as far as
        it was read (read further as needed). Returns (error or None, the slots read
        [(offset from sp, word)], complete: False when a stack read failed)."""
        base = sp
        slots: list = []
        unpack = _unpack_word
        info = info_of(pc, trap)
        for _ in range(MAX_PHYSICAL_FRAMES):
            f, delta, _, _, _, injected = info
            if f is None:
                return f"pc {pc:#x} is not in Go code", slots, True
            stop = visit(info, pc, sp)
            if stop:
                return (None if stop is True else stop), slots, True
            if delta < 0:
                return f"no frame size for {f.name} at {pc:#x}", slots, True
            slot = sp + delta
            off = slot - base
            if off + 8 > len(buf):
                if slot + 8 > hi:
                    return f"stack slot {slot:#x} outside the goroutine stack", slots, True
                try:
                    buf = self.mem.read(base, min(hi - base, max(2 * len(buf), off + TOP_BYTES + 8)))
                except DecodeError as e:
                    return str(e), slots, False
            ret = unpack(buf, off)[0]
            slots.append((off, ret))
            if ret == 0:
                return None, slots, True
            pc, sp = ret, slot + 8
            info = info_of(pc, injected)
        return f"more than {MAX_PHYSICAL_FRAMES} frames", slots, True


_unpack_word = struct.Struct("<Q").unpack_from
_TOP_FUNCS = frozenset(("runtime.goexit", "runtime.mstart", "runtime.rt0_go"))

# a wrapper that called one of these instead of the function it wraps stays in
# runtime.Callers' stacks (the runtime's elideWrapperCalling)
_PANICS = frozenset(("runtime.gopanic", "panic", "runtime.sigpanic", "runtime.panicwrap"))


def elide_wrappers(frames) -> list:
    """frames (innermost first) without the wrappers runtime.Callers, goroutine
    profiles and level-1 tracebacks leave out: every wrapper, unless the frame it
    called is a panic. (A frame without a wrapper mark, a dump's, is kept.)"""
    out, callee = [], ""
    for fr in frames:
        if not (getattr(fr, "wrapper", False) and callee not in _PANICS):
            out.append(fr)
        callee = fr.function
    return out

