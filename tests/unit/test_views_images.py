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
from truth import same_but_added  # noqa: E402

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
    for words, want in sorted(kept.items()):   # (each key is the view's words, in JSON)
        try:
            out = registry.run(ctx, json.loads(words))
            got = out if isinstance(out, str) else "".join(out)
        except GoExtError as e:
            got = "error: %s" % e
        # (the image's executable is unpacked to a temporary folder of each run)
        tmp = os.path.dirname(img["executable_path"])
        assert same_but_added(re.sub(r"/tmp/gge-image-[^/]*", tmp, want), got), words
