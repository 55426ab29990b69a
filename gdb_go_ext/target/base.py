"""The Target protocol: the only way decoders reach a debugger.

A Target reads memory, finds symbols and type layouts, evaluates expressions, and
lists threads with their registers. gdb, Delve and captured test images each
implement it. Memory comes first from a direct source where there is one (the
stopped process's /proc/PID/mem, a core's segments: target.direct), then from the
debugger: `first_direct` composes the two, once for every target.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Protocol

import numpy as np

from ..errors import DecodeError, GoExtError, ReadError
from ..binary.types import GoType
from .bulk import core_words, read_strided, read_words
from .direct import scratch_of


@dataclass(frozen=True)
class Thread:
    lwp: int            # OS thread id
    pc: int
    sp: int
    bp: int
    current: bool = False   # the thread the debugger has selected


@dataclass(frozen=True)
class Scope:
    """Where an expression is evaluated: frame `frame` (0 the innermost) of goroutine
    `goroutine` (None: the debugger's selected goroutine/thread). `g` is that goroutine's
    runtime model (pc, sp, bp, thread, status), for debuggers that need its registers;
    `frame` None means the debugger's selected frame (gdb's `frame N`, dlv's frame 0)."""
    goroutine: Optional[int] = None
    frame: Optional[int] = None
    g: object = None


class Target(Protocol):
    ptr_size: int
    is_live: bool        # a running process (not a core, not the executable alone)
    has_process: bool    # a process or a core: something with goroutines in it
    direct: Optional["DirectSource"]   # reads without the debugger, see target.direct
    warnings: list       # facts every report should carry (e.g. a truncated core)

    def read(self, addr: int, size: int) -> bytes:
        """size bytes at addr, or raise ReadError."""

    def symbol_address(self, name: str) -> Optional[int]:
        """Address of a global variable or function, or None."""

    def lookup_type(self, name: str) -> Optional[GoType]:
        """The Go type with that name (e.g. 'runtime.g'), or None."""

    def symbol_type(self, name: str) -> Optional[GoType]:
        """The declared type of a global variable, or None."""

    def executable(self) -> Optional[str]:
        """Path of the program's ELF file, when known."""

    def threads(self) -> list[Thread]:
        """Every OS thread with its registers."""

    def selected_thread(self) -> Optional[int]:
        """Which thread the user has selected in the debugger (views mark its goroutine),
        or None where there is no such choice."""

    def evaluate(self, expr: str, name: str, scope: Optional[Scope] = None) -> tuple:
        """(GoType, value) of an expression the debugger evaluates in the selected frame,
        or in `scope` (name: expr without 'quotes'): a global, a local, anything of its
        language. The value is the word itself for a pointer-shaped value (map, chan,
        pointer), else None. Inside generic code the type is named as Go names it (the
        frame's type arguments in place of its shapes). Raises GoExtError with the
        debugger's reason."""

    def run_in_goroutine(self, g, command: str) -> None:
        """Run a debugger command with a goroutine's registers in place (live only),
        restoring them after; GoExtError where the debugger cannot."""

    def control(self) -> "Control":
        """Execution control of the live program, for probes (see Control); each call a
        new one. GoExtError (not_live's sentence) on a core or without a process."""


class DirectSource(Protocol):
    """Memory read without the debugger; None (or unread indexes) where it cannot."""

    def read(self, addr: int, size: int) -> Optional[bytes]: ...

    def gather(self, ranges: list) -> list: ...

    def gather_fixed(self, addrs: list, size: int, scratch, stride: int) -> tuple: ...

    def close(self) -> None: ...


def first_direct(direct: Optional[DirectSource], debugger_read):
    """A Target's read(addr, size): the direct source first, the debugger for the rest."""
    if direct is None:
        return debugger_read
    fast = direct.read

    def read(addr: int, size: int) -> bytes:
        data = fast(addr, size) if addr > 0 and size >= 0 else None
        return data if data is not None else debugger_read(addr, size)
    return read


class Memory:
    """Typed reads over a Target, plus bulk reads: lists of ranges (gather, gather_fixed,
    unpack_fixed, bulk) and numpy columns (words, read_strided; target/bulk.py), each
    from the direct source first and through the debugger for what it cannot read."""

    # Requests closer than this are read in one call; chunks never exceed MAX_CHUNK.
    GAP = 4096
    MAX_CHUNK = 1 << 22

    def __init__(self, target: Target):
        self.target = target
        self.ptr_size = target.ptr_size
        self._ptr_fmt = "<Q" if self.ptr_size == 8 else "<I"

        # the hot path: the target's own read, no extra layer (it raises ReadError itself)
        self.read = target.read

    def ptr(self, addr: int) -> int:
        return struct.unpack(self._ptr_fmt, self.read(addr, self.ptr_size))[0]

    def u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def u32(self, addr: int) -> int:
        return struct.unpack("<I", self.read(addr, 4))[0]

    def u8(self, addr: int) -> int:
        return self.read(addr, 1)[0]

    def string(self, addr: int, limit: int = 1 << 20) -> str:
        """A Go string header (ptr, len) at addr."""
        data, n = struct.unpack("<QQ", self.read(addr, 16))
        return self.string_data(data, n, limit)

    def string_data(self, data: int, n: int, limit: int = 1 << 20) -> str:
        if n == 0:
            return ""
        if n < 0 or n > limit:
            raise ReadError(data, n, "implausible string length")
        return self.read(data, n).decode("utf-8", "replace")

    def gather(self, ranges: list) -> list:
        """For each (addr, size): (buffer, offset) where its bytes start, or a ReadError.

        For many scattered ranges (every g, the top of every stack). A target with a
        direct memory source (see target.direct) serves them in bulk, without copying
        from a core; what it cannot serve is read through the debugger, range by range.
        Buffers may be shared and longer than the range: read with unpack_from."""
        direct = self.target.direct
        got = direct.gather(ranges) if direct is not None else [None] * len(ranges)
        read = self.read
        for i, hit in enumerate(got):
            if hit is None:
                addr, size = ranges[i]
                try:
                    got[i] = (read(addr, size), 0)
                except ReadError as e:
                    got[i] = e
        return got

    def gather_fixed(self, addrs: list, size: int, scratch: Optional[bytearray] = None,
                     stride: int = 0) -> tuple:
        """(buffer, errors): the size bytes at addrs[i] at offset i * stride (size when
        0) of one buffer, for struct.iter_unpack with a struct of stride bytes; errors
        maps the index of each unreadable range to its ReadError (its bytes are zero).
        Direct sources read them all in bulk, into scratch when it is given and long
        enough: the buffer is then valid only until the next read into the same
        scratch."""
        stride = max(stride, size)
        direct = self.target.direct
        if direct is not None:
            buf, unread = direct.gather_fixed(addrs, size, scratch, stride)
        else:
            buf, unread = bytearray(len(addrs) * stride), range(len(addrs))
        errors = {}
        if unread:
            if buf.__class__ is bytes:  # a copy out of a core: made writable once
                buf = bytearray(buf)
            read = self.read
            for i in unread:
                try:
                    data = read(addrs[i], size)
                except ReadError as e:
                    errors[i] = e
                    continue
                if len(data) != size:
                    errors[i] = ReadError(addrs[i], size, f"short read of {len(data)} bytes")
                else:
                    buf[i * stride:i * stride + size] = data
        return buf, errors

    def unpack_fixed(self, addrs: list, shape: struct.Struct,
                     scratch: Optional[bytearray] = None, stride: int = 0) -> tuple:
        """(rows, errors): shape unpacked at each of addrs, in order (row i from the
        bytes at addrs[i]; an unreadable range unpacks as zeros, and errors maps its
        index to its ReadError). rows is an iterable, like struct.iter_unpack's: read
        into scratch, it must be used up before the next read into the same scratch.
        A source that holds memory in place, a core's mapping, is unpacked without a
        copy; others are read with gather_fixed (stride: how far apart the addresses
        mostly lie, see there)."""
        direct = self.target.direct
        if direct is not None and hasattr(direct, "unpack_fixed"):
            rows, unread = direct.unpack_fixed(addrs, shape)
            if not unread:
                return rows, {}
            buf, errors = self.gather_fixed([addrs[i] for i in unread], shape.size)
            for i, row in zip(unread, shape.iter_unpack(buf)):
                rows[i] = row
            return rows, {unread[j]: e for j, e in errors.items()}
        buf, errors = self.gather_fixed(addrs, shape.size, scratch, stride)
        if stride > shape.size:
            shape = struct.Struct(shape.format + f"{stride - shape.size}x")
        return shape.iter_unpack(buf), errors

    def region(self, addr: int, size: int, piece: int = 1 << 16) -> tuple:
        """(bytes, unreadable): size bytes at addr as a uint8 array, in one read, else
        in pieces of piece bytes, those that cannot be read zero; unreadable counts
        their bytes."""
        try:
            return np.frombuffer(bytes(self.read(addr, size)), dtype=np.uint8), 0
        except DecodeError:
            pass
        out = np.zeros(size, dtype=np.uint8)
        bad = 0
        ranges = [(a, min(piece, addr + size - a)) for a in range(addr, addr + size, piece)]
        for (a, n), got in zip(ranges, self.gather(ranges)):
            if got.__class__ is not tuple:
                bad += n
                continue
            buf, off = got
            out[a - addr:a - addr + n] = np.frombuffer(bytes(buf[off:off + n]), dtype=np.uint8)
        return out, bad

    # --- numpy reads of many ranges (target/bulk.py), for the columnar walk and the heap
    def words(self, addrs, size: int, keep=None) -> tuple:
        """(words, ok): of the size bytes (a multiple of 8) at each of addrs (uint64),
        the words keep (indices; all when None) as a uint64 matrix, a row per address,
        and whether each could be read (rows that could not are zeros). A core is read
        in place, its pages given back behind the read; a live process in runs and
        merged neighbours by the read threads; the rest through the debugger."""
        return read_words(self, addrs, size, core_words(self), keep)

    def read_strided(self, addrs, size: int, stride: int, buf) -> tuple:
        """(ok, errors): the size bytes at each of addrs (uint64) into buf (a bytearray)
        at i * stride, runs of ranges stride apart read as one; errors maps the index
        of each unreadable range to its ReadError (its bytes are zero)."""
        return read_strided(self, addrs, size, stride, buf)

    @property
    def core(self):
        """The core file read directly (CoreMem: numpy reads in place, locate, values,
        release), or None."""
        return core_words(self)

    scratch = staticmethod(scratch_of)   # a reused buffer per use, warm pages

    def bulk(self, requests: Iterable[tuple[int, int]]) -> dict[int, bytes | ReadError]:
        """Read many (addr, size) ranges with few target calls.

        Returns {addr: bytes or ReadError}. Neighbouring ranges are merged into
        one read; a merged read that fails is retried range by range, so one bad
        range never hides the good ones.
        """
        reqs = sorted({(a, s) for a, s in requests if s > 0})
        out: dict[int, bytes | ReadError] = {}
        i = 0
        while i < len(reqs):
            start, size = reqs[i]
            end = start + size
            j = i + 1
            while j < len(reqs):
                a, s = reqs[j]
                if a - end > self.GAP or max(end, a + s) - start > self.MAX_CHUNK:
                    break
                end = max(end, a + s)
                j += 1
            group = reqs[i:j]
            try:
                chunk = memoryview(self.read(start, end - start))
                for a, s in group:
                    out[a] = bytes(chunk[a - start:a - start + s])
            except ReadError:
                for a, s in group:
                    try:
                        out[a] = self.read(a, s)
                    except ReadError as e:
                        out[a] = e
            i = j
        return out


# --- execution control: what a probe (runtime/probes.py) needs of a live program -----

REG_NAMES = ("rip", "rsp", "rax", "rbx", "rcx", "rdi", "r14")


@dataclass
class Regs:
    """The registers a probe reads (amd64, unsigned), in REG_NAMES' order."""
    pc: int
    sp: int
    rax: int
    rbx: int
    rcx: int
    rdi: int
    r14: int


@dataclass(frozen=True)
class RegisterEquals:
    """A breakpoint's condition: `register` (one of REG_NAMES) holds `value`.

    A control may evaluate it in the debugger, so that hits failing it never reach the
    on-hit (Delve: a server-side condition), or hand every hit over (gdb: its Python
    stop() is the fast path, and the probe counts the calls on other maps): an on-hit
    checks the condition again itself."""
    register: str
    value: int


# A thread stopped at our breakpoint, with its registers: True stops the program (resume
# returns HIT), False lets it go on at once. An exception stops it and comes out of resume.
OnHit = Callable[[Regs], bool]

# Why Control.resume returned. All but HIT end a probe, and name how (its stopped_by).
HIT = "hit"                # an on-hit said stop
STOPPED = "stopped"        # a stop not ours: someone else's breakpoint, a halt from elsewhere
SIGNAL = "signal"          # the program stopped with a signal
TIMEOUT = "timeout"        # the deadline came; the program is stopped again
INTERRUPT = "interrupt"    # Ctrl-C (the bridge: SIGINT or SIGTERM); the program is stopped
EXITED = "exited"          # the program is gone


class Control(Protocol):
    """Execution control of a live, stopped program: the breakpoints a probe puts in, the
    runs between them, and leaving everything as it was. gdb (gdb/control.py) and Delve
    (delve_bridge/control.py) each implement it; the one probe loop over it is
    runtime/probes.py's watch_calls.

    The order of use: begin(); add_breakpoint(...) and resume(...) as often as needed;
    then, on every way out, remove_all() and finish() (both also after a begin() that
    failed half-way). Registers are never written. A probe runs on one thread."""

    def begin(self) -> None:
        """Get ready to run the program (gdb: its stop events, `handle SIGINT stop nopass`;
        the bridge: SIGINT and SIGTERM only set a flag until finish())."""

    def add_breakpoint(self, addr: int, on_hit: OnHit,
                       condition: Optional[RegisterEquals] = None) -> None:
        """A breakpoint of ours at the exact address addr (the program is stopped); the
        debugger's reason as GoExtError if it cannot be put there."""

    def resume(self, deadline: float) -> str:
        """Let the program run until an on-hit says stop (HIT), a stop not ours (STOPPED,
        SIGNAL), time.monotonic() reaches deadline (TIMEOUT: halted again), the user
        interrupts (INTERRUPT) or it exits (EXITED). Returns at once with TIMEOUT or
        INTERRUPT when they came before the call. GoExtError when it cannot run."""

    def remove_all(self) -> list:
        """Stop the program if it still runs, and remove every breakpoint of ours, each
        tried even when others fail; a sentence for each failure (never raised for one)."""

    def finish(self) -> list:
        """Leave the program as the user had it: stopped, no signal of ours pending (gdb: a
        SIGINT of the timeout; dlv: the SIGTRAP of a halt), the user's thread selected,
        signal handling restored. Sentences for what may be left over."""


def not_live(has_process: bool) -> GoExtError:
    """Why a target has no execution control: a core file, or no process at all."""
    return GoExtError("probes need a live process, and this target is "
                      + ("a core file" if has_process else "not running") + ".")
