"""The Target protocol (gdb_go_ext/target.py) over a headless dlv.

Memory comes from RPCServer.ExamineMemory, in aligned blocks that are cached
until the target runs again (goroutine stacks and g structs are dense, so one
64 KiB call serves many of them); independent block reads are pipelined on the
connection. The per-call limit (1000 bytes before Delve 1.24, 65536 after) is
detected by trying the larger one. Symbols and type layouts come from the
binary itself (ELF symbols, DWARF via pyelftools), threads and registers from
ListThreads / ListRegisters.

A position-independent executable (-buildmode=pie, ELF type ET_DYN) is loaded at a
bias: its ELF symbol values are link-time addresses, and symbol_address adds the
bias (load_bias, found once per target) as gdb does when it relocates symbols. PCs,
registers and addresses Delve itself returns are already loaded addresses, and the
pclntab follows runtime.text (gdb_go_ext/runtime/goruntime.py). An ordinary
executable (ET_EXEC) has bias 0 and costs nothing.
"""
from __future__ import annotations

import base64
import os
import struct
from typing import Optional

from gdb_go_ext.errors import DecodeError, GoExtError, ReadError
from gdb_go_ext.binary import types as T
from gdb_go_ext.binary.elf import PT_NOTE, ElfFile
from gdb_go_ext.target import Thread
from gdb_go_ext.target.base import Scope, first_direct, not_live
from gdb_go_ext.binary.generics import is_shape

from gdb_go_ext.binary.dwarf import DwarfTypes
from .rpc import Client, ConnectionLost, RPCError

BIG, SMALL = 65536, 1000
ET_DYN = 3          # a PIE's ELF type
AT_ENTRY = 9        # auxv: the program's loaded entry point
NT_AUXV = 6         # a core's copy of the auxv
# package variables whose address Delve gives from its own relocated symbols
_BIAS_SYMBOLS = ("runtime.firstmoduledata", "runtime.buildVersion")


class DelveTarget:
    ptr_size = 8
    has_process = True   # dlv debugs a process or a core, never the executable alone

    def __init__(self, client: Client, executable: str, is_live: bool, max_cached_blocks: int = 8192,
                 direct=None, pid: Optional[int] = None, core: Optional[str] = None,
                 control=None):
        self.client = client
        # () -> the execution control of a live target (delve_bridge/control.py): it needs
        # the Bridge's state (its pending continue, breakpoints, settle), so the Bridge gives it
        self._control = control
        # a local process or core file: where the kernel's auxv says a PIE was loaded, should
        # Delve not say it (see load_bias)
        self._pid, self._core = pid, core
        self._bias: Optional[int] = None
        # optional accelerator, as the gdb backend has (gdb_go_ext/target/direct.py): the stopped
        # process's /proc/PID/mem or the core file's own segments. It only serves what it can
        # read in full; everything else goes to ExamineMemory, so reads are never different.
        self.direct = direct
        self.warnings: list = []
        self.is_live = is_live
        self._exe = executable
        try:
            self.elf = ElfFile.open(executable)
        except (OSError, DecodeError) as e:
            raise DecodeError(f"cannot read the program {executable}: {e}") from None
        self.types = DwarfTypes(executable, self.elf.build_id())
        self.limit: Optional[int] = None
        self.block = BIG
        self._blocks: dict[int, Optional[bytes]] = {}
        self._max_blocks = max_cached_blocks
        self.rpc_reads = 0

    # --- memory
    @property
    def direct(self):
        return self._direct

    @direct.setter
    def direct(self, source) -> None:
        self._direct = source
        self.read = first_direct(source, self._read_dlv)

    def invalidate(self) -> None:
        """Forget cached memory (call whenever the target has run)."""
        self._blocks.clear()

    def _detect_limit(self, addr: int) -> None:
        try:
            self._examine(addr & ~(BIG - 1), BIG)
            self.limit = BIG
        except RPCError as e:
            if isinstance(e, ConnectionLost):
                raise
            if "less than or equal" in e.message or "1000" in e.message:
                self.limit, self.block = SMALL, 512
            else:
                self.limit = BIG  # the probe hit unmapped memory; the limit check comes first
        self.block = BIG if self.limit == BIG else 512

    def _examine(self, addr: int, size: int) -> bytes:
        self.rpc_reads += 1
        r = self.client.call("ExamineMemory", {"Address": addr, "Length": size})
        data = base64.b64decode(r.get("Mem") or "")
        if len(data) != size:
            raise RPCError("ExamineMemory", f"short read at {addr:#x}: {len(data)} of {size} bytes")
        return data

    def _fetch_blocks(self, starts: list[int]) -> None:
        """Read many blocks with pipelined requests; a failed block is cached as None."""
        bs = self.block
        c = self.client
        window = 64
        for i in range(0, len(starts), window):
            part = starts[i:i + window]
            ids = [(s, c.send("ExamineMemory", {"Address": s, "Length": bs})) for s in part]
            self.rpc_reads += len(ids)
            for s, rid in ids:
                try:
                    r = c.wait(rid)
                    data = base64.b64decode(r.get("Mem") or "")
                    self._blocks[s] = data if len(data) == bs else None
                except ConnectionLost:
                    raise
                except RPCError:
                    self._blocks[s] = None
        if len(self._blocks) > self._max_blocks:
            for k in list(self._blocks)[: len(self._blocks) - self._max_blocks]:
                del self._blocks[k]

    def _read_dlv(self, addr: int, size: int) -> bytes:
        if addr <= 0 or size < 0 or addr + size > 1 << 64:
            raise ReadError(addr, size, "bad address")
        if size == 0:
            return b""
        if self.limit is None:
            self._detect_limit(addr)
        bs = self.block
        first = addr - addr % bs
        last = (addr + size - 1) - (addr + size - 1) % bs
        blocks = self._blocks
        if first == last:
            b = blocks.get(first, 0)
            if b == 0:
                self._fetch_blocks([first])
                b = blocks.get(first)
            if b is not None:
                o = addr - first
                return b[o:o + size]
            return self._exact(addr, size)
        starts = list(range(first, last + 1, bs))
        missing = [s for s in starts if s not in blocks]
        if missing:
            self._fetch_blocks(missing)
        parts = [blocks.get(s) for s in starts]
        if any(p is None for p in parts):
            return self._exact(addr, size)
        buf = b"".join(parts)
        o = addr - first
        return buf[o:o + size]

    def _exact(self, addr: int, size: int) -> bytes:
        """The range itself, not whole blocks (a block may straddle unmapped memory)."""
        out = []
        lim = self.limit or SMALL
        pos = addr
        try:
            while pos < addr + size:
                n = min(lim, addr + size - pos)
                out.append(self._examine(pos, n))
                pos += n
        except ConnectionLost:
            raise
        except RPCError as e:
            raise ReadError(addr, size, e.message) from None
        return b"".join(out)

    # --- symbols and types
    def symbol_address(self, name: str) -> Optional[int]:
        """The loaded address of a global or function: its ELF value plus the load bias."""
        s = self.elf.symbol(name)
        if s is None:
            return None
        return s[0] + self.load_bias if self.elf.e_type == ET_DYN else s[0]

    @property
    def load_bias(self) -> int:
        """Loaded address minus link-time address: 0 for an ordinary executable, without
        asking anyone; for a PIE, found once (Delve first, then the kernel's auxv)."""
        if self._bias is None:
            self._bias = self._find_bias() if self.elf.e_type == ET_DYN else 0
        return self._bias

    def _find_bias(self) -> int:
        why = []
        for name in _BIAS_SYMBOLS:
            sym = self.elf.symbol(name)
            if sym is None:
                continue
            try:
                r = self._eval(name)
            except ConnectionLost:
                raise
            except RPCError as e:
                why.append(f"dlv cannot evaluate {name}: {e.message}")
                continue
            addr = ((r or {}).get("Variable") or {}).get("addr")
            if _plausible_bias(addr, sym[0]):
                return addr - sym[0]
            why.append(f"dlv gives {name} no usable address")
        entry = self._auxv_entry()
        if _plausible_bias(entry, self.elf.entry):
            return entry - self.elf.entry
        why.append("no AT_ENTRY from the auxv of a local process or core")
        raise DecodeError(" ".join(f"cannot find where the position-independent executable "
                                   f"{self._exe} is loaded ({'; '.join(why)})".split()))

    def _auxv_entry(self) -> Optional[int]:
        """AT_ENTRY from /proc/PID/auxv (live) or the core's NT_AUXV note; None if neither."""
        raw = None
        if self._pid:
            try:
                with open(f"/proc/{self._pid}/auxv", "rb") as f:
                    raw = f.read(1 << 16)
            except OSError:
                raw = None
        elif self._core:
            try:
                raw = _core_auxv(ElfFile.open(self._core))
            except DecodeError:
                raw = None
        if not raw:
            return None
        for key, val in struct.iter_unpack("<QQ", raw[:len(raw) - len(raw) % 16]):
            if key == AT_ENTRY:
                return val
            if key == 0:
                break
        return None

    def lookup_type(self, name: str) -> Optional[T.GoType]:
        return self.types.lookup_type(name)

    def symbol_type(self, name: str) -> Optional[T.GoType]:
        return self.types.symbol_type(name)

    def executable(self) -> Optional[str]:
        return self._exe

    # --- expressions
    def _eval(self, expr: str, scope: Optional[Scope] = None) -> dict:
        """Delve's Eval of expr in a goroutine's frame (default: the selected goroutine's
        frame 0): the Variable's type and address, nothing loaded."""
        gid, frame = _dlv_scope(scope)
        return self.client.call("Eval", {"Expr": expr, "Scope": {"GoroutineID": gid, "Frame": frame},
                                         "Cfg": {"FollowPointers": False, "MaxVariableRecurse": 0,
                                                 "MaxStringLen": 0, "MaxArrayValues": 0,
                                                 "MaxStructFields": 0}})

    def _frame(self, scope: Optional[Scope]) -> tuple:
        """(function, words) of the frame an expression was evaluated in (Delve numbers
        frames as its `stack` does): words are the frame and its argument spill slots,
        where a generic body keeps its dictionary pointer, when the goroutine's stack
        bounds are known (scope.g); else []. (None, []) if Delve does not say."""
        gid, frame = _dlv_scope(scope)
        try:
            if gid < 0:
                st = self.client.call("State", {"NonBlocking": True}).get("State") or {}
                gid = (st.get("selectedGoroutine") or st.get("currentGoroutine") or {}).get("id") or -1
            if gid < 0:
                return None, []
            r = self.client.call("Stacktrace", {"Id": gid, "Depth": frame, "Full": False})
        except ConnectionLost:
            raise
        except RPCError:
            return None, []
        locs = r.get("Locations") or []
        if len(locs) <= frame:
            return None, []
        function = (locs[frame].get("function") or {}).get("name")
        g = scope.g if scope is not None else None
        hi = getattr(g, "stack_hi", 0)
        if not hi:
            return function, []
        cfa = hi + (locs[frame].get("FrameOffset") or 0)
        sp = hi + (locs[frame - 1].get("FrameOffset") or 0) if frame > 0 else getattr(g, "sp", 0)
        if not sp or not sp < cfa or cfa - sp > 1 << 16:
            return function, []
        try:
            data = self.read(sp, cfa - sp + 64)
        except ReadError:
            return function, []
        return function, list(struct.unpack(f"<{len(data) // 8}Q", data[:len(data) - len(data) % 8]))

    def evaluate(self, expr: str, name: str, scope: Optional[Scope] = None) -> tuple:
        """A global from the binary itself; anything else Delve evaluates in the selected
        goroutine's frame 0, or in frame scope.frame of goroutine scope.goroutine."""
        t, sym = self.symbol_type(name), self.symbol_address(name)
        if t is not None and sym is not None:
            if t.kind not in (T.MAP, T.CHAN, T.PTR):
                return t, None
            return t, struct.unpack("<Q", self.read(sym, 8))[0]
        try:
            v = self._eval(name, scope)
        except ConnectionLost:
            raise
        except RPCError as e:
            where = "the selected frame" if scope is None else \
                f"frame {scope.frame or 0} of goroutine " + \
                (str(scope.goroutine) if scope.goroutine is not None else "the selected goroutine")
            raise GoExtError(f"no symbol {name} in the program or {where} ({e.message})") from None
        var = (v or {}).get("Variable") or {}
        tname = var.get("type") or ""
        t = self.lookup_type(tname) or T.GoType(tname or "value of unknown type", T.UNKNOWN, 0)
        if is_shape(t.name):
            function, words = self._frame(scope)
            t = T.named_in_frame(t, function, self.elf, words, self.symbol_address)
        addr = var.get("addr") or 0
        if t.kind not in (T.MAP, T.CHAN, T.PTR) or not addr:
            return t, None
        return t, struct.unpack("<Q", self.read(addr, 8))[0]

    def run_in_goroutine(self, g, command: str) -> None:
        raise GoExtError(f"delve-bridge shows a goroutine's backtrace (bt), it runs no "
                         f"debugger command ({command!r}) in it; gdb's `go goroutine ID CMD` does")

    def selected_thread(self) -> Optional[int]:
        return None   # the bridge selects no thread: a view marks dlv's current one

    def control(self):
        """Execution control for probes (delve_bridge/control.py), live only."""
        if not self.is_live or self._control is None:
            raise not_live(has_process=True)
        return self._control()

    def threads(self) -> list[Thread]:
        st = self.client.call("State", {"NonBlocking": True}).get("State") or {}
        cur = (st.get("currentThread") or {}).get("id")
        out = []
        for th in self.client.call("ListThreads", {}).get("Threads") or []:
            tid = th.get("id")
            pc = th.get("pc") or 0
            sp = bp = 0
            try:
                regs = self.client.call("ListRegisters", {"ThreadID": tid, "IncludeFp": False})
                for r in regs.get("Regs") or []:
                    n = r.get("Name", "").lower()
                    if n in ("rsp", "rbp", "rip"):
                        v = int(r.get("Value", "0"), 16)
                        if n == "rsp":
                            sp = v
                        elif n == "rbp":
                            bp = v
                        else:
                            pc = v
            except (RPCError, ValueError) as e:
                if isinstance(e, ConnectionLost):
                    raise
            out.append(Thread(tid, pc, sp, bp, tid == cur))
        return out

    def close(self) -> None:
        self.types.close()
        if self.direct is not None:
            self.direct.close()


def _dlv_scope(scope: Optional[Scope]) -> tuple:
    """(GoroutineID, Frame) of Delve's EvalScope: -1 is the selected goroutine."""
    if scope is None:
        return -1, 0
    return (scope.goroutine if scope.goroutine is not None else -1), (scope.frame or 0)


def _plausible_bias(loaded, linked: int) -> bool:
    """A load address that moves linked by a whole number of pages (not backwards)."""
    return isinstance(loaded, int) and loaded > 0 and loaded >= linked and \
        (loaded - linked) % 4096 == 0


def _core_auxv(core: ElfFile) -> Optional[bytes]:
    """The NT_AUXV note of a core file (its PT_NOTE segments), or None."""
    data = core.view
    for seg in core.segments:
        if seg.type != PT_NOTE:
            continue
        off, end = seg.offset, min(seg.offset + seg.filesz, len(data))
        for _ in range(4096):
            if off + 12 > end:
                break
            namesz, descsz, typ = struct.unpack_from("<III", data, off)
            desc = off + 12 + ((namesz + 3) & ~3)
            if desc + descsz > end:
                break
            if typ == NT_AUXV:
                return bytes(data[desc:desc + descsz])
            off = desc + ((descsz + 3) & ~3)
    return None


def executable_of_pid(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
