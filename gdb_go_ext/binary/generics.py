"""Go's own names for the types of generic code.

The compiler compiles a generic function once per *shape* of its type arguments; the
DWARF of that body names types by shape: `go.shape.string` (Go 1.20 on) or
`go.shape.string_0` (Go 1.18/1.19, with the type parameter's index), `go.shape.*uint8`
for every pointer, and reaches a type parameter through a typedef `.paramN`. A shape
type is laid out as its underlying type, so decoders classify it by that
(`underlying_name`). Names shown to a user are Go's: `instantiate` puts the type
arguments back, read from the names of the instantiation's dictionaries
(`pkg..dict.fn[ARGS]` symbols: the runtime type descriptors the body is run with).
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

SHAPE = "go.shape."
_INDEX_SUFFIX = re.compile(r"_\d+$")


def is_shape(name: str) -> bool:
    return SHAPE in name


def underlying_name(name: str) -> str:
    """'go.shape.string_0' -> 'string', 'go.shape.[]int' -> '[]int'; other names unchanged."""
    if not name.startswith(SHAPE):
        return name
    return _INDEX_SUFFIX.sub("", name[len(SHAPE):])


def is_param_typedef(name: str) -> bool:
    """DWARF's `.paramN` typedef of a type parameter: never a name to show."""
    return name.startswith(".param")


def split_args(text: str) -> list[str]:
    """'int,*main.T' -> ['int', '*main.T'], commas inside [], (), {} kept."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "[({":
            depth += 1
        elif c in "])}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


def _bracket(name: str) -> Optional[tuple[str, str, str]]:
    """'main.Set[go.shape.string].Add' -> ('main.Set', 'go.shape.string', '.Add')."""
    i = name.find("[")
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(name)):
        if name[j] == "[":
            depth += 1
        elif name[j] == "]":
            depth -= 1
            if depth == 0:
                return name[:i], name[i + 1:j], name[j + 1:]
    return None


def dictionary_prefix(function: str) -> Optional[str]:
    """The symbol prefix of the dictionaries of a generic function's instantiations:
    'main.parkSet[go.shape.string]' -> 'main..dict.parkSet['."""
    parts = _bracket(function)
    if parts is None or not is_shape(parts[1]):
        return None
    head = parts[0]
    slash = head.rfind("/")
    dot = head.find(".", slash + 1)
    if dot <= 0:
        return None
    return f"{head[:dot]}..dict.{head[dot + 1:]}["


def _fits(shape: str, arg: str) -> bool:
    """Could type argument `arg` have shape `shape`? (Named types cannot be told apart
    by name alone, so they fit; pointers share the one shape *uint8.)"""
    under = underlying_name(shape)
    if under.startswith("*"):
        return arg.startswith("*") or "." in arg
    if "." not in arg and not arg.startswith(("*", "[", "map[", "chan ", "func(", "struct", "interface")):
        return arg == under   # a predeclared type is its own shape
    return True


def type_arguments(function: str, dictionaries: Iterable[str]) -> dict[str, str]:
    """{shape name: Go's type argument} for a frame of `function`, from the names of the
    dictionary symbols of its instantiations. A shape whose instantiations disagree
    (two instantiations of one shape) is left out: it is not known from names alone."""
    parts = _bracket(function)
    if parts is None:
        return {}
    shapes = split_args(parts[1])
    prefix = dictionary_prefix(function)
    if prefix is None:
        return {}
    seen: list[list[str]] = []
    for sym in dictionaries:
        if not sym.startswith(prefix):
            continue
        d = _bracket(sym)
        if d is None:
            continue
        args = split_args(d[1])
        if len(args) != len(shapes) or not all(_fits(s, a) for s, a in zip(shapes, args)):
            continue
        seen.append(args)
    out: dict[str, str] = {}
    for i, s in enumerate(shapes):
        choices = {a[i] for a in seen}
        if len(choices) == 1 and is_shape(s):
            out[s] = choices.pop()
    return out


def instantiate(type_name: str, args: dict[str, str]) -> str:
    """A type name of a generic body with its shapes replaced by the type arguments:
    'map[go.shape.string]struct {}' -> 'map[string]struct {}'."""
    if not args or not is_shape(type_name):
        return type_name
    pattern = re.compile("|".join(re.escape(s) + r"(?![\w.])"
                                  for s in sorted(args, key=len, reverse=True)))
    return pattern.sub(lambda m: args[m.group(0)], type_name)




def _unresolved(function: str, args: dict) -> bool:
    parts = _bracket(function)
    return parts is not None and any(is_shape(a) and a not in args for a in split_args(parts[1]))


def name_in_frame(type_name: str, function: Optional[str], elf, frame_words=None,
                  address_of=None) -> str:
    """A type name of a value in a frame of `function`, as Go names it: its shapes
    replaced by the frame's type arguments, told by the names of the program's
    dictionary symbols (`elf`: its ElfFile, or None). Where two instantiations share a
    shape, the dictionary the frame runs with decides: the one whose address
    (`address_of(symbol)`, loaded) is among `frame_words` (the words of the frame and
    its argument spill slots, where the body keeps its dictionary pointer), if exactly
    one is; otherwise that shape stays."""
    if not function or elf is None or not is_shape(type_name):
        return type_name
    prefix = dictionary_prefix(function)
    if prefix is None:
        return type_name
    names = elf.symbols_with_prefix(prefix)
    args = type_arguments(function, names)
    if _unresolved(function, args) and frame_words and address_of is not None and len(names) > 1:
        by_addr = {}
        for n in names:
            a = address_of(n)
            if a:
                by_addr[a] = n
        hits = {by_addr[w] for w in frame_words if w in by_addr}
        if len(hits) == 1:
            args = type_arguments(function, hits)
    return instantiate(type_name, args)
