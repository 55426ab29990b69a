"""`pprof`: a goroutine profile in pprof's protobuf format, gzipped, as
`pprof.Lookup("goroutine").WriteTo(w, 0)` writes it, from a live process or a core.

Shaped as the runtime's own (runtime/pprof proto.go, printCountProfile): period type
and sample type goroutine/count, period 1; one sample per distinct stack and label set,
its value the number of goroutines; the goroutines the runtime counts (not dead, not
system goroutines: isSystemGoroutine); stacks of at most the runtime's depth (32
logical frames before Go 1.23, 128 from then: debug.profstackdepth); one location per
physical frame at its return address less one, its lines the inlined calls innermost
first; functions by symbol name and file; the executable's text as the mapping; pprof
labels as string labels. The schema is pprof's profile.proto, built at import time
(profile_proto.py) for the protobuf library.
"""
from __future__ import annotations

import gzip
import time

from ..errors import GoExtError, UsageError
from ..runtime.stack import elide_wrappers
from .registry import View, register

# functions a goroutine may start in without being a system goroutine (isSystemGoroutine)
_USER_RUNTIME_STARTS = ("runtime.main", "runtime.handleAsyncEvent")
PF_X = 1


def _depth(go_version: str) -> int:
    try:
        parts = go_version.lstrip("go").split(".")
        major, minor = int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (ValueError, IndexError):
        return 128
    return 32 if (major, minor) < (1, 23) else 128


def is_system(g) -> bool:
    """The runtime's isSystemGoroutine(gp, false) from the start function: a goroutine
    started in package runtime, other than runtime.main; the finalizer and cleanup
    goroutines count as system goroutines when parked (not running user code)."""
    start = g.start.function if g.start is not None else ""
    if not start or start in _USER_RUNTIME_STARTS:
        return False
    if start in ("runtime.runfinq", "runtime.runCleanups", "runtime.(*cleanupQueue).run") \
            and g.status != "waiting":
        return False
    return start.startswith("runtime.")


def physical_frames(stack) -> list:
    """[(pc, [frames innermost first])]: the logical frames grouped by physical frame
    (an inlined frame belongs with the frames up to its non-inlined caller)."""
    out, cur = [], []
    for fr in stack:
        if cur and cur[-1].pc != fr.pc:
            out.append((cur[0].pc, cur))
            cur = []
        cur.append(fr)
        if not fr.inlined:
            out.append((fr.pc, cur))
            cur = []
    if cur:
        out.append((cur[0].pc, cur))
    return out


def build_profile(rt, gs, walker_errors=(), now_ns=None):
    """The Profile message of goroutines gs (with stacks). No duration, as the
    runtime's count profiles have none (proto.go build: CPU profiles only)."""
    from . import profile_proto as P
    prof = P.Profile()
    strings = {"": 0}
    prof.string_table.append("")

    def s(text: str) -> int:
        i = strings.get(text)
        if i is None:
            i = strings[text] = len(prof.string_table)
            prof.string_table.append(text)
        return i

    prof.period_type.type, prof.period_type.unit = s("goroutine"), s("count")
    prof.period = 1
    st = prof.sample_type.add()
    st.type, st.unit = s("goroutine"), s("count")
    start = time.time_ns() if now_ns is None else now_ns
    prof.time_nanos = start

    # the executable's text, at the load bias
    text_ranges = []
    elf = rt.elf
    if elf is not None:
        bias = 0
        sym = elf.symbol("runtime.text")
        try:
            if sym is not None:
                bias = rt.pclntab.text_start - sym[0]
        except Exception:   # noqa: BLE001 (no pclntab: no bias)
            bias = 0
        build_id = ""
        try:
            build_id = elf.build_id() or ""
        except Exception:   # noqa: BLE001
            build_id = ""
        path = rt.target.executable() or elf.path
        for seg in elf.segments:
            if seg.type == 1 and seg.flags & PF_X:
                m = prof.mapping.add()
                m.id = len(prof.mapping)
                lo = (seg.vaddr + bias) & ~0xfff
                m.memory_start = lo
                m.memory_limit = seg.vaddr + bias + seg.memsz
                m.file_offset = seg.offset - ((seg.vaddr + bias) - lo)
                m.filename = s(path)
                m.build_id = s(build_id)
                m.has_functions = m.has_filenames = m.has_line_numbers = True
                m.has_inline_frames = True
                text_ranges.append((m.memory_start, m.memory_limit, m.id))

    funcs: dict = {}
    locs: dict = {}      # (address, lines) -> location id

    def func_id(fr) -> int:
        key = (fr.function, fr.file)
        fid = funcs.get(key)
        if fid is None:
            f = prof.function.add()
            fid = f.id = funcs[key] = len(prof.function)
            f.name = f.system_name = s(fr.function)
            f.filename = s(fr.file)
        return fid

    def loc_id(pc, frames) -> int:
        addr = pc - 1 if pc else 0
        key = (addr, tuple((fr.function, fr.file, fr.line) for fr in frames))
        lid = locs.get(key)
        if lid is None:
            loc = prof.location.add()
            lid = loc.id = locs[key] = len(prof.location)
            loc.address = addr
            for fr in frames:
                line = loc.line.add()
                line.function_id = func_id(fr)
                line.line = fr.line
            for lo, hi, mid in text_ranges:
                if lo <= addr < hi:
                    loc.mapping_id = mid
                    break
        return lid

    depth = _depth(rt.layout.go_version)
    counts: dict = {}
    stack_locs: dict = {}
    for g in gs:
        if is_system(g):
            continue
        # the runtime's profile leaves out the wrappers its tracebacks print at level 2
        stack = elide_wrappers(g.stack) if g.stack else []
        if len(stack) > depth:
            # cut as the runtime cuts, then its expandFinalInlineFrame: the last
            # frame's physical frame whole
            end = depth
            while end < len(stack) and stack[end - 1].inlined and stack[end].pc == stack[end - 1].pc:
                end += 1
            stack = stack[:end]
        skey = tuple((fr.pc, fr.function, fr.file, fr.line, fr.inlined) for fr in stack)
        ids = stack_locs.get(skey)
        if ids is None:
            ids = stack_locs[skey] = tuple(loc_id(pc, frames)
                                           for pc, frames in physical_frames(stack))
        key = (ids, tuple(sorted(g.labels.items())) if g.labels else ())
        counts[key] = counts.get(key, 0) + 1
    for (ids, labels), n in counts.items():
        smp = prof.sample.add()
        smp.location_id.extend(ids)
        smp.value.append(n)
        for k, v in labels:
            lab = smp.label.add()
            lab.key, lab.str = s(str(k)), s(str(v))
    for e in walker_errors:
        prof.comment.append(s(f"warning: {e}"))
    return prof


def _run(ctx, args):
    try:
        from . import profile_proto  # noqa: F401
    except ImportError as e:
        raise UsageError(f"go pprof needs the protobuf library (pip install protobuf): {e}")
    rt = ctx.runtime()
    # whole stacks (the walk the other views share); build_profile cuts them as the
    # runtime's profile does
    walker, gs = ctx.walk(rt, depth=1, want_blocked=False)
    prof = build_profile(rt, gs, walker.errors)
    data = gzip.compress(prof.SerializeToString())
    try:
        with open(args.output, "wb") as f:
            f.write(data)
    except OSError as e:
        raise GoExtError(f"cannot write {args.output}: {e.strerror or e}") from None
    n = sum(prof.sample[i].value[0] for i in range(len(prof.sample)))
    text = (f"wrote a goroutine profile of {n} goroutines in {len(prof.sample)} samples "
            f"({len(data)} bytes) to {args.output}\n")
    return text + "".join(f"warning: {e}\n" for e in walker.errors)


def _args(p):
    p.add_argument("-o", dest="pprof_output", metavar="FILE.pb.gz", default="goroutine.pb.gz",
                   help="write the profile (gzipped protobuf) to FILE (default goroutine.pb.gz)")


def _run_outer(ctx, args):
    args.output = args.pprof_output
    return _run(ctx, args)


register(View(
    "pprof", "Write a goroutine profile (pprof protobuf, gzipped) that go tool pprof reads.",
    _run_outer, _args,
    doc="""-o FILE.pb.gz is where it goes (`go tool pprof -traces BINARY FILE`). The
profile is the runtime's own goroutine profile's shape (WriteTo(w, 0)): goroutine/count,
one sample per distinct stack and label set, inlined frames in each location's lines,
the executable's text as its mapping, pprof labels as sample labels; system
goroutines are left out as the runtime leaves them out. Works on a core as well."""))
