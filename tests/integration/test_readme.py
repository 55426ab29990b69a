"""Every command the README shows runs as shown, and prints the lines it shows.

The README marks the blocks it means to be run: a fenced block whose info string is
`console on=TARGET`. In such a block a line starting with `(gdb) ` is a gdb command, a
line starting with `$ ` a shell command, and the lines under a command are what it
printed (an excerpt: `…` in a line stands for any text, a line of only `…` for lines
cut; lines cut without one make the test fail).
TARGET is what the block runs on, as the README says:

  leaky    examples/leaky, built with TOOLCHAIN and running: `(gdb)` lines run in
           `gdb -p` attached to it (the extension loaded as a user loads it); in `$`
           lines PID is its pid, ./leaky its binary and core.PID a gcore of it
  lookups  tests/fixtures/lookups running (PID is its pid)
  trace    no process: trace.out is an execution trace of TOOLCHAIN
           (tests/data/exectrace)

They run with TOOLCHAIN whatever --toolchain says: the README shows one build's output.
Each command must end cleanly (gdb: no error; shell: status 0) with no traceback and
no error line, and its shown lines must be its output as shown (missing_lines says
exactly how they compare). Per target, the `(gdb)` lines run first, in README order, in
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
import functools
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
    """[] when the shown lines are the output's lines as the README shows them, else the
    excerpt, in a list. Blank lines do not count; whitespace runs compare as one space;
    `…` in a line stands for any text, and a line of only `…` for any lines (none
    included). Without a `…` line between them, shown lines are adjacent in the output,
    and the first and the last shown lines are its first and last."""
    if not shown:
        return []
    actual = [a for a in (_norm(l) for l in output.splitlines()) if a]
    items = []
    for want in shown:
        w = _norm(want)
        if w == ELLIPSIS:
            items.append(None)
        elif w:
            items.append(re.compile(".*".join(re.escape(p) for p in w.split(ELLIPSIS))))

    @functools.lru_cache(maxsize=None)
    def fits(si, ai):
        if si == len(items):
            return ai == len(actual)
        if items[si] is None:
            return any(fits(si + 1, k) for k in range(ai, len(actual) + 1))
        return ai < len(actual) and bool(items[si].fullmatch(actual[ai])) and fits(si + 1, ai + 1)

    return [] if fits(0, 0) else ["\n".join(shown)]


def bad_lines(text):
    return [l for l in text.splitlines() if BAD_LINE.match(l.strip())]


# the README's command lines that are shown but not run here (see the docstring)
NOT_RUN = {"(gdb) source gdb_go_ext"}


def test_readme_marks_every_command_block():
    """No command line escapes the test: every `(gdb) ` or `$ ` line of the README is in
    a block marked on=TARGET, or is one of NOT_RUN; and the matching of shown lines
    fails where it should."""
    unmarked, in_block, marked = [], False, False
    with open(README, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("```"):
                in_block, marked = not in_block, bool(re.search(r"\bon=\S", line))
            elif in_block and not marked and line.startswith(("(gdb) ", "$ ")) \
                    and line not in NOT_RUN:
                unmarked.append("README.md:%d: %s" % (n, line))
    assert unmarked == []
    blocks = readme_blocks()
    assert {t for t, _ in blocks} <= {"leaky", "lookups", "trace"}
    assert sum(len(c) for _, c in blocks) >= 30
    assert missing_lines(["a … c", "…", "x"], "a b c\nq\n\nx  \n") == []
    assert missing_lines(["a … c", "x"], "a b c\nq\nx\n") != []      # q cut without …
    assert missing_lines(["x", "a … c"], "a b c\nx\n") != []          # out of order
    assert missing_lines(["a b"], "a b\nc\n") != []                   # the end cut without …
    assert missing_lines(["…", "c"], "a b\nc\n") == []
    assert missing_lines(["a  b"], "a b") == [] and missing_lines(["ab"], "a b") != []


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
            core = harness.make_core(fp.pid, work)  # work/core.<pid>
            try:
                yield fp.pid
            finally:   # cores are big: never left behind in a kept tmp_path
                os.unlink(core)
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
    problems += ["not its output as shown:\n%s" % l for l in missing_lines(cmd.shown, p.stdout)]
    if problems:
        problems.append("--- output of `%s` ---\n%s" % (text, out[-3000:]))
    return cmd, problems


def _run_gdb_lines(gdb_cmds, target, pid, work):
    """The (gdb) lines in one gdb session on the target; the failures, as text."""
    binary = os.path.join(work, "leaky") if target == "leaky" else None
    r = harness.run_gdb(binary, pid=pid,
                        commands=[("README.md:%d" % c.line, c.text) for c in gdb_cmds],
                        timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    failures = []
    for c in gdb_cmds:
        name = "README.md:%d" % c.line
        out = r.block(name)
        problems = (["gdb error: %s" % r.error(name)] if r.error(name) else [])
        problems += ["error line: %s" % l for l in bad_lines(out)]
        problems += ["not its output as shown:\n%s" % l for l in missing_lines(c.shown, out)]
        if problems:
            failures.append("%r:\n  %s\n--- output ---\n%s"
                            % (c, "\n  ".join(problems), out[-3000:]))
    return failures


@pytest.mark.parametrize("target", ["leaky", "lookups", "trace"])
def test_readme_commands_run_as_shown(target, tmp_path, monkeypatch):
    commands = [c for t, cs in readme_blocks() if t == target for c in cs]
    assert commands, "the README shows no command on %s" % target
    work = str(tmp_path)
    monkeypatch.chdir(work)              # `-o FILE` and `go trace trace.out` are relative
    failures = []
    with _target(target, work) as pid:
        gdb_cmds = [c for c in commands if c.kind == "gdb"]
        shell = [c for c in commands if c.kind == "sh"]
        env = _shell_env(work)
        # what the (gdb) lines write (-o FILE, --pprof FILE): a $ line that reads one
        # runs after them; the $ lines attached to PID run after them too (one tracer
        # per process), one at a time; the others (reading the core, the binary, a
        # trace) run beside the gdb session, three at once
        made = {m.group(1) for c in gdb_cmds
                for m in re.finditer(r"(?:-o|--pprof)\s+(\S+)", c.text)}
        later = [c for c in shell if "attach PID" in c.text
                 or any(re.search(r"(?<![\w./])%s\b" % re.escape(f), c.text) for f in made)]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            beside = [pool.submit(_run_shell, c, pid, work, env)
                      for c in shell if c not in later]
            if gdb_cmds:
                failures += _run_gdb_lines(gdb_cmds, target, pid, work)
            results = [f.result() for f in beside]
        results += [_run_shell(c, pid, work, env) for c in later]
        failures += ["%r:\n  %s" % (c, "\n  ".join(p)) for c, p in results if p]
    assert not failures, "\n\n".join(failures)
