"""Errors the extension raises on purpose. Each carries a one-line message for the user."""


class GoExtError(Exception):
    """Base of every error we report as a single line."""


class DecodeError(GoExtError):
    """Memory or a binary did not decode as the Go runtime lays it out."""


class ReadError(DecodeError):
    """Target memory could not be read."""

    def __init__(self, addr: int, size: int, why: str = ""):
        self.addr = addr
        self.size = size
        super().__init__(f"cannot read {size} bytes at {addr:#x}" + (f": {why}" if why else ""))


class NotGoError(GoExtError):
    """The target is not a Go program (or there is no target)."""


class UsageError(GoExtError):
    """A command was called with arguments it does not take."""

    @classmethod
    def of(cls, message: str, usage: str) -> "UsageError":
        """argparse's complaint and its usage text (which it wraps over several lines for
        a command with many flags), as one line."""
        return cls(f"{message}; usage: {' '.join(usage.split()).removeprefix('usage: ')}")
