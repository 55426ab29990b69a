"""Install the dlv versions the bridge uses (called by install.sh).

    python -m delve_bridge.install default --cache DIR
        a suitable dlv into DIR/dlv/<version>/dlv when none is found and Go >= 1.25 is present
    python -m delve_bridge.install matrix --cache DIR
        every dlv the test matrix needs (fails if one cannot be installed), recorded in DIR/dlv.json

Built with `GOBIN=DIR/dlv/<v> go install github.com/go-delve/delve/cmd/dlv@<v>` by the
newest Go available (dlv 1.27 needs Go >= 1.25 to build); Go 1.19 and 1.20 targets use
Debian's delve 1.20.2 (apt package `delve`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

from . import dlv as D

DEFAULT = "v1.27.1"
APT_VERSION = (1, 20)


def _go_version(go: str):
    try:
        out = subprocess.run([go, "version"], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, GOTOOLCHAIN="local")).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"go(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def builder_go(cache: str):
    """The newest go we can find: PATH, then the matrix toolchains."""
    cands = []
    for g in (shutil.which("go"), "/usr/local/go/bin/go"):
        if g:
            cands.append(g)
    try:
        with open(os.path.join(cache, "toolchains.json")) as f:
            for tc in json.load(f).values():
                if not tc.get("env"):
                    cands.append(tc["go"])
    except (OSError, ValueError):
        pass
    best = None
    for g in cands:
        v = _go_version(g) if os.access(g, os.X_OK) else None
        if v and (best is None or v > best[1]):
            best = (g, v)
    return best


def go_install(go: str, version: str, cache: str) -> str:
    dest = os.path.join(cache, "dlv", version)
    os.makedirs(dest, exist_ok=True)
    env = dict(os.environ, GOBIN=dest, GOTOOLCHAIN="local", GOFLAGS="")
    for k in ("GOROOT", "GOEXPERIMENT", "GOOS", "GOARCH"):
        env.pop(k, None)
    p = subprocess.run([go, "install", f"github.com/go-delve/delve/cmd/dlv@{version}"],
                       capture_output=True, text=True, env=env, timeout=1800)
    path = os.path.join(dest, "dlv")
    if p.returncode != 0 or not os.access(path, os.X_OK):
        raise SystemExit(f"installing dlv {version} with {go} failed: "
                         f"{' '.join((p.stderr or p.stdout).split())[-800:]}")
    return path


def apt_delve() -> str:
    for p in ("/usr/bin/dlv",):
        v = D.dlv_version(p) if os.access(p, os.X_OK) else None
        if v and v[:2] == APT_VERSION:
            return p
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("dlv 1.20 (for Go 1.19/1.20 targets) needs `apt-get install delve` as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "install", "-y", "-q", "delve"], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
        p = subprocess.run(["apt-get", "install", "-y", "-q", "delve"], capture_output=True, text=True, env=env)
    v = D.dlv_version("/usr/bin/dlv") if os.access("/usr/bin/dlv", os.X_OK) else None
    if p.returncode != 0 or not v or v[:2] != APT_VERSION:
        raise SystemExit(f"apt-get install delve failed: {' '.join(p.stderr.split())[-400:]}")
    return "/usr/bin/dlv"


def install_matrix(cache: str) -> int:
    got = builder_go(cache)
    if got is None or got[1] < (1, 25):
        raise SystemExit("building dlv 1.27 needs Go >= 1.25 (none on PATH or in the matrix)")
    go = got[0]
    record = {}
    for v in D.MATRIX_DLVS:
        path = os.path.join(cache, "dlv", v, "dlv")
        have = D.dlv_version(path) if os.access(path, os.X_OK) else None
        if have is None or "v%d.%d.%d" % have != v:
            print(f"delve-bridge: installing dlv {v} with {go}", file=sys.stderr)
            path = go_install(go, v, cache)
            have = D.dlv_version(path)
            if have is None:
                raise SystemExit(f"dlv {v} was built but does not run")
        record[v] = path
    p = apt_delve()
    record["v%d.%d.%d" % D.dlv_version(p)] = p
    with open(os.path.join(cache, "dlv.json"), "w") as f:
        json.dump(record, f, indent=1)
    print(f"delve-bridge: dlv versions ready: {', '.join(sorted(record))}", file=sys.stderr)
    return 0


def install_default(cache: str) -> int:
    if D.candidates():
        return 0
    got = builder_go(cache)
    if got is None or got[1] < (1, 25):
        print("delve-bridge: no dlv found and no Go >= 1.25 to build one; install Delve yourself "
              "for delve-bridge", file=sys.stderr)
        return 0
    print(f"delve-bridge: installing dlv {DEFAULT} into {cache}/dlv", file=sys.stderr)
    try:
        go_install(got[0], DEFAULT, cache)
    except SystemExit as e:  # the gdb extension works without it
        print(f"delve-bridge: {e}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m delve_bridge.install")
    p.add_argument("what", choices=["default", "matrix"])
    p.add_argument("--cache", default=D.cache_dir())
    a = p.parse_args(argv)
    os.environ["GDB_GO_EXT_CACHE"] = a.cache
    return install_matrix(a.cache) if a.what == "matrix" else install_default(a.cache)


if __name__ == "__main__":
    sys.exit(main())
