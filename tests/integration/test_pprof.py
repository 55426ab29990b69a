"""`go pprof` against the runtime's own goroutine profile, through a real client.

The pprof fixture (tests/fixtures/pprof/main.go) parks goroutines in several states,
with pprof labels and inlined frames, writes its own profile with
pprof.Lookup("goroutine").WriteTo(f, 0) and parks main. `go tool pprof -traces` (and
`-traces -lines`, which adds file:line to each frame) of the same toolchain, on our
`go pprof -o F.pb.gz` and on the fixture's profile, must list the same stacks with the
same counts and labels, in gdb and through the bridge, live and on a core. The one
goroutine discounted is main, which wrote the profile: in the fixture's it is inside
WriteTo, in ours parked in `select {}`.
"""
import gzip
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

import harness
from test_bridge import open_bridge

sys.path.insert(0, harness.REPO)

SEP = re.compile(r"^-+\+-+$")


def traces(go, binary, profile, lines=False):
    """Counter of (labels, frames) -> goroutines from `go tool pprof -traces`."""
    argv = [go, "tool", "pprof", "-traces"] + (["-lines"] if lines else []) + [binary, profile]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PPROF_TMPDIR=os.path.dirname(profile)))
    assert p.returncode == 0, (argv, p.stderr)
    blocks, cur = [], None
    for line in p.stdout.splitlines():
        if SEP.match(line):
            cur = []
            blocks.append(cur)
        elif cur is not None and line.strip():
            cur.append(line)
    assert blocks, p.stdout
    out = Counter()
    for b in filter(None, blocks):   # the last separator closes the list
        labels, frames, count = [], [], None
        for line in b:
            m = re.match(r"^\s+(\d+)\s{3}(\S.*)$", line)
            if count is None and m:
                count, frames = int(m.group(1)), [m.group(2).strip()]
            elif count is None:
                k, _, v = line.strip().partition(":")
                labels.append((k.strip(), v.strip()))
            else:
                frames.append(line.strip())
        assert count is not None, b
        out[(tuple(sorted(labels)), tuple(frames))] += count
    return out


def discount_main(stacks, writer):
    """The traces less main: the writer's own stack (inside WriteTo) in the fixture's
    profile, main.main parked at the stop in ours."""
    out = Counter()
    dropped = 0
    for (labels, frames), n in stacks.items():
        names = [f.split()[0] for f in frames]
        if names[-2:] == ["main.main", "runtime.main"] and \
                (("runtime/pprof.writeGoroutine" in names) == writer):
            n -= 1
            dropped += 1
        if n:
            out[(labels, frames)] += n
    assert dropped == 1, stacks
    return out


def check_profile(go, binary, ours, theirs):
    with gzip.open(ours) as f:
        assert f.read(2)      # gzipped
    for lines in (False, True):
        got = discount_main(traces(go, binary, ours, lines), writer=False)
        want = discount_main(traces(go, binary, theirs, lines), writer=True)
        assert got == want, ("-lines" if lines else "", sorted(set(got.items()) ^ set(want.items())))
    # labels made it through as sample labels
    assert any(l for l, _ in traces(go, binary, ours))


def test_pprof_matches_runtime_profile(toolchain, mode, go_target, tmp_path):
    t = go_target("pprof")
    go = harness.toolchain(toolchain)["go"]
    theirs = os.path.join(t.fixture.out_dir, "goroutine.pb.gz")
    assert os.path.isfile(theirs)
    ours = str(tmp_path / "ours.pb.gz")
    r = t.gdb([("pprof", "go pprof -o %s" % ours),
               ("bad-out", "go pprof -o %s/no/such/dir/x.pb.gz" % tmp_path),
               ("bad-arg", "go pprof --nope"),
               ("after", "python print('still usable')")], timeout=300)
    assert r.error("pprof") is None, (r.error("pprof"), r.stderr)
    assert "wrote a goroutine profile" in r.block("pprof")
    check_profile(go, t.binary, ours, theirs)
    for bad in ("bad-out", "bad-arg"):
        err = r.error(bad)
        assert err and "\n" not in err.strip() and "Traceback" not in r.block(bad), (bad, err)
    assert "cannot write" in r.error("bad-out")
    assert r.block("after").strip() == "still usable"
    assert "Traceback" not in r.stderr

    bridged = str(tmp_path / "bridge.pb.gz")
    with open_bridge(t) as b:
        out = b.view(["pprof", "-o", bridged])
        assert "wrote a goroutine profile" in out
        with pytest.raises(Exception) as e:
            b.view(["pprof", "-o", str(tmp_path / "no" / "dir" / "x.pb.gz")])
        assert "cannot write" in str(e.value) and "\n" not in str(e.value).strip()
    check_profile(go, t.binary, bridged, theirs)
