"""`chan`: a channel's buffer, its waiting receivers and senders, and the goroutines whose
stacks still hold it. Input: runtime.chans' ChanState and the stop's goroutine walk."""
from __future__ import annotations

import re
from typing import Optional

from ..binary import types as T
from ..errors import GoExtError
from ..runtime.chans import HOLDER_NOTE, decode_chan, stack_holders
from .console import json_text
from .registry import COMPLETE_SYMBOL, View, count, register
from .scope import add_scope_args, scope_of
from .values import go_quote, json_default

TEXT_LIMIT = 20   # entries of each list shown as text without --limit

_ADDR = re.compile(r"^(?:channel\s+)?(0[xX][0-9a-fA-F]+|\d+),?$")


def add_chan_args(p) -> None:
    p.add_argument("expr", nargs="+", metavar="EXPR|ADDR",
                   help="the channel: an expression of chan type, (chan T)ADDR, or the "
                        "hchan address as `go stacks` prints it")
    p.add_argument("--limit", type=count, metavar="N",
                   help=f"entries of the buffer and of each queue shown, text and JSON "
                        f"(0: all; default: text {TEXT_LIMIT}, JSON all)")
    add_scope_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output (docs/json.md)")
    p.add_argument("-o", dest="output", metavar="FILE", help="write the output to FILE")


def resolve_chan(rt, text: str, scope=None) -> tuple:
    """(chan GoType or None, hchan address) of a `chan` argument: a bare address (what
    `go stacks` prints after "channel"), a typed (chan T)ADDR (also a named channel type,
    and (*T)(ADDR) for the address of a channel variable), or an expression the debugger
    evaluates (in the selected frame, or `scope`: --frame/--goroutine)."""
    from .maps import parse_cast, typed_address
    text = text.strip()
    m = _ADDR.match(text)
    if m:
        return None, int(m.group(1), 0)
    cast = parse_cast(text)
    if cast:
        tname, addr, indirect, path = cast
        tname = re.sub(r"^<-\s*chan", "<-chan", tname)
        t, addr = typed_address(rt, tname, addr, indirect, path)
        if t.kind != T.CHAN:
            raise GoExtError(f"{text} is a {t.name}, not a channel")
        return t, addr
    name = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text
    t, addr = rt.target.evaluate(text, name, scope) if scope is not None \
        else rt.target.evaluate(text, name)
    if t.kind != T.CHAN:
        raise GoExtError(f"{text} is a {t.name}, not a channel")
    return t, addr or 0


def _waiter_json(w, g, with_value: bool) -> dict:
    d = {"id": w.goid if g is None else g.id, "g": f"{w.g:#x}", "select": w.is_select,
         "status": g.status if g is not None else None,
         "wait_reason": g.wait_reason if g is not None else None,
         "wait_minutes": g.wait_minutes if g is not None else None,
         "user": g.user.to_json() if g is not None and g.user else None}
    if with_value:
        d["value"] = w.value
    return d


def chan_json(go_version: str, cs, by_addr: dict, holders: list, limit: Optional[int],
              errors: list) -> dict:
    cut = (lambda xs: xs) if limit is None else (lambda xs: xs[:limit])
    return {
        "go_version": go_version, "addr": f"{cs.addr:#x}", "nil": False, "type": cs.type_name,
        "elem_type": cs.elem_type or None, "elem_size": cs.elem_size,
        "elem_type_source": cs.elem_source,
        "len": cs.qcount, "cap": cs.dataqsiz, "closed": cs.closed,
        "sendx": cs.sendx, "recvx": cs.recvx,
        "buffer": cs.buffer,
        "recvq_len": cs.recvq_len, "sendq_len": cs.sendq_len,
        "recvq": [_waiter_json(w, by_addr.get(w.g), False) for w in cut(cs.recvq)],
        "sendq": [_waiter_json(w, by_addr.get(w.g), True) for w in cut(cs.sendq)],
        "holders_scan": HOLDER_NOTE,
        "holders": [{"id": h.goroutine.id, "g": f"{h.goroutine.addr:#x}",
                     "status": h.goroutine.status, "wait_reason": h.goroutine.wait_reason,
                     "wait_minutes": h.goroutine.wait_minutes,
                     "user": h.goroutine.user.to_json() if h.goroutine.user else None,
                     "slots": [f"{a:#x}" for a in h.slots]} for h in cut(holders)],
        "holders_len": len(holders),
        "errors": errors,
    }


def _where(g) -> str:
    if g is None:
        return "?"
    loc = g.user or g.current
    where = f"{loc.function} {loc.file.rsplit('/', 1)[-1]}:{loc.line}" if loc else ""
    wait = g.wait_reason or g.status
    if g.wait_minutes:
        wait += f", {g.wait_minutes} minutes"
    return f"[{wait}]  {where}".rstrip()


def chan_text(cs, by_addr: dict, holders: list, limit: int, errors: list) -> str:
    et = cs.elem_gotype
    lines = [f"channel {cs.addr:#x}" + (f"  ({cs.type_name})" if cs.type_name else ""),
             f"  elem type   {cs.elem_type or '?'} ({cs.elem_size} bytes; layout from "
             f"{cs.elem_source})",
             f"  len/cap     {cs.qcount}/{cs.dataqsiz}" + ("  closed" if cs.closed else ""),
             f"  recvx/sendx {cs.recvx}/{cs.sendx}"]
    if cs.buffer is None:
        lines.append("  buffer: not read (see the errors below)")
    elif cs.dataqsiz:
        lines.append(f"  buffer ({cs.qcount} in receive order, from recvx):" if cs.qcount
                     else "  buffer: empty")
        for i, v in enumerate(cs.buffer[:limit]):
            lines.append(f"    [{i}] {go_quote(v, et)}")
        if cs.qcount > limit:
            lines.append(f"    … {cs.qcount - limit} more (--limit N)")
    for name, q, n, sends in (("recvq", cs.recvq, cs.recvq_len, False),
                              ("sendq", cs.sendq, cs.sendq_len, True)):
        lines.append(f"  {name}: {n} goroutine{'s' if n != 1 else ''} "
                     f"{'sending' if sends else 'receiving'}" + (":" if n else ""))
        for w in q[:limit]:
            g = by_addr.get(w.g)
            gid = g.id if g is not None else w.goid
            val = f"  sends {go_quote(w.value, et)}" if sends else ""
            sel = " (select)" if w.is_select else ""
            lines.append(f"    {gid if gid is not None else '?'}{sel}{val}  {_where(g)}")
        if n > limit:
            lines.append(f"    … {n - limit} more (--limit N)")
    lines.append(f"  holders: {len(holders)} other goroutine"
                 f"{'s hold' if len(holders) != 1 else ' holds'} its address"
                 + (":" if holders else ""))
    for h in holders[:limit]:
        lines.append(f"    {h.goroutine.id}  {_where(h.goroutine)}")
    if len(holders) > limit:
        lines.append(f"    … {len(holders) - limit} more (--limit N)")
    lines.append(f"  (holders: {HOLDER_NOTE})")
    lines += [f"error: {e}" for e in errors]
    return "\n".join(lines) + "\n"


def _run(ctx, args):
    limit = args.limit or None   # (0: all)
    rt = ctx.runtime()
    rt.require_process()
    text = " ".join(args.expr)
    ct, addr = resolve_chan(rt, text, scope_of(rt, args))
    if not addr:
        what = ct.name if ct is not None else "channel"
        if args.json:
            return json_text({"go_version": rt.layout.go_version, "addr": "0x0", "nil": True,
                              "type": what, "errors": []})
        return f"{text} is a nil {what}: a send or receive on it blocks forever\n"
    cs = decode_chan(rt, addr, ct, limit)
    walker, gs = ctx.walk(rt, want_blocked=False, want_labels=False)
    by_addr = {g.addr: g for g in gs}
    waiting = {w.g for w in cs.recvq} | {w.g for w in cs.sendq}
    holders, herrs = stack_holders(rt, gs, addr, waiting)
    errors = list(rt.target.warnings) + cs.errors + herrs
    if args.json:
        doc = chan_json(rt.layout.go_version, cs, by_addr, holders, limit, errors)
        if len(doc["recvq"]) + len(doc["sendq"]) + len(doc["buffer"] or ()) < 1000:
            return json_text(doc)
        # large: compact, where json's C encoder is about ten times faster (as json_text)
        import json
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"),
                          default=json_default) + "\n"
    return chan_text(cs, by_addr, holders,
                     TEXT_LIMIT if args.limit is None else (limit or 1 << 62), errors)


register(View(
    "chan", "Show a channel: its buffer, the goroutines waiting to receive and send, and who "
            "else holds it.",
    _run, add_chan_args, completes=COMPLETE_SYMBOL,
    doc="""EXPR|ADDR is an expression of chan type (main.jobs, 'main.jobs', a local), a typed
address (chan T)0xc000012345, or the bare hchan address `go stacks` prints ("blocked
receiving on channel 0x…"). The element type comes from hchan.elemtype; buffered
elements are shown in receive order, the waiters in queue order with what each sender
sends. Holders: the other goroutines whose stack holds a word equal to the channel's
address, a conservative scan of stacks only (a reference held from the heap or a global
is not seen)."""))
