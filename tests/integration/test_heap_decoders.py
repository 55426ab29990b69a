"""runtime/heapobjs.py and runtime/rtypes.py on the heap fixture (tests/fixtures/heap): every
matrix toolchain from Go 1.22, live and on a core, in gdb (its own memory reads) and through
the bridge (Delve's), against what the runtime said (heap.json: runtime.ReadMemStats right
after two GCs) and what the program built:
  - the allocated slots sum to HeapAlloc and count HeapObjects, but for what writeTruth
    and fmt.Println allocate after ReadMemStats (the JSON, its map and buffers: a few KB);
  - main.tree's 2047 nodes (main.node: left, right at 0 and 8, small objects with heap
    bits), main.table (a []*node of 200: a malloc header typed *main.node, 200 pointers to
    tree.left), main.big (a []*entry of 5000: a large span, largeType *main.entry, one
    pointer), the needle found from main.registry through the map's own objects, and the
    goroutines' buffers (noscan: no pointers);
  - each pointer word equals the word in memory at that offset, and the offsets are the
    DWARF fields' (left/right, name's data pointer, next).
summary() runs inside gdb (imported by a `python` command) and on a Bridge's runtime alike:
it must import nothing beyond the standard library, numpy and gdb_go_ext.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)

MAX_WALK = 100_000


def _obj(h, addr):
    import numpy as np
    i = int(h.locate(np.array([addr], dtype=np.uint64))[0])
    return i


def _ptrs(h, i):
    import numpy as np
    src, off, val = h.pointers(np.array([i], dtype=np.int64))
    return sorted(zip(off.tolist(), val.tolist()))


def summary(rt) -> str:
    """What the heap decoders found in the heap fixture, as JSON (see the module doc)."""
    import numpy as np
    from gdb_go_ext.runtime.heapobjs import read_heap
    from gdb_go_ext.runtime.rtypes import rtypes
    h = read_heap(rt)
    R = rtypes(rt)
    mem = rt.mem
    out = {"errors": list(h.errors), "n": h.n, "spans": len(h.span_base)}
    alloc = np.flatnonzero(h.allocated)
    out["objects"] = int(len(alloc))
    out["bytes"] = int(h.size(alloc).sum())
    # every allocated object's pointer words, each checked against memory
    src, off, val = h.pointers(alloc)
    out["pointer_words"] = int(len(src))
    addrs = h.addr(src) + off.astype(np.uint64)
    sample = np.linspace(0, len(src) - 1, min(len(src), 2000)).astype(np.int64) if len(src) else []
    out["pointer_mismatch"] = sum(1 for k in sample
                                  if mem.u64(int(addrs[k])) != int(val[k]))
    out["pointers_in_heap"] = int((h.locate(val) >= 0).sum())
    # each span's allocated slots against the count the runtime keeps (mspan.allocCount)
    ac = rt.target.lookup_type("runtime.mspan").offset("allocCount")
    counts = [struct.unpack("<H", mem.read(int(a) + ac, 2))[0] for a in h.span_addr.tolist()]
    got = np.add.reduceat(h.allocated.astype(np.int64), h.span_first) if h.n else []
    out["alloc_count_mismatch"] = [(hex(int(h.span_base[k])), int(got[k]), c)
                                   for k, c in enumerate(counts) if got[k] != c][:5]
    sizes = h.size(alloc)
    cls = h.span_class[h.span_of(alloc)]
    out["noscan_49152"] = int(((sizes == 49152) & (cls & 1 == 1)).sum())
    out["noscan_8192"] = int(((sizes == 8192) & (cls & 1 == 1)).sum())
    ty = h.type_of(alloc)
    out["type_names"] = sorted({(R.at(int(t)).name if R.at(int(t)) else "?")
                                for t in np.unique(ty[ty != 0])})
    node = rt.type("main.node")
    out["node_fields"] = {f.name: f.offset for f in node.fields}

    # the tree: every node through pointers(), from main.tree
    root = mem.ptr(rt.global_addr("main.tree"))
    seen, todo, bad = set(), [root], []
    while todo and len(seen) < MAX_WALK:
        a = todo.pop()
        if a in seen:
            continue
        seen.add(a)
        i = _obj(h, a)
        if i < 0 or int(h.addr(np.array([i]))[0]) != a:
            bad.append(hex(a))
            continue
        ps = _ptrs(h, i)
        direct = [(o, mem.u64(a + o)) for o in (node.offset("left"), node.offset("right"))]
        if ps != [(o, v) for o, v in direct if v]:
            bad.append(f"{a:#x}: {ps} != {direct}")
        todo.extend(v for _, v in ps)
    out["tree"] = {"nodes": len(seen), "bad": bad[:5],
                   "size": int(h.size(np.array([_obj(h, root)]))[0]),
                   "type": int(h.type_of(np.array([_obj(h, root)]))[0])}

    # main.table: a header object typed *main.node, 200 pointers to tree.left
    tptr, tlen, _ = struct.unpack("<QQQ", mem.read(rt.global_addr("main.table"), 24))
    ti = _obj(h, tptr)
    tps = _ptrs(h, ti)
    left = mem.u64(root + node.offset("left"))
    tt = R.at(int(h.type_of(np.array([ti]))[0]))
    out["table"] = {"len": tlen, "size": int(h.size(np.array([ti]))[0]),
                    "base_is_header": int(h.addr(np.array([ti]))[0]) + 8 == tptr,
                    "type": tt.name if tt else None,
                    "offsets_ok": [o for o, _ in tps] == [8 + 8 * k for k in range(tlen)],
                    "values_ok": all(v == left for _, v in tps), "pointers": len(tps)}

    # main.big: a large span, largeType *main.entry, big[0] the only pointer
    bptr, blen, _ = struct.unpack("<QQQ", mem.read(rt.global_addr("main.big"), 24))
    bi = _obj(h, bptr)
    bt = R.at(int(h.type_of(np.array([bi]))[0]))
    out["big"] = {"len": blen, "size": int(h.size(np.array([bi]))[0]),
                  "base": int(h.addr(np.array([bi]))[0]) == bptr,
                  "large": int(h.span_class[h.span_of(np.array([bi]))[0]]) >> 1 == 0,
                  "type": bt.name if bt else None,
                  "pointers": _ptrs(h, bi) == [(0, mem.u64(bptr))] and mem.u64(bptr) != 0}

    # the needle: reached from main.registry through the map's objects
    entry = rt.type("main.entry")
    reg = mem.ptr(rt.global_addr("main.registry"))
    frontier = np.unique(h.locate(np.array([reg], dtype=np.uint64)))
    reached = np.zeros(h.n, dtype=bool)
    for _ in range(64):
        frontier = frontier[frontier >= 0]
        frontier = frontier[~reached[frontier]]
        if not len(frontier):
            break
        reached[frontier] = True
        _, _, v = h.pointers(frontier)
        frontier = np.unique(h.locate(v))
    out["registry_reaches"] = int(reached.sum())
    return json.dumps(out, default=int)


def needle_facts(rt, needle: int) -> dict:
    import numpy as np
    from gdb_go_ext.runtime.heapobjs import read_heap
    h = read_heap(rt)
    entry = rt.type("main.entry")
    i = _obj(h, needle)
    return {"slot": i, "size": int(h.size(np.array([i]))[0]) if i >= 0 else 0,
            "pointers": _ptrs(h, i) if i >= 0 else [],
            "name_ptr": rt.mem.u64(needle + entry.offset("name")),
            "next_off": entry.offset("next")}


GDB_SNIPPET = ("python import sys; sys.path[:0] = [%r]; import test_heap_decoders as _thd; "
               "from gdb_go_ext.gdb import session as _s; print(_thd.summary(_s.runtime())); "
               "print(_thd.json.dumps(_thd.needle_facts(_s.runtime(), %d)))")


def check(got: dict, needle: dict, truth: dict) -> None:
    assert got["errors"] == [], got["errors"]
    # HeapAlloc and HeapObjects, but for what writeTruth allocates after ReadMemStats
    d_objects = got["objects"] - truth["heap_objects"]
    d_bytes = got["bytes"] - truth["heap_alloc"]
    assert -16 <= d_objects <= 400, (got["objects"], truth["heap_objects"])
    assert -4096 <= d_bytes <= 32768, (got["bytes"], truth["heap_alloc"])
    assert got["alloc_count_mismatch"] == [], got["alloc_count_mismatch"]
    assert got["pointer_mismatch"] == 0
    assert got["pointer_words"] >= (truth["tree_nodes"] - 1) + 200 + 1 + truth["map_entries"]
    nf = got["node_fields"]
    assert (nf["left"], nf["right"]) == (0, 8)
    tree = got["tree"]
    assert tree["nodes"] == truth["tree_nodes"] and tree["bad"] == [], tree
    assert tree["size"] == 64 and tree["type"] == 0     # heap bits: no type recorded
    table = got["table"]
    assert table == {"len": 200, "size": 1792, "base_is_header": True, "type": "*main.node",
                     "offsets_ok": True, "values_ok": True, "pointers": 200}, table
    big = got["big"]
    assert big == {"len": 5000, "size": 40960, "base": True, "large": True,
                   "type": "*main.entry", "pointers": True}, big
    assert "*main.node" in got["type_names"] and "*main.entry" in got["type_names"]
    assert got["noscan_49152"] >= truth["buckets"][0]["goroutines"]
    assert got["noscan_8192"] >= truth["buckets"][1]["goroutines"]
    assert got["registry_reaches"] >= truth["map_entries"]
    # the needle: in a slot of its size class, its one pointer its name's bytes
    assert needle["slot"] >= 0 and needle["size"] == truth["needle_size"] == 224
    assert needle["pointers"] == [[0, needle["name_ptr"]]]


def _parse(block: str) -> tuple:
    lines = [l for l in block.splitlines() if l.startswith("{")]
    return json.loads(lines[0]), json.loads(lines[1])


def test_heap_objects(toolchain, mode, go_target):
    import harness
    version = tuple(int(x) for x in harness.toolchain(toolchain)["version"][2:].split(".")[:2])
    if version < (1, 22):
        import pytest
        pytest.skip("the heap decoders need Go 1.22+ (allocation headers)")
    t = go_target("heap")
    truth = t.truth("heap")
    needle = int(truth["needle"], 16)
    r = t.gdb([("heap", GDB_SNIPPET % (HERE, needle))])
    assert r.error("heap") is None, r.stdout[-3000:] + r.stderr[-3000:]
    got, facts = _parse(r.block("heap"))
    check(got, facts, truth)
    assert "Traceback" not in r.stdout + r.stderr
    if mode == "core":   # Delve's reads too: the same answer
        sys.path.insert(0, harness.REPO)
        from delve_bridge import Bridge
        with Bridge.core(t.binary, t.core, quiet=True) as b:
            rt = b.runtime()
            bgot = json.loads(summary(rt))
            bfacts = json.loads(json.dumps(needle_facts(rt, needle)))
        check(bgot, bfacts, truth)
        assert bgot == got
