"""The `go` prefix command and its subcommands."""
from __future__ import annotations

import argparse
import shutil
import traceback
from typing import Optional

import gdb

from ..errors import GoExtError, UsageError
from ..gcpause import gc_paused
from ..views import version as version_view
from ..views.console import json_text, line_slices, write_file
from . import params, session

_WRITE_SLICE = 1 << 18   # characters per gdb.write of a long output (see GoCommand.emit)


class _Parser(argparse.ArgumentParser):
    """argparse that reports problems as one line instead of exiting gdb."""

    def error(self, message):
        raise UsageError.of(message, self.format_usage())

    def exit(self, status=0, message=None):
        if message:
            gdb.write(message)
        raise _HelpShown()


class _HelpShown(Exception):
    pass


def terminal_width() -> int:
    try:
        w = gdb.parameter("width")
        if w is None or w == 0:  # unlimited, as in batch mode: do not truncate
            return 250
        if isinstance(w, int) and 40 <= w < 1000:
            return w
    except (gdb.error, RuntimeError):
        pass
    return shutil.get_terminal_size((120, 40)).columns


class GoCommand(gdb.Command):
    """Base of every `go X` subcommand: argparse, one-line errors, -o FILE."""

    name = ""
    completer_class = gdb.COMPLETE_NONE   # what a non-flag word completes to
    word_choices: dict = {}               # flag -> the words that may follow it
    pause_gc = True                       # short bulk decodes; a probe that runs for minutes sets False

    def __init__(self):
        self.parser = _Parser(prog=f"go {self.name}", description=(self.__doc__ or "").strip(),
                              add_help=True, allow_abbrev=False)
        self.add_arguments(self.parser)
        super().__init__(f"go {self.name}", gdb.COMMAND_DATA)

    def complete(self, text: str, word: str):
        """Flags after `-`, the fixed words a flag takes, else the command's completer.

        gdb breaks words at `-` and `.`, so candidates are matched against the whole
        token being typed and returned relative to gdb's word."""
        word = word or ""
        tokens = text.split()
        current = tokens[-1] if tokens and not text.endswith(" ") else ""
        before = tokens[:-1] if current else tokens
        if before and before[-1] in self.word_choices:
            choices = self.word_choices[before[-1]]
        elif current.startswith("-"):
            choices = sorted({o for a in self.parser._actions for o in a.option_strings})
        elif self.completer_class == gdb.COMPLETE_SYMBOL and "." in current:
            choices = _global_variables(current)
        else:
            return self.completer_class
        cut = len(current) - len(word)
        return [c[cut:] for c in choices if c.startswith(current)]

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        pass

    def run(self, args) -> None:
        raise NotImplementedError

    def invoke(self, arg: str, from_tty: bool) -> None:
        try:
            args = self.parser.parse_args(gdb.string_to_argv(arg))
            if self.pause_gc:
                with gc_paused():
                    self.run(args)
            else:
                self.run(args)
        except _HelpShown:
            return
        except GoExtError as e:
            if params.debug():
                traceback.print_exc()
            raise gdb.GdbError(f"go {self.name}: {e}") from None
        except gdb.GdbError:
            raise
        except KeyboardInterrupt:
            raise gdb.GdbError(f"go {self.name}: interrupted") from None
        except Exception as e:  # a bug of ours: one line unless debugging
            if params.debug():
                traceback.print_exc()
            msg = str(e).splitlines()[0] if str(e) else ""
            raise gdb.GdbError(f"go {self.name}: internal error: {type(e).__name__}: {msg}"
                               " (`set go debug on` shows the traceback)") from None

    # output
    def emit(self, text, output: Optional[str] = None) -> None:
        """Show a view's text: a string, or a list of pieces that join to it."""
        if output:
            text = write_file(output, text)
        # in slices of whole lines: gdb copies what it is given, and slices reuse the
        # same memory where one write of a 13 MB table faults in fresh pages
        for part in line_slices([text] if isinstance(text, str) else text, _WRITE_SLICE):
            gdb.write(part)

    def color(self, output: Optional[str] = None) -> bool:
        return False if output else params.color_enabled()

    def emit_json(self, obj, output: Optional[str] = None) -> None:
        self.emit(json_text(obj), output)


def _global_variables(prefix: str) -> list[str]:
    """Package-level variables whose names start with prefix (e.g. main.ca)."""
    import re
    try:
        out = gdb.execute(f"info variables -n ^{re.escape(prefix)}", to_string=True)
    except gdb.error:
        return []
    names = set()
    for line in out.splitlines():
        m = re.search(r"([\w./*()]+);\s*$", line) or re.match(r"^\s*(?:0x[0-9a-f]+\s+)?(\S+)\s*$", line)
        if m and m.group(1).startswith(prefix):
            names.add(m.group(1))
    return sorted(names)[:200]


class GoPrefix(gdb.Command):
    """Go runtime views: goroutines, stacks, maps, version.

    Errors are one line; `set go debug on` shows Python tracebacks.
    `set go color on|off|auto` controls colour."""

    def __init__(self):
        super().__init__("go", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError(f"go: unknown subcommand {arg.split()[0]!r}; see `help go`")
        gdb.execute("help go")


class VersionCommand(GoCommand):
    """Show the target's Go version and the runtime layouts detected in its debug info."""

    name = "version"

    def add_arguments(self, p):
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")

    def run(self, args):
        rt = session.runtime()
        if args.json:
            self.emit_json(version_view.to_json(rt), args.output)
        else:
            self.emit(version_view.render_text(rt, color=self.color(args.output),
                                               width=terminal_width()), args.output)


from .map_command import MapCommand  # noqa: E402  (imports GoCommand from above)
COMMANDS = [VersionCommand, MapCommand]
from .mapwatch_command import MapWatchCommand; COMMANDS.append(MapWatchCommand)  # noqa: E402,E702


def register() -> list[str]:
    """Register every command; one that fails to load is reported, the rest still load."""
    failed = []
    GoPrefix()
    from . import goroutine_commands
    classes = list(COMMANDS) + [goroutine_commands.GoroutinesCommand,
                                goroutine_commands.GoroutineCommand,
                                goroutine_commands.StacksCommand]
    for cls in classes:
        try:
            cls()
        except Exception as e:  # keep the others usable
            failed.append(f"go {cls.name}: {e}")
    return failed
