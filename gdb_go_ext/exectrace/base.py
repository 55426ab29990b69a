"""What every part of the reader shares (internal/trace's base.go): the "none" IDs, the
int64 view of a varint, and the error that stops a trace at a byte offset."""

NO_ID = -1
NO_TASK = (1 << 64) - 1
_S64 = 1 << 63
_U64 = 1 << 64


def _s64(x: int) -> int:
    return x - _U64 if x >= _S64 else x


class _Broken(Exception):
    """The trace is broken here: message and byte offset."""

    def __init__(self, msg: str, offset: int):
        super().__init__(msg)
        self.offset = offset
