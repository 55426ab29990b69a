"""binary/leb128.py, the one LEB128 decoder: values against their encodings, and the
bounds each caller gives (end, a byte limit) raising DecodeError, never IndexError."""
import random

import pytest

from gdb_go_ext.binary.leb128 import sleb128, uleb128, uleb128_bytes
from gdb_go_ext.errors import DecodeError


def _sleb_bytes(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        if (v == 0 and not b & 0x40) or (v == -1 and b & 0x40):
            return bytes(out + bytes([b]))
        out.append(b | 0x80)


def test_values_round_trip():
    rng = random.Random(7)
    vals = [0, 1, 63, 64, 127, 128, 255, 1 << 31, (1 << 32) - 1, (1 << 63) - 1, (1 << 64) - 1]
    vals += [rng.getrandbits(rng.randrange(1, 64)) for _ in range(500)]
    for v in vals:
        enc = b"\xff" + uleb128_bytes(v) + b"\x00"
        assert uleb128(enc, 1) == (v, len(enc) - 1)
    for v in [0, -1, 63, -64, 64, -65, -(1 << 63), (1 << 63) - 1] + \
            [rng.getrandbits(40) - (1 << 39) for _ in range(500)]:
        enc = _sleb_bytes(v)
        assert sleb128(enc, 0) == (v, len(enc))


def test_bounds_raise_decode_error():
    with pytest.raises(DecodeError, match="past end of pclntab"):
        uleb128(b"\x80\x80", 0, 2, 5, "pclntab")
    with pytest.raises(DecodeError, match="longer than 5 bytes in pclntab"):
        uleb128(b"\x80" * 6 + b"\x01", 0, 7, 5, "pclntab")
    with pytest.raises(DecodeError):       # end cuts a value the buffer holds whole
        uleb128(b"\x80\x01", 0, 1)
    with pytest.raises(DecodeError):
        sleb128(b"\xff" * 11, 0)
    assert uleb128(b"\x80" * 9 + b"\x01", 0) == (1 << 63, 10)
