"""eBPF uprobes through the system's libbpf.so.1 (ctypes): the only native code of the
extension. Used by `mapwatch --ebpf` (runtime/ebpfmap.py decides where to probe and
what the counts mean) and the scheduler probe (runtime/ebpfsched.py); this module
loads, attaches, reads and removes.

The BPF objects are compiled from gdb_go_ext/target/bpf/*.bpf.c by ./install.sh
(clang -target bpf) into $GDB_GO_EXT_HOME/bpf/. Uprobes are attached through the perf
`uprobe` PMU (libbpf's bpf_program__attach_uprobe_opts), at file offsets of the
program's executable, for one process only, each with a cookie the program reads
(bpf_get_attach_cookie). Closing the links removes the probes; should this process be
killed, the kernel removes them when its file descriptors go.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import sys
from typing import Iterator, Optional

from ..errors import GoExtError

OBJECT_NAME = "mapwatch.bpf.o"
UPROBE_PMU = "/sys/bus/event_source/devices/uprobe"
LIBBPF = "libbpf.so.1"
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


class EbpfUnavailable(GoExtError):
    """eBPF cannot run here: one line naming what is missing."""


def object_candidates(name: str = OBJECT_NAME) -> list[str]:
    """Where ./install.sh may have put the compiled object, in order."""
    homes = []
    if os.environ.get("GDB_GO_EXT_HOME"):
        homes.append(os.environ["GDB_GO_EXT_HOME"])
    for p in sys.path:   # the install's venv (gdb-go, delve-bridge, gdb's site dir)
        if "/venv/lib/" in p:
            homes.append(p.split("/venv/lib/")[0])
    homes.append(os.path.join(os.path.expanduser("~"), ".local", "share", "gdb_go_ext"))
    out = [os.path.join(h, "bpf", name) for h in homes]
    out.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf", name))
    return list(dict.fromkeys(out))


def find_object(name: str = OBJECT_NAME) -> Optional[str]:
    for p in object_candidates(name):
        if os.path.isfile(p):
            return p
    return None


def _caps() -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


_lib = None


def _libbpf():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(LIBBPF, use_errno=True)
        P, I, S, U64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint64
        for name, res, args in (
                ("bpf_object__open_file", P, [ctypes.c_char_p, P]),
                ("bpf_object__load", I, [P]),
                ("bpf_object__close", None, [P]),
                ("bpf_object__find_program_by_name", P, [P, ctypes.c_char_p]),
                ("bpf_object__find_map_by_name", P, [P, ctypes.c_char_p]),
                ("bpf_program__attach_uprobe_opts", P,
                 [P, ctypes.c_int, ctypes.c_char_p, S, P]),
                ("bpf_link__destroy", I, [P]),
                ("bpf_map__update_elem", I, [P, P, S, P, S, U64]),
                ("bpf_map__lookup_elem", I, [P, P, S, P, S, U64]),
                ("bpf_map__get_next_key", I, [P, P, P, S]),
                ("bpf_map__fd", I, [P]),
                ("bpf_map__set_max_entries", I, [P, ctypes.c_uint32]),
                ("ring_buffer__new", P, [I, P, P, P]),
                ("ring_buffer__poll", I, [P, I]),
                ("ring_buffer__consume", I, [P]),
                ("ring_buffer__free", None, [P]),
                ("libbpf_set_print", P, [P])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _lib = lib
    return _lib


# libbpf's log: kept (the last lines name why a load or attach failed), never printed
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_log: list[str] = []


def _on_print(level, fmt, ap):
    try:
        libc = ctypes.CDLL(None)
        buf = ctypes.create_string_buffer(1024)
        libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                   ctypes.c_void_p]
        libc.vsnprintf(buf, len(buf), fmt, ap)
        _log.append(buf.value.decode("utf-8", "replace").rstrip())
        del _log[:-40]
    except Exception:   # noqa: BLE001  a log line is never worth a crash
        pass
    return 0


_print_cb = _PRINT_FN(_on_print)


def problem(name: str = OBJECT_NAME) -> Optional[str]:
    """Why eBPF uprobes cannot run here (one line naming what is missing), or None.
    name: the BPF object wanted (mapwatch.bpf.o, sched.bpf.o)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"eBPF probes need amd64 (this is {platform.machine()})"
    if not os.path.isdir(UPROBE_PMU):
        return f"no uprobe PMU ({UPROBE_PMU} is missing: a kernel without CONFIG_UPROBE_EVENTS)"
    try:
        _libbpf()
    except OSError:
        return f"no {LIBBPF} (install Debian's libbpf1)"
    if find_object(name) is None:
        return (f"no compiled BPF object ({name}): run ./install.sh with clang and "
                "libbpf-dev installed")
    caps = _caps()
    if caps is not None:
        has = lambda c: bool(caps >> c & 1)   # noqa: E731
        if not (has(CAP_BPF) or has(CAP_SYS_ADMIN)):
            return "no CAP_BPF (run as root, or grant CAP_BPF and CAP_PERFMON)"
        if not (has(CAP_PERFMON) or has(CAP_SYS_ADMIN)):
            return "no CAP_PERFMON (run as root, or grant CAP_BPF and CAP_PERFMON)"
    return None


class _UprobeOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("ref_ctr_offset", ctypes.c_size_t),
                ("bpf_cookie", ctypes.c_uint64), ("retprobe", ctypes.c_bool),
                ("func_name", ctypes.c_char_p)]


def _why(what: str, err: int) -> str:
    tail = next((ln for ln in reversed(_log) if ln), "")
    msg = f"{what}: {os.strerror(err) if err else 'failed'}"
    return msg + (f" (libbpf: {tail})" if tail else "")


_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class RingBuffer:
    """libbpf's ring_buffer over one BPF_MAP_TYPE_RINGBUF map (ring_buffer__new/poll)."""

    def __init__(self, lib, map_fd: int, on_record):
        def sample(ctx, data, size):
            try:
                on_record(ctypes.string_at(data, size))
            except Exception:   # noqa: BLE001  never unwind through libbpf
                return -1
            return 0
        self.lib = lib
        self._cb = _SAMPLE_FN(sample)       # kept alive as long as the ring buffer
        self.rb = lib.ring_buffer__new(map_fd, ctypes.cast(self._cb, ctypes.c_void_p),
                                       None, None)
        if not self.rb:
            raise GoExtError(_why("cannot read the BPF ring buffer", ctypes.get_errno()))

    def poll(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms for records, hand them over; their number (<0: -errno)."""
        return self.lib.ring_buffer__poll(self.rb, timeout_ms) if self.rb else 0

    def consume(self) -> int:
        """Hand over every record there now, without waiting."""
        return self.lib.ring_buffer__consume(self.rb) if self.rb else 0

    def free(self) -> None:
        if self.rb:
            self.lib.ring_buffer__free(self.rb)
            self.rb = None


class BpfObject:
    """One loaded BPF object, its uprobe links, and its maps. close() removes everything."""

    def __init__(self, path: Optional[str] = None, name: str = OBJECT_NAME,
                 max_entries: Optional[dict] = None):
        """max_entries: {map name: entries} set before the load (a ring buffer's bytes)."""
        why = problem(name)
        if why:
            raise EbpfUnavailable(why)
        self.lib = lib = _libbpf()
        lib.libbpf_set_print(ctypes.cast(_print_cb, ctypes.c_void_p))
        self.path = path or find_object(name)
        self.links: list[int] = []
        self.obj = lib.bpf_object__open_file(self.path.encode(), None)
        if not self.obj:
            raise EbpfUnavailable(_why(f"cannot open {self.path}", ctypes.get_errno()))
        for mname, n in (max_entries or {}).items():
            rc = lib.bpf_map__set_max_entries(self._map(mname), n)
            if rc:
                lib.bpf_object__close(self.obj)
                self.obj = None
                raise GoExtError(_why(f"cannot size BPF map {mname}", -rc))
        rc = lib.bpf_object__load(self.obj)
        if rc:
            err = -rc
            lib.bpf_object__close(self.obj)
            self.obj = None
            if err == errno.EPERM:
                raise EbpfUnavailable("no CAP_BPF: the kernel refused to load the BPF program")
            raise EbpfUnavailable(_why("the kernel refused the BPF program", err))

    def _map(self, name: str) -> int:
        m = self.lib.bpf_object__find_map_by_name(self.obj, name.encode())
        if not m:
            raise GoExtError(f"the BPF object has no map {name}")
        return m

    def update(self, name: str, key: bytes, value: bytes) -> None:
        rc = self.lib.bpf_map__update_elem(self._map(name), key, len(key), value, len(value), 0)
        if rc:
            raise GoExtError(_why(f"cannot set BPF map {name}", -rc))

    def lookup(self, name: str, key: bytes, value_size: int) -> Optional[bytes]:
        buf = ctypes.create_string_buffer(value_size)
        rc = self.lib.bpf_map__lookup_elem(self._map(name), key, len(key), buf, value_size, 0)
        return None if rc else buf.raw

    def items(self, name: str, key_size: int, value_size: int,
              limit: int = 1 << 20) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of a hash map (as they are while it is read)."""
        m = self._map(name)
        cur = None
        nxt = ctypes.create_string_buffer(key_size)
        val = ctypes.create_string_buffer(value_size)
        for _ in range(limit):
            if self.lib.bpf_map__get_next_key(m, cur, nxt, key_size):
                return
            key = nxt.raw
            if not self.lib.bpf_map__lookup_elem(m, key, key_size, val, value_size, 0):
                yield key, val.raw
            cur = ctypes.create_string_buffer(key, key_size)

    def ring_buffer(self, name: str, on_record) -> "RingBuffer":
        """A reader of the ring buffer map name: on_record(bytes) per record, called from
        poll()/consume() in the calling thread."""
        return RingBuffer(self.lib, self.lib.bpf_map__fd(self._map(name)), on_record)

    def attach_uprobe(self, program: str, pid: int, binary: str, file_offset: int,
                      cookie: int) -> None:
        prog = self.lib.bpf_object__find_program_by_name(self.obj, program.encode())
        if not prog:
            raise GoExtError(f"the BPF object has no program {program}")
        opts = _UprobeOpts(sz=ctypes.sizeof(_UprobeOpts), bpf_cookie=cookie)
        link = self.lib.bpf_program__attach_uprobe_opts(prog, pid, binary.encode(), file_offset,
                                                        ctypes.byref(opts))
        if not link:
            err = ctypes.get_errno()
            raise GoExtError(_why(f"cannot attach a uprobe at {binary}+{file_offset:#x}", err))
        self.links.append(link)

    def detach(self) -> list[str]:
        """Remove every uprobe (each tried); sentences for failures."""
        errs = []
        while self.links:
            link = self.links.pop()
            rc = self.lib.bpf_link__destroy(link)
            if rc:
                errs.append(_why("cannot remove a uprobe", -rc))
        return errs

    def close(self) -> list[str]:
        errs = self.detach()
        if self.obj:
            self.lib.bpf_object__close(self.obj)
            self.obj = None
        return errs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pie_bias(pid: int, exe_path: str, elf) -> int:
    """Where the kernel loaded the executable, less its link-time address
    (/proc/PID/maps: the executable's mapping at file offset 0); 0 for non-PIE."""
    st = os.stat(exe_path)
    first = min(s.vaddr for s in elf.loads)
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6:
                continue
            if int(parts[4]) != st.st_ino or int(parts[2], 16) != 0:
                continue
            start = int(parts[0].split("-")[0], 16)
            return start - (first & ~0xFFF)
    raise GoExtError(f"cannot find {exe_path} in /proc/{pid}/maps")
