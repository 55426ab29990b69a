#!/usr/bin/env bash
# install.sh: install gdb_go_ext into the Python that gdb itself embeds.
#
#   ./install.sh              install a copy of this clone (idempotent); the clone
#                             may then be moved or deleted
#   ./install.sh --dev        install this clone editable instead (for development:
#                             edits take effect at the next `source gdb_go_ext`)
#   ./install.sh --uninstall  undo everything install did (REPL history included)
#   ./install.sh --test       install a copy of this clone (or with --dev, editable),
#                             install what the tests need (Go toolchain matrix,
#                             test-only Python packages), run the suite on this clone
#   ./install.sh --demo       install as above, then show the extension on
#                             examples/leaky, live (gdb -p) and from a core (gcore)
#
# Environment:
#   GDB_GO_EXT_HOME   where the venv and the gdb script live
#                     (default ~/.local/share/gdb_go_ext)
#   GDB_GO_EXT_CACHE  toolchains and fixture builds for the tests
#                     (default ~/.cache/gdb_go_ext)
#   GDB_GO_EXT_BIN    where the delve-bridge and gdb-go launchers go (default ~/.local/bin,
#                     or /usr/local/bin for root when ~/.local/bin is not on PATH)
#   GDB               the gdb to install for (default: gdb on PATH)
#   GDB_GO_EXT_NO_VENV=1  force the no-venv fallback (pip --target)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
HOME_DIR="${GDB_GO_EXT_HOME:-$HOME/.local/share/gdb_go_ext}"
CACHE_DIR="${GDB_GO_EXT_CACHE:-$HOME/.cache/gdb_go_ext}"
# The launcher goes to ~/.local/bin, unless that is not on PATH and we are root
# with /usr/local/bin on PATH (then there, so that it really is on PATH).
default_bin_dir() {
    case ":$PATH:" in *":$HOME/.local/bin:"*) echo "$HOME/.local/bin"; return ;; esac
    if [[ "$(id -u)" == 0 && -d /usr/local/bin && -w /usr/local/bin ]]; then
        case ":$PATH:" in *":/usr/local/bin:"*) echo /usr/local/bin; return ;; esac
    fi
    echo "$HOME/.local/bin"
}
BIN_DIR="${GDB_GO_EXT_BIN:-$(default_bin_dir)}"
GDB="${GDB:-gdb}"
DEV=""                                  # --dev: editable install of this clone
VENV="$HOME_DIR/venv"
PRIVATE_SITE="$HOME_DIR/site"          # fallback when venv cannot be had
GDB_DIR="$HOME_DIR/gdb"                 # holds the `gdb_go_ext` gdb script
MANIFEST="$HOME_DIR/manifest"           # paths outside HOME_DIR we created
BLOCK_BEGIN="# >>> gdb_go_ext >>>"
BLOCK_END="# <<< gdb_go_ext <<<"
RUNTIME_DEPS=(rich pygments prompt-toolkit pyelftools protobuf numpy)
TEST_DEPS=(pytest pytest-xdist hypothesis)
PANICPARSE_VERSION=v2.5.0   # panicparse's pp (go install), read by tests/panicparse.py

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The home init file gdb reads: the XDG one when it exists, else ~/.gdbinit
# (gdb reads only the first it finds).
gdbinit_path() {
    local xdg="${XDG_CONFIG_HOME:-$HOME/.config}/gdb/gdbinit"
    if [[ -f "$xdg" ]]; then echo "$xdg"; else echo "$HOME/.gdbinit"; fi
}

# Remove our marked block from a gdbinit file (no-op if absent).
strip_block() {
    local f="$1"
    [[ -f "$f" ]] || return 0
    grep -qF "$BLOCK_BEGIN" "$f" || return 0
    local tmp
    tmp="$(mktemp "$f.XXXXXX")"
    awk -v b="$BLOCK_BEGIN" -v e="$BLOCK_END" '
        $0 == b {skip=1; next}
        $0 == e {skip=0; next}
        !skip {print}' "$f" >"$tmp"
    cat "$tmp" >"$f" && rm -f "$tmp"   # keep the file's inode and mode
}

# ---------------------------------------------------------------------------
# Which Python does gdb embed?
# ---------------------------------------------------------------------------
find_gdb_python() {
    command -v "$GDB" >/dev/null || die "gdb not found (set GDB=/path/to/gdb)"
    local info
    info="$("$GDB" -nx -batch -ex 'python import sys; print(sys.executable); print(sys.base_prefix); print("%d.%d" % sys.version_info[:2]); print(sys.version.replace(chr(10), " "))' 2>/dev/null)" \
        || die "$GDB has no Python support"
    local exe prefix ver full
    { read -r exe; read -r prefix; read -r ver; read -r full; } <<<"$info"
    [[ -n "$ver" ]] || die "could not ask $GDB for its Python (got: $info)"
    # gdb's sys.executable is a guess (here /usr/bin/python, which need not
    # exist): try it, then the versioned names under gdb's Python prefix.
    local cand got
    for cand in "$exe" "$prefix/bin/python$ver" "$exe$ver" "$prefix/bin/python3" "/usr/bin/python$ver"; do
        [[ -x "$cand" ]] || continue
        got="$("$cand" -c 'import sys; print(sys.version.replace(chr(10), " "))' 2>/dev/null)" || continue
        if [[ "$got" == "$full" ]]; then
            GDB_PY="$(readlink -f "$cand")"; GDB_PY_VER="$ver"; return 0
        fi
    done
    die "gdb embeds Python $full (sys.executable=$exe) but no matching interpreter was found"
}

# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------
venv_usable() {
    "$GDB_PY" -c 'import venv, ensurepip' >/dev/null 2>&1
}

make_venv() {
    if [[ -x "$VENV/bin/python" ]] && [[ "$(readlink -f "$VENV/bin/python")" == "$GDB_PY" ]]; then
        return 0
    fi
    rm -rf "$VENV"
    say "creating venv with $GDB_PY at $VENV"
    "$GDB_PY" -m venv "$VENV"
}

site_dir_of() {  # the purelib dir of a python
    "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

do_install() {
    local t0=$SECONDS
    find_gdb_python
    say "gdb embeds $GDB_PY (Python $GDB_PY_VER)"
    mkdir -p "$HOME_DIR" "$GDB_DIR"
    touch "$MANIFEST"

    if [[ -z "${GDB_GO_EXT_NO_VENV:-}" ]] && ! venv_usable && command -v apt-get >/dev/null \
        && [[ "$(id -u)" == 0 ]]; then
        say "venv/ensurepip missing: apt-get install python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python3-venv" >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2; } \
            || say "apt-get could not install python3-venv"
    fi

    local site extra_path="" mode
    if [[ -z "${GDB_GO_EXT_NO_VENV:-}" ]] && venv_usable; then
        mode=venv
        make_venv
        rm -rf "$PRIVATE_SITE"
        # wheel: builds our wheel with no download (see install_package)
        "$VENV/bin/python" -m pip install -q --upgrade pip wheel >&2 || say "could not upgrade pip (continuing)"
        install_package "" "$VENV/bin/python" -m pip
        site="$(site_dir_of "$VENV/bin/python")"
    else
        mode=private-site
        say "no usable venv for $GDB_PY: installing dependencies into $PRIVATE_SITE"
        rm -rf "$VENV"
        local pip=("$GDB_PY" -m pip)
        "$GDB_PY" -m pip --version >/dev/null 2>&1 || pip=(python3 -m pip)
        # The runtime dependencies are pure Python but numpy, whose wheel matches the pip
        # of gdb's Python that installs it (protobuf has a pure-Python fallback
        # to its compiled wheel), so any pip can --target them.
        "${pip[@]}" install -q --upgrade --target "$PRIVATE_SITE" "${RUNTIME_DEPS[@]}" >&2
        site="$PRIVATE_SITE"
        if [[ -n "$DEV" ]]; then
            extra_path="$REPO"
        else
            install_package "$PRIVATE_SITE" "${pip[@]}"
        fi
    fi

    write_gdb_script "$site" "$extra_path"
    build_bpf || say "no eBPF mapwatch: the BPF object was not built (continuing)"
    install_gdbinit_block
    install_launcher "$mode"
    # >>> hook: dlv default (issue 5) >>>
    # A dlv for delve-bridge when none is found and Go >= 1.25 can build one (never fatal).
    local dlv_py="$GDB_PY"
    if [[ "$mode" == venv ]]; then dlv_py="$VENV/bin/python"; fi
    ( cd "$REPO" && PYTHONPATH="$site:$REPO" GDB_GO_EXT_CACHE="$CACHE_DIR" \
        "$dlv_py" -m delve_bridge.install default --cache "$CACHE_DIR" ) \
        || say "could not install a dlv for delve-bridge (continuing)"
    # <<< hook: dlv default <<<
    say "installed ($mode${DEV:+, editable: $REPO}) in $((SECONDS - t0))s; in gdb: source gdb_go_ext"
}

# install_package TARGET PIP...: this repository, with the pip command PIP (a Python's
# `-m pip`), into that Python's environment (TARGET "") or into the directory TARGET.
# --dev: editable, so the clone stays in use. Else a regular copy: one wheel built from a
# clean copy of the package sources (building in the clone would leave build/ behind,
# and a stale build/lib), so that the clone may be moved or deleted afterwards.
install_package() {
    local target="$1" opts=(-q) tmp whl rc=0 iso=()
    shift
    if [[ -n "$target" ]]; then opts+=(--upgrade --target "$target"); fi
    if [[ -n "$DEV" ]]; then
        "$@" install "${opts[@]}" -e "$REPO" >&2
        return
    fi
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/gdb_go_ext-build.XXXXXX")"
    mkdir "$tmp/src"
    cp -R "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/gdb_go_ext" "$REPO/delve_bridge" \
        "$REPO/gdb_go" "$tmp/src/"
    find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
    # with the setuptools and wheel the Python has, where it has them (no download)
    if "$1" -c 'import setuptools, wheel, sys
sys.exit(int(setuptools.__version__.split(".")[0]) < 64)' 2>/dev/null; then
        iso=(--no-build-isolation)
    fi
    "$@" wheel -q --no-deps "${iso[@]}" -w "$tmp/wheel" "$tmp/src" >"$tmp/log" 2>&1 \
        || { cat "$tmp/log" >&2; rm -rf "$tmp"; die "could not build gdb_go_ext from $REPO"; }
    whl=("$tmp"/wheel/*.whl)
    # --force-reinstall --no-deps: the same version number is still new code; then the
    # dependencies the environment lacks
    "$@" install "${opts[@]}" --force-reinstall --no-deps "${whl[0]}" >&2 || rc=$?
    if [[ $rc == 0 && -z "$target" ]]; then "$@" install "${opts[@]}" "${whl[0]}" >&2 || rc=$?; fi
    rm -rf "$tmp"
    return "$rc"
}

# >>> hook: eBPF mapwatch (issue 27) >>>
# `mapwatch --ebpf` and `probe-sched` load $HOME_DIR/bpf/{mapwatch,sched}.bpf.o, compiled
# here from the project's own C (gdb_go_ext/target/bpf/*.bpf.c) with clang -target bpf and
# libbpf-dev's headers; as root with apt-get they are installed when missing (build time only).
build_bpf() {
    local src out name
    if { ! command -v clang >/dev/null || [[ ! -f /usr/include/bpf/bpf_helpers.h ]]; } \
        && command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
        say "installing clang and libbpf-dev to build the eBPF probes"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            clang libbpf-dev >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install \
                 -y -q --no-install-recommends clang libbpf-dev >&2; } || return 1
    fi
    command -v clang >/dev/null || return 1
    mkdir -p "$HOME_DIR/bpf"
    for name in mapwatch sched; do
        src="$REPO/gdb_go_ext/target/bpf/$name.bpf.c" out="$HOME_DIR/bpf/$name.bpf.o"
        clang -O2 -g -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -c "$src" \
            -o "$out.tmp" >&2 && mv -f "$out.tmp" "$out" && say "built $out" || return 1
    done
}
# <<< hook: eBPF mapwatch <<<

write_gdb_script() {
    local site="$1" extra="$2" tmp extra_line=""
    if [[ -n "$extra" ]]; then extra_line="_gge_sys.path.append(\"$extra\")"; fi
    tmp="$(mktemp "$GDB_DIR/.gdb_go_ext.XXXXXX")"
    cat >"$tmp" <<EOF
# gdb_go_ext: written by $REPO/install.sh; do not edit.
# \`source gdb_go_ext\` finds this file through gdb's source search path
# (the \`directory\` line that install.sh adds to your gdbinit).
python
import site as _gge_site, sys as _gge_sys
_gge_before = list(_gge_sys.path)
_gge_site.addsitedir("$site")
$extra_line
# Our environment wins over system packages (e.g. Debian's python3-pygments).
_gge_sys.path[:] = [p for p in _gge_sys.path if p not in _gge_before] + _gge_before
try:
    import gdb_go_ext.gdb.loader as _gge_loader
    _gge_loader.load()
except Exception as _gge_e:
    # one line now, and the same line from \`go\` (not gdb's own goto-bookmark)
    import gdb as _gge_gdb
    _gge_msg = ("gdb_go_ext: cannot load (%s: %s); the install in $HOME_DIR is broken:"
                " run install.sh again" % (type(_gge_e).__name__, _gge_e)).splitlines()[0]
    class _GgeBroken(_gge_gdb.Command):
        """gdb_go_ext did not load (see \`source gdb_go_ext\`)."""
        def __init__(self, msg):
            super().__init__("go", _gge_gdb.COMMAND_DATA, _gge_gdb.COMPLETE_NONE, True)
            self.msg = msg
        def invoke(self, arg, from_tty):
            import gdb
            raise gdb.GdbError(self.msg)
    _GgeBroken(_gge_msg)
    _gge_gdb.write(_gge_msg + "\n")
    del _gge_gdb, _gge_msg, _GgeBroken, _gge_e
else:
    del _gge_loader
del _gge_site, _gge_sys, _gge_before
end
EOF
    chmod 644 "$tmp"   # (mktemp makes it 0600: other users of this install read it too)
    mv -f "$tmp" "$GDB_DIR/gdb_go_ext"
}

install_gdbinit_block() {
    local f
    f="$(gdbinit_path)"
    strip_block "$HOME/.gdbinit"
    strip_block "${XDG_CONFIG_HOME:-$HOME/.config}/gdb/gdbinit"
    mkdir -p "$(dirname "$f")"
    {
        echo "$BLOCK_BEGIN"
        echo "# Lets \`source gdb_go_ext\` work from any directory (added by $REPO/install.sh;"
        echo "# remove with ./install.sh --uninstall). Nothing is loaded until you source it."
        echo "directory $GDB_DIR"
        echo "$BLOCK_END"
    } >>"$f"
    say "gdbinit: $f"
}

install_launcher() {
    local mode="$1"
    install_one_launcher "$mode" delve-bridge delve_bridge.cli
    install_one_launcher "$mode" gdb-go gdb_go.cli
    case ":$PATH:" in
        *":$BIN_DIR:"*) ;;
        *) say "note: $BIN_DIR is not on your PATH; add it to use delve-bridge and gdb-go" ;;
    esac
}

# install_one_launcher MODE NAME MODULE: $BIN_DIR/NAME runs MODULE's main()
install_one_launcher() {
    local mode="$1" name="$2" module="$3" target
    mkdir -p "$BIN_DIR"
    if [[ "$mode" == venv ]]; then
        target="$VENV/bin/$name"
    else
        target="$HOME_DIR/$name"
        local path="\"$PRIVATE_SITE\""
        if [[ -n "$DEV" ]]; then path+=", \"$REPO\""; fi   # editable: the clone itself
        cat >"$target" <<EOF
#!/bin/sh
exec "$GDB_PY" -c 'import sys; sys.path[:0] = [$path]; from $module import main; sys.exit(main())' "\$@"
EOF
        chmod +x "$target"
    fi
    [[ -x "$target" ]] || die "launcher target $target missing"
    if [[ -e "$BIN_DIR/$name" && ! -L "$BIN_DIR/$name" ]]; then
        die "$BIN_DIR/$name exists and is not our symlink; not touching it"
    fi
    ln -sfn "$target" "$BIN_DIR/$name"
    grep -qxF "$BIN_DIR/$name" "$MANIFEST" || echo "$BIN_DIR/$name" >>"$MANIFEST"
}

# ---------------------------------------------------------------------------
# uninstall
# ---------------------------------------------------------------------------
do_uninstall() {
    local p
    if [[ -f "$MANIFEST" ]]; then
        while IFS= read -r p; do
            [[ -n "$p" ]] || continue
            if [[ -L "$p" ]]; then rm -f "$p" && say "removed $p"; fi
        done <"$MANIFEST"
    fi
    # Also the launchers of a manifest-less install, if they point at us.
    for p in "$BIN_DIR/delve-bridge" "$BIN_DIR/gdb-go"; do
        if [[ -L "$p" && "$(readlink "$p")" == "$HOME_DIR"/* ]]; then rm -f "$p"; fi
    done
    strip_block "$HOME/.gdbinit"
    strip_block "${XDG_CONFIG_HOME:-$HOME/.config}/gdb/gdbinit"
    # An empty ~/.gdbinit that only we had written is removed too.
    if [[ -f "$HOME/.gdbinit" && ! -s "$HOME/.gdbinit" ]]; then rm -f "$HOME/.gdbinit"; fi
    rm -rf "$HOME_DIR" "$CACHE_DIR"
    # the delve-bridge REPL's history (delve_bridge/repl.py history_path)
    local state="${XDG_STATE_HOME:-$HOME/.local/state}/gdb_go_ext"
    if [[ -d "$state" ]]; then rm -rf "$state" && say "removed $state (REPL history)"; fi
    say "uninstalled: $HOME_DIR, $CACHE_DIR, the gdbinit block and the launchers are gone."
    say "left alone (shared with other software): Go toolchain modules in \`go env GOMODCACHE\`,"
    say "  apt packages (golang-1.19-go, python3-venv) and the Go build cache."
}

# ---------------------------------------------------------------------------
# --test
# ---------------------------------------------------------------------------
do_test() {
    do_install
    [[ -x "$VENV/bin/python" ]] || die "--test needs the venv install (GDB_GO_EXT_NO_VENV is set or venv failed)"
    local py="$VENV/bin/python" t0
    mkdir -p "$CACHE_DIR"

    say "installing test-only Python packages: ${TEST_DEPS[*]}"
    "$py" -m pip install -q "${TEST_DEPS[@]}" >&2

    # the cgo fixture is built with a C compiler
    if ! command -v gcc >/dev/null; then
        command -v apt-get >/dev/null || die "--test needs gcc (the cgo fixture), and there is no apt-get"
        say "installing gcc for the cgo fixture"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >&2 \
            || die "cannot install gcc"
    fi

    t0=$SECONDS
    say "installing the Go toolchain matrix (tests/matrix.json) into $CACHE_DIR"
    # Fails (non-zero) if any toolchain of the matrix cannot be installed.
    GDB_GO_EXT_CACHE="$CACHE_DIR" "$py" "$REPO/tests/toolchains.py" install \
        --cache "$CACHE_DIR" --python "$py"
    say "toolchains ready in $((SECONDS - t0))s"

    # >>> hook: dlv versions (issue 5) >>>
    # Every Delve version the bridge tests need, into "$CACHE_DIR/dlv/<version>/dlv"
    # (GOBIN=... go install github.com/go-delve/delve/cmd/dlv@<version>, built with the newest Go
    # found) plus Debian's delve 1.20.2 for Go 1.19/1.20; recorded in "$CACHE_DIR/dlv.json".
    # Fails --test if one cannot be installed.
    t0=$SECONDS
    say "installing the dlv versions the bridge tests need into $CACHE_DIR/dlv"
    ( cd "$REPO" && GDB_GO_EXT_CACHE="$CACHE_DIR" "$py" -m delve_bridge.install matrix --cache "$CACHE_DIR" )
    say "dlv versions ready in $((SECONDS - t0))s"
    # <<< hook: dlv versions <<<

    # panicparse's pp, the real client the dump tests read `go dump` with
    t0=$SECONDS
    if [[ ! -x "$CACHE_DIR/bin/pp" ]]; then
        say "installing panicparse (pp $PANICPARSE_VERSION) into $CACHE_DIR/bin"
        ( cd "$CACHE_DIR" && GOBIN="$CACHE_DIR/bin" GOFLAGS=-mod=mod GOTOOLCHAIN=local \
            go install "github.com/maruel/panicparse/v2/cmd/pp@$PANICPARSE_VERSION" ) >&2 \
            || die "cannot install panicparse's pp"
    fi
    say "pp ready in $((SECONDS - t0))s"

    say "running the test suite"
    cd "$REPO"
    local rc=0
    GDB_GO_EXT_HOME="$HOME_DIR" GDB_GO_EXT_CACHE="$CACHE_DIR" \
        "$py" -m pytest -n 2 tests/ "$@" || rc=$?
    return "$rc"
}

# ---------------------------------------------------------------------------
# --demo
# ---------------------------------------------------------------------------
DEMO_PID=""
DEMO_TMP=""
demo_cleanup() {
    if [[ -n "$DEMO_PID" ]]; then kill -9 "$DEMO_PID" 2>/dev/null || true; wait "$DEMO_PID" 2>/dev/null || true; fi
    if [[ -n "$DEMO_TMP" ]]; then rm -rf "$DEMO_TMP"; fi
}

demo_gdb() {  # demo_gdb <label> <gdb target args...>
    local label="$1"; shift
    echo
    echo "=================== $label: gdb -batch $* ==================="
    cat >"$DEMO_TMP/demo.gdb" <<'EOF'
python
import gdb, json
def _demo(cmd):
    print("(gdb) " + cmd)
    try:
        gdb.execute(cmd)
    except gdb.error as e:
        print("error: %s" % e)
for _c in ("go goroutines -l --limit 12", "go stacks --min 4 -t 12"):
    _demo(_c)
try:  # one leaked goroutine's backtrace
    _gs = json.loads(gdb.execute("go goroutines --json -with userloc main.", to_string=True))["goroutines"]
    _leaked = [g["id"] for g in _gs if g["id"] != 1]
    if _leaked:
        _demo("go goroutine %d" % _leaked[0])
except (gdb.error, ValueError, KeyError) as e:
    print("error: %s" % e)
for _c in ("go map main.config", "go map main.cache --limit 5", "go map main.config --layout"):
    _demo(_c)
end
EOF
    "$GDB" -nx -batch \
        -ex "directory $GDB_DIR" \
        -ex 'source gdb_go_ext' \
        -ex 'echo (gdb) go version\n' \
        -ex 'go version' \
        -x "$DEMO_TMP/demo.gdb" \
        "$@" 2>&1 | grep -v -e '^\[New LWP' -e '^\[Thread debugging' -e '^Using host libthread_db' \
            -e 'auto-load' -e '^To enable execution of this file' -e '^To completely disable' \
            -e '^line to your configuration file' -e '^For more information about this security' \
            -e 'Auto-loading safe path' || true
}

do_demo() {
    do_install
    command -v go >/dev/null || die "--demo needs \`go\` on PATH to build examples/leaky"
    command -v gcore >/dev/null || die "--demo needs gcore (part of gdb)"
    trap demo_cleanup EXIT
    trap 'exit 130' INT TERM
    DEMO_TMP="$(mktemp -d "${TMPDIR:-/tmp}/gdb_go_ext-demo.XXXXXX")"
    local bin="$DEMO_TMP/leaky"
    say "building examples/leaky with $(go version)"
    (cd "$REPO/examples/leaky" && GOFLAGS=-mod=mod go build -o "$bin" .)
    "$bin" >"$DEMO_TMP/leaky.out" 2>&1 &
    DEMO_PID=$!
    local i
    for i in $(seq 1 300); do
        grep -q '^ready' "$DEMO_TMP/leaky.out" 2>/dev/null && break
        kill -0 "$DEMO_PID" 2>/dev/null || { cat "$DEMO_TMP/leaky.out" >&2; die "leaky exited early"; }
        sleep 0.1
    done
    grep -q '^ready' "$DEMO_TMP/leaky.out" || die "leaky did not become ready in 30s"
    cat "$DEMO_TMP/leaky.out"

    demo_gdb "live (attached to pid $DEMO_PID)" -p "$DEMO_PID"
    gcore -o "$DEMO_TMP/core" "$DEMO_PID" >/dev/null 2>&1 || die "gcore failed"
    local core="$DEMO_TMP/core.$DEMO_PID"
    [[ -s "$core" ]] || die "gcore made no core"
    kill -9 "$DEMO_PID" 2>/dev/null || true
    wait "$DEMO_PID" 2>/dev/null || true
    DEMO_PID=""
    demo_gdb "core ($(du -h "$core" | cut -f1) core file)" "$bin" "$core"
}

# ---------------------------------------------------------------------------
if [[ "${1:-}" == --dev ]]; then DEV=1; shift; fi
if [[ "${2:-}" == --dev && "${1:-}" != --test ]]; then DEV=1; set -- "$1" "${@:3}"; fi
case "${1:-}" in
    ""|--install) do_install ;;
    --uninstall)  do_uninstall ;;
    --test)       shift; do_test "$@" ;;
    --demo)       do_demo ;;
    -h|--help)    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *)            die "unknown option $1 (see --help)" ;;
esac
