"""ASCII stand-ins for a locale that cannot hold the views' characters (views/console.py):
the characters the views write become what people type for them, anything else a JSON
escape, so JSON text stays JSON with the same values; a stream of an ASCII locale gets
them through its error handler."""
import io
import json
import sys

from hypothesis import example, given, strategies as st

from gdb_go_ext.views import console


def test_known_characters():
    assert console.ascii_text("ids: 1, 2, \u2026 (3 more)") == "ids: 1, 2, ... (3 more)"
    assert console.ascii_text("12.3\u00b5s, 3\u20134 minutes, 40\u00d7") == "12.3us, 3-4 minutes, 40x"
    assert console.ascii_text("plain") == "plain"


@given(st.text())
@example("\u201c")
@example("a \u201dquoted\u201d \\ b")
def test_json_stays_json(s):
    """Any string in JSON (as json_text writes it, ensure_ascii=False) reads back the same
    after ascii_text, but for the characters with stand-ins."""
    text = console.ascii_text(json.dumps({"k": s}, ensure_ascii=False))
    assert text.isascii()
    assert json.loads(text)["k"] == s.translate(console._ASCII_FALLBACK)


def test_stream_of_an_ascii_locale(monkeypatch):
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    monkeypatch.setattr(console, "locale_encodes", lambda: False)
    console.fit_streams_to_locale()
    stream.write("a \u2026 \u00e9\n")
    stream.flush()
    assert raw.getvalue() == b"a ... \\u00e9\n"
    assert not console.encodes("ascii") and console.encodes("utf-8")
