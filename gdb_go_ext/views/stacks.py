"""`stacks`: goroutines bucketed by identical stack and wait reason, for leak triage."""
from __future__ import annotations

from ..analysis import heapreport, triage
from ..errors import UsageError
from .console import json_text
from .gc import size_text
from .goroutines import add_stacks_args, stacks_json, stacks_text
from .registry import View, register
from .stacksdiff import diff_view, read_old


def _args(p):
    add_stacks_args(p)
    p.add_argument("--diff", metavar="OLD",
                   help="what changed since OLD: an earlier `go stacks --json` or "
                        "`go goroutines --json -t N` output, a goroutine dump or a go dump file")
    p.add_argument("--retained", action="store_true",
                   help="add the heap bytes and objects only each bucket's goroutines keep "
                        "alive (Go 1.22+)")
    p.add_argument("--pprof", metavar="FILE",
                   help="with --retained: write what each bucket alone keeps alive as a pprof "
                        "profile (gzipped), the bucket's stack as the sample's stack")


def _run(ctx, args):
    if args.pprof and not args.retained:
        raise UsageError("--pprof goes with --retained")
    snap = read_old(args.diff) if args.diff is not None else None   # before any walk
    rt = ctx.runtime()
    walker, gs = ctx.walk(rt, depth=1)   # whole stacks: -t cuts only what is printed
    if snap is not None:
        return diff_view(snap, rt, walker, gs, args)
    buckets = [b for b in triage.bucket(gs, args.similar) if b.count >= args.min]
    kept = None
    if args.retained:
        heapreport.require_heap(rt)
        group = {goid: i for i, b in enumerate(buckets) for goid in b.ids()}
        kept = heapreport.retained_by(rt, gs, group, len(buckets))
        if args.pprof:
            from .pprof import retained_profile
            return retained_profile(rt, buckets, kept, walker.errors, args)
    if args.json:
        js = stacks_json(rt.layout.go_version, buckets, len(gs), walker.errors, args.depth)
        if kept is not None:
            for i, b in enumerate(js["buckets"]):
                b["retained_bytes"] = int(kept.bytes[i])
                b["retained_objects"] = int(kept.objects[i])
            js["errors"] = js["errors"] + [e for e in kept.errors if e not in js["errors"]]
        return json_text(js)
    if kept is not None:
        return _retained_text(buckets, kept, ctx.color, len(gs), walker.errors, args.depth)
    text = stacks_text(buckets, ctx.color, depth=args.depth)
    text += f"{len(buckets)} buckets of {len(gs)} goroutines\n"
    for e in walker.errors:
        text += f"warning: {e}\n"
    return text


def _retained_text(buckets, kept, color, total, errors, depth) -> str:
    """The buckets' text, each with what only its goroutines keep alive, biggest first."""
    order = sorted(range(len(buckets)), key=lambda i: (-int(kept.bytes[i]), i))
    parts = []
    for i in order:
        text = stacks_text([buckets[i]], color, depth=depth)
        head, _, rest = text.partition("\n")
        parts.append(f"{head}\n  retains {int(kept.bytes[i])} bytes "
                     f"({size_text(int(kept.bytes[i]))}) in {int(kept.objects[i])} objects\n"
                     + rest)
    text = "".join(parts) + f"{len(buckets)} buckets of {total} goroutines\n"
    for e in list(errors) + [e for e in kept.errors if e not in errors]:
        text += f"warning: {e}\n"
    return text


register(View(
    "stacks", "Bucket goroutines by identical stack and wait reason, for leak triage.",
    _run, _args,
    doc="""Buckets are made from whole stacks; -t DEPTH cuts only the frames printed
(default 64, 0: all). --similar ignores line numbers; --min N hides small buckets. Stacks that
live only in the standard library sink below user code. --diff OLD prints the
buckets new, grown, shrunk and vanished since OLD, matched by stack (functions, files
and lines; functions only with --similar), and a total. --retained adds to each bucket
the heap only its goroutines keep alive (reachable from their stacks and from no other
root), biggest first."""))
