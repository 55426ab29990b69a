"""A debugger-neutral model of Go types: just what the decoders need.

Backends (gdb, Delve, a captured test image) build GoType objects from their own
type information; decoders only ever look at this model. Layout differences
between Go versions are detected by asking whether a field exists.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, Protocol

from ..errors import DecodeError
from .generics import is_param_typedef, name_in_frame, underlying_name

# Kinds, spelled like reflect.Kind where one exists.
BOOL = "bool"
INT = "int"          # signed integers of any size
UINT = "uint"        # unsigned integers of any size, uintptr included
FLOAT = "float"
COMPLEX = "complex"
STRING = "string"
SLICE = "slice"
ARRAY = "array"
STRUCT = "struct"
PTR = "ptr"          # *T and unsafe.Pointer (elem None)
MAP = "map"
CHAN = "chan"
FUNC = "func"
IFACE = "iface"      # non-empty interface: tab, data
EFACE = "eface"      # interface{} / any: _type, data
UNKNOWN = "unknown"


class Field:
    __slots__ = ("name", "offset", "_type")

    def __init__(self, name: str, offset: int, type_: "GoType | Callable[[], GoType]"):
        self.name = name
        self.offset = offset
        self._type = type_

    @property
    def type(self) -> "GoType":
        if callable(self._type) and not isinstance(self._type, GoType):
            self._type = self._type()
        return self._type  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.offset})"


class GoType:
    """One Go type. `elem` and `key` may be given as loaders, resolved on first use."""

    __slots__ = ("name", "kind", "size", "fields", "length", "_elem", "_key", "_by_name", "extra")

    def __init__(self, name: str, kind: str, size: int, fields: tuple[Field, ...] = (),
                 elem=None, key=None, length: int = 0, extra: Optional[dict] = None):
        self.name = name
        self.kind = kind
        self.size = size
        self.fields = tuple(fields)
        self.length = length
        self._elem = elem
        self._key = key
        self._by_name: Optional[dict] = None
        self.extra = extra or {}

    def _resolve(self, attr: str):
        v = getattr(self, attr)
        if v is not None and not isinstance(v, GoType) and callable(v):
            v = v()
            setattr(self, attr, v)
        return v

    @property
    def elem(self) -> Optional["GoType"]:
        return self._resolve("_elem")

    @property
    def key(self) -> Optional["GoType"]:
        return self._resolve("_key")

    def field(self, name: str) -> Optional[Field]:
        if self._by_name is None:
            self._by_name = {f.name: f for f in self.fields}
        return self._by_name.get(name)

    def has(self, path: str) -> bool:
        return self.find(path) is not None

    def find(self, path: str) -> Optional[tuple[int, "GoType"]]:
        """(offset, type) of a dotted field path such as 'sched.pc', or None."""
        t: GoType = self
        off = 0
        for part in path.split("."):
            f = t.field(part)
            if f is None:
                return None
            off += f.offset
            t = f.type
        return off, t

    def offset(self, path: str) -> int:
        found = self.find(path)
        if found is None:
            raise DecodeError(f"type {self.name} has no field {path}")
        return found[0]

    def __repr__(self) -> str:
        return f"GoType({self.name!r}, {self.kind}, size={self.size})"


def renamed(t: GoType, name: str) -> GoType:
    """A copy of `t` under another name (same layout, fields, key, elem, header)."""
    return GoType(name, t.kind, t.size, t.fields, elem=t._elem, key=t._key, length=t.length,
                  extra=dict(t.extra))


def named_in_frame(t: Optional[GoType], function: Optional[str], elf, frame_words=None,
                   address_of=None) -> Optional[GoType]:
    """`t`, for a value in a frame of generic `function`, renamed as Go names it (a
    copy: the shape type is shared by every instantiation of that shape); see
    generics.name_in_frame for frame_words and address_of."""
    if t is None:
        return t
    name = name_in_frame(t.name, function, elf, frame_words, address_of)
    return t if name == t.name else renamed(t, name)


def scalar_format(t: GoType) -> Optional[str]:
    """struct format character for an integer/float/bool type, or None."""
    if t.kind in (INT, UINT):
        code = {1: "b", 2: "h", 4: "i", 8: "q"}.get(t.size)
        if code is None:
            return None
        return code if t.kind == INT else code.upper()
    if t.kind == FLOAT:
        return {4: "f", 8: "d"}.get(t.size)
    if t.kind == BOOL:
        return "?"
    return None


def split_map_name(name: str) -> Optional[tuple[str, str]]:
    """'map[K]V' -> ('K', 'V'), honouring nested brackets."""
    if not name.startswith("map["):
        return None
    depth = 0
    for i in range(3, len(name)):
        c = name[i]
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return name[4:i], name[i + 1:]
    return None


def map_storage(header: GoType, max_depth: int = 6) -> Optional[tuple[GoType, GoType]]:
    """The key and value types as a map's buckets or slots store them.

    hmap buckets hold arrays `keys`/`elems`; Swiss slots hold `key`/`elem`.
    Found by a bounded walk of the header's field graph, so it works for every
    layout the runtime has used. Indirect (>128 byte) keys appear as pointers.
    """
    seen: set[int] = set()
    frontier = [header]
    for _ in range(max_depth):
        nxt: list[GoType] = []
        for t in frontier:
            if t is None or id(t) in seen:
                continue
            seen.add(id(t))
            if t.kind == STRUCT:
                k, e = t.field("keys"), t.field("elems")
                if k is not None and e is not None and k.type.kind == ARRAY:
                    return k.type.elem, e.type.elem
                k, e = t.field("key"), t.field("elem")
                if k is not None and e is not None and t.name.startswith("slot<"):
                    return k.type, e.type
                nxt.extend(f.type for f in t.fields)
            elif t.kind in (PTR, ARRAY):
                nxt.append(t.elem)
        frontier = nxt
    return None


def map_key_elem(header: GoType) -> Optional[tuple[GoType, GoType]]:
    """The map's own key and value types (indirect storage dereferenced)."""
    stored = map_storage(header)
    if stored is None:
        return None
    names = split_map_name(header.extra.get("map_name", "")) if header.extra else None
    out = []
    for i, t in enumerate(stored):
        want = names[i] if names else None
        if want is not None and t.name != want and t.kind == PTR and t.elem is not None \
                and t.elem.name == want:
            t = t.elem
        out.append(t)
    return out[0], out[1]


def map_type(name: str, size: int, header) -> GoType:
    """A map type; `header` is its header struct or a loader of it. Key and value
    types are found in the header's buckets or slots on first use."""
    gt = GoType(name, MAP, size, extra={"header": header})
    gt._key = lambda: _map_part(gt, 0)
    gt._elem = lambda: _map_part(gt, 1)
    return gt


def _map_part(gt: GoType, which: int) -> Optional[GoType]:
    header = gt.extra.get("header")
    if header is None:
        return None
    if callable(header) and not isinstance(header, GoType):
        header = header()
        gt.extra["header"] = header
    found = map_key_elem(header)
    return found[which] if found else None


# ---- building GoTypes from a debugger's type information ---------------------------

VOID = "void"   # what TypeReader.kind says of a type with no storage (void, DWARF's no-type)


class TypeReader(Protocol):
    """What a backend reads of one node of its type information (a gdb.Type, a DWARF DIE).

    `TypeBuilder` asks only these questions and does all the Go-kind classification,
    so every backend builds the same GoType graph from the same DWARF."""

    def key(self, node: Any) -> Hashable:
        """The memo key of a node (gdb: its name; DWARF: the DIE's offset)."""

    def name(self, node: Any) -> str:
        """Go's spelling of the node's name (an unnamed pointer is '*' + its target's)."""

    def is_typedef(self, node: Any) -> bool:
        """Is the node a typedef (Go's named types over another type)?"""

    def target(self, node: Any) -> Any:
        """What a typedef names, a pointer points at, an array holds; None if nothing."""

    def strip(self, node: Any) -> Any:
        """The node with typedefs removed (None where the debug info has no type)."""

    def kind(self, stripped: Any) -> str:
        """The stripped node's own kind: PTR, STRUCT, ARRAY, FUNC, BOOL, INT, UINT,
        FLOAT, COMPLEX, VOID (also for None) or UNKNOWN."""

    def size(self, stripped: Any) -> Optional[int]:
        """Its byte size, or None where the debug info does not say."""

    def length(self, stripped: Any) -> int:
        """An array's number of elements."""

    def members(self, stripped: Any) -> list:
        """A struct's members as (name or None, byte offset, node)."""


class TypeBuilder:
    """Debugger type nodes -> GoType, memoised; pointers, fields and elements resolve
    lazily (Go's types are cyclic). The one place Go kinds are told apart: string,
    slice, interface, map (also behind named types, header found lazily), chan, func,
    pointer, struct, integers, floats, arrays."""

    def __init__(self, reader: TypeReader, ptr_size: int):
        self.r = reader
        self.ptr_size = ptr_size
        self.memo: dict = {}

    def convert(self, node) -> GoType:
        r = self.r
        name = r.name(node)
        for _ in range(8):  # DWARF's `.paramN` typedef of a type parameter: name what it is
            if not (is_param_typedef(name) and r.is_typedef(node) and r.target(node) is not None):
                break
            node = r.target(node)
            name = r.name(node)
        key = r.key(node)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        s = r.strip(node)
        kind = r.kind(s)
        ptr = self.ptr_size
        map_name = self._map_name(node, s, kind)
        under = underlying_name(name)   # a shape type (generic code) is its underlying type
        if map_name is not None:
            target = r.target(s) if kind == PTR else None
            header = (lambda tt=target, n=map_name: self._map_header(tt, n)) \
                if target is not None else None
            gt = map_type(name, ptr, header)
        elif under.startswith(("chan ", "<-chan ", "chan<- ")):
            gt = GoType(name, CHAN, ptr, elem=lambda n=node: self._chan_elem(n))
        elif kind == FUNC or under.startswith("func("):
            gt = GoType(name, FUNC, ptr)
        elif kind == PTR:
            target = r.target(s)
            if target is None or r.kind(r.strip(target)) == VOID:
                gt = GoType(name, PTR, ptr)
            else:
                gt = GoType(name, PTR, ptr, elem=self._lazy(target))
        elif kind == STRUCT:
            self.memo[key] = gt = GoType(name, STRUCT, r.size(s) or 0)  # before its fields
            self._struct(gt, s)
            return gt
        elif kind in (BOOL, INT, UINT, FLOAT, COMPLEX):
            gt = GoType(name, kind, r.size(s) or 0)
        elif kind == ARRAY:
            n = r.length(s)
            elem = r.target(s)
            size = r.size(s)
            if size is None:
                size = n * self.convert(elem).size if elem is not None else 0
            gt = GoType(name, ARRAY, size, length=n,
                        elem=self._lazy(elem) if elem is not None else None)
        else:
            gt = GoType(name, UNKNOWN, r.size(s) or 0)
        self.memo[key] = gt
        return gt

    def _lazy(self, node) -> Callable[[], GoType]:
        return lambda: self.convert(node)

    def _struct(self, gt: GoType, s) -> None:
        r = self.r
        members = r.members(s)
        names = [m[0] for m in members]
        name = underlying_name(gt.name)
        # a named string or slice type (type Name string, type IDs []int) is a struct of
        # that name with the same members as string / []T in Go's DWARF
        named = "." in name and not name.startswith(("struct", "[]", "map[", "*")) and \
            bool(members) and r.kind(r.strip(members[0][2])) == PTR
        if (name == "string" and names[:2] == ["str", "len"]) or \
                (named and names == ["str", "len"] and
                 r.name(r.target(r.strip(members[0][2])) or members[0][2]) == "uint8"):
            gt.kind = STRING
        elif (name.startswith("[]") and names[:3] == ["array", "len", "cap"]) or \
                (named and names == ["array", "len", "cap"]):
            arr = r.strip(members[0][2])
            elem = r.target(arr) if arr is not None else None
            gt.kind = SLICE
            gt._elem = self._lazy(elem) if elem is not None else None
        elif names == ["tab", "data"]:
            gt.kind = IFACE
        elif names == ["_type", "data"]:
            gt.kind = EFACE
        else:
            gt.fields = tuple(Field(n, off, self._lazy(node))
                              for n, off, node in members if n is not None)

    def _chan_elem(self, node) -> Optional[GoType]:
        """A chan's element type. Go's DWARF makes `chan T` a pointer to hchan<T>, whose
        queues hold sudog<T>, whose elem is *T: T is found there, named or not."""
        r = self.r
        s = r.strip(node)
        target = r.target(s) if s is not None and r.kind(s) == PTR else None
        if target is None:
            return None
        found = self.convert(target).find("recvq.first")
        sudog = found[1].elem if found is not None and found[1].kind == PTR else None
        f = sudog.field("elem") if sudog is not None and sudog.kind == STRUCT else None
        return f.type.elem if f is not None and f.type.kind == PTR else None

    def _map_header(self, node, map_name: str) -> GoType:
        header = self.convert(node)
        header.extra["map_name"] = map_name
        return header

    def _map_name(self, node, stripped, kind: str) -> Optional[str]:
        """'map[K]V' for a map type, also behind named types (type labelMap
        map[string]string), or for a pointer to a hash<K,V> / map<K,V> header."""
        r = self.r
        t = node
        for _ in range(8):
            n = r.name(t)
            if underlying_name(n).startswith("map["):
                return underlying_name(n)
            if not r.is_typedef(t):
                break
            t = r.target(t)
            if t is None:
                break
        if kind == PTR:
            target = r.target(stripped)
            target = r.strip(target) if target is not None else None
            if target is not None and r.kind(target) == STRUCT:
                tn = r.name(target)
                if tn.startswith("hash<") or tn.startswith("map<"):
                    return "map[" + tn[tn.index("<") + 1:-1].replace(",", "]", 1)
        return None
