"""The debugger interface: the only way decoders reach a process, a core or an image.

base: the Target protocol and Thread; direct: memory sources read without a debugger
(/proc/PID/mem, a core's segments).
"""
from .base import Memory, Target, Thread  # noqa: F401
