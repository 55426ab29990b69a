"""No change in output across issue 26's refactor (one goroutine collection, reads in
target/, one unwinder, declared cache lifetimes, the trace reader in Go's shape): every
view of the registry, with its main flags (--json, -o FILE, --pprof, --retained, --diff,
...), run by the code of BASE_REFACTOR (the last commit before the refactor) and by this
tree on the same stopped live process and on a core of it, in gdb and through the bridge
(delve-bridge's Bridge.view over real dlv: on the live process one dlv server, which both
sides reach with Bridge.connect, so they see one stop), must give the same bytes: every command's
text, its gdb error line, and every file it writes.

One fixture process per toolchain (tests/fixtures/heap: goroutines parked on channels
holding buffers, a map, a finalizer, a tree of pointers), kept stopped (SIGSTOP) from the
first run to the core, so nothing in it moves between BASE's run and this tree's; the
core is a gcore of that same stopped process. `go trace` reads a committed trace
(tests/data/exectrace), `go xref` and `go stacks --diff` what `go dump -o` and
`go stacks --json -o` wrote in the same run.

Masked, because it truly differs between two runs: the host's clock (on a live process
"now" places timers, the last GC and pprof's time_nanos: both runs see the same instant,
time.monotonic_ns and time.time_ns pinned to the test's start in gdb's and the bridge's
Python before our code loads), and the folder each run writes its files to (one per run),
which a view names in its output. Not compared here: `go mapwatch` on
the live process (it lets the program run, so its rates are of time: test_mapwatch and
test_bridge_mapwatch compare them); its usage errors and its line on a core are compared.
"""
import gzip
import os
import shlex
import signal
import time

import pytest

import harness

BASE_REFACTOR = "a37471e"   # main before issue 26's refactor

# gdb commands; {out} is the run's own folder, {trace} a committed execution trace,
# {needle} and {buffer} heap objects the fixture named in heap.json
COMMANDS = [
    "help go", "help go heap", "go", "go nosuchview", "go heap --bogus",
    "go version", "go version --json",
    "go goroutines", "go goroutines -l", "go goroutines -a", "go goroutines -t 3",
    "go goroutines --json", "go goroutines --json -a -t 64", "go goroutines -s waiting",
    "go goroutines -s chan receive", "go goroutines -with userloc main.holdA",
    "go goroutines -without waitreason chan -l", "go goroutines -group userloc",
    "go goroutines -group waitreason --json", "go goroutines -group startloc -t 2",
    "go goroutines -label nope", "go goroutines --limit 3", "go goroutines --limit 2 --json",
    "go goroutines -group nope", "go goroutines --retained", "go goroutines --retained --json",
    "go goroutines --json -o {out}/g.json",
    "go goroutine 1", "go goroutine 1 --json", "go goroutine 1 -t 2", "go goroutine 999999",
    "go stacks", "go stacks --json", "go stacks --similar", "go stacks --min 2 -t 4",
    "go stacks --similar --json -t 3", "go stacks -t 0",
    "go stacks --json -o {out}/s.json", "go stacks --diff {out}/s.json",
    "go stacks --diff {out}/s.json --json", "go stacks --retained",
    "go stacks --retained --json", "go stacks --retained --pprof {out}/r.pb.gz",
    "go stacks --pprof {out}/x.pb.gz",
    "go map main.registry --limit 5", "go map main.registry --json",
    "go map main.registry --layout --limit 3", "go map main.registry --key '\"needle\"'",
    "go map main.registry --key nope", "go map main.nosuch", "go map main.registry --limit -2",
    "go chan main.chA", "go chan main.chA --json", "go chan main.chB --limit 3",
    "go chan main.chC --json", "go chan main.nosuch",
    "go threads", "go threads --json",
    "go sched", "go sched --json", "go sched --runq 2", "go sched --format scheddetail",
    "go gc", "go gc --json", "go gc --pauses 5",
    "go pprof -o {out}/p.pb.gz",
    "go dump", "go dump --args", "go dump --level 1", "go dump -o {out}/d.txt",
    "go xref {out}/d.txt", "go xref {out}/d.txt --json -t 3",
    "go trace {trace}", "go trace {trace} --json", "go trace {trace} --p",
    "go trace {trace} --goroutine 1", "go trace {trace} --window 1ms..", "go trace {out}/none",
    "go heap", "go heap --json", "go heap --top 3", "go heap --pprof {out}/h.pb.gz",
    "go heap --pprof {out}/h2.pb.gz --chain-depth 2", "go heap --chain-depth 0",
    "go paths {needle}", "go paths {needle} --json", "go paths {buffer} --max 2",
    "go paths 0x10", "go paths nope",
    "go mapwatch main.registry --max-hits -1", "go mapwatch main.nosuch",
]
ONLY_CORE = ("go mapwatch main.registry --max-hits 1 --timeout 1",)   # (one line on a core)


def _filled(cmd, out, values):
    return cmd.replace("{out}", out).format(**values) if "{" in cmd else cmd


def _gdb_commands(mode, out, values):
    cmds = COMMANDS + (list(ONLY_CORE) if mode == "core" else [])
    return [(c, _filled(c, out, values)) for c in cmds]


def _bridge_argvs(mode, out, values):
    """The `go X ...` commands as bridge views ["X", ...] (not help, `go` alone or an
    unknown view: those are gdb's)."""
    out_argvs = []
    for name, cmd in _gdb_commands(mode, out, values):
        words = shlex.split(cmd)
        if words[0] == "go" and len(words) > 1 and words[1] != "nosuchview":
            out_argvs.append((name, words[1:]))
    return out_argvs


def _files(out):
    """{name: bytes} of what a run wrote (pprof files unzipped: gzip stamps no time here,
    but a diff of the profile reads better)."""
    got = {}
    for name in sorted(os.listdir(out)):
        with open(os.path.join(out, name), "rb") as f:
            data = f.read()
        got[name] = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return got


def _first_difference(want, got):
    a, b = want.splitlines(), got.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "line %d:\n  base: %r\n  this: %r" % (i + 1, x, y)
    return "lines %d (base) and %d (this): %r" % (len(a), len(b), (a[len(b):] or b[len(a):])[:3])


class Side:
    """One side of the comparison: BASE_REFACTOR's code or this tree's."""

    def __init__(self, name, tree, work, clock):
        self.name, self.tree, self.work = name, tree, work
        self.prelude = "import time; time.monotonic_ns = lambda: %d; time.time_ns = lambda: %d" \
            % clock

    def out(self, door, mode):
        d = os.path.join(self.work, "out-%s-%s-%s" % (self.name, door, mode))
        os.makedirs(d, exist_ok=True)
        return d


def _run_gdb(side, t, values):
    out = side.out("gdb", t.mode)
    cmds = _gdb_commands(t.mode, out, values)
    code = ("(code)", "python import gdb_go_ext.views.registry as R; print(R.__file__)")
    # each side's tree imported first, this one's too: CI's install is a copy of it
    r = harness.gdb_with_tree(t, cmds + [code], side.tree, prelude=side.prelude, timeout=600)
    _check_ran(side, r.block("(code)"), t, r.block("go version"), r.block("go heap"))
    texts = {}
    for name, _ in cmds:
        error = r.error(name)
        texts[name] = (r.block(name) + ("\n[gdb error] " + error if error else "")
                       ).replace(out, "{out}")
    return texts, _files(out)


def _run_bridge(side, t, values, address):
    out = side.out("bridge", t.mode)
    argvs = _bridge_argvs(t.mode, out, values)
    got = harness.bridge_views(t, [a for _, a in argvs], side.tree, timeout=600,
                               prelude=side.prelude, address=address)
    _check_ran(side, got["(code)"], t, got["version"], got["heap"])
    texts = {name: got[" ".join(a)].replace(out, "{out}") for name, a in argvs}
    return texts, _files(out)


def _check_ran(side, code_file, t, version, heap):
    """The side's own code ran (not the other's), and decoded the target: a comparison
    of two failures would prove nothing."""
    assert os.path.realpath(code_file.strip()).startswith(os.path.realpath(side.tree) + os.sep), \
        (side.name, code_file)
    go = harness.toolchain_go_version(t.toolchain)
    assert go in version, (side.name, version)
    if int(go.split(".")[1]) >= 22:   # (the heap views need Go 1.22+)
        assert "live" in heap and "error" not in heap.splitlines()[0], (side.name, heap[:300])


def _assert_identical(base, this, what):
    (bt, bf), (tt, tf) = base, this
    assert bt.keys() == tt.keys()
    diffs = ["%s, %s: %s" % (what, name, _first_difference(str(bt[name]), str(tt[name])))
             for name in bt if tt[name] != bt[name]]
    if sorted(tf) != sorted(bf):
        diffs.append("%s: files %s and %s" % (what, sorted(bf), sorted(tf)))
    diffs += ["%s: file %s differs (%d and %d bytes)" % (what, name, len(bf[name]),
                                                         len(tf.get(name, b"")))
              for name in bf if tf.get(name) != bf[name]]
    assert not diffs, "\n".join(diffs)


def _compare(t, sides, values):
    base, this = sides
    _assert_identical(_run_gdb(base, t, values), _run_gdb(this, t, values), "gdb " + t.mode)
    dlv = None
    if t.mode == "live":   # one dlv for both sides: the same stop (its detach lets it run)
        from delve_bridge.bridge import _go_version_of   # (dlv's version follows Go's)
        from delve_bridge.dlv import DlvProcess
        dlv = DlvProcess("attach", pid=t.pid, binary=t.binary,
                         go_version=_go_version_of(t.binary))
    try:
        address = dlv.address if dlv else None
        _assert_identical(_run_bridge(base, t, values, address),
                          _run_bridge(this, t, values, address), "bridge " + t.mode)
    finally:
        if dlv is not None:
            dlv.stop(kill_target=False)


def test_every_view_identical_to_before_the_refactor(toolchain, tmp_path):
    tree = harness.commit_tree(BASE_REFACTOR)
    if tree is None:
        pytest.skip("this clone does not hold commit %s, the code before the refactor"
                    % BASE_REFACTOR)
    clock = (time.monotonic_ns(), time.time_ns())   # one instant for every run
    sides = (Side("base", tree, str(tmp_path), clock),
             Side("this", harness.REPO, str(tmp_path), clock))
    traces = os.path.join(harness.TESTS_DIR, "data", "exectrace")
    trace = os.path.join(str(tmp_path), "small.trace")
    with gzip.open(os.path.join(traces, "go1.22.10.trace.gz")) as f, open(trace, "wb") as o:
        o.write(f.read())
    with harness.target_for("heap", toolchain, "live", str(tmp_path)) as live:
        truth = live.truth("heap")
        values = {"trace": trace, "needle": truth["needle"], "buffer": truth["buffer_a"]}
        os.kill(live.pid, signal.SIGSTOP)   # nothing moves from here to the core
        try:
            _compare(live, sides, values)
            os.kill(live.pid, signal.SIGSTOP)
            core = harness.make_core(live.pid, os.path.join(str(tmp_path), "cores"))
            on_core = harness.Target(live.binary, "core", toolchain, live.fixture, core=core)
            _compare(on_core, sides, values)
        finally:
            os.kill(live.pid, signal.SIGCONT)
