"""binary/framevars.py without usable DWARF: no path, no file, a file that is not ELF, an
ELF without DWARF; each names nothing and raises nothing (the heap roots then show
frame words by offset)."""
import shutil

import pytest

from gdb_go_ext.binary.dwarf import open_dwarf
from gdb_go_ext.binary.framevars import FrameNames
from gdb_go_ext.errors import DecodeError


def _no_dwarf_elf(tmp_path):
    """An ELF of this system without DWARF, or None."""
    for exe in ("/bin/true", "/usr/bin/true", "/bin/ls"):
        try:
            open_dwarf(exe)
        except DecodeError:
            return exe
    return None


def test_frame_names_without_dwarf_name_nothing(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + bytes(60) + b"garbage" * 100)
    text = tmp_path / "text"
    text.write_text("not a program\n")
    paths = [None, str(tmp_path / "missing"), str(junk), str(text)]
    plain = _no_dwarf_elf(tmp_path)
    if plain:
        paths.append(plain)
    for path in paths:
        names = FrameNames(path, 0x1000)
        assert names.variable(0x401000, -8, "main.main", 0x401010) is None, path
        assert names.variable(0x401000, 16, "net/http.(*conn).serve", 0x401010) is None, path


def test_open_dwarf_one_error_for_each_reason(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    for path in (None, str(tmp_path / "missing"), str(bad)):
        with pytest.raises(DecodeError):
            open_dwarf(path)
    if shutil.which("true") and _no_dwarf_elf(tmp_path):
        with pytest.raises(DecodeError, match="no DWARF"):
            open_dwarf(_no_dwarf_elf(tmp_path))
