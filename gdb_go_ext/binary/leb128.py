"""LEB128: the variable-length integers of DWARF and of Go's own tables.

Go's encoding/binary Uvarint is unsigned LEB128, so the one decoder serves DWARF
(abbreviations, constants, location expressions), pclntab's pc-value tables, abi.Name
lengths, GC programs and the build info's strings. Each caller says how far it may
read (end) and how many bytes a value may take (limit); past either, DecodeError."""
from __future__ import annotations

from ..errors import DecodeError


def uleb128(buf, pos: int, end: int = -1, limit: int = 10, where: str = "") -> tuple:
    """(value, position after it) of the unsigned LEB128 at buf[pos]; DecodeError when
    it runs past end (len(buf) when -1) or takes more than limit bytes. where names the
    table in the error."""
    if end < 0:
        end = len(buf)
    v = shift = 0
    for _ in range(limit):
        if pos >= end:
            raise DecodeError(f"varint runs past end of {where or 'its data'}")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7f) << shift
        if b < 0x80:
            return v, pos
        shift += 7
    raise DecodeError(f"varint longer than {limit} bytes in {where or 'its data'}")


def sleb128(buf, pos: int, end: int = -1, limit: int = 10, where: str = "") -> tuple:
    """(value, position after it) of the signed LEB128 at buf[pos] (see uleb128)."""
    start = pos
    v, pos = uleb128(buf, pos, end, limit, where)
    bits = 7 * (pos - start)
    if buf[pos - 1] & 0x40:
        v -= 1 << bits
    return v, pos


def uleb128_bytes(v: int) -> bytes:
    """The unsigned LEB128 encoding of v (>= 0)."""
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)
