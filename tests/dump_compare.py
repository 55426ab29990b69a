"""Blocks of a goroutine dump by id, for comparing `go dump` with the runtime's text."""
import re

HEAD = re.compile(r"^goroutine (\d+) ")


def blocks(text):
    """{id: [lines]} of every goroutine block (the first block of an id)."""
    out, cur = {}, None
    for line in text.splitlines():
        m = HEAD.match(line)
        if m and line.endswith(":"):
            gid = int(m.group(1))
            cur = None if gid in out else out.setdefault(gid, [])
        elif not line.strip() or line.startswith("warning:"):
            cur = None
            continue
        if cur is not None:
            cur.append(line)
    return out


def essential(lines):
    """A block as the tests compare it: every line byte for byte, except that a function
    line is taken up to its "(" (the runtime prints argument words, we print (...))."""
    out = []
    for i, line in enumerate(lines):
        if i == 0 or line.startswith("created by ") or line.startswith("..."):
            out.append(line)
        elif line.startswith("\t"):
            out.append(line)
        else:
            out.append(line[:line.find("(")] if "(" in line else line)
    return out
