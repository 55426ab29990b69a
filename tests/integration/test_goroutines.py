"""Goroutine views against what the Go runtime itself said (runtime.Stack),
on every toolchain of the matrix, live and on a core."""
import json
import os
import re

import pytest

import harness

from truth import level1_stack, parse_runtime_stacks  # noqa: F401  (the bridge tests import it from here)


def our_goroutines(t):
    r = t.gdb([("list", "go goroutines --json -t 200")])
    assert r.error("list") is None, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.block("list")), r


def runtime_links_sema_sudog(toolchain):
    """Whether this runtime points g.waiting at a semaphore waiter's sudog (Go 1.26 on), so
    that a goroutine blocked in sync.Mutex.Lock can say which semaphore: from its sema.go."""
    goroot = harness.toolchain(toolchain)["goroot"]
    with open(os.path.join(goroot, "src", "runtime", "sema.go")) as f:
        return "s.g.waiting = s" in f.read()


def check_goroutines(data, truth, meta, toolchain):
    """Our JSON against runtime.Stack and the fixture's own records, goroutine by goroutine
    (shared with the bridge tests)."""
    assert data["go_version"] == meta["version"]
    ours = {g["id"]: g for g in data["goroutines"]}
    main_id = int(meta["main_goid"])
    checked = 0
    for gid, want in truth.items():
        if gid == main_id or want["state"] in ("running", "runnable"):
            continue
        assert gid in ours, f"goroutine {gid} missing"
        g = ours[gid]
        assert g["error"] is None, g
        state = g["wait_reason"] if g["status"] == "waiting" else g["status"]
        assert state == want["state"], (gid, g, want)
        mine = [(f["function"], f["line"]) for f in level1_stack(g["stack"])
                if f["function"].startswith("main.")]
        theirs = [f for f in want["frames"] if f[0].startswith("main.")]
        assert mine == theirs, (gid, mine, theirs)
        if want["created_by"]:
            assert (g["created_by"]["function"], g["created_by"]["line"]) == want["created_by"], gid
        if want["parent"] is not None:
            assert g["parent_id"] == want["parent"], gid
        assert g["locked_to_thread"] == want["locked"], gid
        assert g["labels"] == meta["labels"].get(str(gid), {}), gid
        if want["state"] == "syscall":  # on an OS thread: its LWP and M are known
            assert g["thread"] and g["m"] is not None, g
        checked += 1
    assert checked >= 29  # every goroutine the fixture parked
    # what they are blocked on: the channels and mutex the fixture printed with %p
    # (main.recvInline is inlined into handle: the first user frame)
    ch = meta["channels"]
    want_blocked = {"main.recvInline": {ch["recv"]}, "main.sender": {ch["send"]},
                    "main.selector": {ch["selA"], ch["selB"]}}
    mutex = int(meta["mutex"], 16)
    sema_linked = runtime_links_sema_sudog(toolchain)
    seen = dict.fromkeys(list(want_blocked) + ["main.locker"], 0)
    for g in data["goroutines"]:
        user = (g["user"] or {}).get("function")
        if user in want_blocked:
            kind, _, addrs = (g["blocked_on"] or "").partition(" ")
            assert kind == "channel" and set(addrs.split(", ")) == want_blocked[user], (user, g)
            seen[user] += 1
        elif user == "main.locker":
            if sema_linked:
                kind, _, addr = (g["blocked_on"] or "").partition(" ")
                assert kind == "semaphore" and mutex <= int(addr, 16) < mutex + 8, g  # &mu.sema
            else:  # nothing recorded, so nothing said
                assert g["blocked_on"] is None, g
            seen[user] += 1
    groups = meta["groups"]
    assert seen == {"main.recvInline": groups["handle"], "main.sender": groups["send"],
                    "main.selector": groups["select"], "main.locker": groups["mutex"]}
    # every label assignment and locked thread the fixture made is seen
    for gid, labels in meta["labels"].items():
        assert ours[int(gid)]["labels"] == labels
    for gid in meta["locked"]:
        assert ours[int(gid)]["locked_to_thread"]


def test_goroutines_match_runtime_stack(toolchain, mode, go_target):
    t = go_target("goroutines")
    truth = parse_runtime_stacks(t.truth("stacks.txt"))
    meta = t.truth("meta")
    data, r = our_goroutines(t)
    assert "Traceback" not in r.stdout + r.stderr
    check_goroutines(data, truth, meta, toolchain)


def test_stacks_buckets_have_the_fixture_group_sizes(toolchain, mode, go_target):
    t = go_target("goroutines")
    groups = t.truth("meta")["groups"]
    r = t.gdb([("stacks", "go stacks --json"), ("similar", "go stacks --json --similar --min 3")])
    assert r.error("stacks") is None, r.stdout[-3000:]
    buckets = json.loads(r.block("stacks"))["buckets"]

    def count_with(func):
        hits = [b for b in buckets if any(f["function"] == func for f in b["stack"])]
        assert len(hits) == 1, (func, [(b["count"], b["wait_reason"]) for b in hits])
        return hits[0]["count"]

    assert count_with("main.(*Server).handle") == groups["handle"]
    assert count_with("main.sender") == groups["send"]
    assert count_with("main.selector") == groups["select"]
    assert count_with("main.locker") == groups["mutex"]
    assert count_with("main.sleeper") == groups["sleep"]
    assert count_with("main.labelled") == groups["labelled"]
    deep = [b for b in buckets if any(f["function"] == "main.deep" for f in b["stack"])]
    assert sum(b["count"] for b in deep) == groups["deep"]
    # sorted by size among buckets with user code
    user = [b["count"] for b in buckets if b["user_code"]]
    assert user == sorted(user, reverse=True)
    # the handle bucket says which channel they all wait on
    handle = next(b for b in buckets if any(f["function"] == "main.(*Server).handle" for f in b["stack"]))
    assert handle["blocked_on"] and handle["blocked_on"][0]["count"] == groups["handle"]
    similar = json.loads(r.block("similar"))["buckets"]
    assert all(b["count"] >= 3 for b in similar)


def test_filters_and_groups(toolchain, mode, go_target):
    t = go_target("goroutines")
    groups = t.truth("meta")["groups"]
    r = t.gdb([
        ("with", "go goroutines --json -with userloc main.sender"),
        ("label", "go goroutines --json -label handler=checkout"),
        ("status", "go goroutines --json -s syscall"),
        ("group", "go goroutines --json -group waitreason"),
        ("text", "go goroutines -l"),
        ("limit", "go goroutines --limit 3"),
    ])
    assert len(json.loads(r.block("with"))["goroutines"]) == groups["send"]
    assert len(json.loads(r.block("label"))["goroutines"]) == groups["labelled"]
    assert [g["status"] for g in json.loads(r.block("status"))["goroutines"]] == ["syscall"]
    grouped = {g["key"]: g["count"] for g in json.loads(r.block("group"))["groups"]}
    assert grouped["chan send"] == groups["send"]
    text = r.block("text")
    assert "handler=checkout" in text and "goroutines:" in text
    assert "showing 3 of" in r.block("limit")


def test_goroutine_backtrace(toolchain, mode, go_target):
    """`go goroutine ID` gives the same main.* frames as runtime.Stack, on cores too."""
    t = go_target("goroutines")
    truth = parse_runtime_stacks(t.truth("stacks.txt"))
    gid = next(g for g, v in truth.items() if any(f[0] == "main.deep" for f in v["frames"]))
    r = t.gdb([("bt", f"go goroutine {gid}"), ("bt2", f"go goroutine {gid} bt")])
    assert r.error("bt") is None, r.stdout[-2000:]
    text = r.block("bt")
    assert text == r.block("bt2")
    names = re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) ", text, re.M)
    assert [n for n in names if n.startswith("main.")] == \
        [f[0] for f in truth[gid]["frames"] if f[0].startswith("main.")]
    assert "created by" in text


def test_goroutine_command_in_context_live_only(toolchain, mode, go_target):
    t = go_target("goroutines")
    truth = parse_runtime_stacks(t.truth("stacks.txt"))
    gid = next(g for g, v in truth.items() if any(f[0] == "main.sleeper" for f in v["frames"]))
    r = t.gdb([("before", "p/x $pc"), ("info", f"go goroutine {gid} info frame"), ("after", "p/x $pc")])
    if mode == "live":
        assert r.error("info") is None, r.stdout[-2000:]
        pc = lambda name: r.block(name).split("=", 1)[1].strip()
        assert pc("before") == pc("after")  # registers restored
        assert "Stack level 0" in r.block("info")
    else:
        assert "needs a live process" in (r.error("info") or "")


def test_bad_inputs_give_one_line(tmp_path):
    r = harness.run_gdb("/bin/true", commands=["go version", "go goroutines", "go stacks"])
    for name in ("go version", "go goroutines", "go stacks"):
        err = r.error(name)
        assert err and "not a Go program" in err, (name, r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    r = harness.run_gdb(None, commands=["go goroutines"])
    assert r.error("go goroutines"), r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_output_file_and_bad_paths(toolchain, tmp_path):
    binary = harness.build("goroutines", toolchain)
    with harness.run_fixture(binary) as fp:
        out = tmp_path / "g.json"
        r = harness.run_gdb(binary, pid=fp.pid, commands=[
            ("file", f"go goroutines --json -o {out}"),
            ("bad", "go goroutines -o /nonexistent-dir/x.txt"),
            ("still", "go stacks --min 3")])
    assert r.error("file") is None and json.loads(out.read_text())["goroutines"]
    assert "cannot write /nonexistent-dir/x.txt" in r.error("bad")
    assert r.error("still") is None
    assert "Traceback" not in r.stdout + r.stderr


def test_unknown_flag_gives_usage(toolchain):
    binary = harness.build("goroutines", toolchain)
    r = harness.run_gdb(binary, commands=[("bad", "go goroutines --bogus"), ("kind", "go goroutines -with nope x"),
                                          ("still", "go version")])
    assert "usage: go goroutines" in r.error("bad")
    assert "[--limit N]" in r.error("bad")  # the whole usage, on the error's one line
    assert "unknown kind" in r.error("kind")
    assert r.error("still") is None  # gdb stays usable
    assert "Traceback" not in r.stdout + r.stderr


def test_walk_is_reused_on_one_stop_and_forgotten_when_memory_changes(toolchain):
    """Commands on one stop share a walk; a write to target memory (or the target
    running) makes the next command walk again and see the change."""
    binary = harness.build("goroutines", toolchain)
    with harness.run_fixture(binary) as fp:
        r = harness.run_gdb(binary, pid=fp.pid, commands=[("v", "go version --json"),
                                                         ("first", "go goroutines --json")])
        reasons = json.loads(r.block("v"))["wait_reason_strings"]
        g = next(x for x in json.loads(r.block("first"))["goroutines"]
                 if x["user"] and x["user"]["function"] == "main.sender")
        assert g["wait_reason"] == "chan send"
        new = reasons.index("sleep")
        poke = ("python t = gdb.lookup_type('runtime.g').strip_typedefs(); "
                "off = [f.bitpos // 8 for f in t.fields() if f.name == 'waitreason'][0]; "
                "gdb.execute('set language c'); "
                f"gdb.execute('set var *(unsigned char *)%d = {new}' % ({int(g['addr'], 16)} + off))")
        r = harness.run_gdb(binary, pid=fp.pid, commands=[
            ("before", "go goroutines --json"), ("again", "go goroutines --json"),
            ("poke", poke), ("after", "go goroutines --json")])
    assert r.error("poke") is None, r.stdout[-2000:]
    state = lambda name: {x["id"]: x["wait_reason"] for x in json.loads(r.block(name))["goroutines"]}
    assert state("before") == state("again")
    assert state("before")[g["id"]] == "chan send"
    assert state("after")[g["id"]] == "sleep"


def test_truncated_core_and_bare_executable_get_a_sentence(toolchain, tmp_path):
    """gdb refuses a truncated core (its section headers are at the end); what is left is
    the executable alone, and the goroutine and map views say so in one sentence."""
    binary = harness.build("goroutines", toolchain)
    with harness.run_fixture(binary) as fp:
        core = harness.make_core(fp.pid, str(tmp_path))
    try:
        with open(core, "r+b") as f:
            f.truncate(24 << 20)
        r = harness.run_gdb(binary, core=core, commands=[
            ("list", "go goroutines"), ("stacks", "go stacks"), ("one", "go goroutine 1"),
            ("map", "go map main.labelsOf"), ("version", "go version"),
            ("still", "python print('alive')")])
    finally:
        os.remove(core)
    assert "Traceback" not in r.stdout + r.stderr
    assert r.block("still") == "alive"
    for name in ("list", "stacks", "one", "map"):
        assert "no process or core file is loaded" in (r.error(name) or ""), (name, r.stdout[-1500:])
    assert r.error("version") is None  # the file alone still tells its Go version


@pytest.mark.parametrize("tc", [harness.matrix_names()[0], harness.matrix_names()[-1]])
def test_position_independent_executable(tc, tmp_path):
    """A PIE is loaded at a bias: symbols, PCs and the pclntab must all agree (live and core)."""
    import subprocess
    binary = str(tmp_path / "goroutines-pie")
    subprocess.run([harness.toolchain(tc)["go"], "build", "-buildmode=pie", "-o", binary, "."],
                   cwd=os.path.join(harness.FIXTURES_DIR, "goroutines"), env=harness.go_env(tc),
                   check=True, capture_output=True, timeout=600)
    with harness.run_fixture(binary) as fp:
        truth = parse_runtime_stacks(fp.truth("stacks.txt"))
        meta = fp.truth("meta")
        live = harness.run_gdb(binary, pid=fp.pid, commands=[("g", "go goroutines --json -t 200")])
        core = harness.make_core(fp.pid, str(tmp_path))
    try:
        dead = harness.run_gdb(binary, core=core, commands=[("g", "go goroutines --json -t 200")])
    finally:
        os.remove(core)
    for r in (live, dead):
        assert r.error("g") is None, r.stdout[-2000:]
        check_goroutines(json.loads(r.block("g")), truth, meta, tc)
