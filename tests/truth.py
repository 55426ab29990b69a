"""What the Go runtime and the fixtures wrote, parsed for tests: runtime.Stack's text, and
map contents as canonical JSON. (The crash dump's parser is runtime_dump.py.)"""
import json
import re

HEADER = re.compile(r"^goroutine (\d+) \[([^\]]*)\]:$")


def parse_runtime_stacks(text):
    """runtime.Stack(buf, true) -> {id: {"state", "locked", "frames": [(func, line)],
    "created_by": (func, line) or None, "parent": id or None}}."""
    out = {}
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        m = HEADER.match(lines[0])
        if not m:
            continue
        gid = int(m.group(1))
        parts = [p.strip() for p in m.group(2).split(",")]
        state = parts[0]
        locked = "locked to thread" in parts
        frames, created, parent = [], None, None
        i = 1
        while i + 1 < len(lines):
            head, pos = lines[i], lines[i + 1].strip()
            file_line = pos.split(" +")[0]
            line_no = int(file_line.rsplit(":", 1)[1])
            if head.startswith("created by "):
                rest = head[len("created by "):]
                if " in goroutine " in rest:
                    rest, p = rest.split(" in goroutine ")
                    parent = int(p)
                created = (rest, line_no)
            else:
                func = head[: head.rindex("(")] if head.endswith(")") else head
                frames.append((func, line_no))
            i += 2
        out[gid] = {"state": state, "locked": locked, "frames": frames,
                    "created_by": created, "parent": parent}
    return out


# a wrapper that called one of these stays in a level-1 dump (elideWrapperCalling)
_PANICS = ("runtime.gopanic", "panic", "runtime.sigpanic", "runtime.panicwrap")


def level1_stack(stack):
    """A view's JSON stack as a level-1 dump (runtime.Stack, debug=2, GOTRACEBACK=all)
    shows its wrappers: each frame marked "wrapper" left out unless it called a panic.
    (The crash-dump test holds the frames against the level-2 text, which prints them
    all; a level-1 comparison through this then holds the marks.)"""
    out, callee = [], ""
    for f in stack:
        if not (f.get("wrapper") and callee not in _PANICS):
            out.append(f)
        callee = f["function"]
    return out


def _int_float(text):
    """A JSON number with a fraction: an int when it is a whole number JSON can carry exactly."""
    f = float(text)
    return int(f) if f.is_integer() and abs(f) < 2 ** 53 else f


def _norm(x):
    """x with whole-number floats as ints (Go's encoder and ours may spell 3.0 as 3), by a
    JSON round trip: kept separate from the views' own normalisation on purpose."""
    return json.loads(json.dumps(x), parse_float=_int_float)


def _canon(entries):
    """Entries as sorted canonical JSON texts (pairs may be tuples or lists)."""
    return sorted(json.dumps(_norm(list(e)), sort_keys=True) for e in entries)


# fields added to existing JSON documents since the golden outputs were written: where
# (a `stacks --json` bucket's blocked_on entries), and what each added field must agree with
STACKS_ADDED = ("kind", "addrs")


def without_added_fields(text, wrappers=frozenset()):
    """A view's output as the code before the additions wrote it: `stacks --json` with the
    blocked_on entries' kind and addrs removed, after checking that they say what the
    entry's object text says ("channel 0xa, 0xb" -> ["0xa", "0xb"]); every JSON stack
    without the frames marked "wrapper" and without the mark, and a text without the
    frames of the functions in wrappers (the code before printed no wrapper frame: see
    without_wrapper_lines). A text or document with nothing of these comes back as it
    is; a stripped document as its parsed JSON, a stripped text as a text."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        if wrappers and isinstance(text, str):
            return without_wrapper_lines(text, wrappers)
        return text
    changed = drop_wrapper_frames(doc)
    if isinstance(doc, dict) and "buckets" in doc:
        for b in doc["buckets"]:
            for on in b.get("blocked_on", []):
                kind, addrs = on.pop("kind"), on.pop("addrs")
                word = "semaphore" if kind == "sema" else "channel"
                assert on["object"] == "%s %s" % (word, ", ".join(addrs)), on
        changed = True
    return doc if changed else text


def drop_wrapper_frames(doc):
    """Drops, in place, every frame {"function", ..., "wrapper": true} of doc's lists and
    every frame's "wrapper" mark. Whether any was found."""
    found = False
    if isinstance(doc, dict):
        for v in doc.values():
            found = drop_wrapper_frames(v) or found
    elif isinstance(doc, list):
        if doc and all(isinstance(f, dict) and "wrapper" in f and "function" in f for f in doc):
            doc[:] = [f for f in doc if not f["wrapper"]]
            for f in doc:
                del f["wrapper"]
            return True
        for v in doc:
            found = drop_wrapper_frames(v) or found
    return found


def without_wrapper_lines(text, wrappers):
    """text without its wrapper frames: a line that is a wrapper's name alone (or with
    " (inlined)"), and the position line under it (indented further)."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        name = line.strip()
        if name.endswith(" (inlined)"):
            name = name[:-len(" (inlined)")]
        if name in wrappers:
            indent = len(line) - len(line.lstrip())
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            skip_next = len(nxt) - len(nxt.lstrip()) > indent and ":" in nxt
            i += 2 if skip_next else 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def wrapper_functions(goroutines_json):
    """The functions marked "wrapper" in a `goroutines --json -t N` document."""
    doc = json.loads(goroutines_json)
    return frozenset(f["function"] for g in doc["goroutines"] for f in g.get("stack") or []
                     if f.get("wrapper"))


# flags added to existing views since the golden outputs were written, as their usage
# lines show them
FLAGS_ADDED = (" [--retained]", " [--frame K] [--goroutine N]")  # --frame/--goroutine: views taking an EXPR


def same_but_added(old, new, wrappers=frozenset()):
    """old == new, but for fields added since old was written (see without_added_fields),
    flags added to a usage line (FLAGS_ADDED) and the wrapper frames shown since (the
    functions in wrappers: wrapper_functions)."""
    if old == new:
        return True
    if isinstance(new, str) and "usage: " in new:
        bare = new
        for flag in FLAGS_ADDED:
            bare = bare.replace(flag, "")
        if bare == old:
            return True
    stripped = without_added_fields(new, wrappers)
    if stripped is new:
        return False
    if isinstance(stripped, str):
        return stripped == old
    return json.loads(old) == stripped
