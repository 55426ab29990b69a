"""runtime/ebpfsched.py without a kernel: the delay histogram's buckets and quantiles,
and the report built from counts as the BPF program leaves them."""
import random

from gdb_go_ext.runtime import ebpfsched as S


def bpf_bucket(d):
    """sched.bpf.c's bucket(), step for step."""
    if d < 4:
        return d
    msb = d.bit_length() - 1
    return min(4 * (msb - 1) + ((d >> (msb - 2)) & 3), S.NBUCKETS - 1)


def test_each_delay_lies_in_its_bucket():
    rng = random.Random(7)
    values = list(range(0, 5000)) + [rng.randrange(1 << rng.randrange(1, 50)) for _ in range(5000)]
    for d in values:
        lo, hi = S.bucket_bounds(bpf_bucket(d))
        assert lo <= d < hi, (d, lo, hi)
    # buckets tile the line: each begins where the one before ends
    for b in range(1, 200):
        assert S.bucket_bounds(b)[0] == S.bucket_bounds(b - 1)[1]


def test_percentiles_are_bucket_upper_bounds():
    delays = [1000] * 90 + [50_000] * 9 + [3_000_000]
    hist = {}
    for d in delays:
        b = bpf_bucket(d)
        hist[b] = hist.get(b, 0) + 1
    p50, p99 = S.percentile(hist, 0.5), S.percentile(hist, 0.99)
    assert 1000 < p50 <= 1000 * 1.25
    assert 50_000 < p99 <= 50_000 * 1.25
    assert S.percentile({}, 0.5) is None


def test_report_names_reasons_and_keeps_no_p_apart():
    reasons = ["", "a", "chan receive", "sleep"]
    rep = S.build_report(
        pid=1, seconds=2.0, window_ns=2_000_000_000, stopped_by="timeout",
        sites=[{"function": S.FUNCTION, "address": "0x1", "at": "entry"}],
        stats={"events": 10}, run_ns={0: 1_000_000_000}, runs={0: 3, 1: 1},
        delay_max={0: 5000}, delays={0: {bpf_bucket(5000): 2}},
        waits={0: {3: 4, 2: 1}, 1: {9: 2}, S.NO_P: {3: 1}},
        open_runs={1: 500_000_000}, waiting_now={2: 1}, wait_reasons=reasons, errors=[])
    p0, p1 = rep["ps"]
    assert (p0["p"], p0["busy"], p0["runs"]) == (0, 0.5, 3)
    assert (p1["busy"], p1["run_ns"]) == (0.25, 500_000_000)
    assert p0["blocked"] == {"sleep": 4, "chan receive": 1}
    assert p1["blocked"] == {"wait reason 9": 2}
    assert rep["blocked"] == {"sleep": 5, "wait reason 9": 2, "chan receive": 1}
    assert rep["blocked_without_p"] == {"sleep": 1}
    assert rep["waiting_at_end"] == {"chan receive": 1}
    assert p0["delay"]["max_ns"] == 5000 and p1["delay"]["count"] == 0


def test_status_check_jb_in_both_openings():
    # go1.19: sub/mov/lea, spills, bt, nop, jb
    old = bytes.fromhex("4883ec40" "48896c2438" "488d6c2438" "4889442448" "895c2450"
                        "894c2454" "0fbae30c" "90" "720a" "0fbae10c")
    assert S.status_check_jb(old) == 32 and old[32] == 0x72
    # go1.21+: push/mov/sub, spills (any order), bt, jb
    new = bytes.fromhex("55" "4889e5" "4883ec58" "4889442468" "895c2470" "894c2474"
                        "0fbae30c" "720b")
    assert S.status_check_jb(new) == 25 and new[25] == 0x72
    # a write to a register on the way (mov %rdx,%rax): not where the arguments are kept
    assert S.status_check_jb(bytes.fromhex("55" "4889e5" "4883ec58" "4889d0" "0fbae30c"
                                           "720b")) is None
    assert S.status_check_jb(bytes.fromhex("55" "4889e5" "4883ec58" "0fbae30c" "750b")) is None
