"""Entry point of `source gdb_go_ext`: registers everything once, then says what loaded."""
from __future__ import annotations

import gdb

from .. import __version__
from ..errors import GoExtError

_loaded = False
_failed: list[str] = []


def load() -> None:
    global _loaded, _failed
    if not _loaded:
        from . import commands, params, session
        params.register()
        _failed = commands.register()
        from . import printers; printers.register()  # noqa: E702
        session.connect_events()
        _loaded = True
    from .commands import for_gdb
    gdb.write(for_gdb(status_line()) + "\n")
    for f in _failed:
        gdb.write(for_gdb(f"gdb_go_ext: could not load {f}") + "\n")


def status_line() -> str:
    from . import session
    line = f"gdb_go_ext {__version__} loaded"
    if not gdb.objfiles():
        return line + " (no program yet; `go version` once one is loaded)"
    try:
        rt = session.runtime()
        return line + f"; target built by {rt.layout.go_version}"
    except GoExtError as e:
        return line + f"; {e}"
    except gdb.error as e:
        return line + f"; {str(e).splitlines()[0]}"
