"""What a view decoded is kept per stop (GoRuntime.per_stop) and no longer: in one gdb
session on the live selfcheck fixture (four workers that schedule thousands of times a
second; main checks them every 100 ms), `go sched --json` and `go goroutines --json -a`
at the attach, then `continue` to a breakpoint in main.(*worker).check (main's goroutine
now runs where it slept), on the same thread, then both views again. At each stop every
P's schedtick and every goroutine's status must be what gdb itself reads of the runtime's
memory at that stop (runtime.allp, each g's atomicstatus named by runtime.gStatusStrings),
main's goroutine must run in check, and the state must have moved between the stops: a
view that kept the first stop's state shows main asleep."""
import json

import harness

TRUTH = r"""python
import gdb, json
allp = gdb.parse_and_eval("'runtime.allp'")
ticks = [int(allp['array'][i].dereference()['schedtick']) for i in range(int(allp['len']))]
allgs = gdb.parse_and_eval("'runtime.allgs'")
status = {}
for i in range(int(allgs['len'])):
    g = allgs['array'][i].dereference()
    st = g['atomicstatus']
    try:
        st = st['value']
    except gdb.error:
        pass
    status[int(g['goid'])] = int(st) & ~0x1000   # (_Gscan)
names = gdb.parse_and_eval("'runtime.gStatusStrings'")
names = [names[i]['str'].string(length=int(names[i]['len'])) for i in range(10)]
print(json.dumps({"schedtick": ticks, "status": status, "names": names}))
"""



def _stop(r, n):
    sched = json.loads(r.block("sched%d" % n))
    gs = json.loads(r.block("goroutines%d" % n))
    truth = json.loads(r.block("truth%d" % n).strip().splitlines()[-1])
    return sched, gs, truth


def test_views_after_continue_show_the_new_stop(toolchain, tmp_path):
    with harness.target_for("selfcheck", toolchain, "live", str(tmp_path)) as t:
        cmds = []
        for n in (1, 2):
            if n == 2:
                cmds += [("break", "break 'main.(*worker).check'"), ("continue", "continue"),
                         ("delete", "delete")]
            cmds += [("thread%d" % n, "thread 1"),   # (a walk is kept per selected thread)
                     ("sched%d" % n, "go sched --json"),
                     ("goroutines%d" % n, "go goroutines --json -a -t 64"),
                     ("truth%d" % n, TRUTH)]
        r = t.gdb(cmds, timeout=300)
        assert "main.(*worker).check" in r.block("continue"), r.block("continue")
        main = t.truth("meta")["main_goid"]
        seen = []
        for n in (1, 2):
            sched, gs, truth = _stop(r, n)
            assert [p["schedtick"] for p in sched["ps"]] == truth["schedtick"], n
            ours = {g["id"]: g["status"] for g in gs["goroutines"]}
            want = {int(k): truth["names"][v] for k, v in truth["status"].items()}
            want = {k: v for k, v in want.items() if v != "dead" or k in ours}
            assert ours == want, (n, ours, want)
            seen.append((truth["schedtick"], ours[main]))
            g = next(g for g in gs["goroutines"] if g["id"] == main)
            in_check = any(f["function"] == "main.(*worker).check" for f in g["stack"])
            assert in_check == (n == 2), (n, g)
        # main waiting at the first stop and running at the second: the goroutine view
        # shows the new stop. The Ps' schedticks, checked against the runtime's at each
        # stop, usually move too, but need not: a goroutine woken into runnext runs on
        # its P's time slice without a tick (proc.go's execute, inheritTime).
        assert [s[1] for s in seen] == ["waiting", "running"], seen
