"""The `go map` views: summary + entries table, the --layout grid, --key lookup, JSON.

Input is a runtime.maps.MapContents; nothing here reads memory.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..binary import types as T
from ..runtime.maps import CTRL_DELETED, CTRL_EMPTY, TOPHASH_NAMES, MapContents
from ..runtime.values import Addr
from .values import go_quote, json_shape
from .console import json_text, render
from .registry import COMPLETE_SYMBOL, View, count, register
from .scope import add_scope_args, scope_of

__all__ = ["to_json", "render_text", "render_layout", "parse_key", "find_key", "render_key"]


def to_json(mc: MapContents, layout: bool = False) -> dict:
    """The JSON object of docs/json.md ("map"), for console.json_text (which writes the
    Addr values in it as "0x…")."""
    lay: dict[str, Any] = {"header": mc.header, "growth": mc.growth, "summary": mc.summary}
    if mc.impl == "swiss":
        lay["tables"] = mc.tables
    if layout:
        if mc.impl == "hmap":
            lay["buckets"] = mc.buckets
        else:
            lay["groups"] = mc.groups
    return {
        "type": mc.type, "addr": f"{mc.addr:#x}", "impl": mc.impl, "nil": mc.nil,
        "len": mc.len, "entries": [[k, v] for k, v in mc.entries],
        "truncated": mc.truncated, "layout": lay, "errors": list(mc.errors),
    }


def _summary_line(mc: MapContents) -> str:
    s, g = mc.summary, mc.growth
    if mc.nil:
        return "nil map"
    if mc.impl == "hmap":
        h = mc.header
        parts = [f"B={h.get('B')}", f"{s.get('buckets', 0)} buckets",
                 f"{s.get('overflow_buckets', 0)} overflow", f"load {s.get('load_factor', 0)}"]
        if h.get("flag_names"):
            parts.append("flags " + "|".join(h["flag_names"]))
        if g.get("growing"):
            parts.append(("same-size" if g.get("same_size") else "doubling") +
                         f" growth: {g.get('nevacuate')}/{g.get('old_buckets')} old buckets "
                         f"evacuated ({100 * g.get('evacuated_fraction', 0):.0f}%)")
        else:
            parts.append("not growing")
        return ", ".join(parts)
    if s.get("small"):
        return f"small map: one group, {s.get('tombstones', 0)} tombstones"
    return (f"directory {s.get('directory')} (globalDepth {mc.header.get('globalDepth')}), "
            f"{s.get('tables')} tables, {s.get('groups')} groups, "
            f"{s.get('tombstones', 0)} tombstones")


def header_rows(mc: MapContents) -> list[tuple[str, str]]:
    rows = [("type", mc.type), ("impl", mc.impl), ("len", str(mc.len)),
            ("addr", f"{mc.addr:#x}"), ("layout", _summary_line(mc))]
    if mc.truncated:
        rows.append(("shown", f"first {len(mc.entries)} of {mc.full_slots} entries"))
    return rows


def render_text(mc: MapContents, color: bool = False, width: int = 120,
                entries: bool = True) -> str:
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold cyan")
    head.add_column()
    for k, v in header_rows(mc):
        head.add_row(k, Text(v))
    out = [head]
    if entries and mc.entries:
        t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        t.add_column("key", overflow="fold")
        t.add_column("value", overflow="fold")
        for k, v in mc.entries:
            t.add_row(Text(go_quote(k, mc.key_type)), Text(go_quote(v, mc.elem_type)))
        out.append(t)
    for e in mc.errors:
        out.append(Text(f"error: {e}", style="red"))
    return render(*out, color=color, width=width)


def _tophash_cell(v: int) -> Text:
    name = TOPHASH_NAMES.get(v)
    if name is None:
        return Text(f"{v:#04x}", style="green")
    style = {"emptyRest": "dim", "emptyOne": "yellow"}.get(name, "blue")
    return Text(name, style=style)


def _ctrl_cell(c: int) -> Text:
    if c == CTRL_EMPTY:
        return Text("empty", style="dim")
    if c == CTRL_DELETED:
        return Text("deleted", style="red")
    if c & 0x80 == 0:
        return Text(f"h2={c:#04x}", style="green")
    return Text(f"?{c:#04x}", style="magenta")


def render_layout(mc: MapContents, color: bool = False, width: int = 160,
                  max_rows: int = 64) -> str:
    head = render_text(mc, color=color, width=width, entries=False)
    parts = []
    if mc.impl == "swiss" and mc.tables:
        tt = Table(title="tables", show_header=True, header_style="bold", box=None)
        for c in ("dir", "addr", "index", "localDepth", "capacity", "used", "growthLeft",
                  "groups", "tombstones"):
            tt.add_column(c, justify="right")
        for t in mc.tables[:max_rows]:
            d = t.get("dir", [])
            dirs = f"{d[0]}" if len(d) == 1 else f"{d[0]}..{d[-1]} ({len(d)})"
            tt.add_row(dirs, f"{t['addr']:#x}", *(str(t.get(k, "")) for k in (
                "index", "localDepth", "capacity", "used", "growthLeft", "groups",
                "tombstones")))
        parts.append(tt)
        if len(mc.tables) > max_rows:
            parts.append(Text(f"... {len(mc.tables) - max_rows} more tables"))
    rows = mc.buckets if mc.impl == "hmap" else mc.groups
    g = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    if mc.impl == "hmap":
        g.add_column("bucket")
        g.add_column("addr")
        for i in range(8):
            g.add_column(str(i))
        for b in rows[:max_rows]:
            label = f"{b['which']}[{b['index']}]" + (f"+{b['depth']}" if b["depth"] else "")
            if b.get("evacuated"):
                label += " (evacuated)"
            g.add_row(Text(label), f"{b['addr']:#x}", *(_tophash_cell(v) for v in b["tophash"]))
    else:
        g.add_column("group")
        g.add_column("addr")
        for i in range(8):
            g.add_column(str(i))
        for r in rows[:max_rows]:
            label = (f"t{r['table']} g{r['group']}" if r["table"] >= 0 else f"g{r['group']}")
            g.add_row(label, f"{r['addr']:#x}", *(_ctrl_cell(c) for c in r["ctrl"]))
    if rows:
        parts.append(g)
    if len(rows) > max_rows:
        parts.append(Text(f"... {len(rows) - max_rows} more "
                          f"{'buckets' if mc.impl == 'hmap' else 'groups'} not shown "
                          f"(--limit N shows more)"))
    return head + "\n" + render(*parts, color=color, width=width)


# ---- --key ----------------------------------------------------------------------

# a typed address, as Go engineers write it: (map[K]V)0x…, (main.Index)(0x…) (ADDR is the
# map's header), (*main.Index)(0x…) or *(*main.Index)(0x…) (ADDR holds the map), and a
# field path after a cast to a struct: (*main.Holder)(0x…).inner, ((*main.Holder)(0x…)).inner
_TYPE = r"([^()]*?(?:\([^()]*\)[^()]*?)*)"
_ADDR_ARG = r"(?:\(\s*(0[xX][0-9a-fA-F]+|\d+)\s*\)|(0[xX][0-9a-fA-F]+|\d+))"
_CAST = re.compile(r"^(\*\s*)?\(\s*(\*?)\s*" + _TYPE + r"\s*\)\s*" + _ADDR_ARG + r"\s*$")
_FIELD_PATH = re.compile(r"^(?:\.\s*[A-Za-z_]\w*\s*)+$")


def parse_cast(expr: str) -> Optional[tuple[str, int, bool, tuple[str, ...]]]:
    """(type name, address, is ADDR a pointer to the value?, field path) of a typed
    address, or None."""
    expr = expr.strip()
    path: tuple[str, ...] = ()
    m = _CAST.match(expr)
    if m is None:   # a cast followed by .field.field, the cast maybe in parentheses
        head, tail = _split_field_path(expr)
        if head is None:
            return None
        if head.startswith("(") and head.endswith(")") and _CAST.match(head[1:-1]):
            head = head[1:-1]
        m = _CAST.match(head)
        if m is None or m.group(1):
            return None
        path = tuple(p.strip() for p in tail.split(".") if p.strip())
    if not m.group(3).strip():
        return None
    addr = int(m.group(4) or m.group(5), 0)
    return m.group(3).strip(), addr, bool(m.group(2)), path


def _split_field_path(expr: str) -> tuple[Optional[str], str]:
    """'(*T)(0x10).a.b' -> ('(*T)(0x10)', '.a.b'): the longest field path after a ')'."""
    i = expr.rfind(")")
    if i < 0 or not _FIELD_PATH.match(expr[i + 1:].strip() or "-"):
        return None, ""
    return expr[:i + 1].strip(), expr[i + 1:]


def parse_map_expr(expr: str) -> tuple[str, Optional[tuple], str]:
    """A `map` argument as gdb and delve-bridge take it: (expression as shown,
    (type name, address, indirect, field path) for a typed address (see parse_cast) or None,
    name without 'quotes')."""
    expr = expr.strip()
    if not expr:
        raise UsageError("map needs an expression: a global, a local, or (map[K]V)ADDR")
    cast = parse_cast(expr)
    name = expr[1:-1] if len(expr) >= 2 and expr[0] == expr[-1] == "'" else expr
    return expr, cast, name


def _norm(x: Any) -> Any:
    """A key as its JSON reads back, numbers that are whole as ints: what --key compares."""
    if isinstance(x, Addr):
        return json_shape(x)
    if isinstance(x, bool):
        return x
    if isinstance(x, float) and x == int(x) and abs(x) < 2 ** 53:
        return int(x)
    if isinstance(x, list):
        return [_norm(y) for y in x]
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items()}
    return x


def parse_key(text: str, kt: Optional[T.GoType]) -> Any:
    """K as typed by the user, as a decoded-value of the key type."""
    s = text.strip()
    kind = kt.kind if kt is not None else None
    try:
        if kind in (T.INT, T.UINT):
            return int(s, 0)
        if kind == T.FLOAT:
            return float(s)
        if kind == T.BOOL:
            if s in ("true", "false"):
                return s == "true"
            raise ValueError(s)
        if kind == T.STRING:
            if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"`":
                return json.loads(s) if s[0] == '"' else s[1:-1]
            return text
        if kind in (T.PTR, T.CHAN, T.FUNC):
            return Addr(int(s, 0))
        return json.loads(s)
    except ValueError:
        what = kt.name if kt is not None else "the key type"
        hint = " (give structs, arrays and interfaces as JSON)" if kind in (
            T.STRUCT, T.ARRAY, T.EFACE, T.IFACE) else ""
        raise UsageError(f"cannot parse {text!r} as {what}{hint}") from None


def find_key(mc: MapContents, key: Any) -> Optional[tuple[int, Any]]:
    """(entry index, location) of the entry whose key equals `key`, or None."""
    want = _norm(key)
    iface = mc.key_type is not None and mc.key_type.kind in (T.EFACE, T.IFACE)
    for i, (k, _v) in enumerate(mc.entries):
        nk = _norm(k)
        if nk == want or (iface and isinstance(nk, dict) and nk.get("value") == want):
            return i, mc.locations[i] if i < len(mc.locations) else None
    return None


def describe_location(loc) -> str:
    if loc is None:
        return "location unknown"
    if loc[0] == "bucket":
        _, which, bi, depth, slot, th = loc
        return (f"{'old ' if which == 'old' else ''}bucket {bi}"
                + (f", overflow bucket {depth} of its chain" if depth else "")
                + f", slot {slot}, tophash {th:#04x}")
    _, table, group, slot, h2 = loc
    return ((f"table {table}, " if table >= 0 else "small map, ") +
            f"group {group}, slot {slot}, H2 {h2:#04x}")


def key_json(mc: MapContents, key_text: str, key: Any) -> dict:
    hit = find_key(mc, key)
    if hit is None:
        return {"key": key, "found": False}
    i, loc = hit
    d = {"key": mc.entries[i][0], "found": True, "value": mc.entries[i][1],
         "where": describe_location(loc)}
    if loc is not None and loc[0] == "bucket":
        d.update({"bucket": loc[2], "old": loc[1] == "old", "overflow_depth": loc[3],
                  "slot": loc[4], "tophash": loc[5]})
    elif loc is not None:
        d.update({"table": loc[1], "group": loc[2], "slot": loc[3], "h2": loc[4]})
    return d


def render_key(mc: MapContents, key_text: str, key: Any, color: bool = False,
               width: int = 120) -> str:
    d = key_json(mc, key_text, key)
    shown = go_quote(key, mc.key_type)
    if not d["found"]:
        line = f"key {shown} is absent from {mc.type} ({mc.len} entries searched)"
        if mc.truncated:
            line += " -- decoding was limited; drop --limit to search every entry"
        return line + "\n"
    return (f"key {go_quote(d['key'], mc.key_type)} -> {go_quote(d['value'], mc.elem_type)}\n"
            f"  lives in {d['where']}\n")


def add_map_args(p) -> None:
    """The flags of `go map` and delve-bridge's `map` view."""
    p.add_argument("expr", nargs="+", metavar="EXPR", help="the map")
    p.add_argument("--layout", action="store_true",
                   help="draw buckets/groups with tophash/control bytes")
    p.add_argument("--key", metavar="K", help="where does the entry with key K live?")
    p.add_argument("--limit", type=count, metavar="N",
                   help="entries shown, text and JSON (default and 0: all); with --layout, "
                        "also the buckets/groups drawn (default 64)")
    add_scope_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def typed_address(rt, tname: str, addr: int, indirect: bool, path: tuple = ()) -> tuple:
    """(GoType, value) of a typed address, computed here (no debugger parses it): the
    type by name from the debug info; with `indirect`, ADDR holds the value (a
    (*T)(ADDR) cast); a field path walks a struct at ADDR (through pointers, as Go's
    selectors do) to the map or channel word, which is read."""
    from ..errors import DecodeError, GoExtError
    t = rt.target.lookup_type(tname)
    if t is None:
        raise GoExtError(f"the program has no type {tname}")
    try:
        if not path:
            return t, (rt.mem.ptr(addr) if indirect else addr)
        where = tname
        for name in path:
            if t.kind == T.PTR and t.elem is not None:
                addr, t = rt.mem.ptr(addr), t.elem
            f = t.field(name) if t.kind == T.STRUCT else None
            if f is None:
                raise GoExtError(f"{where} ({t.name}) has no field {name}")
            addr, t, where = addr + f.offset, f.type, f"{where}.{name}"
        if t.kind not in (T.MAP, T.CHAN, T.PTR):
            return t, None
        return t, rt.mem.ptr(addr)
    except DecodeError as e:
        raise GoExtError(f"cannot read the {tname} at {addr:#x}: {e}") from None


def resolve_map(rt, text: str, scope=None) -> tuple:
    """(expression as shown, map GoType, header address) of a map argument: a typed
    address ((map[K]V)ADDR, (main.Index)(ADDR), (*main.Index)(ADDR)), or what the
    debugger evaluates (a global, a local, any expression) in the selected frame or
    `scope` (--frame/--goroutine)."""
    from ..errors import GoExtError
    expr, cast, name = parse_map_expr(text)
    if cast:
        t, addr = typed_address(rt, *cast)
    else:
        t, addr = rt.target.evaluate(expr, name, scope) if scope is not None \
            else rt.target.evaluate(expr, name)
    if t.kind != T.MAP:
        raise GoExtError(f"{expr} is a {t.name}, not a map")
    if addr is None:
        raise GoExtError(f"cannot read the map value of {expr}: it has no address")
    return expr, t, addr


def _run(ctx, args):
    from ..runtime.maps import decode_map
    limit = args.limit or None   # (0: all)
    rt = ctx.runtime()
    rt.require_process()
    _, mt, addr = resolve_map(rt, " ".join(args.expr), scope_of(rt, args))
    # --key searches every entry: --limit cuts only the entries its JSON shows
    mc = decode_map(rt, mt, addr, limit=None if args.key is not None else limit,
                    layout=args.layout, locate=args.key is not None)
    mc.errors[:0] = rt.target.warnings
    if args.key is not None:
        key = parse_key(args.key, mc.key_type)
        if args.json:
            out = to_json(mc, layout=args.layout)
            out["lookup"] = key_json(mc, args.key, key)
            if limit is not None and len(out["entries"]) > limit:
                out["entries"] = out["entries"][:limit]
                out["truncated"] = True
            return json_text(out)
        return render_key(mc, args.key, key, color=ctx.color)
    if args.json:
        return json_text(to_json(mc, layout=args.layout))
    if args.layout:
        rows = 64 if args.limit is None else (limit or 1 << 62)
        return render_layout(mc, color=ctx.color, width=max(ctx.width, 100), max_rows=rows)
    return render_text(mc, color=ctx.color, width=ctx.width)


register(View(
    "map", "Show a Go map: its entries and its real internals (hmap buckets or Swiss tables).",
    _run, add_map_args, completes=COMPLETE_SYMBOL,
    doc="""EXPR is a package-qualified global (main.cache or 'main.cache'), any expression of
map type the debugger evaluates (in the selected frame, or frame K of goroutine N with
--frame K --goroutine N), or an address with a map type: (map[string]int)0xc000012345,
(main.Index)(0xc000012345), or (*main.Index)(0xc000045678) for the address of a map variable.
--layout draws every bucket's tophash (hmap) or every group's control bytes (swiss);
--key K says where the entry with key K lives (bucket/slot or table/group/slot)."""))
