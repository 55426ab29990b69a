"""The `go` prefix command, and a `go NAME` command for every view of the registry.

Nothing here knows any one view: each command parses its words with the view's own
arguments, runs it on the selected inferior's runtime (session.runtime) and writes
what it returns. Errors are one line (`set go debug on` shows the traceback)."""
from __future__ import annotations

import os
import re
import shutil
import traceback

import gdb

from ..errors import GoExtError
from ..views import registry
from ..views.console import WalkProgress, ascii_text, encodes, line_slices, stderr_is_terminal
from . import params, session

_WRITE_SLICE = 1 << 18   # characters per gdb.write of a long output (see emit)
_COMPLETERS = {registry.COMPLETE_SYMBOL: gdb.COMPLETE_SYMBOL,
               registry.COMPLETE_GOROUTINE: gdb.COMPLETE_NONE,
               registry.COMPLETE_NONE: gdb.COMPLETE_NONE}


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


def host_is_ascii() -> bool:
    """Whether gdb's host character set (the locale's: ASCII in a C or POSIX locale)
    cannot hold what the views write; then what gdb is given is ASCII (ascii_text)."""
    try:
        return not encodes(gdb.host_charset())
    except (AttributeError, gdb.error):
        return False


def for_gdb(text: str) -> str:
    """text as gdb's host character set can hold it (a doc string, an error, a line)."""
    return ascii_text(text) if host_is_ascii() else text


def emit(text) -> None:
    """Show a view's output: a string, or a list of pieces that join to it, in slices of
    whole lines: gdb copies what it is given, and slices reuse the same memory where one
    write of a 13 MB table faults in fresh pages."""
    ascii = host_is_ascii()
    for part in line_slices([text] if isinstance(text, str) else text, _WRITE_SLICE):
        gdb.write(ascii_text(part) if ascii else part)


def context(from_tty: bool = False) -> registry.Context:
    return registry.Context(session.runtime, color=params.color_enabled(from_tty),
                            width=terminal_width(),
                            progress=WalkProgress if stderr_is_terminal() else None,
                            prog_prefix="go ")


class ViewCommand(gdb.Command):
    """`go NAME`: one view of the registry (set as the subclass's `view`)."""

    view: registry.View

    def __init__(self):
        super().__init__(f"go {self.view.name}", gdb.COMMAND_DATA)

    def complete(self, text: str, word: str):
        """Flags after `-`, the fixed words a flag takes, a file after -o, else what the
        view's words are.

        gdb first asks which characters end a word (word is None): the file name
        completer's, which keep `-` and `.` in the word, so that readline shows and
        inserts whole flags (`--json`, not `json`). Candidates are still matched against
        the whole token being typed and returned relative to gdb's word."""
        if word is None:
            return gdb.COMPLETE_FILENAME
        tokens = text.split()
        current = tokens[-1] if tokens and not text.endswith(" ") else ""
        before = tokens[:-1] if current else tokens
        if before and before[-1] == "-o":
            choices = _paths(current)
        elif before and before[-1] in self.view.word_choices:
            choices = self.view.word_choices[before[-1]]
        elif current.startswith("-"):
            p = registry.parser(self.view, "go " + self.view.name)
            choices = sorted({o for a in p._actions for o in a.option_strings})
        elif self.view.completes == registry.COMPLETE_SYMBOL and "." in current:
            choices = _global_variables(current)
        else:
            return _COMPLETERS[self.view.completes]
        cut = len(current) - len(word)
        return [c[cut:] for c in choices if c.startswith(current)]

    def invoke(self, arg: str, from_tty: bool) -> None:
        name = self.view.name
        try:
            emit(registry.run(context(from_tty), [name] + gdb.string_to_argv(arg), raw=arg))
        except GoExtError as e:
            if params.debug():
                traceback.print_exc()
            raise gdb.GdbError(for_gdb(f"go {name}: {e}")) from None
        except gdb.GdbError:
            raise
        except KeyboardInterrupt:
            raise gdb.GdbError(f"go {name}: interrupted") from None
        except Exception as e:  # a bug of ours: one line unless debugging
            if params.debug():
                traceback.print_exc()
            msg = str(e).splitlines()[0] if str(e) else ""
            raise gdb.GdbError(for_gdb(f"go {name}: internal error: {type(e).__name__}: {msg}"
                                       " (`set go debug on` shows the traceback)")) from None


def _paths(current: str) -> list[str]:
    """The files and directories (with a `/`) whose path starts with current."""
    head, base = os.path.split(current)
    where = os.path.expanduser(head) or "."
    try:
        names = sorted(n for n in os.listdir(where) if n.startswith(base))[:200]
    except OSError:
        return []
    return [os.path.join(head, n) + ("/" if os.path.isdir(os.path.join(where, n)) else "")
            for n in names]


def _global_variables(prefix: str) -> list[str]:
    """Package-level variables whose names start with prefix (e.g. main.ca)."""
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


def prefix_doc() -> str:
    """`help go`: every view of the registry, one line each."""
    return "\n".join(["Go runtime views of the program, live or from a core:", ""]
                     + registry.summaries()
                     + ["", "`help go VIEW` shows a view's flags. Errors are one line; "
                        "`set go debug on` shows",
                        "Python tracebacks. `set go color on|off|auto` controls colour."])


class GoPrefix(gdb.Command):
    """Go runtime views (the doc is set from the registry: prefix_doc)."""

    def __init__(self):
        super().__init__("go", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError(f"go: unknown subcommand {arg.split()[0]!r}; see `help go`")
        gdb.execute("help go")


def register() -> list[str]:
    """A `go NAME` command for every view; one that fails to load is reported, the rest
    still load."""
    failed = []
    try:
        from ..views import catalog  # noqa: F401  (registers every view)
    except Exception as e:
        failed.append(f"views: {e}")
    type("GoPrefixCommand", (GoPrefix,), {"__doc__": for_gdb(prefix_doc())})()
    for name, view in registry.VIEWS.items():
        try:
            doc = for_gdb(registry.help_text(view, "go " + name))
            cls = type(f"Go_{name}_Command", (ViewCommand,), {"__doc__": doc, "view": view})
            cls()
        except Exception as e:  # keep the others usable
            failed.append(f"go {name}: {e}")
    return failed
