"""The Target protocol (gdb_go_ext/target.py) over a headless dlv.

Memory comes from RPCServer.ExamineMemory, in aligned blocks that are cached
until the target runs again (goroutine stacks and g structs are dense, so one
64 KiB call serves many of them); independent block reads are pipelined on the
connection. The per-call limit (1000 bytes before Delve 1.24, 65536 after) is
detected by trying the larger one. Symbols and type layouts come from the
binary itself (ELF symbols, DWARF via pyelftools), threads and registers from
ListThreads / ListRegisters.
"""
from __future__ import annotations

import base64
import os
from typing import Optional

from gdb_go_ext.errors import DecodeError, ReadError
from gdb_go_ext.runtime import types as T
from gdb_go_ext.runtime.elf import ElfFile
from gdb_go_ext.target import Thread

from .dwarf import DwarfTypes
from .rpc import Client, ConnectionLost, RPCError

BIG, SMALL = 65536, 1000


class DelveTarget:
    ptr_size = 8

    def __init__(self, client: Client, executable: str, is_live: bool, max_cached_blocks: int = 8192,
                 direct=None):
        self.client = client
        # optional accelerator, as the gdb backend has (gdb_go_ext/memsource.py): the stopped
        # process's /proc/PID/mem or the core file's own segments. It only serves what it can
        # read in full; everything else goes to ExamineMemory, so reads are never different.
        self.direct = direct
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

    def read(self, addr: int, size: int) -> bytes:
        if addr <= 0 or size < 0 or addr + size > 1 << 64:
            raise ReadError(addr, size, "bad address")
        if size == 0:
            return b""
        if self.direct is not None:
            data = self.direct.read(addr, size)
            if data is not None:
                return data
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
        s = self.elf.symbol(name)
        return s[0] if s else None

    def lookup_type(self, name: str) -> Optional[T.GoType]:
        return self.types.lookup_type(name)

    def symbol_type(self, name: str) -> Optional[T.GoType]:
        return self.types.symbol_type(name)

    def executable(self) -> Optional[str]:
        return self._exe

    # --- threads
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


def executable_of_pid(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
