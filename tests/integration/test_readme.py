"""Every command the README shows runs as shown, and prints the lines it shows.

The README marks the blocks it means to be run: a fenced block whose info string is
`console on=TARGET`. In such a block a line starting with `(gdb) ` is a gdb command, a
line starting with `$ ` a shell command, and the lines under a command are what it
printed (an excerpt: `…` stands for anything, a line of only `…` for lines cut).
TARGET is what the block runs on, as the README says:

  leaky    examples/leaky, built with TOOLCHAIN and running: `(gdb)` lines run in
           `gdb -p` attached to it (the extension loaded as a user loads it); in `$`
           lines PID is its pid, ./leaky its binary and core.PID a gcore of it
  lookups  tests/fixtures/lookups running (PID is its pid)
  trace    no process: trace.out is an execution trace of TOOLCHAIN
           (tests/data/exectrace)

Each command must end cleanly (gdb: no error; shell: status 0) with no traceback and
no error line, and its shown lines must appear in its output in order (whitespace runs
compare as one space). Per target, the `(gdb)` lines run first, in README order, in
one gdb session, then the `$` lines in README order (a `$` line may read a file a
`(gdb)` line wrote); `$ gdb ...` reads a gdbinit holding the `directory` line
install.sh writes, so `source gdb_go_ext` is found as in a user's session.

Not run here: blocks without `on=`: `./install.sh --demo` and `./install.sh --test`
(the Quickstart), `./install.sh [--dev]` and `(gdb) source gdb_go_ext` (the Install
section; every gdb run here sources it as shown), and the Python API example: the
suite itself (test_install.py, test_bridge.py) covers those.
"""
import concurrent.futures
import contextlib
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import harness  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(REPO, "README.md")
TOOLCHAIN = "go1.26.6"          # the README says its examples were built with Go 1.26.6
ELLIPSIS = "…"
BAD_LINE = re.compile(r"^(Traceback \(most recent call last\)|Python Exception|error:|"
                      r"delve-bridge: |gdb-go: )")


class Command:
    def __init__(self, kind, text, line):
        self.kind, self.text, self.line, self.shown = kind, text, line, []

    def __repr__(self):
        return "README.md:%d: %s" % (self.line, self.text)


def readme_blocks(path=README):
    """[(target, [Command])] for every fenced block marked `on=TARGET`, in order."""
    blocks, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("```"):
                if cur is not None:
                    if cur:
                        blocks.append(cur)
                    cur = None
                else:
                    m = re.search(r"\bon=(\S+)", line[3:])
                    cur = (m.group(1), []) if m else False   # False: a block not run
                continue
            if not cur:
                continue
            if line.startswith("(gdb) "):
                cur[1].append(Command("gdb", line[len("(gdb) "):], n))
            elif line.startswith("$ "):
                cur[1].append(Command("sh", line[2:], n))
            elif cur[1]:
                cur[1][-1].shown.append(line)
            elif line.strip():
                raise AssertionError("README.md:%d: output before any command: %r" % (n, line))
    return blocks


def _norm(s):
    return " ".join(s.split())


def missing_lines(shown, output):
    """The shown lines that do not appear in output, in order; [] when all do."""
    actual = [_norm(l) for l in output.splitlines()]
    i, missing = 0, []
    for want in shown:
        w = _norm(want)
        if not w or w == ELLIPSIS:
            continue
        pieces = [p.strip() for p in w.split(ELLIPSIS)]
        pat = re.compile(".*?".join(re.escape(p) for p in pieces))
        j = i
        while j < len(actual) and not pat.search(actual[j]):
            j += 1
        if j == len(actual):
            missing.append(want)
        else:
            i = j + 1
    return missing


def bad_lines(text):
    return [l for l in text.splitlines() if BAD_LINE.match(l.strip())]


def test_readme_parser_sees_every_block():
    """The marking is not silently lost: every README block with a `(gdb) ` or `$ `
    line is either marked on=TARGET or is one of the few the docstring names."""
    blocks = readme_blocks()
    targets = {t for t, _ in blocks}
    assert targets <= {"leaky", "lookups", "trace"}, targets
    assert sum(len(c) for _, c in blocks) >= 30
    assert missing_lines(["a … c", "…", "x"], "a b c\nq\nx  \n") == []
    assert missing_lines(["x", "a … c"], "a b c\nx\n") == ["a … c"]


# ---------------------------------------------------------------------------
# the targets
# ---------------------------------------------------------------------------
def _build_example(name):
    """examples/<name> built with TOOLCHAIN, cached like harness.build's fixtures."""
    src = os.path.join(REPO, "examples", name)
    h = hashlib.sha256()
    for root, _dirs, files in os.walk(src):
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                h.update(f.encode() + b"\0" + fh.read() + b"\0")
    info = harness.toolchain(TOOLCHAIN)
    h.update(info["go"].encode())
    final = os.path.join(harness.cache_dir(), "builds", TOOLCHAIN,
                         "example-%s-%s" % (name, h.hexdigest()[:16]))
    binary = os.path.join(final, name)
    if os.access(binary, os.X_OK):
        return binary
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".example-%s." % name, dir=os.path.dirname(final))
    try:
        p = subprocess.run([info["go"], "build", "-o", os.path.join(tmp, name), "."], cwd=src,
                           env=harness.go_env(TOOLCHAIN), capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.access(binary, os.X_OK):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


@contextlib.contextmanager
def _target(name, work):
    """(pid or None, the $-line substitutions) with the target's files in `work`."""
    if name == "leaky":
        shutil.copy(_build_example("leaky"), os.path.join(work, "leaky"))
        with harness.run_fixture(os.path.join(work, "leaky"), ready="ready") as fp:
            harness.make_core(fp.pid, work)         # work/core.<pid>
            yield fp.pid
    elif name == "lookups":
        with harness.run_fixture(harness.build("lookups", TOOLCHAIN)) as fp:
            yield fp.pid
    elif name == "trace":
        src = os.path.join(REPO, "tests", "data", "exectrace", TOOLCHAIN + ".trace.gz")
        with gzip.open(src, "rb") as f, open(os.path.join(work, "trace.out"), "wb") as out:
            out.write(f.read())
        yield None
    else:
        raise AssertionError("README names an unknown target %r" % name)


def _shell_env(work):
    """A user's environment after ./install.sh: the launchers on PATH, a gdbinit with
    install.sh's directory line."""
    home = os.path.join(work, "home")
    bindir = os.path.join(home, "bin")
    os.makedirs(bindir, exist_ok=True)
    for tool in ("delve-bridge", "gdb-go"):
        path = shutil.which(tool) or os.path.join(harness.home_dir(), "venv", "bin", tool)
        assert os.access(path, os.X_OK), "%s is not installed (run ./install.sh)" % tool
        os.symlink(path, os.path.join(bindir, tool))
    with open(os.path.join(home, ".gdbinit"), "w") as f:
        f.write("directory %s\n" % harness.gdb_script_dir())
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1",
               GDB_GO_EXT_HOME=harness.home_dir(), GDB_GO_EXT_CACHE=harness.cache_dir())
    return env


def _run_shell(cmd, pid, work, env):
    text = re.sub(r"\bPID\b", str(pid), cmd.text) if pid is not None else cmd.text
    try:
        p = subprocess.run(text, shell=True, cwd=work, env=env, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        return cmd, ["timed out after 300 s: %s" % text]
    out = p.stdout + p.stderr
    problems = []
    if p.returncode != 0:
        problems.append("exit status %d" % p.returncode)
    problems += ["error line: %s" % l for l in bad_lines(out)]
    problems += ["not in its output: %r" % l for l in missing_lines(cmd.shown, p.stdout)]
    if problems:
        problems.append("--- output of `%s` ---\n%s" % (text, out[-3000:]))
    return cmd, problems


@pytest.mark.parametrize("target", ["leaky", "lookups", "trace"])
def test_readme_commands_run_as_shown(target, tmp_path, monkeypatch):
    commands = [c for t, cs in readme_blocks() if t == target for c in cs]
    assert commands, "the README shows no command on %s" % target
    work = str(tmp_path)
    monkeypatch.chdir(work)              # `-o FILE` and `go trace trace.out` are relative
    failures = []
    with _target(target, work) as pid:
        gdb_cmds = [c for c in commands if c.kind == "gdb"]
        if gdb_cmds:
            binary = os.path.join(work, "leaky") if target == "leaky" else None
            r = harness.run_gdb(binary, pid=pid,
                                commands=[("README.md:%d" % c.line, c.text) for c in gdb_cmds],
                                timeout=300)
            assert "Traceback" not in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
            for c in gdb_cmds:
                name = "README.md:%d" % c.line
                out = r.block(name)
                problems = (["gdb error: %s" % r.error(name)] if r.error(name) else [])
                problems += ["error line: %s" % l for l in bad_lines(out)]
                problems += ["not in its output: %r" % l for l in missing_lines(c.shown, out)]
                if problems:
                    failures.append("%r:\n  %s\n--- output ---\n%s"
                                    % (c, "\n  ".join(problems), out[-3000:]))
        env = _shell_env(work)
        shell = [c for c in commands if c.kind == "sh"]
        # attached commands one at a time (one tracer per process); the others, which
        # read files (the core, the binary, a trace), three at once
        attached = [c for c in shell if "attach PID" in c.text]
        results = [_run_shell(c, pid, work, env) for c in attached]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            results += list(pool.map(lambda c: _run_shell(c, pid, work, env),
                                     [c for c in shell if c not in attached]))
        failures += ["%r:\n  %s" % (c, "\n  ".join(p)) for c, p in results if p]
    assert not failures, "\n\n".join(failures)
