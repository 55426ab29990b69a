"""Where gdb_go_ext keeps what it can make again (DWARF indexes, dlv builds, test builds)."""
import os


def cache_dir() -> str:
    return os.environ.get("GDB_GO_EXT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "gdb_go_ext")
