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


class ProfileBuilder:
    """One Profile message being built: its string table, the executable's text as
    mappings, functions and locations made once each, and samples."""

    def __init__(self, sample_types, period_type=None, period=0, now_ns=None):
        from . import profile_proto as P
        self.prof = prof = P.Profile()
        self._strings = {"": 0}
        prof.string_table.append("")
        if period_type is not None:
            prof.period_type.type, prof.period_type.unit = (self.s(x) for x in period_type)
            prof.period = period
        for typ, unit in sample_types:
            st = prof.sample_type.add()
            st.type, st.unit = self.s(typ), self.s(unit)
        prof.time_nanos = time.time_ns() if now_ns is None else now_ns
        self._text_ranges = []
        self._funcs: dict = {}
        self._locs: dict = {}

    def s(self, text: str) -> int:
        i = self._strings.get(text)
        if i is None:
            i = self._strings[text] = len(self.prof.string_table)
            self.prof.string_table.append(text)
        return i

    def add_text_mappings(self, rt) -> None:
        """The executable's text, at the load bias."""
        prof, elf = self.prof, rt.elf
        if elf is None:
            return
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
                m.filename = self.s(path)
                m.build_id = self.s(build_id)
                m.has_functions = m.has_filenames = m.has_line_numbers = True
                m.has_inline_frames = True
                self._text_ranges.append((m.memory_start, m.memory_limit, m.id))

    def func_id(self, function: str, file: str = "") -> int:
        key = (function, file)
        fid = self._funcs.get(key)
        if fid is None:
            f = self.prof.function.add()
            fid = f.id = self._funcs[key] = len(self.prof.function)
            f.name = f.system_name = self.s(function)
            f.filename = self.s(file)
        return fid

    def frames_location(self, pc: int, frames) -> int:
        """The location of one physical frame at pc: its lines the inlined calls,
        innermost first."""
        addr = pc - 1 if pc else 0
        key = (addr, tuple((fr.function, fr.file, fr.line) for fr in frames))
        lid = self._locs.get(key)
        if lid is None:
            loc = self.prof.location.add()
            lid = loc.id = self._locs[key] = len(self.prof.location)
            loc.address = addr
            for fr in frames:
                line = loc.line.add()
                line.function_id = self.func_id(fr.function, fr.file)
                line.line = fr.line
            for lo, hi, mid in self._text_ranges:
                if lo <= addr < hi:
                    loc.mapping_id = mid
                    break
        return lid

    def name_location(self, name: str) -> int:
        """A location that is only a name (no address, file or line): a step of a
        reference chain."""
        key = (None, name)
        lid = self._locs.get(key)
        if lid is None:
            loc = self.prof.location.add()
            lid = loc.id = self._locs[key] = len(self.prof.location)
            loc.line.add().function_id = self.func_id(name)
        return lid

    def stack_locations(self, stack) -> list:
        """The location ids of a stack of logical frames (innermost first)."""
        return [self.frames_location(pc, frames) for pc, frames in physical_frames(stack)]

    def add_sample(self, location_ids, values, labels=()) -> None:
        smp = self.prof.sample.add()
        smp.location_id.extend(location_ids)
        smp.value.extend(values)
        for k, v in labels:
            lab = smp.label.add()
            lab.key = self.s(str(k))
            if isinstance(v, int):
                lab.num = v
            else:
                lab.str = self.s(str(v))

    def comment(self, text: str) -> None:
        self.prof.comment.append(self.s(text))


def write_profile(prof, path: str) -> int:
    """Write a Profile gzipped to path; the bytes written."""
    data = gzip.compress(prof.SerializeToString())
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise GoExtError(f"cannot write {path}: {e.strerror or e}") from None
    return len(data)


def require_protobuf(what: str) -> None:
    try:
        from . import profile_proto  # noqa: F401
    except ImportError as e:
        raise UsageError(f"{what} needs the protobuf library (pip install protobuf): {e}")


def build_profile(rt, gs, walker_errors=(), now_ns=None):
    """The Profile message of goroutines gs (with stacks). No duration, as the
    runtime's count profiles have none (proto.go build: CPU profiles only)."""
    b = ProfileBuilder([("goroutine", "count")], ("goroutine", "count"), 1, now_ns)
    b.add_text_mappings(rt)
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
            ids = stack_locs[skey] = tuple(b.stack_locations(stack))
        key = (ids, tuple(sorted(g.labels.items())) if g.labels else ())
        counts[key] = counts.get(key, 0) + 1
    for (ids, labels), n in counts.items():
        b.add_sample(ids, [n], labels)
    for e in walker_errors:
        b.comment(f"warning: {e}")
    return b.prof


def retained_profile(rt, buckets, kept, walker_errors, args):
    """`go stacks --retained --pprof FILE`: one sample per bucket that alone keeps heap
    alive, its stack the bucket's, its values the objects and bytes it retains; the
    bucket's goroutines as a number label."""
    require_protobuf("go stacks --retained --pprof")
    b = ProfileBuilder([("inuse_objects", "count"), ("inuse_space", "bytes")],
                       ("space", "bytes"), 1)
    b.prof.default_sample_type = b.s("inuse_space")
    b.add_text_mappings(rt)
    total_b = total_n = samples = 0
    for i, bucket in enumerate(buckets):
        nb, nobj = int(kept.bytes[i]), int(kept.objects[i])
        if not nb and not nobj:
            continue
        b.add_sample(b.stack_locations(bucket.frames), [nobj, nb],
                     [("goroutines", bucket.count)])
        total_b, total_n, samples = total_b + nb, total_n + nobj, samples + 1
    errors = list(walker_errors) + [e for e in kept.errors if e not in walker_errors]
    for e in errors:
        b.comment(f"warning: {e}")
    size = write_profile(b.prof, args.pprof)
    return (f"wrote what {samples} of {len(buckets)} buckets alone keep alive, {total_b} bytes "
            f"in {total_n} objects, as a pprof profile ({size} bytes) to {args.pprof}\n"
            + "".join(f"warning: {e}\n" for e in errors))


def _run(ctx, args):
    require_protobuf("go pprof")
    rt = ctx.runtime()
    # whole stacks (the walk the other views share); build_profile cuts them as the
    # runtime's profile does
    walker, gs = ctx.walk(rt, depth=1, want_blocked=False)
    prof = build_profile(rt, gs, walker.errors)
    size = write_profile(prof, args.output)
    n = sum(prof.sample[i].value[0] for i in range(len(prof.sample)))
    text = (f"wrote a goroutine profile of {n} goroutines in {len(prof.sample)} samples "
            f"({size} bytes) to {args.output}\n")
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
