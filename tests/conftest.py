"""pytest wiring for the real-gdb harness (tests/harness.py).

Fixtures:
  toolchain  parametrized over the whole Go matrix (tests/matrix.json), ids
             like go1.19, go1.24.11-noswissmap. Narrow it with
             --toolchain NAME (repeatable) or GDB_GO_EXT_TOOLCHAINS=a,b.
  mode       'live' (gdb -p) and 'core' (gcore); narrow with --mode.
  go_target  a factory: go_target("version") -> harness.Target for the
             current toolchain and mode (cleaned up after the test).

A toolchain missing from $CACHE/toolchains.json fails its tests; it is never
skipped.
"""
import contextlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--toolchain", action="append", default=[],
                     help="only this matrix toolchain (repeatable)")
    parser.addoption("--mode", action="append", default=[], choices=list(harness.MODES),
                     help="only this target mode (repeatable)")


def _selected_toolchains(config):
    names = harness.matrix_names()
    want = list(config.getoption("toolchain"))
    env = os.environ.get("GDB_GO_EXT_TOOLCHAINS", "")
    want += [w for w in env.split(",") if w.strip()]
    if not want:
        return names
    unknown = [w for w in want if w not in names]
    if unknown:
        raise pytest.UsageError("unknown toolchain(s) %s; matrix: %s" % (unknown, names))
    return [n for n in names if n in want]


def pytest_generate_tests(metafunc):
    if "toolchain" in metafunc.fixturenames:
        names = _selected_toolchains(metafunc.config)
        metafunc.parametrize("toolchain", names, ids=names)
    if "mode" in metafunc.fixturenames:
        modes = metafunc.config.getoption("mode") or list(harness.MODES)
        metafunc.parametrize("mode", modes, ids=modes)


@pytest.fixture
def go_target(request, tmp_path):
    """go_target(fixture, args=(), ready="READY", pie=False) -> harness.Target for
    this test's toolchain and mode (pie: built with -buildmode=pie)."""
    stack = contextlib.ExitStack()
    count = [0]
    toolchain = request.getfixturevalue("toolchain")
    mode = request.getfixturevalue("mode")

    def make(fixture, args=(), ready="READY", pie=False):
        count[0] += 1
        sub = tmp_path / ("%s-%d" % (fixture, count[0]))
        sub.mkdir()
        return stack.enter_context(
            harness.target_for(fixture, toolchain, mode, str(sub), args=args, ready=ready,
                               pie=pie))

    with stack:
        yield make


def pytest_collection_modifyitems(config, items):
    """tests/unit/ needs no gdb, dlv or Go toolchain; tests/integration/ runs them all:
    `-m unit` or `-m integration` picks one (or name the folder)."""
    for item in items:
        folder = os.path.basename(os.path.dirname(str(item.fspath)))
        item.add_marker(pytest.mark.unit if folder == "unit" else pytest.mark.integration)
