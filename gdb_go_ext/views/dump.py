"""`dump`: every goroutine in the runtime's own traceback text for the target's Go
version (runtime/traceback.py holds the rules), at GOTRACEBACK level 1 or 2."""
from __future__ import annotations

from ..errors import DecodeError, UsageError
from ..runtime.traceback import ArgPrinter, labels_printed, traceback
from .registry import View, register


def _args(p):
    p.add_argument("--level", type=int, default=1, metavar="1|2",
                   help="1 (default): as GOTRACEBACK=all and pprof debug=2 print; "
                        "2: as GOTRACEBACK=system/crash print")
    p.add_argument("--args", action="store_true",
                   help="write each frame's argument words as the runtime prints them "
                        "(default: (...))")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def _run(ctx, args):
    if args.level not in (1, 2):
        raise UsageError("--level takes 1 or 2")
    rt = ctx.runtime()
    walker, gs = ctx.walk(rt, want_blocked=False, want_labels=labels_printed(rt))
    tb = traceback(rt, walker, gs, args.level)
    printer = ArgPrinter(rt.pclntab, rt.mem) if args.args else None
    return render(tb, printer) + "".join(
        f"warning: {e}\n" for e in list(walker.errors) + tb.errors)


def render(tb, printer=None) -> str:
    """The dump's text: each goroutine's block as the runtime prints it, blank lines
    between. A stack shared by many goroutines is rendered once (fp/sp added per
    goroutine at level 2), unless printer (an ArgPrinter) writes each one's arguments."""
    level2 = tb.level >= 2
    if printer is not None:
        return _render_with_args(tb, printer)
    bodies: dict = {}
    tails: dict = {}
    out = []
    append = out.append
    for g in tb.goroutines:
        key = id(g.frames)
        body = bodies.get(key)
        if body is None:
            lines = _body(g.frames, level2)
            body = bodies[key] = (g.frames, lines, "".join(lines))
        tkey = (g.created_by, g.running and not g.frames)
        tail = tails.get(tkey)
        if tail is None:
            tail = tails[tkey] = _tail(g)
        if g.error and not (g.running and not g.frames):
            tail += f"warning: goroutine {g.id}: stack: {g.error}\n"
        if not level2 and not g.elided:
            append(f"{g.header}\n{body[2]}{tail}")
            continue
        parts = [g.header, "\n"]
        if g.elided and g.elided_at == 0:
            parts += [g.elided, "\n"]
        if level2:
            sp = g.sp
            for i, (text, f) in enumerate(zip(body[1], g.frames)):
                if g.elided and i == g.elided_at and i:
                    parts += [g.elided, "\n"]
                if f.inlined:
                    parts.append(text)
                else:
                    parts.append(f"{text} fp={sp + f.fp_off:#x} sp={sp + f.sp_off:#x} "
                                 f"pc={f.pc:#x}\n")
        elif 0 < g.elided_at < len(g.frames):
            parts += body[1][:g.elided_at] + [g.elided, "\n"] + body[1][g.elided_at:]
        else:
            parts += body[1]
        if g.elided and g.elided_at >= len(g.frames) and g.frames:
            parts += [g.elided, "\n"]
        parts.append(tail)
        append("".join(parts))
    return "\n".join(out)


def _render_with_args(tb, printer) -> str:
    level2 = tb.level >= 2
    out = []
    for g in tb.goroutines:
        parts = [g.header, "\n"]
        window = None
        if g.frames:
            size = min(max(f.fp_off for f in g.frames) + 512, 1 << 16)
            try:
                window = (g.sp, printer.mem.read(g.sp, size))
            except DecodeError:
                window = None
        for i, f in enumerate(g.frames):
            if g.elided and i == g.elided_at:
                parts += [g.elided, "\n"]
            fp = g.sp + f.fp_off
            words = "..." if f.inlined else printer.text(f, fp, window)
            pos = f"{f.function}({words})\n\t{f.file}:{f.line}"
            if not f.inlined:
                if f.pc > f.entry:
                    pos += f" +{f.pc - f.entry:#x}"
                if level2:
                    pos += f" fp={fp:#x} sp={g.sp + f.sp_off:#x} pc={f.pc:#x}"
            parts.append(pos + "\n")
        if g.elided and g.elided_at >= len(g.frames) and g.frames:
            parts += [g.elided, "\n"]
        parts.append(_tail(g))
        if g.error and not (g.running and not g.frames):
            parts.append(f"warning: goroutine {g.id}: stack: {g.error}\n")
        out.append("".join(parts))
    return "\n".join(out)


def _tail(g) -> str:
    """What follows the frames: the running note and created by."""
    parts = []
    if g.running and not g.frames:
        parts.append("\tgoroutine running on other thread; stack unavailable\n")
    if g.created_by:
        name, file, line, off, parent = g.created_by
        parts.append(f"created by {name}" + (f" in goroutine {parent}" if parent else "")
                     + f"\n\t{file}:{line}" + (f" +{off:#x}" if off is not None else "")
                     + "\n")
    return "".join(parts)


def _body(frames, level2: bool) -> list:
    """Each frame's two lines; at level 2 a physical frame's second line is left open
    for its fp= sp= pc=."""
    out = []
    for f in frames:
        pos = f"{f.function}(...)\n\t{f.file}:{f.line}"
        if not f.inlined and f.pc > f.entry:
            pos += f" +{f.pc - f.entry:#x}"
        out.append(pos if level2 and not f.inlined else pos + "\n")
    return out


register(View(
    "dump", "Every goroutine in the runtime's own traceback text (GOTRACEBACK=all or crash).",
    _run, _args,
    doc="""--level 1 (default) writes what pprof.Lookup("goroutine").WriteTo(w, 2) and
GOTRACEBACK=all print: runtime frames and system goroutines hidden by the runtime's
own rules. --level 2 writes what GOTRACEBACK=system/crash print: every frame and
goroutine, gp=/m= in the header where the version prints them, fp= sp= pc= on each
frame. Goroutines in allgs order. Arguments are written (...) unless --args: then each
frame's argument words as the runtime's printArgs writes them (from the frame's
argument area, ? after a register argument's spill slot that is not live at the
frame's pc), ?unreadable for a word that cannot be read. Headers carry (leaked),
(scan), (durable), synctest bubble and pprof labels where the version prints them."""))
