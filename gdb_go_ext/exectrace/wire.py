"""The wire format of Go 1.22+ execution traces (internal/trace/tracev2): event types,
their argument counts, status codes, and the bulk decoders of a batch's varints."""
import numpy as np

# Event types (tracev2.EvXxx; the numbering only ever grew, so one table serves every
# wire version; VERSION_MAX_EVENT says which ones a version knows).
(EV_NONE, EV_EVENT_BATCH, EV_STACKS, EV_STACK, EV_STRINGS, EV_STRING, EV_CPU_SAMPLES,
 EV_CPU_SAMPLE, EV_FREQUENCY, EV_PROCS_CHANGE, EV_PROC_START, EV_PROC_STOP, EV_PROC_STEAL,
 EV_PROC_STATUS, EV_GO_CREATE, EV_GO_CREATE_SYSCALL, EV_GO_START, EV_GO_DESTROY,
 EV_GO_DESTROY_SYSCALL, EV_GO_STOP, EV_GO_BLOCK, EV_GO_UNBLOCK, EV_GO_SYSCALL_BEGIN,
 EV_GO_SYSCALL_END, EV_GO_SYSCALL_END_BLOCKED, EV_GO_STATUS, EV_STW_BEGIN, EV_STW_END,
 EV_GC_ACTIVE, EV_GC_BEGIN, EV_GC_END, EV_GC_SWEEP_ACTIVE, EV_GC_SWEEP_BEGIN, EV_GC_SWEEP_END,
 EV_GC_MARK_ASSIST_ACTIVE, EV_GC_MARK_ASSIST_BEGIN, EV_GC_MARK_ASSIST_END, EV_HEAP_ALLOC,
 EV_HEAP_GOAL, EV_GO_LABEL, EV_USER_TASK_BEGIN, EV_USER_TASK_END, EV_USER_REGION_BEGIN,
 EV_USER_REGION_END, EV_USER_LOG, EV_GO_SWITCH, EV_GO_SWITCH_DESTROY, EV_GO_CREATE_BLOCKED,
 EV_GO_STATUS_STACK, EV_EXPERIMENTAL_BATCH, EV_SYNC, EV_CLOCK_SNAPSHOT,
 EV_END_OF_GENERATION) = range(53)

EV_SYNC_EVENT = 255  # the reader's own Sync event (internal/trace's evSync)

NAMES = ("None EventBatch Stacks Stack Strings String CPUSamples CPUSample Frequency "
         "ProcsChange ProcStart ProcStop ProcSteal ProcStatus GoCreate GoCreateSyscall GoStart "
         "GoDestroy GoDestroySyscall GoStop GoBlock GoUnblock GoSyscallBegin GoSyscallEnd "
         "GoSyscallEndBlocked GoStatus STWBegin STWEnd GCActive GCBegin GCEnd GCSweepActive "
         "GCSweepBegin GCSweepEnd GCMarkAssistActive GCMarkAssistBegin GCMarkAssistEnd HeapAlloc "
         "HeapGoal GoLabel UserTaskBegin UserTaskEnd UserRegionBegin UserRegionEnd UserLog "
         "GoSwitch GoSwitchDestroy GoCreateBlocked GoStatusStack ExperimentalBatch Sync "
         "ClockSnapshot EndOfGeneration").split()

# Number of arguments of each timed event, the timestamp delta included (0: not timed).
NARGS = [0] * 256
for _ev, _n in ((EV_PROCS_CHANGE, 3), (EV_PROC_START, 3), (EV_PROC_STOP, 1), (EV_PROC_STEAL, 4),
                (EV_PROC_STATUS, 3), (EV_GO_CREATE, 4), (EV_GO_CREATE_SYSCALL, 2),
                (EV_GO_START, 3), (EV_GO_DESTROY, 1), (EV_GO_DESTROY_SYSCALL, 1), (EV_GO_STOP, 3),
                (EV_GO_BLOCK, 3), (EV_GO_UNBLOCK, 4), (EV_GO_SYSCALL_BEGIN, 3),
                (EV_GO_SYSCALL_END, 1), (EV_GO_SYSCALL_END_BLOCKED, 1), (EV_GO_STATUS, 4),
                (EV_STW_BEGIN, 3), (EV_STW_END, 1), (EV_GC_ACTIVE, 2), (EV_GC_BEGIN, 3),
                (EV_GC_END, 2), (EV_GC_SWEEP_ACTIVE, 2), (EV_GC_SWEEP_BEGIN, 2),
                (EV_GC_SWEEP_END, 3), (EV_GC_MARK_ASSIST_ACTIVE, 2), (EV_GC_MARK_ASSIST_BEGIN, 2),
                (EV_GC_MARK_ASSIST_END, 1), (EV_HEAP_ALLOC, 2), (EV_HEAP_GOAL, 2),
                (EV_GO_LABEL, 2), (EV_USER_TASK_BEGIN, 5), (EV_USER_TASK_END, 3),
                (EV_USER_REGION_BEGIN, 4), (EV_USER_REGION_END, 4), (EV_USER_LOG, 5),
                (EV_GO_SWITCH, 3), (EV_GO_SWITCH_DESTROY, 3), (EV_GO_CREATE_BLOCKED, 4),
                (EV_GO_STATUS_STACK, 5), (EV_CLOCK_SNAPSHOT, 4)):
    NARGS[_ev] = _n

# Which argument (0-based, after the timestamp delta) holds the event's own stack ID,
# and every stack / string argument (validated by internal/trace's validateTableIDs).
STACK_ARG = {EV_PROCS_CHANGE: 1, EV_GO_CREATE: 2, EV_GO_STOP: 1, EV_GO_BLOCK: 1,
             EV_GO_UNBLOCK: 2, EV_GO_SYSCALL_BEGIN: 1, EV_STW_BEGIN: 1, EV_GC_BEGIN: 1,
             EV_GC_SWEEP_BEGIN: 0, EV_GC_MARK_ASSIST_BEGIN: 0, EV_USER_TASK_BEGIN: 3,
             EV_USER_TASK_END: 1, EV_USER_REGION_BEGIN: 2, EV_USER_REGION_END: 2,
             EV_USER_LOG: 3, EV_GO_CREATE_BLOCKED: 2, EV_GO_STATUS_STACK: 3}
STACK_ARGS = {k: (v,) for k, v in STACK_ARG.items()}
STACK_ARGS[EV_GO_CREATE] = (2, 1)
STACK_ARGS[EV_GO_CREATE_BLOCKED] = (2, 1)
STRING_ARGS = {EV_GO_STOP: (0,), EV_GO_BLOCK: (0,), EV_STW_BEGIN: (0,), EV_GO_LABEL: (0,),
               EV_USER_TASK_BEGIN: (2,), EV_USER_REGION_BEGIN: (1,), EV_USER_REGION_END: (1,),
               EV_USER_LOG: (1, 2)}

# The last event type each wire version knows (version.Version.Specs()).
VERSION_MAX_EVENT = {22: EV_USER_LOG, 23: EV_EXPERIMENTAL_BATCH, 25: EV_CLOCK_SNAPSHOT,
                     26: EV_END_OF_GENERATION}

# tracev2.GoStatus / ProcStatus.
GO_BAD, GO_RUNNABLE, GO_RUNNING, GO_SYSCALL, GO_WAITING = range(5)
PROC_BAD, PROC_RUNNING, PROC_IDLE, PROC_SYSCALL, PROC_SYSCALL_ABANDONED = range(5)
GO_STATUS_NAMES = ("Bad", "Runnable", "Running", "Syscall", "Waiting")
PROC_STATUS_NAMES = ("Bad", "Running", "Idle", "Syscall", "SyscallAbandoned")
# tracev2 status -> the reader's state name (tracev2GoStatus2GoState, ...ProcStatus2ProcState).
GO_STATE_OF = ("Undetermined", "Runnable", "Running", "Syscall", "Waiting")
PROC_STATE_OF = ("Undetermined", "Running", "Idle", "Running", "Idle")

MAX_BATCH_SIZE = 64 << 10
MAX_FRAMES_PER_STACK = 128
MAX_STRING_SIZE = 1 << 10

_SEVEN = np.arange(10, dtype=np.uint64) * np.uint64(7)


def uvarints_all(data):
    """(uvarints(data), whether they took every byte of data)."""
    vals = uvarints(data)
    if not vals:
        return vals, not data
    a = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(a < 128)
    return vals, len(vals) == len(ends) and int(ends[-1]) + 1 == len(data)


def uvarints(data) -> list:
    """Every complete unsigned LEB128 varint in `data`, in order, as Python ints. Stops
    before the first that binary.Uvarint would reject (longer than 10 bytes or
    overflowing 64 bits) or that the data cuts."""
    a = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(a < 128)
    if not len(ends):
        return []
    n = int(ends[-1]) + 1
    if len(ends) == n:
        return a[:n].tolist()
    starts = np.empty(len(ends), dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lens = ends - starts + 1
    bad = np.flatnonzero((lens > 10) | ((lens == 10) & (a[ends] > 1)))
    if len(bad):
        k = int(bad[0])
        if k == 0:
            return []
        ends, starts, lens = ends[:k], starts[:k], lens[:k]
        n = int(ends[-1]) + 1
    pos = np.arange(n, dtype=np.int64) - np.repeat(starts, lens)
    vals = (a[:n] & 0x7F).astype(np.uint64) << _SEVEN[pos]
    return np.add.reduceat(vals, starts).tolist()


def uvarint(buf, pos: int, end: int):
    """One varint of buf[pos:end] -> (value, next pos), or (None, pos) when it is cut or
    overflows (binary.Uvarint's errors)."""
    x = 0
    shift = 0
    i = pos
    while i < end:
        b = buf[i]
        i += 1
        if b < 0x80:
            if i - pos > 10 or (i - pos == 10 and b > 1):
                return None, pos
            return x | (b << shift), i
        x |= (b & 0x7F) << shift
        shift += 7
        if i - pos >= 10:
            return None, pos
    return None, pos
