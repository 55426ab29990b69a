"""The ordering (internal/trace's order.go): the scheduler model - goroutine, P and M
states, sequence numbers, GC, ranges, tasks, regions - that says whether an event can
happen next, and what it queues.

One function per event kind, `advance_X(o, c, gen, ms)`, behind the table ADVANCE (Go's
orderingDispatch). Each takes the ordering, the cursor whose event is tried (c.typ,
c.time, c.m, c.args), the generation (its number and string table) and the M's state,
whose p and g are the event's context (Go's curCtx) and which the function updates to
the new context when the event goes through. It returns None, having changed nothing,
when the event cannot happen yet (another M must go first); raises Broken when it can
never happen; else returns the event it lets through as a tuple
(type, time, M, P, G, args, extra, generation), and appends any further events it makes
(GoSwitch's three, GoDestroySyscall's ProcSteal) to o.queue, to be given out after it.
Ordering.advance queues the returned event first (Go's queue, and its bool); the
reader's hot loop calls the same functions through the same table and takes the
returned event straight.
"""
from collections import deque

from .wire import (EV_GC_ACTIVE, EV_GC_BEGIN, EV_GC_END, EV_GC_MARK_ASSIST_ACTIVE,
                   EV_GC_MARK_ASSIST_BEGIN, EV_GC_MARK_ASSIST_END, EV_GC_SWEEP_ACTIVE,
                   EV_GC_SWEEP_BEGIN, EV_GC_SWEEP_END, EV_GO_BLOCK, EV_GO_CREATE,
                   EV_GO_CREATE_BLOCKED, EV_GO_CREATE_SYSCALL, EV_GO_DESTROY,
                   EV_GO_DESTROY_SYSCALL, EV_GO_LABEL, EV_GO_START, EV_GO_STATUS,
                   EV_GO_STATUS_STACK, EV_GO_STOP, EV_GO_SWITCH, EV_GO_SWITCH_DESTROY,
                   EV_GO_SYSCALL_BEGIN, EV_GO_SYSCALL_END, EV_GO_SYSCALL_END_BLOCKED,
                   EV_GO_UNBLOCK, EV_HEAP_ALLOC, EV_HEAP_GOAL, EV_PROCS_CHANGE,
                   EV_PROC_START, EV_PROC_STATUS, EV_PROC_STEAL, EV_PROC_STOP,
                   EV_STW_BEGIN, EV_STW_END, EV_USER_LOG, EV_USER_REGION_BEGIN,
                   EV_USER_REGION_END, EV_USER_TASK_BEGIN, EV_USER_TASK_END, GO_RUNNABLE,
                   GO_RUNNING, GO_STATE_OF, GO_STATUS_NAMES, GO_SYSCALL, GO_WAITING, NAMES,
                   PROC_IDLE, PROC_RUNNING, PROC_STATE_OF, PROC_STATUS_NAMES, PROC_SYSCALL,
                   PROC_SYSCALL_ABANDONED)
from .base import NO_ID, NO_TASK, Broken, SIGN64, WRAP64, s64

# gcState (order.go): whether the GC is running, as the trace has shown it so far.
GC_UNDETERMINED, GC_NOT_RUNNING, GC_RUNNING = range(3)

# The Begin event of each range End/Active event (its spec's StartEv).
START_OF = {EV_GO_SYSCALL_END: EV_GO_SYSCALL_BEGIN,
            EV_GO_SYSCALL_END_BLOCKED: EV_GO_SYSCALL_BEGIN, EV_STW_END: EV_STW_BEGIN,
            EV_GC_ACTIVE: EV_GC_BEGIN, EV_GC_END: EV_GC_BEGIN,
            EV_GC_SWEEP_ACTIVE: EV_GC_SWEEP_BEGIN, EV_GC_SWEEP_END: EV_GC_SWEEP_BEGIN,
            EV_GC_MARK_ASSIST_ACTIVE: EV_GC_MARK_ASSIST_BEGIN,
            EV_GC_MARK_ASSIST_END: EV_GC_MARK_ASSIST_BEGIN,
            EV_USER_REGION_END: EV_USER_REGION_BEGIN}


class GState:
    """A goroutine's state (gState): status, the generation and sequence number of its
    last status, its active regions and ranges."""
    __slots__ = ("status", "sgen", "seq", "regions", "ranges")

    def __init__(self, status, sgen, seq=0):
        self.status = status
        self.sgen = sgen
        self.seq = seq
        self.regions = []
        self.ranges = []


class PState:
    """A P's state (pState)."""
    __slots__ = ("status", "sgen", "seq", "ranges")

    def __init__(self, status, sgen, seq=0):
        self.status = status
        self.sgen = sgen
        self.seq = seq
        self.ranges = []


class MState:
    """An M's scheduling context (mState): the G it runs and the P it holds."""
    __slots__ = ("g", "p")

    def __init__(self, g=NO_ID, p=NO_ID):
        self.g = g
        self.p = p


def validate_ctx(m, p, g, mp, pp, gp):
    """validateCtx with M/P/G requirements: True = must have, False = must not have,
    None = may have."""
    if mp is True and m == NO_ID:
        raise Broken("expected a thread but didn't have one", -1)
    if pp is True and p == NO_ID:
        raise Broken("expected a proc but didn't have one", -1)
    if pp is False and p != NO_ID:
        raise Broken("expected no proc but had one", -1)
    if gp is True and g == NO_ID:
        raise Broken("expected a goroutine but didn't have one", -1)
    if gp is False and g != NO_ID:
        raise Broken("expected no goroutine but had one", -1)


class Ordering:
    """ordering: the state of every G, P and M seen, the GC, the tasks, and the queue of
    events let through."""

    def __init__(self, ver):
        self.ver = ver
        self.gs = {}
        self.ps = {}
        self.ms = {}
        self.tasks = {}
        self.gc_seq = 0
        self.gc_state = GC_UNDETERMINED
        self.initial_gen = 0
        self.queue = deque()

    def advance(self, c, gen) -> bool:
        """ordering.Advance: try to let the event under cursor c through; queue what it
        makes. Sets the first generation and makes the M's state on its first event (the
        state stays on the cursor, c.ms, from then on: an M's state never goes away), so a
        caller that holds c.ms may call ADVANCE[c.typ] directly."""
        if not self.initial_gen:
            self.initial_gen = gen.gen
        ms = c.ms
        if ms is None:
            m = c.m
            if m == NO_ID:  # no thread: an empty context, not kept
                ms = MState()
            else:
                ms = self.ms.get(m)
                if ms is None:
                    ms = self.ms[m] = MState()
                c.ms = ms
        queued = len(self.queue)
        ev = ADVANCE[c.typ](self, c, gen, ms)
        if ev is None:
            return False
        self.queue.insert(queued, ev)  # before what the call queued after it
        return True


# ---------------------------------------------------------------------------
# procs
# ---------------------------------------------------------------------------
def advance_proc_status(o, c, gen, ms):
    """advanceProcStatus."""
    args = c.args
    gnum = gen.gen
    pid, status = s64(args[0]), args[1]
    if status >= 5:
        raise Broken(f"invalid status for proc {pid}: {status}", -1)
    old = PROC_STATE_OF[status]
    st = o.ps.get(pid)
    if st is not None:
        if status == PROC_SYSCALL_ABANDONED and st.status == PROC_SYSCALL:
            old = "Running"
            args = [args[0], PROC_SYSCALL] + list(args[2:])
        elif status == PROC_SYSCALL_ABANDONED and st.status == PROC_SYSCALL_ABANDONED:
            old = "Idle"
        elif st.status != status:
            raise Broken(f"inconsistent status for proc {pid}: old "
                         f"{PROC_STATUS_NAMES[st.status]} vs. new "
                         f"{PROC_STATUS_NAMES[status]}", -1)
        st.sgen, st.seq = gnum, 0
    else:
        o.ps[pid] = PState(status, gnum)
        old = "Undetermined" if gnum == o.initial_gen else "NotExist"
    em, ep, eg = c.m, ms.p, ms.g
    if status == PROC_RUNNING or status == PROC_SYSCALL:
        ms.p = pid
    if status == PROC_SYSCALL_ABANDONED and old == "Running":
        found = False
        for mid, other in o.ms.items():
            if other.p == pid:
                em, ep, eg = mid, pid, other.g
                found = True
        if not found:
            raise Broken(f"failed to find sched context for proc {pid} that's about to be "
                         "stolen", -1)
    return (c.typ, c.time, em, ep, eg, args, old, gen)


def advance_proc_start(o, c, gen, ms):
    """advanceProcStart."""
    args = c.args
    pid = args[0]
    if pid >= SIGN64:
        pid -= WRAP64
    st = o.ps.get(pid)
    if st is None or st.status != PROC_IDLE or st.sgen != gen.gen or \
            args[1] != st.seq + 1 or ms.p != NO_ID:
        return None
    m = c.m
    if m == NO_ID:
        validate_ctx(m, ms.p, ms.g, True, False, None)
    st.status = PROC_RUNNING
    st.seq = args[1]
    ev = (c.typ, c.time, m, ms.p, ms.g, args, None, gen)
    ms.p = pid
    return ev


def advance_proc_stop(o, c, gen, ms):
    """advanceProcStop."""
    p = ms.p
    st = o.ps.get(p)
    if st is None:
        raise Broken(f"event ProcStop for proc ({p}) that doesn't exist", -1)
    if st.status != PROC_RUNNING and st.status != PROC_SYSCALL:
        raise Broken("ProcStop event for proc that's not Running or Syscall", -1)
    validate_ctx(c.m, p, ms.g, True, True, None)
    st.status = PROC_IDLE
    ev = (c.typ, c.time, c.m, p, ms.g, c.args, None, gen)
    ms.p = NO_ID
    return ev


def advance_proc_steal(o, c, gen, ms):
    """advanceProcSteal."""
    args = c.args
    m, p, g = c.m, ms.p, ms.g
    pid = s64(args[0])
    st = o.ps.get(pid)
    if st is None or (st.status != PROC_SYSCALL and
                      st.status != PROC_SYSCALL_ABANDONED) or \
            st.sgen != gen.gen or args[1] != st.seq + 1:
        return None
    validate_ctx(m, p, g, True, None, None)
    old = st.status
    st.status = PROC_IDLE
    st.seq = args[1]
    if old != PROC_SYSCALL_ABANDONED:
        mid = s64(args[2])
        if mid == m:
            if p != pid:
                raise Broken(f"tried to self-steal proc {pid} (thread {mid}), but got proc {p} "
                             "instead", -1)
            ms.p = NO_ID
        else:
            other = o.ms.get(mid)
            if other is None:
                raise Broken(f"stole proc from non-existent thread {mid}", -1)
            if other.p != pid:
                raise Broken(f"tried to steal proc {pid} from thread {mid}, but got proc "
                             f"{other.p} instead", -1)
            other.p = NO_ID
    return (c.typ, c.time, m, p, g, args, old, gen)


# ---------------------------------------------------------------------------
# goroutines
# ---------------------------------------------------------------------------
def advance_go_status(o, c, gen, ms):
    """advanceGoStatus (GoStatus, GoStatusStack)."""
    args = c.args
    gnum = gen.gen
    m, g = c.m, ms.g
    gid, mid, status = s64(args[0]), s64(args[1]), args[2]
    if status >= 5:
        raise Broken(f"invalid status for goroutine {gid}: {status}", -1)
    old = GO_STATE_OF[status]
    st = o.gs.get(gid)
    if st is not None:
        if st.status != status:
            raise Broken(f"inconsistent status for goroutine {gid}: old "
                         f"{GO_STATUS_NAMES[st.status]} vs. new "
                         f"{GO_STATUS_NAMES[status]}", -1)
        st.sgen, st.seq = gnum, 0
    elif gnum == o.initial_gen:
        o.gs[gid] = GState(status, gnum)
        old = "Undetermined"
    else:
        raise Broken(f"found goroutine status for new goroutine after the first generation: "
                     f"id={gid} status={GO_STATUS_NAMES[status]}", -1)
    em, eg = m, g
    if status == GO_RUNNING:
        ms.g = gid
    elif status == GO_SYSCALL:
        if mid == NO_ID:
            raise Broken(f"found goroutine {gid} in syscall without a thread", -1)
        if mid == m:
            if gnum != o.initial_gen and g != gid:
                raise Broken(f"inconsistent thread for syscalling goroutine {gid}: thread has "
                             f"goroutine {g}", -1)
            ms.g = gid
        else:
            other = o.ms.get(mid)
            if other is not None:
                if other.g != gid:
                    raise Broken(f"inconsistent thread for syscalling goroutine {gid}: thread "
                                 f"has goroutine {other.g}", -1)
                eg = other.g
            else:
                o.ms[mid] = MState(gid, NO_ID)
            em = mid
    return (c.typ, c.time, em, ms.p, eg, args, old, gen)


def advance_go_create(o, c, gen, ms):
    """advanceGoCreate (GoCreate, GoCreateBlocked)."""
    typ = c.typ
    g = ms.g
    validate_ctx(c.m, ms.p, g, True, True, None)
    st = o.gs.get(g)
    if st is not None and st.status != GO_RUNNING:
        raise Broken(f"{NAMES[typ]} event for goroutine that's not Running", -1)
    newg = s64(c.args[0])
    if newg in o.gs:
        raise Broken(f"tried to create goroutine ({newg}) that already exists", -1)
    o.gs[newg] = GState(GO_WAITING if typ == EV_GO_CREATE_BLOCKED else GO_RUNNABLE,
                        gen.gen)
    return (typ, c.time, c.m, ms.p, g, c.args, None, gen)


def advance_go_stop_exec(o, c, gen, ms):
    """advanceGoStopExec (GoBlock, GoStop, GoDestroy): the M's goroutine stops running."""
    typ = c.typ
    m, p, g = c.m, ms.p, ms.g
    if m == NO_ID or p == NO_ID or g == NO_ID:
        validate_ctx(m, p, g, True, True, True)
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"event {NAMES[typ]} for goroutine ({g}) that doesn't exist", -1)
    if st.status != GO_RUNNING:
        raise Broken(f"{NAMES[typ]} event for goroutine that's not Running", -1)
    if typ == EV_GO_BLOCK:
        st.status = GO_WAITING
    elif typ == EV_GO_STOP:
        st.status = GO_RUNNABLE
    else:
        del o.gs[g]
    ev = (typ, c.time, m, p, g, c.args, None, gen)
    ms.g = NO_ID
    return ev


def advance_go_start(o, c, gen, ms):
    """advanceGoStart: a runnable goroutine starts on the M, which has a P and no G."""
    args = c.args
    gid = args[0]
    if gid >= SIGN64:
        gid -= WRAP64
    st = o.gs.get(gid)
    if st is None or st.status != GO_RUNNABLE or st.sgen != gen.gen or \
            args[1] != st.seq + 1:
        return None
    m, p, g = c.m, ms.p, ms.g
    if m == NO_ID or p == NO_ID or g != NO_ID:
        validate_ctx(m, p, g, True, True, False)
    st.status = GO_RUNNING
    st.seq = args[1]
    ev = (EV_GO_START, c.time, m, p, g, args, None, gen)
    ms.g = gid
    return ev


def advance_go_unblock(o, c, gen, ms):
    """advanceGoUnblock: a waiting goroutine becomes runnable (no context required)."""
    args = c.args
    gid = args[0]
    if gid >= SIGN64:
        gid -= WRAP64
    st = o.gs.get(gid)
    if st is None or st.status != GO_WAITING or st.sgen != gen.gen or \
            args[1] != st.seq + 1:
        return None
    st.status = GO_RUNNABLE
    st.seq = args[1]
    return (EV_GO_UNBLOCK, c.time, c.m, ms.p, ms.g, args, None, gen)


def advance_go_switch(o, c, gen, ms):
    """advanceGoSwitch (GoSwitch, GoSwitchDestroy): the M's goroutine blocks (or dies) and
    hands the M to a waiting one; queued as the three events Go's reader makes of it."""
    typ, t, args = c.typ, c.time, c.args
    m, p, g = c.m, ms.p, ms.g
    validate_ctx(m, p, g, True, True, True)
    cur = o.gs.get(g)
    if cur is None:
        raise Broken(f"event {NAMES[typ]} for goroutine ({g}) that doesn't exist", -1)
    if cur.status != GO_RUNNING:
        raise Broken(f"{NAMES[typ]} event for goroutine that's not Running", -1)
    nextg = s64(args[0])
    nst = o.gs.get(nextg)
    if nst is None or nst.status != GO_WAITING or nst.sgen != gen.gen or \
            args[1] != nst.seq + 1:
        return None
    q = o.queue
    if typ == EV_GO_SWITCH:
        cur.status = GO_WAITING
        q.append((EV_GO_BLOCK, t, m, p, g, (0, 0), None, gen))
    else:
        del o.gs[g]
        q.append((EV_GO_DESTROY, t, m, p, g, (), None, gen))
    nst.status = GO_RUNNING
    nst.seq = args[1]
    q.append((EV_GO_START, t, m, p, NO_ID, (args[0], args[1]), None, gen))
    ms.g = nextg
    return (typ, t, m, p, g, args, None, gen)


def advance_go_syscall_begin(o, c, gen, ms):
    """advanceGoSyscallBegin: the goroutine and its P enter a syscall."""
    args = c.args
    m, p, g = c.m, ms.p, ms.g
    validate_ctx(m, p, g, True, True, True)
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"event GoSyscallBegin for goroutine ({g}) that doesn't exist", -1)
    if st.status != GO_RUNNING:
        raise Broken("GoSyscallBegin event for goroutine that's not Running", -1)
    st.status = GO_SYSCALL
    pst = o.ps.get(p)
    if pst is None:
        raise Broken(f"uninitialized proc {p} found during GoSyscallBegin", -1)
    pst.status = PROC_SYSCALL
    if pst.sgen != gen.gen or args[0] != pst.seq + 1:
        raise Broken("failed to advance GoSyscallBegin: can't make sequence", -1)
    pst.seq = args[0]
    return (c.typ, c.time, m, p, g, args, None, gen)


def advance_go_syscall_end(o, c, gen, ms):
    """advanceGoSyscallEnd: back from a syscall with the same P."""
    m, p, g = c.m, ms.p, ms.g
    validate_ctx(m, p, g, True, True, True)
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"event GoSyscallEnd for goroutine ({g}) that doesn't exist", -1)
    if st.status != GO_SYSCALL:
        raise Broken("GoSyscallEnd event for goroutine that's not Syscall", -1)
    st.status = GO_RUNNING
    pst = o.ps.get(p)
    if pst is None:
        raise Broken(f"uninitialized proc {p} found during GoSyscallEnd", -1)
    if pst.status != PROC_SYSCALL:
        raise Broken(f"expected proc {p} in state Syscall", -1)
    pst.status = PROC_RUNNING
    return (c.typ, c.time, m, p, g, c.args, None, gen)


def advance_go_syscall_end_blocked(o, c, gen, ms):
    """advanceGoSyscallEndBlocked: back from a syscall whose P was stolen (waits until the
    steal has been seen when the M still holds the P)."""
    m, p, g = c.m, ms.p, ms.g
    if p != NO_ID:
        pst = o.ps.get(p)
        if pst is None:
            raise Broken(f"uninitialized proc {p} found during GoSyscallEndBlocked", -1)
        if pst.status == PROC_SYSCALL:
            return None
    validate_ctx(m, p, g, True, None, True)
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"event GoSyscallEndBlocked for goroutine ({g}) that doesn't exist", -1)
    if st.status != GO_SYSCALL:
        raise Broken("GoSyscallEndBlocked event for goroutine that's not Syscall", -1)
    st.status = GO_RUNNABLE
    ev = (c.typ, c.time, m, p, g, c.args, None, gen)
    ms.g = NO_ID
    return ev


def advance_go_create_syscall(o, c, gen, ms):
    """advanceGoCreateSyscall: a goroutine made for a thread calling into Go (cgo
    callback, a new M's g0...), in a syscall, without a P."""
    m, p, g = c.m, ms.p, ms.g
    validate_ctx(m, p, g, True, None, False)
    newg = s64(c.args[0])
    if newg in o.gs:
        raise Broken(f"tried to create goroutine ({newg}) in syscall that already exists", -1)
    o.gs[newg] = GState(GO_SYSCALL, gen.gen)
    ev = (c.typ, c.time, m, p, g, c.args, None, gen)
    ms.g = newg
    return ev


def advance_go_destroy_syscall(o, c, gen, ms):
    """advanceGoDestroySyscall: the syscalling goroutine goes away; a P it held is left
    abandoned, which Go's reader gives out as a ProcSteal: before the event from go1.23
    on (its queue), after it in go1.22 (its extraEvent)."""
    t = c.time
    m, p, g = c.m, ms.p, ms.g
    validate_ctx(m, p, g, True, None, True)
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"event GoDestroySyscall for goroutine ({g}) that doesn't exist", -1)
    if st.status != GO_SYSCALL:
        raise Broken("GoDestroySyscall event for goroutine that's not Syscall", -1)
    del o.gs[g]
    ms.g = NO_ID
    if p != NO_ID:
        pst = o.ps.get(p)
        if pst is None:
            raise Broken(f"found invalid proc {p} during GoDestroySyscall", -1)
        if pst.status != PROC_SYSCALL:
            raise Broken(f"proc {p} in unexpected state during GoDestroySyscall", -1)
        pst.status = PROC_SYSCALL_ABANDONED
        ms.p = NO_ID
        steal = (EV_PROC_STEAL, t, m, p, g, (p & (WRAP64 - 1), 0, 0), PROC_SYSCALL, gen)
        if o.ver == 22:  # go1.22's reader: the steal is its extraEvent, given out after
            o.queue.append(steal)
            return (c.typ, t, m, p, g, c.args, None, gen)
        o.queue.append((c.typ, t, m, p, g, c.args, None, gen))
        return steal
    return (c.typ, t, m, p, g, c.args, None, gen)


# ---------------------------------------------------------------------------
# annotations, metrics, tasks, regions
# ---------------------------------------------------------------------------
def advance_annotation(o, c, gen, ms):
    """advanceAnnotation (ProcsChange, GoLabel, UserLog): needs a running goroutine."""
    validate_ctx(c.m, ms.p, ms.g, True, True, True)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, None, gen)


def advance_heap_metric(o, c, gen, ms):
    """advanceHeapMetric (HeapAlloc, HeapGoal)."""
    validate_ctx(c.m, ms.p, ms.g, True, True, None)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, None, gen)


def advance_user_task_begin(o, c, gen, ms):
    """advanceUserTaskBegin."""
    args = c.args
    tid = args[0]
    if tid in o.tasks:
        raise Broken(f"task ID conflict: {tid}", -1)
    parent = args[1]
    if parent == 0:
        parent = NO_TASK
        args = [tid, NO_TASK] + list(args[2:])
    name = gen.strings.get(args[2]) if args[2] else ""
    if name is None:
        raise Broken(f"invalid string ID {args[2]} for UserTaskBegin event", -1)
    o.tasks[tid] = (name, parent)
    validate_ctx(c.m, ms.p, ms.g, True, True, True)
    return (c.typ, c.time, c.m, ms.p, ms.g, args, None, gen)


def advance_user_task_end(o, c, gen, ms):
    """advanceUserTaskEnd: the task's parent and type ride along as the extra."""
    info = o.tasks.pop(c.args[0], None)
    x = (info[1], info[0]) if info is not None else (NO_TASK, "")
    validate_ctx(c.m, ms.p, ms.g, True, True, True)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, x, gen)


def advance_user_region(o, c, gen, ms):
    """advanceUserRegionBegin and advanceUserRegionEnd: the goroutine's stack of regions."""
    typ, args = c.typ, c.args
    g = ms.g
    validate_ctx(c.m, ms.p, g, True, True, True)
    name = gen.strings.get(args[1]) if args[1] else ""
    if name is None:
        raise Broken(f"invalid string ID {args[1]} for {NAMES[typ]} event", -1)
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"encountered Ev{NAMES[typ]} without known state for current "
                     f"goroutine {g}", -1)
    r = (args[0], name)
    if typ == EV_USER_REGION_BEGIN:
        st.regions.append(r)
    elif st.regions:
        if st.regions[-1] != r:
            raise Broken(f"misuse of region in goroutine {g}: region end {r} when the "
                         f"inner-most active region start event is {st.regions[-1]}", -1)
        st.regions.pop()
    return (typ, c.time, c.m, ms.p, g, args, None, gen)


# ---------------------------------------------------------------------------
# the GC and ranges
# ---------------------------------------------------------------------------
def advance_gc_active(o, c, gen, ms):
    """advanceGCActive: the GC was running when the generation began."""
    seq = c.args[0]
    if gen.gen == o.initial_gen:
        if o.gc_state != GC_UNDETERMINED:
            raise Broken("GCActive in the first generation isn't first GC event", -1)
        o.gc_seq, o.gc_state = seq, GC_RUNNING
    else:
        if seq != o.gc_seq + 1:
            return None
        if o.gc_state != GC_RUNNING:
            raise Broken("encountered GCActive while GC was not in progress", -1)
        o.gc_seq = seq
        validate_ctx(c.m, ms.p, ms.g, True, True, True)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, None, gen)


def advance_gc_begin(o, c, gen, ms):
    """advanceGCBegin."""
    seq = c.args[0]
    if o.gc_state == GC_UNDETERMINED:
        o.gc_seq, o.gc_state = seq, GC_RUNNING
    else:
        if seq != o.gc_seq + 1:
            return None
        if o.gc_state == GC_RUNNING:
            raise Broken("encountered GCBegin while GC was already in progress", -1)
        o.gc_seq, o.gc_state = seq, GC_RUNNING
        validate_ctx(c.m, ms.p, ms.g, True, True, True)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, None, gen)


def advance_gc_end(o, c, gen, ms):
    """advanceGCEnd."""
    seq = c.args[0]
    if seq != o.gc_seq + 1:
        return None
    if o.gc_state == GC_NOT_RUNNING:
        raise Broken("encountered GCEnd when GC was not in progress", -1)
    if o.gc_state == GC_UNDETERMINED:
        raise Broken("encountered GCEnd when GC was in an undetermined state", -1)
    o.gc_seq, o.gc_state = seq, GC_NOT_RUNNING
    validate_ctx(c.m, ms.p, ms.g, True, True, True)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, None, gen)


def advance_gc_sweep_begin(o, c, gen, ms):
    """advanceGCSweepBegin: a range on the P."""
    p = ms.p
    validate_ctx(c.m, p, ms.g, True, True, None)
    pst = o.ps.get(p)
    if pst is None:
        raise Broken(f"GCSweepBegin on unknown proc {p}", -1)
    key = (EV_GC_SWEEP_BEGIN, 0)
    if key in pst.ranges:
        raise Broken("discovered event already in-flight for when starting event "
                     "GCSweepBegin", -1)
    pst.ranges.append(key)
    return (c.typ, c.time, c.m, p, ms.g, c.args, None, gen)


def advance_gc_sweep_active(o, c, gen, ms):
    """advanceGCSweepActive: the P was sweeping when the generation began."""
    pid = s64(c.args[0])
    pst = o.ps.get(pid)
    if pst is None:
        raise Broken(f"encountered GCSweepActive for unknown proc {pid}", -1)
    active_range(pst.ranges, (EV_GC_SWEEP_BEGIN, 0), gen.gen == o.initial_gen)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, None, gen)


def advance_gc_sweep_end(o, c, gen, ms):
    """advanceGCSweepEnd."""
    p = ms.p
    validate_ctx(c.m, p, ms.g, True, True, None)
    pst = o.ps.get(p)
    if pst is None:
        raise Broken(f"GCSweepEnd on unknown proc {p}", -1)
    end_range(pst.ranges, EV_GC_SWEEP_BEGIN)
    return (c.typ, c.time, c.m, p, ms.g, c.args, None, gen)


def advance_go_range_begin(o, c, gen, ms):
    """advanceGoRangeBegin (STWBegin, GCMarkAssistBegin): a range on the goroutine, named
    by the STW's reason string."""
    typ, args = c.typ, c.args
    g = ms.g
    validate_ctx(c.m, ms.p, g, True, True, True)
    desc = args[0] if typ == EV_STW_BEGIN else 0
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"encountered event of type {typ} without known state for current "
                     f"goroutine {g}", -1)
    key = (typ, desc)
    if key in st.ranges:
        raise Broken(f"discovered event already in-flight for when starting event "
                     f"{NAMES[typ]}", -1)
    st.ranges.append(key)
    return (typ, c.time, c.m, ms.p, g, args, None, gen)


def advance_go_range_active(o, c, gen, ms):
    """advanceGoRangeActive (GCMarkAssistActive)."""
    gid = s64(c.args[0])
    st = o.gs.get(gid)
    if st is None:
        raise Broken(f"uninitialized goroutine {gid} found during GCMarkAssistActive", -1)
    active_range(st.ranges, (EV_GC_MARK_ASSIST_BEGIN, 0), gen.gen == o.initial_gen)
    return (c.typ, c.time, c.m, ms.p, ms.g, c.args, None, gen)


def advance_go_range_end(o, c, gen, ms):
    """advanceGoRangeEnd (STWEnd, GCMarkAssistEnd): the Begin's reason rides along as the
    extra."""
    typ = c.typ
    g = ms.g
    validate_ctx(c.m, ms.p, g, True, True, True)
    st = o.gs.get(g)
    if st is None:
        raise Broken(f"encountered event of type {typ} without known state for current "
                     f"goroutine {g}", -1)
    desc = end_range(st.ranges, START_OF[typ])
    return (typ, c.time, c.m, ms.p, g, c.args, desc, gen)


def active_range(ranges, key, initial):
    """rangeState.activeRange."""
    if initial:
        if key in ranges:
            raise Broken(f"found named active range already in first gen: {key}", -1)
        ranges.append(key)
    elif key not in ranges:
        raise Broken(f"resource is missing active range: {NAMES[key[0]]}", -1)


def end_range(ranges, start):
    """rangeState.endRange: the ended range's description."""
    for i, r in enumerate(ranges):
        if r[0] == start:
            desc = r[1]
            ranges[i] = ranges[-1]
            ranges.pop()
            return desc
    raise Broken(f"tried to end event {NAMES[start]}, but not in-flight", -1)


def advance_bad(o, c, gen, ms):
    """An event type the ordering does not know (orderingDispatch's nil entries)."""
    raise Broken(f"bad event type found while ordering: {c.typ}", -1)


# orderingDispatch: the advance function of each event type.
ADVANCE = [advance_bad] * 256
for _kinds, _advance in (
        ((EV_PROCS_CHANGE, EV_GO_LABEL, EV_USER_LOG), advance_annotation),
        ((EV_PROC_START,), advance_proc_start),
        ((EV_PROC_STOP,), advance_proc_stop),
        ((EV_PROC_STEAL,), advance_proc_steal),
        ((EV_PROC_STATUS,), advance_proc_status),
        ((EV_GO_CREATE, EV_GO_CREATE_BLOCKED), advance_go_create),
        ((EV_GO_CREATE_SYSCALL,), advance_go_create_syscall),
        ((EV_GO_START,), advance_go_start),
        ((EV_GO_DESTROY, EV_GO_STOP, EV_GO_BLOCK), advance_go_stop_exec),
        ((EV_GO_DESTROY_SYSCALL,), advance_go_destroy_syscall),
        ((EV_GO_UNBLOCK,), advance_go_unblock),
        ((EV_GO_SYSCALL_BEGIN,), advance_go_syscall_begin),
        ((EV_GO_SYSCALL_END,), advance_go_syscall_end),
        ((EV_GO_SYSCALL_END_BLOCKED,), advance_go_syscall_end_blocked),
        ((EV_GO_STATUS, EV_GO_STATUS_STACK), advance_go_status),
        ((EV_STW_BEGIN, EV_GC_MARK_ASSIST_BEGIN), advance_go_range_begin),
        ((EV_STW_END, EV_GC_MARK_ASSIST_END), advance_go_range_end),
        ((EV_GC_MARK_ASSIST_ACTIVE,), advance_go_range_active),
        ((EV_GC_ACTIVE,), advance_gc_active),
        ((EV_GC_BEGIN,), advance_gc_begin),
        ((EV_GC_END,), advance_gc_end),
        ((EV_GC_SWEEP_ACTIVE,), advance_gc_sweep_active),
        ((EV_GC_SWEEP_BEGIN,), advance_gc_sweep_begin),
        ((EV_GC_SWEEP_END,), advance_gc_sweep_end),
        ((EV_HEAP_ALLOC, EV_HEAP_GOAL), advance_heap_metric),
        ((EV_USER_TASK_BEGIN,), advance_user_task_begin),
        ((EV_USER_TASK_END,), advance_user_task_end),
        ((EV_USER_REGION_BEGIN, EV_USER_REGION_END), advance_user_region),
        ((EV_GO_SWITCH, EV_GO_SWITCH_DESTROY), advance_go_switch)):
    for _kind in _kinds:
        ADVANCE[_kind] = _advance
