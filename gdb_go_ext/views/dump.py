"""`dump`: every goroutine in the runtime's own traceback text for the target's Go
version (runtime/traceback.py holds the rules), at GOTRACEBACK level 1 or 2."""
from __future__ import annotations

from ..errors import UsageError
from ..runtime.traceback import traceback
from .registry import View, register


def _args(p):
    p.add_argument("--level", type=int, default=1, metavar="1|2",
                   help="1 (default): as GOTRACEBACK=all and pprof debug=2 print; "
                        "2: as GOTRACEBACK=system/crash print")
    p.add_argument("--args", action="store_true",
                   help="not implemented: arguments are always written (...)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def _run(ctx, args):
    if args.level not in (1, 2):
        raise UsageError("--level takes 1 or 2")
    if args.args:
        raise UsageError("--args is not implemented: arguments are written (...)")
    rt = ctx.runtime()
    walker, gs = ctx.walk(rt)
    tb = traceback(rt, walker, gs, args.level)
    level2 = args.level >= 2
    out = []
    for g in tb.goroutines:
        lines = ["", g.header]
        for i, f in enumerate(g.frames):
            if g.elided and i == g.elided_at:
                lines.append(g.elided)
            lines.append(f"{f.function}(...)")
            pos = f"\t{f.file}:{f.line}"
            if not f.inlined:
                if f.pc > f.entry:
                    pos += f" +{f.pc - f.entry:#x}"
                if level2:
                    pos += f" fp={f.fp:#x} sp={f.sp:#x} pc={f.pc:#x}"
            lines.append(pos)
        if g.running and not g.frames:
            lines.append("\tgoroutine running on other thread; stack unavailable")
        if g.elided and g.elided_at >= len(g.frames):
            lines.append(g.elided)
        if g.created_by:
            name, file, line, off, parent = g.created_by
            lines.append(f"created by {name}" + (f" in goroutine {parent}" if parent else ""))
            lines.append(f"\t{file}:{line}" + (f" +{off:#x}" if off is not None else ""))
        if g.error and not (g.running and not g.frames):
            lines.append(f"warning: goroutine {g.id}: stack: {g.error}")
        out.append("\n".join(lines) + "\n")
    text = "".join(out)
    text = text[1:] if text.startswith("\n") else text
    for e in list(walker.errors) + tb.errors:
        text += f"warning: {e}\n"
    return text


register(View(
    "dump", "Every goroutine in the runtime's own traceback text (GOTRACEBACK=all or crash).",
    _run, _args,
    doc="""--level 1 (default) writes what pprof.Lookup("goroutine").WriteTo(w, 2) and
GOTRACEBACK=all print: runtime frames and system goroutines hidden by the runtime's
own rules. --level 2 writes what GOTRACEBACK=system/crash print: every frame and
goroutine, gp=/m= in the header where the version prints them, fp= sp= pc= on each
frame. Goroutines in allgs order; arguments are written (...): --args is not
implemented. pprof labels (debug.tracebacklabels) are not written."""))
