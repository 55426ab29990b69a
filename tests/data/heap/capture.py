"""Capture memory images of the heap fixture for tests/unit/test_heapobjs_unit.py.

As a program (driver): build tests/fixtures/heap with each toolchain, run it, attach gdb
with the extension and source this file inside it:
    python3 tests/data/heap/capture.py go1.22.10 go1.24.11 go1.26.6
writes tests/data/heap-<toolchain>.json.gz (no ELF: the DWARF constants the decoders
would read from one take their defaults, the same values).

Inside gdb, with CAPTURE_OUT and CAPTURE_TRUTH_DIR set: it runs what
tests/integration/test_heap_decoders.py checks (summary, needle_facts) through a Target
that records every read, symbol and type they ask for, and stores the fixture's own
heap.json with them.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [TESTS, os.path.join(TESTS, "integration")]

try:
    import gdb
except ImportError:
    gdb = None


def capture_in_gdb(out_path, truth_dir):
    from gdb_go_ext.gdb import session
    from gdb_go_ext.runtime.goruntime import GoRuntime
    from image import Recorder, TypeTable, image_dict, write_image
    import test_heap_decoders as thd

    inner = session.runtime().target
    rec = Recorder(inner, executable=False, threads=False)
    rt = GoRuntime(rec)
    with open(os.path.join(truth_dir, "heap.json")) as f:
        truth = json.load(f)
    thd.summary(rt)
    thd.needle_facts(rt, int(truth["needle"], 16))
    exercise_types(rt)
    for name in ("runtime.mheap_", "runtime.firstmoduledata", "main.tree", "main.table",
                 "main.big", "main.registry", "main.finalized", "runtime.inProgress"):
        rec.symbol_address(name)
    for name in ("runtime.mspan", "runtime.mheap", "internal/abi.Type", "runtime._type",
                 "internal/abi.PtrType", "internal/abi.SliceType", "internal/abi.ChanType",
                 "internal/abi.ArrayType", "internal/abi.StructType", "internal/abi.StructField",
                 "internal/abi.SwissMapType", "internal/abi.MapType", "internal/abi.OldMapType",
                 "runtime.moduledata", "runtime.spanInlineMarkBits", "main.node", "main.entry"):
        rec.lookup_type(name)
    tt = TypeTable()
    img = image_dict(rec, tt, rt.layout.go_version, truth=truth)
    write_image(out_path, img)
    gdb.write("captured the heap: %d memory ranges into %s\n" % (len(img["memory"]), out_path))


def exercise_types(rt):
    """Read what tests/unit/test_rtypes_unit.py asks of the heap's types: each recorded
    type, its element, fields and their types, names, masks and built masks."""
    import numpy as np
    from gdb_go_ext.runtime.heapobjs import read_heap
    from gdb_go_ext.runtime.rtypes import rtypes
    h = read_heap(rt)
    R = rtypes(rt)
    alloc = np.flatnonzero(h.allocated)
    todo = [R.at(int(a)) for a in np.unique(h.type_of(alloc)) if a]
    seen = set()
    while todo and len(seen) < 500:
        t = todo.pop()
        if t is None or t.addr in seen:
            continue
        seen.add(t.addr)
        t.ptr_mask()
        if t.kind in (17, 25) and t.ptrbytes:
            R._build(t, 0)
        todo.append(t.elem)
        todo.extend(ft for _, _, ft in t.fields)
        t.length  # noqa: B018


def drive(toolchains):
    import harness
    harness.capture_images("heap", __file__, toolchains, with_elf=False)


if gdb is not None and "CAPTURE_OUT" in dir(__import__("__main__")):
    import __main__
    capture_in_gdb(__main__.CAPTURE_OUT, __main__.CAPTURE_TRUTH_DIR)
elif __name__ == "__main__" and gdb is None:
    drive(sys.argv[1:] or ["go1.22.10", "go1.24.11", "go1.26.6"])
