"""The package's dependency direction, read from the import statements (no import runs).

Leaves import nothing of the package but other leaves; models know no inference or fitting;
cells know no probability; nothing in the maths imports verification, pipelines, plots or
the command line; and no two modules import each other, directly or in a cycle."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "switchssm"

LEAVES = {
    "types",
    "_validation",
    "_pytree",
    "_archive",
    "_markdown",
    "_docstrings",
    "scan",
    "sequences",
}
MATHS = {"models", "inference", "fit", "rnn", "bridges", "compare"}
TOP = {"verify", "pipelines", "plots", "cli"}
FORBIDDEN = {
    "models": {"inference", "fit", "rnn", "bridges", "compare"} | TOP,
    "inference": {"fit", "rnn", "bridges", "compare"} | TOP,
    "rnn": {"models", "inference", "fit", "bridges", "compare"} | TOP,
    "fit": {"rnn", "bridges", "compare"} | TOP,
    "bridges": {"fit", "compare"} | TOP,
    "compare": TOP,
}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``switchssm.*`` module the file imports (at any depth of the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("switchssm"):
                out.add(node.module)
                out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("switchssm"))
    return out


def _graph():
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    return mods, {m: {i for i in _imports(p) if i in mods and i != m} for m, p in mods.items()}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_dependency_direction():
    _, graph = _graph()
    bad = []
    for m, deps in graph.items():
        a = _area(m)
        for d in deps:
            b = _area(d)
            if a in LEAVES and b not in LEAVES and d != "switchssm":
                bad.append(f"{m} -> {d} (a leaf imports the package)")
            if b in FORBIDDEN.get(a, set()):
                bad.append(f"{m} -> {d}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    mods, graph = _graph()

    # package __init__ files re-export their submodules: an edge pkg -> pkg.sub is expected,
    # and importing a sibling through the package is the same as importing it directly
    def deps(m):
        out = set()
        for d in graph[m]:
            if d.startswith(m + "."):
                continue
            out.add(d)
        return out

    state = {}
    stack = []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in deps(m):
            if state.get(d) == "open":
                cycle = stack[stack.index(d) :] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(mods):
        if m not in state:
            visit(m)


def test_no_module_is_too_long():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 820}  # fmt: skip
    assert not long, long
