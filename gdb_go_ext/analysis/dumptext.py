"""The runtime's goroutine dump text (SIGQUIT or crash output, pprof debug=2,
runtime.Stack(all), `go dump`) parsed back into goroutines, and the snapshots
`go stacks --diff` and `go xref` compare against (pure; never raises on garbage).

    parse(text) -> Dump: the goroutines found (the first block of each id; goroutine 0
                   skipped), the level (2 when headers carry gp= or frames fp=) and
                   `problem`, one line when the text held no goroutine or ended inside
                   one.
    load_snapshot(data) -> Snapshot: an earlier `go stacks --json`, `go goroutines
                   --json -t N` output or a dump, as stacks with their counts.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..runtime.traceback import is_exported_runtime
from ..runtime.stack import elide_wrappers

# pprof labels (GODEBUG=tracebacklabels=1): Go 1.26 prints them inside the brackets
# ( labels:{"k": "v"}), Go 1.27 after them ( {k: v})
_HEADER = re.compile(r"^goroutine (\d+)(?: gp=(0x[0-9a-fA-F]+) m=(\S+)(?: mp=0x[0-9a-fA-F]+)?)?"
                     r" \[(.*?)(?: labels:\{.*\})?\](.*):$")
_POSITION = re.compile(r"^\t(.*):(\d+)(?: \+(0x[0-9a-fA-F]+))?"
                       r"(?: fp=0x[0-9a-fA-F]+ sp=0x[0-9a-fA-F]+ pc=(0x[0-9a-fA-F]+))?\s*$")
_CREATED = re.compile(r"^created by (\S+)(?: in goroutine (\d+))?\s*$")
_MINUTES = re.compile(r"^(\d+) minutes$")


@dataclass
class DumpFrame:
    function: str
    file: str
    line: int
    inlined: bool = False         # no +0xoff: an inlined frame (as the runtime writes it)
    pc: Optional[int] = None      # level 2 only

    def to_json(self) -> dict:
        return {"function": self.function, "file": self.file, "line": self.line,
                "pc": f"{self.pc:#x}" if self.pc is not None else None,
                "inlined": self.inlined}


@dataclass
class DumpGoroutine:
    id: int
    state: str                    # the wait reason, or the status ("runnable", ...)
    minutes: int = 0
    locked: bool = False
    addr: Optional[int] = None    # gp= (level 2, Go 1.22+)
    header: str = ""
    frames: list = field(default_factory=list)
    created_by: Optional[tuple] = None     # (function, file, line)
    parent: Optional[int] = None
    complete: bool = True
    elided_at: Optional[int] = None   # the runtime left frames out here (...N frames
                                      # elided...): the index of the frame after the line;
                                      # the end of a stack of NEAR_LIMIT frames or more


@dataclass
class Dump:
    goroutines: list
    level: int = 1
    problem: Optional[str] = None


def _state(inside: str):
    """'chan receive (leaked), 3 minutes, locked to thread' -> (state, minutes, locked);
    Go 1.26 labels inside the brackets are left out."""
    parts = [p.strip() for p in inside.split(",")]
    state = parts[0]
    for suffix in (" (leaked)", " (scan)", " (durable)"):
        state = state.replace(suffix, "")
    minutes, locked = 0, False
    for p in parts[1:]:
        m = _MINUTES.match(p)
        if m:
            minutes = int(m.group(1))
        elif p == "locked to thread":
            locked = True
    return state.strip(), minutes, locked


# Go 1.19 stops a traceback after 100 frames, the hidden ones counted, and says
# "...additional frames elided..." only when it printed 100: a level-1 stack printed
# with this many frames may have been cut without a word, and is matched as cut after
# its last frame
NEAR_LIMIT = 90


def parse(text) -> Dump:
    """The goroutines of a dump; never raises (garbage gives a Dump with a problem)."""
    try:
        return _parse(text)
    except Exception as e:  # noqa: BLE001 (pure text: a bug here must not cost the view)
        return Dump([], 1, f"not a goroutine dump ({type(e).__name__}: {e})")


def _parse(text) -> Dump:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return Dump([], 1, "not a goroutine dump: no text")
    lines = text.splitlines()
    seen: set = set()
    out: list = []
    level = 1
    truncated = None
    i, n = 0, len(lines)
    while i < n:
        m = _HEADER.match(lines[i])
        if not m:
            i += 1
            continue
        gid = int(m.group(1))
        state, minutes, locked = _state(m.group(4))
        g = DumpGoroutine(gid, state, minutes, locked,
                          int(m.group(2), 16) if m.group(2) else None, lines[i])
        if m.group(2):
            level = 2
        i += 1
        # body: a function line and its position, "created by" and its position, notes
        while i < n and lines[i].strip():
            line = lines[i]
            if _HEADER.match(line):
                break
            if line.startswith("...") or line.startswith("\tgoroutine running"):
                if line.startswith("...") and g.elided_at is None:
                    g.elided_at = len(g.frames)
                i += 1
                continue
            c = _CREATED.match(line)
            pos = _POSITION.match(lines[i + 1]) if i + 1 < n else None
            if c:
                if pos:
                    g.created_by = (c.group(1), pos.group(1), int(pos.group(2)))
                    g.parent = int(c.group(2)) if c.group(2) else None
                    i += 2
                else:
                    g.complete = False
                    i += 1
                continue
            if line.startswith("\t") or pos is None:
                if i + 1 >= n and not line.startswith("\t"):
                    g.complete = False   # a function line with no position: cut short
                i += 1
                continue
            func = line
            if func.endswith(")") and "(" in func:
                # strip the argument list: the last "(" that opens the final group
                depth = 0
                for k in range(len(func) - 1, -1, -1):
                    if func[k] == ")":
                        depth += 1
                    elif func[k] == "(":
                        depth -= 1
                        if depth == 0:
                            func = func[:k]
                            break
            if func == "panic":      # Go 1.21+ prints runtime.gopanic so
                func = "runtime.gopanic"
            if pos.group(4):
                level = 2
            g.frames.append(DumpFrame(func, pos.group(1), int(pos.group(2)),
                                      inlined=pos.group(3) is None and pos.group(4) is None,
                                      pc=int(pos.group(4), 16) if pos.group(4) else None))
            i += 2
        if g.elided_at is None and len(g.frames) >= NEAR_LIMIT:
            g.elided_at = len(g.frames)   # perhaps cut with no word said (Go 1.19)
        if i >= n and (not text.endswith("\n") or (g.created_by is None and gid != 1)):
            g.complete = False   # cut in a line, or before its "created by" line
        if gid != 0 and gid not in seen:
            if not g.complete:
                truncated = gid
            seen.add(gid)
            out.append(g)
    problem = None
    if not out:
        problem = "not a goroutine dump: no 'goroutine N [...]:' header found"
    elif truncated is not None:
        problem = f"the dump ends inside goroutine {truncated}: its stack may be cut short"
    return Dump(out, level, problem)


# -- what the runtime shows at level 1 ------------------------------------------------
#
# The runtime's levels differ in what they hide (traceback.go): level 1 (all, pprof
# debug=2) hides unexported runtime frames (showfuncinfo), wrapper frames (abi.FuncIDWrapper:
# go statements' gowrapN, method values' -fm, ABI wrappers at <autogenerated>:1, which
# elideWrapperCalling keeps only when they called a panic), runtime.goexit and system
# goroutines; level 2 (system, crash) shows them all, with gp=/fp= besides. A dump of
# either level, and our own stacks (wrappers marked, goexit dropped), are compared on
# what level 1 keeps, so that a dump of one stop at any level reads back unchanged.

def shown(function: str, file: str, wrappers=frozenset()) -> bool:
    """Whether a level-1 dump shows this frame (the runtime's showframe, by name): not
    an unexported runtime function (runtime.gopanic excepted), not a wrapper (file
    <autogenerated>, or a name in wrappers: the binary's wrapper_names)."""
    if function == "runtime.goexit" or file == "<autogenerated>" or function in wrappers:
        return False
    if function.startswith("runtime."):
        return function == "runtime.gopanic" or is_exported_runtime(function)
    return "." in function


def level1_frames(frames, wrappers=frozenset()) -> list:
    """The frames a level-1 dump shows of a stack (a dump's frames at any level, or ours:
    ours carry the unwinder's wrapper mark, which a level-1 dump of them never names)."""
    return [f for f in elide_wrappers(frames) if shown(f.function, f.file, wrappers)]


def stack_key(frames, similar: bool = False, level1: bool = False,
              wrappers=frozenset()) -> tuple:
    """The key stacks are matched by: (function, file, line) per frame, or functions
    only (similar); level1: only the frames a level-1 dump shows."""
    if level1:
        frames = level1_frames(frames, wrappers)
    if similar:
        return tuple(f.function for f in frames)
    return tuple((f.function, f.file, f.line) for f in frames)


def cut_parts(frames, elided_at: int, similar: bool = False, wrappers=frozenset()) -> tuple:
    """(inner, outer): the keys of the frames a dump printed of a stack it cut, before
    and after its elision line (Go 1.21+ prints the innermost and outermost 50 frames,
    Go 1.19 the innermost 100; level 1 counts the frames it shows, level 2 all)."""
    return (stack_key(frames[:elided_at], similar, True, wrappers),
            stack_key(frames[elided_at:], similar, True, wrappers))


def cut_matches(key: tuple, inner: tuple, outer: tuple, whole: bool = True) -> bool:
    """Whether the stack with this key (level-1 frames) is one a dump printed cut as
    inner ... outer. whole: key is of the whole stack; else of its innermost frames only
    (a walk cut at its depth), and only those are compared."""
    if not whole:
        n = min(len(key), len(inner))
        return n > 0 and key[:n] == inner[:n]
    return len(key) >= len(inner) + len(outer) and key[:len(inner)] == inner and \
        (not outer or key[len(key) - len(outer):] == outer)


def prefix_of(key: tuple, keys) -> Optional[tuple]:
    """The one key of keys that key, a stack a walk cut at its depth, begins (None when
    none or several)."""
    found = {k for k in keys if len(k) > len(key) and k[:len(key)] == key}
    return found.pop() if len(found) == 1 else None


def wrapper_names(tab, wrapper_id: int, names) -> frozenset:
    """Which of these function names are wrappers in the binary (pclntab tab): a go
    statement's wrapper (gowrapN; before Go 1.22 a funcN closure, which no name tells
    from a user's) or a method value's. Level 2 prints them, level 1 and our stacks do
    not. An ABI wrapper shares the name of the function it wraps; those are told by
    their file (<autogenerated>) and never put here. Unknown names are not wrappers."""
    out = set()
    for name in set(names):
        if not name or name.startswith("runtime.") or "[" in name:
            continue
        try:
            f = tab.lookup_func(name)
            if f is None or f.func_id != wrapper_id:
                continue
            at = tab.frames(f.entry)
            if at and at[-1].file == "<autogenerated>":
                continue
        except Exception:  # noqa: BLE001 (an unreadable table: compare by name only)
            continue
        out.add(name)
    return frozenset(out)


def dump_wrappers(rt, frames_lists) -> frozenset:
    """wrapper_names for every function named in these stacks (DumpFrame lists), from the
    target's pclntab; empty when it cannot be read."""
    from ..binary.pclntab import wrapper_func_id
    try:
        tab = rt.pclntab
        wid = wrapper_func_id(rt.layout.go_version)
    except Exception:  # noqa: BLE001
        return frozenset()
    return wrapper_names(tab, wid, (f.function for fr in frames_lists for f in fr))


# -- earlier snapshots ---------------------------------------------------------------

@dataclass
class SnapEntry:
    count: int
    state: str
    frames: list          # DumpFrame
    ids: list
    elided_at: Optional[int] = None   # a dump's goroutine whose stack the runtime cut


@dataclass
class Snapshot:
    kind: str             # "stacks json" | "goroutines json" | "dump"
    entries: list
    level1: bool          # compare by what a level-1 dump shows (a dump of level 1)
    dump: Optional[Dump] = None
    problem: Optional[str] = None


class SnapshotError(Exception):
    """OLD is not a snapshot: one line."""


def _frames_json(stack) -> list:
    out = []
    for f in stack:
        if not isinstance(f, dict) or not isinstance(f.get("function"), str):
            raise SnapshotError("a stack frame without a function")
        line = f.get("line")
        out.append(DumpFrame(f["function"], str(f.get("file") or ""),
                             line if isinstance(line, int) else 0, bool(f.get("inlined"))))
    return out


def load_snapshot(data: bytes) -> Snapshot:
    """An earlier snapshot from its bytes; SnapshotError (one line) when it is none."""
    if not isinstance(data, (bytes, bytearray)):
        raise SnapshotError("no data")
    if data[:2] == b"\x1f\x8b":
        raise SnapshotError("a gzip file (a pprof profile?) is not a snapshot: give an earlier "
                            "`go stacks --json` or `go goroutines --json -t N` output or a "
                            "goroutine dump")
    text = bytes(data).decode("utf-8", "replace")
    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise SnapshotError(f"not valid JSON ({str(e).splitlines()[0]})") from None
        try:
            return _from_json(doc)
        except SnapshotError:
            raise
        except Exception as e:  # noqa: BLE001
            raise SnapshotError(f"JSON of another shape ({type(e).__name__})") from None
    dump = parse(text)
    if not dump.goroutines:
        raise SnapshotError(dump.problem or "not a goroutine dump")
    entries = [SnapEntry(1, g.state, g.frames, [g.id], g.elided_at) for g in dump.goroutines]
    return Snapshot("dump", entries, True, dump, dump.problem)


def _from_json(doc) -> Snapshot:
    if not isinstance(doc, dict):
        raise SnapshotError("JSON of another shape: not a `go stacks --json` or "
                            "`go goroutines --json -t N` output")
    if isinstance(doc.get("buckets"), list) and "before" not in str(doc.get("buckets")[:1]):
        entries = []
        for b in doc["buckets"]:
            if not isinstance(b, dict) or not isinstance(b.get("count"), int) \
                    or not isinstance(b.get("stack"), list):
                raise SnapshotError("JSON of another shape: a bucket without count and stack")
            state = b.get("wait_reason") or b.get("status") or ""
            entries.append(SnapEntry(b["count"], str(state), _frames_json(b["stack"]),
                                     list(b.get("ids") or [])))
        return Snapshot("stacks json", entries, False)
    if isinstance(doc.get("goroutines"), list) and "verdict" not in str(doc["goroutines"][:1]):
        entries = []
        for g in doc["goroutines"]:
            if not isinstance(g, dict) or not isinstance(g.get("id"), int):
                raise SnapshotError("JSON of another shape: a goroutine without an id")
            if not isinstance(g.get("stack"), list):
                raise SnapshotError("`go goroutines --json` output without stacks: take it "
                                    "with -t N")
            state = g.get("wait_reason") or g.get("status") or ""
            entries.append(SnapEntry(1, str(state), _frames_json(g["stack"]), [g["id"]]))
        return Snapshot("goroutines json", entries, False)
    raise SnapshotError("JSON of another shape: not a `go stacks --json` or "
                        "`go goroutines --json -t N` output")


# -- the diff of two snapshots -------------------------------------------------------

@dataclass
class DiffBucket:
    before: int
    after: int
    frames: list           # the stack shown: now's (a StackFrame) where it exists
    states: list           # wait reasons / statuses, now's first
    ids: list              # now's ids (then's for a vanished bucket)

    @property
    def change(self) -> str:
        if self.before == 0:
            return "new"
        if self.after == 0:
            return "vanished"
        return "grown" if self.after > self.before else \
            "shrunk" if self.after < self.before else "same"


def _now(gs, skip=frozenset()):
    """(stack, state, count, first ids, their walk positions) per shape of a walk's
    table gs (its first 10 in walk order), in the order of their first goroutines.
    The goroutines whose ids are in skip are left out."""
    shape_idx, ids_all = gs.shapes_of(), gs.ids()
    keep = None
    if skip and len(ids_all):
        keep = np.flatnonzero(~np.isin(ids_all, np.fromiter(skip, dtype=np.int64)))
        shape_idx = shape_idx[keep]
    if not len(shape_idx):
        return
    u, first, counts = np.unique(shape_idx, return_index=True, return_counts=True)
    by_shape = np.argsort(shape_idx, kind="stable")    # rows of each shape, in order
    starts = np.concatenate(([0], np.cumsum(counts)))
    for j in np.argsort(first, kind="stable").tolist():
        shape = gs.shapes[int(u[j])]
        rows = np.sort(by_shape[starts[j]:starts[j] + min(int(counts[j]), 10)])
        if keep is not None:
            rows = keep[rows]
        yield (shape[8] or (), shape[3] or shape[1], int(counts[j]),
               ids_all[rows].tolist(), rows.tolist())


def unknown_then(snap: Snapshot) -> list:
    """The ids of a dump's goroutines it printed without a stack (running on another
    thread then): neither then nor now do they have a stack to bucket."""
    if snap.dump is None:
        return []
    return [g.id for g in snap.dump.goroutines if not g.frames]


def diff(snap: Snapshot, gs, similar: bool = False, wrappers=frozenset(),
         depth: Optional[int] = None) -> list:
    """DiffBuckets of an earlier snapshot against goroutines now (a walk's table with
    whole stacks), matched by
    stack_key. Against a dump both sides keep only the frames the level-1 dump shows
    (wrappers: the binary's wrapper_names), and goroutines with none left (the
    runtime's own, hidden at level 1) are left out, and so are the goroutines the dump
    printed without a stack (unknown_then). A stack the dump cut is matched by the
    frames it printed before and after its cut (cut_matches; of several, the one with
    outermost frames and the most frames); a stack the walk cut (depth frames), by its
    frames."""
    level1 = snap.level1
    out: dict = {}
    cuts: dict = {}      # key -> (inner, outer) of the dump's cut stacks
    for e in snap.entries:
        k = stack_key(e.frames, similar, level1, wrappers)
        if level1 and not k:
            continue
        if level1 and e.elided_at is not None:
            parts = cut_parts(e.frames, e.elided_at, similar, wrappers)
            k = ("...",) + parts
            cuts[k] = parts
        b = out.get(k)
        if b is None:
            b = out[k] = DiffBucket(0, 0, e.frames, [], [])
        b.before += e.count
        if e.state and e.state not in b.states:
            b.states.append(e.state)
        if len(b.ids) < 10:
            b.ids.extend(e.ids[: 10 - len(b.ids)])
    whole_then = [k for k in out if k not in cuts]
    now: dict = {}
    firsts: dict = {}    # key -> (walk position, id) of its first goroutines now
    for frames, state, count, ids, pos in _now(gs, frozenset(unknown_then(snap))):
        k = stack_key(frames, similar, level1, wrappers)
        if level1 and not k:
            continue
        if level1 and k not in out:
            whole = depth is None or len(frames) < depth
            # of the cut stacks it can be, the one the dump printed most of, its
            # outermost frames first
            fits = [(bool(parts[1]), len(parts[0]) + len(parts[1]), ck)
                    for ck, parts in cuts.items() if cut_matches(k, *parts, whole)]
            k = (max(fits, key=lambda f: f[:2])[2] if fits else None) \
                or (None if whole else prefix_of(k, whole_then)) or k
        b = out.get(k)
        if b is None:
            b = out[k] = DiffBucket(0, 0, list(frames), [], [])
        if b.after == 0:
            b.frames, b.ids = list(frames), []
            now[k] = []
        b.after += count
        if state not in now[k]:
            now[k].append(state)
        firsts[k] = sorted(firsts.get(k, []) + list(zip(pos, ids)))[:10]
        b.ids = [i for _, i in firsts[k]]
    for k, states in now.items():
        b = out[k]
        b.states = states + [s for s in b.states if s not in states]
    order = {"new": 0, "grown": 1, "shrunk": 2, "vanished": 3, "same": 4}
    return sorted(out.values(), key=lambda b: (order[b.change], -abs(b.after - b.before),
                                                -b.after, -b.before))
