"""`gdb-go`: the extension's views over many cores at once, gdb run in batch for you.

A front door like delve_bridge (docs/architecture.md): it runs gdb as a subprocess with
the installed extension loaded (`directory $GDB_GO_EXT_HOME/gdb`, `source gdb_go_ext`),
one core per gdb, and never imports gdb_go_ext.gdb.
"""
