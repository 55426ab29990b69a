"""pclntab/ELF decoders checked against what the Go runtime itself reports.

For every toolchain of the matrix the fixture in tests/fixtures/pclntab is
built (normal and stripped with -s -w), run, and its JSON output -
runtime.Callers PCs expanded by runtime.CallersFrames, FuncForPC of known
functions and runtime.Stack(buf, true) text - is compared with our decoding of
the binary. A missing toolchain is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from gdb_go_ext.errors import DecodeError
from gdb_go_ext.binary.elf import ElfFile
from gdb_go_ext.binary.pclntab import PCLineTable, func_name_for_print, wrapper_func_id

FIXTURE = Path(__file__).parent.parent / "fixtures" / "pclntab"

import harness  # noqa: E402  (tests/harness.py: matrix, toolchains, cached builds)

# Every toolchain of tests/matrix.json; a missing one fails (harness raises), never skips.
TOOLCHAINS = harness.matrix_names()


def build(toolchain: str, stripped: bool = False) -> Path:
    """The fixture built with ``toolchain``: default flags through harness.build;
    stripped (-ldflags=-s -w) builds, which the harness does not do, are cached
    next to them under builds/<toolchain>/pclntab-stripped-<hash>/."""
    try:
        if not stripped:
            return Path(harness.build("pclntab", toolchain))
        key = "pclntab-stripped-" + harness.fixture_hash("pclntab", toolchain)
        out = Path(harness.cache_dir()) / "builds" / toolchain / key / "pclntab"
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = str(out) + ".%d.tmp" % os.getpid()
        r = subprocess.run([harness.toolchain(toolchain)["go"], "build", "-ldflags=-s -w", "-o", tmp, "."],
                           cwd=FIXTURE, env=harness.go_env(toolchain), capture_output=True, text=True,
                           timeout=600)
        if r.returncode != 0:
            pytest.fail(f"building stripped fixture with {toolchain} failed:\n{r.stderr}")
        os.replace(tmp, out)
        return out
    except harness.HarnessError as e:
        pytest.fail(str(e))


_RUNS = {}


def run_fixture(toolchain: str, stripped: bool = False):
    key = (toolchain, stripped)
    if key not in _RUNS:
        exe = build(toolchain, stripped)
        r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        _RUNS[key] = (exe, json.loads(r.stdout))
    return _RUNS[key]


def _table(exe: Path):
    elf = ElfFile.open(str(exe))
    return elf, PCLineTable.from_elf(elf)


CASES = [(tc, s) for tc in TOOLCHAINS for s in (False, True)]
IDS = [f"{tc}-{'stripped' if s else 'syms'}" for tc, s in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    tc, stripped = request.param
    exe, truth = run_fixture(tc, stripped)
    elf, tab = _table(exe)
    return tc, elf, tab, truth


def test_buildinfo_and_version(case):
    tc, elf, tab, truth = case
    bi = elf.go_buildinfo()
    assert bi.go_version == truth["go_version"]
    assert bi.path == "example.com/pclntabfixture"
    assert bi.module == "example.com/pclntabfixture"
    assert elf.go_version() == truth["go_version"]
    assert elf.build_id()
    assert tab.gofunc is not None, "go:func.* base not found"
    expected_magic = 0xFFFFFFF0 if truth["go_version"].startswith("go1.19") else 0xFFFFFFF1
    assert tab.magic == expected_magic


def test_func_for_pc_matches_funcforpc(case):
    _, _, tab, truth = case
    for fo in truth["funcs"]:
        f = tab.func_for_pc(fo["entry"])
        assert f is not None, fo
        assert (f.name, f.entry) == (fo["name"], fo["entry"])
        assert tab.file_line(f, fo["entry"]) == (fo["file"], fo["line"])
        if tab.go120:
            assert f.start_line is not None and 0 < f.start_line <= fo["line"]
        # every pc inside the function maps back to it
        assert tab.func_for_pc(f.end - 1) == f
    names = {fo["name"] for fo in truth["funcs"]}
    assert "main.(*Server).handle" in names
    assert any(n.startswith("main.main.func") for n in names)


def test_callers_frames_match(case):
    """Each runtime.Callers PC, expanded by our inline walk, equals the runtime's
    CallersFrames expansion; the PCs Callers recorded for outer inlined frames
    are exactly our Frame.pc + 1."""
    tc, elf, tab, truth = case
    wrapper = wrapper_func_id(truth["go_version"])
    saw_inlined = 0
    for cap in truth["captures"]:
        pcs, want = cap["pcs"], cap["frames"]
        got = []
        i = 0
        while i < len(pcs):
            fr = [f for f in tab.frames_for_return(pcs[i]) if not (f.inlined and f.func_id == wrapper)]
            assert fr, f"{cap['label']}: no frames for {pcs[i]:#x}"
            for j, f in enumerate(fr[1:], 1):
                if i + j < len(pcs):
                    assert pcs[i + j] == f.pc + 1, (cap["label"], f)
            got.extend(fr)
            saw_inlined += sum(f.inlined for f in fr)
            i += len(fr)
        got_t = [(func_name_for_print(f.function), f.file, f.line, f.pc, f.entry) for f in got]
        want_t = [(w["function"], w["file"], w["line"], w["pc"], w["entry"]) for w in want]
        assert got_t == want_t, cap["label"]
    assert saw_inlined >= 3  # inner/mid/outer were inlined


_LOC = re.compile(r"^\t(.*):(\d+)(?: \+0x([0-9a-f]+))?")
_CALL = re.compile(r"^(.*)\((.*)\)$")


def _parse_stack(text: str):
    """-> list of goroutines; each a (frames, created_by) where frames is a list of
    physical groups [(name, file, line, off|None), ...] (inlined first)."""
    gs = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("goroutine "), lines[0]
        groups, cur, created = [], [], None
        k = 1
        while k + 1 < len(lines):
            head, loc = lines[k], lines[k + 1]
            k += 2
            m = _LOC.match(loc)
            assert m, loc
            file, line, off = m.group(1), int(m.group(2)), m.group(3)
            off = int(off, 16) if off is not None else None
            if head.startswith("created by "):
                name = head[len("created by "):].split(" in goroutine ")[0]
                created = (name, file, line, off)
                continue
            cm = _CALL.match(head)
            assert cm, head
            cur.append((cm.group(1), file, line, off))
            if off is not None:
                groups.append(cur)
                cur = []
        assert not cur, block
        gs.append((groups, created))
    return gs


def test_runtime_stack_matches(case):
    """Re-symbolize every physical frame of runtime.Stack(buf, true) from its
    function + offset and compare names and file:line, inlined frames included."""
    tc, elf, tab, truth = case
    wrapper = wrapper_func_id(truth["go_version"])
    gs = _parse_stack(truth["stack"])
    assert len(gs) >= 5
    checked_inline = checked_created = 0
    for groups, created in gs:
        for grp in groups:
            name, _, _, off = grp[-1]
            f = tab.lookup_func(name)
            assert f is not None, name
            mine = [fr for fr in tab.frames_for_return(f.entry + off) if fr.func_id != wrapper]
            got = [(fr.print_name, fr.file, fr.line) for fr in mine]
            want = [(n, fl, ln) for n, fl, ln, _ in grp]
            assert got == want, (tc, name)
            checked_inline += len(grp) - 1
        if created is not None:
            name, file, line, off = created
            f = tab.lookup_func(name)
            if f is not None:
                fr = tab.frames_for_return(f.entry + off)[0]
                assert (fr.print_name, fr.file, fr.line) == (name, file, line)
                checked_created += 1
    assert checked_created >= 3


def test_pcsp_sane(case):
    """pcsp is 0 at entry, and inside a framed function it is a positive multiple of 8
    matching the frame size the runtime would use to unwind."""
    _, _, tab, truth = case
    for fo in truth["funcs"]:
        f = tab.func_for_pc(fo["entry"])
        assert tab.pcsp(f, f.entry) == 0
        seq = [tab.pcsp(f, pc) for pc in range(f.entry, f.end)]
        # -1 (not covered) only in the alignment padding after the last instruction
        covered = seq[:seq.index(-1)] if -1 in seq else seq
        assert all(v == -1 for v in seq[len(covered):]), f.name
        vals = set(covered)
        assert all(v >= 0 and v % 8 == 0 for v in vals), (f.name, vals)
        if f.name == "main.record":
            assert max(vals) > 0


def test_symbols_and_sections(case):
    tc, elf, tab, truth = case
    assert elf.section(".gopclntab") is not None
    assert elf.section(".go.buildinfo") is not None
    assert elf.section(".noptrdata") is not None and elf.section(".data") is not None
    assert elf.section(".rodata") is not None
    main_entry = next(fo["entry"] for fo in truth["funcs"] if fo["name"] == "main.main")
    if elf.has_symbols:
        assert elf.symbol("main.main")[0] == main_entry
        assert elf.symbol_at(main_entry + 1) == ("main.main", 1)
        addr, size = elf.symbol("runtime.buildVersion")
        assert size == 16
        assert elf.read_gostring(addr) == truth["go_version"]
    else:
        assert elf.symbol("main.main") is None


def test_not_elf_and_truncated(tmp_path):
    with pytest.raises(DecodeError):
        ElfFile(b"")
    with pytest.raises(DecodeError):
        ElfFile(b"#!/bin/sh\necho not elf\n" * 10)
    p = tmp_path / "empty"
    p.write_bytes(b"")
    with pytest.raises(DecodeError):
        ElfFile.open(str(p))
    with pytest.raises(DecodeError):
        ElfFile.open(str(tmp_path / "missing"))
    exe, _ = run_fixture("go1.26.6")
    data = exe.read_bytes()
    for cut in (10, 64, 200, 4096, len(data) // 2, len(data) - 100):
        try:
            elf = ElfFile(data[:cut])
            tab = PCLineTable.from_elf(elf)
            tab.frames(tab.text_start + 100)
        except DecodeError as e:
            assert "\n" not in str(e)


def test_performance_smoke(case):
    """Not a timing assertion: exercises the cached path over many repeated PCs."""
    _, _, tab, truth = case
    pcs = [p for cap in truth["captures"] for p in cap["pcs"]]
    for _ in range(100):
        for p in pcs:
            tab.frames_for_return(p)


# -- corruption (hypothesis) ----------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _pristine(tc):
    exe, truth = run_fixture(tc)
    elf = ElfFile.open(str(exe))
    data = bytes(elf.section_data(".gopclntab"))
    good = PCLineTable.from_elf(elf)
    pcs = [p for cap in truth["captures"] for p in cap["pcs"]]
    return elf, data, good, pcs


_PRISTINE = {}


@pytest.mark.parametrize("tc", ["go1.19", "go1.27.3"])
def test_corrupted_pclntab_only_decodeerror(tc):
    if tc not in _PRISTINE:
        _PRISTINE[tc] = _pristine(tc)
    elf, data, good, pcs = _PRISTINE[tc]
    n = len(data)
    hot = [good._pcln, good._funcname, good._pctab, good._cutab, good._filetab, 0]
    for p in pcs[:6]:
        f = good.func_for_pc(p - 1)
        hot += [f.offset, good._pctab + f.pcsp, good._pctab + f.pcln, good._pctab + f.pcfile]

    # Corrupt bytes near structures actually used (plus anywhere), then symbolize.
    edit = st.tuples(st.one_of(st.sampled_from(hot), st.integers(0, n - 1)), st.integers(0, 63), st.integers(0, 255))

    @settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
    @given(edits=st.lists(edit, min_size=1, max_size=12), extra=st.lists(st.integers(0, 1 << 40), max_size=4),
           cut=st.one_of(st.none(), st.integers(0, n)))
    def run(edits, extra, cut):
        buf = bytearray(data)
        for base, delta, val in edits:
            pos = min(base + delta, n - 1)
            buf[pos] = val
        if cut is not None:
            del buf[cut:]
        try:
            tab = PCLineTable(bytes(buf), good.text_start, good.gofunc, elf.read_vaddr)
        except DecodeError:
            return
        for p in pcs + extra:
            for call in (lambda: tab.frames_for_return(p), lambda: tab.frames(p)):
                try:
                    call()
                except DecodeError:
                    pass
            try:
                f = tab.func_for_pc(p)
                if f is not None:
                    tab.pcsp(f, p)
                    tab.file_line(f, p)
            except DecodeError:
                pass

    run()


def test_garbage_inline_reader():
    """A target reader that fails or returns junk only produces DecodeError."""
    elf, data, good, pcs = _PRISTINE.get("go1.27.3") or _pristine("go1.27.3")

    def bad_read(addr, n):
        raise OSError("no memory there")

    def junk_read(addr, n):
        return bytes([0x7F]) * n

    for reader in (bad_read, junk_read, lambda a, n: b""):
        tab = PCLineTable(data, good.text_start, good.gofunc, reader)
        for p in pcs:
            try:
                tab.frames_for_return(p)
            except DecodeError:
                pass
