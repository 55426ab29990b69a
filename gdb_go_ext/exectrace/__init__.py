"""Go execution traces (runtime/trace, `go test -trace`, /debug/pprof/trace) in pure Python.

Reads the generation-based format that Go 1.22 through 1.27 write (internal/trace) and yields
its events in the order, and with the values, that `go tool trace -d=parsed` of the same
toolchain prints. Imports nothing of ours but gdb_go_ext.errors.
"""
from .model import Event, Frame, TraceFormatError
from .reader import Trace, read_trace

__all__ = ["Event", "Frame", "Trace", "TraceFormatError", "read_trace"]
