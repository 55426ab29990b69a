"""The `gdb-go` command (also `python -m gdb_go`): the extension's views over many cores,
gdb run in batch for you.

    gdb-go dump BINARY CORE... [--format text|json|pprof|stacks|heap|retained] [-o DIR] [-j N]
    gdb-go diff BINARY OLDCORE NEWCORE [--similar] [--json] [--min N] [-o FILE]
    gdb-go trace FILE [--goroutine ID] [--p] [--window T0..T1] [--json] [-o FILE]
    gdb-go mapwatch PID EXPR [--found] [--seconds S] [--json] [-o FILE]   (eBPF, no gdb:
        gdb_go/mapwatch.py)
    gdb-go probe-sched PID [--seconds S] [--json] [-o FILE]   (eBPF, no gdb:
        gdb_go/probesched.py)

writes one file per core into DIR (text: `go dump`; json: `go goroutines --json -t 64`;
pprof: `go pprof`; stacks: `go stacks --json`; heap: `go heap --pprof`; retained:
`go stacks --retained --pprof`), with a progress bar across the cores on
a terminal, then a summary: per core, its goroutines, its biggest buckets, and its error.
A core that cannot be read (truncated, not a core, a core of another build) is reported
on its line and the others go on. `diff` is `go stacks --diff` across two cores: the
old core's `go stacks --json`, then its diff on the new core. Exit status: 0 when every core was written, 1 when
any failed, 2 for a bad command line, 130 when interrupted. Errors are one line
(`gdb-go: ...`); --debug shows the traceback of an unexpected one.

gdb is $GDB (or --gdb), the extension the one ./install.sh installed under
$GDB_GO_EXT_HOME (default ~/.local/share/gdb_go_ext).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback

from gdb_go_ext.views.console import fit_streams_to_locale
from gdb_go.run import FORMATS, Batch, BatchError, CoreResult, check_setup, gdb_script_dir

PROG = "gdb-go"
TOP_BUCKETS = 3
SNAPSHOT_CMD = "go stacks --json -t 64"   # OLDCORE's side of `diff`


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of gdbs at once, not {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("takes at least 1")
    return n


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes seconds, not {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("takes a positive number of seconds")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2
        self.exit(2, f"{PROG}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="The gdb_go_ext views over many cores, gdb run in batch.")
    p.add_argument("--gdb", default=os.environ.get("GDB", "gdb"),
                   help="the gdb to run (default: $GDB or gdb on PATH)")
    p.add_argument("--debug", action="store_true", help="tracebacks for unexpected errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    d = sub.add_parser("dump", help="write one file per core and a summary",
                       description="Run gdb in batch over each CORE of BINARY and write one "
                       "file per core into DIR: text (go dump), json (go goroutines --json "
                       "-t 64), pprof (go pprof), stacks (go stacks --json), heap (go heap "
                       "--pprof) or retained (go stacks --retained --pprof). Then a "
                       "summary: goroutines, the biggest buckets and errors, per core.")
    d.add_argument("binary", metavar="BINARY", help="the program the cores are of")
    d.add_argument("cores", metavar="CORE", nargs="+", help="core files")
    d.add_argument("--format", "-f", choices=sorted(FORMATS), default="text",
                   help="what to write per core (default text)")
    d.add_argument("-o", dest="out_dir", metavar="DIR", default=".",
                   help="the folder for the files (default: the current one; made if missing)")
    d.add_argument("-j", dest="jobs", type=_jobs, default=1, metavar="N",
                   help="run N gdbs at once (default 1)")
    d.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="give up on a core after this long")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    x = sub.add_parser("diff", help="go stacks --diff across two cores",
                       description="What grew between two cores of BINARY: `go stacks --json` "
                       "on OLDCORE, then `go stacks --diff` of it on NEWCORE (new, grown, "
                       "shrunk and vanished buckets, and a total).")
    x.add_argument("binary", metavar="BINARY", help="the program the cores are of")
    x.add_argument("old", metavar="OLDCORE", help="the earlier core")
    x.add_argument("new", metavar="NEWCORE", help="the later core")
    x.add_argument("--similar", action="store_true", help="match buckets by functions only")
    x.add_argument("--json", action="store_true", help="the diff's JSON (docs/json.md)")
    x.add_argument("--min", type=int, default=None, metavar="N",
                   help="hide buckets under N goroutines then and now")
    x.add_argument("-o", dest="output", metavar="FILE", help="write the diff to FILE")
    x.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="give up on a core after this long")
    t = sub.add_parser("trace", help="go trace: an execution trace per goroutine or P (no gdb)",
                       description="`go trace` on an execution trace file, run here without "
                       "gdb (the words are the view's: see `gdb-go trace --help`).",
                       add_help=False)
    t.add_argument("words", nargs=argparse.REMAINDER, metavar="FILE ...")
    from gdb_go import mapwatch   # eBPF: `mapwatch PID EXPR`
    mapwatch.add_parser(sub)
    from gdb_go import probesched   # eBPF: `probe-sched PID`
    probesched.add_parser(sub)
    return p


def cmd_trace(args) -> int:
    """The registry's `trace` view, run in this process: it needs no target."""
    from gdb_go_ext.errors import GoExtError
    from gdb_go_ext.views import registry, trace  # noqa: F401  (registers only `trace`:
    # every view's imports, numpy and protobuf among them, would be half a second)

    from gdb_go.run import partial_name, remove_quietly
    words = list(args.words)
    # -o FILE: the view writes a partial file beside FILE, renamed over it once written,
    # so that a failed run never cuts an earlier good output
    i = next((k for k, w in enumerate(words[:-1]) if w == "-o"), None)
    final = part = None
    if i is not None and words[i + 1] != "-" and not os.path.isdir(words[i + 1]):
        final = words[i + 1]
        part = words[i + 1] = partial_name(final)
    try:
        from gdb_go_ext.views.console import WalkProgress, stderr_is_terminal
        out = registry.run_without_target(
            ["trace"] + words, prog_prefix=f"{PROG} ",
            progress=WalkProgress if stderr_is_terminal() else None)
        if part is not None and os.path.exists(part):
            try:
                os.replace(part, final)
            except OSError as e:
                raise BatchError(f"cannot write {final}: {e.strerror or e}") from None
            out = "".join(out).replace(part, final)
    except GoExtError as e:
        if args.debug:
            traceback.print_exc()
        raise BatchError(str(e)) from None
    finally:
        if part is not None:
            remove_quietly(part)
    sys.stdout.write("".join(out))
    return 0


def _where(bucket: dict) -> str:
    """A bucket's place: its first frame outside the runtime (else its top frame)."""
    stack = bucket.get("stack") or []
    for f in stack:
        if not f.get("function", "").startswith("runtime."):
            return f["function"]
    return stack[0]["function"] if stack else "?"


def _top(r: CoreResult) -> str:
    parts = []
    for b in r.buckets[:TOP_BUCKETS]:
        why = b.get("wait_reason") or b.get("status") or ""
        parts.append(f"{b.get('count')}× {_where(b)}" + (f" [{why}]" if why else ""))
    return "; ".join(parts)


def summary_rows(results: list[CoreResult]) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        if r.ok:
            note = "; ".join(r.warnings)
            rows.append((r.core, "ok", "-" if r.total is None else str(r.total), _top(r),
                         r.output or "", ("warning: " + note) if note else ""))
        else:
            rows.append((r.core, "error", "-", "", "", r.error))
    return rows


HEAD = ("core", "status", "goroutines", "top buckets", "file", "error")


def print_summary(results, out, tty: bool):
    rows = summary_rows(results)
    failed = sum(1 for r in results if not r.ok)
    tail = f"{len(results) - failed} of {len(results)} cores written" + (
        f", {failed} failed" if failed else "")
    if tty:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
        t = Table(show_lines=False)
        for h in HEAD:
            t.add_column(h, overflow="fold")
        for row in rows:
            style = None if row[1] == "ok" else "red"
            cells = list(row)
            cells[3] = cells[3].replace("; ", "\n")   # a bucket a line
            t.add_row(*(Text(c) for c in cells), style=style)
        c = Console(file=out)
        c.print(t)
        c.print(tail)
        return
    widths = [max(len(r[i]) for r in rows + [HEAD]) for i in range(len(HEAD) - 1)]
    for row in [HEAD] + rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] + "\n")
    out.write(tail + "\n")


def _progress(total: int):
    """A rich progress bar on stderr (a terminal only), or None."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def cmd_dump(args) -> int:
    if not os.path.isfile(args.binary):
        raise BatchError(f"{args.binary}: no such file")
    gdb = check_setup(args.gdb, gdb_script_dir())
    try:
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as e:
        raise BatchError(f"cannot make {args.out_dir}: {e.strerror or e}") from None
    batch = Batch(os.path.abspath(args.binary), args.format, os.path.abspath(args.out_dir),
                  gdb, gdb_script_dir(), timeout=args.timeout, debug=args.debug)
    cores = [os.path.abspath(c) for c in args.cores]
    bar = None if args.quiet else _progress(len(cores))
    if bar is None:
        results = batch.run(cores, args.jobs)
    else:
        with bar:
            task = bar.add_task(f"{args.format} of {len(cores)} cores", total=len(cores))

            def done(r: CoreResult):
                bar.advance(task)
                if not r.ok:
                    bar.console.print(f"{os.path.basename(r.core)}: {r.error}", style="red",
                                      markup=False, highlight=False)
            results = batch.run(cores, args.jobs, on_done=done)
    # the summary names each core as it was given
    for r, given in zip(results, args.cores):
        r.core = given
        if r.output:
            r.output = os.path.relpath(r.output) if not os.path.isabs(args.out_dir) else r.output
    print_summary(results, sys.stdout, sys.stdout.isatty())
    return 0 if all(r.ok for r in results) else 1


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt()


def cmd_diff(args) -> int:
    import tempfile
    from gdb_go.run import argv_quote, write_replacing
    if not os.path.isfile(args.binary):
        raise BatchError(f"{args.binary}: no such file")
    gdb = check_setup(args.gdb, gdb_script_dir())
    batch = Batch(os.path.abspath(args.binary), "stacks", None, gdb, gdb_script_dir(),
                  timeout=args.timeout, debug=args.debug)
    with tempfile.TemporaryDirectory(prefix="gdb-go-diff-") as tmp:
        old = os.path.join(tmp, "old.stacks.json")
        err, _ = batch.gdb_run(os.path.abspath(args.old),
                               [["old", f"{SNAPSHOT_CMD} -o {argv_quote(old)}"]], tmp)
        if err:
            raise BatchError(f"{args.old}: {err}")
        out = os.path.join(tmp, "diff.out")
        cmd = f"go stacks --diff {argv_quote(old)} -o {argv_quote(out)}"
        cmd += " --similar" * args.similar + " --json" * args.json
        if args.min is not None:
            cmd += f" --min {args.min}"
        err, _ = batch.gdb_run(os.path.abspath(args.new), [["diff", cmd]], tmp)
        if err:
            raise BatchError(f"{args.new}: {err}")
        with open(out) as f:
            text = f.read()
        # OLD is our temporary snapshot: name the core it was taken of
        name = json.dumps(args.old)[1:-1] if args.json else args.old
        text = text.replace(old, name)
        if not args.output:
            sys.stdout.write(text)
            return 0
        try:
            write_replacing(args.output, text)
        except OSError as e:
            raise BatchError(f"cannot write {args.output}: {e.strerror or e}") from None
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    fit_streams_to_locale()   # ASCII where the locale or the stream cannot hold '\u2026'
    k = 1 if argv[:1] == ["--debug"] else 0
    if argv[k:k + 1] == ["trace"]:
        # the view's own words, --help included, go to the view's parser
        args = argparse.Namespace(command="trace", debug=k == 1, words=argv[k + 1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)   # the gdbs are killed on the way out
    except ValueError:  # not the main thread
        pass
    try:
        if args.command == "dump":
            return cmd_dump(args)
        if args.command == "diff":
            return cmd_diff(args)
        if args.command == "trace":
            return cmd_trace(args)
        if args.command == "mapwatch":
            from gdb_go.mapwatch import cmd_mapwatch
            return cmd_mapwatch(args)
        if args.command == "probe-sched":
            from gdb_go.mapwatch import cmd_mapwatch
            from gdb_go.probesched import run
            return cmd_mapwatch(args, run=run)
        raise BatchError(f"unknown command {args.command}")
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BatchError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 1
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001  one line unless --debug
        if args.debug:
            traceback.print_exc()
        else:
            first = (str(e).strip().splitlines() or [""])[0]
            sys.stderr.write(f"{PROG}: {type(e).__name__}: {first} (--debug for the traceback)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
