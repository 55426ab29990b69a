"""The reader: header, generations, batches, ordering (work in progress)."""
from typing import Iterator, Optional

from .model import Event, TraceFormatError


class Trace:
    def __init__(self, data, version: str):
        self._data = data
        self.version = version
        self.error: Optional[str] = None

    def __iter__(self) -> Iterator[Event]:
        return iter(())


def read_trace(src) -> Trace:
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    elif hasattr(src, "read"):
        data = src.read()
    else:
        with open(src, "rb") as f:
            data = f.read()
    if not data.startswith(b"go 1.") or len(data) < 16:
        raise TraceFormatError("not a Go execution trace")
    head = data[:16].rstrip(b"\x00").decode("ascii", "replace")
    return Trace(data, "go" + head.split()[1])
