"""Reading one generation (internal/trace's generation.go and batch.go): the batches of
the trace's bytes, grouped per M, and the generation's tables - strings, stacks, CPU
samples, the frequency and (go1.25+) the clock snapshot."""
from . import gosort
from . import wire as W
from .base import NO_ID, Broken, s64
from .model import Frame


class Source:
    """The trace's bytes after the header, read in chunks (a file) or in place (bytes)."""
    CHUNK = 1 << 22

    def __init__(self, f, data=None, offset=16):
        self.f = f
        self.buf = data if data is not None else b""
        self.pos = offset if data is not None else 0
        self.base = 0 if data is not None else offset  # file offset of buf[0]
        self.eof = data is not None

    def offset(self) -> int:
        return self.base + self.pos

    def fill(self, n: int) -> bool:
        """At least n bytes after pos, if the file has them."""
        if len(self.buf) - self.pos >= n:
            return True
        if self.eof:
            return False
        rest = self.buf[self.pos:]
        self.base += self.pos
        self.pos = 0
        parts = [rest]
        have = len(rest)
        while have < n:
            chunk = self.f.read(max(self.CHUNK, n - have))
            if not chunk:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.buf = b"".join(parts)
        return have >= n


class Batch:
    """batch: one batch's M, timestamp, bytes, experiment (0: none) and file offset."""
    __slots__ = ("m", "time", "data", "exp", "offset")

    def __init__(self, m, time, data, exp, offset):
        self.m = m
        self.time = time
        self.data = data
        self.exp = exp
        self.offset = offset


def read_batch(src: Source):
    """-> (batch, gen), or None at a clean end; raises Broken like readBatch's errors."""
    start = src.offset()
    if not src.fill(1):
        return None
    buf, pos = src.buf, src.pos
    typ = buf[pos]
    if typ == W.EV_END_OF_GENERATION:
        src.pos = pos + 1
        return Batch(NO_ID, 0, bytes((typ,)), 0, start), 0
    if typ != W.EV_EVENT_BATCH and typ != W.EV_EXPERIMENTAL_BATCH:
        raise Broken(f"expected batch event, got event {typ}", start)
    src.fill(2 + 40)
    buf, pos = src.buf, src.pos + 1
    end = len(buf)
    exp = 0
    if typ == W.EV_EXPERIMENTAL_BATCH:
        if pos >= end:
            raise Broken("reading experiment: EOF", start)
        exp = buf[pos]
        pos += 1
    fields = []
    for what in ("gen", "M ID", "timestamp", "size"):
        v, pos = W.uvarint(buf, pos, end)
        if v is None:
            raise Broken(f"error reading batch {what}: unexpected EOF or bad varint", start)
        fields.append(v)
    gen, m, ts, size = fields
    if size > W.MAX_BATCH_SIZE:
        raise Broken(f"invalid batch size {size}, maximum is {W.MAX_BATCH_SIZE}", start)
    src.pos = pos
    if not src.fill(size):
        have = len(src.buf) - src.pos
        src.pos = len(src.buf)
        raise Broken(f"failed to read full batch: read {have} but wanted {size}", start)
    data = src.buf[src.pos:src.pos + size]
    src.pos += size
    return Batch(s64(m), ts, data, exp, start), gen


# ---------------------------------------------------------------------------
# a generation
# ---------------------------------------------------------------------------
class Generation:
    """generation (with its evTable): the batches per M in the order their Ms first
    appear, CPU samples, strings, stacks and their PCs' frames, frequency, clock snapshot."""
    __slots__ = ("gen", "batches", "batch_ms", "cpu", "min_ts", "strings", "stacks", "pcs",
                 "freq", "has_snap", "snap_time", "snap_mono", "snap_sec", "snap_nsec",
                 "exp_batches", "extra", "stack_cache", "offset")

    def __init__(self):
        self.gen = 0
        self.batches = {}
        self.batch_ms = []
        self.cpu = []
        self.min_ts = 0
        self.strings = {}
        self.stacks = {}      # id -> tuple of pcs
        self.pcs = {}         # pc -> (func id, file id, line)
        self.freq = 0.0
        self.has_snap = False
        self.snap_time = self.snap_mono = self.snap_sec = self.snap_nsec = 0
        self.exp_batches = []
        self.extra = {}       # smuggled task names (evTable.extraStrings), by value
        self.stack_cache = {}
        self.offset = 0

    def stack(self, sid: int, frames_cache: dict) -> tuple:
        if not sid:
            return ()
        st = self.stack_cache.get(sid)
        if st is None:
            out = []
            strings = self.strings
            for pc in self.stacks.get(sid, ()):
                fid, fileid, line = self.pcs[pc]
                key = (pc, strings.get(fid, ""), strings.get(fileid, ""), line)
                fr = frames_cache.get(key)
                if fr is None:
                    fr = frames_cache[key] = Frame(key[1], key[2], line, pc)
                out.append(fr)
            st = self.stack_cache[sid] = tuple(out)
        return st


def process_batch(g: Generation, b: Batch, ver: int):
    """processBatch: a table batch into its table, an event batch to its M."""
    data = b.data
    first = data[0] if data else -1
    if b.exp == 0 and first == W.EV_STRINGS:
        add_strings(g, b)
    elif b.exp == 0 and first == W.EV_STACKS:
        add_stacks(g, b)
    elif b.exp == 0 and first == W.EV_CPU_SAMPLES:
        add_cpu_samples(g, b)
    elif b.exp == 0 and ((first == W.EV_FREQUENCY and ver < 25) or
                         (first == W.EV_SYNC and ver >= 25)):
        set_sync_batch(g, b, ver)
    elif b.exp != 0:
        if ver == 22:
            raise Broken("expected batch event, got an experimental batch", b.offset)
        g.exp_batches.append(b)
    elif first == W.EV_END_OF_GENERATION:
        raise Broken("unexpectedly processing EndOfGeneration; broken trace?", b.offset)
    else:
        lst = g.batches.get(b.m)
        if lst is None:
            g.batches[b.m] = lst = []
            g.batch_ms.append(b.m)
        lst.append(b)


def add_strings(g: Generation, b: Batch):
    """addStrings."""
    data, pos, end = b.data, 1, len(b.data)
    strings = g.strings
    while pos < end:
        if data[pos] != W.EV_STRING:
            raise Broken(f"expected string event, got {data[pos]}", b.offset)
        sid, pos = W.uvarint(data, pos + 1, end)
        if sid is None:
            raise Broken("bad string ID", b.offset)
        n, pos = W.uvarint(data, pos, end)
        if n is None:
            raise Broken("bad string length", b.offset)
        if n > W.MAX_STRING_SIZE:
            raise Broken(f"invalid string size {n}, maximum is {W.MAX_STRING_SIZE}", b.offset)
        if pos + n > end:
            raise Broken(f"failed to read full string: read {end - pos} but wanted {n}",
                          b.offset)
        if sid == 0 or sid in strings:
            raise Broken(f"multiple strings with the same ID: id={sid}", b.offset)
        strings[sid] = data[pos:pos + n].decode("utf-8", "replace")
        pos += n


def add_stacks(g: Generation, b: Batch):
    """addStacks: each stack's PCs, and each PC's first (func, file, line)."""
    vals = W.uvarints(b.data)
    i, n = 1, len(vals)
    stacks, pcs = g.stacks, g.pcs
    while i < n:
        if vals[i] != W.EV_STACK:
            raise Broken(f"expected stack event, got {vals[i]}", b.offset)
        if i + 2 >= n:
            raise Broken("stack cut", b.offset)
        sid, nf = vals[i + 1], vals[i + 2]
        if nf > W.MAX_FRAMES_PER_STACK:
            raise Broken(f"invalid stack size {nf}, maximum is {W.MAX_FRAMES_PER_STACK}",
                          b.offset)
        i += 3
        if i + 4 * nf > n:
            raise Broken(f"reading stack {sid}'s frames: cut", b.offset)
        frames = vals[i:i + 4 * nf:4]
        for k in range(nf):
            pc = vals[i]
            if pc not in pcs:
                pcs[pc] = (vals[i + 1], vals[i + 2], vals[i + 3])
            i += 4
        if sid == 0 or sid in stacks:
            raise Broken(f"multiple stacks with the same ID: id={sid}", b.offset)
        stacks[sid] = tuple(frames)
    # a varint cut at the end is an error too (uvarints stopped before it)
    if _varints_cut(b.data):
        raise Broken("stack table cut", b.offset)


def _varints_cut(data) -> bool:
    return not W.uvarints_all(data)[1]


def add_cpu_samples(g: Generation, b: Batch):
    """addCPUSamples (times still in ticks: fixUpCPUSamples is in finish_generation)."""
    vals = W.uvarints(b.data)
    if _varints_cut(b.data):
        raise Broken("CPU samples cut", b.offset)
    i, n = 1, len(vals)
    while i < n:
        if vals[i] != W.EV_CPU_SAMPLE:
            raise Broken(f"expected CPU sample event, got {vals[i]}", b.offset)
        if i + 5 >= n:
            raise Broken("CPU sample cut", b.offset)
        ts, m, p, gid, stk = vals[i + 1:i + 6]
        g.cpu.append((ts, s64(m), s64(p), s64(gid) if gid else NO_ID, stk))
        i += 6


def set_sync_batch(g: Generation, b: Batch, ver: int):
    """setSyncBatch: the frequency and (go1.25+) the clock snapshot."""
    vals = W.uvarints(b.data)
    if _varints_cut(b.data):
        raise Broken("sync batch cut", b.offset)
    i, n = 0, len(vals)
    if ver >= 25:
        i = 1
    last = b.time
    while i < n:
        ev = vals[i]
        if ev == W.EV_FREQUENCY:
            if g.freq:
                raise Broken("found multiple frequency events", b.offset)
            if i + 1 >= n:
                raise Broken("frequency cut", b.offset)
            f = vals[i + 1]
            if not f:
                raise Broken("invalid frequency 0", b.offset)
            g.freq = 1.0 / (float(f) / 1e9)
            i += 2
        elif ev == W.EV_CLOCK_SNAPSHOT and ver >= 25:
            if g.has_snap:
                raise Broken("found multiple clock snapshot events", b.offset)
            if i + 4 >= n:
                raise Broken("clock snapshot cut", b.offset)
            g.has_snap = True
            last += vals[i + 1]
            g.snap_time = last
            g.snap_mono, g.snap_sec, g.snap_nsec = vals[i + 2:i + 5]
            i += 5
        else:
            raise Broken(f"expected frequency or clock snapshot event, got {ev}", b.offset)


def finish_generation(g: Generation, ver: int):
    """The end of readGeneration: a frequency (and clock snapshot) present,
    validateStackStrings, fixUpCPUSamples (times in ns, sorted as slices.SortFunc does)."""
    if not g.freq:
        raise Broken("no frequency event found", g.offset)
    if ver >= 25 and not g.has_snap:
        raise Broken("no clock snapshot event found", g.offset)
    strings, pcs = g.strings, g.pcs
    for sid, stk in g.stacks.items():
        for pc in stk:
            fr = pcs.get(pc)
            if fr is None:
                raise Broken(f"found unknown pc {pc:x} for stack {sid}", g.offset)
            if fr[0] and fr[0] not in strings:
                raise Broken(f"found invalid func string ID {fr[0]} for stack {sid}", g.offset)
            if fr[1] and fr[1] not in strings:
                raise Broken(f"found invalid file string ID {fr[1]} for stack {sid}", g.offset)
    freq = g.freq
    g.cpu = [(int(ts * freq), *rest) for ts, *rest in g.cpu]
    gosort.sort_by(g.cpu, key=lambda s: s[0])  # slices.SortFunc's order for equal times


def read_generation(src, ver):
    """readGeneration (1.26+: ended by EndOfGeneration) -> Generation or None at the end."""
    g = Generation()
    g.offset = src.offset()
    n = 0
    while True:
        r = read_batch(src)
        if r is None:
            if g.batches or n:
                raise Broken("incomplete generation found; trace likely truncated",
                              src.offset())
            return None
        b, gen = r
        n += 1
        if g.gen == 0:
            g.gen = gen
        if b.data and b.data[0] == W.EV_END_OF_GENERATION and b.exp == 0:
            break
        if gen == 0:
            raise Broken(f"invalid generation number {gen}", b.offset)
        if gen != g.gen:
            raise Broken("broken trace: missing end-of-generation event, or generations "
                          "are interleaved", b.offset)
        if g.min_ts == 0 or b.time < g.min_ts:
            g.min_ts = b.time
        process_batch(g, b, ver)
    finish_generation(g, ver)
    return g

def read_generation_with_spill(src, ver, spill):
    """readGenerationWithSpill (< 1.26) -> (gen, spill, error)."""
    g = Generation()
    g.offset = src.offset()
    if spill is not None:
        sgen, b = spill
        g.gen = sgen
        g.min_ts = b.time
        g.offset = b.offset
        process_batch(g, b, ver)
        spill = None
    err = None
    while True:
        try:
            r = read_batch(src)
        except Broken as e:
            if g.gen != 0 and ver != 22:
                err = e
                break
            raise
        if r is None:
            break
        b, gen = r
        if gen == 0:
            raise Broken(f"invalid generation number {gen}", b.offset)
        if g.gen == 0:
            g.gen = gen
        if gen == g.gen + 1:
            spill = (gen, b)
            break
        if gen != g.gen:
            raise Broken("generations out of order", b.offset)
        if g.min_ts == 0 or b.time < g.min_ts:
            g.min_ts = b.time
        process_batch(g, b, ver)
    finish_generation(g, ver)
    return g, spill, err
