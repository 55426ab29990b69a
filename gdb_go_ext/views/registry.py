"""The view registry: a view is declared once and every front door serves it.

A view is one module under views/ that calls `register(View(...))`: its name, its
help, its arguments (argparse), and `run(ctx, args)`, which computes from the
session's runtime and renders. From that one registration it is a gdb command
(`go NAME`, with `help go NAME`), a `delve-bridge` view, a REPL word with completion
and a `Bridge.view([NAME, ...])` call: gdb/commands.py and delve_bridge build
themselves from VIEWS and know nothing of any one view.

    register(View("threads", "the OS threads with their M, P and goroutine",
                  arguments=add_args, run=run))
"""
from __future__ import annotations

import argparse
import re
import shutil
import textwrap
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from ..errors import GoExtError, UsageError
from ..gcpause import gc_paused
from ..runtime import walks
from .console import write_file

# what run() returns: the text, or pieces that join to it (a 100k-row table is never
# built as one string)
Output = Union[str, list]

# what a view's positional words complete to in gdb and the REPL
COMPLETE_NONE, COMPLETE_SYMBOL, COMPLETE_GOROUTINE = "none", "symbol", "goroutine"


@dataclass
class View:
    name: str
    summary: str                                   # one line, for `help go` and --help
    run: Callable[["Context", argparse.Namespace], Output]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None
    doc: str = ""                                  # the rest of the help text
    completes: str = COMPLETE_NONE
    word_choices: dict = field(default_factory=dict)   # flag -> the words that may follow it
    pause_gc: bool = True      # short bulk decodes; a probe that runs for minutes says False
    # the words after the first one that do not start with "-" are a debugger command,
    # handed to run() as it was typed in ctx.extra (`goroutine ID info locals`)
    tail_command: bool = False
    # False: the view reads only files (`trace FILE`) and never calls ctx.runtime(); the
    # front doors run it without a target (delve-bridge VIEW ..., gdb with no program)
    needs_target: bool = True

    @property
    def help(self) -> str:
        return self.summary + ("\n\n" + self.doc.strip() if self.doc.strip() else "")


VIEWS: dict[str, View] = {}


def register(view: View) -> View:
    VIEWS[view.name] = view
    return view


class HelpShown(Exception):
    """--help was asked for; the text is in .text."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class Parser(argparse.ArgumentParser):
    """argparse that reports a problem as one line (UsageError) instead of exiting."""

    def error(self, message):
        raise UsageError.of(message, self.format_usage())

    def exit(self, status=0, message=None):
        raise HelpShown(message or "")

    def print_help(self, file=None):
        raise HelpShown(self.format_help())


_parsers: dict = {}


def parser(view: View, prog: str) -> Parser:
    """The view's argument parser, named as its front door shows it (`go map`, `map`)."""
    key = (view.name, prog)
    p = _parsers.get(key)
    if p is None:
        p = Parser(prog=prog, description=view.help, allow_abbrev=False,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
        view.arguments(p)
        _parsers[key] = p
    return p


class Context:
    """What a front door hands a view: the session's runtime for the current stop,
    and how to show things. runtime() may stop a running target (the bridge)."""

    def __init__(self, runtime: Callable, color: bool = False, width: int = 120,
                 progress: Optional[Callable] = None, prog_prefix: str = ""):
        self._runtime = runtime
        self.color = color
        self.width = width
        self.progress = progress      # a factory of walk-progress callbacks, or None
        self.prog_prefix = prog_prefix
        self.extra = ""               # a tail_command view's command

    def runtime(self):
        return self._runtime()

    def walk(self, rt, **kw):
        """(walker, goroutines) of the current stop (see runtime.walks), with the front
        door's progress display during a long new walk."""
        if self.progress is None:
            return walks.walk(rt, **kw)
        with self.progress() as progress:
            return walks.walk(rt, progress=progress, **kw)


def run_without_target(words: list, width: int = 120, prog_prefix: str = "",
                       progress: Optional[Callable] = None) -> Output:
    """Run a view that needs no target (View.needs_target False) from its words, as a
    front door with no debugger does: a view that asks for a target anyway gets one line."""
    def no_target():
        raise GoExtError(f"{words[0]} needs no target and has none")
    return run(Context(no_target, width=width, progress=progress, prog_prefix=prog_prefix),
               words)


def lookup(name: str) -> View:
    view = VIEWS.get(name)
    if view is None:
        raise UsageError(f"unknown view {name!r}; one of {', '.join(VIEWS)}")
    return view


def run(ctx: Context, argv: list, raw: Optional[str] = None) -> Output:
    """Run one view from its words (['goroutines', '-t', '5']): parse, compute, render.
    raw: the words after the view's name as typed, where the front door has them (a
    tail command keeps its quoting). With -o FILE the output goes to FILE and the line
    saying so comes back. --help gives the help text. Errors are GoExtError (UsageError
    for bad words)."""
    if not argv:
        raise UsageError(f"no view given; one of {', '.join(VIEWS)}")
    view = lookup(argv[0])
    words = list(argv[1:])
    ctx.extra = ""
    if view.tail_command and len(words) > 1 and not words[1].startswith("-"):
        ctx.extra = raw.split(None, 1)[1] if raw and len(raw.split(None, 1)) > 1 \
            else " ".join(words[1:])
        words = words[:1]
    try:
        args = parser(view, ctx.prog_prefix + view.name).parse_args(words)
    except HelpShown as h:
        return h.text
    out = getattr(args, "output", None)
    color = ctx.color
    if out:
        ctx.color = False
    try:
        if view.pause_gc:
            with gc_paused():
                text = view.run(ctx, args)
        else:
            text = view.run(ctx, args)
    finally:
        ctx.color = color
    return write_file(out, text) if out else text


def help_text(view: View, prog: str) -> str:
    """A front door's help for one view: its summary line, then its usage, the rest of
    its help and its flags, as argparse formats them (`help go map`)."""
    p = parser(view, prog)
    f = p._get_formatter()
    f.add_usage(p.usage, p._actions, p._mutually_exclusive_groups)
    f.add_text(view.doc.strip() or None)
    for group in p._action_groups:
        f.start_section(group.title)
        f.add_text(group.description)
        f.add_arguments(group._group_actions)
        f.end_section()
    return view.summary + "\n\n" + f.format_help().rstrip() + "\n"


def summaries(indent: str = "  ") -> list:
    """Every view of the registry as one line: its name and its summary."""
    w = max((len(n) for n in VIEWS), default=0)
    return [f"{indent}{name:<{w}}  {view.summary}" for name, view in VIEWS.items()]


def usages(indent: str = "  ", width: Optional[int] = None) -> list:
    """Each view of the registry as its usage line(s) and its summary below them, for
    --help and the REPL's help."""
    width = width or max(60, shutil.get_terminal_size().columns - 2)   # as argparse's
    lines = []
    for name, view in VIEWS.items():
        usage = " ".join(parser(view, name).format_usage().split()[1:])
        # a [...] group is never cut: its spaces are held as NULs while wrapping
        usage = re.sub(r"\[(?:[^][]|\[[^]]*\])*\]", lambda m: m[0].replace(" ", "\0"), usage)
        lines += [line.replace("\0", " ") for line in textwrap.wrap(
            usage, width, initial_indent=indent, subsequent_indent=indent + " " * (len(name) + 1),
            break_on_hyphens=False, break_long_words=False)]
        lines.append(f"{indent}    {view.summary}")
    return lines


def count(text: str) -> int:
    """An argparse type for the count flags of every view (--limit, --top, --max,
    --pauses, --runq, -t...): a whole number of 0 or more, where 0 means all."""
    try:
        n = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"takes a count of 0 or more (0: all), not {n}")
    return n


def add_output_args(p: argparse.ArgumentParser, json_help: str = "machine-readable output") -> None:
    """--json and -o FILE, as every view takes them."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")
