"""Display flags only display (issue 25, section 3), without gdb: over the captured
goroutine images, every view's JSON at -t 1..4 and at --limit N equals the full one
on everything but the cut; count flags take 0 as all and reject negatives in every
view; an unknown -s STATUS is one line naming the closest known one."""
import argparse
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import UsageError  # noqa: E402
from gdb_go_ext.analysis import triage  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.views import catalog, registry  # noqa: E402,F401
from image import ImageTarget, cached_image, images  # noqa: E402

IMAGES, IDS = images("goroutines")


def _without(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def _run(ctx, *words):
    out = registry.run(ctx, list(words))
    return json.loads(out if isinstance(out, str) else "".join(out))


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_depth_and_limit_cut_only_what_is_printed(path):
    img, types, mem = cached_image(path)
    rt = GoRuntime(ImageTarget(img, types, mem))
    ctx = registry.Context(lambda: rt, color=False, width=250)
    plain = _run(ctx, "goroutines", "--json", "-a")
    full = _run(ctx, "goroutines", "--json", "-a", "-t", "100000")
    assert [_without(g, "stack") for g in full["goroutines"]] == plain["goroutines"]
    # the image has goroutines whose user frame lies below frame 2: -t 2 must not lose it
    deep = [g for g in full["goroutines"] if g["user"] and
            [f["function"] for f in g["stack"]].index(g["user"]["function"]) >= 2]
    assert deep
    stacks = _run(ctx, "stacks", "--json", "-t", "0")
    for n in (1, 2, 3, 4):
        doc = _run(ctx, "goroutines", "--json", "-a", "-t", str(n))
        assert [_without(g, "stack") for g in doc["goroutines"]] == plain["goroutines"], n
        assert [g["stack"] for g in doc["goroutines"]] == \
            [g["stack"][:n] for g in full["goroutines"]], n
        for kind in ("userloc", "curloc"):
            a = _run(ctx, "goroutines", "--json", "-group", kind, "-t", str(n))
            b = _run(ctx, "goroutines", "--json", "-group", kind)
            assert a["groups"] == b["groups"] and a["summary"] == b["summary"], (n, kind)
        user = deep[0]["user"]["function"]
        a = _run(ctx, "goroutines", "--json", "-with", "userloc", user, "-t", str(n))
        b = _run(ctx, "goroutines", "--json", "-with", "userloc", user)
        assert [g["id"] for g in a["goroutines"]] == [g["id"] for g in b["goroutines"]]
        s = _run(ctx, "stacks", "--json", "-t", str(n))
        assert [_without(b, "stack") for b in s["buckets"]] == \
            [_without(b, "stack") for b in stacks["buckets"]], n
        assert [b["stack"] for b in s["buckets"]] == \
            [b["stack"][:n] for b in stacks["buckets"]], n
    total = len(plain["goroutines"])
    for n in (0, 1, 3, total + 5):
        doc = _run(ctx, "goroutines", "--json", "-a", "--limit", str(n))
        assert doc["summary"] == plain["summary"], n
        assert doc["goroutines"] == plain["goroutines"][:n or None], n


def test_count_flags_take_zero_as_all_and_reject_negatives():
    assert registry.count("0") == 0 and registry.count("12") == 12
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            registry.count(bad)
    # every count flag of every view: -1 is one usage line, before any target is asked for
    seen = []
    ctx = registry.Context(lambda: pytest.fail("no target needed"))
    for name, view in registry.VIEWS.items():
        p = registry.parser(view, name)
        positional = [a for a in p._actions if not a.option_strings and a.dest != "help"]
        for action in p._actions:
            if action.type is not registry.count:
                continue
            words = [name] + ["1"] * len(positional) + [action.option_strings[0], "-1"]
            with pytest.raises(UsageError) as e:
                registry.run(ctx, words)
            msg = str(e.value)
            assert "\n" not in msg and action.option_strings[0] in msg and "0: all" in msg, msg
            seen.append((name, action.option_strings[0]))
    for want in [("goroutines", "--limit"), ("goroutines", "-t"), ("stacks", "-t"),
                 ("map", "--limit"), ("chan", "--limit"), ("gc", "--pauses"), ("heap", "--top"),
                 ("sched", "--runq"), ("goroutine", "-t"), ("xref", "-t")]:
        assert want in seen, (want, seen)


def test_unknown_status_is_one_line_with_the_closest():
    names = ["idle", "runnable", "running", "syscall", "waiting", "moribund_unused", "dead"]
    reasons = ["", "GC assist marking", "chan receive", "chan send", "select", "sleep"]
    for ok in ("waiting", "Waiting", "chan receive", "CHAN RECEIVE", "runnable", "sleep", None, ""):
        triage.check_status(ok, names, reasons)
    with pytest.raises(UsageError) as e:
        triage.check_status("wating", names, reasons)
    assert "'waiting'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UsageError) as e:
        triage.check_status("chan recieve", names, reasons)
    assert "'chan receive'" in str(e.value)
    with pytest.raises(UsageError) as e:
        triage.check_status("zzzz", names, reasons)
    assert "wait reason" in str(e.value)
    triage.check_status("anything", names, [])   # no table in the binary: cannot tell
    triage.check_wait_substring("-with", "chan", reasons)
    with pytest.raises(UsageError) as e:
        triage.check_wait_substring("-with", "chan recieve", reasons)
    assert "'chan receive'" in str(e.value) and "-with waitreason" in str(e.value)
    triage.check_wait_substring("-without", "whatever", [])


@pytest.mark.parametrize("path", IMAGES[:1], ids=IDS[:1])
def test_unknown_status_from_the_binarys_tables(path):
    img, types, mem = cached_image(path)
    rt = GoRuntime(ImageTarget(img, types, mem))
    ctx = registry.Context(lambda: rt, color=False, width=250)
    with pytest.raises(UsageError) as e:
        registry.run(ctx, ["goroutines", "-s", "wating"])
    assert "'waiting'" in str(e.value)
    out = registry.run(ctx, ["goroutines", "-s", "chan receive", "--json"])
    doc = json.loads(out if isinstance(out, str) else "".join(out))
    assert doc["goroutines"] and all(g["wait_reason"] == "chan receive" for g in doc["goroutines"])
