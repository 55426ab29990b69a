"""Capture memory images of the heap fixture for tests/unit/test_heaproots_unit.py.

As a program (driver): build the fixture (tests/fixtures/heap) with each toolchain, run
it, attach gdb with the extension and source this file inside it:
    python3 tests/data/heaproots/capture.py go1.22.10 go1.26.6
writes tests/data/heaproots/heap-<toolchain>.json.gz and the program's ELF (DWARF
stripped, gzipped) next to it.

Inside gdb (what the driver runs), with CAPTURE_OUT and CAPTURE_TRUTH_DIR set: the
goroutine walk, global_roots, stack_roots and special_roots run through a Target that
records every read, symbol and type they ask for; the image also holds the fixture's
heap.json and, for each holdA/holdB buffer, the mspan (start, elemsize) the runtime's
spanOf finds for it (read through the same recording target).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, TESTS)

try:
    import gdb
except ImportError:
    gdb = None


def span_of(rt, p):
    """(startAddr, elemsize) of the mspan holding p, as the runtime's spanOf finds it
    (linux/amd64: arenaL1Bits 0, 64 MiB arenas, 8 KiB pages)."""
    mh = rt.global_addr("runtime.mheap_")
    l2 = rt.mem.u64(mh + rt.target.symbol_type("runtime.mheap_").find("arenas")[0])
    ha = rt.mem.u64(l2 + 8 * ((((p + (1 << 47)) & ((1 << 64) - 1)) >> 26)))
    s = rt.mem.u64(ha + rt.type("runtime.heapArena").find("spans")[0] + 8 * ((p >> 13) % 8192))
    t = rt.type("runtime.mspan")
    return rt.mem.u64(s + t.find("startAddr")[0]), rt.mem.u64(s + t.find("elemsize")[0])


def capture_in_gdb(out_path, truth_dir):
    from gdb_go_ext.gdb import session
    from gdb_go_ext.runtime import walks
    from gdb_go_ext.runtime.goruntime import GoRuntime
    from gdb_go_ext.runtime.heaproots import global_roots, special_roots
    from gdb_go_ext.runtime.stackroots import stack_roots
    from image import Recorder, TypeTable, image_dict, write_image

    inner = session.runtime().target
    rec = Recorder(inner, executable=True, threads=True)
    rt = GoRuntime(rec)
    walker, gs = walks.walk(rt, 0)
    g = global_roots(rt)
    s = stack_roots(rt, gs)
    special_roots(rt, None)
    spans = {}
    for i, r in enumerate(s.roots):
        if r.name in ("main.holdA", "main.holdB"):
            for v in s.value[s.root == i].tolist():
                spans[str(v)] = list(span_of(rt, v))
    for name in ("runtime.firstmoduledata", "runtime.mheap_"):
        rec.symbol_address(name)
    with open(os.path.join(truth_dir, "heap.json")) as f:
        truth = json.load(f)
    tt = TypeTable()
    img = image_dict(rec, tt, rt.layout.go_version, truth=truth, spans=spans,
                     executable=os.path.basename(out_path).replace(".json.gz", ".elf.gz"))
    write_image(out_path, img)
    gdb.write("captured %d global, %d stack words, %d memory ranges into %s\n"
              % (len(g.value), len(s.value), len(img["memory"]), out_path))


def drive(toolchains):
    import subprocess
    import tempfile
    import harness
    for tc in toolchains:
        binary = harness.build("heap", tc)
        out = os.path.join(HERE, "heap-%s.json.gz" % tc)
        with harness.run_fixture(binary) as fp:
            setup = "python CAPTURE_OUT=%s; CAPTURE_TRUTH_DIR=%s" % (
                json.dumps(out), json.dumps(fp.out_dir))
            r = harness.run_gdb(binary, pid=fp.pid, timeout=600, commands=[
                ("setup", setup), ("capture", "source " + os.path.abspath(__file__))])
            sys.stdout.write(r.block("capture") + "\n")
            if r.error("capture") or not os.path.exists(out):
                sys.exit("capture with %s failed:\n%s\n%s" % (tc, r.stdout[-3000:],
                                                             r.stderr[-3000:]))
        with tempfile.TemporaryDirectory() as tmp:
            stripped = os.path.join(tmp, "exe")
            subprocess.run(["objcopy", "--strip-debug", binary, stripped], check=True)
            with open(stripped, "rb") as f, open(out.replace(".json.gz", ".elf.gz"), "wb") as o:
                subprocess.run(["gzip", "-9n"], stdin=f, stdout=o, check=True)
        print("%s: %d bytes" % (tc, os.path.getsize(out)))


if gdb is not None and "CAPTURE_OUT" in dir(__import__("__main__")):
    import __main__
    capture_in_gdb(__main__.CAPTURE_OUT, __main__.CAPTURE_TRUTH_DIR)
elif __name__ == "__main__" and gdb is None:
    drive(sys.argv[1:] or ["go1.22.10", "go1.26.6"])
