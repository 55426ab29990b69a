"""The rare paths of the trace reader, on Go's own hand-written test traces
(internal/trace/testdata/tests of go1.27.3: proc steals around syscalls, at generation
boundaries, on bare Ms, ambiguous ones; goroutines created in syscalls; a thread ID
reused; a task across generations; GC and annotation stress; syncs of 1.23 and 1.25).

Each `.test` is Go's text format; tests/tracetext.py converts it to the binary format
(tests/data/exectrace/gotests/NAME.trace) and recorded, in truth.json.gz, what the
`go tool trace -d=parsed` (-d=1 on go1.22) of the toolchain that writes the wire
version prints for it: go1.22.10 for wire 1.22, go1.24.11 for 1.23, go1.25.5 for 1.25.
That is the truth: our events must equal it one for one, and we fail exactly when it
fails, with its message.

go1.22's reader starts each generation's frontier in Go map order, random per run, so
where Ms have events at equal times its output varies between runs: ours must be one of
the outputs it printed in 30 runs. Where every run differed (gc-stress), ours must
equal go1.24.11's, which reads wire 1.22 by go1.22's rules but starts the frontier in
batch order (as we do) - the file has no GoDestroySyscall, the one event whose ProcSteal
go1.24 places differently. Go's own expectation (SUCCESS, or FAILURE and a regexp,
written for go1.23+'s reader) is checked where the truth toolchain agrees with it.
"""
import gzip
import json
import os
import re
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(TESTS))
sys.path.insert(0, TESTS)

import exectrace_truth as T  # noqa: E402
from gdb_go_ext.exectrace import read_trace  # noqa: E402

DATA = os.path.join(TESTS, "data", "exectrace", "gotests")
with gzip.open(os.path.join(DATA, "truth.json.gz"), "rt") as _f:
    CASES = {c["name"]: c for c in json.load(_f)["cases"]}


def _ours(name):
    tr = read_trace(os.path.join(DATA, name + ".trace"))
    return list(tr), tr.error


def test_every_go_test_trace_is_here():
    assert len(CASES) == 22
    for want in ("go122-syscall-steal-proc-simple", "go122-syscall-steal-proc-ambiguous",
                 "go122-syscall-steal-proc-gen-boundary-reacquire-new-proc-bare-m",
                 "go122-syscall-steal-proc-sitting-in-syscall",
                 "go122-create-syscall-reuse-thread-id", "go122-go-create-without-running-g",
                 "go122-task-across-generations", "go123-sync", "go125-sync"):
        assert want in CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_events_and_errors_equal_go_tool_trace(name):
    case = CASES[name]
    truth = case["truth"][0]
    ours, error = _ours(name)
    assert truth["toolchain"] == {22: "go1.22.10", 23: "go1.24.11", 25: "go1.25.5"}[case["wire"]]
    if truth["outputs"]:
        diffs = [T.compare(ours, T.parse(out)) for out in truth["outputs"]]
        assert [] in diffs, (name, diffs[0])
    else:  # go1.22 printed a different order in each of its runs
        assert truth["runs"] > 1 and case["wire"] == 22
        later = case["truth"][1]
        assert later["toolchain"] == "go1.24.11" and later["rc"] == truth["rc"]
        assert not any(e.kind == "StateTransition" and e.from_state == "Syscall" and
                       e.to_state == "NotExist" for e in ours)
        assert T.compare(ours, T.parse(later["outputs"][0])) == []
    # we fail exactly when Go's reader fails, and with its message
    assert (error is not None) == (truth["rc"] != 0), (error, truth["stderr"])
    if error is not None:
        m = re.match(r"trace cut at byte \d+: (.*)$", error)
        assert m and "\n" not in error, error
        assert m.group(1) in truth["stderr"], (error, truth["stderr"])
    # Go's own expectation, where the truth toolchain's reader agrees with it
    word, _, rest = case["expect"].partition(" ")
    if word == "SUCCESS" and truth["rc"] == 0:
        assert error is None
    elif word == "FAILURE":
        pattern = json.loads(rest)  # a Go quoted string: JSON's escapes suffice here
        if re.search(pattern, truth["stderr"]):
            assert re.search(pattern, error), (pattern, error)


def test_where_go_versions_part_ways():
    """The cases where the truth toolchain and Go's expectation (go1.23+'s reader)
    differ, each for a reason we follow on purpose (the writer's toolchain reads it)."""
    # go1.22 gives a GoDestroySyscall's ProcSteal after it, go1.24 (its queue) before
    case = CASES["go122-create-syscall-reuse-thread-id"]
    ours, _ = _ours(case["name"])
    kinds = [(e.resource, e.from_state, e.to_state) for e in ours if e.kind == "StateTransition"]
    i = kinds.index(("Goroutine", "Syscall", "NotExist"))
    assert kinds[i + 1] == ("Proc", "Running", "Idle")
    assert T.compare(ours, T.parse(case["truth"][1]["outputs"][0])) != []
    # go1.22 stops at the cut batch before ordering anything; go1.23+ order the first
    # generation first and fail on its GoCreate without a P
    ours, error = _ours("go122-fail-first-gen-first")
    assert ours == [] and "failed to read full batch" in error
    assert "expected a proc" in CASES["go122-fail-first-gen-first"]["truth"][1]["stderr"]
    # go1.23/1.24 end a trace at a generation without events; go1.25+ read on (SUCCESS)
    ours, error = _ours("go123-sync")
    assert [e.kind for e in ours] == ["StateTransition", "Sync"]
    assert error.endswith("broken trace: frontier is empty")
    assert CASES["go123-sync"]["expect"] == "SUCCESS"


def test_text_converter_reproduces_the_committed_traces():
    """tests/tracetext.py still makes these bytes from Go's text (when a toolchain with
    Go's test files is at hand)."""
    import glob
    import tracetext
    roots = glob.glob(os.path.expanduser(
        "~/go/pkg/mod/golang.org/toolchain@v0.0.1-go1.27.*/src/internal/trace/testdata/tests"))
    if not roots:
        pytest.skip("no go1.27 source tree with internal/trace/testdata/tests")
    for name in CASES:
        _, text = tracetext.read_test(os.path.join(roots[0], name + ".test"))
        with open(os.path.join(DATA, name + ".trace"), "rb") as f:
            assert tracetext.text_to_binary(text) == f.read(), name
