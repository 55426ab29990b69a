"""Real gdb on a terminal (a pty), as a person drives it: `set go color auto` colours
where gdb styles its own output, and not after `set style enabled off`, nor into
gdb.execute(..., to_string=True); Tab on a flag lists and inserts it with its dashes
(`--json`, not `json`). One toolchain: none of this depends on the Go version."""
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import pytest

import harness

TC = "go1.26.6" if "go1.26.6" in harness.matrix_names() else harness.matrix_names()[-1]
SGR = re.compile(r"\x1b\[[0-9;]*m")
PROMPT = "(gdb) "


class _Gdb:
    """gdb on a pty; read() returns the raw bytes (escapes kept) up to a marker."""

    def __init__(self, argv, env, cols=200, rows=50):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.buf = ""

    def read_until(self, marker, timeout=90):
        deadline = time.time() + timeout
        while marker not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no {marker!r} in {self.buf[-3000:]!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"EOF before {marker!r}: {self.buf[-3000:]!r}")
                self.buf += data.decode("utf-8", "replace")
        got, self.buf = self.buf.split(marker, 1)
        return got

    def run(self, line):
        """What one command printed, from its echo to the next prompt."""
        os.write(self.master, (line + "\n").encode())
        self.read_until(line.split()[-1])        # the echo of what was typed
        return self.read_until(PROMPT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.master)


@pytest.fixture(scope="module")
def gdb_tty(tmp_path_factory):
    with harness.target_for("goroutines", TC, "core",
                            str(tmp_path_factory.mktemp("tty"))) as t:
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
        env["TERM"] = "xterm"
        g = _Gdb(["gdb", "-nx", "-q", "-iex", "set pagination off", "-iex", "set confirm off",
                  "-ex", "directory " + harness.gdb_script_dir(), "-ex", "source gdb_go_ext",
                  t.binary, t.core], env)
        try:
            g.read_until("gdb_go_ext ")
            g.read_until(PROMPT)
            yield g
        finally:
            g.close()


def test_color_auto_follows_gdb_styling(gdb_tty):
    g = gdb_tty
    assert "is auto" in g.run("show go color")
    styled = g.run("go goroutines --limit 3")
    assert SGR.search(styled), repr(styled[:500])
    assert "goroutines:" in SGR.sub("", styled)
    # to_string: text for a program, no escapes
    captured = g.run('python print(repr(gdb.execute("go goroutines --limit 3", to_string=True)))')
    assert "goroutines:" in captured and "\\x1b" not in captured, captured[:500]
    g.run("set style enabled off")
    plain = g.run("go goroutines --limit 3")
    assert "goroutines:" in plain and not SGR.search(plain), repr(plain[:500])
    g.run("set style enabled on")
    g.run("set go color off")
    assert not SGR.search(g.run("go goroutines --limit 3"))
    g.run("set go color auto")


def test_flag_completion_keeps_the_dashes(gdb_tty):
    g = gdb_tty
    os.write(g.master, b"go goroutines -\t\t")
    listing = SGR.sub("", g.read_until("-without"))
    words = listing.split()
    assert "--json" in words and "-with" in listing and "json" not in words, listing
    os.write(g.master, b"\x15go goroutines --j\t")      # Ctrl-U, then a unique flag
    g.read_until("--json")
    os.write(g.master, b" --limit 1\n")
    out = g.read_until(PROMPT)
    assert '"goroutines": [' in out and '"go_version"' in out, out[-1000:]   # it ran --json
