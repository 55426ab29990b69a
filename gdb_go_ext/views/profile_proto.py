"""pprof's profile.proto (github.com/google/pprof proto/profile.proto, package
perftools.profiles) as protobuf message classes, built at import time from its field
list with descriptor_pb2 and message_factory: no generated code, no protoc.
Raises ImportError when the protobuf library is not installed."""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_INT64, _UINT64, _BOOL, _STRING, _MSG = (_F.TYPE_INT64, _F.TYPE_UINT64, _F.TYPE_BOOL,
                                         _F.TYPE_STRING, _F.TYPE_MESSAGE)
_REP, _OPT = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
_PKG = "perftools.profiles"

# message -> [(field, number, type, repeated, message type)], as profile.proto has them
_SCHEMA = {
    "Profile": [("sample_type", 1, _MSG, True, "ValueType"), ("sample", 2, _MSG, True, "Sample"),
                ("mapping", 3, _MSG, True, "Mapping"), ("location", 4, _MSG, True, "Location"),
                ("function", 5, _MSG, True, "Function"), ("string_table", 6, _STRING, True, None),
                ("drop_frames", 7, _INT64, False, None), ("keep_frames", 8, _INT64, False, None),
                ("time_nanos", 9, _INT64, False, None), ("duration_nanos", 10, _INT64, False, None),
                ("period_type", 11, _MSG, False, "ValueType"), ("period", 12, _INT64, False, None),
                ("comment", 13, _INT64, True, None),
                ("default_sample_type", 14, _INT64, False, None)],
    "ValueType": [("type", 1, _INT64, False, None), ("unit", 2, _INT64, False, None)],
    "Sample": [("location_id", 1, _UINT64, True, None), ("value", 2, _INT64, True, None),
               ("label", 3, _MSG, True, "Label")],
    "Label": [("key", 1, _INT64, False, None), ("str", 2, _INT64, False, None),
              ("num", 3, _INT64, False, None), ("num_unit", 4, _INT64, False, None)],
    "Mapping": [("id", 1, _UINT64, False, None), ("memory_start", 2, _UINT64, False, None),
                ("memory_limit", 3, _UINT64, False, None), ("file_offset", 4, _UINT64, False, None),
                ("filename", 5, _INT64, False, None), ("build_id", 6, _INT64, False, None),
                ("has_functions", 7, _BOOL, False, None), ("has_filenames", 8, _BOOL, False, None),
                ("has_line_numbers", 9, _BOOL, False, None),
                ("has_inline_frames", 10, _BOOL, False, None)],
    "Location": [("id", 1, _UINT64, False, None), ("mapping_id", 2, _UINT64, False, None),
                 ("address", 3, _UINT64, False, None), ("line", 4, _MSG, True, "Line"),
                 ("is_folded", 5, _BOOL, False, None)],
    "Line": [("function_id", 1, _UINT64, False, None), ("line", 2, _INT64, False, None)],
    "Function": [("id", 1, _UINT64, False, None), ("name", 2, _INT64, False, None),
                 ("system_name", 3, _INT64, False, None), ("filename", 4, _INT64, False, None),
                 ("start_line", 5, _INT64, False, None)],
}


def _build():
    fdp = descriptor_pb2.FileDescriptorProto(name="gdb_go_ext/profile.proto", package=_PKG,
                                             syntax="proto3")
    for name, fields in _SCHEMA.items():
        msg = fdp.message_type.add(name=name)
        for fname, num, ftype, repeated, mtype in fields:
            f = msg.field.add(name=fname, number=num, type=ftype, label=_REP if repeated else _OPT)
            if mtype:
                f.type_name = f".{_PKG}.{mtype}"
    pool = descriptor_pool.DescriptorPool()
    fd = pool.Add(fdp)
    fd = pool.FindFileByName(fdp.name)
    get = getattr(message_factory, "GetMessageClass", None)
    classes = {}
    for name in _SCHEMA:
        desc = fd.message_types_by_name[name]
        classes[name] = get(desc) if get else message_factory.MessageFactory(pool).GetPrototype(desc)
    return classes


_CLASSES = _build()
Profile = _CLASSES["Profile"]
ValueType = _CLASSES["ValueType"]
Sample = _CLASSES["Sample"]
Label = _CLASSES["Label"]
Mapping = _CLASSES["Mapping"]
Location = _CLASSES["Location"]
Line = _CLASSES["Line"]
Function = _CLASSES["Function"]
