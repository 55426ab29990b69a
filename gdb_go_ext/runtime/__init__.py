"""Pure decoders of Go runtime state. Nothing here imports gdb."""
