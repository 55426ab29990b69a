"""`--base COMMIT` for the benchmarks (bench_million, bench_heap, bench_trace): the code of
another commit, unpacked once with `git archive` (tests/harness.commit_tree), measured by
the same measurement in the same run, on the same process or core or file, rounds
alternating which code goes first; then both medians and the ratio this / base (the
median of the per-round ratios). Benchmarks print; they never assert."""
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

import harness  # noqa: E402


def add_option(ap) -> None:
    ap.add_argument("--base", metavar="COMMIT",
                    help="also measure COMMIT's gdb_go_ext (git archive) in the same run, "
                         "and print the ratio this / COMMIT")


def tree(commit: str) -> str:
    """The folder holding COMMIT's gdb_go_ext and delve_bridge."""
    path = harness.commit_tree(commit)
    if path is None:
        raise SystemExit("--base %s: this clone does not hold that commit" % commit)
    return path


def gdb_loader(code: str) -> list:
    """gdb -ex words that load gdb_go_ext from the folder code (REPO, or a tree) with the
    installed environment's packages, as `source gdb_go_ext` does."""
    site = os.path.join(harness.home_dir(), "venv", "lib",
                        "python%d.%d" % sys.version_info[:2], "site-packages")
    script = ("python\nimport site, sys\nb = list(sys.path)\nsite.addsitedir(%r)\n"
              "sys.path[:] = [%r] + [p for p in sys.path if p not in b] + b\n"
              "import gdb_go_ext.gdb.loader as L\nL.load()\nend\n" % (site, code))
    path = os.path.join(tempfile.gettempdir(), "bench-load-%d-%s.gdb" % (
        os.getpid(), abs(hash(code))))
    with open(path, "w") as f:
        f.write(script)
    return ["-ex", "source " + path]


def pair(i: int, this, base=None) -> tuple:
    """(this(i), base(i)) of round i (base None: (this(i), None)); the order alternates,
    this first in even rounds, so a drift of the machine falls on both alike."""
    if base is None:
        return this(i), None
    if i % 2 == 0:
        mine = this(i)
        return mine, base(i)
    theirs = base(i)
    return this(i), theirs


def gdb_preimport(code) -> list:
    """gdb -iex words that make a later `source gdb_go_ext` run the code in the folder code:
    its package imported first (tests/harness.gdb_with_tree); [] for code None. Give both
    sides of a comparison code (REPO for this one), so they are loaded the same way."""
    if code is None:
        return []
    return ["-iex", "python import sys; sys.path.insert(0, %r); import gdb_go_ext" % code]


def rounds(n: int, this, base=None) -> tuple:
    """([this(i)], [base(i)]) over n rounds (pair); base None: no base runs."""
    mine, theirs = [], []
    for i in range(n):
        a, b = pair(i, this, base)
        mine.append(a)
        if base is not None:
            theirs.append(b)
    return mine, theirs


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(this: list, base: list):
    """The median of the per-round ratios this / base (None where either is missing)."""
    return median([a / b for a, b in zip(this, base) if a is not None and b])


def line(label: str, commit: str, this: list, base: list, unit: str = "s") -> str:
    """One printed comparison: both medians and the ratio."""
    t, b, r = median(this), median(base), ratio(this, base)
    cell = lambda v: "-" if v is None else "%.3f %s" % (v, unit)  # noqa: E731
    return "%-44s this %12s   %s %12s   this/base %s" % (
        label, cell(t), commit, cell(b), "-" if r is None else "%.3f" % r)
