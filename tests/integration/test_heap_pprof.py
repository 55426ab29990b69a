"""`go heap --pprof FILE` (the live heap as reference chains) and `go stacks --retained
--pprof FILE` (what each leak bucket alone keeps alive) read by the toolchain's own
`go tool pprof` (-raw and -top), in gdb, through the bridge and through gdb-go.

The truth: the JSON views of the same stop (`go heap --json`'s live_bytes/live_objects,
which tests/integration/test_heap.py holds against runtime.ReadMemStats, and `go stacks
--retained --json`'s retained bytes and objects per bucket), and what the heap fixture
built (tests/fixtures/heap/main.go: the global map main.registry of main.entry values,
and each holder goroutine's buffer `buf` in main.holdA or main.holdB).

One target per toolchain, its mode alternating live and core along the matrix (both
modes on every run of the matrix), both profiles from one gdb run.
"""
import json
import os
import re
import subprocess
import sys

import pytest

import harness
from test_heap import _version, open_bridge

sys.path.insert(0, harness.REPO)

SAMPLE = re.compile(r"^\s+(\d+)\s+(\d+): ([\d ]+)$")
# (pprof prints a name it shortens, as "a<b>", with the full name after the line; before
# Go 1.23 no column)
LOCATION = re.compile(r"^\s+(\d+): 0x[0-9a-f]+ M=\d+ (.*) \S*:\d+(?::\d+)? s=\d+(?:\((.*)\))?$")
INLINED = re.compile(r"^\s+(.*) \S*:\d+(?::\d+)? s=\d+(?:\((.*)\))?$")
TOTAL = re.compile(r" of (\d+)B? total")


def _go(toolchain):
    return harness.toolchain(toolchain)["go"]


def _pprof(go, toolchain, *argv):
    p = subprocess.run([go, "tool", "pprof", *argv], capture_output=True, text=True,
                       timeout=120, env=dict(harness.go_env(toolchain),
                                             PPROF_TMPDIR=os.path.dirname(argv[-1])))
    assert p.returncode == 0, (argv, p.stderr)
    return p.stdout


def raw_samples(go, toolchain, path):
    """[(objects, bytes, (functions root first))] from `go tool pprof -raw`: each
    location's functions, the inlined ones innermost first, as pprof lists them."""
    out = _pprof(go, toolchain, "-raw", path)
    head, _, rest = out.partition("\nSamples:\n")
    assert "inuse_objects/count inuse_space/bytes[dflt]" in rest.splitlines()[0], out[:500]
    samples_text, _, locs_text = rest.partition("\nLocations\n")
    locs, cur = {}, None
    for line in locs_text.split("\nMappings\n")[0].splitlines():
        m = LOCATION.match(line)
        if m:
            cur = locs[int(m.group(1))] = [m.group(3) or m.group(2)]
            continue
        m = INLINED.match(line)
        if m and cur is not None:
            cur.append(m.group(2) or m.group(1))
    samples = []
    for line in samples_text.splitlines()[1:]:
        m = SAMPLE.match(line)
        if m:
            ids = [int(x) for x in m.group(3).split()]
            funcs = [f for i in ids for f in locs[i]]
            samples.append((int(m.group(1)), int(m.group(2)), tuple(reversed(funcs))))
    assert samples, out[:2000]
    return samples


def top_totals(go, toolchain, path):
    """(objects, bytes): the totals `go tool pprof -top` prints for each sample type."""
    got = []
    for index in ("inuse_objects", "inuse_space"):
        out = _pprof(go, toolchain, "-top", "-unit=B", f"-sample_index={index}", path)
        m = TOTAL.search(out)
        assert m, out[:1000]
        got.append(int(m.group(1)))
    return tuple(got)


def check_heap_profile(go, toolchain, path, heap, truth):
    """The chains' profile against `go heap --json` (heap) and the fixture."""
    samples = raw_samples(go, toolchain, path)
    objects, nbytes = sum(s[0] for s in samples), sum(s[1] for s in samples)
    assert (objects, nbytes) == (heap["live_objects"], heap["live_bytes"])
    assert top_totals(go, toolchain, path) == (objects, nbytes)
    # identical chains are one sample; none longer than its root, 32 steps, "…" and type
    chains = [s[2] for s in samples]
    assert len(set(chains)) == len(chains)
    assert max(len(c) for c in chains) <= 2 + 1 + 32 + 1 + 1
    # the registry map down to the needle's type (entry-001 may come through main.big;
    # before Go 1.24 the entries an overflow bucket holds are untyped: the bucket's
    # overflow pointer does not say what it holds)
    def entry(leaf):
        return leaf == "main.entry" or (leaf.startswith("untyped ") and
                                        int(leaf.split()[1]) >= truth["needle_size"])
    registry = [s for s in samples if s[2][0] == "main.registry"]
    assert sum(s[0] for s in registry if entry(s[2][-1])) >= truth["map_entries"] - 1, registry
    assert sum(s[0] for s in registry if s[2][-1] == "main.entry") >= \
        truth["map_entries"] // 2, registry
    # each holder goroutine's buffer, on its frame's variable buf
    for want in truth["buckets"]:
        mine = [s for s in samples if s[2][0] == want["function"]
                and s[2][1] in ("buf", "buf.ptr") and s[2][-1] == "[]uint8"]
        assert sum(s[0] for s in mine) == want["goroutines"], mine
        floor = want["goroutines"] * want["buffer"]
        assert floor <= sum(s[1] for s in mine) <= 1.05 * floor, mine
    # the tree: main.tree (or main.table, which reaches tree.left as soon), then
    # left/right steps, then main.node
    tree = [s for s in samples if s[2][0] in ("main.tree", "main.table")
            and s[2][-1] == "main.node"]
    assert sum(s[0] for s in tree) >= truth["tree_nodes"], tree
    assert any(len(s[2]) >= 10 and set(s[2][1:-1]) <= {"left", "right"} for s in tree), tree
    return samples


def check_retained_profile(go, toolchain, path, retained):
    """The buckets' profile against `go stacks --retained --json`: one sample per bucket
    that retains anything, its stack the bucket's, its values the bucket's."""
    samples = raw_samples(go, toolchain, path)
    want = sorted((b["retained_objects"], b["retained_bytes"],
                   tuple(reversed([f["function"] for f in b["stack"]])))
                  for b in retained["buckets"] if b["retained_bytes"] or b["retained_objects"])
    assert sorted(samples) == want
    assert top_totals(go, toolchain, path) == (sum(w[0] for w in want), sum(w[1] for w in want))
    holders = [s for s in samples if any(f in ("main.holdA", "main.holdB") for f in s[2])]
    assert len(holders) >= 2, samples
    return samples


def _mode(request, toolchain):
    modes = request.config.getoption("mode") or list(harness.MODES)
    names = harness.matrix_names()
    return modes[names.index(toolchain) % len(modes)] if toolchain in names else modes[0]


def test_heap_profiles(toolchain, request, tmp_path):
    if _version(toolchain) < (1, 22):
        pytest.skip("the heap views need Go 1.22+")
    mode = _mode(request, toolchain)
    go = _go(toolchain)
    hp, rp = str(tmp_path / "heap.pb.gz"), str(tmp_path / "retained.pb.gz")
    cp = str(tmp_path / "cut.pb.gz")
    with harness.target_for("heap", toolchain, mode, str(tmp_path)) as t:
        truth = t.truth("heap")
        r = t.gdb([("heap", "go heap --json"), ("pp", f"go heap --pprof {hp}"),
                   ("ret", "go stacks --retained --json"),
                   ("rp", f"go stacks --retained --pprof {rp}"),
                   ("cut", f"go heap --pprof {cp} --chain-depth 3"),
                   ("bad", "go stacks --pprof x.pb.gz"),
                   ("after", "python print('still usable')")], timeout=300)
        assert r.error("heap") is None, r.stderr[-3000:]
        heap = json.loads(r.block("heap"))
        assert heap["errors"] == [], heap["errors"]
        assert r.error("pp") is None and r.error("rp") is None, r.stderr[-3000:]
        assert r.block("pp").startswith(f"wrote the live heap, {heap['live_bytes']} bytes")
        assert "wrote what" in r.block("rp")
        assert "--pprof goes with --retained" in r.error("bad")
        assert r.block("after").strip() == "still usable"
        assert "Traceback" not in r.stdout + r.stderr
        chains = check_heap_profile(go, toolchain, hp, heap, truth)
        retained = json.loads(r.block("ret"))
        buckets = check_retained_profile(go, toolchain, rp, retained)
        # cut after 3 steps: the same totals; the tree's deep nodes on one "…" chain
        cut = raw_samples(go, toolchain, cp)
        assert (sum(s[0] for s in cut), sum(s[1] for s in cut)) == \
            (heap["live_objects"], heap["live_bytes"])
        deep = [s for s in cut if "…" in s[2]]
        assert deep and all(s[2].index("…") == len(s[2]) - 2 for s in deep), deep
        # (root, 3 steps, "…", type; main.table reaches tree.left as soon as main.tree)
        tree = [s for s in deep if s[2][0] in ("main.tree", "main.table")
                and s[2][-1] == "main.node"]
        assert len(tree) >= 4 and all(len(s[2]) == 6 for s in tree), tree
        assert sum(s[0] for s in tree) >= truth["tree_nodes"] - 15, tree

        bhp, brp = str(tmp_path / "bridge-heap.pb.gz"), str(tmp_path / "bridge-ret.pb.gz")
        with open_bridge(t) as b:
            got = json.loads(b.view(["heap", "--pprof", bhp, "--json"]))
            b.view(["stacks", "--retained", "--pprof", brp])
        assert (got["live_bytes"], got["live_objects"], got["errors"]) == \
            (heap["live_bytes"], heap["live_objects"], [])
        bridged = raw_samples(go, toolchain, bhp)
        if mode == "live":
            # (the runtime's own objects may be reached another way after a detach and a
            # new attach: its Ms, its timers; the fixture's heap may not)
            bridged, chains = ([s for s in x if s[2][0].startswith("main.")]
                               for x in (bridged, chains))
        assert sorted(bridged) == sorted(chains)
        assert sorted(raw_samples(go, toolchain, brp)) == sorted(buckets)


def test_gdbgo_heap_profiles(tmp_path):
    """gdb-go dump --format heap / retained on a core: the same profiles as gdb's."""
    tc = "go1.26.6" if "go1.26.6" in harness.matrix_names() else harness.matrix_names()[-1]
    if _version(tc) < (1, 22):
        pytest.skip("the heap views need Go 1.22+")
    go = _go(tc)
    with harness.target_for("heap", tc, "core", str(tmp_path)) as t:
        truth = t.truth("heap")
        r = t.gdb([("heap", "go heap --json"), ("ret", "go stacks --retained --json")],
                  timeout=300)
        heap = json.loads(r.block("heap"))
        retained = json.loads(r.block("ret"))
        for fmt in ("heap", "retained"):
            out = tmp_path / fmt
            p = subprocess.run([sys.executable, "-m", "gdb_go", "dump", t.binary, t.core,
                                "-f", fmt, "-o", str(out)], capture_output=True, text=True,
                               timeout=300, cwd=harness.REPO)
            assert p.returncode == 0, (p.stdout, p.stderr)
            path = str(out / (os.path.basename(t.core) + f".{fmt}.pb.gz"))
            if fmt == "heap":
                check_heap_profile(go, tc, path, heap, truth)
            else:
                check_retained_profile(go, tc, path, retained)
