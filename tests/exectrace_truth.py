"""The truth for the execution-trace reader: `go tool trace -d=parsed` (go1.22/1.23: -d=1)
of the toolchain that wrote the trace, parsed back into records, and the comparison of our
events with them.

The text is Event.String() of internal/trace, one event per block:
    M=%d P=%d G=%d KIND Time=%d [kind fields]
    [TransitionStack=\n\tfunc @ 0xpc\n\t\tfile:line ...]
    [Stack=\n ...]
"""
import ast
import os
import re
import subprocess

_TOKEN = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\]|\S+)'
                    r'|(\w+)->(\w+)')
_HEAD = re.compile(r"M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(-?\d+)(.*)$")
_VALUE = re.compile(r"^(?:Value\{)?Uint64\((\d+)\)\}?$")
_ATTR = re.compile(r'("(?:[^"\\]|\\.)*")=(\S+)')


def _unquote(s):
    return ast.literal_eval(s) if s.startswith('"') else s


def _value(s):
    """Value{Uint64(N)} (1.25+) and Uint64(N) (1.22-1.24) are both N: the two print the
    same value differently, by design."""
    m = _VALUE.match(s)
    return int(m.group(1)) if m else s


def parse(text):
    """-> list of dicts: kind, time, m, p, g, fields (name -> value), transition (from, to)
    or None, stack and transition_stack (lists of (function, file, line, pc))."""
    events = []
    cur = None
    target = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("M="):
            m = _HEAD.match(line)
            assert m, line
            cur = {"m": int(m.group(1)), "p": int(m.group(2)), "g": int(m.group(3)),
                   "kind": m.group(4), "time": int(m.group(5)), "fields": {},
                   "transition": None, "stack": [], "transition_stack": []}
            for tm in _TOKEN.finditer(m.group(6)):
                if tm.group(3):
                    cur["transition"] = (tm.group(3), tm.group(4))
                else:
                    cur["fields"][tm.group(1)] = tm.group(2)
            events.append(cur)
            target = None
        elif line == "TransitionStack=":
            target = cur["transition_stack"]
        elif line == "Stack=":
            target = cur["stack"]
        elif line.startswith("\t") and not line.startswith("\t\t"):
            func, _, pc = line[1:].rpartition(" @ ")
            loc = lines[i]
            i += 1
            assert loc.startswith("\t\t"), loc
            file, _, ln = loc[2:].rpartition(":")
            target.append((func, file, int(ln), int(pc, 16)))
        elif line.strip():
            raise AssertionError("unexpected line in -d=parsed output: %r" % line)
    return events


def expected_attrs(rec):
    """The record's kind fields as our Event.attrs holds them (normalised where the
    printing differs by design: quoted strings unquoted, values as ints, the RangeEnd
    attributes as a dict, the sync's wall clock compared as printed)."""
    f = rec["fields"]
    kind = rec["kind"]
    out = {}
    if kind == "StateTransition":
        return out
    for k, v in f.items():
        if k == "Attributes":
            out[k] = {_unquote(a): _value(b) for a, b in _ATTR.findall(v[1:-1])}
        elif k == "Value":
            out[k] = _value(v)
        elif v.startswith('"'):
            out[k] = _unquote(v)
        elif re.fullmatch(r"-?\d+", v):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def frames(stack):
    return [(f.function, f.file, f.line, f.pc) for f in stack]


def compare(ours, truth, limit=20):
    """Every event, in order: the differences as lines (empty = all equal)."""
    bad = []
    for n, (e, r) in enumerate(zip(ours, truth)):
        diffs = []
        for k in ("kind", "time", "m", "p", "g"):
            if getattr(e, k) != r[k]:
                diffs.append("%s %r != %r" % (k, getattr(e, k), r[k]))
        if frames(e.stack) != r["stack"]:
            diffs.append("stack %r != %r" % (frames(e.stack), r["stack"]))
        if r["kind"] == "StateTransition":
            f = r["fields"]
            res, rid = ("Goroutine", f.get("GoID")) if "GoID" in f else ("Proc", f.get("ProcID"))
            want = (res, int(rid), r["transition"][0], r["transition"][1],
                    _unquote(f["Reason"]))
            got = (e.resource, e.id, e.from_state, e.to_state, e.reason)
            if got != want:
                diffs.append("transition %r != %r" % (got, want))
            if "Resource" in f and f["Resource"] != "%s(%d)" % (res, int(rid)):  # 1.22-1.25
                diffs.append("resource %r" % f["Resource"])
            if frames(e.transition_stack) != r["transition_stack"]:
                diffs.append("transition stack %r != %r" % (frames(e.transition_stack),
                                                            r["transition_stack"]))
        else:
            want = expected_attrs(r)
            got = dict(e.attrs)
            if r["kind"] == "Sync" and "Wall" in want and "Wall" in got:
                # 1.25 prints the wall clock as RFC3339 (seconds), 1.26+ as RFC3339Nano
                if "." not in want["Wall"]:
                    got["Wall"] = re.sub(r"\.\d+Z$", "Z", got["Wall"])
            if got != want:
                diffs.append("attrs %r != %r" % (got, want))
        if diffs:
            bad.append("event %d (%s Time=%d): %s" % (n, r["kind"], r["time"], "; ".join(diffs)))
            if len(bad) >= limit:
                break
    if len(ours) != len(truth) and len(bad) < limit:
        bad.append("%d events, -d=parsed has %d" % (len(ours), len(truth)))
    return bad


def parsed_flag(go_version):
    """go1.22 and go1.23's `go tool trace` take -d=1 for the parsed events; 1.24+ -d=parsed."""
    minor = int(go_version.split(".")[1])
    return "-d=1" if minor <= 23 else "-d=parsed"


def run_parsed(go, env, trace_path, go_version, timeout=600):
    """`go tool trace -d=parsed TRACE` of toolchain `go` (GOTOOLCHAIN=local, TZ=UTC so the
    sync's wall clock prints in UTC like ours) -> its stdout text."""
    env = dict(env, GOTOOLCHAIN="local", TZ="UTC")
    p = subprocess.run([go, "tool", "trace", parsed_flag(go_version), trace_path], env=env,
                       capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("go tool trace failed: %s" % p.stderr.decode(errors="replace"))
    return p.stdout.decode("utf-8", "replace")


def goroot_of(go):
    return os.path.dirname(os.path.dirname(go))
