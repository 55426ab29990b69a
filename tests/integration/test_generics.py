"""Maps in generic code and behind named types (tests/fixtures/generics), in real gdb and
through delve-bridge on real dlv, live and on a core.

The fixture writes what reflect says of every map (its %T, address and entries) and which
goroutine is parked in which generic function. Here: the entries equal that truth (keys
of shape types such as go.shape.string are strings, not raw {ptr len} structs), the type
names are Go's (`main.Set[string]`, `map[int]*main.T`, `main.Index`, never `.param1` or
`go.shape.*`), locals and arguments are found in frame K of goroutine N (K from the
goroutine's own backtrace), and typed addresses with named types are accepted.
"""
import json
import sys

import pytest

import harness
from truth import _canon

sys.path.insert(0, harness.REPO)
from gdb_go_ext.errors import GoExtError  # noqa: E402


def _frame_index(goroutine_json, function_prefix):
    """The index of the first frame of `function_prefix` in a `goroutine N --json` stack."""
    stack = goroutine_json["goroutine"]["stack"]
    hits = [i for i, f in enumerate(stack) if f["function"].startswith(function_prefix)]
    assert hits, (function_prefix, [f["function"] for f in stack])
    return hits[0]


def _prefix(function):
    return function.split("[", 1)[0] + "["     # "main.parkSet[...]" -> "main.parkSet["


def _checks(truth):
    """(block name, view argv, want) for every map of the truth; parked ones need their K."""
    out = []
    for name, want in sorted(truth["globals"].items()):
        if name == "main.gCache.items":   # a field of a global behind a pointer: by address
            out.append(("cast items", ["map", f"(map[string]int){want['addr']}"], want))
        else:
            out.append((name, ["map", name], want))
    g = truth["globals"]
    v = truth["var_addrs"]
    out += [("cast named", ["map", f"(main.Index)({g['main.gIndex']['addr']})"], g["main.gIndex"]),
            ("cast generic", ["map", f"(main.Set[string]){g['main.gSet']['addr']}"], g["main.gSet"]),
            ("cast ptr", ["map", f"(*main.Index)({v['main.gIndex']})"], g["main.gIndex"]),
            ("cast deref", ["map", f"*(*main.Set[string])({v['main.gSet']})"], g["main.gSet"]),
            ("cast field", ["map", f"(*main.Cache[string,int])({v['*main.gCache']}).items"],
             g["main.gCache.items"])]
    return out


def _parked_checks(truth, frames):
    out = []
    for p in truth["parked"]:
        k = frames[p["goid"]]
        for name, want in sorted(p["maps"].items()):
            out.append((f"g{p['goid']} {name}",
                        ["map", name, "--goroutine", str(p["goid"]), "--frame", str(k)], want))
    return out


def _compare(got, want, what):
    assert got["errors"] == [], (what, got["errors"])
    assert got["type"] == want["type"], (what, got["type"], want["type"])
    assert got["addr"] == want["addr"] and got["len"] == want["len"], (what, got, want)
    assert _canon(got["entries"]) == _canon(want["entries"]), (what, got["entries"], want)


def _check_chan(got):
    """p.ready of the generic function's *parked argument: closed before it parked."""
    assert got["type"] == "chan struct {}" and got["closed"] is True, got


def test_generic_maps_in_gdb(toolchain, mode, go_target):
    t = go_target("generics")
    truth = t.truth("generics")
    gids = [p["goid"] for p in truth["parked"]]
    r = t.gdb([(f"bt {gid}", f"go goroutine {gid} --json") for gid in gids], timeout=180)
    frames = {p["goid"]: _frame_index(json.loads(r.block(f"bt {p['goid']}")), _prefix(p["function"]))
              for p in truth["parked"]}
    checks = _checks(truth) + _parked_checks(truth, frames)
    gid = gids[0]
    cmds = [(n, "go " + " ".join(argv) + " --json") for n, argv, _ in checks]
    k = frames[gid]
    cmds += [("frame only", "go map main.gIndex --frame 1 --json"),   # the selected thread's
             ("chan", f"go chan p.ready --goroutine {gid} --frame {k} --json"),
             ("print named", "print 'main.gIndex'"), ("print generic", "print 'main.gSet'"),
             ("where", "frame"),
             ("no goroutine", "go map s --goroutine 999999 --frame 1"),
             ("no frame", f"go map s --goroutine {gid} --frame 5000"),
             ("not here", f"go map s --goroutine {gid} --frame 0"),
             ("bad type", "go map (main.NoSuchType)(0x1000)"),
             ("where after", "frame"),
             ("after", "python print('still usable')")]
    r = t.gdb(cmds, timeout=300)
    for name, argv, want in checks:
        assert r.error(name) is None, (name, r.error(name), r.stdout[-3000:])
        _compare(json.loads(r.block(name)), want, name)
    _check_chan(json.loads(r.block("chan")))
    _compare(json.loads(r.block("frame only")), truth["globals"]["main.gIndex"], "frame only")
    for block, var in (("print named", "main.gIndex"), ("print generic", "main.gSet")):
        want = truth["globals"][var]   # the pretty printer names named and generic map types
        text = r.block(block)
        assert f"{want['type']} len {want['len']}" in text, text
        assert all(f'["{k}"] = ' in text for k, _ in want["entries"]), text
    assert "no goroutine 999999" in r.error("no goroutine")
    assert f"goroutine {gid} has no frame 5000" in r.error("no frame")
    assert "s" in (r.error("not here") or "")
    assert "no type main.NoSuchType" in r.error("bad type")
    for n in ("no goroutine", "no frame", "not here", "bad type"):
        assert "Traceback" not in r.block(n) and "internal error" not in r.error(n)
    assert r.block("where after") == r.block("where")   # the user's frame is selected again
    assert r.block("after").strip() == "still usable"
    if mode == "live":
        assert t.fixture.proc.poll() is None   # nothing written: the program lives on


def test_generic_maps_through_the_bridge(toolchain, mode, go_target):
    from test_bridge import open_bridge
    t = go_target("generics")
    truth = t.truth("generics")
    with open_bridge(t) as b:
        frames = {p["goid"]: _frame_index(json.loads(b.view(["goroutine", str(p["goid"]), "--json"])),
                                          _prefix(p["function"]))
                  for p in truth["parked"]}
        checks = _checks(truth) + _parked_checks(truth, frames)
        checks.append(("items", ["map", "main.gCache.items"], truth["globals"]["main.gCache.items"]))
        checks.append(("frame only", ["map", "main.gIndex", "--frame", "1"],
                       truth["globals"]["main.gIndex"]))
        for name, argv, want in checks:
            _compare(json.loads(b.view(argv + ["--json"])), want, name)
        gid = truth["parked"][0]["goid"]
        want = truth["parked"][0]["maps"]["local"]   # the Python API takes the same scope
        mc = b.map("local", frame=frames[gid], goroutine=gid)
        assert mc.type == want["type"] and _canon(mc.entries) == _canon(want["entries"])
        _check_chan(json.loads(b.view(["chan", "p.ready", "--goroutine", str(gid),
                                       "--frame", str(frames[gid]), "--json"])))
        for argv, words in ((["map", "s", "--goroutine", "999999"], "no goroutine 999999"),
                            (["map", "s", "--goroutine", str(gid), "--frame", "0"],
                             f"frame 0 of goroutine {gid}"),
                            (["map", "(main.NoSuchType)(0x1000)"], "no type main.NoSuchType")):
            with pytest.raises(GoExtError) as e:
                b.view(argv)
            assert words in str(e.value), (argv, str(e.value))
    if mode == "live":
        assert t.fixture.proc.poll() is None
