"""Write a notebook from a list of (kind, source) cells: a tiny authoring helper.

`python scripts/nbtools.py check` verifies every notebook has a `parameters` cell and no stored outputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, (kind, src, *tags) in enumerate(cells):
        src = src.strip("\n")
        cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        if tags:
            cell.metadata["tags"] = list(tags)
        cell.id = f"c{i:02d}"  # stable ids: regenerating a notebook gives the same file
        nb.cells.append(cell)
    Path(path).write_text(nbformat.writes(nb))


def check(root="."):
    bad = []
    for p in sorted(Path(root).glob("*/*.ipynb")):
        if p.parts[0] not in ("notebooks", "book"):
            continue
        nb = nbformat.read(p, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not any("parameters" in c.metadata.get("tags", []) for c in code):
            bad.append(f"{p}: no parameters cell")
        if any(c.get("outputs") for c in code):
            bad.append(f"{p}: stores outputs")
    return bad


if __name__ == "__main__" and sys.argv[1:] == ["check"]:
    problems = check()
    print("\n".join(problems) or "notebooks ok")
    sys.exit(1 if problems else 0)
