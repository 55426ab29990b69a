"""Display flags only display (issue 25, section 3): -t DEPTH and --limit N cut what a
view prints, never what it computes; unknown values are one-line errors.

The target is the leakdiff fixture at its first step (tests/fixtures/leakdiff/main.go):
7 goroutines parked in main.leakA, 5 in main.leakB and 3 in main.leakC, all in a chan
receive, so their stacks share their top frames (gopark, chanrecv, chanrecv1) and
differ only below. The truth is what the runtime wrote of itself at that step: its
own goroutine dump (pprof debug=2, OUT/step1.txt) and its counts (OUT/diff.json).

Every view's JSON at -t 1..4 (and --limit N) must equal the full one on everything
but the cut: goroutines (with -with/-group), stacks (with --retained on Go 1.22+),
goroutine ID, xref; map, chan, sched and heap count flags. Live and core, gdb on every
Go version, the bridge on BRIDGE_TOOLCHAINS.
"""
import json
import os
import re
import sys

import pytest

import harness
from test_bridge import open_bridge

sys.path.insert(0, harness.REPO)

LEAKS = ("main.leakA", "main.leakB", "main.leakC")
DEPTHS = (1, 2, 3, 4)


def _dump_stacks(text):
    """{goroutine id: [function, ...]} of the runtime's own debug=2 dump."""
    out = {}
    for block in text.split("\n\n"):
        m = re.match(r"goroutine (\d+) \[", block)
        if not m:
            continue
        lines = block.splitlines()[1:]
        out[int(m.group(1))] = [re.sub(r"\(.*$", "", l) for l in lines
                                if l and not l.startswith("\t") and not l.startswith("created by")]
    return out


def _without(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def _nostack(doc):
    """A goroutines document without its stacks."""
    return dict(doc, goroutines=[_without(g, "stack") for g in doc["goroutines"]])


def _retained_ok(toolchain):
    v = re.match(r"go(\d+)\.(\d+)", harness.toolchain_go_version(toolchain))
    return (int(v.group(1)), int(v.group(2))) >= (1, 22)


def _commands(step1):
    cmds = [("g0", "go goroutines --json"),
            ("gfull", "go goroutines --json -t 0"),
            ("gall", "go goroutines --json -t 1000"),
            ("s0", "go stacks --json -t 0"),
            ("sdef", "go stacks --json"),
            ("grp", "go goroutines -group userloc --json"),
            ("withB", "go goroutines -with userloc main.leakB --json"),
            ("x0", "go xref %s --json" % step1),
            ("map", "go map main.ids --json"),
            ("map0", "go map main.ids --json --limit 0"),
            ("map2", "go map main.ids --json --limit 2"),
            ("mapk", "go map main.ids --json --key A"),
            ("mapk2", "go map main.ids --json --key A --limit 2"),
            ("gmain", "go goroutine 1 --json"),
            ("lim0", "go goroutines --json --limit 0"),
            ("lim3", "go goroutines --json --limit 3 -t 2"),
            ("gtext", "go goroutines -t 2")]
    for n in DEPTHS:
        cmds += [("g%d" % n, "go goroutines --json -t %d" % n),
                 ("s%d" % n, "go stacks --json -t %d" % n),
                 ("grp%d" % n, "go goroutines -group userloc --json -t %d" % n),
                 ("withB%d" % n, "go goroutines -with userloc main.leakB --json -t %d" % n),
                 ("without%d" % n, "go goroutines -without userloc main.leak --json -t %d" % n),
                 ("x%d" % n, "go xref %s --json -t %d" % (step1, n)),
                 ("gmain%d" % n, "go goroutine 1 --json -t %d" % n)]
    return cmds


BAD = [("bad_status", "go goroutines -s wating", "'waiting'"),
       ("bad_pauses", "go gc --pauses -1", "--pauses"),
       ("bad_limit", "go goroutines --limit -1", "--limit"),
       ("bad_depth", "go stacks -t -2", "-t"),
       ("bad_top", "go heap --top -3", "--top"),
       ("bad_kind", "go goroutines -with userlocc x", "userloc"),
       ("bad_maplimit", "go map main.ids --limit -1", "--limit")]


def _check(toolchain, get, truth, dump):
    """get(name) -> the JSON document of that command."""
    # the truth: the runtime's own counts, and each leaked goroutine's first main.* frame
    counts = {f: n[0] for f, n in truth.items() if f in LEAKS}
    user_of = {}
    for gid, funcs in dump.items():
        mains = [f for f in funcs if f.startswith("main.")]
        if mains and mains[0] in LEAKS:
            user_of[gid] = mains[0]
    assert sorted(user_of.values()) == sorted(f for f, n in counts.items() for _ in range(n))

    # goroutines: -t N cuts the stacks and nothing else
    full = get("gall")
    plain = get("g0")
    assert get("gfull") == plain
    byid = {g["id"]: g for g in full["goroutines"]}
    for gid, fn in user_of.items():
        assert byid[gid]["user"]["function"] == fn, byid[gid]
        funcs = [f["function"] for f in byid[gid]["stack"]]
        assert funcs[:3] == ["runtime.gopark", "runtime.chanrecv", "runtime.chanrecv1"], funcs
    assert [_without(g, "stack") for g in full["goroutines"]] == plain["goroutines"]
    for n in DEPTHS:
        doc = get("g%d" % n)
        assert _without(doc, "goroutines") == _without(full, "goroutines"), n
        assert [_without(g, "stack") for g in doc["goroutines"]] == plain["goroutines"], n
        assert [g["stack"] for g in doc["goroutines"]] == \
            [g["stack"][:n] for g in full["goroutines"]], n
        assert _nostack(get("grp%d" % n)) == get("grp"), n
        assert _nostack(get("withB%d" % n)) == get("withB"), n
        without = get("without%d" % n)
        assert not {g["id"] for g in without["goroutines"]} & set(user_of), n
        assert without["summary"]["total"] == full["summary"]["total"] - len(user_of), n
    grp = {g["key"].split(" ")[0]: g["count"] for g in get("grp")["groups"]}
    for fn, n in counts.items():
        assert grp.get(fn) == n, (fn, grp)
    assert sorted(g["id"] for g in get("withB")["goroutines"]) == \
        sorted(i for i, f in user_of.items() if f == "main.leakB")

    # --limit: 0 is all; N keeps the first N and the summary of all
    assert get("lim0") == plain
    lim3 = get("lim3")
    assert lim3["summary"] == plain["summary"]
    assert [g["id"] for g in lim3["goroutines"]] == [g["id"] for g in plain["goroutines"]][:3]
    assert [_without(g, "stack") for g in lim3["goroutines"]] == plain["goroutines"][:3]

    # stacks: buckets from whole stacks, -t cuts each printed stack
    whole = get("s0")
    leak_buckets = {}
    for b in whole["buckets"]:
        hits = [f["function"] for f in b["stack"] if f["function"] in LEAKS]
        if hits:
            assert len(hits) == 1 and hits[0] not in leak_buckets, whole["buckets"]
            leak_buckets[hits[0]] = b["count"]
    assert leak_buckets == counts, (leak_buckets, counts)
    retained = "retained_bytes" in json.dumps(whole)
    for n in DEPTHS + (64,):
        doc = get("s%d" % n if n != 64 else "sdef")
        assert _without(doc, "buckets") == _without(whole, "buckets"), n
        assert [_without(b, "stack") for b in doc["buckets"]] == \
            [_without(b, "stack") for b in whole["buckets"]], n
        assert [b["stack"] for b in doc["buckets"]] == \
            [b["stack"][:n] for b in whole["buckets"]], n
    assert not retained

    # goroutine ID -t N
    gmain = get("gmain")["goroutine"]
    for n in DEPTHS:
        one = get("gmain%d" % n)["goroutine"]
        assert _without(one, "stack") == _without(gmain, "stack"), n
        assert one["stack"] == gmain["stack"][:n], n

    # xref: the verdicts never depend on -t
    x0 = get("x0")
    for n in DEPTHS:
        doc = get("x%d" % n)
        assert _without(doc, "goroutines") == _without(x0, "goroutines"), n
        for a, b in zip(doc["goroutines"], x0["goroutines"]):
            assert (a["id"], a["verdict"]) == (b["id"], b["verdict"]), n
            for side in ("then", "now"):
                if b[side] is not None:
                    assert _without(a[side], "stack") == _without(b[side], "stack"), n
                    assert a[side]["stack"] == b[side]["stack"][:n], n
    assert {g["verdict"] for g in x0["goroutines"] if g["id"] in user_of} == {"same"}

    # map: --limit 0 is all; --limit N cuts the entries, with --key too
    m = get("map")
    assert len(m["entries"]) == 3 and not m["truncated"]
    assert get("map0") == m
    m2 = get("map2")
    assert len(m2["entries"]) == 2 and m2["truncated"]
    mk = get("mapk")
    assert mk["lookup"]["found"] and mk["lookup"]["key"] == "A"
    assert len(mk["lookup"]["value"]) == counts["main.leakA"]
    mk2 = get("mapk2")
    assert mk2["lookup"] == mk["lookup"]
    assert len(mk2["entries"]) == 2 and mk2["truncated"]
    assert _without(mk2, "entries", "truncated") == _without(mk, "entries", "truncated")


def _check_retained(get):
    whole = get("r0")
    assert whole["buckets"] and all("retained_bytes" in b for b in whole["buckets"])
    for n in DEPTHS:
        doc = get("r%d" % n)
        assert [_without(b, "stack") for b in doc["buckets"]] == \
            [_without(b, "stack") for b in whole["buckets"]], n
        assert [b["stack"] for b in doc["buckets"]] == \
            [b["stack"][:n] for b in whole["buckets"]], n


def _second_commands(toolchain, chan):
    """Views whose words come from the first run (chan: the channel main.leakA's
    goroutines wait on), and the count flags of sched and heap."""
    cmds = [("chan", "go chan %s --json" % chan), ("chan0", "go chan %s --json --limit 0" % chan),
            ("chan2", "go chan %s --json --limit 2" % chan),
            ("sched", "go sched --json"), ("sched0", "go sched --json --runq 0")]
    if _retained_ok(toolchain):
        cmds += [("heap", "go heap --json"), ("heap0", "go heap --json --top 0"),
                 ("heap2", "go heap --json --top 2")]
    return cmds


def _check_second(get, names, counts):
    c = get("chan")
    assert c["recvq_len"] == counts["main.leakA"] == len(c["recvq"]), c
    assert get("chan0") == c
    c2 = get("chan2")
    assert c2["recvq"] == c["recvq"][:2] and c2["recvq_len"] == c["recvq_len"]
    assert _without(c2, "recvq") == _without(c, "recvq")
    assert _without(get("sched0"), "now_ns") == _without(get("sched"), "now_ns")   # (live: a clock)
    if "heap" in names:
        h = get("heap")
        assert get("heap0") == h
        h2 = get("heap2")
        assert h2["by_type"] == h["by_type"][:2] and len(h2["by_class"]) == 2
        assert _without(h2, "by_type", "by_class") == _without(h, "by_type", "by_class")


def _leak_chan(doc, user_of, fn):
    """The channel the goroutines of fn wait on, from a goroutines --json document."""
    chans = {g["blocked_on"] for g in doc["goroutines"] if user_of.get(g["id"]) == fn}
    assert len(chans) == 1 and list(chans)[0].startswith("channel 0x"), chans
    return list(chans)[0].split()[1]


def _users(dump):
    return {gid: [f for f in funcs if f.startswith("main.")][0] for gid, funcs in dump.items()
            if [f for f in funcs if f.startswith("main.")][:1] and
            [f for f in funcs if f.startswith("main.")][0] in LEAKS}


# the bridge part runs on these (the oldest, the first with --retained, a recent one):
# what it adds is the same on every version, and CI time is kept
BRIDGE_TOOLCHAINS = ("go1.19", "go1.22.10", "go1.26.6")


def test_display_flags(toolchain, mode, go_target):
    t = go_target("leakdiff", args=("diff",))
    step1 = os.path.join(t.fixture.out_dir, "step1.txt")
    with open(step1) as f:
        dump = _dump_stacks(f.read())
    cmds = _commands(step1)
    if _retained_ok(toolchain):
        cmds += [("r0", "go stacks --retained --json -t 0")] + \
            [("r%d" % n, "go stacks --retained --json -t %d" % n) for n in DEPTHS]
    cmds += [(name, cmd) for name, cmd, _ in BAD] + [("after", "go goroutines --limit 1")]
    r = t.gdb(cmds, timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    for name, _ in cmds:
        if not name.startswith("bad_"):
            assert r.error(name) is None, (name, r.error(name), r.stderr[-2000:])

    def get(name):
        return json.loads(r.block(name))

    _check(toolchain, get, t.truth("diff"), dump)
    if _retained_ok(toolchain):
        _check_retained(get)
    text = r.block("gtext")
    assert "main.leakB" in text and "main.leakA" in text, text
    # unknown values: one line each, and gdb stays usable
    for name, _, word in BAD:
        err = r.error(name)
        assert err and "\n" not in err.strip() and word in err, (name, err, r.block(name))
    assert "(showing 1 of" in r.block("after"), r.block("after")

    counts = {f: n[0] for f, n in t.truth("diff").items() if f in LEAKS}
    chan = _leak_chan(get("g0"), _users(dump), "main.leakA")
    second = _second_commands(toolchain, chan)
    r2 = t.gdb(second, timeout=300)
    for name, _ in second:
        assert r2.error(name) is None, (name, r2.error(name), r2.stderr[-2000:])
    _check_second(lambda name: json.loads(r2.block(name)), [n for n, _ in second], counts)
    if toolchain in BRIDGE_TOOLCHAINS:
        _bridge_part(toolchain, t, step1, dump)


def _bridge_part(toolchain, t, step1, dump):
    """The same through the bridge (the views are the same code: its own Target, dlv's
    memory and its argument path are what it adds)."""
    cmds = _commands(step1)
    with open_bridge(t) as b:
        cache = {}

        def get(name):
            if name not in cache:
                cmd = dict(cmds)[name]
                cache[name] = json.loads(b.view(cmd.split()[1:]))
            return cache[name]

        _check(toolchain, get, t.truth("diff"), dump)
        for name, cmd, word in BAD:
            with pytest.raises(Exception) as e:
                b.view(cmd.split()[1:])
            msg = str(e.value).strip()
            assert "\n" not in msg and word in msg, (name, msg)
        assert "(showing 1 of" in b.view(["goroutines", "--limit", "1"])
        counts = {f: n[0] for f, n in t.truth("diff").items() if f in LEAKS}
        second = _second_commands(toolchain, _leak_chan(get("g0"), _users(dump), "main.leakA"))
        docs = {name: json.loads(b.view(cmd.split()[1:])) for name, cmd in second}
        _check_second(docs.__getitem__, list(docs), counts)
