"""The columnar walk (runtime/gtable.py) against the row-by-row walk (rowwalk.py, the
oracle kept in tests) on the captured images: the same goroutines field by field (the
walk itself is held against runtime.Stack in tests/unit/test_goroutines_unit.py), find
equal to the oracle's row, and every triage function and view over the columns equal
to the same done goroutine by goroutine over the oracle's rows."""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "unit"))

from gdb_go_ext.analysis import triage  # noqa: E402
from gdb_go_ext.runtime import gtable  # noqa: E402
from gdb_go_ext.runtime.goroutines import GoroutineWalker  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.views import goroutines as gv  # noqa: E402
from image import ImageTarget, cached_image, images  # noqa: E402
import rowwalk  # noqa: E402

IMAGES, IDS = images("goroutines")


def _rt(path):
    img, types, mem = cached_image(path)
    return GoRuntime(ImageTarget(img, types, mem))


def _row(g):
    d = gv.goroutine_json(g, True)
    d["since"] = g.wait_since_ns
    d["scan"] = g.scan
    d["pc"], d["sp"], d["bp"] = g.pc, g.sp, g.bp
    return d


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
@pytest.mark.parametrize("depth", [0, 64])
@pytest.mark.parametrize("dead", [False, True])
def test_columns_equal_the_row_by_row_walk(path, depth, dead):
    rt = _rt(path)
    table = GoroutineWalker(rt).walk(with_stack=depth, include_dead=dead)
    assert isinstance(table, gtable.GoroutineTable)
    rows = rowwalk.RowWalker(rt).rows(depth, dead, True, True)
    assert [_row(g) for g in table] == [_row(g) for g in rows]
    # a table at another depth from the same g fields equals a fresh walk at it
    other = 64 - depth
    again = table.base.tables.get(other) or gtable.settle(GoroutineWalker(rt), table.base, other)
    fresh = rowwalk.RowWalker(rt).rows(other, dead, True, True)
    assert [_row(g) for g in again] == [_row(g) for g in fresh]


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_find_equals_the_row_by_row_walk(path):
    """find settles one row of a columnar read of every g: the oracle's goroutine, with
    its whole stack, labels and blocked-on, for goroutines of every status."""
    rt = _rt(path)
    rows = rowwalk.RowWalker(rt).rows(1, True, True, True)
    picked, seen = [], set()
    for g in rows:   # the first of each status and wait reason, and the last
        key = (g.status, g.wait_reason)
        if g.id >= 0 and (key not in seen or g is rows[-1]):
            seen.add(key)
            picked.append(g)
    walker = GoroutineWalker(rt)
    for g in picked:
        assert _row(walker.find(g.id)) == _row(g), g.id
    assert walker.find(10 ** 9) is None


def _same_buckets(a, b):
    assert [(x.status, x.wait_reason, x.frames, x.count, x.ids(8), x.wait_range(),
             x.created_by(), x.label_summary(), x.blocked_on(), x.has_user_code) for x in a] == \
        [(x.status, x.wait_reason, x.frames, x.count, x.ids(8), x.wait_range(),
          x.created_by(), x.label_summary(), x.blocked_on(), x.has_user_code) for x in b]


FILTERS = [dict(status="waiting"), dict(status="chan receive"), dict(status="runnable"),
           dict(with_=[("userloc", "main.")]), dict(without=[("waitreason", "chan")]),
           dict(with_=[("label", "handler")]), dict(labels=["shard"]),
           dict(labels=["handler=checkout"], without=[("curloc", "gopark")]),
           dict(with_=[("goloc", "main"), ("startloc", "main")], status="waiting")]


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_triage_and_views_over_columns_equal_over_rows(path):
    rt = _rt(path)
    table = GoroutineWalker(rt).walk(with_stack=64, include_dead=False)
    rows = rowwalk.RowWalker(rt).rows(64, False, True, True)
    assert triage.summary(table) == rowwalk.summary(rows)
    for f in FILTERS:
        t2 = triage.apply_filters(table, **f)
        r2 = rowwalk.apply_filters(rows, **f)
        assert [g.id for g in t2] == [g.id for g in r2], f
        assert triage.summary(t2) == rowwalk.summary(r2), f
    for kind in triage.GROUP_KINDS:
        a, b = triage.group_by(table, kind), rowwalk.group_by(rows, kind)
        assert [(g.key, g.count, g.ids()) for g in a] == [(g.key, g.count, g.ids()) for g in b]
    for similar in (False, True):
        _same_buckets(triage.bucket(table, similar), rowwalk.bucket(rows, similar))
    for labels, depth, color in ((False, 0, False), (True, 0, True), (False, 5, False),
                                 (True, 64, True)):
        assert "".join(gv.table_pieces(table, labels, depth, color, 120)) == \
            rowwalk.table_text(rows, labels, depth, color, 120)
        assert "".join(gv.table_pieces(table[:3], labels, depth, color, 80)) == \
            rowwalk.table_text(rows[:3], labels, depth, color, 80)
        assert "".join(gv.table_pieces(table[:0], labels, depth, color, 80)) == \
            rowwalk.table_text([], labels, depth, color, 80)
    for with_stack in (False, True):
        groups = triage.group_by(table, "userloc")
        got = json.loads("".join(gv.goroutines_json_pieces("go", table, ["e"], with_stack, "c",
                                                           groups, "userloc")))
        want = {"go_version": "go", "goroutines": [gv.goroutine_json(g, with_stack) for g in rows],
                "summary": rowwalk.summary(rows), "wait_clock": "c", "errors": ["e"],
                "groups": [{"kind": "userloc", "key": g.key, "count": g.count, "ids": g.ids()}
                           for g in rowwalk.group_by(rows, "userloc")]}
        assert got == want


def test_factorize_numbers_by_first_row_and_survives_collisions(monkeypatch):
    import numpy as np
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 500))
        cols = [rng.integers(0, 3, n).astype(np.uint64), rng.integers(0, 4, n).astype(np.uint32)]
        keys = list(zip(*[c.tolist() for c in cols]))
        seen: dict = {}
        want = [seen.setdefault(k, len(seen)) for k in keys]
        for mix in (gtable._MIX, np.uint64(0)):   # 0: every row collides
            monkeypatch.setattr(gtable, "_MIX", mix)
            codes, first, members = gtable.factorize(cols, members=True)
            assert codes.tolist() == want
            assert first.tolist() == [keys.index(k) for k in seen]
            assert [m.tolist() for m in members] == \
                [[i for i, c in enumerate(want) if c == j] for j in range(len(seen))]


def test_factorize_many_codes_keeps_row_order():
    """More codes than a uint16 holds (the members' sort is then not a radix sort):
    codes by first row, each code's rows in row order."""
    import numpy as np
    rng = np.random.default_rng(11)
    n = 150_000
    col = rng.integers(0, 80_000, n).astype(np.uint64)
    codes, first, members = gtable.factorize([col], members=True)
    seen: dict = {}
    want = [seen.setdefault(v, len(seen)) for v in col.tolist()]
    assert len(seen) > 1 << 16
    assert codes.tolist() == want
    for j in (0, 1, len(seen) // 2, len(seen) - 1):
        assert int(first[j]) == want.index(j)
        m = members[j].tolist()
        assert m == sorted(m) and all(want[i] == j for i in m)
        assert len(m) == want.count(j)
