"""views.console.write_file: -o FILE leaves exactly the view's bytes, whether FILE is
new, longer or shorter than the text before, and when the writing stops early (an
interrupted generator) the file holds what was written, nothing of its old bytes."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.dirname(HERE))

from gdb_go_ext.errors import GoExtError  # noqa: E402
from gdb_go_ext.views.console import write_file  # noqa: E402


def test_write_file_leaves_exactly_the_text(tmp_path):
    p = str(tmp_path / "out.json")
    for text in ("x" * 10000 + "\n", ["ab", "c\n", "é\n"], "short\n", "", ["a" * 5000] * 3):
        assert write_file(p, text) == f"wrote {p}\n"
        want = text if isinstance(text, str) else "".join(text)
        with open(p, "rb") as f:
            assert f.read() == want.encode("utf-8")


def test_write_file_stopped_early_keeps_only_what_was_written(tmp_path):
    p = str(tmp_path / "out.json")
    write_file(p, "old " * 10000)

    def pieces():
        yield "new\n"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(p, pieces())
    with open(p, "rb") as f:
        assert f.read() == b"new\n"


def test_write_file_one_line_when_it_cannot(tmp_path):
    with pytest.raises(GoExtError, match="cannot write"):
        write_file(str(tmp_path), "x")
    with pytest.raises(GoExtError, match="cannot write"):
        write_file(str(tmp_path / "no" / "such"), "x")


def test_write_file_to_a_device(tmp_path):
    assert write_file("/dev/null", "x" * 100) == "wrote /dev/null\n"
