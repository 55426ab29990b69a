"""`set go ...` / `show go ...` settings, as real gdb parameters."""
from __future__ import annotations

import os

import gdb


class _Prefix(gdb.Command):
    def __init__(self, name: str):
        self._name = name
        super().__init__(name, gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)

    def invoke(self, arg, from_tty):
        gdb.execute("help " + self._name)


class SetGo(_Prefix):
    """Settings of the Go extension (colour, debug)."""

    def __init__(self):
        super().__init__("set go")


class ShowGo(_Prefix):
    """Show the settings of the Go extension."""

    def __init__(self):
        super().__init__("show go")


class ColorParam(gdb.Parameter):
    """Colour in go command output: on, off or auto.

    auto follows gdb's own styling: colour where gdb styles its own output (`show style
    enabled`, which batch mode and TERM=dumb turn off) and gdb's output is a terminal;
    none when NO_COLOR is set, nor for a command run from a script or
    gdb.execute(..., to_string=True)."""

    set_doc = "Set colour in go command output."
    show_doc = "Show colour in go command output."

    def __init__(self):
        super().__init__("go color", gdb.COMMAND_DATA, gdb.PARAM_AUTO_BOOLEAN)
        self.value = None

    def get_show_string(self, svalue):
        return f"Colour in go command output is {svalue}."

    def get_set_string(self):
        return ""


class DebugParam(gdb.Parameter):
    """Show Python tracebacks of go command errors (for reporting bugs)."""

    set_doc = "Set whether go command errors show a Python traceback."
    show_doc = "Show whether go command errors show a Python traceback."

    def __init__(self):
        super().__init__("go debug", gdb.COMMAND_DATA, gdb.PARAM_BOOLEAN)
        self.value = False

    def get_show_string(self, svalue):
        return f"Tracebacks for go command errors are {svalue}."

    def get_set_string(self):
        return ""


_color: ColorParam | None = None
_debug: DebugParam | None = None


def register() -> None:
    global _color, _debug
    SetGo()
    ShowGo()
    _color = ColorParam()
    _debug = DebugParam()


def debug() -> bool:
    return bool(_debug is not None and _debug.value)


def color_enabled(to_terminal: bool = True) -> bool:
    """Whether output should be coloured, per `set go color` and gdb's own styling.
    to_terminal: the command was typed at gdb's terminal (from_tty). gdb's own stdout
    is fd 1: sys.stdout inside gdb is gdb's stream object, which never says it is a
    terminal."""
    choice = _color.value if _color is not None else None
    if choice is not None:
        return bool(choice)
    if os.environ.get("NO_COLOR"):
        return False
    try:
        if not gdb.parameter("style enabled"):
            return False
    except (gdb.error, RuntimeError):
        return False
    try:
        return to_terminal and os.isatty(1)
    except OSError:
        return False
