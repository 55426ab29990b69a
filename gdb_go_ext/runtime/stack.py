"""Unwind a goroutine's stack from memory with the pclntab, like the runtime does.

Never touches registers: the start (pc, sp) comes from g.sched, the syscall
pc/sp, or a thread's registers read by the backend. Works the same on cores.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from ..errors import DecodeError
from ..target import Memory

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
        self._recipes: dict = {}
        # a backend's direct memory source (returns None instead of raising), if any
        direct = mem.target.direct
        self._fast_read = direct.read if direct is not None else None
        self._ret: dict = {}
        # (reader, words, frames, error) of the last walk, when it was or became a recipe
        self.last_recipe = None

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
            top = f.is_topframe or f.name in ("runtime.goexit", "runtime.mstart", "runtime.rt0_go")
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

        Leaked goroutines repeat the same stacks by the thousand, so each walk is
        remembered as a recipe: the stack slots it read and the return addresses it
        found there. A goroutine with the same pc and depth whose slots hold the same
        return addresses has, by construction, the same frames; that is checked
        word by word, never assumed.
        """
        self.last_recipe = None
        if pc == 0:
            return [], "no saved pc"
        if not (lo <= sp < hi) or hi - sp > 1 << 30:
            return [], f"sp {sp:#x} outside the stack [{lo:#x}, {hi:#x})"
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
            for recipe in recipes:
                reader, want, frames, err = recipe
                if reader.size <= size and reader.unpack_from(buf) == want:
                    self.last_recipe = recipe
                    return frames, err
        slots = []
        frames, err, complete = self._walk_slow(pc, sp, hi, buf, max_frames, stop_at_user, slots,
                                                trap)
        if complete:
            if len(self._recipes) > 1 << 16:
                self._recipes.clear()
            if recipes is None:
                recipes = self._recipes[key] = []
            if len(recipes) < 16 and _increasing(slots):
                fmt, pos = "<", 0
                for off, _ in slots:
                    fmt += f"{off - pos}xQ" if off > pos else "Q"
                    pos = off + 8
                recipe = (struct.Struct(fmt), tuple(v for _, v in slots), frames, err)
                recipes.append(recipe)
                self.last_recipe = recipe
        return frames, err

    def _walk_slow(self, pc, sp, hi, buf, max_frames, stop_at_user, slots, trap):
        """The unwinding proper. Returns (frames, error, recipe usable)."""
        frames: list[StackFrame] = []
        base = sp
        exact_cache, ret_cache, info_of = self._exact, self._ret, self._info
        unpack = _unpack_word
        if trap:
            info = exact_cache.get(pc) or info_of(pc, True)
        else:
            info = ret_cache.get(pc) or info_of(pc, False)
        for _ in range(MAX_PHYSICAL_FRAMES):
            f, delta, logical, top, has_user, injected = info
            if f is None:
                return frames, f"pc {pc:#x} is not in Go code", True
            frames += logical
            if len(frames) >= max_frames:
                del frames[max_frames:]
                return frames, None, True
            if top or (stop_at_user and has_user):
                return frames, None, True
            if delta < 0:
                return frames, f"no frame size for {f.name} at {pc:#x}", True
            slot = sp + delta
            off = slot - base
            if off + 8 > len(buf):
                if slot + 8 > hi:
                    return frames, f"stack slot {slot:#x} outside the goroutine stack", True
                try:
                    buf = self.mem.read(base, min(hi - base, max(2 * len(buf), off + TOP_BYTES + 8)))
                except DecodeError as e:
                    return frames, str(e), False
            ret = unpack(buf, off)[0]
            slots.append((off, ret))
            if ret == 0:
                return frames, None, True
            pc, sp = ret, slot + 8
            if injected:
                info = exact_cache.get(pc) or info_of(pc, True)
            else:
                info = ret_cache.get(pc) or info_of(pc, False)
        return frames, f"more than {MAX_PHYSICAL_FRAMES} frames", True


_unpack_word = struct.Struct("<Q").unpack_from

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


def _increasing(slots) -> bool:
    return all(a[0] + 8 <= b[0] for a, b in zip(slots, slots[1:]))
