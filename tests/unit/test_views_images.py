"""The views of the registry over the captured images (no gdb, no dlv): the same bytes as
the outputs kept in tests/data/golden-goroutines-*.json.gz, which the code before the
view engine (commit 13d66e4, through the bridge's views) wrote for the same images."""
import gzip
import json
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gdb_go_ext.errors import GoExtError  # noqa: E402
from gdb_go_ext.runtime.goruntime import GoRuntime  # noqa: E402
from gdb_go_ext.views import catalog, registry  # noqa: E402,F401
from image import ImageTarget, cached_image, images  # noqa: E402
from truth import same_but_added, wrapper_functions  # noqa: E402

IMAGES, IDS = images("goroutines")


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_views_over_images_equal_the_kept_outputs(path):
    ident = os.path.basename(path)[len("goroutines-"):-len(".json.gz")]
    with gzip.open(os.path.join(HERE, "data", "golden-goroutines-%s.json.gz" % ident), "rt") as f:
        kept = json.load(f)
    img, types, mem = cached_image(path)
    rt = GoRuntime(ImageTarget(img, types, mem))
    ctx = registry.Context(lambda: rt, color=False, width=250)
    assert len(kept) >= 30
    # the frames of wrappers, which the code that wrote the outputs did not print
    out = registry.run(ctx, ["goroutines", "--json", "-t", "64", "-a"])
    wrappers = wrapper_functions(out if isinstance(out, str) else "".join(out))
    for words, want in sorted(kept.items()):   # (each key is the view's words, in JSON)
        try:
            out = registry.run(ctx, json.loads(words))
            got = out if isinstance(out, str) else "".join(out)
        except GoExtError as e:
            got = "error: %s" % e
        # (the image's executable is unpacked to a temporary folder of each run)
        tmp = os.path.dirname(img["executable_path"])
        assert same_but_added(re.sub(r"/tmp/gge-image-[^/]*", tmp, want), got, wrappers), words


@pytest.mark.parametrize("path", IMAGES, ids=IDS)
def test_fast_goroutines_json_is_the_documented_document(path):
    """The goroutines JSON is written fast, line by line from shared pieces
    (goroutines_json_pieces); it must parse to exactly the document goroutine_json and
    goroutines_json build field by field, with and without stacks, labels and groups."""
    from gdb_go_ext.analysis import triage
    from gdb_go_ext.runtime import walks
    from gdb_go_ext.views.goroutines import goroutines_json, goroutines_json_pieces
    img, types, mem = cached_image(path)
    rt = GoRuntime(ImageTarget(img, types, mem))
    for depth in (0, 64):
        walker, gs = walks.walk(rt, depth, include_dead=True)
        assert any(g.labels for g in gs) and any(g.blocked_on for g in gs)
        for groups, kind in ((None, None), (triage.group_by(gs, "userloc"), "userloc")):
            want = goroutines_json(rt.layout.go_version, gs, walker.errors, bool(depth),
                                   walker.clock, groups, kind)
            fast = "".join(goroutines_json_pieces(rt.layout.go_version, gs, walker.errors,
                                                  bool(depth), walker.clock, groups, kind))
            assert json.loads(fast) == json.loads(json.dumps(want)), (depth, kind)
