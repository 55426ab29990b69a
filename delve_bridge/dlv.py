"""Starting, choosing and tearing down a headless dlv (API v2) on loopback.

dlv listens on a Unix socket in a private directory (or 127.0.0.1 with a
random port for dlvs without Unix sockets); never beyond loopback unless the
caller passes an explicit address with allow_remote, which warns.
"""
from __future__ import annotations

import glob
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from typing import Optional

from gdb_go_ext.cache import cache_dir
from gdb_go_ext.errors import GoExtError

from .rpc import Client, ConnectionLost, RPCError

# dlv (major, minor) -> Go minor versions it supports (its own --check-go-version range)
SUPPORTED = {
    (1, 27): (25, 27),
    (1, 26): (24, 26),
    (1, 25): (22, 25),
    (1, 24): (22, 24),
    (1, 23): (21, 23),
    (1, 22): (20, 22),
    (1, 21): (19, 21),
    (1, 20): (18, 20),
}
# the versions ./install.sh --test installs (and the Go minors each serves in tests)
MATRIX_DLVS = ["v1.27.1", "v1.26.2", "v1.25.2", "v1.23.1"]   # + apt delve 1.20.2

LISTENING = re.compile(r"API server listening at:\s*(\S+)")


class DlvError(GoExtError):
    """dlv could not be found, started, or it refused the target."""


_version_cache: dict = {}


def dlv_version(path: str) -> Optional[tuple]:
    """(major, minor, patch) of a dlv binary, from `dlv version`; None if it does not run."""
    try:
        key = (path, os.stat(path).st_mtime)
    except OSError:
        return None
    if key in _version_cache:
        return _version_cache[key]
    v = None
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL).stdout
        m = re.search(r"Version:\s*(\d+)\.(\d+)\.(\d+)", out)
        if m:
            v = tuple(int(x) for x in m.groups())
    except (OSError, subprocess.SubprocessError):
        v = None
    _version_cache[key] = v
    return v


def candidates() -> list[str]:
    """Every dlv we can find: the cache install.sh fills, PATH, GOBIN, Debian's."""
    found = sorted(glob.glob(os.path.join(cache_dir(), "dlv", "*", "dlv")), reverse=True)
    for p in (shutil.which("dlv"), os.path.join(os.environ.get("GOBIN", ""), "dlv")
              if os.environ.get("GOBIN") else None,
              os.path.expanduser("~/go/bin/dlv"), "/usr/bin/dlv", "/usr/local/bin/dlv"):
        if p and os.access(p, os.X_OK) and p not in found:
            found.append(p)
    return found


def supports(ver: tuple, go_minor: int) -> bool:
    rng = SUPPORTED.get(tuple(ver[:2]))
    if rng is None:  # a dlv newer than this table: assume it covers the three latest
        newest = max(SUPPORTED)
        if tuple(ver[:2]) > newest:
            return go_minor >= SUPPORTED[newest][0]
        return False
    return rng[0] <= go_minor <= rng[1]


def choose(go_version: Optional[tuple], explicit: Optional[str] = None):
    """(path, version, check_go_version_off, note). note is a sentence to tell the user, or None.

    The newest dlv that supports the target's Go version; else the closest one
    with --check-go-version=false."""
    if explicit:
        if not (os.access(explicit, os.X_OK) and os.path.isfile(explicit)):
            raise DlvError(f"--dlv {explicit} is not an executable file")
        paths = [explicit]
    else:
        paths = candidates()
    if not paths:
        raise DlvError("no dlv found: install Delve (./install.sh does it when Go >= 1.25 is "
                       "present, or `go install github.com/go-delve/delve/cmd/dlv@latest`) "
                       "or pass --dlv PATH")
    vers = [(p, dlv_version(p)) for p in paths]
    vers = [(p, v) for p, v in vers if v is not None]
    if not vers:
        raise DlvError(f"{paths[0]} does not run as dlv (`dlv version` failed)")
    if not go_version or len(go_version) < 2:
        p, v = max(vers, key=lambda x: x[1])
        return p, v, False, None
    minor = go_version[1]
    ok = [(p, v) for p, v in vers if supports(v, minor)]
    if ok:
        p, v = max(ok, key=lambda x: x[1])
        return p, v, False, None

    def distance(v):
        rng = SUPPORTED.get(tuple(v[:2]), (99, 99))
        return min(abs(minor - rng[0]), abs(minor - rng[1])), [-x for x in v]
    p, v = min(vers, key=lambda x: distance(x[1]))
    vs = ".".join(map(str, v))
    gv = ".".join(map(str, go_version[:2]))
    return p, v, True, (f"no installed dlv supports go{gv}; using dlv {vs} ({p}) with "
                        f"--check-go-version=false")


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(addr: str, allow_remote: bool) -> None:
    if addr.startswith("unix:"):
        return
    host = addr.rpartition(":")[0]
    if not _is_loopback(host):
        if not allow_remote:
            raise DlvError(f"refusing to listen on {addr}: it is not a loopback address "
                           "(add --allow-remote if you really mean to expose the debugger)")
        sys.stderr.write(f"delve-bridge: warning: dlv listens on {addr}; anyone who can reach "
                         "it can control the debugged process\n")


def _one_sentence(lines) -> str:
    text = " ".join(l.strip() for l in lines if l.strip())
    text = re.sub(r"\s+", " ", text)
    for prefix in ("Error: ", "could not attach to pid "):
        if text.startswith(prefix):
            break
    return text[-600:] if text else "no error message"


class DlvProcess:
    """A headless dlv we started: .address, .client, .pid, .version; stop() ends it."""

    def __init__(self, mode: str, *, binary: Optional[str] = None, pid: Optional[int] = None,
                 core: Optional[str] = None, args=(), dlv: Optional[str] = None,
                 go_version: Optional[tuple] = None, listen: Optional[str] = None,
                 allow_remote: bool = False, start_timeout: float = 120.0, quiet: bool = False):
        self.mode = mode
        path, ver, check_off, note = choose(go_version, dlv)
        if note and not quiet:
            sys.stderr.write(f"delve-bridge: {note}\n")
        self.path, self.version, self.check_off, self.note = path, ver, check_off, note
        self.tmpdir = tempfile.mkdtemp(prefix="delve-bridge-")
        os.chmod(self.tmpdir, 0o700)
        if listen:
            check_listen(listen, allow_remote)
            addr = listen
        elif ver >= (1, 23):
            addr = "unix:" + os.path.join(self.tmpdir, "dlv.sock")
        else:
            addr = "127.0.0.1:0"
        cmd = [path, mode]
        if mode == "exec":
            cmd.append(binary)
        elif mode == "attach":
            cmd.append(str(pid))
            if binary:
                cmd.append(binary)
        elif mode == "core":
            cmd += [binary, core]
        else:
            raise DlvError(f"unknown dlv mode {mode}")
        cmd += ["--headless", "--api-version=2", "--accept-multiclient", f"--listen={addr}",
                "--wd", os.getcwd()]
        if check_off:
            cmd.append("--check-go-version=false")
        if mode == "exec" and args:
            cmd += ["--"] + list(args)
        self.cmd = cmd
        self.stderr_lines: deque = deque(maxlen=200)
        self.stdout_lines: deque = deque(maxlen=200)
        self.address: Optional[str] = None
        self._listening = threading.Event()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise DlvError(f"cannot run {path}: {e.strerror or e}") from None
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines, True),
                                          daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines, False),
                                          daemon=True)]
        for t in self._threads:
            t.start()
        self.client: Optional[Client] = None
        try:
            self._wait_listening(start_timeout)
            self.client = Client(self.address)
        except ConnectionLost as e:
            err = self.explain(e)
            self.stop(kill_target=True)
            raise err from None
        except BaseException:
            self.stop(kill_target=True)
            raise

    def _pump(self, stream, keep: deque, watch: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            keep.append(line)
            if watch and not self._listening.is_set():
                m = LISTENING.search(line)
                if m:
                    self.address = m.group(1)
                    if not self.address.startswith("unix:") and "/" in self.address:
                        self.address = "unix:" + self.address
                    self._listening.set()
        stream.close()

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                for t in self._threads:
                    t.join(2)
                raise DlvError(f"dlv {self.mode} failed (exit status {self.proc.returncode}): "
                               f"{_one_sentence(list(self.stderr_lines) + list(self.stdout_lines))}")
            if time.monotonic() > deadline:
                raise DlvError(f"dlv did not start listening within {timeout:.0f}s: "
                               f"{_one_sentence(self.stderr_lines)}")

    def explain(self, err: Exception) -> Exception:
        """A dropped connection while dlv dies (e.g. it refused a core after listening):
        dlv's own words instead."""
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            return err
        for t in self._threads:
            t.join(2)
        return DlvError(f"dlv {self.mode} failed (exit status {self.proc.returncode}): "
                        f"{_one_sentence(list(self.stderr_lines) + [l for l in self.stdout_lines if not LISTENING.search(l)])}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, kill_target: bool, client: Optional[Client] = None) -> None:
        """Detach (killing a launched target, leaving an attached one running), make dlv exit,
        remove our private directory. Safe to call twice."""
        c = client or self.client
        if c is not None and not c.closed and self.alive:
            try:
                c.call("Detach", {"Kill": kill_target}, timeout=30)
            except (RPCError, OSError):
                pass
            c.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    self.proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for t in self._threads:
            t.join(2)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
