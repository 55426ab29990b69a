"""`go goroutines`, `go goroutine ID [CMD]` and `go stacks`."""
from __future__ import annotations

import sys
import time

import gdb

from ..analysis import triage
from ..errors import GoExtError, UsageError
from ..runtime.goroutines import GoroutineWalker
from ..views import goroutines as view
from . import session
from .commands import GoCommand, terminal_width


class _Progress:
    """A progress line on stderr, only on a terminal and only for walks over a second."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.shown = False
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.tty or time.monotonic() - self.t0 < 1.0:
            return
        self.shown = True
        sys.stderr.write(f"\rreading goroutines {done}/{total}")
        sys.stderr.flush()

    def close(self):
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def walk(depth: int = 0, include_dead: bool = False, want_blocked: bool = True,
         want_labels: bool = True):
    """Walk every goroutine, or reuse a walk made since the target last moved.

    Triage is many commands on one stop (list, filter, group, stacks): the goroutines
    cannot change until the target runs, memory or registers are written, or gdb
    selects another thread, and the session forgets its walks on each of those."""
    rt = session.runtime()
    rt.require_process()
    thread = gdb.selected_thread()
    selected = thread.num if thread is not None else None
    for (d, dead, blocked, labels, sel), (walker, gs) in rt.walks.items():
        if d == depth and sel == selected and dead >= include_dead and blocked >= want_blocked \
                and labels >= want_labels:
            if dead and not include_dead:
                gs = [g for g in gs if g.status_code not in walker.dead_codes]
            return rt, walker, gs
    progress = _Progress()
    try:
        walker = GoroutineWalker(rt, progress=progress)
        gs = walker.walk(with_stack=depth, include_dead=include_dead, want_blocked=want_blocked,
                         want_labels=want_labels)
    finally:
        progress.close()
    if len(rt.walks) >= 3:  # list, stacks and a JSON dump of one stop all hit
        rt.walks.pop(next(iter(rt.walks)))
    rt.walks[(depth, include_dead, want_blocked, want_labels, selected)] = (walker, gs)
    return rt, walker, gs


class GoroutinesCommand(GoCommand):
    """List every goroutine from runtime.allgs: status, wait reason, locations, labels.

    Filter with -s, -with/-without KIND SUBSTR, -label; group with -group KIND;
    -t DEPTH adds stacks. `*` marks the goroutine on the selected thread."""

    name = "goroutines"
    word_choices = {"-with": triage.KINDS, "-without": triage.KINDS, "-group": triage.GROUP_KINDS}

    def add_arguments(self, p):
        view.add_goroutines_args(p)

    def run(self, args):
        view.check_goroutines_args(args)
        # labels cost reads: fetch them only when something shows or uses them
        want_labels = bool(args.json or args.show_labels or args.labels or args.group == "label"
                           or any(k == "label" for k, _ in args.with_ + args.without))
        rt, walker, gs = walk(args.depth, args.all, want_blocked=args.json, want_labels=want_labels)
        self.emit(view.goroutines_view(rt.layout.go_version, gs, walker.errors,
                                       walker.clock, args,
                                       self.color(args.output), terminal_width()), args.output)


class StacksCommand(GoCommand):
    """Bucket goroutines by identical stack and wait reason, for leak triage.

    --similar ignores line numbers; --min N hides small buckets. Stacks that
    live only in the standard library sink below user code."""

    name = "stacks"

    def add_arguments(self, p):
        view.add_stacks_args(p)

    def run(self, args):
        if args.depth <= 0:
            raise UsageError("-t takes a positive number of frames")
        rt, walker, gs = walk(args.depth)
        buckets = [b for b in triage.bucket(gs, args.similar) if b.count >= args.min]
        if args.json:
            self.emit_json(view.stacks_json(rt.layout.go_version, buckets, len(gs), walker.errors),
                           args.output)
            return
        text = view.stacks_text(buckets, self.color(args.output))
        text += f"{len(buckets)} buckets of {len(gs)} goroutines\n"
        for e in walker.errors:
            text += f"warning: {e}\n"
        self.emit(text, args.output)


class GoroutineCommand(GoCommand):
    """Backtrace of one goroutine (default), or run a gdb command in its context.

    go goroutine ID            backtrace, live or on a core (registers untouched)
    go goroutine ID CMD...     live only: run CMD with that goroutine's registers,
                               restored afterwards (e.g. `info locals`, `frame 2`)"""

    name = "goroutine"

    def add_arguments(self, p):
        p.add_argument("id", type=int, help="goroutine id")
        p.add_argument("command", nargs="*", help="gdb command (default bt)")
        p.add_argument("-t", dest="depth", type=int, default=256, help="at most this many frames")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    def invoke(self, arg, from_tty):
        # everything after the id is a gdb command, flags included
        parts = arg.split(None, 1)
        self._raw_command = parts[1] if len(parts) > 1 and not parts[1].startswith("-") else ""
        if self._raw_command:
            arg = parts[0]
        return super().invoke(arg, from_tty)

    def run(self, args):
        rt = session.runtime()
        rt.require_process()
        walker = GoroutineWalker(rt)
        g = walker.find(args.id, max(1, args.depth))
        if g is None:
            raise GoExtError(f"no goroutine {args.id}")
        cmd = self._raw_command.strip()
        if not cmd or cmd == "bt" or cmd == "backtrace":
            if args.json:
                self.emit_json({"go_version": rt.layout.go_version,
                                "goroutine": view.goroutine_json(g, True),
                                "errors": walker.errors})
                return
            text = view.backtrace_text(g, g.stack or [], self.color())
            if g.error:
                text += f"warning: {g.error}\n"
            self.emit(text)
            return
        run_in_goroutine(rt, g, cmd)


def run_in_goroutine(rt, g, cmd: str) -> None:
    """Run a gdb command with the goroutine's pc/sp/bp in place, live only; always restore."""
    if not rt.target.is_live:
        raise GoExtError("running a command in a goroutine's context needs a live process "
                         "(on a core, `go goroutine ID` gives its backtrace)")
    if g.status_code == rt.layout.status.running and g.thread:
        for th in gdb.selected_inferior().threads():
            if th.ptid[1] == g.thread:
                prev = gdb.selected_thread()
                th.switch()
                try:
                    gdb.execute(cmd)
                finally:
                    prev.switch()
                return
    if not g.pc or not g.sp:
        raise GoExtError(f"goroutine {g.id} has no saved registers (status {g.status})")
    frame = gdb.newest_frame()
    saved = {r: int(frame.read_register(r)) for r in ("rip", "rsp", "rbp")}
    bp = g.bp   # the frame pointer saved with pc/sp (syscallbp in a syscall)
    try:
        gdb.execute(f"set $rip = {g.pc:#x}", to_string=True)
        gdb.execute(f"set $rsp = {g.sp:#x}", to_string=True)
        if bp is not None:
            gdb.execute(f"set $rbp = {bp:#x}", to_string=True)
        gdb.execute(cmd)
    finally:
        for r, v in saved.items():
            gdb.execute(f"set ${r} = {v:#x}", to_string=True)
        gdb.execute("select-frame 0", to_string=True)
