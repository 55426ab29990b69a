"""target/corecheck.py and binary/core.py on small ELF images made here: a core (its
NT_FILE, NT_PRPSINFO and NT_AUXV notes, and the copy of the executable's first page
with its Go build-ID note) against executables with the same, another, a relinked
(-s -w: the same contentID(main.a)) or no build ID; a core without that page; a damaged
core. The real kernel and gcore cores are in tests/integration/test_mismatch.py."""
import struct

from gdb_go_ext.binary.core import CoreNotes
from gdb_go_ext.binary.elf import ElfFile
from gdb_go_ext.target.corecheck import check_core, recorded_executable

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
BASE = 0x400000
EXE = "/srv/bin/order-service-api-server"
ID = "aaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbb/cccccccccccccccccccc/dddddddddddddddddddd"


def _note(owner: bytes, typ: int, desc: bytes) -> bytes:
    name = owner + b"\0"
    pad = lambda b: b + bytes(-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), typ) + pad(name) + pad(desc)


def _exe(build_id: str, size: int = 0x2000) -> bytes:
    """An ET_EXEC image: header, a PT_NOTE with the Go build ID, one PT_LOAD at BASE."""
    note = _note(b"Go", 4, build_id.encode())
    phoff, n = 64, 2
    note_off = phoff + n * PHDR.size
    head = EHDR.pack(b"\x7fELF\x02\x01\x01" + bytes(9), 2, 62, 1, BASE + 0x1000, phoff, 0, 0,
                     64, PHDR.size, n, 64, 0, 0)
    ph = PHDR.pack(4, 4, note_off, BASE + note_off, BASE + note_off, len(note), len(note), 4)
    ph += PHDR.pack(1, 5, 0, BASE, BASE, size, size, 0x1000)
    img = head + ph + note
    return img + bytes(size - len(img))


def _core(first_page: bytes = None, fname: bytes = b"order-service-a") -> bytes:
    """An ET_CORE: notes (NT_FILE naming EXE at BASE, psinfo, auxv with AT_ENTRY), and one
    PT_LOAD at BASE holding first_page (or nothing, as with coredump_filter bit 4 off)."""
    files = struct.pack("<QQ", 1, 4096) + struct.pack("<QQQ", BASE, BASE + 0x2000, 0) \
        + EXE.encode() + b"\0"
    psinfo = bytearray(136)
    psinfo[40:40 + len(fname)] = fname
    notes = _note(b"CORE", 0x46494C45, files) + _note(b"CORE", 3, bytes(psinfo)) \
        + _note(b"CORE", 6, struct.pack("<QQQQ", 9, BASE + 0x1000, 0, 0))
    phoff, n = 64, 2
    notes_off = phoff + n * PHDR.size
    data_off = (notes_off + len(notes) + 0xfff) & ~0xfff
    page = first_page[:0x1000] if first_page is not None else b""
    head = EHDR.pack(b"\x7fELF\x02\x01\x01" + bytes(9), 4, 62, 1, 0, phoff, 0, 0, 64,
                     PHDR.size, n, 64, 0, 0)
    ph = PHDR.pack(4, 0, notes_off, 0, 0, len(notes), 0, 1)
    ph += PHDR.pack(1, 5, data_off, BASE, 0, len(page), 0x2000, 0x1000)
    img = head + ph + notes
    return img + bytes(data_off - len(img)) + page


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_same_build_id_is_accepted(tmp_path):
    exe = _write(tmp_path, "exe", _exe(ID))
    core = _write(tmp_path, "core", _core(_exe(ID)))
    v = check_core(core, exe)
    assert v.error is None and v.warning is None and v.recorded == EXE


def test_another_build_is_one_line_naming_both(tmp_path):
    other = ID.replace("cccc", "xxxx").replace("dddd", "yyyy")
    exe = _write(tmp_path, "exe", _exe(other))
    v = check_core(_write(tmp_path, "core", _core(_exe(ID))), exe)
    assert v.error and "\n" not in v.error
    assert v.error.startswith("a core of another build") and EXE in v.error and exe in v.error
    assert ID in v.error and other in v.error and "-s -w" not in v.error


def test_relinked_same_source_is_refused_and_named(tmp_path):
    relinked = "eeeeeeeeeeeeeeeeeeee/ffffffffffffffffffff/cccccccccccccccccccc/gggggggggggggggggggg"
    exe = _write(tmp_path, "exe", _exe(relinked))
    v = check_core(_write(tmp_path, "core", _core(_exe(ID))), exe)
    assert v.error and "-s -w" in v.error


def test_no_first_page_is_a_warning_not_a_refusal(tmp_path):
    exe = _write(tmp_path, "exe", _exe(ID))
    v = check_core(_write(tmp_path, "core", _core(None)), exe)
    assert v.error is None and "cannot check" in v.warning and "coredump_filter" in v.warning


def test_executable_names(tmp_path):
    core = _write(tmp_path, "core", _core(_exe(ID)))
    notes = CoreNotes(ElfFile.open(core))
    assert notes.fname == "order-service-a"   # psinfo: 15 bytes, proves nothing alone
    assert notes.entry == BASE + 0x1000
    assert recorded_executable(core) == EXE    # NT_FILE: the whole path


def test_damaged_inputs_never_raise(tmp_path):
    exe = _write(tmp_path, "exe", _exe(ID))
    for i, data in enumerate((b"", b"\x7fELF", _core(_exe(ID))[:200], b"junk" * 100)):
        core = _write(tmp_path, f"bad{i}", data)
        v = check_core(core, exe)
        assert v.error is None and v.warning, v
        assert recorded_executable(core) in (None, EXE)
    v = check_core(_write(tmp_path, "core", _core(_exe(ID))), str(tmp_path / "missing"))
    assert v.error is None and v.warning


def test_core_without_nt_file_is_checked_at_the_binarys_address(tmp_path):
    """No NT_FILE note (an older dumper): the binary's own first LOAD says where to look."""
    data = bytearray(_core(_exe(ID)))
    i = data.find(struct.pack("<I", 0x46494C45))
    data[i:i + 4] = struct.pack("<I", 0x7777)   # the NT_FILE note becomes unknown
    core = _write(tmp_path, "core", bytes(data))
    assert check_core(core, _write(tmp_path, "exe", _exe(ID))).error is None
    other = ID.replace("dddd", "zzzz")
    v = check_core(core, _write(tmp_path, "other", _exe(other)))
    assert v.error and "another build" in v.error and "order-service-a" in v.error
