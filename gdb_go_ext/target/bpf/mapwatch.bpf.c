// mapwatch.bpf.c: counts the lookups of one Go map in the kernel (`mapwatch --ebpf`).
//
// One program, attached as a uprobe at two kinds of place, told apart by the
// attach cookie (see COOKIE_* and gdb_go_ext/target/ebpf.py):
//  * ENTRY: the `jbe` of a map access function's stack check (after
//    `cmp 0x10(%r14),%rsp`). With CF or ZF set the function is about to grow its
//    stack and start again, so that hit is skipped: every call counts once.
//  * RET: each RET of the function (only with --found): the call's result, found
//    or missing, for the call the ENTRY left pending for this goroutine.
// amd64 Go register ABI: RBX the map, RCX the key (a string: RCX data, RDI
// length), R14 the current g, AX the result (&runtime.zeroVal when missing),
// BL mapaccess2's ok. [RSP] is the return address at both places.
// With emit_hits (--hits) each counted call is also written to the `hits` ring
// buffer as one struct hit, in the order they were counted; a record that finds
// the ring full is counted in STAT_HITS_DROPPED (the counts stay complete).
#include "go_uprobe.h"

#define KEY_BYTES 64
#define MAX_RANGES 16

#define KIND_ENTRY 0
#define KIND_RET 1
#define OP_ACCESS1 1
#define OP_ACCESS2 2
#define VAR_GENERIC 0
#define VAR_FAST32 1
#define VAR_FAST64 2
#define VAR_FASTSTR 3
// cookie: function index | kind << 8 | op << 16 | variant << 24
#define COOKIE_FUNC(c) ((c) & 0xff)
#define COOKIE_KIND(c) (((c) >> 8) & 0xff)
#define COOKIE_OP(c) (((c) >> 16) & 0xff)
#define COOKIE_VAR(c) (((c) >> 24) & 0xff)

#define STATE_MISSING 0
#define STATE_FOUND 1
#define STATE_UNKNOWN 2

enum stat {
	STAT_OTHER_MAP,     // calls on other maps
	STAT_RESTART,       // stack-growth restarts skipped (CF or ZF at the jbe)
	STAT_NESTED,        // calls from inside a probed function (go1.27 mapaccess1 -> 2)
	STAT_OVERWRITTEN,   // an entry while the goroutine had a call pending
	STAT_MISMATCH,      // a RET with a pending call of another return address
	STAT_FULL,          // a count lost: a BPF map was full
	STAT_RET_PENDING,   // RETs that completed a pending call
	STAT_HITS_DROPPED,  // --hits records lost: the ring buffer was full
	STAT_N,
};

struct config {
	u64 map_addr;
	u64 zeroval;
	u64 goid_off;
	u64 key_size;        // generic variant: the key's size
	u32 key_is_string;   // generic variant: the key is a string header
	u32 track_found;     // RET probes are attached: leave calls pending
	u32 nranges;
	u32 emit_hits;       // --hits: one struct hit per counted call into `hits`
	u64 range_start[MAX_RANGES];   // the probed functions' code
	u64 range_end[MAX_RANGES];
};

struct mkey {
	u32 func;            // probed function index
	u32 state;           // STATE_*
	u64 len;             // the key's length (a string's whole length)
	u8 data[KEY_BYTES];  // its bytes, a string's first KEY_BYTES
};

struct ckey {
	u64 ret;
	u32 func;
	u32 state;
};

struct pending {
	struct mkey key;
	u64 ret;
	u64 goid;
};

// one counted call (--hits)
struct hit {
	struct mkey key;
	u64 goid;
	u64 ret;
	u64 t_ns;            // bpf_ktime_get_ns (CLOCK_MONOTONIC)
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct mkey);
	__type(value, u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, u64);
} goroutines SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ckey);
	__type(value, u64);
} callers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct pending);
} pendings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_N);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void stat(u32 which)
{
	u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		__sync_fetch_and_add(v, 1);
}

#define ADD(map, key)                                                     \
	do {                                                                  \
		u64 *v_ = bpf_map_lookup_elem(&map, key);                         \
		if (v_) {                                                         \
			__sync_fetch_and_add(v_, 1);                                  \
		} else {                                                          \
			u64 one_ = 1;                                                 \
			if (bpf_map_update_elem(&map, key, &one_, BPF_NOEXIST)) {     \
				v_ = bpf_map_lookup_elem(&map, key);                      \
				if (v_)                                                   \
					__sync_fetch_and_add(v_, 1);                          \
				else                                                      \
					stat(STAT_FULL);                                      \
			}                                                             \
		}                                                                 \
	} while (0)

static __always_inline void emit(struct config *c, struct mkey *k, u64 goid, u64 ret)
{
	if (!c->emit_hits)
		return;
	struct hit h;
	h.key = *k;
	h.goid = goid;
	h.ret = ret;
	h.t_ns = bpf_ktime_get_ns();
	if (bpf_ringbuf_output(&hits, &h, sizeof(h), 0))
		stat(STAT_HITS_DROPPED);
}

static __always_inline int nested(struct config *c, u64 ret)
{
	u32 n = c->nranges;

	for (int i = 0; i < MAX_RANGES; i++) {
		if (i >= n)
			break;
		if (ret >= c->range_start[i] && ret < c->range_end[i])
			return 1;
	}
	return 0;
}

// The key's first KEY_BYTES bytes at data; its length stays whole in k->len.
static __always_inline void read_key_bytes(struct mkey *k, u64 data, u64 len)
{
	u64 n = len;
	k->len = len;
	if (n > KEY_BYTES)
		n = KEY_BYTES;
	n &= 0x7f;
	if (n > KEY_BYTES)
		return;
	if (n)
		bpf_probe_read_user(k->data, n, (void *)data);
}

static __always_inline void read_key(struct config *c, struct regs *r, u32 variant,
				     struct mkey *k)
{
	if (variant == VAR_FAST64) {
		k->len = 8;
		*(u64 *)k->data = r->cx;
	} else if (variant == VAR_FAST32) {
		k->len = 4;
		*(u32 *)k->data = (u32)r->cx;
	} else if (variant == VAR_FASTSTR) {
		read_key_bytes(k, r->cx, r->di);
	} else if (c->key_is_string) {
		u64 hdr[2] = {0, 0};
		bpf_probe_read_user(hdr, sizeof(hdr), (void *)r->cx);
		read_key_bytes(k, hdr[0], hdr[1]);
	} else {
		read_key_bytes(k, r->cx, c->key_size);
	}
}

static __always_inline int on_entry(struct config *c, struct regs *r, u64 cookie)
{
	if (r->bx != c->map_addr) {
		stat(STAT_OTHER_MAP);
		return 0;
	}
	if (restarting_at_jbe(r)) {
		stat(STAT_RESTART);
		return 0;
	}
	u64 ret = 0;
	bpf_probe_read_user(&ret, sizeof(ret), (void *)r->sp);
	if (nested(c, ret)) {
		stat(STAT_NESTED);
		return 0;
	}
	u64 goid = 0;
	bpf_probe_read_user(&goid, sizeof(goid), (void *)(r->r14 + c->goid_off));
	ADD(goroutines, &goid);

	struct pending p;
	__builtin_memset(&p, 0, sizeof(p));
	p.key.func = COOKIE_FUNC(cookie);
	p.key.state = STATE_UNKNOWN;
	read_key(c, r, COOKIE_VAR(cookie), &p.key);
	if (c->track_found) {
		p.ret = ret;
		p.goid = goid;
		u64 g = r->r14;
		if (bpf_map_update_elem(&pendings, &g, &p, BPF_NOEXIST)) {
			stat(STAT_OVERWRITTEN);
			bpf_map_update_elem(&pendings, &g, &p, BPF_ANY);
		}
		return 0;
	}
	ADD(counts, &p.key);
	struct ckey ck = {.ret = ret, .func = COOKIE_FUNC(cookie), .state = STATE_UNKNOWN};
	ADD(callers, &ck);
	emit(c, &p.key, goid, ret);
	return 0;
}

static __always_inline int on_ret(struct config *c, struct regs *r, u64 cookie)
{
	u64 g = r->r14;
	struct pending *p = bpf_map_lookup_elem(&pendings, &g);
	if (!p)
		return 0;
	u64 ret = 0;
	bpf_probe_read_user(&ret, sizeof(ret), (void *)r->sp);
	if (nested(c, ret))
		return 0;
	if (p->ret != ret || p->key.func != COOKIE_FUNC(cookie)) {
		stat(STAT_MISMATCH);
		return 0;
	}
	u32 state;
	if (COOKIE_OP(cookie) == OP_ACCESS2)
		state = (r->bx & 1) ? STATE_FOUND : STATE_MISSING;
	else if (c->zeroval)
		state = r->ax == c->zeroval ? STATE_MISSING : STATE_FOUND;
	else
		state = STATE_UNKNOWN;
	struct mkey k = p->key;
	u64 goid = p->goid;
	k.state = state;
	bpf_map_delete_elem(&pendings, &g);
	stat(STAT_RET_PENDING);
	ADD(counts, &k);
	struct ckey ck = {.ret = ret, .func = k.func, .state = state};
	ADD(callers, &ck);
	emit(c, &k, goid, ret);
	return 0;
}

SEC("uprobe")
int mapwatch(struct regs *r)
{
	struct config *c = CONFIG_OF(config);
	if (!c)
		return 0;
	u64 cookie = bpf_get_attach_cookie(r);
	if (COOKIE_KIND(cookie) == KIND_RET)
		return on_ret(c, r, cookie);
	return on_entry(c, r, cookie);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
