"""Placeholder until the bulk decoder lands: the cursor walk."""
from .bulk import decode_by_cursor as decode_generation  # noqa: F401
