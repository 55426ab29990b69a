"""The shape of the code (docs/architecture.md): no module imports from a folder above its
own, delve_bridge and gdb_go never import gdb_go_ext.gdb, only gdb_go_ext/gdb imports gdb, and
there are no import cycles (imports inside functions count too)."""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYERS = {"errors": 0, "gcpause": 0, "cache": 0, "exectrace": 1, "binary": 1, "target": 2, "runtime": 3,
          "analysis": 4, "views": 5, "gdb": 6}


def modules():
    out = {}
    for pkg in ("gdb_go_ext", "delve_bridge", "gdb_go"):
        for root, _, names in os.walk(os.path.join(REPO, pkg)):
            for n in names:
                if n.endswith(".py"):
                    path = os.path.join(root, n)
                    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    out[rel.removesuffix(".__init__")] = path
    return out


def imports(name, path, known):
    """The modules of ours that `name` imports, anywhere in it."""
    is_pkg = path.endswith("__init__.py")
    base = name if is_pkg else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                mod = ".".join(parts[:len(parts) - node.level + 1])
                mod = mod + "." + node.module if node.module else mod
            else:
                mod = node.module
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            if t in known and t != name:
                found.add(t)
            elif t == "gdb":
                found.add("gdb")
    return found


def layer(name):
    parts = name.split(".")
    if parts[0] in ("delve_bridge", "gdb_go"):
        return 6
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def test_no_module_imports_from_a_layer_above():
    known = modules()
    bad = []
    for name, path in known.items():
        for dep in imports(name, path, known):
            if dep == "gdb":
                if not name.startswith("gdb_go_ext.gdb"):
                    bad.append((name, "imports gdb"))
            elif dep.startswith("gdb_go_ext.gdb") and not name.startswith("gdb_go_ext.gdb"):
                bad.append((name, dep))
            elif layer(dep) > layer(name):
                bad.append((name, dep))
    assert bad == []


def test_no_import_cycles():
    known = modules()
    graph = {n: {d for d in imports(n, p, known) if d != "gdb"} for n, p in known.items()}
    # a package's __init__ importing its own submodules is how packages are built
    for n in graph:
        graph[n] = {d for d in graph[n] if not d.startswith(n + ".")}
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    assert cycles == []


def test_runtime_reads_only_through_target_and_binary():
    """runtime/ reaches memory and files only through target/ and binary/: none of its
    modules imports ctypes, mmap or os.open's kin, or calls open()."""
    bad = []
    for name, path in modules().items():
        if not name.startswith("gdb_go_ext.runtime"):
            continue
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                bad += [(name, m) for m in mods if m.split(".")[0] in ("ctypes", "mmap")]
            elif isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id == "open":
                    bad.append((name, "open()"))
                elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                        and f.value.id == "os" and f.attr in ("open", "pread", "preadv", "fdopen"):
                    bad.append((name, f"os.{f.attr}()"))
    assert bad == []
