"""Go's text format of execution traces (internal/trace/raw: TextReader) to the binary
format its raw.Writer writes, for the hand-written traces of Go's
internal/trace/testdata/tests/*.test (txtar files: `-- expect --` then SUCCESS or
FAILURE "regexp", and `-- trace --` then the text).

The text is a header line `Trace Go1.N`, then one event per line: its name and its
arguments as name=value (unsigned decimal), in the spec's order. A Stack is followed by
one line per frame (pc= func= file= line=), a String (and an ExperimentalBatch) by a
`data="..."` line (a Go quoted string). '#' starts a comment. The binary: the 16-byte
header "go 1.N trace" padded with NULs, then per event its type byte and its arguments
as uvarints (a Stack's frames' four values after them), and for an event with data the
data's length as a uvarint, then the data. A batch's size= is written as the text says
(a test may lie about it on purpose)."""
import ast
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gdb_go_ext.binary.leb128 import uleb128_bytes  # noqa: E402
from gdb_go_ext.exectrace import wire  # noqa: E402

_TYPE = {name: t for t, name in enumerate(wire.NAMES)}
_WITH_DATA = {wire.EV_STRING, wire.EV_EXPERIMENTAL_BATCH}
_ARG = re.compile(r"(\w+)=(\d+)$")



def _go_unquote(s: str) -> bytes:
    """strconv.Unquote of a double-quoted Go string literal, as bytes."""
    s = s.strip()
    if not (len(s) >= 2 and s[0] == '"' and s[-1] == '"'):
        raise ValueError("not a quoted string: %r" % s)
    # Go's escapes (\a \b \f \n \r \t \v \\ \" \xHH \ooo \uHHHH \UHHHHHHHH) are Python's too
    return ast.literal_eval(s).encode("utf-8", "surrogateescape")


def _tokens(line: str) -> list:
    return line.split("#", 1)[0].split()


def _args(tokens) -> list:
    vals = []
    for tok in tokens:
        m = _ARG.match(tok)
        if m is None:
            raise ValueError("malformed argument %r" % tok)
        vals.append(int(m.group(2)))
    return vals


def text_to_binary(text: str) -> bytes:
    """A trace in Go's text format -> the same trace in the binary format."""
    lines = [ln for ln in text.split("\n") if _tokens(ln)]
    head = _tokens(lines[0])
    if head[0] != "Trace" or not head[1].startswith("Go1."):
        raise ValueError("no 'Trace Go1.N' header: %r" % lines[0])
    out = bytearray(("go 1.%d trace" % int(head[1][4:])).encode().ljust(16, b"\x00"))
    i = 1
    while i < len(lines):
        toks = _tokens(lines[i])
        i += 1
        typ = _TYPE[toks[0]]
        args = _args(toks[1:])
        out.append(typ)
        out += b"".join(uleb128_bytes(v) for v in args)
        if typ == wire.EV_STACK:
            for _ in range(args[1]):
                out += b"".join(uleb128_bytes(v) for v in _args(_tokens(lines[i])))
                i += 1
        if typ in _WITH_DATA:
            key, _, quoted = lines[i].partition("=")
            if key.strip() != "data":
                raise ValueError("malformed data: %r" % lines[i])
            data = _go_unquote(quoted)
            i += 1
            out += uleb128_bytes(len(data)) + data
    return bytes(out)


def read_test(path: str):
    """A Go internal/trace test file -> (expectation line, trace text)."""
    parts = {}
    name = None
    for line in open(path, encoding="utf-8").read().split("\n"):
        m = re.match(r"^-- (\S+) --$", line)
        if m:
            name = m.group(1)
            parts[name] = []
        elif name is not None:
            parts[name].append(line)
    return "\n".join(parts["expect"]).strip(), "\n".join(parts["trace"])


def expectation(line: str):
    """(True, None) for SUCCESS, (False, regexp) for FAILURE "regexp" (testtrace's
    ParseExpectation)."""
    word, _, rest = line.partition(" ")
    if word == "SUCCESS":
        return True, None
    if word == "FAILURE":
        return False, ast.literal_eval(rest.strip())
    raise ValueError("bad expectation %r" % line)


# ---------------------------------------------------------------------------
# tests/data/exectrace/gotests: Go's test traces, converted, with what Go's readers say
# ---------------------------------------------------------------------------
# The toolchain whose `go tool trace` is the truth for a wire version (the one that
# writes it; go1.24.11 for 1.23 as in test_exectrace_unit.py).
TRUTH_TOOLCHAIN = {22: "go1.22.10", 23: "go1.24.11", 25: "go1.25.5"}
# go1.22's reader starts each generation's frontier in Go map order, random per run: on
# equal times across Ms its output varies. Its distinct outputs over this many runs are
# kept (none when every run differed); go1.24.11 (go1.22's rules for wire 1.22 but the
# frontier in batch order, and a GoDestroySyscall's ProcSteal before it) too.
RUNS_22 = 30


def make_data(src_dir, out_dir):
    """Convert every src_dir/*.test (Go's internal/trace/testdata/tests) into
    out_dir/NAME.trace and record, in out_dir/truth.json.gz, Go's expectation and what
    the truth toolchains' `go tool trace -d=parsed` print for it."""
    import glob
    import gzip
    import json
    import subprocess

    import exectrace_truth as T
    import harness

    def run(tc, path):
        info = harness.toolchain(tc)
        version = harness.toolchain_go_version(tc)
        env = dict(harness.go_env(tc), GOTOOLCHAIN="local", TZ="UTC")
        p = subprocess.run([info["go"], "tool", "trace", T.parsed_flag(version), path],
                           env=env, capture_output=True, timeout=300)
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")

    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for test in sorted(glob.glob(os.path.join(src_dir, "*.test"))):
        name = os.path.basename(test)[:-len(".test")]
        expect, text = read_test(test)
        data = text_to_binary(text)
        wire_version = int(_tokens(text.split("\n", 1)[0])[1][4:])
        path = os.path.join(out_dir, name + ".trace")
        with open(path, "wb") as f:
            f.write(data)
        truth = []
        tcs = [TRUTH_TOOLCHAIN[wire_version]] + (["go1.24.11"] if wire_version == 22 else [])
        for tc in tcs:
            runs = RUNS_22 if tc == "go1.22.10" else 1
            outputs, rcs, errs = [], set(), set()
            for _ in range(runs):
                rc, out, err = run(tc, path)
                rcs.add(rc)
                errs.add(err)
                if out not in outputs:
                    outputs.append(out)
            assert len(rcs) == 1 and len(errs) == 1, (name, tc, rcs)
            if runs > 1 and len(outputs) == runs:  # every run differed: not kept
                outputs = []
            truth.append({"toolchain": tc, "runs": runs, "outputs": outputs,
                          "rc": rcs.pop(), "stderr": errs.pop()})
        cases.append({"name": name, "wire": wire_version, "expect": expect,
                      "truth": truth})
        print(name, [(t["toolchain"], len(t["outputs"]), t["rc"]) for t in truth], flush=True)
    with gzip.open(os.path.join(out_dir, "truth.json.gz"), "wt") as f:
        json.dump({"source": src_dir.split("toolchain@")[-1], "cases": cases}, f, indent=0,
                  sort_keys=True)


if __name__ == "__main__":
    # python tests/tracetext.py GOROOT/src/internal/trace/testdata/tests tests/data/exectrace/gotests
    make_data(sys.argv[1], sys.argv[2])
