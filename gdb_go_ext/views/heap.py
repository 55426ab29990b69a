"""`heap` and `paths`: the live heap found by redoing the GC's mark from memory, and
the shortest paths from a root to the object holding an address (Go 1.22+)."""
from __future__ import annotations

import contextlib

from ..analysis import heapchains, heapreport
from ..errors import UsageError
from .console import json_text
from .gc import size_text
from .registry import View, add_output_args, count, register


class _Phases:
    """progress(what, done, total) for the heap's phases (spans, roots, mark), shown
    through the front door's progress bars (ctx.progress: one bar per phase, each
    shown once its phase has taken a second), closed on every exit (Ctrl-C too)."""

    def __init__(self, factory):
        self.factory = factory
        self.what = self.bar = None

    def __call__(self, what: str, done: int, total: int) -> None:
        if what != self.what:
            self.close()
            self.what = what
            self.bar = self.factory(what).__enter__()
        self.bar(done, total)

    def close(self) -> None:
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress(ctx):
    """The heap views' progress: a _Phases on a terminal, else None (nothing shown)."""
    return _Phases(ctx.progress) if ctx.progress is not None else \
        contextlib.nullcontext(None)


def _heap_args(p):
    p.add_argument("--top", type=count, default=None, metavar="N",
                   help="show the N biggest types and size classes, text and JSON (0: all; "
                        "default: text 20, JSON all)")
    p.add_argument("--pprof", metavar="FILE",
                   help="write the live heap as a pprof profile (gzipped) whose stacks are "
                        "reference chains: root, fields, type")
    p.add_argument("--chain-depth", type=int, default=heapchains.MAX_CHAIN_STEPS, metavar="N",
                   help="with --pprof: at most N pointer steps per chain, the rest one \"…\" "
                        f"frame (default {heapchains.MAX_CHAIN_STEPS})")
    add_output_args(p)


def _heap_run(ctx, args):
    top = args.top or None    # (0: all)
    if args.chain_depth <= 0:
        raise UsageError("--chain-depth takes a positive number")
    rt = ctx.runtime()
    heapreport.require_heap(rt)
    _walker, gs = ctx.walk(rt, depth=0)
    if args.pprof:
        with progress(ctx) as prog:
            return _heap_pprof(rt, gs, args, prog)
    with progress(ctx) as prog:
        r = heapreport.heap_report(rt, gs, prog)
    if args.json:
        return json_text({
            "go_version": rt.layout.go_version,
            "live_bytes": r.live_bytes, "live_objects": r.live_objects,
            "by_class": [{"size_class": c, "elem_size": s, "objects": n, "bytes": b}
                         for c, s, n, b in _biggest_classes(r.by_class, top)],
            "by_type": [{"type": t.name, "objects": t.objects, "bytes": t.bytes}
                        for t in r.by_type[:top]],
            "by_root": [{"kind": k, "name": name, "objects": n, "bytes": b}
                        for k, name, n, b in r.by_root],
            "errors": r.errors})
    if args.top is None:
        top = 20
    out = [f"live heap: {r.live_bytes} bytes ({size_text(r.live_bytes)}) in "
           f"{r.live_objects} objects\n"]

    def table(title, head, rows):
        if not rows:
            return
        rows = [head] + rows
        w = [max(len(row[i]) for row in rows) for i in range(len(head))]
        out.append(f"\n{title}\n")
        for row in rows:
            out.append("  " + "  ".join(c.rjust(w[i]) if i < len(head) - 1 else c
                                        for i, c in enumerate(row)).rstrip() + "\n")

    table("by type", ("bytes", "objects", "type"),
          [(str(t.bytes), str(t.objects), t.name) for t in r.by_type[:top]])
    table("by size class", ("bytes", "objects", "class", "size"),
          [(str(b), str(n), str(c) if c else "large", str(s))
           for c, s, n, b in sorted(r.by_class, key=lambda x: -x[3])[:top]])
    table("by root (reachable from; roots share objects)", ("bytes", "objects", "root"),
          [(str(b), str(n), f"globals of {name}" if k == "globals" and " " not in name
            else name)
           for k, name, n, b in r.by_root])
    out += [f"warning: {e}\n" for e in r.errors]
    return "".join(out)


def _heap_pprof(rt, gs, args, prog=None):
    from .pprof import ProfileBuilder, require_protobuf, write_profile
    require_protobuf("go heap --pprof")
    c = heapchains.reference_chains(rt, gs, args.chain_depth, prog)
    b = ProfileBuilder([("inuse_objects", "count"), ("inuse_space", "bytes")],
                       ("space", "bytes"), 1)
    b.prof.default_sample_type = b.s("inuse_space")
    for smp in c.samples:
        b.add_sample([b.name_location(f) for f in reversed(smp.frames)],
                     [smp.objects, smp.bytes])
    for e in c.errors:
        b.comment(f"warning: {e}")
    size = write_profile(b.prof, args.pprof)
    if args.json:
        return json_text({"go_version": rt.layout.go_version, "pprof": args.pprof,
                          "live_bytes": c.live_bytes, "live_objects": c.live_objects,
                          "chains": len(c.samples), "errors": c.errors})
    return (f"wrote the live heap, {c.live_bytes} bytes ({size_text(c.live_bytes)}) in "
            f"{c.live_objects} objects on {len(c.samples)} reference chains, as a pprof "
            f"profile ({size} bytes) to {args.pprof}\n"
            + "".join(f"warning: {e}\n" for e in c.errors))


register(View(
    "heap", "The live heap, by type, size class and root, from a mark done as the GC does.",
    _heap_run, _heap_args,
    doc="""Marks from the GC's own roots (globals through the modules' GC bitmaps, every
goroutine's frames through their stack maps, finalizers) with the heap's own pointer
records (heap bits, malloc headers, span.largeType). Types are the runtime's where the
heap records one, else the static type of a typed pointer to the object, else
"untyped N B". Go 1.22 and later.

--pprof FILE writes the live heap as a pprof profile (inuse_objects, inuse_space) whose
stacks are reference chains, for `go tool pprof -http`'s flame graph: each object once,
on the chain by which a breadth-first mark first reached it, from its root (a global,
or a frame's function and variable; goroutines are not told apart, so goroutines parked
alike add up) through the field paths `go paths` names (indices as []) to its type;
past 32 pointer steps (--chain-depth N) the rest of a chain is one "…" frame."""))


def _biggest_classes(by_class: list, top) -> list:
    """The top size classes by bytes (None: all), in their own order."""
    if top is None or len(by_class) <= top:
        return by_class
    keep = set(sorted(range(len(by_class)), key=lambda i: -by_class[i][3])[:top])
    return [c for i, c in enumerate(by_class) if i in keep]


def _paths_args(p):
    p.add_argument("addr", metavar="ADDR", help="an address inside the object (hex or decimal)")
    p.add_argument("--max", type=count, default=3, metavar="N",
                   help="at most N paths (default 3; 0: all)")
    add_output_args(p)


def _root_json(r) -> dict:
    return {"kind": r.kind, "name": r.name, "goid": r.goid,
            "variable": getattr(r, "variable", None), "type": getattr(r, "type_name", None)}


def _root_text(r) -> str:
    if r.kind == "stack":
        var = f" {r.variable}" if getattr(r, "variable", None) else ""
        return f"goroutine {r.goid} {r.name}{var}"
    return f"{r.kind} {r.name}" if r.kind != "global" else r.name


def _paths_run(ctx, args):
    try:
        addr = int(args.addr, 0)
    except ValueError:
        raise UsageError(f"not an address: {args.addr!r}") from None
    rt = ctx.runtime()
    heapreport.require_heap(rt)
    _walker, gs = ctx.walk(rt, depth=0)
    with progress(ctx) as prog:
        obj, paths, errors = heapreport.paths_to(rt, gs, addr, args.max or 1 << 20, prog)
    if args.json:
        return json_text({
            "go_version": rt.layout.go_version, "address": f"{addr:#x}",
            "object": None if obj is None else
            {"address": f"{obj[0]:#x}", "size": obj[1], "type": obj[2]},
            "paths": [{"root": _root_json(p.root),
                       "steps": [{"via": s.via, "address": f"{s.address:#x}", "size": s.size,
                                  "type": s.type} for s in p.steps]} for p in paths],
            "errors": errors})
    if obj is None:
        return f"{addr:#x} is not inside a live heap object\n" + \
            "".join(f"warning: {e}\n" for e in errors)
    out = [f"{addr:#x} is in the {obj[1]}-byte object at {obj[0]:#x}"
           + (f" ({obj[2]})" if obj[2] else "") + "\n"]
    if not paths:
        out.append("no root reaches it: it is garbage the GC has not swept yet\n")
    for i, p in enumerate(paths, 1):
        out.append(f"\npath {i} ({len(p.steps)} pointer{'s' if len(p.steps) != 1 else ''}):\n")
        out.append(f"  {_root_text(p.root)}" + (f" ({p.root.type_name})"
                                                if getattr(p.root, "type_name", None) else "") + "\n")
        for s in p.steps:
            via = s.via if not s.via or s.via.startswith(("[", "+", "*")) else "." + s.via
            out.append(f"    {via + ' ' if via else ''}-> {s.address:#x} "
                       f"({s.type or 'untyped'}, {s.size} B)\n")
    out += [f"warning: {e}\n" for e in errors]
    return "".join(out)


register(View(
    "paths", "The shortest paths from a root (a global, a goroutine's frame) to the object "
             "holding ADDR.",
    _paths_run, _paths_args,
    doc="""Each step names the field or index the pointer sits in where the type is known
(a DWARF-typed root, a type the heap records, or the static type of the pointer that
reached it), else its offset. Go 1.22 and later."""))

