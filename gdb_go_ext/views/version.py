"""The `go version` view."""
from __future__ import annotations

from rich.table import Table

from .console import json_text, render
from .registry import View, add_output_args, register


def to_json(rt) -> dict:
    facts = rt.layout.facts()
    facts["executable"] = rt.target.executable()
    facts["live"] = bool(rt.target.is_live)
    facts["wait_reason_strings"] = rt.wait_reasons
    facts["status_strings"] = rt.status_names
    return facts


def rows(rt) -> list[tuple[str, str]]:
    lay = rt.layout.facts()
    maps = lay["maps"]
    return [
        ("Go version", f"{lay['go_version']}  (from {lay['version_source']})"),
        ("experiments", ", ".join(lay["experiments"]) or "none"),
        ("pointer size", str(lay["ptr_size"])),
        ("g.atomicstatus", lay["atomicstatus"]),
        ("g.goid", lay["goid_type"]),
        ("g.parentGoid", "present" if lay["parent_goid"] else "absent"),
        ("g.syscallbp", "present" if lay["syscallbp"] else "absent"),
        ("pprof labels", lay["labels"]),
        ("maps", maps + ("  (hmap: buckets)" if maps == "hmap" else "  (swiss: dirPtr)"
                         if maps == "swiss" else "")),
        ("wait reasons", f"{lay['wait_reasons']} in runtime.waitReasonStrings"),
        ("status names", f"{lay['status_names']} in runtime.gStatusStrings"),
        ("target", ("live process" if rt.target.is_live else "core or executable")),
    ]


def render_text(rt, color: bool = False, width: int = 100) -> str:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold cyan")
    t.add_column()
    for k, v in rows(rt):
        t.add_row(k, v)
    return render(t, color=color, width=width)


def _run(ctx, args):
    rt = ctx.runtime()
    if args.json:
        return json_text(to_json(rt))
    return render_text(rt, color=ctx.color, width=ctx.width)


register(View("version", "Show the target's Go version and the runtime layouts detected in its "
              "debug info.", _run, add_output_args))
