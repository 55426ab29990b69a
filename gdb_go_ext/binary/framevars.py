"""Names of a Go function's frame slots from the binary's DWARF: which variable (and
its type) lies at each offset from the frame's CFA, at a pc.

Go's compiler describes each local and argument with a DW_AT_location (an expression,
or a location list per pc range) relative to the frame base, which Go's subprograms
set to the CFA (DW_OP_call_frame_cfa). The heap roots (runtime/heaproots.py) name the
pointer words of a frame's stack maps with these. Read through the one DWARF reader
(binary/dwarf.py); a binary without DWARF names nothing, and malformed DWARF names
less, never fails.
"""
from __future__ import annotations

from typing import Optional

from ..errors import DecodeError
from .dwarf import compile_units, die_name, dwarf_errors, open_dwarf, package_of
from .leb128 import sleb128, uleb128

_DW_OP_fbreg, _DW_OP_cfa, _DW_OP_consts, _DW_OP_plus, _DW_OP_piece = 0x91, 0x9c, 0x11, 0x22, 0x93
_DW_OP_plus_uconst, _DW_OP_addr = 0x23, 0x03


def frame_pieces(expr) -> list:
    """(CFA offset, size, offset in the variable) of each piece of a DWARF location
    expression that lies in the frame (frame base = the CFA, as Go's subprograms say);
    pieces in registers are left out. [] for anything else."""
    b = bytes(expr)
    out, i, at, varoff = [], 0, None, 0
    try:
        for _ in range(64):
            if i >= len(b):
                break
            op = b[i]
            i += 1
            if op == _DW_OP_fbreg:
                at, i = sleb128(b, i)
            elif op == _DW_OP_cfa:
                at = 0
            elif op == _DW_OP_consts and at is not None:
                k, i = sleb128(b, i)
                if i < len(b) and b[i] == _DW_OP_plus:
                    i += 1
                    at += k
                else:
                    return []
            elif op == _DW_OP_plus_uconst and at is not None:
                k, i = uleb128(b, i)
                at += k
            elif op == _DW_OP_piece:
                size, i = uleb128(b, i)
                if at is not None:
                    out.append((at, size, varoff))
                varoff += size
                at = None
            elif 0x50 <= op <= 0x6f:      # DW_OP_regN: this piece is in a register
                at = None
            elif op == 0x90:               # DW_OP_regx
                _, i = uleb128(b, i)
                at = None
            else:
                return out
    except DecodeError:
        return out
    if at is not None:
        out.append((at, None, varoff))
    return out


class FrameNames:
    """DWARF names of frame slots: (function entry, CFA offset) -> (variable, type name,
    the variable's CFA offset). Each package's compile units are read once, when a frame
    of one of its functions is first named; a binary without DWARF names nothing.
    path: the executable; bias: the live address less the file address (a PIE's load
    bias), taken off the entries and pcs asked about."""

    MAX_DIES = 1 << 20

    def __init__(self, path: Optional[str], bias: int = 0):
        self.path = path
        self.bias = bias
        self._dwarf = None
        self._tried = False
        self._cus: Optional[dict] = None        # package -> [CU]
        self._subs: dict = {}                   # package -> {low_pc: DIE offset}
        self._vars: dict = {}                   # entry -> [(lo, hi, name, type, start)]

    def _open(self):
        if not self._tried:
            self._tried = True
            try:
                self._dwarf, self._fh = open_dwarf(self.path)
            except DecodeError:   # no file, no DWARF, bad DWARF: names are optional
                self._dwarf = None
        return self._dwarf

    def _package_subprograms(self, pkg: str) -> dict:
        subs = self._subs.get(pkg)
        if subs is not None:
            return subs
        subs = self._subs[pkg] = {}
        d = self._open()
        if d is None:
            return subs
        try:
            if self._cus is None:
                self._cus = {}
                for name, cu in compile_units(d):
                    self._cus.setdefault(name, []).append(cu)
            n = 0
            for cu in self._cus.get(pkg, ()):
                for die in cu.get_top_DIE().iter_children():
                    n += 1
                    if n > self.MAX_DIES:
                        break
                    if die.tag == "DW_TAG_subprogram":
                        lo = die.attributes.get("DW_AT_low_pc")
                        if lo is not None:
                            subs[lo.value] = die
        except dwarf_errors():   # malformed DWARF: fewer names, never a failure
            pass
        return subs

    def _function_vars(self, entry: int, name: str) -> list:
        hit = self._vars.get(entry)
        if hit is not None:
            return hit
        out = self._vars[entry] = []
        pkg = package_of(name)
        if pkg is None:
            return out
        die = self._package_subprograms(pkg).get(entry - self.bias)
        if die is None:
            return out
        d = self._dwarf
        try:
            todo, steps = [die], 0
            while todo and steps < 4096:
                cur = todo.pop()
                for c in cur.iter_children():
                    steps += 1
                    if c.tag == "DW_TAG_lexical_block":
                        todo.append(c)
                        continue
                    if c.tag not in ("DW_TAG_variable", "DW_TAG_formal_parameter"):
                        continue
                    n = c.attributes.get("DW_AT_name")
                    loc = c.attributes.get("DW_AT_location")
                    if n is None or loc is None:
                        continue
                    vname = die_name(c)
                    tname, tsize, ptrs = _die_type(c)
                    ranges = []    # (lo pc, hi pc or None for all, expression)
                    if loc.form == "DW_FORM_exprloc" or loc.form.startswith("DW_FORM_block"):
                        ranges.append((0, None, loc.value))
                    else:
                        ll = d.location_lists()
                        base = die.attributes["DW_AT_low_pc"].value
                        if ll is not None:
                            for e in ll.get_location_list_at_offset(loc.value, die=c)[:256]:
                                if hasattr(e, "base_address"):
                                    base = e.base_address
                                    continue
                                expr = getattr(e, "loc_expr", None)
                                if expr is None:
                                    continue
                                if getattr(e, "is_absolute", False):
                                    ranges.append((e.begin_offset, e.end_offset, expr))
                                else:
                                    ranges.append((base + e.begin_offset, base + e.end_offset,
                                                   expr))
                    for plo, phi, expr in ranges:
                        for at, size, varoff in frame_pieces(expr):
                            size = size or tsize or 8
                            out.append((plo, phi, at, at + size, vname, tname, at - varoff, ptrs))
        except dwarf_errors():   # malformed DWARF: fewer names
            pass
        return out

    def variable(self, entry: int, cfa_off: int, name: str, pc: int) -> Optional[tuple]:
        """(variable, type name, its CFA offset) of the frame word at CFA + cfa_off of
        function name at pc (the pc its stack map is read at), or None."""
        fpc = pc - self.bias
        for plo, phi, lo, hi, vname, tname, start, ptrs in self._function_vars(entry, name):
            if lo <= cfa_off < hi and (phi is None or plo <= fpc < phi) \
                    and (ptrs is None or cfa_off - start in ptrs):
                return vname, tname, start
        return None


def _die_type(die) -> tuple:
    """(type name, size, offsets of its pointer words or None when not worked out)."""
    try:
        t = die.get_DIE_from_attribute("DW_AT_type")
    except dwarf_errors():   # no type attribute
        return None, None, None
    n = t.attributes.get("DW_AT_name")
    s = t.attributes.get("DW_AT_byte_size")
    budget = [256]
    try:
        ptrs = _ptr_offsets(t, 0, budget)
    except dwarf_errors():   # an odd type DIE: any word of it may be named
        ptrs = None
    return (n.value.decode("utf-8", "replace") if n is not None else None,
            s.value if s is not None else None,
            frozenset(ptrs) if ptrs is not None else None)


def _ptr_offsets(t, depth: int, budget: list) -> Optional[set]:
    """Offsets of the pointer-shaped words of a DWARF type (Go's: pointers, maps,
    channels, funcs are pointers; strings, slices and interfaces are structs of them),
    None when unknown or too big to work out."""
    for _ in range(8):
        if t.tag != "DW_TAG_typedef":
            break
        t = t.get_DIE_from_attribute("DW_AT_type")
    budget[0] -= 1
    if budget[0] < 0 or depth > 6:
        return None
    tag = t.tag
    if tag in ("DW_TAG_pointer_type", "DW_TAG_subroutine_type"):
        return {0}
    if tag in ("DW_TAG_base_type",):
        return set()
    if tag == "DW_TAG_structure_type":
        out = set()
        for m in t.iter_children():
            if m.tag != "DW_TAG_member":
                continue
            loc = m.attributes.get("DW_AT_data_member_location")
            if loc is None or not isinstance(loc.value, int):
                return None
            sub = _ptr_offsets(m.get_DIE_from_attribute("DW_AT_type"), depth + 1, budget)
            if sub is None:
                return None
            out.update(loc.value + o for o in sub)
        return out
    if tag == "DW_TAG_array_type":
        return None   # (element counts need the subrange: any word may be named)
    return None
