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
_WINDOW = 8192


@dataclass(frozen=True)
class StackFrame:
    function: str
    file: str
    line: int
    pc: int
    inlined: bool
    user: bool = False

    def to_json(self) -> dict:
        return {"function": self.function, "file": self.file, "line": self.line,
                "pc": f"{self.pc:#x}", "inlined": self.inlined}


class _StackWindow:
    """Reads of one goroutine stack, fetched in a few large chunks."""

    __slots__ = ("mem", "lo", "hi", "base", "buf")

    def __init__(self, mem: Memory, lo: int, hi: int):
        self.mem = mem
        self.lo = lo
        self.hi = hi
        self.base = 0
        self.buf = b""

    def word(self, addr: int) -> int:
        off = addr - self.base
        if 0 <= off and off + 8 <= len(self.buf):
            return struct.unpack_from("<Q", self.buf, off)[0]
        if not (self.lo <= addr and addr + 8 <= self.hi):
            raise DecodeError(f"stack slot {addr:#x} outside the goroutine stack")
        size = max(_WINDOW, len(self.buf) * 2)
        end = min(self.hi, addr + size)
        self.base = addr
        self.buf = self.mem.read(addr, end - addr)
        return struct.unpack_from("<Q", self.buf, 0)[0]


class Unwinder:
    """Symbolizes and unwinds stacks; caches everything per PC.

    goroot_src: prefix of standard-library source files, used to tell user frames.
    """

    def __init__(self, mem: Memory, pclntab, goroot_src: Optional[str], wrapper_id: int):
        self.mem = mem
        self.tab = pclntab
        self.goroot_src = goroot_src
        self.wrapper_id = wrapper_id
        # pc -> (func, spdelta, frames tuple, topframe) ; separate caches for exact/return pcs
        self._exact: dict = {}
        self._ret: dict = {}

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
            info = (None, -1, (), True)
        else:
            logical = self.tab.frames(pc) if exact else self.tab.frames_for_return(pc)
            frames = []
            for lf in logical:
                if lf.func_id == self.wrapper_id and frames:
                    continue
                frames.append(StackFrame(lf.print_name, lf.file, lf.line, pc, lf.inlined,
                                         self.is_user_file(lf.file, lf.function)))
            # drop a leading wrapper too, unless it is all there is
            if len(frames) > 1 and logical and logical[0].func_id == self.wrapper_id:
                frames = frames[1:]
            delta = self.tab.pcsp(f, pc)
            top = f.is_topframe or f.name in ("runtime.goexit", "runtime.mstart", "runtime.rt0_go")
            if f.name == "runtime.goexit":
                frames = []
            info = (f, delta, tuple(frames), top)
        if len(cache) > 1 << 16:
            cache.clear()
        cache[pc] = info
        return info

    def symbolize(self, pc: int, exact: bool = False) -> tuple:
        return self._info(pc, exact)[2]

    def walk(self, pc: int, sp: int, lo: int, hi: int, max_frames: int = 64,
             stop_at_user: bool = False) -> tuple[list[StackFrame], Optional[str]]:
        """Frames from (pc, sp) outward, innermost first, and an error or None.

        stop_at_user: stop once a user frame has been produced (cheap locations).
        Bounded by max_frames logical frames and MAX_PHYSICAL_FRAMES; stops on a
        non-increasing stack pointer.
        """
        frames: list[StackFrame] = []
        if pc == 0:
            return frames, "no saved pc"
        window = _StackWindow(self.mem, lo, hi)
        exact = True
        for _ in range(MAX_PHYSICAL_FRAMES):
            f, delta, logical, top = self._info(pc, exact)
            if f is None:
                return frames, f"pc {pc:#x} is not in Go code"
            frames.extend(logical)
            if len(frames) >= max_frames:
                del frames[max_frames:]
                return frames, None
            if top:
                return frames, None
            if stop_at_user and any(fr.user for fr in logical):
                return frames, None
            if delta < 0:
                return frames, f"no frame size for {f.name} at {pc:#x}"
            slot = sp + delta
            try:
                ret = window.word(slot)
            except DecodeError as e:
                return frames, str(e)
            if ret == 0:
                return frames, None
            new_sp = slot + 8
            if new_sp <= sp:
                return frames, f"stack pointer does not increase at {pc:#x}"
            pc, sp, exact = ret, new_sp, False
        return frames, f"more than {MAX_PHYSICAL_FRAMES} frames"
