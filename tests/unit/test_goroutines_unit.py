"""The pure goroutine decoder (GoroutineWalker + Unwinder) on memory images of the
goroutines fixture (tests/data/goroutines-*.json.gz with the program's ELF next
to it, made by tests/fixtures/goroutines/capture.py), on hand-made faults, and
on hypothesis-generated corruptions: a bad goroutine becomes an error entry and
the rest comes out; nothing raises but DecodeError; nothing hangs.
"""
import json
import os
import struct
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import DecodeError  # noqa: E402
from gdb_go_ext.runtime.goroutines import MAX_GOROUTINES, BlockedOn, GoroutineWalker  # noqa: E402
from gdb_go_ext.runtime.stack import elide_wrappers  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.views.goroutines import blocked_on_text, goroutine_json  # noqa: E402
from gdb_go_ext.runtime.stack import MAX_PHYSICAL_FRAMES  # noqa: E402
from image import ImageTarget, cached_image, copy_memory, images, poke, unmap  # noqa: E402
from truth import drop_wrapper_frames, parse_runtime_stacks  # noqa: E402

IMAGES, IDS = images("goroutines")
# a decode of bad input must end; the bound is loose so that a busy machine (two test
# workers and a benchmark on two cores took 8 s once) does not fail it
HANG_SECONDS = 30



_cached = cached_image


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return _cached(request.param)


_TABLES = {}


def walk(image, mem=None, with_stack=200, share_pclntab=False, **kw):
    """(goroutines, walker) over the image, or over `mem` in its place.

    share_pclntab: reuse the image's parsed pclntab (it comes from the ELF file,
    which no test corrupts) instead of parsing it again: keeps fuzz examples fast."""
    img, types, mem0 = image
    rt = GoRuntime(ImageTarget(img, types, mem0 if mem is None else mem))
    if share_pclntab:
        key = img["executable_path"]
        if key not in _TABLES:
            _TABLES[key] = rt.pclntab
        rt.__dict__["pclntab"] = _TABLES[key]  # functools.cached_property's slot
    w = GoroutineWalker(rt)
    return w.walk(with_stack=with_stack, include_dead=kw.pop("include_dead", True), **kw), w


def u64(image, addr):
    return struct.unpack("<Q", ImageTarget(*image).read(addr, 8))[0]


def g_field(image, g_addr, path):
    gt = ImageTarget(*image).lookup_type("runtime.g")
    off, t = gt.find(path)
    if t.kind == "struct" and t.find("value") is not None:
        off += t.find("value")[0]
    return g_addr + off


def by_id(gs):
    return {g.id: g for g in gs}


def summary(g):
    """What a goroutine's entry says, for 'the rest is intact' comparisons."""
    d = goroutine_json(g, True)
    d.pop("wait_minutes")
    return d


def goid_of(image, func):
    """Address and id of the first goroutine whose truth stack has `func`."""
    img = image[0]
    truth = parse_runtime_stacks(img["truth"]["stacks.txt"])
    gs, _ = walk(image)
    for g in gs:
        t = truth.get(g.id)
        if t and any(f[0] == func for f in t["frames"]):
            return g.addr, g.id
    raise AssertionError("no goroutine in " + func)


def assert_rest_intact(image, gs, skip_ids=(), skip_addrs=()):
    clean = by_id(walk(image)[0])
    got = {g.id: g for g in gs if g.id not in skip_ids and g.addr not in skip_addrs}
    for gid, g in clean.items():
        if gid in skip_ids or g.addr in skip_addrs:
            continue
        assert gid in got, gid
        assert summary(got[gid]) == summary(g), gid


# ---------------------------------------------------------------------------
# the images themselves
# ---------------------------------------------------------------------------
def test_images_exist_and_are_small():
    assert {"go1.19", "go1.26.6"} <= set(IDS)
    for p in IMAGES:
        elf = p.replace(".json.gz", ".elf.gz")
        assert os.path.getsize(p) + os.path.getsize(elf) < 1_500_000, p


def test_image_carries_its_binary_and_threads(image):
    img, types, mem = image
    t = ImageTarget(img, types, mem)
    assert t.is_live is False and t.threads()
    exe = t.executable()
    assert exe and os.path.exists(exe) and open(exe, "rb").read(4) == b"\x7fELF"
    rt = GoRuntime(t)
    assert rt.layout.go_version == json.loads(img["truth"]["meta.json"])["version"]
    assert rt.pclntab.lookup_func("main.main") is not None
    assert rt.wait_reasons and rt.status_names


# ---------------------------------------------------------------------------
# clean images: the walker says what the runtime said
# ---------------------------------------------------------------------------
def test_walk_matches_runtime_stack(image):
    img = image[0]
    truth = parse_runtime_stacks(img["truth"]["stacks.txt"])
    meta = json.loads(img["truth"]["meta.json"])
    gs, w = walk(image, include_dead=False)
    assert w.errors == []
    ours = by_id(gs)
    main_id = int(meta["main_goid"])
    checked = 0
    for gid, want in truth.items():
        if gid == main_id or want["state"] in ("running", "runnable"):
            continue
        g = ours[gid]
        assert g.error is None, (gid, g.error)
        state = g.wait_reason if g.status == "waiting" else g.status
        assert state == want["state"], (gid, state, want)
        # runtime.Stack is level 1: the wrappers we show (a go statement's closure) hidden
        mine = [(f.function, f.line) for f in elide_wrappers(g.stack) if f.function.startswith("main.")]
        theirs = [f for f in want["frames"] if f[0].startswith("main.")]
        assert mine == theirs, (gid, mine, theirs)
        if want["created_by"]:
            assert (g.created_by.function, g.created_by.line) == want["created_by"], gid
        if want["parent"] is not None:
            assert g.parent_id == want["parent"], gid
        assert g.locked_to_thread == want["locked"], gid
        assert g.labels == meta["labels"].get(str(gid), {}), gid
        checked += 1
    assert checked >= 29
    for gid, labels in meta["labels"].items():
        assert ours[int(gid)].labels == labels
    for gid in meta["locked"]:
        assert ours[int(gid)].locked_to_thread
    # blocked-on: the 7 handlers wait on the same channel; the syscall one has its thread
    handle = [g for g in gs if any(f.function == "main.(*Server).handle" for f in g.stack)]
    assert len(handle) == meta["groups"]["handle"]
    assert len({g.blocked_on for g in handle}) == 1 and handle[0].blocked_on.kind == "chan"
    assert blocked_on_text(handle[0].blocked_on).startswith("channel 0x")
    sysg = [g for g in gs if g.status == "syscall"]
    assert len(sysg) == 1 and sysg[0].thread in {t[0] for t in img["threads"]}


def test_walk_equals_the_walk_in_gdb(image):
    """The image serves the decoder exactly what gdb served it at capture time."""
    img = image[0]
    gs, _ = walk(image)
    want = {g["id"]: g for g in img["goroutines"]["walk"]}
    assert len(gs) == len(want)
    for g in gs:
        w = dict(want[g.id])
        w.pop("wait_minutes")
        ours = summary(g)
        drop_wrapper_frames(ours)   # (shown since the image was captured)
        assert {k: ours.get(k) for k in w} == w, g.id


# ---------------------------------------------------------------------------
# faults: an error on the goroutine concerned, the rest intact
# ---------------------------------------------------------------------------
def test_unreadable_g(image):
    addr, gid = goid_of(image, "main.sender")
    gsize = ImageTarget(*image).lookup_type("runtime.g").size
    gs, w = walk(image, unmap(copy_memory(image[2]), addr, gsize))
    # not listed: one line says how many could not be read (issue 18: a core cut short
    # in allgs must not print a row per lost goroutine)
    assert not [g for g in gs if g.addr == addr]
    n = len(image[0]["goroutines"]["gs"])
    lines = [e for e in w.errors if "could not be read" in e]
    assert len(lines) == 1 and lines[0].startswith(f"1 of {n} goroutines in runtime.allgs"), w.errors
    assert_rest_intact(image, gs, skip_ids={gid})


@pytest.mark.parametrize("garbage", [0xdead0000, 0, 1, 0xFFFFFFFFFFFFFFF8, "stack", "allgs"])
def test_garbage_g_pointer_in_allgs(image, garbage):
    g = image[0]["goroutines"]
    addr, gid = goid_of(image, "main.sleeper")
    i = g["gs"].index(addr)
    if garbage == "stack":  # readable, but not a g
        garbage = g["stacks"][0][1]
    elif garbage == "allgs":
        garbage = g["array"]
    mem = copy_memory(image[2])
    poke(mem, g["array"] + 8 * i, garbage.to_bytes(8, "little"))
    gs, w = walk(image, mem)
    json.dumps([goroutine_json(x, True) for x in gs])
    if garbage in (0xdead0000, 1, 0xFFFFFFFFFFFFFFF8):
        assert not [x for x in gs if x.addr == garbage]   # one line says so instead
        assert any(e.startswith("1 of ") and "could not be read" in e for e in w.errors), w.errors
    assert gid not in by_id(gs) or by_id(gs)[gid].addr != addr
    assert_rest_intact(image, gs, skip_ids={gid}, skip_addrs={garbage})


@pytest.mark.parametrize("length", [MAX_GOROUTINES + 1, 1 << 40, (1 << 64) - 1, 1 << 20, 100])
def test_absurd_allgs_length(image, length):
    """allgs' slice length is garbage: runtime.allglen bounds it, with a warning."""
    g = image[0]["goroutines"]
    mem = copy_memory(image[2])
    poke(mem, g["allgs"] + 8, length.to_bytes(8, "little"))
    t0 = time.monotonic()
    gs, w = walk(image, mem)
    assert time.monotonic() - t0 < 10
    assert any("runtime.allglen is %d" % len(g["gs"]) in e for e in w.errors), w.errors
    assert_rest_intact(image, gs)


@pytest.mark.parametrize("length", [MAX_GOROUTINES + 1, 1 << 40, (1 << 64) - 1, 1 << 20])
def test_absurd_allgs_length_and_allglen(image, length):
    """Both counts are garbage: capped with a warning, and the walk still returns."""
    g = image[0]["goroutines"]
    mem = copy_memory(image[2])
    poke(mem, g["allgs"] + 8, length.to_bytes(8, "little"))
    allglen = image[0]["symbols"]["runtime.allglen"]
    poke(mem, allglen, length.to_bytes(8, "little"))
    t0 = time.monotonic()
    gs, w = walk(image, mem)
    assert time.monotonic() - t0 < 10
    assert w.errors, "no warning for an allgs length of %d" % length
    if length > MAX_GOROUTINES:
        assert any("absurd length" in e for e in w.errors), w.errors
    json.dumps([goroutine_json(x, True) for x in gs])


def test_garbage_saved_pc(image):
    addr, gid = goid_of(image, "main.locker")
    mem = copy_memory(image[2])
    poke(mem, g_field(image, addr, "sched.pc"), (0x1234).to_bytes(8, "little"))
    gs, w = walk(image, mem)
    g = by_id(gs)[gid]
    assert g.error and "not in Go code" in g.error and g.stack == []
    # the listing (no -t) says so too: no user location found
    gs0, _ = walk(image, mem, with_stack=0)
    assert by_id(gs0)[gid].error and by_id(gs0)[gid].user is None
    assert_rest_intact(image, gs, skip_ids={gid})


def test_garbage_return_address(image):
    """The first return address on the stack is garbage: the frames before it stay."""
    addr, gid = goid_of(image, "main.deep")
    clean = by_id(walk(image)[0])[gid]
    sp = u64(image, g_field(image, addr, "sched.sp"))
    # find the slot holding the return address of the first frame
    for off in range(0, 4096, 8):
        ret = u64(image, sp + off)
        if ret == clean.stack[1].pc:
            break
    else:
        raise AssertionError("no return address found")
    mem = copy_memory(image[2])
    poke(mem, sp + off, (0x10).to_bytes(8, "little"))
    gs, _ = walk(image, mem)
    g = by_id(gs)[gid]
    assert g.error and "not in Go code" in g.error
    assert [f.function for f in g.stack] == [f.function for f in clean.stack[:1]]
    assert_rest_intact(image, gs, skip_ids={gid})


def test_return_address_cycle_is_bounded(image):
    """Every word of a stack is the same return address (a cycle of frames): the
    walk ends at the stack's top or at the frame limit, with an error, quickly."""
    addr, gid = goid_of(image, "main.deep")
    clean = by_id(walk(image)[0])[gid]
    sp = u64(image, g_field(image, addr, "sched.sp"))
    hi = u64(image, g_field(image, addr, "stack.hi"))
    ret = clean.stack[1].pc  # a return address into main.deep
    mem = copy_memory(image[2])
    poke(mem, sp, ret.to_bytes(8, "little") * ((hi - sp) // 8))
    t0 = time.monotonic()
    gs, _ = walk(image, mem, with_stack=100_000)
    assert time.monotonic() - t0 < 5
    g = by_id(gs)[gid]
    assert g.error and ("outside the goroutine stack" in g.error or "frames" in g.error), g.error
    assert 1 < len(g.stack) <= MAX_PHYSICAL_FRAMES * 8
    assert_rest_intact(image, gs, skip_ids={gid})


@pytest.mark.parametrize("case", ["sp-below", "sp-above", "hi-below-lo", "huge-stack"])
def test_bad_stack_bounds(image, case):
    addr, gid = goid_of(image, "main.selector")
    lo = u64(image, g_field(image, addr, "stack.lo"))
    hi = u64(image, g_field(image, addr, "stack.hi"))
    mem = copy_memory(image[2])
    w64 = lambda path, v: poke(mem, g_field(image, addr, path), v.to_bytes(8, "little"))  # noqa: E731
    if case == "sp-below":
        w64("sched.sp", lo - 64)
    elif case == "sp-above":
        w64("sched.sp", hi + 64)
    elif case == "hi-below-lo":
        w64("stack.hi", lo - 8)
    else:
        w64("stack.lo", 0)
        w64("stack.hi", (1 << 63) - 8)
    gs, _ = walk(image, mem)
    g = by_id(gs)[gid]
    assert g.error and g.error.startswith("stack:"), g.error
    assert_rest_intact(image, gs, skip_ids={gid})


@pytest.mark.parametrize("case", ["cycle", "self", "garbage"])
def test_allm_faults(image, case):
    g = image[0]["goroutines"]
    ms = g["ms"]
    mt = ImageTarget(*image).lookup_type("runtime.m")
    link = mt.offset("alllink")
    mem = copy_memory(image[2])
    if case == "cycle":
        poke(mem, ms[-1] + link, ms[0].to_bytes(8, "little"))
    elif case == "self":
        poke(mem, ms[1] + link, ms[1].to_bytes(8, "little"))
    else:
        poke(mem, ms[1] + link, (0xdead0000).to_bytes(8, "little"))
    gs, w = walk(image, mem)
    want = "cycle" if case != "garbage" else "cannot read an m"
    assert any(want in e for e in w.errors), w.errors
    if case == "cycle":  # every m was still seen: the syscall goroutine keeps its thread
        assert_rest_intact(image, gs)
    json.dumps([goroutine_json(x, True) for x in gs])


@pytest.mark.parametrize("target", ["unmapped", "g-struct", "stack", "zero-page"])
def test_labels_pointing_at_garbage(image, target):
    img = image[0]
    meta = json.loads(img["truth"]["meta.json"])
    gid = int(next(iter(meta["labels"])))
    addr = next(g.addr for g in walk(image)[0] if g.id == gid)
    p = {"unmapped": 0xdead0000, "zero-page": 0x10, "g-struct": addr,
         "stack": img["goroutines"]["stacks"][0][1]}[target]
    mem = copy_memory(image[2])
    poke(mem, g_field(image, addr, "labels"), p.to_bytes(8, "little"))
    gs, _ = walk(image, mem)
    g = by_id(gs)[gid]
    assert g.labels == {} or g.labels != meta["labels"][str(gid)]
    if target in ("unmapped", "zero-page"):
        assert g.error and g.error.startswith("labels:"), g.error
    json.dumps(goroutine_json(g, True))
    assert_rest_intact(image, gs, skip_ids={gid})


def test_map_form_labels_at_readable_garbage_say_so():
    image = _cached(next(p for p in IMAGES if "go1.19" in p))
    img = image[0]
    gid = int(next(iter(json.loads(img["truth"]["meta.json"])["labels"])))
    addr = next(g.addr for g in walk(image)[0] if g.id == gid)
    mem = copy_memory(image[2])
    poke(mem, g_field(image, addr, "labels"), addr.to_bytes(8, "little"))  # points at a g
    g = by_id(walk(image, mem)[0])[gid]
    assert g.error and g.error.startswith("labels:")


def test_map_form_labels_in_bulk_match_one_by_one(monkeypatch):
    """Go <= 1.20 keeps labels in a map: maps held in one bucket are decoded in bulk
    (each distinct bucket once), and give what decode_map gives one by one. A map that
    is not such a map (B 1, an overflow bucket) goes to decode_map, with the same result."""
    from gdb_go_ext.runtime import maps
    image = _cached(next(p for p in IMAGES if "go1.19" in p))
    img = image[0]
    meta = json.loads(img["truth"]["meta.json"])
    gs, w = walk(image)
    labelled = [g for g in gs if str(g.id) in meta["labels"]]
    assert len(labelled) >= 2
    ptrs = [u64(image, g_field(image, g.addr, "labels")) for g in labelled]
    rt = w.rt
    slow = [rt.labels_at(p) for p in ptrs]
    assert slow == [meta["labels"][str(g.id)] for g in labelled]
    calls = []
    real = maps.decode_map
    monkeypatch.setattr(maps, "decode_map", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    assert rt.labels_many(ptrs) == slow and not calls   # all in bulk
    # the first map: B 1, then an overflow bucket; its labels come from decode_map
    hmap = u64(image, ptrs[0])
    h = maps.header_type(rt.layout.labels.map_type)
    bucket = u64(image, hmap + h.field("buckets").offset)
    bucket_t = h.field("buckets").type.elem
    for where, value in ((hmap + h.field("B").offset, b"\x01"),
                         (bucket + bucket_t.field("overflow").offset, (0xdead0000).to_bytes(8, "little"))):
        mem = copy_memory(image[2])
        poke(mem, where, value)
        rt2 = GoRuntime(ImageTarget(img, image[1], mem))
        calls.clear()
        got = rt2.labels_many(ptrs)
        assert calls == [hmap]
        want = []
        for p in ptrs:
            try:
                want.append(rt2.labels_at(p))
            except DecodeError as e:
                want.append(str(e))
        assert [x if isinstance(x, dict) else str(x) for x in got] == want
        assert got[1:] == slow[1:]


def test_garbage_sudog(image):
    addr, gid = goid_of(image, "main.selector")
    mem = copy_memory(image[2])
    poke(mem, g_field(image, addr, "waiting"), (0xdead0000).to_bytes(8, "little"))
    gs, _ = walk(image, mem)
    assert by_id(gs)[gid].blocked_on is None
    assert_rest_intact(image, gs, skip_ids={gid})


def test_select_chain_cycle_and_unreadable_link(image):
    """A select's sudogs are followed by waitlink: a link back to a sudog already seen
    ends the chain with the channels found so far, named once; an unreadable link
    leaves the goroutine with nothing rather than a part."""
    addr, gid = goid_of(image, "main.selector")
    sudog = ImageTarget(*image).lookup_type("runtime.sudog")
    o_c, o_link = sudog.offset("c"), sudog.offset("waitlink")
    first = u64(image, g_field(image, addr, "waiting"))
    second = u64(image, first + o_link)
    assert second and not u64(image, second + o_link)
    # what the sudogs themselves hold: the select's two channels, in case order
    want = BlockedOn("select", (u64(image, first + o_c), u64(image, second + o_c)))
    gs, _ = walk(image)
    assert by_id(gs)[gid].blocked_on == want
    assert blocked_on_text(want) == f"channel {want.addrs[0]:#x}, {want.addrs[1]:#x}"
    for link, expect in ((first, want), (second, want), (0xdead0000, None)):
        mem = copy_memory(image[2])
        poke(mem, second + o_link, link.to_bytes(8, "little"))
        gs2, _ = walk(image, mem)
        assert by_id(gs2)[gid].blocked_on == expect, hex(link)
        assert_rest_intact(image, gs2, skip_ids={gid})


# ---------------------------------------------------------------------------
# hypothesis: corrupt g structs, stacks, allgs, sudogs and ms
# ---------------------------------------------------------------------------
def _regions(img, gsize, msize):
    g = img["goroutines"]
    out = [("allgs", g["array"], 8 * len(g["gs"])), ("allgs-header", g["allgs"], 24)]
    out += [("g", a, gsize) for a in g["gs"]]
    out += [("stack", sp, hi - sp) for _, sp, hi in g["stacks"]]
    out += [("m", a, msize) for a in g["ms"]]
    out += [("sudog", a, 64) for a in g["sudogs"]]
    return out


def _interesting(img):
    g = img["goroutines"]
    return [0, 1, 0xFF, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 40, 0xc000000000,
            0x1000, 0x401000, g["array"], g["gs"][0], g["gs"][-1] + 8, g["stacks"][0][1],
            g["stacks"][-1][2] - 8, g["ms"][0]]


CORRUPTIONS = st.lists(
    st.tuples(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6),
              st.one_of(st.integers(0, 255).map(lambda b: ("byte", b)),
                        st.integers(0, 14).map(lambda i: ("word", i)),
                        st.integers(0, (1 << 64) - 1).map(lambda v: ("raw", v)))),
    min_size=1, max_size=30)


def _fuzz_one(image, corruptions):
    img, types, mem0 = image
    t = ImageTarget(img, types, mem0)
    regions = _regions(img, t.lookup_type("runtime.g").size, t.lookup_type("runtime.m").size)
    words = _interesting(img)
    mem = copy_memory(mem0)
    for which, pos, (kind, v) in corruptions:
        _, start, size = regions[which % len(regions)]
        if kind == "byte":
            poke(mem, start + pos % size, bytes([v]))
        elif size >= 8:
            val = words[v] if kind == "word" else v
            poke(mem, start + ((pos % (size - 7)) & ~7), val.to_bytes(8, "little"))
    for with_stack in (64, 0):
        t0 = time.monotonic()
        try:
            gs, w = walk(image, mem, with_stack=with_stack, share_pclntab=True)
            json.dumps([goroutine_json(g, bool(with_stack)) for g in gs])
            json.dumps(w.errors)
        except DecodeError:  # allowed by the contract; the walker in fact never raises
            pass
        assert time.monotonic() - t0 < HANG_SECONDS


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(corruptions=CORRUPTIONS)
def test_corrupted_images_never_raise_or_hang(path, corruptions):
    _fuzz_one(_cached(path), corruptions)


# --- output in slices (what gdb.write is given for a long view)
@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.text(alphabet="ab\n", max_size=40), max_size=30),
       limit=st.integers(min_value=1, max_value=25))
def test_line_slices_rebuild_the_text_in_whole_lines(pieces, limit):
    from gdb_go_ext.views.console import line_slices
    slices = list(line_slices(pieces, limit))
    assert "".join(slices) == "".join(pieces)
    assert all(0 < len(s) <= limit for s in slices)
    for s in slices[:-1]:  # a slice ends a line unless one line is longer than limit
        assert s.endswith("\n") or (len(s) == limit and "\n" not in s), (s, slices)


def test_line_slices_of_a_long_table():
    from gdb_go_ext.views.console import line_slices
    rows = [f"   {i:<7d}  waiting  chan receive\n" for i in range(20000)]
    slices = list(line_slices(rows, 1 << 14))
    assert "".join(slices) == "".join(rows)
    assert all(s.endswith("\n") and len(s) <= 1 << 14 for s in slices)
    assert len(slices) < len(rows) // 100  # batched, not a write per row


# ---------------------------------------------------------------------------
# a core's clock, and the runtime's rule for which pc a frame's line is read at
# ---------------------------------------------------------------------------
def first_p_field(image, path):
    """The address of a field of the image's first P (allp[0])."""
    t = ImageTarget(*image)
    arr = u64(image, t.symbol_address("runtime.allp"))
    off, _ = t.lookup_type("runtime.p").find(path)
    return u64(image, arr) + off


def test_core_clock_is_the_latest_runtime_stamp(image):
    from gdb_go_ext.runtime import clock
    img, types, mem0 = image
    rt = GoRuntime(ImageTarget(img, types, mem0))
    found = clock.stamps(rt)
    assert any(w.startswith("sched.") for _, w in found)  # (procresizetime: set at start)
    assert any(w.startswith("p.sysmontick.") for _, w in found)
    # the fixture ran no GC, so no waitsince is stamped yet: stamp a waiting goroutine
    # and the syscall one, and a P 7 minutes (and 3 ns) after the first
    gs, w = walk(image)
    since = 1_000_000_000_000
    now = since + 7 * 60_000_000_000 + 3
    mem = copy_memory(mem0)
    timed = [next(g for g in gs if g.status == "waiting"), next(g for g in gs if g.status == "syscall")]
    for i, g in enumerate(timed):
        poke(mem, g_field(image, g.addr, "waitsince"), struct.pack("<q", since + i))
    poke(mem, first_p_field(image, "sysmontick.schedwhen"), struct.pack("<q", now))
    gs, w = walk(image, mem)
    assert w.clock == "core: latest runtime stamp (p.sysmontick.schedwhen)"
    for g in gs:
        if g.status in ("waiting", "syscall"):
            assert g.wait_minutes == (7 if g.id in {t.id for t in timed} else 0), g.id
        else:
            assert g.wait_minutes is None, g.id
    # garbage stamps are passed over; an unreadable allp leaves the others
    for bad in (-1, 1 << 63 - 1):
        poke(mem, first_p_field(image, "sysmontick.schedwhen"), struct.pack("<q", bad))
        assert clock.core_now(GoRuntime(ImageTarget(img, types, mem)))[0] < now
    arr = u64(image, ImageTarget(*image).symbol_address("runtime.allp"))
    cut = unmap(mem, arr, 8)
    left = clock.stamps(GoRuntime(ImageTarget(img, types, cut)))
    assert left and not any(w.startswith("p.") for _, w in left)
    # no stamp newer than a goroutine's waitsince: minutes against the latest waitsince
    for name in ("sysmontick.schedwhen", "sysmontick.syscallwhen"):
        poke(mem, first_p_field(image, name), struct.pack("<q", 0))
    t = ImageTarget(img, types, mem)
    for sym in ("runtime.sched", "runtime.memstats"):
        mem = unmap(mem, t.symbol_address(sym), t.lookup_type(
            "runtime.schedt" if sym == "runtime.sched" else "runtime.mstats").size)
    gs, w = walk(image, mem)
    assert w.clock == "core: latest waitsince among goroutines"
    assert {g.id: g.wait_minutes for g in gs if g.id in {t.id for t in timed}} == \
        {g.id: 0 for g in timed}


def test_innermost_frame_is_read_at_its_return_address(image):
    """A parked goroutine's g.sched.pc is a return address: the runtime reads its line
    at pc - 1, as for its callers; a thread stopped at pc (trap) is read at pc."""
    gs, w = walk(image)
    parked = next(g for g in gs if g.stack and g.stack[0].function == "runtime.gopark")
    tab, unwinder = w.rt.pclntab, w.unwinder
    frames, err = unwinder.walk(parked.pc, parked.sp, parked.stack_lo, parked.stack_hi)
    assert err is None and frames[0].line == tab.frames(parked.pc - 1)[0].line
    trapped, err = unwinder.walk(parked.pc, parked.sp, parked.stack_lo, parked.stack_hi, trap=True)
    assert trapped[0].line == tab.frames(parked.pc)[0].line
    assert frames[0].line != trapped[0].line  # gopark's call to mcall ends its line
    assert frames[1:] == trapped[1:]
