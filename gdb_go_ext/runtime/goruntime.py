"""One decoded view of a Go process: its target, its layouts (layout.py) and runtime tables.

Built once per target and shared by every decoder. What a decoder keeps on it declares
its lifetime where it is made: per_stop (what was read of the process's memory, dropped
by forget_state when the target moves) or per_binary (what follows from the program's
files, and the layouts: kept as long as the GoRuntime).
"""
from __future__ import annotations

import functools
import struct
from typing import Callable

from ..errors import DecodeError, NotGoError
from ..target import Memory, Target
from ..binary import types as T
from ..binary.elf import open_program
from .layout import Layouts


class GoRuntime:
    def __init__(self, target: Target):
        self.target = target
        self.mem = Memory(target)
        self._elf = None
        self._elf_tried = False
        # every runtime layout of the binary, resolved once (the version now, to fail
        # early on a target that is not a Go program)
        self.layout = Layouts(target, self.mem, self.elf)
        self.layout.require_go()
        self._per_stop: dict = {}
        self._per_binary: dict = {}

    def require_process(self) -> None:
        """Goroutines and map contents exist only in a process or a core, not in the file."""
        if not self.target.has_process:
            raise NotGoError("no process or core file is loaded: the executable alone holds no "
                             "goroutines or map contents (run it, `attach PID`, or `core FILE`; "
                             "if gdb said the core is not a core dump, it is damaged or truncated)")

    def forget_state(self) -> None:
        """The target ran or was written to: drop everything decoded from its memory
        (every per_stop entry); per_binary entries stay."""
        self._per_stop.clear()

    # --- caches with a declared lifetime; a key names its module ("heapobjs.heap")
    def per_stop(self, key, make: Callable):
        """The value kept under key for this stop: make() the first time after each
        forget_state. For what is read of the process's memory (it changes when the
        target runs on, or is written to)."""
        try:
            return self._per_stop[key]
        except KeyError:
            value = self._per_stop[key] = make()
            return value

    def per_binary(self, key, make: Callable):
        """The value kept under key for the life of this GoRuntime (one program, one
        process or core): make() once. For what follows from the binary's files and
        never changes when the target runs on (tables, stack maps, DWARF names, the
        load bias)."""
        try:
            return self._per_binary[key]
        except KeyError:
            value = self._per_binary[key] = make()
            return value

    @property
    def walks(self) -> dict:
        """The goroutine walks made on the current stop (runtime/walks.py), per stop."""
        return self.per_stop("walks", dict)

    # the binary, read from disk: pclntab, buildinfo, static data
    @property
    def elf(self):
        if not self._elf_tried:
            self._elf_tried = True
            self._elf = open_program(self.target.executable())
        return self._elf

    @functools.cached_property
    def values(self):
        """The value decoder of this target, shared by every map decoded on it (it keeps
        the type layouts it worked out)."""
        from .values import ValueDecoder
        return ValueDecoder(self)

    @functools.cached_property
    def pclntab(self):
        from ..binary.pclntab import PCLineTable
        if self.elf is None:
            raise DecodeError("the program's executable file is not available to read its pclntab")
        tab = PCLineTable.from_elf(self.elf)
        # a PIE is loaded at a bias: PCs in memory are the file's plus that bias
        live_text = self.target.symbol_address("runtime.text")
        file_text = self.elf.symbol("runtime.text")
        if live_text and file_text and live_text != file_text[0]:
            tab.text_start += live_text - file_text[0]
        return tab

    def func_named(self, name: str):
        """The pclntab Func of a function by name: through the ELF symbol table when it
        has one, which is already loaded, rather than an index of every function's name
        (tens of milliseconds in a large binary)."""
        tab = self.pclntab
        sym, text = self.elf.symbol(name), self.elf.symbol("runtime.text")
        if sym is not None and text is not None:  # (the table is at the load bias)
            f = tab.func_for_pc(sym[0] + tab.text_start - text[0])
            if f is not None and f.name == name:
                return f
        return tab.lookup_func(name)

    def type(self, name: str) -> T.GoType:
        t = self.target.lookup_type(name)
        if t is None:
            raise DecodeError(f"the binary has no type {name}")
        return t

    def global_addr(self, name: str) -> int:
        a = self.target.symbol_address(name)
        if a is None:
            raise DecodeError(f"the binary has no symbol {name}")
        return a

    @property
    def wait_reasons(self) -> list[str]:
        """runtime.waitReasonStrings, read from the binary."""
        return self.layout.wait_reasons

    @property
    def status_names(self) -> list[str]:
        """runtime.gStatusStrings, read from the binary."""
        return self.layout.status.names

    # --- pprof labels, in both representations the runtime has used (layout.LabelLayout)
    def labels_at(self, ptr: int) -> dict:
        """The pprof labels a g.labels pointer refers to, as {key: value}."""
        lay = self.layout.labels
        if lay.form is None:
            raise DecodeError("labels set but runtime/pprof.labelMap type not found")
        if lay.form == "map":
            try:
                from .maps import decode_map
            except ImportError:
                raise DecodeError("map-form labels need the map decoder") from None
            return _map_labels(decode_map(self, lay.map_type, self.mem.ptr(ptr)))  # *labelMap
        arr, n = struct.unpack("<QQ", self.mem.read(ptr + lay.offset, 16))
        if n > 4096:
            raise DecodeError(f"implausible label count {n}")
        return self.label_entries(self.mem.read(arr, n * lay.esize), 0, n) if n else {}

    def labels_many(self, ptrs: list) -> list:
        """labels_at for many g.labels pointers, read in bulk: a dict or a DecodeError each."""
        lay = self.layout.labels
        if lay.form != "slice":
            out = self._map_labels_many(ptrs, lay.map_type) if lay.form else [None] * len(ptrs)
            for i, labels in enumerate(out):
                if labels is None:   # the rest one by one
                    try:
                        out[i] = self.labels_at(ptrs[i])
                    except DecodeError as e:
                        out[i] = e
            return out
        off, esize = lay.offset, lay.esize
        out: list = [None] * len(ptrs)
        arrays, where = [], []
        for i, head in enumerate(self.mem.gather([(p + off, 16) for p in ptrs])):
            if head.__class__ is not tuple:
                out[i] = head
                continue
            arr, n = _SLICE_HEAD.unpack_from(*head)
            if n > 4096:
                out[i] = DecodeError(f"implausible label count {n}")
            elif n == 0:
                out[i] = {}
            else:
                arrays.append((arr, n * esize))
                where.append((i, n))
        # label sets repeat (worker=3 on thousands of goroutines, the same string data):
        # each distinct array of label headers is decoded once
        decoded: dict = {}
        for (i, n), view in zip(where, self.mem.gather(arrays)):
            try:
                if view.__class__ is not tuple:
                    raise view
                buf, base = view
                raw = bytes(buf[base:base + n * esize])
                labels = decoded.get(raw)
                if labels is None:
                    labels = decoded[raw] = self.label_entries(raw, 0, n)
                out[i] = dict(labels)
            except DecodeError as e:
                out[i] = e
        return out

    def _map_labels_many(self, ptrs: list, map_type: T.GoType) -> list:
        """Map-form labels (Go <= 1.20) of many g.labels pointers, in bulk where their
        maps are held in one bucket each (see maps.one_bucket_maps); None for the rest."""
        try:
            from .maps import one_bucket_maps
        except ImportError:
            return [None] * len(ptrs)
        out: list = [None] * len(ptrs)
        cells, errors = self.mem.unpack_fixed(ptrs, _WORD)   # *labelMap -> map header
        cells = list(cells)
        todo = []
        for i, (hmap,) in enumerate(cells):
            if i not in errors:
                if hmap:
                    todo.append(i)
                else:
                    out[i] = {}  # a nil map
        found = one_bucket_maps(self, map_type, [cells[i][0] for i in todo])
        made: dict = {}   # id of a (shared) MapContents -> its labels or DecodeError
        for i, contents in zip(todo, found):
            if contents is not None:
                labels = made.get(id(contents))
                if labels is None:
                    try:
                        labels = made[id(contents)] = _map_labels(contents)
                    except DecodeError as e:
                        labels = made[id(contents)] = e
                out[i] = dict(labels) if labels.__class__ is dict else labels
        return out

    def label_entries(self, buf, base: int, n: int) -> dict:
        """{key: value} of n label structs at buf[base:]."""
        lay = self.layout.labels
        esize, koff, voff = lay.esize, lay.koff, lay.voff
        out = {}
        cache = self.per_stop("label_strings", dict)  # (ptr, len) -> str; mostly shared
        unpack = _SLICE_HEAD.unpack_from
        for i in range(n):
            k = unpack(buf, base + i * esize + koff)
            v = unpack(buf, base + i * esize + voff)
            ks = cache.get(k)
            if ks is None:
                ks = cache[k] = self.mem.string_data(k[0], k[1], 1 << 16)
            vs = cache.get(v)
            if vs is None:
                vs = cache[v] = self.mem.string_data(v[0], v[1], 1 << 16)
            out[ks] = vs
        if len(cache) > 100_000:
            cache.clear()
        return out


_SLICE_HEAD = struct.Struct("<QQ")   # (data, len) of a string or slice header
_WORD = struct.Struct("<Q")


def _map_labels(contents) -> dict:
    """{key: value} of a decoded labelMap; its first error when it has no entries."""
    if contents.errors and not contents.entries:
        raise DecodeError(contents.errors[0])
    return {str(k): str(v) for k, v in contents.entries}
