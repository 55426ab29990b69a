"""gdb_go_ext: goroutines and maps of Go programs, in gdb and through Delve."""

__version__ = "0.1.0"
