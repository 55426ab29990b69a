"""The ordering (internal/trace's order.go): the scheduler model - goroutine, P and M
states, sequence numbers, GC, ranges, tasks, regions - that says whether an event can
happen next, and what it queues."""
from collections import deque

from . import wire as W
from .base import NO_ID, NO_TASK, Broken, SIGN64, WRAP64, s64
from .batchcursor import BatchCursor
from .generation import Generation

_START_OF = {W.EV_GO_SYSCALL_END: W.EV_GO_SYSCALL_BEGIN,
             W.EV_GO_SYSCALL_END_BLOCKED: W.EV_GO_SYSCALL_BEGIN, W.EV_STW_END: W.EV_STW_BEGIN,
             W.EV_GC_ACTIVE: W.EV_GC_BEGIN, W.EV_GC_END: W.EV_GC_BEGIN,
             W.EV_GC_SWEEP_ACTIVE: W.EV_GC_SWEEP_BEGIN, W.EV_GC_SWEEP_END: W.EV_GC_SWEEP_BEGIN,
             W.EV_GC_MARK_ASSIST_ACTIVE: W.EV_GC_MARK_ASSIST_BEGIN,
             W.EV_GC_MARK_ASSIST_END: W.EV_GC_MARK_ASSIST_BEGIN,
             W.EV_USER_REGION_END: W.EV_USER_REGION_BEGIN}



class GState:
    __slots__ = ("status", "sgen", "seq", "regions", "ranges")

    def __init__(self, status, sgen, seq=0):
        self.status = status
        self.sgen = sgen
        self.seq = seq
        self.regions = []
        self.ranges = []


class PState:
    __slots__ = ("status", "sgen", "seq", "ranges")

    def __init__(self, status, sgen, seq=0):
        self.status = status
        self.sgen = sgen
        self.seq = seq
        self.ranges = []


class MState:
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
    def __init__(self, ver):
        self.ver = ver
        self.gs = {}
        self.ps = {}
        self.ms = {}
        self.tasks = {}
        self.gc_seq = 0
        self.gc_state = 0  # 0 undetermined, 1 not running, 2 running
        self.initial_gen = 0
        self.queue = deque()

    def advance(self, c: BatchCursor, gen: Generation) -> bool:
        """Try to let the event under cursor c through; queue what it makes."""
        gnum = gen.gen
        if not self.initial_gen:
            self.initial_gen = gnum
        m = c.m
        ms = c.ms  # the M's state, kept on its cursor once it exists (it never goes away)
        if ms is not None:
            p, g = ms.p, ms.g
        elif m == NO_ID:
            p = g = NO_ID
        else:
            ms = self.ms.get(m)
            if ms is None:
                ms = self.ms[m] = MState()
            c.ms = ms
            p, g = ms.p, ms.g
        typ, args = c.typ, c.args
        t = c.time
        q = self.queue
        gs, ps = self.gs, self.ps
        np_, ng = p, g  # the new context

        if typ == 16:  # GoStart (literal event numbers on the hot paths)
            gid = args[0]
            if gid >= SIGN64:
                gid -= WRAP64
            st = gs.get(gid)
            if st is None or st.status != 1 or st.sgen != gnum or args[1] != st.seq + 1:
                return False
            if m == NO_ID or p == NO_ID or g != NO_ID:
                validate_ctx(m, p, g, True, True, False)
            st.status = W.GO_RUNNING
            st.seq = args[1]
            ng = gid
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 20 or typ == 19 or typ == 17:  # GoBlock, GoStop, GoDestroy
            if m == NO_ID or p == NO_ID or g == NO_ID:
                validate_ctx(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise Broken(f"event {W.NAMES[typ]} for goroutine ({g}) that doesn't exist", -1)
            if st.status != W.GO_RUNNING:
                raise Broken(f"{W.NAMES[typ]} event for goroutine that's not Running", -1)
            if typ == W.EV_GO_DESTROY:
                del gs[g]
            elif typ == W.EV_GO_STOP:
                st.status = W.GO_RUNNABLE
            else:
                st.status = W.GO_WAITING
            ng = NO_ID
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 21:  # GoUnblock
            gid = args[0]
            if gid >= SIGN64:
                gid -= WRAP64
            st = gs.get(gid)
            if st is None or st.status != 4 or st.sgen != gnum or args[1] != st.seq + 1:
                return False
            st.status = W.GO_RUNNABLE
            st.seq = args[1]
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_CREATE or typ == W.EV_GO_CREATE_BLOCKED:
            validate_ctx(m, p, g, True, True, None)
            st = gs.get(g)
            if st is not None and st.status != W.GO_RUNNING:
                raise Broken(f"{W.NAMES[typ]} event for goroutine that's not Running", -1)
            newg = s64(args[0])
            if newg in gs:
                raise Broken(f"tried to create goroutine ({newg}) that already exists", -1)
            gs[newg] = GState(W.GO_WAITING if typ == W.EV_GO_CREATE_BLOCKED else W.GO_RUNNABLE,
                          gnum)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 10:  # ProcStart
            pid = args[0]
            if pid >= SIGN64:
                pid -= WRAP64
            st = ps.get(pid)
            if st is None or st.status != 2 or st.sgen != gnum or args[1] != st.seq + 1 or \
                    p != NO_ID:
                return False
            if m == NO_ID:
                validate_ctx(m, p, g, True, False, None)
            st.status = W.PROC_RUNNING
            st.seq = args[1]
            np_ = pid
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == 11:  # ProcStop
            st = ps.get(p)
            if st is None:
                raise Broken(f"event ProcStop for proc ({p}) that doesn't exist", -1)
            if st.status != W.PROC_RUNNING and st.status != W.PROC_SYSCALL:
                raise Broken("ProcStop event for proc that's not Running or Syscall", -1)
            validate_ctx(m, p, g, True, True, None)
            st.status = W.PROC_IDLE
            np_ = NO_ID
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SYSCALL_BEGIN:
            validate_ctx(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise Broken(f"event GoSyscallBegin for goroutine ({g}) that doesn't exist", -1)
            if st.status != W.GO_RUNNING:
                raise Broken("GoSyscallBegin event for goroutine that's not Running", -1)
            st.status = W.GO_SYSCALL
            pst = ps.get(p)
            if pst is None:
                raise Broken(f"uninitialized proc {p} found during GoSyscallBegin", -1)
            pst.status = W.PROC_SYSCALL
            if pst.sgen != gnum or args[0] != pst.seq + 1:
                raise Broken("failed to advance GoSyscallBegin: can't make sequence", -1)
            pst.seq = args[0]
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SYSCALL_END:
            validate_ctx(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise Broken(f"event GoSyscallEnd for goroutine ({g}) that doesn't exist", -1)
            if st.status != W.GO_SYSCALL:
                raise Broken("GoSyscallEnd event for goroutine that's not Syscall", -1)
            st.status = W.GO_RUNNING
            pst = ps.get(p)
            if pst is None:
                raise Broken(f"uninitialized proc {p} found during GoSyscallEnd", -1)
            if pst.status != W.PROC_SYSCALL:
                raise Broken(f"expected proc {p} in state Syscall", -1)
            pst.status = W.PROC_RUNNING
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SYSCALL_END_BLOCKED:
            if p != NO_ID:
                pst = ps.get(p)
                if pst is None:
                    raise Broken(f"uninitialized proc {p} found during GoSyscallEndBlocked", -1)
                if pst.status == W.PROC_SYSCALL:
                    return False
            validate_ctx(m, p, g, True, None, True)
            st = gs.get(g)
            if st is None:
                raise Broken(f"event GoSyscallEndBlocked for goroutine ({g}) that doesn't "
                              "exist", -1)
            if st.status != W.GO_SYSCALL:
                raise Broken("GoSyscallEndBlocked event for goroutine that's not Syscall", -1)
            ng = NO_ID
            st.status = W.GO_RUNNABLE
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_PROC_STEAL:
            pid = s64(args[0])
            st = ps.get(pid)
            if st is None or (st.status != W.PROC_SYSCALL and
                              st.status != W.PROC_SYSCALL_ABANDONED) or \
                    st.sgen != gnum or args[1] != st.seq + 1:
                return False
            validate_ctx(m, p, g, True, None, None)
            old = st.status
            st.status = W.PROC_IDLE
            st.seq = args[1]
            if old == W.PROC_SYSCALL_ABANDONED:
                q.append((typ, t, m, p, g, args, old, gen))
            else:
                mid = s64(args[2])
                if mid == m:
                    if p != pid:
                        raise Broken(f"tried to self-steal proc {pid} (thread {mid}), but got "
                                      f"proc {p} instead", -1)
                    np_ = NO_ID
                else:
                    other = self.ms.get(mid)
                    if other is None:
                        raise Broken(f"stole proc from non-existent thread {mid}", -1)
                    if other.p != pid:
                        raise Broken(f"tried to steal proc {pid} from thread {mid}, but got "
                                      f"proc {other.p} instead", -1)
                    other.p = NO_ID
                q.append((typ, t, m, p, g, args, old, gen))
        elif typ == W.EV_GO_STATUS or typ == W.EV_GO_STATUS_STACK:
            gid, mid, status = s64(args[0]), s64(args[1]), args[2]
            if status >= 5:
                raise Broken(f"invalid status for goroutine {gid}: {status}", -1)
            old = W.GO_STATE_OF[status]
            st = gs.get(gid)
            if st is not None:
                if st.status != status:
                    raise Broken(f"inconsistent status for goroutine {gid}: old "
                                  f"{W.GO_STATUS_NAMES[st.status]} vs. new "
                                  f"{W.GO_STATUS_NAMES[status]}", -1)
                st.sgen, st.seq = gnum, 0
            elif gnum == self.initial_gen:
                gs[gid] = GState(status, gnum)
                old = "Undetermined"
            else:
                raise Broken(f"found goroutine status for new goroutine after the first "
                              f"generation: id={gid} status={W.GO_STATUS_NAMES[status]}", -1)
            em, eg = m, g
            if status == W.GO_RUNNING:
                ng = gid
            elif status == W.GO_SYSCALL:
                if mid == NO_ID:
                    raise Broken(f"found goroutine {gid} in syscall without a thread", -1)
                if mid == m:
                    if gnum != self.initial_gen and g != gid:
                        raise Broken(f"inconsistent thread for syscalling goroutine {gid}: "
                                      f"thread has goroutine {g}", -1)
                    ng = gid
                else:
                    other = self.ms.get(mid)
                    if other is not None:
                        if other.g != gid:
                            raise Broken(f"inconsistent thread for syscalling goroutine {gid}: "
                                          f"thread has goroutine {other.g}", -1)
                        eg = other.g
                    else:
                        self.ms[mid] = MState(gid, NO_ID)
                    em = mid
            q.append((typ, t, em, p, eg, args, old, gen))
        elif typ == W.EV_PROC_STATUS:
            pid, status = s64(args[0]), args[1]
            if status >= 5:
                raise Broken(f"invalid status for proc {pid}: {status}", -1)
            old = W.PROC_STATE_OF[status]
            st = ps.get(pid)
            if st is not None:
                if status == W.PROC_SYSCALL_ABANDONED and st.status == W.PROC_SYSCALL:
                    old = "Running"
                    args = [args[0], W.PROC_SYSCALL] + list(args[2:])
                elif status == W.PROC_SYSCALL_ABANDONED and \
                        st.status == W.PROC_SYSCALL_ABANDONED:
                    old = "Idle"
                elif st.status != status:
                    raise Broken(f"inconsistent status for proc {pid}: old "
                                  f"{W.PROC_STATUS_NAMES[st.status]} vs. new "
                                  f"{W.PROC_STATUS_NAMES[status]}", -1)
                st.sgen, st.seq = gnum, 0
            else:
                ps[pid] = PState(status, gnum)
                old = "Undetermined" if gnum == self.initial_gen else "NotExist"
            if status == W.PROC_RUNNING or status == W.PROC_SYSCALL:
                np_ = pid
            em, ep, eg = m, p, g
            if status == W.PROC_SYSCALL_ABANDONED and old == "Running":
                found = False
                for mid, other in self.ms.items():
                    if other.p == pid:
                        em, ep, eg = mid, pid, other.g
                        found = True
                if not found:
                    raise Broken(f"failed to find sched context for proc {pid} that's about "
                                  "to be stolen", -1)
            q.append((typ, t, em, ep, eg, args, old, gen))
        elif typ == W.EV_GO_CREATE_SYSCALL:
            validate_ctx(m, p, g, True, None, False)
            newg = s64(args[0])
            if newg in gs:
                raise Broken(f"tried to create goroutine ({newg}) in syscall that already "
                              "exists", -1)
            gs[newg] = GState(W.GO_SYSCALL, gnum)
            ng = newg
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_DESTROY_SYSCALL:
            validate_ctx(m, p, g, True, None, True)
            st = gs.get(g)
            if st is None:
                raise Broken(f"event GoDestroySyscall for goroutine ({g}) that doesn't "
                              "exist", -1)
            if st.status != W.GO_SYSCALL:
                raise Broken("GoDestroySyscall event for goroutine that's not Syscall", -1)
            del gs[g]
            ng = NO_ID
            if p != NO_ID:
                pst = ps.get(p)
                if pst is None:
                    raise Broken(f"found invalid proc {p} during GoDestroySyscall", -1)
                if pst.status != W.PROC_SYSCALL:
                    raise Broken(f"proc {p} in unexpected state during GoDestroySyscall", -1)
                pst.status = W.PROC_SYSCALL_ABANDONED
                np_ = NO_ID
                q.append((W.EV_PROC_STEAL, t, m, p, g, (p & (WRAP64 - 1), 0, 0), W.PROC_SYSCALL,
                          gen))
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GO_SWITCH or typ == W.EV_GO_SWITCH_DESTROY:
            validate_ctx(m, p, g, True, True, True)
            cur = gs.get(g)
            if cur is None:
                raise Broken(f"event {W.NAMES[typ]} for goroutine ({g}) that doesn't exist", -1)
            if cur.status != W.GO_RUNNING:
                raise Broken(f"{W.NAMES[typ]} event for goroutine that's not Running", -1)
            nextg = s64(args[0])
            nst = gs.get(nextg)
            if nst is None or nst.status != W.GO_WAITING or nst.sgen != gnum or \
                    args[1] != nst.seq + 1:
                return False
            q.append((typ, t, m, p, g, args, None, gen))
            if typ == W.EV_GO_SWITCH:
                cur.status = W.GO_WAITING
                q.append((W.EV_GO_BLOCK, t, m, p, g, (0, 0), None, gen))
            else:
                del gs[g]
                q.append((W.EV_GO_DESTROY, t, m, p, g, (), None, gen))
            nst.status = W.GO_RUNNING
            nst.seq = args[1]
            ng = nextg
            q.append((W.EV_GO_START, t, m, p, NO_ID, (args[0], args[1]), None, gen))
        elif typ == W.EV_PROCS_CHANGE or typ == W.EV_GO_LABEL or typ == W.EV_USER_LOG:
            validate_ctx(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_HEAP_ALLOC or typ == W.EV_HEAP_GOAL:
            validate_ctx(m, p, g, True, True, None)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_STW_BEGIN or typ == W.EV_GC_MARK_ASSIST_BEGIN:
            validate_ctx(m, p, g, True, True, True)
            desc = args[0] if typ == W.EV_STW_BEGIN else 0
            st = gs.get(g)
            if st is None:
                raise Broken(f"encountered event of type {typ} without known state for "
                              f"current goroutine {g}", -1)
            key = (typ, desc)
            if key in st.ranges:
                raise Broken(f"discovered event already in-flight for when starting event "
                              f"{W.NAMES[typ]}", -1)
            st.ranges.append(key)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_STW_END or typ == W.EV_GC_MARK_ASSIST_END:
            validate_ctx(m, p, g, True, True, True)
            st = gs.get(g)
            if st is None:
                raise Broken(f"encountered event of type {typ} without known state for "
                              f"current goroutine {g}", -1)
            desc = _end_range(st.ranges, _START_OF[typ])
            q.append((typ, t, m, p, g, args, desc, gen))
        elif typ == W.EV_GC_MARK_ASSIST_ACTIVE:
            gid = s64(args[0])
            st = gs.get(gid)
            if st is None:
                raise Broken(f"uninitialized goroutine {gid} found during "
                              "GCMarkAssistActive", -1)
            _active_range(st.ranges, (W.EV_GC_MARK_ASSIST_BEGIN, 0), gnum == self.initial_gen)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_SWEEP_BEGIN:
            validate_ctx(m, p, g, True, True, None)
            pst = ps.get(p)
            if pst is None:
                raise Broken(f"GCSweepBegin on unknown proc {p}", -1)
            key = (W.EV_GC_SWEEP_BEGIN, 0)
            if key in pst.ranges:
                raise Broken("discovered event already in-flight for when starting event "
                              "GCSweepBegin", -1)
            pst.ranges.append(key)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_SWEEP_ACTIVE:
            pid = s64(args[0])
            pst = ps.get(pid)
            if pst is None:
                raise Broken(f"encountered GCSweepActive for unknown proc {pid}", -1)
            _active_range(pst.ranges, (W.EV_GC_SWEEP_BEGIN, 0), gnum == self.initial_gen)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_SWEEP_END:
            validate_ctx(m, p, g, True, True, None)
            pst = ps.get(p)
            if pst is None:
                raise Broken(f"GCSweepEnd on unknown proc {p}", -1)
            _end_range(pst.ranges, W.EV_GC_SWEEP_BEGIN)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_ACTIVE:
            seq = args[0]
            if gnum == self.initial_gen:
                if self.gc_state != 0:
                    raise Broken("GCActive in the first generation isn't first GC event", -1)
                self.gc_seq, self.gc_state = seq, 2
                q.append((typ, t, m, p, g, args, None, gen))
            else:
                if seq != self.gc_seq + 1:
                    return False
                if self.gc_state != 2:
                    raise Broken("encountered GCActive while GC was not in progress", -1)
                self.gc_seq = seq
                validate_ctx(m, p, g, True, True, True)
                q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_BEGIN:
            seq = args[0]
            if self.gc_state == 0:
                self.gc_seq, self.gc_state = seq, 2
                q.append((typ, t, m, p, g, args, None, gen))
            else:
                if seq != self.gc_seq + 1:
                    return False
                if self.gc_state == 2:
                    raise Broken("encountered GCBegin while GC was already in progress", -1)
                self.gc_seq, self.gc_state = seq, 2
                validate_ctx(m, p, g, True, True, True)
                q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_GC_END:
            seq = args[0]
            if seq != self.gc_seq + 1:
                return False
            if self.gc_state == 1:
                raise Broken("encountered GCEnd when GC was not in progress", -1)
            if self.gc_state == 0:
                raise Broken("encountered GCEnd when GC was in an undetermined state", -1)
            self.gc_seq, self.gc_state = seq, 1
            validate_ctx(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_USER_TASK_BEGIN:
            tid = args[0]
            if tid in self.tasks:
                raise Broken(f"task ID conflict: {tid}", -1)
            parent = args[1]
            if parent == 0:
                parent = NO_TASK
                args = [tid, NO_TASK] + list(args[2:])
            name = gen.strings.get(args[2]) if args[2] else ""
            if name is None:
                raise Broken(f"invalid string ID {args[2]} for UserTaskBegin event", -1)
            self.tasks[tid] = (name, parent)
            validate_ctx(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, None, gen))
        elif typ == W.EV_USER_TASK_END:
            tid = args[0]
            info = self.tasks.pop(tid, None)
            x = (info[1], info[0]) if info is not None else (NO_TASK, "")
            validate_ctx(m, p, g, True, True, True)
            q.append((typ, t, m, p, g, args, x, gen))
        elif typ == W.EV_USER_REGION_BEGIN or typ == W.EV_USER_REGION_END:
            validate_ctx(m, p, g, True, True, True)
            name = gen.strings.get(args[1]) if args[1] else ""
            if name is None:
                raise Broken(f"invalid string ID {args[1]} for {W.NAMES[typ]} event", -1)
            st = gs.get(g)
            if st is None:
                raise Broken(f"encountered Ev{W.NAMES[typ]} without known state for current "
                              f"goroutine {g}", -1)
            r = (args[0], name)
            if typ == W.EV_USER_REGION_BEGIN:
                st.regions.append(r)
            elif st.regions:
                if st.regions[-1] != r:
                    raise Broken(f"misuse of region in goroutine {g}: region end {r} when the "
                                  f"inner-most active region start event is "
                                  f"{st.regions[-1]}", -1)
                st.regions.pop()
            q.append((typ, t, m, p, g, args, None, gen))
        else:
            raise Broken(f"bad event type found while ordering: {typ}", -1)

        if ms is not None:
            ms.p = np_
            ms.g = ng
        return True


def _active_range(ranges, key, initial):
    if initial:
        if key in ranges:
            raise Broken(f"found named active range already in first gen: {key}", -1)
        ranges.append(key)
    elif key not in ranges:
        raise Broken(f"resource is missing active range: {W.NAMES[key[0]]}", -1)


def _end_range(ranges, start):
    for i, r in enumerate(ranges):
        if r[0] == start:
            desc = r[1]
            ranges[i] = ranges[-1]
            ranges.pop()
            return desc
    raise Broken(f"tried to end event {W.NAMES[start]}, but not in-flight", -1)
