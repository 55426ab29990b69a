"""`go stacks --diff OLD`: the leak signal, the buckets that grew between an earlier
snapshot (a `go stacks --json` or `go goroutines --json -t N` output, a runtime
goroutine dump, a `go dump` file) and now (analysis/dumptext.py does the matching)."""
from __future__ import annotations

from ..analysis import dumptext
from ..errors import GoExtError
from ..runtime.stack import WHOLE_STACK
from .console import json_text


def read_old(path: str) -> dumptext.Snapshot:
    """OLD as a snapshot, or a one-line GoExtError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GoExtError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return dumptext.load_snapshot(data)
    except dumptext.SnapshotError as e:
        raise GoExtError(f"{path}: {e}") from None


def _frame_json(f) -> dict:
    return f.to_json()


def diff_view(snap: dumptext.Snapshot, rt, walker, gs, args):
    """The --diff output (text or --json) of the snapshot OLD (read_old) against the
    walk's goroutines."""
    wrappers = dumptext.dump_wrappers(rt, (e.frames for e in snap.entries)) \
        if snap.level1 else frozenset()
    buckets = dumptext.diff(snap, gs, args.similar, wrappers, WHOLE_STACK)
    buckets = [b for b in buckets if max(b.before, b.after) >= args.min]
    before = sum(b.before for b in buckets)
    after = sum(b.after for b in buckets)
    unknown = dumptext.unknown_then(snap)
    notes = ([f"{args.diff}: {snap.problem}"] if snap.problem else []) + list(walker.errors)
    if args.json:
        return json_text({
            "go_version": rt.layout.go_version, "old": {"path": args.diff, "kind": snap.kind},
            "total": {"before": before, "after": after},
            "unknown_then": unknown,
            "buckets": [{"change": b.change, "before": b.before, "after": b.after,
                         "states": b.states, "ids": b.ids,
                         "stack": [_frame_json(f) for f in b.frames[: args.depth or None]]}
                        for b in buckets],
            "errors": notes})
    lines = []
    counts = {"new": 0, "grown": 0, "shrunk": 0, "vanished": 0, "same": 0}
    for b in buckets:
        counts[b.change] += 1
        if b.change == "same":
            continue
        state = ", ".join(b.states)
        if b.change == "new":
            head = f"new: {b.after} goroutine{'s' if b.after != 1 else ''} [{state}]"
        elif b.change == "vanished":
            head = f"vanished: {b.before} goroutine{'s' if b.before != 1 else ''} [{state}]"
        else:
            head = f"{b.change}: {b.before} -> {b.after} ({b.after - b.before:+d}) [{state}]"
        lines.append(head)
        if b.ids:
            lines.append(f"  ids: {', '.join(map(str, b.ids))}"
                         + (", …" if len(b.ids) < (b.after or b.before) else ""))
        for f in b.frames[: args.depth or None]:
            lines.append(f"    {f.function}{' (inlined)' if f.inlined else ''}")
            lines.append(f"        {f.file}:{f.line}")
        lines.append("")
    lines.append(f"total: {before} -> {after} goroutines ({after - before:+d}); "
                 f"{counts['new']} new, {counts['grown']} grown, {counts['shrunk']} shrunk, "
                 f"{counts['vanished']} vanished, {counts['same']} unchanged buckets")
    if unknown:
        shown = ", ".join(map(str, unknown[:10])) + (", …" if len(unknown) > 10 else "")
        lines.append(f"{len(unknown)} goroutine{'s' if len(unknown) != 1 else ''} {args.diff} "
                     f"printed without a stack (running then) not counted: {shown}")
    return "\n".join(lines) + "\n" + "".join(f"warning: {e}\n" for e in notes)
