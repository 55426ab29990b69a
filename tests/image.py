"""Memory images of real Go processes, for the pure-decoder unit tests.

An image is what a decoder read from a live process (recorded by a capture
script running inside gdb), saved as gzipped JSON, plus optionally the
program's ELF file next to it. Loaded back, `ImageTarget` serves the whole
Target protocol (gdb_go_ext/target.py) from it, so GoRuntime and every
decoder run on it exactly as on gdb, without gdb, a process or a toolchain.

Format (one JSON object, gzipped):
  version        the Go version the program was built with
  ptr_size       8
  memory         [[addr, base64 bytes], ...]: sorted, non-overlapping ranges
  types          [{name, kind, size, length, fields: [[name, offset, type index]],
                   elem: index (ptr/array/slice), header: index (map),
                   map_name (map headers)}]: the GoType graph, by index
  lookup_types   {name: type index or null}: what Target.lookup_type answered
  symbol_types   {name: type index or null}: what Target.symbol_type answered
  symbols        {name: address or null}: what Target.symbol_address answered
  threads        [[lwp, pc, sp, bp, current], ...]: Target.threads()
  executable     file name (in the image's directory) of the program's ELF,
                 gzipped; its DWARF may be stripped (types are in the image)
  ...            anything else a capture script adds (truth files, maps, goroutines)

Capture side (imported inside gdb, so nothing here imports gdb): Recorder,
TypeTable, merge_reads, write_image. Test side: load_image, ImageTarget, RT.
"""
import atexit
import base64
import bisect
import glob
import gzip
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))

from gdb_go_ext.errors import GoExtError, ReadError  # noqa: E402
from gdb_go_ext.binary import types as T  # noqa: E402
from gdb_go_ext.target import Memory, Thread  # noqa: E402
from gdb_go_ext.runtime.layout import Layouts  # noqa: E402

DATA_DIR = os.path.join(HERE, "data")


# ---------------------------------------------------------------------------
# capture side
# ---------------------------------------------------------------------------
class Recorder:
    """A Target that forwards to `inner` and records every answer it gives.

    executable/threads: forward those too (False: answer None / [] as a target
    without a binary or threads would)."""

    def __init__(self, inner, executable=False, threads=False):
        self.inner = inner
        self.ptr_size = inner.ptr_size
        self.is_live = inner.is_live
        self.has_process = inner.has_process
        self.warnings = list(inner.warnings)
        self.direct = None   # every read goes through read(), to be recorded
        self._executable = executable
        self._threads = threads
        self.reads = {}
        self.types = {}
        self.symbols = {}
        self.symtypes = {}
        self.thread_list = []

    def read(self, addr, size):
        b = self.inner.read(addr, size)
        self.reads[(addr, size)] = b
        return b

    def symbol_address(self, name):
        v = self.inner.symbol_address(name)
        self.symbols[name] = v
        return v

    def lookup_type(self, name):
        v = self.inner.lookup_type(name)
        self.types[name] = v
        return v

    def symbol_type(self, name):
        v = self.inner.symbol_type(name)
        self.symtypes[name] = v
        return v

    def convert_type(self, t):
        return self.inner.convert_type(t)

    def executable(self):
        return self.inner.executable() if self._executable else None

    def selected_thread(self):
        return self.inner.selected_thread()

    def threads(self):
        if not self._threads:
            return []
        self.thread_list = list(self.inner.threads())
        return self.thread_list


def _resolve_header(t):
    h = t.extra.get("header")
    if callable(h) and not isinstance(h, T.GoType):
        h = h()
        t.extra["header"] = h
    return h


class TypeTable:
    """Numbers GoTypes and serialises the graph reachable from the ones added.

    Iterative (runtime types are deep and cyclic: g -> m -> p -> ... -> g)."""

    def __init__(self):
        self.ids = {}
        self.out = []

    def add(self, t):
        if t is None:
            return None
        if id(t) in self.ids:
            return self.ids[id(t)]
        first = self._number(t)
        todo = [t]
        while todo:
            cur = todo.pop()
            d = self.out[self.ids[id(cur)]]
            fields = []
            for f in cur.fields:
                ft = f.type
                fields.append([f.name, f.offset, self._number(ft, todo)])
            d["fields"] = fields
            if cur.kind in (T.PTR, T.ARRAY, T.SLICE, T.CHAN):
                d["elem"] = self._number(cur.elem, todo)
            if cur.kind == T.MAP:
                d["header"] = self._number(_resolve_header(cur), todo)
            if cur.extra.get("map_name"):
                d["map_name"] = cur.extra["map_name"]
        return first

    def _number(self, t, todo=None):
        if t is None:
            return None
        i = self.ids.get(id(t))
        if i is None:
            i = self.ids[id(t)] = len(self.out)
            self.out.append({"name": t.name, "kind": t.kind, "size": t.size, "length": t.length})
            if todo is not None:
                todo.append(t)
        return i


def merge_reads(reads):
    """{(addr, size): bytes} -> [(start, end, bytes)], overlapping/adjacent reads merged."""
    spans = sorted((a, a + s, b) for (a, s), b in reads.items())
    out = []
    for a, e, b in spans:
        if out and a <= out[-1][1]:
            pa, pe, pb = out[-1]
            if e > pe:
                pb = pb + b[pe - a:]
                pe = e
            out[-1] = (pa, pe, pb)
        else:
            out.append((a, e, b))
    return out


def image_dict(rec, tt, version, **extra):
    """The common part of an image from a Recorder and a TypeTable."""
    img = {
        "version": version,
        "ptr_size": rec.ptr_size,
        "memory": [[a, base64.b64encode(b).decode()] for a, e, b in merge_reads(rec.reads)],
        "lookup_types": {n: tt.add(t) for n, t in rec.types.items()},
        "symbol_types": {n: tt.add(t) for n, t in rec.symtypes.items()},
        "symbols": rec.symbols,
        "threads": [[th.lwp, th.pc, th.sp, th.bp, bool(th.current)] for th in rec.thread_list],
    }
    img.update(extra)
    img["types"] = tt.out  # last: every add() above may extend it
    return img


def write_image(path, img):
    with gzip.open(path, "wt") as f:
        json.dump(img, f, separators=(",", ":"))


# ---------------------------------------------------------------------------
# test side
# ---------------------------------------------------------------------------
_TMP = []


def _tmpdir():
    if not _TMP:
        d = tempfile.mkdtemp(prefix="gge-image-")
        atexit.register(shutil.rmtree, d, True)
        _TMP.append(d)
    return _TMP[0]


def _unpack_executable(image_path, name):
    """The image's gzipped ELF, decompressed once per process to a temp file."""
    src = os.path.join(os.path.dirname(os.path.abspath(image_path)), name)
    dest = os.path.join(_tmpdir(), name[:-3] if name.endswith(".gz") else name)
    if not os.path.exists(dest):
        with gzip.open(src, "rb") as f, open(dest + ".part", "wb") as o:
            shutil.copyfileobj(f, o)
        os.rename(dest + ".part", dest)
    return dest


def load_image(path):
    """(img dict, [GoType], [(addr, bytearray)]) of an image file.

    img["executable_path"] is the unpacked ELF (or None)."""
    with gzip.open(path, "rt") as f:
        img = json.load(f)
    types = []
    for d in img["types"]:
        types.append(T.GoType(d["name"], d["kind"], d["size"], length=d["length"]))
    for d, t in zip(img["types"], types):
        t.fields = tuple(T.Field(n, o, types[i]) for n, o, i in d["fields"])
        t._by_name = None
        if d.get("elem") is not None:
            t._elem = types[d["elem"]]
        if d.get("header") is not None:
            t.extra["header"] = types[d["header"]]
        if d.get("map_name"):
            t.extra["map_name"] = d["map_name"]
    mem = [(a, bytearray(base64.b64decode(b))) for a, b in img["memory"]]
    exe = img.get("executable")
    img["executable_path"] = _unpack_executable(path, exe) if exe else None
    return img, types, mem


class ImageTarget:
    """The Target protocol over a loaded image. `mem` is a sorted list of
    (addr, bytearray): tests may edit the bytes or drop ranges (unreadable)."""

    def __init__(self, img, types, mem):
        self.ptr_size = img["ptr_size"]
        self.is_live = False
        self.has_process = True
        self.warnings = []
        self.direct = None
        self.mem = mem
        self.starts = [a for a, _ in mem]
        self.types = {n: (types[i] if i is not None else None)
                      for n, i in img["lookup_types"].items()}
        self.symtypes = {n: (types[i] if i is not None else None)
                         for n, i in img.get("symbol_types", {}).items()}
        self.symbols = img["symbols"]
        self._threads = [Thread(*t) for t in img.get("threads", [])]
        self._exe = img.get("executable_path")

    def read(self, addr, size):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and size >= 0:
            a, b = self.mem[i]
            if addr + size <= a + len(b):
                return bytes(b[addr - a:addr - a + size])
        raise ReadError(addr, size, "not in the image")

    def symbol_address(self, name):
        return self.symbols.get(name)

    def lookup_type(self, name):
        return self.types.get(name)

    def symbol_type(self, name):
        return self.symtypes.get(name)

    def executable(self):
        return self._exe

    def threads(self):
        return list(self._threads)

    def selected_thread(self):
        return None

    def evaluate(self, expr, name):
        raise GoExtError(f"an image evaluates no expression ({expr})")

    def run_in_goroutine(self, g, command):
        raise GoExtError("an image runs no command")


class RT:
    """The least a decoder needs of a GoRuntime: .target, .mem, .layout and .values."""

    def __init__(self, target):
        self.target = target
        self.mem = Memory(target)
        self.layout = Layouts(target, self.mem)
        from gdb_go_ext.runtime.values import ValueDecoder
        self.values = ValueDecoder(self)


def copy_memory(mem):
    return [(a, bytearray(b)) for a, b in mem]


def poke(mem, addr, data):
    """Overwrite bytes at addr in a memory list (must lie inside one range)."""
    for a, b in mem:
        if a <= addr and addr + len(data) <= a + len(b):
            b[addr - a:addr - a + len(data)] = data
            return
    raise AssertionError("address %#x not in the image" % addr)


def unmap(mem, addr, size):
    """Remove [addr, addr+size) from a memory list (reads there then fail)."""
    out = []
    end = addr + size
    for a, b in mem:
        e = a + len(b)
        if e <= addr or a >= end:
            out.append((a, b))
            continue
        if a < addr:
            out.append((a, b[:addr - a]))
        if e > end:
            out.append((end, b[end - a:]))
    return out


_LOADED: dict = {}


def images(kind: str) -> tuple[list, list]:
    """(paths, ids) of the captured images of one fixture, e.g. 'goroutines'."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = sorted(glob.glob(os.path.join(here, "data", f"{kind}-*.json.gz")))
    ids = [os.path.basename(p)[len(kind) + 1:-len(".json.gz")] for p in paths]
    return paths, ids


def cached_image(path: str):
    """load_image, once per path and test process (callers copy memory before poking it)."""
    if path not in _LOADED:
        _LOADED[path] = load_image(path)
    return _LOADED[path]
