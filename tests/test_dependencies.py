"""A study's declared dependencies (`DEPENDS_ON`) checked against what it uses.

Two checks, each shown failing on an undeclared use:
- on the source: a study package that imports another study's package, or names another study's
  store (`ResultStore("x", ...)`, `open_store("x", ...)`, `get_study("x")`, `Sweep("x", ...)`), must
  declare that study (directly or through a dependency);
- at run time: `studies.exclusive_run` runs a study inside `core.results.read_scope`, which records the
  studies whose stored results the run reads and refuses the first read of an undeclared one.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from scalinglaws import studies as ST
from scalinglaws.core import results as RES

STUDIES_DIR = Path(ST.__file__).parent
STORE_CALLS = ("ResultStore", "open_store", "get_study", "Sweep", "available_profiles")


def used_studies(package: Path, study: str, studies: set[str]) -> dict[str, list[str]]:
    """{other study: ["file:line", ...]} that `package`'s source imports or opens the store of."""
    out: dict[str, list[str]] = {}

    def note(other, path, node):
        if other in studies and other != study:
            out.setdefault(other, []).append(f"{path.name}:{node.lineno}")

    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    if parts[:2] == ["scalinglaws", "studies"] and len(parts) > 2:
                        note(parts[2], path, node)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                parts = node.module.split(".")
                if parts[:2] == ["scalinglaws", "studies"]:
                    if len(parts) > 2:
                        note(parts[2], path, node)
                    else:
                        for a in node.names:
                            note(a.name, path, node)
            elif isinstance(node, ast.Call) and node.args:
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                arg = node.args[0]
                if name in STORE_CALLS and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    note(arg.value, path, node)
    return out


def undeclared(package: Path, study: str, studies: set[str], declared: set[str]) -> list[str]:
    return [f"{study} uses {other} ({', '.join(where)}) without declaring it in DEPENDS_ON"
            for other, where in sorted(used_studies(package, study, studies).items()) if other not in declared]


def test_every_study_declares_the_studies_its_source_uses():
    names = set(ST.study_names())
    bad = [line for s in sorted(names)
           for line in undeclared(STUDIES_DIR / s, s, names, set(ST.dependencies(s)))]
    assert bad == []


def test_the_source_check_fails_on_an_undeclared_import_or_store(tmp_path):
    pkg = tmp_path / "alpha"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("DEPENDS_ON = ()\n")
    (pkg / "study.py").write_text(
        "from scalinglaws.core.results import ResultStore\n"
        "from scalinglaws.studies import beta\n"
        "def run(profile):\n"
        "    return ResultStore('gamma', profile).read('x')\n")
    names = {"alpha", "beta", "gamma"}
    assert undeclared(pkg, "alpha", names, set()) == [
        "alpha uses beta (study.py:2) without declaring it in DEPENDS_ON",
        "alpha uses gamma (study.py:4) without declaring it in DEPENDS_ON"]
    assert undeclared(pkg, "alpha", names, {"beta", "gamma"}) == []


def test_read_scope_records_reads_and_refuses_an_undeclared_study(tmp_path):
    RES.ResultStore("testbed", "smoke", tmp_path).write("t", pd.DataFrame({"a": [1]}))
    with RES.read_scope("routing", {"testbed"}) as reads:
        assert RES.ResultStore("testbed", "smoke", tmp_path).read("t")["a"].tolist() == [1]
        RES.ResultStore("routing", "smoke", tmp_path).has("loss")  # its own store
        with pytest.raises(RES.UndeclaredRead, match="routing study read the stored results of 'merging'"):
            RES.ResultStore("merging", "smoke", tmp_path).has("experts")
    assert reads == {"testbed", "routing", "merging"}
    RES.ResultStore("merging", "smoke", tmp_path).has("experts")  # outside a run: no scope, no check


def test_a_run_reading_an_undeclared_study_fails_before_any_compute(monkeypatch):
    """Routing with lr='testbed' reads the testbed's stored ladder while it validates: with its
    declaration removed, the run stops there (UndeclaredRead, nothing trained); declared, the same
    validation reads exactly the testbed."""
    routing = ST.get_study("routing")
    if not RES.ResultStore("testbed", "smoke").has("ladder"):
        pytest.skip("no stored testbed smoke ladder")
    with RES.read_scope("routing", ST.dependencies("routing")) as reads:
        ST.validate_run(routing, "smoke", "local", {"lr": "testbed"})
    assert reads == {"testbed"}
    monkeypatch.setattr(routing, "DEPENDS_ON", ())
    with pytest.raises(RES.UndeclaredRead, match="add 'testbed' to scalinglaws.studies.routing.DEPENDS_ON"):
        routing.run("smoke", lr="testbed")
