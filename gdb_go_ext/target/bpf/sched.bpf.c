// sched.bpf.c: the scheduler seen from runtime.casgstatus (`probe-sched`, `sched --probe`).
//
// One uprobe at the entry of runtime.casgstatus(gp, oldval, newval): a nosplit
// function (no stack check, never restarted), so every call is one transition
// (should a build have a stack check, the probe sits at its jbe and skips restarts).
// amd64 Go register ABI: AX gp, BX oldval, CX newval; R14 the current g (often
// g0), whose m.p is the P making the transition.
// Where the runtime switches Running <-> Syscall with its own compare-and-swap
// (Go 1.26's reentersyscall and exitsyscall fast paths), two more uprobes, told
// apart by the attach cookie: at reentersyscall (R14 leaves Running for Syscall) and
// at exitsyscall (R14 is about to run again; a slow path then shows in casgstatus).
// Counts in the kernel:
//  * per P: nanoseconds goroutines ran on it (Running to anything else), the
//    transitions to Running, and a log-linear histogram and the max of the delay
//    from Runnable to Running;
//  * per P and wait reason (g.waitreason, set before park_m's Running -> Waiting):
//    the goroutines that parked.
// Per goroutine (by its g's address) the last transition's time, status and P.
// Status codes and every offset come from the binary (gStatusStrings, DWARF).
#include "go_uprobe.h"

#define MAX_PS 512              // P ids 0..MAX_PS-2; MAX_PS-1: no P
#define NO_P (MAX_PS - 1)
#define NBUCKETS 256            // delay histogram: 4 buckets per power of two
#define NREASONS 256

#define KIND_CAS 0
#define KIND_SYSENTER 1
#define KIND_SYSEXIT 2
// cookie: kind | at_jbe << 8
#define COOKIE_KIND(c) ((c) & 0xff)
#define COOKIE_AT_JBE(c) (((c) >> 8) & 1)

enum stat {
	STAT_EVENTS,        // transitions seen
	STAT_NO_P,          // transitions made with no P
	STAT_RUN_UNSEEN,    // runs ended whose start was before the window
	STAT_FULL,          // a goroutine not tracked: the map was full
	STAT_OUT_OF_STEP,   // a goroutine left Running while we had it in another state
	STAT_N,
};

struct config {
	u64 start_ns;       // the window's start (bpf_ktime_get_ns's clock)
	u64 g_m, m_p, p_id, g_waitreason;
	u32 runnable, running, syscall, waiting, dead, pad;
};

struct gstate {
	u64 ts;             // its last transition
	u32 status;         // the status it went to
	u32 p;              // the P it made it on (NO_P: none)
	u32 reason;         // for waiting: the wait reason
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, u64);
	__type(value, struct gstate);
} gstates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PS);
	__type(key, u32);
	__type(value, u64);
} run_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PS);
	__type(key, u32);
	__type(value, u64);
} runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PS);
	__type(key, u32);
	__type(value, u64);
} delay_max SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PS * NBUCKETS);
	__type(key, u32);
	__type(value, u64);
} delays SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PS * NREASONS);
	__type(key, u32);
	__type(value, u64);
} waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_N);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void add(void *map, u32 key, u64 n)
{
	u64 *v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline u32 bucket(u64 d)
{
	if (d < 4)
		return (u32)d;
	u32 msb = 0;
	u64 x = d;
	if (x >> 32) { msb += 32; x >>= 32; }
	if (x >> 16) { msb += 16; x >>= 16; }
	if (x >> 8) { msb += 8; x >>= 8; }
	if (x >> 4) { msb += 4; x >>= 4; }
	if (x >> 2) { msb += 2; x >>= 2; }
	if (x >> 1) { msb += 1; }
	u32 b = 4 * (msb - 1) + (u32)((d >> (msb - 2)) & 3);
	return b < NBUCKETS ? b : NBUCKETS - 1;
}

static __always_inline u32 current_p(struct config *c, struct regs *r)
{
	u64 m = 0, p = 0;
	s32 id = -1;
	bpf_probe_read_user(&m, sizeof(m), (void *)(r->r14 + c->g_m));
	if (!m)
		return NO_P;
	bpf_probe_read_user(&p, sizeof(p), (void *)(m + c->m_p));
	if (!p)
		return NO_P;
	bpf_probe_read_user(&id, sizeof(id), (void *)(p + c->p_id));
	if (id < 0 || id >= NO_P)
		return NO_P;
	return (u32)id;
}

// A run of the goroutine s tracks ends now: its time to the P it ran on (the one it
// started on; else the one ending it).
static __always_inline void end_run(struct gstate *s, u32 p, u64 now)
{
	if (s->p != NO_P)
		p = s->p;
	if (p != NO_P && now > s->ts)
		add(&run_ns, p, now - s->ts);
}

static __always_inline void track(u64 gp, struct gstate *s, u64 now, u32 status, u32 p,
				  u32 reason)
{
	if (s) {
		s->ts = now;
		s->status = status;
		s->p = p;
		s->reason = reason;
	} else {
		struct gstate ns = {.ts = now, .status = status, .p = p, .reason = reason};
		if (bpf_map_update_elem(&gstates, &gp, &ns, BPF_ANY))
			add(&stats, STAT_FULL, 1);
	}
}

// reentersyscall / exitsyscall (their own CAS): the current g leaves or resumes Running.
static __always_inline int on_syscall(struct config *c, struct regs *r, u32 kind, u32 p,
				      u64 now)
{
	u64 gp = r->r14;
	struct gstate *s = bpf_map_lookup_elem(&gstates, &gp);
	if (kind == KIND_SYSENTER) {
		if (s && s->status != c->running)
			return 0;
		if (s)
			end_run(s, p, now);
		else
			end_run(&(struct gstate){.ts = c->start_ns, .p = NO_P}, p, now);
		track(gp, s, now, c->syscall, p, 0);
		return 0;
	}
	if (s && s->status == c->running)
		return 0;
	if (p != NO_P)
		add(&runs, p, 1);
	track(gp, s, now, c->running, p, 0);   // its P, if it has none yet: the one ending the run
	return 0;
}

SEC("uprobe")
int sched(struct regs *r)
{
	struct config *c = CONFIG_OF(config);
	if (!c)
		return 0;
	u64 cookie = bpf_get_attach_cookie(r);
	if (COOKIE_AT_JBE(cookie) && restarting_at_jbe(r))
		return 0;
	u64 now = bpf_ktime_get_ns();
	add(&stats, STAT_EVENTS, 1);
	u32 p = current_p(c, r);
	if (p == NO_P)
		add(&stats, STAT_NO_P, 1);
	u32 kind = COOKIE_KIND(cookie);
	if (kind != KIND_CAS)
		return on_syscall(c, r, kind, p, now);

	u64 gp = r->ax;
	u32 old = (u32)r->bx, new = (u32)r->cx;
	struct gstate *s = bpf_map_lookup_elem(&gstates, &gp);
	if (s && s->status == c->running) {
		end_run(s, p, now);   // (old is not Running: it left without casgstatus, e.g. preempted for a scan)
	} else if (old == c->running) {
		if (s) {
			add(&stats, STAT_OUT_OF_STEP, 1);
		} else {
			add(&stats, STAT_RUN_UNSEEN, 1);   // running since before the window
			end_run(&(struct gstate){.ts = c->start_ns, .p = NO_P}, p, now);
		}
	}
	if (new == c->running && p != NO_P) {
		add(&runs, p, 1);
		if (old == c->runnable && s && s->status == c->runnable && now >= s->ts) {
			u64 d = now - s->ts;
			add(&delays, p * NBUCKETS + bucket(d), 1);
			u64 *m = bpf_map_lookup_elem(&delay_max, &p);
			if (m && d > *m)
				*m = d;
		}
	}
	u32 reason = 0;
	if (new == c->waiting) {
		u8 wr = 0;
		bpf_probe_read_user(&wr, sizeof(wr), (void *)(gp + c->g_waitreason));
		reason = wr;
		if (old == c->running)
			add(&waits, p * NREASONS + reason, 1);
	}
	if (new == c->dead) {
		if (s)
			bpf_map_delete_elem(&gstates, &gp);
		return 0;
	}
	track(gp, s, now, new, p, reason);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
