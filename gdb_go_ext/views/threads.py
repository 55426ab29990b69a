"""`threads`: the OS threads with their M, P and current goroutine."""
from __future__ import annotations

from ..runtime.threads import os_threads
from .console import json_text
from .registry import View, add_output_args, register


def _run(ctx, args):
    rt = ctx.runtime()
    rt.require_process()
    threads, errors = os_threads(rt)
    if args.json:
        return json_text({"go_version": rt.layout.go_version, "errors": errors,
                          "threads": [{"lwp": t.lwp, "m": t.m, "p": t.p, "curg": t.curg,
                                       "lockedg": t.lockedg, "spinning": t.spinning,
                                       "blocked": t.blocked, "function": t.function or None,
                                       "file": t.file or None, "line": t.line or None}
                                      for t in threads]})
    dash = lambda v: "-" if v is None else str(v)  # noqa: E731
    rows = [("LWP", "M", "P", "curg", "lockedg", "state", "where")]
    for t in threads:
        state = ",".join(s for s, on in (("spinning", t.spinning), ("blocked", t.blocked)) if on)
        where = f"{t.function} {t.file.rsplit('/', 1)[-1]}:{t.line}" if t.function else ""
        rows.append((str(t.lwp), str(t.m), dash(t.p), dash(t.curg), dash(t.lockedg),
                     state or "-", where))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    text = "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] + "\n"
                   for r in rows)
    return text + f"{len(threads)} threads\n" + "".join(f"warning: {e}\n" for e in errors)


register(View("threads", "The OS threads with their M, P and current goroutine.", _run,
              add_output_args,
              doc="From runtime.allm: each M's thread (LWP), the P it holds, the goroutine it "
                  "runs\n(curg) or is locked to (lockedg), and where the thread is."))
