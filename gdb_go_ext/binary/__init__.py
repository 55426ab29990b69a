"""The program's files: ELF, pclntab, DWARF types, and the model of Go types. Pure Python."""
