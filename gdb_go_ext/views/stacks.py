"""`stacks`: goroutines bucketed by identical stack and wait reason, for leak triage."""
from __future__ import annotations

from ..analysis import triage
from ..errors import UsageError
from .console import json_text
from .goroutines import add_stacks_args, stacks_json, stacks_text
from .registry import View, register


def _run(ctx, args):
    if args.depth <= 0:
        raise UsageError("-t takes a positive number of frames")
    rt = ctx.runtime()
    walker, gs = ctx.walk(rt, depth=args.depth)
    buckets = [b for b in triage.bucket(gs, args.similar) if b.count >= args.min]
    if args.json:
        return json_text(stacks_json(rt.layout.go_version, buckets, len(gs), walker.errors))
    text = stacks_text(buckets, ctx.color)
    text += f"{len(buckets)} buckets of {len(gs)} goroutines\n"
    for e in walker.errors:
        text += f"warning: {e}\n"
    return text


register(View(
    "stacks", "Bucket goroutines by identical stack and wait reason, for leak triage.",
    _run, add_stacks_args,
    doc="""--similar ignores line numbers; --min N hides small buckets. Stacks that
live only in the standard library sink below user code."""))
