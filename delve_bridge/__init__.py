"""delve_bridge: the gdb_go_ext views (goroutines, stacks, maps, version) over a headless dlv.

    from delve_bridge import Bridge
    with Bridge.attach(pid) as b:
        gs = b.goroutines()

See delve_bridge/bridge.py for the Python API and `delve-bridge --help` for the command.
"""
from .bridge import Bridge  # noqa: F401
