"""`stacks`: goroutines bucketed by identical stack and wait reason, for leak triage."""
from __future__ import annotations

from ..analysis import triage
from ..errors import UsageError
from .console import json_text
from .goroutines import add_stacks_args, stacks_json, stacks_text
from .registry import View, register
from .stacksdiff import diff_view, read_old


def _args(p):
    add_stacks_args(p)
    p.add_argument("--diff", metavar="OLD",
                   help="what changed since OLD: an earlier `go stacks --json` or "
                        "`go goroutines --json -t N` output, a goroutine dump or a go dump file")


def _run(ctx, args):
    if args.depth <= 0:
        raise UsageError("-t takes a positive number of frames")
    snap = read_old(args.diff) if args.diff is not None else None   # before any walk
    rt = ctx.runtime()
    walker, gs = ctx.walk(rt, depth=args.depth)
    if snap is not None:
        return diff_view(snap, rt, walker, gs, args)
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
    _run, _args,
    doc="""--similar ignores line numbers; --min N hides small buckets. Stacks that
live only in the standard library sink below user code. --diff OLD prints the
buckets new, grown, shrunk and vanished since OLD, matched by stack (functions, files
and lines; functions only with --similar), and a total."""))
