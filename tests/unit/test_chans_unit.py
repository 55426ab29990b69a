"""The pure channel decoder (runtime/chans.py) on memory images of the chans fixture
(tests/data/chans-*.json.gz, made by tests/fixtures/chans/capture.py): the fixture's
own truth by bare address, then hand-made faults (a cycle in a sudog queue, a sudog of
another channel, an address that is not a channel, an unreadable buffer or queue) and
hypothesis-generated corruptions: one line each and a partial result, nothing raised
but DecodeError, nothing that hangs."""
import json
import os
import struct
import sys
import time
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import DecodeError  # noqa: E402
from gdb_go_ext.runtime.chans import _address_path, decode_chan, stack_holders  # noqa: E402
from gdb_go_ext.views.values import json_shape  # noqa: E402
from image import RT, ImageTarget, cached_image, copy_memory, images, poke, unmap  # noqa: E402
from truth import _norm  # noqa: E402

IMAGES, IDS = images("chans")


@pytest.fixture(scope="module", params=IMAGES, ids=IDS)
def image(request):
    return cached_image(request.param)


def rt_of(image, mem=None):
    img, types, mem0 = image
    return RT(ImageTarget(img, types, mem0 if mem is None else mem))


def chans(image):
    return image[0]["truth"]["chans"]


def addr_of(image, name):
    return int(chans(image)[name]["addr"], 16)


def hchan_off(image, path):
    t = ImageTarget(*image).lookup_type("runtime.hchan")
    return t.find(path)[0]


def sudog_off(image, path):
    """Where a sudog holds the address of `path` (Go 1.26+: elem.vu, c.maybeTraceablePtr.vu)."""
    t = ImageTarget(*image).lookup_type("runtime.sudog")
    return t.find(_address_path(t, path))[0]


def u64(mem_target, addr):
    return struct.unpack("<Q", mem_target.read(addr, 8))[0]


def goroutines(image):
    return [SimpleNamespace(addr=a, id=i, sp=sp, stack_hi=hi)
            for a, i, sp, hi in image[0]["chans"]["goroutines"]]


def test_images_exist_and_are_small():
    assert {"go1.19", "go1.26.6"} <= set(IDS)
    for p in IMAGES:
        assert os.path.getsize(p) < 200_000, p


def test_every_channel_by_address_matches_the_fixture(image):
    rt = rt_of(image)
    for name, want in chans(image).items():
        cs = decode_chan(rt, int(want["addr"], 16))
        assert cs.errors == [], (name, cs.errors)
        assert cs.elem_type == want["elem_type"], name
        assert (cs.qcount, cs.dataqsiz, cs.closed, cs.sendx, cs.recvx) == \
            (want["len"], want["cap"], want["closed"], want["sendx"], want["recvx"]), name
        assert _norm(json_shape(cs.buffer)) == _norm(want["buffer"]), name
        assert [w.goid for w in cs.recvq] == [w["id"] for w in want["recvq"]], name
        assert [w.goid for w in cs.sendq] == [w["id"] for w in want["sendq"]], name
        assert [_norm(json_shape(w.value)) for w in cs.sendq] == \
            [_norm(w["value"]) for w in want["sendq"]], name


def test_holder_scan_finds_the_holder(image):
    rt = rt_of(image)
    truth = image[0]["truth"]
    held = addr_of(image, truth["held"])
    found, errors = stack_holders(rt, goroutines(image), held)
    assert errors == []
    assert truth["holder"] in [h.goroutine.id for h in found]
    for h in found:
        for slot in h.slots:
            assert slot % 8 == 0 and u64(rt.target, slot) == held


def test_limit_cuts_the_buffer_and_the_values_not_the_counts(image):
    cs = decode_chan(rt_of(image), addr_of(image, "main.chUnbufS"), limit=1)
    assert cs.sendq_len == 3 and len(cs.sendq) == 3
    assert cs.sendq[0].value == 100 and cs.sendq[1].value is None
    ring = decode_chan(rt_of(image), addr_of(image, "main.chRing"), limit=2)
    assert ring.buffer == [3, 4] and ring.qcount == 3


def test_a_cycle_in_a_sudog_queue_is_cut(image):
    addr = addr_of(image, "main.chUnbufS")
    rt0 = rt_of(image)
    clean = decode_chan(rt0, addr)
    mem = copy_memory(image[2])
    last = clean.sendq[-1].sudog
    poke(mem, last + sudog_off(image, "next"), struct.pack("<Q", clean.sendq[0].sudog))
    cs = decode_chan(rt_of(image, mem), addr)
    assert [w.goid for w in cs.sendq] == [w.goid for w in clean.sendq]
    assert len(cs.errors) == 1 and "cycle" in cs.errors[0], cs.errors
    # a sudog that points at itself
    mem = copy_memory(image[2])
    first = clean.sendq[0].sudog
    poke(mem, first + sudog_off(image, "next"), struct.pack("<Q", first))
    cs = decode_chan(rt_of(image, mem), addr)
    assert len(cs.sendq) == 1 and "cycle" in cs.errors[0]


def test_a_sudog_of_another_channel_stops_its_queue(image):
    addr = addr_of(image, "main.chUnbufS")
    clean = decode_chan(rt_of(image), addr)
    mem = copy_memory(image[2])
    poke(mem, clean.sendq[1].sudog + sudog_off(image, "c"), struct.pack("<Q", addr + 64))
    cs = decode_chan(rt_of(image, mem), addr)
    assert len(cs.sendq) == 1 and "belongs to channel" in cs.errors[0], cs.errors


def test_an_address_that_is_not_a_channel(image):
    rt = rt_of(image)
    for name in ("main.chItem", "main.chRing", "main.chUnbufR"):
        cs = decode_chan(rt, addr_of(image, name) + 8)   # a valid read, a wrong struct
        assert cs.errors, name
        assert any("not a channel" in e or "not a type descriptor" in e or "not read" in e
                   or "belongs to" in e for e in cs.errors), (name, cs.errors)
    with pytest.raises(DecodeError):
        decode_chan(rt, 0x10)   # unreadable: one line, nothing to show
    with pytest.raises(DecodeError):
        decode_chan(rt, 0)


def test_unreadable_buffer_and_queue_are_partial(image):
    addr = addr_of(image, "main.chItem")
    rt0 = rt_of(image)
    clean = decode_chan(rt0, addr)
    mem = unmap(copy_memory(image[2]), clean.buf, 8)
    cs = decode_chan(rt_of(image, mem), addr)
    assert cs.buffer is None and any("buffer" in e for e in cs.errors)
    assert [w.goid for w in cs.sendq] == [w.goid for w in clean.sendq]   # the rest is there
    mem = unmap(copy_memory(image[2]), clean.sendq[1].sudog, 8)
    cs = decode_chan(rt_of(image, mem), addr)
    assert len(cs.sendq) == 1 and "cannot read sudog" in cs.errors[0]
    assert cs.buffer == clean.buffer


def test_absurd_sizes_are_not_read(image):
    addr = addr_of(image, "main.chRing")
    for path, value, words in (("dataqsiz", 1 << 40, "too large"), ("qcount", 9, "more than"),
                               ("recvx", 77, "outside"), ("closed", 7, "neither 0 nor 1")):
        mem = copy_memory(image[2])
        size = ImageTarget(*image).lookup_type("runtime.hchan").find(path)[1].size
        poke(mem, addr + hchan_off(image, path), value.to_bytes(size, "little"))
        cs = decode_chan(rt_of(image, mem), addr)
        assert any(words in e for e in cs.errors), (path, cs.errors)


# --- fuzzing: random words over the hchan, its sudogs and its buffer
def _targets(image):
    out = []
    for name in ("main.chItem", "main.chUnbufS", "main.chUnbufR", "main.chRing", "main.chStr"):
        addr = addr_of(image, name)
        cs = decode_chan(rt_of(image), addr)
        spots = [addr + o for o in range(0, 96, 8)]
        spots += [w.sudog + o for w in cs.recvq + cs.sendq for o in range(0, 96, 8)]
        if cs.buf:
            spots += [cs.buf + o for o in range(0, 64, 8)]
        out.append((addr, spots))
    return out


_TARGETS = {}
WORDS = st.one_of(st.integers(0, 2 ** 64 - 1), st.sampled_from([0, 1, 2 ** 63, 2 ** 64 - 1, 0x10]))
CORRUPTIONS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10 ** 6), WORDS),
                       min_size=1, max_size=8)


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(corruptions=CORRUPTIONS)
def test_corrupted_channels_never_raise_or_hang(path, corruptions):
    image = cached_image(path)
    if path not in _TARGETS:
        _TARGETS[path] = _targets(image)
    targets = _TARGETS[path]
    mem = copy_memory(image[2])
    for which, pick, word in corruptions:
        addr, spots = targets[which]
        spot = spots[pick % len(spots)]
        try:
            poke(mem, spot, struct.pack("<Q", word))
        except AssertionError:
            pass   # (a spot at the edge of a captured range)
    rt = rt_of(image, mem)
    t0 = time.monotonic()
    for addr, _ in targets:
        try:
            cs = decode_chan(rt, addr)
            json.dumps(json_shape(cs.buffer)) if cs.buffer is not None else None
            for w in cs.sendq:
                json.dumps(json_shape(w.value))
        except DecodeError:
            pass
        stack_holders(rt, goroutines(image), addr)
    assert time.monotonic() - t0 < 10
