"""Go's integer constants from the binary's DWARF, without gdb or pyelftools.

The Go linker writes each package-level constant as a DW_TAG_constant with its name
inline, its type and its value (`runtime._GCmark`, `runtime.memoryLimitHeapGoalHeadroomPercent`).
Neither gdb's Python API nor Delve's is asked for them (a Target has no such call);
this reads them straight from .debug_abbrev and .debug_info (as binary/dwarf.py's
debug_section loads them, without pyelftools): the abbreviations whose tag is DW_TAG_constant are
found, then each wanted name is searched for as that abbreviation's code followed by
the name, and its value decoded after it. Bounded: one decompression, one search per
name. A binary without DWARF (-w) or a shape not recognised answers no constant.
"""
from __future__ import annotations

import weakref
from typing import Optional

from ..errors import DecodeError
from .dwarf import debug_section
from .leb128 import sleb128, uleb128, uleb128_bytes

DW_TAG_constant = 0x27
DW_AT_name, DW_AT_type, DW_AT_const_value = 0x03, 0x49, 0x1c
# forms and their sizes in 32-bit DWARF; None: a LEB128 or a string
_FORM_SIZE = {0x0b: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x10: 4, 0x11: 1, 0x12: 2, 0x13: 4,
              0x14: 8, 0x0c: 1, 0x19: 0, 0x01: 8}
_SDATA, _UDATA, _STRING = 0x0d, 0x0f, 0x08

_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _Constants:
    def __init__(self, elf):
        self.values: dict = {}
        self.info = debug_section(elf, ".debug_info")
        abbrev = debug_section(elf, ".debug_abbrev") if self.info is not None else None
        # code -> the forms before the value, and the value's form: name must come first
        self.abbrevs: dict = {}
        if abbrev is None:
            return
        pos = 0
        try:
            while pos < len(abbrev):
                code, pos = uleb128(abbrev, pos)
                if code == 0:
                    continue   # the end of one CU's table (Go has one)
                tag, pos = uleb128(abbrev, pos)
                pos += 1   # children
                attrs = []
                while True:
                    at, pos = uleb128(abbrev, pos)
                    form, pos = uleb128(abbrev, pos)
                    if at == 0 and form == 0:
                        break
                    attrs.append((at, form))
                if tag == DW_TAG_constant and attrs and attrs[0] == (DW_AT_name, _STRING):
                    self.abbrevs[code] = attrs[1:]
        except DecodeError:
            pass

    def get(self, name: str) -> Optional[int]:
        if name in self.values:
            return self.values[name]
        value = None
        info = self.info
        for code, attrs in self.abbrevs.items() if info is not None else ():
            needle = uleb128_bytes(code) + name.encode() + b"\0"
            at = info.find(needle)
            if at < 0:
                continue
            pos = at + len(needle)
            try:
                for attr, form in attrs:
                    if attr == DW_AT_const_value:
                        if form == _SDATA:
                            value = sleb128(info, pos)[0]
                        elif form == _UDATA:
                            value = uleb128(info, pos)[0]
                        elif _FORM_SIZE.get(form) in (1, 2, 4, 8):
                            n = _FORM_SIZE[form]
                            value = int.from_bytes(info[pos:pos + n], "little")
                        break
                    if form in (_SDATA, _UDATA):
                        pos = uleb128(info, pos)[1]
                    elif form == _STRING:
                        pos = info.index(b"\0", pos) + 1
                    elif form in _FORM_SIZE:
                        pos += _FORM_SIZE[form]
                    else:
                        break
            except (DecodeError, ValueError):
                value = None
            if value is not None:
                break
        self.values[name] = value
        return value


def int_constant(elf, name: str) -> Optional[int]:
    """The value of the Go constant `name` (e.g. "runtime._GCmark") in elf's DWARF, or
    None (no ELF, no DWARF, no such constant). The sections are read once per ElfFile."""
    if elf is None:
        return None
    c = _cache.get(elf)
    if c is None:
        c = _cache[elf] = _Constants(elf)
    return c.get(name)
