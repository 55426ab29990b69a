"""The `delve-bridge` command (also `python -m delve_bridge`).

    delve-bridge [OPTIONS] exec BIN [VIEW ...] [-- ARGS ... [-- VIEW ...]]
    delve-bridge [OPTIONS] attach PID [VIEW ...]
    delve-bridge [OPTIONS] core BIN CORE [VIEW ...]
    delve-bridge [OPTIONS] connect ADDR [VIEW ...]

VIEW is one of
    goroutines [-t DEPTH] [-s STATUS] [-with KIND SUBSTR] [-group KIND] [-l] [--json] ...
    goroutine ID [bt] [--json]
    stacks [--min N] [--similar] [-t DEPTH] [--json]
    map EXPR [--layout] [--key K] [--limit N] [--json]
    mapwatch EXPR [--max-hits N] [--timeout S] [--writes] [--json]   (live only)
    version [--json]
with the same flags, output and JSON as the gdb `go ...` commands. Without a
VIEW an interactive prompt opens.

OPTIONS
    --dlv PATH          the dlv to use (default: the newest that supports the target's Go)
    --binary PATH       the program's executable (attach/connect, when it cannot be found)
    --listen ADDR       where dlv listens (default: a Unix socket in a private directory,
                        or 127.0.0.1 with a random port); non-loopback needs --allow-remote
    --allow-remote      allow a non-loopback --listen / connect address (warns)
    --run SECONDS       exec: let the program run this long before the view (default 1)
    --wait-for TEXT     exec: let it run until it prints a line starting with TEXT
    --rpc-memory        read memory only through dlv's ExamineMemory (by default the
                        stopped process's /proc/PID/mem or the core file serve what they
                        can, as in the gdb backend; everything else is ExamineMemory)
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback

from gdb_go_ext.errors import GoExtError, UsageError


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so teardown runs."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def parse(argv: list) -> dict:
    opts = {"dlv": None, "binary": None, "listen": None, "allow_remote": False, "run": 1.0,
            "wait_for": None, "rpc_memory": False, "debug": bool(os.environ.get("DELVE_BRIDGE_DEBUG"))}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        if a in ("-h", "--help"):
            opts["help"] = True
            return opts
        if a in ("--allow-remote", "--debug", "--rpc-memory"):
            opts[a[2:].replace("-", "_")] = True
            i += 1
            continue
        if a in ("--dlv", "--binary", "--listen", "--run", "--wait-for"):
            if i + 1 >= len(argv):
                raise UsageError(f"{a} needs a value")
            v = argv[i + 1]
            if a == "--run":
                try:
                    v = float(v)
                except ValueError:
                    raise UsageError(f"--run takes seconds, not {v!r}") from None
            opts[a[2:].replace("-", "_")] = v
            i += 2
            continue
        raise UsageError(f"unknown option {a}")
    rest = argv[i:]
    if not rest:
        raise UsageError("say what to debug: exec BIN, attach PID, core BIN CORE or connect ADDR")
    mode = rest[0]
    need = {"exec": 1, "attach": 1, "core": 2, "connect": 1}.get(mode)
    if need is None:
        raise UsageError(f"unknown target kind {mode!r}; use exec, attach, core or connect")
    if len(rest) < 1 + need:
        raise UsageError(f"{mode} needs {'BIN CORE' if need == 2 else {'exec': 'BIN', 'attach': 'PID', 'connect': 'ADDR'}[mode]}")
    opts["mode"] = mode
    opts["target"] = rest[1:1 + need]
    tail = rest[1 + need:]
    args: list = []
    if "--" in tail:
        k = tail.index("--")
        view, after = tail[:k], tail[k + 1:]
        if mode != "exec":
            raise UsageError("program arguments after -- are for exec only")
        if "--" in after:
            k2 = after.index("--")
            args, view2 = after[:k2], after[k2 + 1:]
            view = view + view2
        else:
            args = after
    else:
        view = tail
    opts["args"] = args
    opts["view"] = view
    if mode == "attach":
        try:
            opts["pid"] = int(opts["target"][0])
        except ValueError:
            raise UsageError(f"attach takes a process id, not {opts['target'][0]!r}") from None
    if view:
        from .bridge import PARSERS, VIEWS
        if view[0] not in PARSERS:
            raise UsageError(f"unknown view {view[0]!r}; one of {', '.join(VIEWS)}")
    return opts


def open_bridge(opts):
    from .bridge import Bridge
    kw = {"dlv": opts["dlv"], "direct_memory": not opts["rpc_memory"]}
    if opts["listen"]:
        kw.update(listen=opts["listen"], allow_remote=opts["allow_remote"])
    mode = opts["mode"]
    if mode == "exec":
        b = Bridge.exec(opts["target"][0], opts["args"], **kw)
        try:
            if opts["wait_for"]:
                if not b.wait_output(opts["wait_for"], timeout=max(opts["run"], 60.0)):
                    sys.stderr.write(f"delve-bridge: the program did not print {opts['wait_for']!r}; "
                                     "showing it as it is\n")
            elif opts["view"]:
                time.sleep(opts["run"])
        except BaseException:
            b.close()
            raise
        return b
    if mode == "attach":
        return Bridge.attach(opts["pid"], binary=opts["binary"], **kw)
    if mode == "core":
        return Bridge.core(opts["target"][0], opts["target"][1], **kw)
    kw.pop("direct_memory")
    return Bridge.connect(opts["target"][0], binary=opts["binary"], allow_remote=opts["allow_remote"])


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    b = None
    opts = {}
    try:
        opts = parse(argv)
        if opts.get("help"):
            sys.stdout.write(__doc__.split("\n", 2)[2])
            return 0
        b = open_bridge(opts)
        if opts["view"]:
            sys.stdout.write(b.view(opts["view"]))
            sys.stdout.flush()
        else:
            from .repl import run_repl
            run_repl(b)
        return 0
    except UsageError as e:  # one line; the usage itself is a --help away
        hint = "" if "usage:" in str(e) else " (delve-bridge --help shows the usage)"
        sys.stderr.write(f"delve-bridge: {e}{hint}\n")
        return 2
    except GoExtError as e:
        if opts.get("debug"):
            traceback.print_exc()
        sys.stderr.write(f"delve-bridge: {e}\n")
        return 1
    except (KeyboardInterrupt, _Terminated):
        sys.stderr.write("delve-bridge: interrupted; cleaning up\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # a bug of ours: one line unless debugging
        if opts.get("debug"):
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
