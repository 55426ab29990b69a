"""The interactive prompt of delve-bridge (prompt-toolkit): history, completion of views,
flags, goroutine ids and package-level variables."""
from __future__ import annotations

import os
import shlex
import sys

from gdb_go_ext.errors import GoExtError, UsageError

from .bridge import PARSERS, VIEWS

EXTRA = ("continue", "halt", "help", "quit")


def _flags(view: str) -> list:
    p = PARSERS.get(view)
    if p is None:
        return []
    return sorted({s for a in p._actions for s in a.option_strings})


def make_completer(bridge):
    from prompt_toolkit.completion import Completer, Completion

    class _C(Completer):
        def __init__(self):
            self._ids = None
            self._vars = None

        def ids(self):
            if self._ids is None:
                try:
                    self._ids = [str(g.id) for g in bridge.goroutines()]
                except GoExtError:
                    self._ids = []
            return self._ids

        def vars(self):
            if self._vars is None:
                try:
                    self._vars = bridge.package_variables("main")
                except Exception:  # completion must never break the prompt
                    self._vars = []
            return self._vars

        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            words = text.split()
            word = "" if text.endswith(" ") or not words else words[-1]
            if len(words) == 0 or (len(words) == 1 and not text.endswith(" ")):
                pool = list(VIEWS) + list(EXTRA)
            elif word.startswith("-"):
                pool = _flags(words[0])
            elif words[0] == "goroutine" and (len(words) == 1 or (len(words) == 2 and word)):
                pool = self.ids()
            elif words[0] == "map":
                pool = self.vars()
            else:
                pool = []
            for c in pool:
                if c.startswith(word):
                    yield Completion(c, start_position=-len(word))

    return _C()


def run_repl(bridge) -> None:
    interactive = sys.stdin.isatty()
    session = None
    if interactive:
        try:
            from prompt_toolkit import PromptSession
            from prompt_toolkit.history import FileHistory
            hist = os.path.join(os.environ.get("GDB_GO_EXT_HOME") or os.path.expanduser(
                "~/.local/share/gdb_go_ext"), "delve-bridge-history")
            os.makedirs(os.path.dirname(hist), exist_ok=True)
            session = PromptSession(history=FileHistory(hist), completer=make_completer(bridge),
                                    complete_while_typing=False)
        except (ImportError, OSError):
            session = None
        sys.stdout.write(f"delve-bridge: {bridge.mode} of {bridge.target.executable()}; "
                         f"views: {', '.join(VIEWS)}; `help`, `quit`\n")
    while True:
        try:
            if session is not None:
                line = session.prompt("(delve-bridge) ")
            else:
                if interactive:
                    sys.stdout.write("(delve-bridge) ")
                    sys.stdout.flush()
                line = sys.stdin.readline()
                if not line:
                    return
        except EOFError:
            return
        except KeyboardInterrupt:
            continue
        line = line.strip()
        if not line:
            continue
        try:
            words = shlex.split(line)
        except ValueError as e:
            sys.stdout.write(f"error: {e}\n")
            continue
        cmd = words[0]
        if cmd in ("quit", "exit", "q"):
            return
        try:
            if cmd == "help":
                for v in VIEWS:
                    sys.stdout.write(PARSERS[v].format_usage())
                sys.stdout.write("continue | halt | quit\n")
            elif cmd == "continue":
                bridge.cont()
            elif cmd == "halt":
                bridge.halt()
            else:
                sys.stdout.write(bridge.view(words))
        except UsageError as e:
            sys.stdout.write(f"error: {e}\n")
        except GoExtError as e:
            sys.stdout.write(f"error: {e}\n")
        except KeyboardInterrupt:
            sys.stdout.write("interrupted\n")
        sys.stdout.flush()
