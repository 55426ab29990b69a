"""Every view loads and prints under a C/POSIX locale (LANG=C LC_ALL=C, and no LANG at
all), in real gdb and in the real delve-bridge (CLI and REPL): ASCII stand-ins where the
locale cannot hold a character ('\u2026' as '...'), while files written with -o stay UTF-8.
One toolchain: the locale is no property of the Go version."""
import json
import os
import subprocess
import sys

import pytest

import harness

sys.path.insert(0, harness.REPO)
from gdb_go_ext.views import catalog, registry  # noqa: E402,F401
from gdb_go_ext.views.console import ascii_text  # noqa: E402

TC = "go1.26.6" if "go1.26.6" in harness.matrix_names() else harness.matrix_names()[-1]
ELLIPSIS = "\u2026"


def _c_env(unset: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    if not unset:
        env.update(LANG="C", LC_ALL="C")
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture(scope="module")
def core_target(tmp_path_factory):
    with harness.target_for("goroutines", TC, "core",
                            str(tmp_path_factory.mktemp("locale"))) as t:
        yield t


def _assert_ascii(text, what):
    bad = sorted({c for c in text if ord(c) > 127})
    assert not bad, f"{what} is not ASCII: {bad}"


@pytest.mark.parametrize("unset", [False, True], ids=["LC_ALL=C", "no-LANG"])
def test_gdb_loads_and_prints_in_c_locale(core_target, unset, tmp_path):
    t = core_target
    views = list(registry.VIEWS)
    out_file = tmp_path / "stacks.txt"
    cmds = [("help", "help go")] + [(f"help {v}", f"help go {v}") for v in views] + [
        ("stacks", "go stacks"), ("goroutines", "go goroutines -t 2"),
        ("group", "go goroutines -group waitreason"),
        ("version", "go version"), ("json", "go goroutines --json --limit 2"),
        ("file", f"go goroutines -group waitreason -o {out_file}"), ("bad", "go goroutine 999999"),
        ("complete", "complete go goroutines --j")]
    r = t.gdb(cmds, env=_c_env(unset))
    assert "could not load" not in r.stdout + r.stderr, r.stdout[:2000]
    help_all = r.block("help")
    for v in views:
        assert f"\n  {v} " in help_all, v           # every view, one line each
        text = r.block(f"help {v}")
        assert r.error(f"help {v}") is None
        assert text.startswith(ascii_text(registry.VIEWS[v].summary)), text[:200]
        assert f"usage: go {v}" in text and "--help" in text
        flags = {o for a in registry.parser(registry.VIEWS[v], v)._actions for o in a.option_strings}
        assert all(f in text for f in flags), (v, [f for f in flags if f not in text])
        _assert_ascii(text, f"help go {v}")
    for name in ("stacks", "goroutines", "group", "version", "json"):
        assert r.error(name) is None, r.error(name)
        _assert_ascii(r.block(name), name)
    assert json.loads(r.block("json"))["goroutines"]
    # -o FILE is UTF-8 whatever the locale; the terminal gets the same in ASCII
    with open(out_file, encoding="utf-8") as f:
        text = f.read()
    assert ELLIPSIS in text and ELLIPSIS not in r.stdout
    assert r.block("group") == ascii_text(text).rstrip("\n")
    assert r.error("bad") and "go goroutine" in r.error("bad")
    assert r.block("complete") == "go goroutines --json"


def _bridge(args, env, stdin=None):
    return subprocess.run([sys.executable, "-m", "delve_bridge"] + args, cwd=harness.REPO,
                          env=env, input=stdin, capture_output=True, timeout=300)


@pytest.mark.parametrize("utf8_mode", ["1", "0"])
def test_bridge_prints_in_c_locale(core_target, utf8_mode):
    """Python's UTF-8 mode (on by default in a C locale) writes UTF-8 that a C terminal
    cannot show; without it stdout is ASCII and '\u2026' raised UnicodeEncodeError."""
    t = core_target
    env = dict(_c_env(False), PYTHONUTF8=utf8_mode)
    p = _bridge(["core", t.binary, t.core, "goroutines", "-group", "waitreason"], env)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    out = p.stdout.decode("utf-8")
    _assert_ascii(out, "delve-bridge goroutines")
    assert ", ...]" in out
    p = _bridge(["core", t.binary, t.core], env,
                stdin=b"help\nhelp stacks\ngoroutines -group waitreason\nstacks\nquit\n")
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    out = p.stdout.decode("utf-8")
    _assert_ascii(out, "the REPL's output")
    assert "usage: stacks" in out and ", ...]" in out
    assert p.stderr == b"", p.stderr.decode(errors="replace")[-2000:]
    p = _bridge(["--help"], env)
    assert p.returncode == 0 and p.stdout.decode("ascii")
