"""views/heap.py's progress: one bar of the front door's per phase of the heap (spans,
roots, mark), each closed when the next starts and on every exit, Ctrl-C included;
nothing where the front door has no progress display (not a terminal)."""
import types

import pytest

from gdb_go_ext.views import heap as heapview


class Bar:
    log: list = []

    def __init__(self, what):
        self.what = what

    def __enter__(self):
        Bar.log.append(("open", self.what))
        return self

    def __call__(self, done, total):
        Bar.log.append((self.what, done, total))

    def __exit__(self, *exc):
        Bar.log.append(("close", self.what))
        return False


def test_one_bar_per_phase_each_closed():
    Bar.log = []
    with heapview.progress(types.SimpleNamespace(progress=Bar)) as prog:
        prog("reading spans", 1, 2)
        prog("reading spans", 2, 2)
        prog("reading roots", 0, 3)
        prog("marking", 5, 10)
    assert Bar.log == [("open", "reading spans"), ("reading spans", 1, 2),
                       ("reading spans", 2, 2), ("close", "reading spans"),
                       ("open", "reading roots"), ("reading roots", 0, 3),
                       ("close", "reading roots"), ("open", "marking"), ("marking", 5, 10),
                       ("close", "marking")]


def test_an_interrupt_closes_the_bar():
    Bar.log = []
    with pytest.raises(KeyboardInterrupt):
        with heapview.progress(types.SimpleNamespace(progress=Bar)) as prog:
            prog("marking", 1, 10)
            raise KeyboardInterrupt
    assert Bar.log[-1] == ("close", "marking")


def test_nothing_without_a_terminal():
    with heapview.progress(types.SimpleNamespace(progress=None)) as prog:
        assert prog is None
