"""panicparse's `pp` (installed by ./install.sh --test into the cache's bin/), a real
client of goroutine dumps: it reads a dump and prints its buckets of similar
goroutines. buckets(text) runs it and parses what it prints."""
import os
import re
import subprocess

import harness

BUCKET = re.compile(r"^(\d+): (.*)$")
FRAME = re.compile(r"^    (\S+)\s+(\S+:\d+)\s+(\S+?)\((.*)\)$")


def pp_path():
    return os.path.join(harness.cache_dir(), "bin", "pp")


def run(text, work_dir, name, aggressive=False):
    """What pp prints for the dump text (no colour, full paths)."""
    path = os.path.join(work_dir, name)
    with open(path, "w") as f:
        f.write(text)
    argv = [pp_path(), "-no-color", "-full-path"] + (["-aggressive"] if aggressive else []) + [path]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, (argv, p.stderr[-2000:])
    return p.stdout


def buckets(output, with_args=True):
    """[(count, header, ((package, file:line, function, args), ...))] in pp's order (which
    varies between runs among buckets of one size); the argument words left out unless
    with_args."""
    out, cur = [], None
    for line in output.splitlines():
        m = BUCKET.match(line)
        if m:
            cur = [int(m.group(1)), m.group(2), []]
            out.append(cur)
            continue
        f = FRAME.match(line)
        if f and cur is not None:
            cur[2].append(f.groups() if with_args else f.groups()[:3])
    return [(n, head, tuple(frames)) for n, head, frames in out]
