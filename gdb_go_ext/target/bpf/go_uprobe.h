// go_uprobe.h: what the project's uprobe programs share (mapwatch.bpf.c, sched.bpf.c).
#ifndef GO_UPROBE_H
#define GO_UPROBE_H
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

typedef unsigned long long u64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned char u8;

// The kernel's struct pt_regs on x86_64 (the uprobe program's context).
// amd64 Go register ABI: arguments in AX, BX, CX, DI, SI, R8..R11; R14 the current g.
struct regs {
	u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	u64 orig_ax, ip, cs, flags, sp, ss;
};

#define FLAG_CF 0x1
#define FLAG_ZF 0x40

// At the `jbe` after a function's stack check (`cmp 0x10(%r14),%rsp`): CF or ZF
// set means the function grows its stack and starts again (that hit is not a call).
static __always_inline int restarting_at_jbe(struct regs *r)
{
	return (r->flags & (FLAG_CF | FLAG_ZF)) != 0;
}

// The program's one `config` entry (an ARRAY map of one element, set by user space).
#define CONFIG_OF(map) ({ u32 zero_ = 0; bpf_map_lookup_elem(&(map), &zero_); })

#endif
