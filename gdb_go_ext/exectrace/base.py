"""What every part of the reader shares (internal/trace's base.go): the "none" IDs, the
int64 view of a varint, and the error that stops a trace at a byte offset."""

NO_ID = -1
NO_TASK = (1 << 64) - 1
SIGN64 = 1 << 63
WRAP64 = 1 << 64


def s64(x: int) -> int:
    return x - WRAP64 if x >= SIGN64 else x


class Broken(Exception):
    """The trace is broken here: message and byte offset."""

    def __init__(self, msg: str, offset: int):
        super().__init__(msg)
        self.offset = offset


_WORKER = None


def worker():
    """The reader's one helper thread (a bulk read gives it half its work: numpy lets go
    of the GIL over whole arrays, so the two run on two cores)."""
    global _WORKER
    if _WORKER is None:
        from concurrent.futures import ThreadPoolExecutor
        _WORKER = ThreadPoolExecutor(1, thread_name_prefix="trace-bulk")
    return _WORKER
