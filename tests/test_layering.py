"""The package's layers (ARCHITECTURE.md), enforced on the source: who may import whom, no cycles.

Every `import scalinglaws...` / `from scalinglaws... import ...` in a module counts, including the
ones inside functions (a lazy import is still a dependency). The checker is tested on a small
synthetic package too, so an upward import or a cycle is shown to fail.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lib" / "scalinglaws"

# top-level entry -> layer; a module may import its own layer and the layers below it
LAYERS = {
    "core": 0,
    "data": 1, "models": 1, "report": 1, "plotstyle": 1,
    "laws": 2, "fitting": 2, "training": 2, "resume": 2, "evaluation": 2, "merge": 2, "lmeval": 2,
    "studies": 3,
    "cli": 4, "__main__": 4, "__init__": 4,
}


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in root.rglob("*.py") if "__pycache__" not in p.parts}


def imports(path: Path, known: set[str], pkg: str) -> set[str]:
    """Modules of the package that `path` imports (resolving `from a import b` to a.b if b is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == pkg}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == pkg:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.add(full if full in known else node.module)
    return {m for m in out if m in known}


def layer_of(mod: str) -> int:
    parts = mod.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


def violations(root: Path) -> list[str]:
    mods = modules(root)
    known, pkg = set(mods), root.name
    graph = {m: imports(p, known, pkg) for m, p in mods.items()}
    bad = []
    for m, deps in sorted(graph.items()):
        if len(m.split(".")) > 1 and m.split(".")[1] not in LAYERS:
            bad.append(f"{m}: top-level entry {m.split('.')[1]!r} has no layer in LAYERS (add it, and to ARCHITECTURE.md)")
            continue
        for d in sorted(deps):
            if layer_of(d) > layer_of(m):
                bad.append(f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)}): upward import")
            if d.startswith(f"{pkg}.studies") and not m.startswith(f"{pkg}.studies") and layer_of(m) < 4:
                bad.append(f"{m} imports the study code {d}")
    # cycles: a package's __init__ re-exporting its own submodules is not a cycle of the design
    def edges(m):
        return {d for d in graph[m] if not (m == d.rpartition(".")[0] and mods[m].name == "__init__.py")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges(m)):
            if state.get(d) == 1:
                bad.append("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return bad


def test_package_respects_its_layers():
    assert violations(PKG) == []


def test_every_top_level_entry_is_documented_in_architecture_md():
    text = (PKG.parents[1] / "ARCHITECTURE.md").read_text()
    entries = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
               if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    missing = [e for e in sorted(entries - {"__init__", "__main__"}) if f"`{e}" not in text]
    assert missing == []


def _toy_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "scalinglaws"
    for rel, src in {"__init__.py": "", "core/__init__.py": "", "studies/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(src)
    return root


@pytest.mark.parametrize("files, expect", [
    ({"core/paths.py": "", "laws.py": "from scalinglaws.core import paths\n"}, None),
    ({"core/paths.py": "from scalinglaws import laws\n", "laws.py": ""}, "upward import"),
    ({"laws.py": "def f():\n    from scalinglaws.studies import merging\n", "studies/merging.py": ""}, "upward import"),
    ({"laws.py": "from scalinglaws import fitting\n", "fitting.py": "from scalinglaws import laws\n"}, "import cycle"),
    ({"newthing.py": ""}, "has no layer"),
])
def test_checker_catches_upward_imports_and_cycles(tmp_path, files, expect):
    found = violations(_toy_package(tmp_path, files))
    if expect is None:
        assert found == []
    else:
        assert any(expect in v for v in found), found
