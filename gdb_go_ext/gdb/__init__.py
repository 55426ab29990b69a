"""The gdb front door: backend, commands, parameters. Only this package imports gdb."""
