"""The interactive prompt of delve-bridge (prompt-toolkit).

    (delve-bridge) goroutines --limit 3
    (delve-bridge) map main.<Tab>

- the views print exactly what `delve-bridge ... VIEW` (and gdb's `go VIEW`) prints, with ANSI
  colour when stdout is a terminal and NO_COLOR is unset;
- history in $XDG_STATE_HOME/gdb_go_ext/bridge_history (~/.local/state/... by default);
- the commands are the registry's views (gdb_go_ext/views/registry.py) and a few of its
  own (continue, halt, help, quit); `help` and Tab are built from the registry too: a view's
  flags from its parser, the values a flag takes from View.word_choices (and a path after
  -o), and its positional words from View.completes: goroutine ids (from the bridge's last
  walk) or package-level variable names (from the DWARF index the bridge already has);
- a bad line gives one sentence and the prompt comes back; Ctrl-C at the prompt clears the
  line; `quit`, `exit` or Ctrl-D leave, and cli.main tears the session down (an attached
  target is detached and keeps running).

Without a terminal on stdin (a pipe, a script) it reads plain lines with no prompt.
"""
from __future__ import annotations

import os
import shlex
import shutil
import sys
from typing import Optional

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from gdb_go_ext.errors import GoExtError, UsageError
from gdb_go_ext.views import registry

from .rpc import ConnectionLost

QUIT = ("quit", "exit", "q")
EXTRA = ("continue", "halt", "help", "quit", "exit")
_EXTRA_HELP = {
    "continue": "let the target run (the next view halts it again)",
    "halt": "stop a running target",
    "help": "this list; `help VIEW` for a view's flags",
    "quit": "leave (also exit, Ctrl-D); an attached target keeps running",
}


def history_path() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "gdb_go_ext", "bridge_history")


def commands() -> tuple:
    return tuple(registry.VIEWS) + EXTRA


def _parser(view: registry.View):
    return registry.parser(view, view.name)     # as Bridge.view names it


def _options(view: registry.View) -> dict:
    """option string -> argparse action, for one view."""
    return {s: a for a in _parser(view)._actions for s in a.option_strings}


def _arity(action) -> int:
    n = action.nargs
    if n is None or n in ("?", "+", "*"):
        return 1
    return int(n)


def _parse_line(view: registry.View, words: list):
    """For the words before the one being completed: ('value', action, index) when that word
    is a flag's value, else ('arg', number of positionals already given)."""
    opts = _options(view)
    pending, action, npos = 0, None, 0
    for w in words[1:]:
        if pending:
            pending -= 1
        elif w in opts:
            action = opts[w]
            pending = _arity(action)
        else:
            npos += 1
    if pending:
        return ("value", action, _arity(action) - pending)
    return ("arg", npos)


class BridgeCompleter(Completer):
    """Tab completion over a Bridge: commands, flags, flag values, goroutine ids and
    package-level variables."""

    def __init__(self, bridge):
        self.bridge = bridge
        self._vars: dict = {}
        self._paths = PathCompleter(expanduser=True)

    # --- the pools
    def goroutine_ids(self) -> list:
        """(id, status) from the bridge's last walk; one cheap walk (no stacks) when there
        was none yet and the target is stopped (never halts a running one for a Tab)."""
        b = self.bridge
        gs = getattr(b, "last_goroutines", None)
        if gs is None and getattr(b, "_running_id", None) is None and not b.exited:
            try:
                gs = b.goroutines()
            except Exception:  # completion must never break the prompt
                gs = None
        return [(str(g.id), g.wait_reason or g.status) for g in sorted(gs or (), key=lambda g: g.id)]

    def variables(self, word: str) -> list:
        pkg = word.rpartition(".")[0] or "main"
        if pkg not in self._vars:
            try:
                self._vars[pkg] = list(self.bridge.package_variables(pkg))
            except Exception:
                self._vars[pkg] = []
        return self._vars[pkg]

    # --- prompt_toolkit
    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        words = text.split()
        word = "" if not words or text[-1:].isspace() else words.pop()
        for c, meta in self.candidates(words, word):
            if c.startswith(word):
                yield Completion(c, start_position=-len(word), display_meta=meta)
        view = registry.VIEWS.get(words[0]) if words else None
        if view is not None:
            st = _parse_line(view, words)
            if st[0] == "value" and st[1].dest == "output":
                yield from self._paths.get_completions(Document(word, len(word)), complete_event)

    def candidates(self, words: list, word: str):
        """(text, meta) pairs for the word after `words` (filtered by the caller)."""
        if not words or words == ["help"]:
            for c in (registry.VIEWS if words else commands()):
                yield c, _describe(c)
            return
        view = registry.VIEWS.get(words[0])
        if view is None:
            return
        st = _parse_line(view, words)
        if st[0] == "value":       # the first word a flag takes may be one of a fixed set
            action, index = st[1], st[2]
            fixed = [view.word_choices[o] for o in action.option_strings if o in view.word_choices]
            yield from ((c, "") for c in (fixed[0] if fixed and index == 0 else ()))
            return
        pool = [] if word.startswith("-") else self.positionals(view, st[1], word)
        if pool:
            yield from pool
            return
        opts = _options(view)
        for f in sorted(opts):
            yield f, (opts[f].help or "").split(";")[0][:40]

    def positionals(self, view: registry.View, npos: int, word: str) -> list:
        """(text, meta) for a view's positional word number npos, from what it completes."""
        if npos == 0 and view.completes == registry.COMPLETE_GOROUTINE:
            return self.goroutine_ids()
        if npos == 0 and view.completes == registry.COMPLETE_SYMBOL:
            return [(v, "") for v in self.variables(word)]
        if npos == 1 and view.tail_command:
            return [("bt", "backtrace")]    # the one command the bridge runs in its place
        return []


def _describe(cmd: str) -> str:
    view = registry.VIEWS.get(cmd)
    return view.summary if view is not None else _EXTRA_HELP.get(cmd, "")


def help_text(topic: Optional[str] = None) -> str:
    if topic:
        if topic in registry.VIEWS:
            return _parser(registry.VIEWS[topic]).format_help()
        if topic in _EXTRA_HELP or topic in QUIT:
            return f"{topic}: {_EXTRA_HELP.get(topic, _EXTRA_HELP['quit'])}\n"
        raise UsageError(f"no help on {topic!r}; one of {', '.join(commands())}")
    lines = ["views (the same flags and output as gdb's `go VIEW`):"] + registry.usages()
    lines.append("commands:")
    for c in ("continue", "halt", "help", "quit"):
        lines.append(f"  {c:<9} {_EXTRA_HELP[c]}")
    lines.append("Tab completes commands, flags, goroutine ids and package-level variables.")
    return "\n".join(lines) + "\n"


class Repl:
    """One prompt over one Bridge. `out` gets the views' text; `err` the one-line errors.
    `input`/`output` are prompt_toolkit's (tests pass create_pipe_input() and DummyOutput());
    with neither and no terminal on stdin, plain lines are read from stdin."""

    def __init__(self, bridge, out=None, err=None, input=None, output=None,
                 history: Optional[str] = None, color: Optional[bool] = None):
        self.bridge = bridge
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = color if color is not None else \
            _isatty(self.out) and not os.environ.get("NO_COLOR")
        self.interactive = input is not None or sys.stdin.isatty()
        self.session = None
        if self.interactive:
            self.session = self._session(input, output, history)

    def _session(self, input, output, history):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.styles import Style
        path = history or history_path()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "ab"):
                pass
            hist = FileHistory(path)
        except OSError as e:
            self.error(f"history is not kept: cannot write {path} ({e.strerror or e})", warn=True)
            hist = InMemoryHistory()
        self.history_file = path if isinstance(hist, FileHistory) else None
        return PromptSession(history=hist, completer=BridgeCompleter(self.bridge),
                             complete_while_typing=False, auto_suggest=AutoSuggestFromHistory(),
                             input=input, output=output,
                             style=Style.from_dict({"prompt": "ansicyan bold"}))

    # --- output
    def _console(self, stream):
        from rich.console import Console
        tty = _isatty(stream)
        return Console(file=stream, highlight=False, soft_wrap=True,
                       no_color=bool(os.environ.get("NO_COLOR")) or not tty,
                       force_terminal=tty, color_system="auto" if tty else None)

    def error(self, msg: str, warn: bool = False) -> None:
        from rich.text import Text
        msg = " ".join(str(msg).split("\n")[:1]) or "failed"
        label = "warning" if warn else "error"
        self._console(self.err).print(Text.assemble((label + ":", "bold yellow" if warn else "bold red"),
                                                    " ", msg))
        self.err.flush()

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def banner(self) -> None:
        from rich.text import Text
        b = self.bridge
        what = f"process {b.pid}" if b.mode in ("attach", "exec") and b.pid else b.mode
        self._console(self.out).print(Text.assemble(
            ("delve-bridge", "bold"), f": {b.mode} {what}, {b.target.executable()}\n",
            ("views: ", "dim"), ", ".join(registry.VIEWS), ("; help, quit; Tab completes", "dim")))
        self.out.flush()

    # --- the loop
    def read(self) -> Optional[str]:
        """One line; None at the end (Ctrl-D, EOF). Ctrl-C clears the line: ''."""
        if self.session is not None:
            from prompt_toolkit.formatted_text import FormattedText
            try:
                return self.session.prompt(FormattedText([("class:prompt", "(delve-bridge) ")]))
            except EOFError:
                return None
            except KeyboardInterrupt:
                return ""
        line = sys.stdin.readline()
        return line if line else None

    def run(self) -> None:
        if self.interactive:
            self.banner()
        while True:
            line = self.read()
            if line is None:
                return
            if not self.do(line):
                return

    def do(self, line: str) -> bool:
        """Run one line; False when it asks to leave."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        try:
            words = shlex.split(line)
        except ValueError as e:
            self.error(f"cannot split the line: {str(e).lower()}")
            return True
        cmd = words[0]
        if cmd in QUIT:
            return False
        try:
            if cmd == "help":
                self.write(help_text(words[1] if len(words) > 1 else None))
            elif cmd in ("continue", "halt"):
                if len(words) > 1:
                    raise UsageError(f"{cmd} takes no arguments")
                self.write((self._continue() if cmd == "continue" else self._halt()) + "\n")
            elif cmd in registry.VIEWS:     # --help too: the registry gives the view's help
                self.write(self.bridge.view(words, color=self.color, width=self._width()))
            else:
                raise UsageError(f"unknown command {cmd!r}; one of {', '.join(commands())}")
        except ConnectionLost:
            raise                      # dlv is gone: cli.main says so and tears down
        except GoExtError as e:
            self.error(str(e))
        except KeyboardInterrupt:
            self.error("interrupted")
        except Exception as e:  # a bug of ours: one line, and the prompt comes back
            first = str(e).splitlines()[0] if str(e) else ""
            self.error(f"internal error: {type(e).__name__}: {first}")
        return True

    def _continue(self) -> str:
        """Let the target run; what happened, in a line."""
        b = self.bridge
        if b.mode == "core":
            return "a core file does not run"
        if b.exited:
            return "the program has exited"
        if getattr(b, "_running_id", None) is not None:
            return "already running"
        b.cont()
        return "running (`halt` stops it; a view halts it too)"

    def _halt(self) -> str:
        """Stop the target; where it stopped, in a line."""
        b = self.bridge
        if b.mode == "core":
            return "stopped (a core file): " + where(b)
        running = getattr(b, "_running_id", None) is not None or bool(_state(b).get("Running"))
        b.halt()
        if b.exited:
            return "the program has exited"
        return ("stopped at " if running else "already stopped at ") + where(b)

    def _width(self) -> int:
        if _isatty(self.out):
            return shutil.get_terminal_size((120, 40)).columns
        return 250


def _state(bridge) -> dict:
    try:
        return bridge.client.call("State", {"NonBlocking": True}, timeout=10).get("State") or {}
    except Exception:  # a line of the REPL must not fail for want of a detail
        return {}


def where(bridge) -> str:
    """The stop as dlv's State gives it: function file:line (thread, goroutine)."""
    st = _state(bridge)
    th = st.get("currentThread") or {}
    g = th.get("goroutineID") or (st.get("selectedGoroutine") or {}).get("id")
    fn = (th.get("function") or {}).get("name") or (f"{th['pc']:#x}" if th.get("pc") else "?")
    loc = f" {os.path.basename(th['file'])}:{th.get('line')}" if th.get("file") else ""
    who = ", ".join(x for x in (f"thread {th['id']}" if th.get("id") else "",
                                f"goroutine {g}" if g else "") if x)
    return fn + loc + (f" ({who})" if who else "")


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_repl(bridge, **kw) -> None:
    """The prompt until quit/exit/Ctrl-D (teardown is the caller's: cli.main closes the bridge)."""
    Repl(bridge, **kw).run()
