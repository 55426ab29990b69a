"""`go map EXPR [--layout] [--key K] [--limit N] [--json] [-o FILE]`."""
from __future__ import annotations

import re

import gdb

from ..errors import GoExtError, UsageError
from ..binary import types as T
from ..runtime.maps import decode_map
from ..views import maps as view
from . import session
from .backend import _type_name
from .commands import GoCommand, terminal_width

_DOTTED = re.compile(r"^[\w/]+(\.[\w/]+)+$")


def _first_is_symbol(name: str) -> bool:
    head = name.split(".", 1)[0]
    try:
        return gdb.lookup_symbol(head)[0] is not None
    except (gdb.error, RuntimeError):
        try:
            return gdb.lookup_global_symbol(head) is not None
        except gdb.error:
            return False


def _evaluate(expr: str, name: str) -> "gdb.Value":
    """gdb.parse_and_eval, working around Go-mode parsing of pkg.name.

    gdb 13 in Go mode cannot parse `runtime.allgs` (it wants 'runtime.allgs'),
    and once a quoted Go symbol has been evaluated, parsing `main.missing`
    unquoted crashes it (SIGSEGV). So a dotted name is tried quoted first, and
    unquoted only when its first part is itself a symbol (a local struct).
    """
    if _DOTTED.match(name):
        try:
            return gdb.parse_and_eval(f"'{name}'")
        except gdb.error as e:
            err = str(e).splitlines()[0]
        if not _first_is_symbol(name):
            raise GoExtError(f"no symbol {name} in the program or the selected frame ({err})")
    try:
        return gdb.parse_and_eval(expr)
    except gdb.error as e:
        raise GoExtError(f"cannot evaluate {expr}: {str(e).splitlines()[0]}") from None


def resolve(expr: str) -> tuple[str, "gdb.Type", int]:
    """(shown name, gdb type, header address) of a map expression; GoExtError if not a map."""
    expr, cast, name = view.parse_map_expr(expr)
    if cast:
        tname, addr = cast
        try:
            t = gdb.lookup_type(tname)
        except gdb.error:
            raise GoExtError(f"the program has no type {tname}") from None
        return expr, t, addr
    val = None
    try:
        sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
        if sym is not None and sym.is_variable:
            val = sym.value()
    except gdb.error:
        val = None
    if val is None:
        val = _evaluate(expr, name)
    t = val.type
    if session.runtime().target.convert_type(t).kind != T.MAP:  # named map types count too
        raise GoExtError(f"{expr} is a {_type_name(t)}, not a map")
    try:
        addr = int(val.cast(gdb.lookup_type("uintptr")))
    except gdb.error:
        try:
            addr = int(val)
        except (gdb.error, ValueError) as e:
            raise GoExtError(f"cannot read the map value of {expr}: {e}") from None
    return expr, t, addr


def decode_expr(expr: str, limit=None, layout=False, locate=False):
    rt = session.runtime()
    rt.require_process()
    shown, gtype, addr = resolve(expr)
    mt = rt.target.convert_type(gtype)
    if mt.kind != T.MAP:
        raise GoExtError(f"{shown} is a {mt.name}, not a map")
    mc = decode_map(rt, mt, addr, limit=limit, layout=layout, locate=locate)
    mc.errors[:0] = getattr(rt.target, "warnings", [])
    return rt, mc


class MapCommand(GoCommand):
    """Show a Go map: its entries and its real internals (hmap buckets or Swiss tables).

EXPR is a package-qualified global (main.cache or 'main.cache'), any gdb
expression of map type, or an address with a map type: (map[string]int)0xc000012345.
--layout draws every bucket's tophash (hmap) or every group's control bytes (swiss);
--key K says where the entry with key K lives (bucket/slot or table/group/slot)."""

    name = "map"
    completer_class = gdb.COMPLETE_SYMBOL

    def add_arguments(self, p):
        view.add_map_args(p)

    def run(self, args):
        if args.limit is not None and args.limit < 0:
            raise UsageError("--limit must be 0 or more")
        expr = " ".join(args.expr)
        # --key searches every entry, so it ignores --limit for decoding
        dec_limit = None if args.key is not None else args.limit
        rt, mc = decode_expr(expr, limit=dec_limit, layout=args.layout,
                             locate=args.key is not None)
        color = self.color(args.output)
        if args.key is not None:
            key = view.parse_key(args.key, mc.key_type)
            if args.json:
                out = view.to_json(mc, layout=args.layout)
                out["lookup"] = view.key_json(mc, args.key, key)
                self.emit_json(out, args.output)
            else:
                self.emit(view.render_key(mc, args.key, key, color=color), args.output)
            return
        if args.json:
            self.emit_json(view.to_json(mc, layout=args.layout), args.output)
        elif args.layout:
            rows = args.limit if args.limit is not None else 64
            self.emit(view.render_layout(mc, color=color, width=max(terminal_width(), 100),
                                         max_rows=rows), args.output)
        else:
            self.emit(view.render_text(mc, color=color, width=terminal_width()), args.output)
