"""Go's names in generic code (gdb_go_ext/binary/generics.py), the shape kinds of
binary/types.TypeBuilder, and the typed-address casts of `map`/`chan` (views/maps.py).
Names are the ones go1.19 and go1.26 write in DWARF and the symbol table
(tests/fixtures/generics)."""
import pytest

from gdb_go_ext.binary import generics as G
from gdb_go_ext.binary import types as T
from gdb_go_ext.views.maps import parse_cast

DICTS = ["main..dict.parkSet[string]", "main..dict.parkCache[int,*main.T]",
         "main..dict.Set[string].Add", "main..dict.Set[string]"]


@pytest.mark.parametrize("function,type_name,want", [
    ("main.parkSet[go.shape.string_0]", "main.Set[go.shape.string_0]", "main.Set[string]"),
    ("main.parkSet[go.shape.string]", "map[go.shape.string]struct {}", "map[string]struct {}"),
    ("main.parkCache[go.shape.int,go.shape.*uint8]", "map[go.shape.int]go.shape.*uint8",
     "map[int]*main.T"),
    ("main.parkCache[go.shape.int_0,go.shape.*uint8_1]",
     "*main.Cache[go.shape.int_0,go.shape.*uint8_1]", "*main.Cache[int,*main.T]"),
    ("main.Set[go.shape.string].Add", "main.Set[go.shape.string]", "main.Set[string]"),
    ("main.parkSet[go.shape.string]", "map[string]int", "map[string]int"),   # no shape
    ("main.main", "map[go.shape.string]int", "map[go.shape.string]int"),    # not generic
])
def test_type_arguments_from_dictionary_names(function, type_name, want):
    args = G.type_arguments(function, DICTS)
    assert G.instantiate(type_name, args) == want


def test_ambiguous_instantiations_keep_the_shape():
    dicts = ["main..dict.f[main.A]", "main..dict.f[main.B]"]   # both of shape string
    assert G.type_arguments("main.f[go.shape.string]", dicts) == {}
    # a predeclared argument that is not the shape's underlying type does not fit
    assert G.type_arguments("main.f[go.shape.string]", ["main..dict.f[int]"]) == {}
    # go.shape.int is not a prefix of go.shape.int64
    assert G.instantiate("map[go.shape.int64]go.shape.int",
                         {"go.shape.int": "int", "go.shape.int64": "main.ID"}) == "map[main.ID]int"


def test_split_args_and_underlying_names():
    assert G.split_args("int,map[string]int,func(a, b int),struct { a int; b string }") == \
        ["int", "map[string]int", "func(a, b int)", "struct { a int; b string }"]
    assert G.underlying_name("go.shape.string_0") == "string"
    assert G.underlying_name("go.shape.[]int") == "[]int"
    assert G.underlying_name("main.Index") == "main.Index"


class _Node:
    def __init__(self, name, kind, size=0, target=None, members=(), typedef=False):
        self.name, self.kind_, self.size_, self.target_ = name, kind, size, target
        self.members_, self.typedef = list(members), typedef


class _Reader:
    key = staticmethod(lambda n: id(n))
    name = staticmethod(lambda n: n.name)
    is_typedef = staticmethod(lambda n: n.typedef)
    target = staticmethod(lambda n: n.target_)

    @staticmethod
    def strip(n):
        while n is not None and n.typedef:
            n = n.target_
        return n

    kind = staticmethod(lambda n: T.VOID if n is None else n.kind_)
    size = staticmethod(lambda n: n.size_)
    length = staticmethod(lambda n: 0)
    members = staticmethod(lambda n: n.members_)


def test_shape_types_are_their_underlying_kind_and_params_are_named():
    u8 = _Node("uint8", T.UINT, 1)
    i64 = _Node("int", T.INT, 8)
    shape_str = _Node("go.shape.string_0", T.STRUCT, 16,
                      members=[("str", 0, _Node("*uint8", T.PTR, 8, u8)), ("len", 8, i64)])
    shape_slice = _Node("go.shape.[]int", T.STRUCT, 24,
                        members=[("array", 0, _Node("*int", T.PTR, 8, i64)), ("len", 8, i64),
                                 ("cap", 16, i64)])
    set_t = _Node("main.Set[go.shape.string_0]", T.PTR, 8, _Node("hdr", T.STRUCT, 48),
                  typedef=False)
    param = _Node(".param1", None, target=set_t, typedef=True)
    named_str = _Node("main.Name", T.STRUCT, 16,    # type Name string, as Go's DWARF has it
                      members=[("str", 0, _Node("*uint8", T.PTR, 8, u8)), ("len", 8, i64)])
    lookalike = _Node("main.P", T.STRUCT, 16,       # a struct that merely names its fields so
                      members=[("str", 0, _Node("*int", T.PTR, 8, i64)), ("len", 8, i64)])
    b = T.TypeBuilder(_Reader(), 8)
    assert b.convert(named_str).kind == T.STRING
    assert b.convert(lookalike).kind == T.STRUCT
    assert b.convert(shape_str).kind == T.STRING
    assert b.convert(shape_slice).kind == T.SLICE
    got = b.convert(param)
    assert got.name == "main.Set[go.shape.string_0]"   # never ".param1"
    renamed = T.named_in_frame(got, "main.parkSet[go.shape.string_0]",
                               type("Elf", (), {"symbols_with_prefix": lambda self, p:
                                                [d for d in DICTS if d.startswith(p)]})())
    assert renamed.name == "main.Set[string]" and got.name == "main.Set[go.shape.string_0]"


@pytest.mark.parametrize("text,want", [
    ("(map[string]int)0xc000012345", ("map[string]int", 0xc000012345, False, ())),
    ("(main.Index)(0x10)", ("main.Index", 0x10, False, ())),
    ("(main.Set[string]) 0x10", ("main.Set[string]", 0x10, False, ())),
    ("(*main.Index)(0x10)", ("main.Index", 0x10, True, ())),
    ("*(*main.Index)(16)", ("main.Index", 16, True, ())),
    ("(map[string]func() int)0x5", ("map[string]func() int", 5, False, ())),
    ("(*main.Holder)(0x10).inner", ("main.Holder", 0x10, True, ("inner",))),
    ("((*main.Cache[string,int])(0x10)).items", ("main.Cache[string,int]", 0x10, True, ("items",))),
    ("(*main.Holder)(0x10).in.named", ("main.Holder", 0x10, True, ("in", "named"))),
    ("main.gSet", None), ("(main.x)", None), ("m[\"a\"]", None), ("()0x10", None),
    ("*(*main.H)(0x10).inner", None), ("f(x).y", None), ("(*main.H)(0x10).", None),
])
def test_typed_address_casts(text, want):
    assert parse_cast(text) == want
