"""The delve-bridge command line and the REPL's help and completion, built from the view
registry, without dlv: parsing, the one-line usage errors and their exit status, --help,
and a view registered here showing up in all of them with no change to delve_bridge."""
from __future__ import annotations

import signal

import pytest

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from delve_bridge import cli
from delve_bridge import repl as replmod
from gdb_go_ext.errors import UsageError
from gdb_go_ext.views import registry


def _parse(*argv):
    return vars(cli.parse(list(argv)))


def test_target_kinds_and_their_words():
    o = _parse("--dlv", "/d", "--run", "2.5", "--rpc-memory", "exec", "./srv", "goroutines", "-l")
    assert (o["mode"], o["program"], o["view"], o["args"]) == ("exec", "./srv", ["goroutines", "-l"], [])
    assert (o["dlv"], o["run"], o["rpc_memory"], o["allow_remote"]) == ("/d", 2.5, True, False)
    o = _parse("attach", "123", "map", "main.m", "--key", '"k"')
    assert (o["pid"], o["view"]) == (123, ["map", "main.m", "--key", '"k"'])
    o = _parse("core", "bin", "core.1", "stacks", "--min", "2")
    assert (o["program"], o["core"], o["view"]) == ("bin", "core.1", ["stacks", "--min", "2"])
    o = _parse("--binary", "b", "--listen", "unix:/s", "connect", "127.0.0.1:4040")
    assert (o["address"], o["binary"], o["listen"], o["view"]) == ("127.0.0.1:4040", "b", "unix:/s", [])


def test_program_arguments_after_double_dash():
    o = _parse("--wait-for", "READY", "exec", "./srv", "goroutines", "--", "-port", "8080")
    assert (o["wait_for"], o["view"], o["args"]) == ("READY", ["goroutines"], ["-port", "8080"])
    o = _parse("exec", "./srv", "--", "-v", "--", "stacks", "--json")
    assert (o["view"], o["args"]) == (["stacks", "--json"], ["-v"])
    o = _parse("exec", "./srv", "--")
    assert (o["view"], o["args"]) == ([], [])


BAD = [
    ([], "say what to debug"),
    (["--bogus", "attach", "1"], "unrecognized arguments: --bogus"),
    (["--run", "soon", "attach", "1"], "takes seconds, not 'soon'"),
    (["--dlv"], "expected one argument"),
    (["frob", "1"], "invalid choice: 'frob'"),
    (["attach"], "required: PID; usage: delve-bridge attach PID [VIEW ...]"),
    (["core", "bin"], "required: CORE; usage: delve-bridge core BIN CORE"),
    (["attach", "notapid"], "a process id, not 'notapid'"),
    (["attach", "1", "frobnicate"], "unknown view 'frobnicate'; one of goroutines"),
    (["attach", "1", "--json"], "unknown view '--json'"),
    (["core", "b", "c", "version", "--", "x"], "program arguments after -- are for exec only"),
]


@pytest.mark.parametrize("argv,words", BAD, ids=[" ".join(a) or "nothing" for a, _ in BAD])
def test_usage_errors_are_one_line_and_exit_2(argv, words, capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("delve-bridge: ") and words in err, err
    assert err.count("\n") == 1 and err.count("delve-bridge:") == 1, err
    assert signal.getsignal(signal.SIGTERM) == before


def test_help_lists_every_view_from_the_registry(capsys):
    assert cli.main(["--help"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("usage: delve-bridge [OPTIONS] exec BIN [VIEW ...]")
    for kind in ("exec", "attach", "core", "connect"):
        assert f"delve-bridge [OPTIONS] {kind} " in out
    for opt in ("--dlv", "--binary", "--listen", "--allow-remote", "--run", "--wait-for",
                "--rpc-memory", "--debug"):
        assert opt in out
    for name, view in registry.VIEWS.items():
        assert f"\n  {name} [-h]" in out and view.summary in out
    for argv in (["exec", "-h"], ["attach", "1", "--help"]):
        assert cli.main(argv) == 0
        assert capsys.readouterr().out.startswith(f"usage: delve-bridge {argv[0]} ")


@pytest.fixture
def extra_view(monkeypatch):
    """A view registered by the test alone: a symbol positional and a flag of fixed words."""
    def arguments(p):
        p.add_argument("expr", metavar="EXPR")
        p.add_argument("--kind", help="which kind; more")
        p.add_argument("-o", dest="output", metavar="FILE")
    view = registry.View("probe", "Probe one symbol (a test's view).", lambda ctx, a: "",
                         arguments, completes=registry.COMPLETE_SYMBOL,
                         word_choices={"--kind": ("reads", "writes")})
    monkeypatch.setitem(registry.VIEWS, "probe", view)
    return view


class _FakeBridge:
    exited = False
    _running_id = None
    last_goroutines = None

    def package_variables(self, pkg):
        return ["main.cache", "main.count"] if pkg == "main" else []


def _complete(text):
    c = replmod.BridgeCompleter(_FakeBridge())
    return [x.text for x in c.get_completions(Document(text, len(text)), CompleteEvent())]


def test_a_new_view_is_served_without_touching_the_bridge(extra_view, capsys):
    assert _parse("attach", "7", "probe", "main.cache")["view"] == ["probe", "main.cache"]
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "  probe [-h] [--kind KIND] [-o FILE] EXPR\n      Probe one symbol" in out
    assert "probe" in replmod.commands() and "Probe one symbol" in replmod.help_text()
    assert replmod.help_text("probe").startswith("usage: probe [-h]")
    assert _complete("pro") == ["probe"]
    assert _complete("probe main.c") == ["main.cache", "main.count"]
    assert _complete("probe --kind ") == ["reads", "writes"]
    assert _complete("probe --kind r") == ["reads"]
    assert _complete("probe main.cache --") == ["--help", "--kind"]
    assert _complete("probe main.cache ") == ["--help", "--kind", "-h", "-o"]
    assert _complete("help pr") == ["probe"]


def test_help_of_the_repl_names_its_own_commands():
    text = replmod.help_text()
    for name, view in registry.VIEWS.items():
        assert f"\n  {name} [-h]" in text and view.summary in text
    for c in ("continue", "halt", "help", "quit"):
        assert f"\n  {c} " in text
    with pytest.raises(UsageError, match="no help on 'nope'"):
        replmod.help_text("nope")
