"""`go version`: the Go version and runtime layout facts, checked against what each
toolchain says itself: its `go version`, the fixture's runtime.Version(), and the
runtime sources shipped in its GOROOT."""
import json
import os
import re

import harness


def _src(toolchain, *parts):
    path = os.path.join(harness.toolchain(toolchain)["goroot"], "src", *parts)
    with open(path) as f:
        return f.read()


def _table_strings(source, var):
    body = source[source.index(var):]
    body = body[body.index("{") + 1: body.index("\n}")]
    return sorted(set(x for x in re.findall(r'^\s*\w+\s*:\s*"([^"]*)"', body, re.M) if x))


def expected_layout(toolchain):
    """Layout facts read from the toolchain's own runtime sources."""
    g_struct = _src(toolchain, "runtime", "runtime2.go")
    g_struct = g_struct[g_struct.index("type g struct {"):]
    g_struct = g_struct[: g_struct.index("\n}\n")]
    field = lambda name: re.search(r"^\s*%s\s+(\S+)" % name, g_struct, re.M)
    labels = _src(toolchain, "runtime", "pprof", "label.go")
    exp = harness.toolchain(toolchain).get("env", {}).get("GOEXPERIMENT", "")
    has_swiss = os.path.isdir(os.path.join(harness.toolchain(toolchain)["goroot"], "src",
                                           "internal", "runtime", "maps"))
    traceback = _src(toolchain, "runtime", "traceback.go")
    wait_src = next(_src(toolchain, "runtime", f) for f in ("runtime2.go",)
                    if "waitReasonStrings" in _src(toolchain, "runtime", f))
    return {
        "atomicstatus": "atomic.Uint32" if field("atomicstatus").group(1).endswith("Uint32")
                        and "atomic." in field("atomicstatus").group(1) else "uint32",
        "goid_type": field("goid").group(1),
        "parent_goid": field("parentGoid") is not None,
        "syscallbp": field("syscallbp") is not None,
        "labels": "map[string]string" if "type labelMap map[string]string" in labels else "label-slice",
        "maps": "swiss" if has_swiss and "noswissmap" not in exp else "hmap",
        "wait_reason_strings": _table_strings(wait_src, "var waitReasonStrings"),
        "status_strings": _table_strings(traceback, "var gStatusStrings"),
    }


def test_version_and_layout_facts(toolchain, mode, go_target):
    t = go_target("goroutines")  # it links runtime/pprof, so labels have a representation
    r = t.gdb([("json", "go version --json"), ("text", "go version")])
    assert r.error("json") is None, r.stdout[-2000:] + r.stderr[-2000:]
    facts = json.loads(r.block("json"))
    runtime_version = t.truth("meta")["version"]
    assert facts["go_version"] == runtime_version
    assert facts["go_version"].split()[0] == harness.toolchain_go_version(toolchain)
    assert facts["live"] == (mode == "live")
    assert facts["ptr_size"] == 8
    want = expected_layout(toolchain)
    got = {k: facts[k] for k in want}
    # the tables are read from the binary: every string the source declares, nothing else
    for table in ("wait_reason_strings", "status_strings"):
        got[table] = sorted(set(x for x in got[table] if x))
    assert got == want
    assert facts["wait_reasons"] == len(facts["wait_reason_strings"]) > 0
    if "X:" in runtime_version:
        assert facts["experiments"] == runtime_version.split("X:")[1].split(",")
    assert runtime_version in r.block("text")


def test_loading_twice_is_harmless_and_says_what_loaded(toolchain):
    binary = harness.build("version", toolchain)
    r = harness.run_gdb(binary, commands=[("again", "source gdb_go_ext"), ("v", "go version")])
    assert r.error("again") is None and r.error("v") is None
    line = [l for l in r.block("again").splitlines() if l.startswith("gdb_go_ext ")]
    assert len(line) == 1 and harness.toolchain_go_version(toolchain) in line[0]
    assert "Traceback" not in r.stdout + r.stderr


def test_no_target_and_non_go_targets_get_a_sentence():
    r = harness.run_gdb(None, commands=["go version", ("json", "go version --json")])
    assert "no program is loaded" in r.error("go version")
    r = harness.run_gdb("/bin/true", commands=["go version"])
    assert "not a Go program" in r.error("go version")
    r = harness.run_gdb("/bin/true", commands=[("bad", "go version --nope"), ("plain", "go version"),
                                               ("still", "python print('alive')")])
    assert "usage: go version" in r.error("bad")
    assert "not a Go program" in r.error("plain")
    assert r.block("still") == "alive"  # gdb stays usable
    assert "Traceback" not in r.stdout + r.stderr
    # only `set go debug on` shows the Python traceback
    r = harness.run_gdb("/bin/true", commands=[("set", "set go debug on"), ("debug", "go version")])
    assert "not a Go program" in r.error("debug")
    assert "Traceback" in r.stdout + r.stderr


def test_settings_are_gdb_parameters():
    r = harness.run_gdb(None, commands=[("show", "show go color"), ("set", "set go color off"),
                                        ("show2", "show go color"), ("dbg", "show go debug")])
    assert "auto" in r.block("show")
    assert "off" in r.block("show2")
    assert "off" in r.block("dbg")


def test_completion_of_flags_kinds_and_globals():
    tc = harness.matrix_names()[-1]
    r = harness.run_gdb(harness.build("maps", tc), commands=[
        ("flags", "complete go goroutines -wi"), ("kinds", "complete go goroutines -group st"),
        ("globals", "complete go map main.mSm"), ("sub", "complete go ver")])
    assert r.block("flags").splitlines() == ["go goroutines -with", "go goroutines -without"]
    assert r.block("kinds").splitlines() == ["go goroutines -group startloc", "go goroutines -group status"]
    assert "go map main.mSmall" in r.block("globals").splitlines()
    assert r.block("sub") == "go version"


def test_colour_only_when_asked_in_batch_mode(toolchain):
    binary = harness.build("goroutines", toolchain)
    with harness.run_fixture(binary) as fp:
        r = harness.run_gdb(binary, pid=fp.pid, commands=[
            ("auto", "go goroutines --limit 3"), ("on", "set go color on"),
            ("coloured", "go goroutines --limit 3"), ("off", "set go color off"),
            ("plain", "go goroutines --limit 3")], env=dict(os.environ, NO_COLOR=""))
    assert "\x1b[" not in r.block("auto")  # batch mode: gdb's styling is off
    assert "\x1b[" in r.block("coloured")
    assert "\x1b[" not in r.block("plain")
    strip = lambda s: re.sub(r"\x1b\[[0-9;]*m", "", s)
    assert [l.rstrip() for l in strip(r.block("coloured")).splitlines()] == \
        [l.rstrip() for l in r.block("plain").splitlines()]
