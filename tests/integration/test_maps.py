"""`go map` on real gdb and real Go binaries: every toolchain of the matrix, live and core.

The maps fixture writes each map's contents as the runtime sees them
(tests/fixtures/maps/main.go); here the extension's JSON must match it entry by
entry, and the layout must agree with facts the fixture can know.
"""
import json
import os

import pytest

import harness

MAP_NAMES = None


from truth import _canon, _norm  # noqa: E402,F401


def _swiss_expected(toolchain):
    ver = harness.toolchain(toolchain)["version"]
    minor = int(ver.split(".")[1])
    return minor >= 24 and "noswissmap" not in toolchain


def test_map_contents_match_runtime(toolchain, mode, go_target, tmp_path):
    t = go_target("maps")
    truth = t.truth("maps")["maps"]
    out = tmp_path / "json"
    out.mkdir()
    cmds = [("json %s" % name, "go map %s --json --layout -o %s/%s.json" % (name, out, name))
            for name in sorted(truth)]
    cmds += [
        ("quoted", "go map 'main.mSmall'"),
        ("key-hit", "go map main.mStructKey --key '{\"X\": 3, \"Y\": -3, \"Name\": \"p3\"}'"),
        ("key-miss", "go map main.mSmall --key nope"),
        ("key-grow", "go map main.mGrowing --key 1000003"),
        ("layout", "go map main.mDeleted --layout --limit 5"),
        ("print", "print 'main.mSmall'"),
        ("print-large", "print 'main.mLarge'"),
        ("screen-large", "go map main.mLarge --json --layout"),  # longer than one gdb.write slice
        ("not-a-map", "go map main.pt0"),
        ("unknown", "go map main.noSuchThing"),
        ("bad-o", "go map main.mSmall -o /nonexistent-dir/x.json"),
        ("bad-key", "go map main.mSmall --key"),
        ("after", "python print('still usable')"),
    ]
    r = t.gdb(cmds, timeout=600)
    swiss = _swiss_expected(toolchain)
    failures = []
    for name, want in sorted(truth.items()):
        assert r.error("json %s" % name) is None, (name, r.error("json %s" % name), r.stderr)
        got = json.load(open(out / ("%s.json" % name)))
        assert got["impl"] == ("swiss" if swiss else "hmap"), name
        assert got["type"] == want["type"], name
        assert got["nil"] == want["nil"], name
        assert got["len"] == want["len"], name
        assert got["addr"] == want["addr"], name
        assert got["errors"] == [], (name, got["errors"])
        if _canon(got["entries"]) != _canon(want["entries"]):
            g, w = set(_canon(got["entries"])), set(_canon(want["entries"]))
            failures.append((name, sorted(w - g)[:3], sorted(g - w)[:3]))
        _check_layout_facts(name, got, swiss)
    assert not failures, failures

    assert "len     3" in r.block("quoted") or "len 3" in r.block("quoted")
    assert "-> \"v3\"" in r.block("key-hit")
    assert ("group" if swiss else "bucket") in r.block("key-hit")
    assert "absent" in r.block("key-miss")
    assert "-> 1" in r.block("key-grow")
    if swiss:
        assert "tombstones" in r.block("layout") and "h2=0x" in r.block("layout")
    else:
        assert "emptyOne" in r.block("layout") or "emptyRest" in r.block("layout")
    for key, value in (("a", 1), ("b", 2), ("c", 3)):  # string keys quoted, as Go prints them
        assert f'["{key}"] = {value}' in r.block("print"), r.block("print")
    assert "len 10000" in r.block("print-large")
    screen = r.block("screen-large")
    assert len(screen) > 1 << 18, len(screen)  # written in several slices
    assert json.loads(screen) == json.load(open(out / "main.mLarge.json"))
    assert "not a map" in r.error("not-a-map")
    assert "main.noSuchThing" in r.error("unknown")
    assert "cannot write" in r.error("bad-o")
    assert r.error("bad-key") is not None
    for n in ("not-a-map", "unknown", "bad-o", "bad-key"):
        assert "Traceback" not in r.block(n) and "internal error" not in (r.error(n) or "")
    assert r.block("after").strip() == "still usable"
    assert "Traceback" not in r.stderr


def _check_layout_facts(name, got, swiss):
    lay = got["layout"]
    if got["nil"]:
        return
    assert lay["summary"]["full_slots"] == got["len"], name
    if swiss:
        full = sum(1 for g in lay["groups"] for c in g["ctrl"] if c < 0x80)
        assert full == got["len"], name
        tomb = sum(1 for g in lay["groups"] for c in g["ctrl"] if c == 0xFE)
        assert tomb == lay["summary"]["tombstones"], name
        if lay["header"]["dirLen"]:
            assert sum(len(t["dir"]) for t in lay["tables"]) == lay["header"]["dirLen"]
            assert sum(t["used"] for t in lay["tables"]) == got["len"], name
            for t in lay["tables"]:
                assert t["index"] == t["dir"][0], name
                assert len(t["dir"]) == 2 ** (lay["header"]["globalDepth"] - t["localDepth"])
    else:
        full = sum(1 for b in lay["buckets"] if not b["evacuated"]
                   for th in b["tophash"] if th >= 5)
        assert full == got["len"], name
        h = lay["header"]
        if name in ("main.mGrowing", "main.mGrowing2"):
            assert h["oldbuckets"] != "0x0", name
            assert lay["growth"]["growing"] and not lay["growth"]["same_size"]
            assert h["nevacuate"] < 2 ** (h["B"] - 1), name
            assert any(b["which"] == "old" and not b["evacuated"] for b in lay["buckets"])


def test_mapsplitgroup_layout(tmp_path):
    """Go 1.27's GOEXPERIMENT=mapsplitgroup (groups of keys[8] then elems[8]) is not a
    matrix entry of its own: build it here with the go1.27.3 toolchain, live only."""
    name = "go1.27.3"
    if name not in harness.matrix_names():
        pytest.skip("go1.27.3 is not in the matrix")
    env = harness.go_env(name)
    env["GOEXPERIMENT"] = "mapsplitgroup"
    binary = str(tmp_path / "maps-split")
    import subprocess
    subprocess.run([harness.toolchain(name)["go"], "build", "-o", binary, "."],
                   cwd=os.path.join(harness.FIXTURES_DIR, "maps"), env=env, check=True,
                   capture_output=True, timeout=600)
    out = tmp_path / "json"
    out.mkdir()
    with harness.run_fixture(binary) as fp:
        truth = fp.truth("maps")
        assert "mapsplitgroup" in truth["version"]
        cmds = [("json %s" % n, "go map %s --json --layout -o %s/%s.json" % (n, out, n))
                for n in sorted(truth["maps"])]
        r = harness.run_gdb(binary, pid=fp.pid, commands=cmds, timeout=600)
    for n, want in sorted(truth["maps"].items()):
        assert r.error("json %s" % n) is None, (n, r.error("json %s" % n))
        got = json.load(open(out / ("%s.json" % n)))
        assert got["impl"] == "swiss" and got["errors"] == [], n
        assert got["len"] == want["len"], n
        assert _canon(got["entries"]) == _canon(want["entries"]), n
        _check_layout_facts(n, got, True)
