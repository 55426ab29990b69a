"""Goroutine walks on bad input at scale (issue 18): a core cut short in the middle of
runtime.allgs, in gdb and through the bridge, and Ctrl-C (a real SIGINT) during a walk
of 200,000 goroutines in a real gdb.

The cut core is laid out as the kernel writes one (notes first, then the segments in
address order, no section headers: gdb refuses a gcore cut short, whose notes are at
its end) and cut at the file offset of allgs' middle entry. What must be listed follows
from the file alone: every goroutine whose allgs entry and whole g lie before the cut,
as the full core lists it; their ids are goroutines the runtime itself printed
(runtime.Stack)."""
import json
import os
import re
import struct
import subprocess
import sys

import pytest

import harness
from truth import parse_runtime_stacks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEOMETRY = ("python import json, struct; from gdb_go_ext.gdb import session; "
            "rt = session.runtime(); a = rt.global_addr('runtime.allgs'); "
            "arr, n, _ = struct.unpack('<QQQ', rt.mem.read(a, 24)); "
            "gs = list(struct.unpack('<%dQ' % n, rt.mem.read(arr, 8 * n))); "
            "print(json.dumps({'arr': arr, 'gs': gs, "
            "'gsize': gdb.lookup_type('runtime.g').sizeof}))")


def _phdrs(f):
    f.seek(0)
    h = f.read(64)
    phoff, = struct.unpack_from("<Q", h, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", h, 0x36)
    f.seek(phoff)
    return h, [list(struct.unpack("<IIQQQQQQ", f.read(phentsize)[:56])) for _ in range(phnum)]


def kernel_layout(src, dst):
    """src (a gcore) copied to dst as the kernel lays a core out."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        h, ph = _phdrs(f)
        h = bytearray(h)
        pos = 64 + 56 * len(ph)
        out.seek(pos)
        for p in sorted(ph, key=lambda p: (p[0] != 4, p[3])):   # PT_NOTE first
            f.seek(p[2])
            p[2] = pos
            left = p[5]
            while left:
                chunk = f.read(min(left, 1 << 24))
                assert chunk
                out.write(chunk)
                left -= len(chunk)
            pos += p[5]
        struct.pack_into("<QQ", h, 0x20, 64, 0)                  # e_phoff, e_shoff
        struct.pack_into("<HHHH", h, 0x36, 56, len(ph), 0, 0)    # phentsize/num, sh*
        out.seek(0)
        out.write(h)
        for p in ph:
            out.write(struct.pack("<IIQQQQQQ", *p))


def file_offset(path, addr):
    with open(path, "rb") as f:
        _, ph = _phdrs(f)
    for t, _, off, va, _, fs, _, _ in ph:
        if t == 1 and va <= addr < va + fs:
            return off + addr - va
    return None


def _bridge(binary, core):
    p = subprocess.run([sys.executable, "-m", "delve_bridge", "core", binary, core,
                        "goroutines", "--json"], capture_output=True, text=True, timeout=300,
                       cwd=REPO)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    return json.loads(p.stdout)


@pytest.mark.parametrize("tc", [harness.matrix_names()[0], harness.matrix_names()[-2]])
def test_core_cut_in_allgs_lists_every_goroutine_it_can(tc, tmp_path):
    """(The oldest and the newest but one toolchain: map-form and slice-form labels,
    with and without parentGoid; the walk is the same code on every other.)"""
    with harness.target_for("goroutines", tc, "core", work_dir=str(tmp_path)) as t:
        truth = parse_runtime_stacks(t.truth("stacks.txt"))   # {id: ...}
        r = t.gdb([("geo", GEOMETRY), ("full", "go goroutines --json")])
        assert r.error("geo") is None and r.error("full") is None, r.stdout[-2000:]
        geo, full = json.loads(r.block("geo")), json.loads(r.block("full"))
        whole = os.path.join(str(tmp_path), "whole.core")
        kernel_layout(t.core, whole)
        n = len(geo["gs"])
        g_offs = sorted(file_offset(whole, g) for g in geo["gs"])
        # in the middle of allgs' array, and in the middle of the gs it points at: each
        # cut that leaves some of the goroutines, but not all, is checked
        cuts = {file_offset(whole, geo["arr"] + 8 * (n // 2)), g_offs[n // 2] + 1}
        checked = 0
        for at in sorted(cuts):
            readable = set()
            for i, g in enumerate(geo["gs"]):
                off = file_offset(whole, g)
                if file_offset(whole, geo["arr"] + 8 * i) + 8 <= at and off + geo["gsize"] <= at:
                    readable.add(g)
            want = [(g["id"], g["status"], g["wait_reason"]) for g in full["goroutines"]
                    if int(g["addr"], 16) in readable]
            if not 0 < len(want) < len(full["goroutines"]):
                continue
            cut = os.path.join(str(tmp_path), "cut.core")
            with open(whole, "rb") as src, open(cut, "wb") as dst:
                left = at
                while left:
                    chunk = src.read(min(left, 1 << 24))
                    dst.write(chunk)
                    left -= len(chunk)
            r = harness.run_gdb(t.binary, core=cut, commands=[
                ("json", "go goroutines --json"), ("text", "go goroutines"),
                ("stacks", "go stacks"), ("alive", "python print('alive')")])
            bridge = _bridge(t.binary, cut)
            os.remove(cut)
            check_cut(r, bridge, want, n, len(readable), truth)
            checked += 1
        os.remove(whole)
    assert checked, "no cut left some goroutines and lost others"


def check_cut(r, bridge, want, n, nread, truth):
    assert "Traceback" not in r.stdout + r.stderr
    assert r.block("alive") == "alive"
    got = json.loads(r.block("json"))
    assert [(g["id"], g["status"], g["wait_reason"]) for g in got["goroutines"]] == want
    lines = [e for e in got["errors"] if "could not be read" in e]
    m = re.match(r"(\d+) of (\d+) goroutines in runtime\.allgs could not be read", lines[0]) \
        if len(lines) == 1 else None
    assert m and (int(m.group(1)), int(m.group(2))) == (n - nread, n), (got["errors"], nread)
    text = r.block("text")
    assert text.count("could not be read") == 1 and "\n%d goroutines:" % len(want) in text
    assert r.error("stacks") is None and "buckets of %d goroutines" % len(want) in r.block("stacks")
    # the bridge lists the same goroutines and says the same in one line
    assert [(g["id"], g["status"], g["wait_reason"]) for g in bridge["goroutines"]] == want
    assert [e for e in bridge["errors"] if "could not be read" in e] == lines
    # the user goroutines listed are ones the runtime itself printed, in its states
    for gid, status, reason in want:
        if gid in truth and truth[gid]["state"] != "running":   # (main, writing it)
            assert truth[gid]["state"] in (reason, status), (gid, truth[gid], status, reason)
    assert {gid for gid, _, _ in want} & set(truth)


INTERRUPT = r'''
import gdb, json, os, signal, threading, time
from gdb_go_ext.gdb import session
res = []
for delay in (0.02, 0.05, 0.1, 0.2, 0.4):
    session.runtime().forget_state()
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    state = "done"
    try:
        timer.start()
        try:
            gdb.execute("go goroutines --limit 2", to_string=True)
        except gdb.error as e:
            state = str(e)
        timer.join()
        time.sleep(0.2)
    except KeyboardInterrupt:
        pass   # the signal came after the command: nothing to see
    # the goroutines of each walk kept (a command may be interrupted after its walk is
    # complete, while it formats: that whole walk may be kept, never a part of one)
    res.append([delay, state, [len(gs) for _w, gs in session.runtime().walks.values()]])
print("ATTEMPTS " + json.dumps(res))
out = gdb.execute("go goroutines --limit 2", to_string=True)
print("AFTER " + json.dumps([out, len(session.runtime().walks)]))
'''


@pytest.mark.parametrize("tc", [harness.matrix_names()[-1]])
def test_interrupt_during_a_big_walk_leaves_gdb_usable_and_nothing_kept(tc, tmp_path):
    """A real SIGINT to a real gdb during walks of 200,000 goroutines: each interrupted
    command is one line and keeps no part of a walk (one interrupted while it formats
    may keep its whole walk), and the next command walks in full."""
    env = harness.go_env(tc)
    binary = os.path.join(str(tmp_path), "leaker")
    subprocess.run([harness.toolchain(tc)["go"], "build", "-o", binary, "."], env=env,
                   cwd=os.path.join(REPO, "bench", "leaker"), check=True, timeout=600,
                   capture_output=True)
    script = os.path.join(str(tmp_path), "interrupt.py")
    with open(script, "w") as f:
        f.write(INTERRUPT)
    proc = subprocess.Popen([binary, "200000"], stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline().startswith("READY")   # (it prints nothing before)
        r = harness.run_gdb(binary, pid=proc.pid, commands=[("run", "source " + script)],
                            timeout=600)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout[-3000:]
    attempts = json.loads(next(line[9:] for line in r.stdout.splitlines()
                               if line.startswith("ATTEMPTS ")))
    after, kept = json.loads(next(line[6:] for line in r.stdout.splitlines()
                                  if line.startswith("AFTER ")))
    stopped = [a for a in attempts if a[1] != "done"]
    assert stopped, attempts   # at least one SIGINT landed during a command
    assert any(not held for _d, _s, held in stopped), attempts   # one during its walk
    for _delay, state, held in stopped:
        assert state == "go goroutines: interrupted", attempts
        assert all(n >= 200000 for n in held), attempts   # no partial walk kept
    assert "200004 goroutines" in after or "200005 goroutines" in after or \
        any(("%d goroutines:" % n) in after for n in range(200000, 200010)), after
    assert kept == 1
