"""Self-tests of the harness, on every toolchain of the matrix: the fixture
builds, runs, reports the runtime version the toolchain claims, a core can be
made, and real gdb reads the same version out of the live process and the core.
"""
import os
import subprocess

import pytest

import harness


def test_matrix_file_is_consistent():
    tcs = harness.matrix()
    names = [tc["name"] for tc in tcs]
    assert len(names) == len(set(names)), names
    for tc in tcs:
        if "same_as" in tc:
            assert tc["same_as"] in names
        else:
            assert tc["source"] in ("apt", "toolchain"), tc
    # The matrix, no more, no less.
    assert names == ["go1.19", "go1.21.13", "go1.22.10", "go1.23.9", "go1.24.11",
                     "go1.24.11-noswissmap", "go1.25.5", "go1.26.6", "go1.27.3"]


def test_toolchain_is_installed(toolchain):
    info = harness.toolchain(toolchain)
    reported = harness.toolchain_go_version(toolchain)
    assert reported == info["version"]
    entry = next(tc for tc in harness.matrix() if tc["name"] == toolchain)
    base = next(tc for tc in harness.matrix() if tc["name"] == entry.get("same_as", toolchain))
    if base["source"] == "toolchain":
        assert reported == base["version"]
    else:
        assert reported.startswith(base["version_prefix"])


def _expected_runtime_version(toolchain):
    """What runtime.Version() must say: the toolchain's `go version`, plus
    ' X:<exp>' when built with a non-default GOEXPERIMENT."""
    want = harness.toolchain_go_version(toolchain)
    exp = harness.toolchain(toolchain).get("env", {}).get("GOEXPERIMENT")
    return want + (" X:" + exp if exp else "")


def test_fixture_builds_runs_and_cores(toolchain, tmp_path):
    binary = harness.build("version", toolchain)
    assert os.access(binary, os.X_OK)
    assert harness.build("version", toolchain) == binary  # cached
    with harness.run_fixture(binary) as fp:
        truth = fp.truth("version")
        assert truth["pid"] == fp.pid
        assert truth["version"] == _expected_runtime_version(toolchain)
        assert truth["goarch"] == subprocess.run(
            [harness.toolchain(toolchain)["go"], "env", "GOARCH"], env=harness.go_env(toolchain),
            capture_output=True, text=True, check=True).stdout.strip()
        core = harness.make_core(fp.pid, str(tmp_path))
        try:
            with open(core, "rb") as f:
                head = f.read(18)
        finally:
            os.remove(core)  # Go cores are ~1 GB (gcore writes the PROT_NONE arena reservations)
        assert head[:4] == b"\x7fELF" and head[16] == 4  # ET_CORE
        assert fp.proc.poll() is None  # gcore left it running


READ_BUILD_VERSION = (
    "python v = gdb.parse_and_eval(\"'runtime.buildVersion'\"); "
    "print(gdb.selected_inferior().read_memory(v['str'], int(v['len'])).tobytes().decode())")


def test_gdb_reads_target(toolchain, mode, go_target):
    """Real gdb on the live process / the core sees runtime.buildVersion equal
    to the fixture's own runtime.Version(). Extension not loaded: this checks
    the harness, not the extension."""
    t = go_target("version")
    assert (t.pid is not None) == (mode == "live") and (t.core is not None) == (mode == "core")
    r = t.gdb([("buildVersion", READ_BUILD_VERSION)], load_extension=False)
    assert r.error("buildVersion") is None, r.stderr
    assert r.block("buildVersion").strip().splitlines()[-1] == t.truth("version")["version"]


def test_gdb_blocks_and_errors(tmp_path):
    """Blocks are cut per command; a failing command is reported in its block
    and the following commands still run."""
    tc = harness.matrix_names()[-1]
    with harness.target_for("version", tc, "core", str(tmp_path)) as t:
        r = t.gdb(["python print(6 * 7)", ("bad", "no-such-command"),
                   ("after", "python print('still here')")], load_extension=False)
    assert r.block("python print(6 * 7)") == "42"
    assert r.error("python print(6 * 7)") is None
    assert "Undefined command" in r.error("bad")
    assert r.block("after") == "still here"
    assert r.names == ["python print(6 * 7)", "bad", "after"]


def test_fixture_that_never_gets_ready_fails_fast(tmp_path):
    script = tmp_path / "silent.sh"
    script.write_text("#!/bin/sh\necho starting\nexec sleep 60\n")
    script.chmod(0o755)
    with pytest.raises(harness.HarnessError, match="not ready"):
        with harness.run_fixture(str(script), timeout=1):
            pass


def test_fixture_that_dies_is_reported(tmp_path):
    script = tmp_path / "dies.sh"
    script.write_text("#!/bin/sh\necho oops >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(harness.HarnessError, match="exited with 3"):
        with harness.run_fixture(str(script), timeout=10):
            pass
