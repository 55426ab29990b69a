"""The `delve-bridge` command (also `python -m delve_bridge`).

    delve-bridge [OPTIONS] exec BIN [VIEW ...] [-- ARGS ... [-- VIEW ...]]
    delve-bridge [OPTIONS] attach PID [VIEW ...]
    delve-bridge [OPTIONS] core BIN CORE [VIEW ...]
    delve-bridge [OPTIONS] connect ADDR [VIEW ...]
    delve-bridge [OPTIONS] VIEW ...      (a view that needs no target: trace FILE)

A VIEW is a view of the registry (gdb_go_ext/views) with its own words: the same
flags, output and JSON as gdb's `go VIEW`; `delve-bridge --help` lists them with their
usage, and `... VIEW --help` shows one. Without a VIEW an interactive prompt opens.

The command line is argparse's (build_parser): the OPTIONS (--dlv, --binary, --listen,
--allow-remote, --run, --wait-for, --rpc-memory, --debug) come before the target kind,
which is a subcommand with its own positionals. The VIEW words are checked to name a
view here and read by the view's own parser when it runs. Exit status: 0, 2 for a bad
command line (one line `delve-bridge: ...` on stderr), 1 for any other error, 130 when
interrupted (SIGINT or SIGTERM; the session is torn down first).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback

from gdb_go_ext.errors import GoExtError, UsageError
from gdb_go_ext.views import catalog  # noqa: F401  (registers every view)
from gdb_go_ext.views import registry
from gdb_go_ext.views.console import WalkProgress, fit_streams_to_locale, stderr_is_terminal


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so teardown runs."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _pid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a process id, not {text!r}") from None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes seconds, not {text!r}") from None


# the target kinds: their positionals (dest, metavar, type) and what the help says of them
_KINDS = {
    "exec": ((("program", "BIN", str),), "launch the program BIN (its arguments after --)",
             " [-- ARGS ... [-- VIEW ...]]"),
    "attach": ((("pid", "PID", _pid),),
               "attach to the process PID (detached at the end: it runs on)", ""),
    "core": ((("program", "BIN", str), ("core", "CORE", str)),
             "open the core file CORE of the program BIN", ""),
    "connect": ((("address", "ADDR", str),),
                "a running `dlv --headless` at ADDR (HOST:PORT or unix:PATH)", ""),
}


class _Parser(registry.Parser):
    """The top level: its complaints are one line that points to --help (its usage is
    four lines); the target kinds' parsers put their own one-line usage on theirs."""

    def error(self, message):
        raise UsageError(message)


def build_parser() -> _Parser:
    """The delve-bridge command line: the options, then a target kind (a subcommand)
    with its own positionals, then the VIEW words, which the view's own parser (the
    registry's) reads when it runs."""
    p = _Parser(prog="delve-bridge", allow_abbrev=False,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                usage="\n".join(("%(prog)s " if i == 0 else "       %(prog)s ")
                                 + f"[OPTIONS] {k} "
                                 + " ".join(m for _, m, _ in pos) + " [VIEW ...]" + tail
                                 for i, (k, (pos, _, tail)) in enumerate(_KINDS.items())),
                description="Go runtime views over a headless Delve: the same flags, output "
                            "and JSON as gdb's\n`go VIEW` commands. Without a VIEW an "
                            "interactive prompt opens.\nA view that needs no target runs "
                            "alone, with no dlv: `delve-bridge trace FILE ...`.",
                epilog="\n".join(["views (`help VIEW` at the prompt explains one's flags):"]
                                 + registry.usages()))
    p.add_argument("--dlv", metavar="PATH",
                   help="the dlv to use (default: the newest that supports the target's Go)")
    p.add_argument("--binary", metavar="PATH",
                   help="the program's executable (attach/connect, when it cannot be found)")
    p.add_argument("--listen", metavar="ADDR",
                   help="where dlv listens (default: a Unix socket in a private directory, "
                        "or 127.0.0.1 with a random port); non-loopback needs --allow-remote")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --listen / connect address (warns)")
    p.add_argument("--run", type=_seconds, default=1.0, metavar="SECONDS",
                   help="exec: let the program run this long before the view (default 1)")
    p.add_argument("--wait-for", metavar="TEXT",
                   help="exec: let it run until it prints a line starting with TEXT")
    p.add_argument("--rpc-memory", action="store_true",
                   help="read memory only through dlv's ExamineMemory (by default the stopped "
                        "process's /proc/PID/mem or the core file serve what they can)")
    p.add_argument("--debug", action="store_true",
                   default=bool(os.environ.get("DELVE_BRIDGE_DEBUG")),
                   help="a traceback with an error (also DELVE_BRIDGE_DEBUG=1)")
    kinds = p.add_subparsers(dest="mode", metavar="TARGET", title="target kinds",
                             prog="delve-bridge", parser_class=registry.Parser)
    for kind, (positionals, summary, tail) in _KINDS.items():
        names = " ".join(m for _, m, _ in positionals)
        sub = kinds.add_parser(kind, help=summary, description=summary + ".",
                               usage=f"%(prog)s {names} [VIEW ...]{tail}", allow_abbrev=False)
        for dest, metavar, typ in positionals:
            sub.add_argument(dest, metavar=metavar, type=typ)
        sub.add_argument("view", nargs=argparse.REMAINDER, metavar="VIEW",
                         help="a view and its words (delve-bridge --help lists them)"
                         ).required = False    # not named when the positionals are missing
        sub.set_defaults(kind_parser=sub)
    return p


def parse(argv: list) -> argparse.Namespace:
    """The command line as a Namespace: the options, mode (the target kind) and its
    positionals (program, core, pid, address), args (the program's, exec only) and
    view (the VIEW words, the view's name first). UsageError for a bad line,
    registry.HelpShown for --help."""
    # `--` ends the part argparse reads (its own handling of `--` differs between Python
    # versions): what follows is the program's arguments, then after a second `--` more
    # VIEW words
    argv = list(argv)
    args, more = None, []
    if "--" in argv:
        k = argv.index("--")
        argv, args = argv[:k], argv[k + 1:]
        if "--" in args:
            k = args.index("--")
            args, more = args[:k], args[k + 1:]
    opts = build_parser().parse_args(argv)
    if opts.mode is None:
        raise UsageError("say what to debug: exec BIN, attach PID, core BIN CORE or connect ADDR")
    if opts.view[:1] in (["-h"], ["--help"]):
        opts.kind_parser.print_help()
    if args is not None and opts.mode != "exec":
        raise UsageError("program arguments after -- are for exec only")
    opts.args = args or []
    opts.view = opts.view + more
    if opts.view:
        registry.lookup(opts.view[0])
    return opts


# the options that take a value, for finding the first word after them
_VALUED = {"--dlv", "--binary", "--listen", "--run", "--wait-for"}


def targetless(argv: list):
    """(options, VIEW words) when the first word after the options names a view that
    needs no target (views.registry.View.needs_target), else None."""
    k = 0
    while k < len(argv) and argv[k].startswith("-") and argv[k] != "--":
        k += 2 if argv[k] in _VALUED else 1
    if k < len(argv):
        view = registry.VIEWS.get(argv[k])
        if view is not None and not view.needs_target:
            return argv[:k], argv[k:]
    return None


def open_bridge(opts: argparse.Namespace):
    from .bridge import Bridge
    kw = {"dlv": opts.dlv, "direct_memory": not opts.rpc_memory}
    if opts.listen:
        kw.update(listen=opts.listen, allow_remote=opts.allow_remote)
    if opts.mode == "exec":
        b = Bridge.exec(opts.program, opts.args, **kw)
        try:
            if opts.wait_for:
                if not b.wait_output(opts.wait_for, timeout=max(opts.run, 60.0)):
                    sys.stderr.write(f"delve-bridge: the program did not print {opts.wait_for!r}; "
                                     "showing it as it is\n")
            elif opts.view:
                time.sleep(opts.run)
        except BaseException:
            b.close()
            raise
        return b
    if opts.mode == "attach":
        return Bridge.attach(opts.pid, binary=opts.binary, **kw)
    if opts.mode == "core":
        return Bridge.core(opts.program, opts.core, **kw)
    return Bridge.connect(opts.address, binary=opts.binary, allow_remote=opts.allow_remote)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    fit_streams_to_locale()   # ASCII where the locale or the stream cannot hold '\u2026'
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    b = None
    debug = bool(os.environ.get("DELVE_BRIDGE_DEBUG"))
    try:
        alone = targetless(argv)
        if alone is not None:
            debug = debug or "--debug" in alone[0]
            sys.stdout.write("".join(registry.run_without_target(
                alone[1], progress=WalkProgress if stderr_is_terminal() else None)))
            sys.stdout.flush()
            return 0
        opts = parse(argv)
        debug = opts.debug
        b = open_bridge(opts)
        if opts.view:
            sys.stdout.write(b.view(opts.view))
            sys.stdout.flush()
        else:
            from .repl import run_repl
            run_repl(b)
        return 0
    except registry.HelpShown as h:
        sys.stdout.write(h.text)
        return 0
    except UsageError as e:  # one line; the usage itself is a --help away
        hint = "" if "usage:" in str(e) else " (delve-bridge --help shows the usage)"
        sys.stderr.write(f"delve-bridge: {e}{hint}\n")
        return 2
    except GoExtError as e:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"delve-bridge: {e}\n")
        return 1
    except (KeyboardInterrupt, _Terminated):
        sys.stderr.write("delve-bridge: interrupted; cleaning up\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # a bug of ours: one line unless debugging
        if debug:
            traceback.print_exc()
        msg = str(e).splitlines()[0] if str(e) else ""
        sys.stderr.write(f"delve-bridge: internal error: {type(e).__name__}: {msg} "
                         "(--debug shows the traceback)\n")
        return 1
    finally:
        if b is not None:
            # teardown must finish: a second Ctrl-C or SIGTERM does not cut it short
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                b.close()
            except Exception as e:
                sys.stderr.write(f"delve-bridge: teardown: {e}\n")
            finally:
                signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


if __name__ == "__main__":
    sys.exit(main())
