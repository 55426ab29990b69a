"""Render rich renderables to text, with or without colour."""
from __future__ import annotations

import io
import itertools

from rich.console import Console


def render(*renderables, color: bool = False, width: int = 120) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, width=width,
                      highlight=False, soft_wrap=False, emoji=False)
    for r in renderables:
        console.print(r)
    return "\n".join(line.rstrip() for line in buf.getvalue().split("\n"))


# what a stream that cannot hold them shows instead: the characters our views write
# (and rich's ellipsis), as people wrote them in plain ASCII
_ASCII_FALLBACK = str.maketrans({
    "\u2026": "...", "\u00b5": "u", "\u03bc": "u", "\u2013": "-", "\u2014": "--",
    "\u00d7": "x", "\u2192": "->", "\u2190": "<-", "\u21d2": "=>", "\u2500": "-",
    "\u2502": "|", "\u251c": "|", "\u2514": "`", "\u250c": "+", "\u2510": "+",
    "\u2518": "+", "\u253c": "+", "\u2022": "*", "\u00b7": ".", "\u2265": ">=",
    "\u2264": "<=", "\u2260": "!=", "\u2018": "'", "\u2019": "'", "\u00a0": " "})
# (no stand-in is '"' or '\\': inside a JSON string it would end it; curly double quotes
# come only from the program's data, and are escaped as \u201c, \u201d)
_ASCII_ERRORS = "gdb_go_ext.ascii"


def ascii_text(text: str) -> str:
    """text in ASCII: the characters of _ASCII_FALLBACK as their stand-ins ('\u2026' as
    '...'), any other as a \\uXXXX escape (as JSON writes it, so JSON stays JSON)."""
    if text.isascii():
        return text
    text = text.translate(_ASCII_FALLBACK)
    if text.isascii():
        return text
    return "".join(c if c < "\x80" else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    if n < 0x10000:
        return "\\u%04x" % n
    n -= 0x10000   # a surrogate pair, as JSON spells it
    return "\\u%04x\\u%04x" % (0xD800 + (n >> 10), 0xDC00 + (n & 0x3FF))


def encodes(encoding) -> bool:
    """Whether a stream of this encoding can hold what the views write ('\u2026')."""
    try:
        "\u2026\u00b5".encode(encoding)
        return True
    except (LookupError, UnicodeError, TypeError):
        return False


def locale_encodes() -> bool:
    """Whether the locale's character set (LC_CTYPE: C or POSIX is ASCII) holds what
    the views write. Python's UTF-8 mode writes UTF-8 in a C locale; a terminal set up
    for that locale does not show it."""
    import locale
    try:
        return encodes(locale.nl_langinfo(locale.CODESET) or "ascii")
    except (AttributeError, ValueError):
        return True


def _ascii_errors(e):
    if isinstance(e, UnicodeEncodeError):
        return ascii_text(e.object[e.start:e.end]), e.end
    raise e


def fit_streams_to_locale() -> None:
    """For a command line front door: where the locale or stdout/stderr cannot hold
    what the views write, they are written in ASCII (ascii_text). Files written with
    -o FILE stay UTF-8."""
    import codecs
    import sys
    try:
        codecs.lookup_error(_ASCII_ERRORS)
    except LookupError:
        codecs.register_error(_ASCII_ERRORS, _ascii_errors)
    ascii_locale = not locale_encodes()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or not hasattr(stream, "reconfigure"):
            continue
        if ascii_locale or not encodes(getattr(stream, "encoding", None)):
            try:
                stream.reconfigure(encoding="ascii", errors=_ASCII_ERRORS)
            except (ValueError, OSError):
                pass


def write_file(path: str, text) -> str:
    """Write a view (a string, or a list of pieces of one) to -o FILE; the line to show
    instead. One sentence if it cannot.

    A regular file that exists is written over in place and then cut at the end of
    what was written (also when the writing stops early), which leaves the same bytes
    as truncating it first: rewriting a 1.3 GB JSON dump that way reuses its blocks
    and cached pages, where truncating frees them and ext4 then writes the new ones
    back on close (auto_da_alloc), about a second at 1M goroutines."""
    import os
    import stat
    from ..errors import GoExtError
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        with open(fd, "w", encoding="utf-8") as f:
            try:
                if isinstance(text, str):
                    f.write(text)
                else:
                    f.writelines(text)
            finally:
                if regular:
                    f.truncate()
    except OSError as e:
        raise GoExtError(f"cannot write {path}: {e.strerror or e}") from None
    return f"wrote {path}\n"


def json_text(obj) -> str:
    """A view's JSON: indented while small; compact when large, where json's C encoder
    is about ten times faster (indent forces the Python one). Addresses are written "0x…"."""
    import json
    from .values import json_default
    if isinstance(obj, dict) and len(obj.get("entries", ())) > 1000:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                          default=json_default) + "\n"
    return json.dumps(obj, indent=1, ensure_ascii=False, default=json_default) + "\n"


def line_slices(pieces, limit: int):
    """The text that pieces join to, in slices of at most limit characters that end at
    a line's end (but for a line longer than limit, cut into slices of limit, and the
    text's last line). The whole text is never built. Pieces are joined in blocks of
    about a quarter of limit, so a 200k-piece table costs no Python step per piece."""
    it = iter(pieces)
    batch, size = [], 0
    take = 16   # pieces per block, adapted to their length
    while True:
        block = list(itertools.islice(it, take))
        if not block:
            break
        piece = "".join(block)
        take = max(1, min(take * 4, take * (limit // 4) // max(len(piece), 1)))
        batch.append(piece)
        size += len(piece)
        if size < limit:
            continue
        text = "".join(batch)
        start, n = 0, len(text)
        while n - start >= limit:  # in slices of at most limit, cut at a line's end
            cut = text.rfind("\n", start, start + limit)
            end = cut + 1 if cut >= start else start + limit
            yield text[start:end]
            start = end
        cut = text.rfind("\n", start)
        if cut >= start:
            yield text[start:cut + 1]
            start = cut + 1
        batch, size = ([text[start:]], n - start) if start < n else ([], 0)
    if size:
        yield "".join(batch)


def stderr_is_terminal() -> bool:
    """Whether the process's stderr (fd 2) is a terminal: inside gdb, sys.stderr is
    gdb's own stream object, which never says it is one."""
    import os
    try:
        return os.isatty(2)
    except OSError:
        return False


class WalkProgress:
    """A rich progress bar on stderr (fd 2) for a goroutine walk, shown only once the
    walk has taken a second (and only where the front door says stderr is a terminal,
    see stderr_is_terminal). in_bytes: done and total are bytes (a file read)."""

    DELAY = 1.0

    def __init__(self, what: str = "reading goroutines", in_bytes: bool = False):
        import time
        self._clock = time.monotonic
        self.t0 = self._clock()
        self.what = what
        self.in_bytes = in_bytes
        self._bar = None
        self._task = None

    def __enter__(self):
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if self._clock() - self.t0 < self.DELAY:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, \
                Progress, TextColumn, TimeElapsedColumn
            import sys
            err = sys.__stderr__ if sys.__stderr__ is not None else sys.stderr
            count = DownloadColumn() if self.in_bytes else MofNCompleteColumn()
            self._bar = Progress(TextColumn(self.what), BarColumn(), count,
                                 TimeElapsedColumn(),
                                 console=Console(file=err, force_terminal=True),
                                 transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()
        return False
