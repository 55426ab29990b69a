"""The pure map decoders on memory images captured from the maps fixture
(tests/data/maps-*.json.gz, made by tests/fixtures/maps/capture.py), and on
hypothesis-generated corruptions of them: the decoders must never raise
anything but DecodeError, and never hang.
"""
import glob
import json
import os
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import DecodeError  # noqa: E402
from gdb_go_ext.binary import types as T  # noqa: E402
from gdb_go_ext.runtime.maps import decode_map  # noqa: E402
from gdb_go_ext.runtime.values import Addr, float32_value, go_float  # noqa: E402
from gdb_go_ext.views.console import json_text  # noqa: E402
from gdb_go_ext.views.maps import to_json  # noqa: E402
from gdb_go_ext.views.values import go_quote, go_text  # noqa: E402
from image import RT, ImageTarget, load_image, poke as _poke  # noqa: E402
from truth import _canon  # noqa: E402

IMAGES = sorted(glob.glob(os.path.join(HERE, "data", "maps-*.json.gz")))


@pytest.fixture(scope="module", params=IMAGES, ids=[os.path.basename(p) for p in IMAGES])
def image(request):
    return load_image(request.param)


def test_images_exist():
    assert len(IMAGES) >= 2


def test_decode_matches_truth(image):
    img, types, mem = image
    rt = RT(ImageTarget(img, types, mem))
    for m in img["maps"]:
        mc = decode_map(rt, types[m["type"]], m["addr"], layout=True, locate=True)
        want = m["truth"]
        assert mc.errors == [], (m["name"], mc.errors)
        assert mc.len == want["len"] and mc.nil == want["nil"], m["name"]
        j = json.loads(json_text(to_json(mc, layout=True)))
        assert _canon(j["entries"]) == _canon(want["entries"]), m["name"]
        assert len(mc.locations) == len(mc.entries)
        assert j["addr"] == want["addr"]


def test_limit_and_growth_facts(image):
    img, types, mem = image
    rt = RT(ImageTarget(img, types, mem))
    by = {m["name"]: m for m in img["maps"]}
    m = by["main.mDeleted"]
    mc = decode_map(rt, types[m["type"]], m["addr"], limit=10)
    assert len(mc.entries) == 10 and mc.truncated and mc.full_slots == mc.len == 2000
    g = by["main.mGrowing"]
    mc = decode_map(rt, types[g["type"]], g["addr"], layout=True)
    if mc.impl == "hmap":
        assert mc.growth["growing"] and mc.header["oldbuckets"] != 0
        assert mc.header["nevacuate"] < 2 ** (mc.header["B"] - 1)
    else:
        assert mc.summary["full_slots"] == 53


def test_not_a_map_is_decode_error(image):
    img, types, mem = image
    rt = RT(ImageTarget(img, types, mem))
    with pytest.raises(DecodeError):
        decode_map(rt, T.GoType("int", T.INT, 8), 0x1000)


def test_unreadable_header_is_an_error_entry(image):
    img, types, mem = image
    rt = RT(ImageTarget(img, types, mem))
    m = img["maps"][0]
    mc = decode_map(rt, types[m["type"]], 0xdead0000)
    assert mc.errors and mc.entries == []


def test_go_float_and_float32():
    assert go_float(1e6) == "1e+06" and go_float(123456.0) == "123456"
    assert go_float(1e-5) == "1e-05" and go_float(0.0001) == "0.0001"
    assert go_float(1.5) == "1.5" and go_float(-2.25) == "-2.25" and go_float(1e21) == "1e+21"
    assert float32_value(0.10000000149011612) == 0.1
    assert go_text({"X": 1, "Y": "a"}) == "{1 a}" and go_text([1, 2]) == "[1 2]"
    assert go_text(None) == "<nil>" and go_text({"type": "int", "value": 3}) == "3"


def test_addresses_are_ints_in_the_model_and_0x_text_in_views():
    ptr = T.GoType("*main.P", T.PTR, 8)
    assert Addr(0x10) == 0x10 and Addr(0x10) == Addr(16) and hash(Addr(16)) == hash(16)
    assert int(Addr(0xc000)) == 0xc000 and not Addr(0) and Addr(1)
    assert go_text(Addr(0xc000010000), ptr) == "0xc000010000" and go_text(Addr(0), ptr) == "<nil>"
    assert go_text(Addr(0)) == "0x0" and go_quote(Addr(0x20)) == '"0x20"'
    assert go_quote(Addr(0), ptr) == "<nil>"
    assert go_text({"type": "*main.P", "value": Addr(0)}) == "<nil>"
    assert go_text({"type": "map[string]int", "addr": Addr(0), "len": 0}) == "map[]"
    assert go_text({"type": "map[string]int", "addr": Addr(0xc0), "len": 2}) == \
        "map[string]int(len 2 @0xc0)"
    assert json_text({"p": Addr(0xc0), "l": [Addr(0)]}) == '{\n "p": "0xc0",\n "l": [\n  "0x0"\n ]\n}\n'
    with pytest.raises(TypeError):
        json_text({"x": object()})


def test_key_lookup_of_pointer_keys():
    from gdb_go_ext.runtime.maps import MapContents
    from gdb_go_ext.views import maps as V
    ptr, i64 = T.GoType("*main.P", T.PTR, 8), T.GoType("int64", T.INT, 8)
    mc = MapContents(type="map[*main.P]int64", addr=0xc000, impl="hmap", len=2,
                     entries=[(Addr(0), 1), (Addr(0xc0001000), 2)], key_type=ptr, elem_type=i64,
                     locations=[("bucket", "new", 0, 0, 0, 9), ("bucket", "new", 0, 0, 1, 9)])
    key = V.parse_key("0xc0001000", ptr)
    assert key == Addr(0xc0001000) and V.find_key(mc, key)[0] == 1
    assert V.render_key(mc, "0", V.parse_key("0", ptr)).startswith("key <nil> -> 1\n")
    assert json.loads(json_text(V.key_json(mc, "0xc0001000", key)))["key"] == "0xc0001000"
    assert V.find_key(mc, V.parse_key("0x5", ptr)) is None


# ---- fuzzing: corrupt the image, the decoder must stay within DecodeError and time --------

def _corrupt(mem, edits):
    out = [(a, bytearray(b)) for a, b in mem]
    for which, pos, val in edits:
        a, b = out[which % len(out)]
        if b:
            b[pos % len(b)] = val
    return out


EDITS = st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 10 ** 7), st.integers(0, 255)),
                 min_size=1, max_size=40)
WORDS = st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 10 ** 7),
                           st.sampled_from([0, 1, 0xFF, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF,
                                            1 << 40, 0xc000000000])),
                 min_size=1, max_size=10)


def _fuzz_one(image, edits, words):
    img, types, mem = image
    mem = _corrupt(mem, edits)
    for which, pos, val in words:  # plausible-but-wrong pointers and counts
        a, b = mem[which % len(mem)]
        if len(b) >= 8:
            p = (pos % (len(b) - 7)) & ~7
            b[p:p + 8] = val.to_bytes(8, "little")
    rt = RT(ImageTarget(img, types, mem))
    for m in img["maps"]:
        t0 = time.monotonic()
        try:
            mc = decode_map(rt, types[m["type"]], m["addr"], layout=True, locate=True)
            json_text(to_json(mc, layout=True))
            for k, v in mc.entries[:50]:
                go_text(k)
                go_text(v)
        except DecodeError:
            pass
        assert time.monotonic() - t0 < 20, m["name"]


@pytest.mark.parametrize("path", IMAGES, ids=[os.path.basename(p) for p in IMAGES])
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=EDITS, words=WORDS)
def test_corrupted_images_never_raise_or_hang(path, edits, words):
    _fuzz_one(_cached(path), edits, words)


_CACHE = {}


def _cached(path):
    if path not in _CACHE:
        _CACHE[path] = load_image(path)
    return _CACHE[path]


def test_absurd_sizes_and_cycles_are_bounded(image):
    img, types, mem0 = image
    m = next(x for x in img["maps"] if x["name"] == "main.mDeleted")
    mt = types[m["type"]]
    h = mt.extra["header"]
    # absurd B / dirLen
    mem = _corrupt(mem0, [])
    if h.field("B") is not None:
        _poke(mem, m["addr"] + h.field("B").offset, bytes([60]))
    else:
        _poke(mem, m["addr"] + h.field("dirLen").offset, (1 << 40).to_bytes(8, "little"))
    mc = decode_map(RT(ImageTarget(img, types, mem)), mt, m["addr"])
    assert any("implausible" in e for e in mc.errors), mc.errors
    # a cycle: the first bucket's overflow points at itself (hmap), or a
    # table's lengthMask is absurd (swiss)
    mem = _corrupt(mem0, [])
    rt = RT(ImageTarget(img, types, mem))
    if h.field("buckets") is not None:
        buckets = rt.mem.ptr(m["addr"] + h.field("buckets").offset)
        bt = h.field("buckets").type.elem
        _poke(mem, buckets + bt.field("overflow").offset, buckets.to_bytes(8, "little"))
        mc = decode_map(rt, mt, m["addr"])
        assert any("cycle" in e for e in mc.errors), mc.errors
    else:
        dirp = rt.mem.ptr(m["addr"] + h.field("dirPtr").offset)
        t0 = rt.mem.ptr(dirp)
        tt = h.field("dirPtr").type.elem.elem
        g = tt.field("groups")
        _poke(mem, t0 + g.offset + g.type.field("lengthMask").offset,
              ((1 << 62) - 1).to_bytes(8, "little"))
        mc = decode_map(rt, mt, m["addr"])
        assert any("lengthMask" in e for e in mc.errors), mc.errors
    assert 0 < len(mc.entries) <= 2000
