"""delve_bridge: the gdb_go_ext views over a headless Delve (dlv) target.

Not implemented yet; see the issue tracker.
"""
