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


def without_added_fields(text):
    """A view's output as the code before the additions wrote it: `stacks --json` with the
    blocked_on entries' kind and addrs removed, after checking that they say what the
    entry's object text says ("channel 0xa, 0xb" -> ["0xa", "0xb"]). Any other text, or a
    document without buckets, comes back as it is; a stripped document as its parsed JSON."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        return text
    if not isinstance(doc, dict) or "buckets" not in doc:
        return text
    for b in doc["buckets"]:
        for on in b.get("blocked_on", []):
            kind, addrs = on.pop("kind"), on.pop("addrs")
            word = "semaphore" if kind == "sema" else "channel"
            assert on["object"] == "%s %s" % (word, ", ".join(addrs)), on
    return doc


# flags added to existing views since the golden outputs were written, as their usage
# lines show them
FLAGS_ADDED = (" [--retained]", " [--frame K] [--goroutine N]")  # --frame/--goroutine: views taking an EXPR


def same_but_added(old, new):
    """old == new, but for fields added since old was written (see without_added_fields)
    and flags added to a usage line (FLAGS_ADDED)."""
    if old == new:
        return True
    if isinstance(new, str) and "usage: " in new:
        bare = new
        for flag in FLAGS_ADDED:
            bare = bare.replace(flag, "")
        if bare == old:
            return True
    stripped = without_added_fields(new)
    return stripped is not new and json.loads(old) == stripped
