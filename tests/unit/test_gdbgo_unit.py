"""gdb-go's pieces that need no gdb: a core's header check, the output names, the summary
and the command line's one-line errors."""
import io
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from gdb_go import cli  # noqa: E402
from gdb_go.run import CoreResult, core_problem, output_names  # noqa: E402


def _elf(path, e_type=4, segments=((0x1000, 0x2000),), size=None):
    """A 64-bit little-endian ELF with PT_LOAD segments at (offset, filesz)."""
    phoff, phentsize = 64, 56
    head = bytearray(64)
    head[:4] = b"\x7fELF"
    head[4], head[5], head[6] = 2, 1, 1
    struct.pack_into("<HHI", head, 16, e_type, 62, 1)
    struct.pack_into("<Q", head, 32, phoff)
    struct.pack_into("<HHHH", head, 52, 64, phentsize, len(segments), 0)
    table = b"".join(struct.pack("<IIQQQQQQ", 1, 4, off, 0, 0, sz, sz, 0x1000)
                     for off, sz in segments)
    data = bytes(head) + table
    end = max(off + sz for off, sz in segments)
    data += b"\0" * (end - len(data))
    with open(path, "wb") as f:
        f.write(data[:size] if size is not None else data)
    return str(path)


def test_core_problem(tmp_path):
    assert core_problem(_elf(tmp_path / "good")) is None
    assert "truncated" in core_problem(_elf(tmp_path / "cut", size=0x1800))
    assert "ET_CORE" in core_problem(_elf(tmp_path / "exec", e_type=2))
    (tmp_path / "text").write_text("hello\n")
    assert "no ELF header" in core_problem(str(tmp_path / "text"))
    assert core_problem(str(tmp_path / "missing")) == "No such file or directory"


def test_output_names_are_unique():
    assert output_names(["/a/core.1", "/b/core.1", "core.2", "/c/core.1"], ".x") == [
        "core.1.x", "core.1-1.x", "core.2.x", "core.1-2.x"]


def test_summary_plain():
    ok = CoreResult("a/core.1", output="out/core.1.dump.txt", total=12, buckets=[
        {"count": 7, "wait_reason": "chan receive",
         "stack": [{"function": "runtime.gopark"}, {"function": "main.worker"}]},
        {"count": 3, "status": "runnable", "stack": [{"function": "runtime.goexit"}]},
    ])
    bad = CoreResult("b/core.2", error="truncated: 10 bytes, its segments need 20")
    out = io.StringIO()
    cli.print_summary([ok, bad], out, tty=False)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["core", "status", "goroutines"]
    assert lines[1].split()[:4] == ["a/core.1", "ok", "12", "7×"]
    assert "main.worker [chan receive]; 3× runtime.goexit [runnable]" in lines[1]
    assert lines[2].split()[:2] == ["b/core.2", "error"] and lines[2].endswith("need 20")
    assert lines[-1] == "1 of 2 cores written, 1 failed"


@pytest.mark.parametrize("argv,words", [
    ([], "required"), (["dump", "bin"], "required"), (["dump", "b", "c", "-j", "x"], "-j"),
    (["dump", "b", "c", "-f", "xml"], "invalid choice"), (["dump", "b", "c", "--timeout", "0"], "positive"),
    (["diff", "b", "c"], "required"), (["diff", "b", "c", "d", "--min", "x"], "--min"),
])
def test_bad_command_lines_are_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gdb-go: ") and words in err[0], err


def test_missing_binary(tmp_path, capsys):
    assert cli.main(["dump", str(tmp_path / "nope"), "core"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gdb-go: {tmp_path / 'nope'}: no such file"]
