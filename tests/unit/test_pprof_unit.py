"""`go pprof` over the captured images of the goroutines fixture (no gdb, no dlv, no
Go): the profile parses back with the protobuf library, references only what it
holds, counts every goroutine the runtime would (not system, not dead) once, keeps
inlined frames in one location, and carries the fixture's pprof labels. Without the
protobuf library the view says so in one line."""
import gzip
import os
import sys
from collections import Counter

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import GoExtError  # noqa: E402
from gdb_go_ext.runtime import walks  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.runtime.stack import StackFrame, elide_wrappers  # noqa: E402
from gdb_go_ext.views import catalog, registry  # noqa: E402,F401
from gdb_go_ext.views.pprof import is_system, physical_frames  # noqa: E402
from image import ImageTarget, cached_image, images  # noqa: E402

IMAGES, IDS = images("goroutines")
P = pytest.importorskip("gdb_go_ext.views.profile_proto")


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_profile_of_an_image(path, tmp_path):
    img, types, mem = cached_image(path)
    rt = GoRuntime(ImageTarget(img, types, mem))
    ctx = registry.Context(lambda: rt)
    out = tmp_path / "g.pb.gz"
    text = registry.run(ctx, ["pprof", "-o", str(out)])
    assert "wrote a goroutine profile" in text
    prof = P.Profile()
    prof.ParseFromString(gzip.decompress(out.read_bytes()))
    st = prof.string_table
    assert st[0] == ""
    assert [(st[t.type], st[t.unit]) for t in prof.sample_type] == [("goroutine", "count")]
    assert (st[prof.period_type.type], st[prof.period_type.unit], prof.period) == \
        ("goroutine", "count", 1)
    assert prof.duration_nanos == 0
    locs = {l.id: l for l in prof.location}
    funcs = {f.id: f for f in prof.function}
    maps = {m.id for m in prof.mapping}
    assert len(locs) == len(prof.location) and len(funcs) == len(prof.function) and maps
    _, gs = walks.walk(rt, 128)
    counted = [g for g in gs if not is_system(g)]
    assert sum(s.value[0] for s in prof.sample) == len(counted)
    keys = Counter()
    for s in prof.sample:
        assert s.location_id and all(i in locs for i in s.location_id)
        keys[(tuple(s.location_id), tuple((l.key, l.str) for l in s.label))] += 1
    assert max(keys.values()) == 1                     # one sample per stack and label set
    for l in prof.location:
        assert l.line and all(ln.function_id in funcs for ln in l.line)
        assert l.mapping_id in maps
    assert any(len(l.line) > 1 for l in prof.location)    # inlined frames kept together
    labelled = [s for s in prof.sample if s.label]
    assert labelled and {st[l.key] for s in labelled for l in s.label} == {"handler", "shard"}
    assert sum(s.value[0] for s in labelled) == sum(1 for g in counted if g.labels)
    names = {st[f.name] for f in prof.function}
    assert "main.main" in names and "runtime.gopark" in names
    assert not any(is_system(g) for g in counted)


def test_physical_frames_group_inlined_calls():
    a = StackFrame("f.inl", "x.go", 1, 0x100, True)
    b = StackFrame("f", "x.go", 2, 0x100, False)
    c = StackFrame("g", "x.go", 3, 0x200, False)
    d = StackFrame("g", "x.go", 3, 0x200, False)   # recursion: same return address
    assert physical_frames([a, b, c, d]) == [(0x100, [a, b]), (0x200, [c]), (0x200, [d])]


def test_profiles_elide_wrappers_as_the_runtime_does():
    """runtime.Callers (tracebackPCs) leaves a wrapper out unless the frame it called is
    a panic (elideWrapperCalling): a go statement's closure goes, a method value's
    wrapper that panicked (runtime.panicwrap) stays."""
    def fr(name, wrapper=False):
        return StackFrame(name, "x.go", 1, 0x100, False, wrapper=wrapper)
    go_closure = [fr("runtime.gopark"), fr("main.work"), fr("main.main.gowrap1", True)]
    assert [f.function for f in elide_wrappers(go_closure)] == ["runtime.gopark", "main.work"]
    panicked = [fr("panic"), fr("runtime.panicwrap"), fr("main.T.M-fm", True), fr("main.f")]
    assert elide_wrappers(panicked) == panicked
    wrapped_panic = [fr("panic"), fr("main.(*T).M", True), fr("main.f")]
    assert elide_wrappers(wrapped_panic) == wrapped_panic


def test_without_protobuf_one_line(monkeypatch, tmp_path):
    import builtins
    real = builtins.__import__

    def no_protobuf(name, *a, **kw):
        if name.startswith("google") or "profile_proto" in name or \
                (a and a[2] and "profile_proto" in a[2]):
            raise ImportError("No module named 'google'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_protobuf)
    ctx = registry.Context(lambda: pytest.fail("no runtime needed"))
    with pytest.raises(GoExtError) as e:
        registry.run(ctx, ["pprof", "-o", str(tmp_path / "x.pb.gz")])
    assert "protobuf" in str(e.value) and "\n" not in str(e.value)
