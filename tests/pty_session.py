"""A program on a pseudo-terminal, driven as a person would (test_gdb_terminal.py,
test_bridge_repl.py): what it printed, read until a marker or a pattern."""
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

# escape sequences (SGR, cursor, OSC) and carriage returns: what `expect` ignores
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class PtySession:
    def __init__(self, argv, env, cols=200, rows=50, cwd=None):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     cwd=cwd, start_new_session=True, close_fds=True)
        os.close(slave)
        self.buf = ""
        self.pos = 0

    def _read_while(self, missing, what, timeout):
        """Read output until missing() is false; fail naming what after timeout or EOF."""
        deadline = time.time() + timeout
        while missing():
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no {what!r} in {self.buf[self.pos:][-3000:]!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"EOF before {what!r}: {self.buf[self.pos:][-3000:]!r}")
                self.buf += data.decode("utf-8", "replace")

    def read_until(self, marker, timeout=90):
        """The raw output (escapes kept) up to marker, which is consumed."""
        self._read_while(lambda: marker not in self.buf[self.pos:], marker, timeout)
        at = self.buf.index(marker, self.pos)
        got, self.pos = self.buf[self.pos:at], at + len(marker)
        return got

    def expect(self, pattern, timeout=60):
        """The output without escapes and \\r, from what earlier calls consumed to the end
        of pattern's first match."""
        rx = re.compile(pattern)
        found = []

        def missing():
            clean = ANSI.sub("", self.buf[self.pos:])
            m = rx.search(clean)
            if m:
                found.append(clean[:m.end()])
                self.buf, self.pos = clean[m.end():], 0
            return not m
        self._read_while(missing, pattern, timeout)
        return found[0]

    def rest(self):
        """What was printed after everything consumed so far, without escapes."""
        return ANSI.sub("", self.buf[self.pos:])

    def drain(self):
        """Everything left to read once the program has exited."""
        try:
            while True:
                data = os.read(self.master, 65536)
                if not data:
                    break
                self.buf += data.decode("utf-8", "replace")
        except OSError:
            pass

    def send(self, text):
        os.write(self.master, text.encode())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.master)
