"""What the eBPF tests share (test_ebpf_mapwatch.py, test_probe_sched.py): a fixture that
waits for a stdin line before its workload, the program's text read through /proc (a
uprobe shows as int3 there), a probe run in a window, and a fixture's PROGRESS rate."""
import subprocess
import sys
import threading
import time


def gdb_go():
    return [sys.executable, "-m", "gdb_go"]


class StdinFixture:
    """A fixture started and waiting (it printed READY); go() sends the line that starts
    its workload, waits for DONE and returns load() (what the fixture wrote)."""

    def __init__(self, argv, load):
        self.load = load
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        line = self.proc.stdout.readline()
        assert line.startswith("READY"), (line, self.proc.stderr.read())

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("DONE"), (line, self.proc.stderr.read())
        return self.load()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def text_bytes(pid, addrs) -> dict:
    """The first byte at each address of the live program (0xCC where a uprobe is)."""
    with open("/proc/%d/mem" % pid, "rb") as mem:
        out = {}
        for a in addrs:
            mem.seek(a)
            out[a] = mem.read(1)[0]
        return out


def wait_probed(pid, addr, what, timeout=60):
    """Until the program's text holds a uprobe's int3 at addr (the probes are in)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text_bytes(pid, [addr])[addr] == 0xCC:
            return
        time.sleep(0.05)
    raise AssertionError("no uprobe appeared on %s (%#x)" % (what, addr))


def probed_in_window(fx, addr, what, run):
    """run() probes with the program running; the fixture's workload starts once a
    uprobe is in at addr and must end inside run()'s window. (fx.go(), run())."""
    got, done = [], []

    def feed():
        wait_probed(fx.pid, addr, what)
        got.append(fx.go())
        done.append(time.monotonic())
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    result = run()
    ended = time.monotonic()
    t.join(60)
    assert got, "the fixture's workload did not run in the window"
    assert done[0] < ended, "the workload outlasted the probe's window (a slow machine?)"
    return got[0], result


def _progress(lines):
    for line in reversed(lines):
        if line.startswith("PROGRESS "):
            return int(line.split()[1]), time.monotonic()
    return None


def progress_rate(fp, seconds):
    """A running fixture's PROGRESS count per second over the next `seconds`."""
    a = _progress(fp.stdout_lines)
    time.sleep(seconds)
    b = _progress(fp.stdout_lines)
    return (b[0] - a[0]) / (b[1] - a[1])
