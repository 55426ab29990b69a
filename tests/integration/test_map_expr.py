"""`go map EXPR` on maps reachable only from a selected frame: a function argument and a
struct field behind a pointer, live (stopped at a breakpoint) and on a core of that stop."""
import json
import os

import harness


def _entries(block):
    data = json.loads(block)
    return {k: v for k, v in data["entries"]}, data


def test_map_argument_and_struct_field_in_a_frame(toolchain, tmp_path):
    binary = harness.build("maplocal", toolchain)
    out = tmp_path / "out"
    out.mkdir()
    core = tmp_path / "stop.core"
    r = harness.run_gdb(binary, commands=[
        ("brk", "break main.useLocal"), ("run", f"run {out}"),
        ("arg", "go map m --json"), ("field", "go map h.inner --json"),
        ("named", "go map h.named --json"), ("notmap", "go map h"),
        ("gcore", f"gcore {core}")], timeout=180)
    truth = json.loads((out / "maps.json").read_text())
    try:
        assert r.error("run") is None, r.stdout[-2000:]
        got, data = _entries(r.block("arg"))
        assert data["len"] == len(truth["local"]) and got == truth["local"]
        got, _ = _entries(r.block("field"))
        assert got == truth["inner"]
        assert _entries(r.block("named"))[0] == truth["named"]  # a named map type
        assert "is a *main.Holder, not a map" in (r.error("notmap") or ""), r.error("notmap")
        # an address with a Go map type
        c = harness.run_gdb(binary, core=str(core), commands=[
            ("cast", f"go map (map[string]int){data['addr']} --json")])
        assert _entries(c.block("cast"))[0] == truth["local"], c.stdout[-2000:]
        assert os.path.exists(core)
        # the same frame, selected on the core
        c = harness.run_gdb(binary, core=str(core), commands=[
            ("sel", "frame function main.useLocal"),
            ("arg", "go map m --json"), ("field", "go map h.inner --json")])
        assert c.error("sel") is None, c.stdout[-2000:]
        assert _entries(c.block("arg"))[0] == truth["local"]
        assert _entries(c.block("field"))[0] == truth["inner"]
    finally:
        if core.exists():
            core.unlink()
