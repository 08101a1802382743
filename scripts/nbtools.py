"""Write a notebook from a list of (kind, source) cells: a tiny authoring helper.

`python scripts/nbtools.py check` verifies every notebook has a `parameters` cell and no stored outputs.

`python scripts/nbtools.py reader [book/x.ipynb ...]` puts the book's chapters in the reader's order
(idempotent, so it can be re-applied after merging other edits; cell ids kept, JSON layout kept):
- plumbing cells (the parameters cell, imports, loading, glue, `show_provenance`: cells that display
  nothing of their own) get `remove-input` (their outputs, e.g. the provenance banner, stay);
- analysis cells (a figure, a table, printed text) get `hide-input` (folded: a reader can open them);
- a cell an author already tagged (remove-input, hide-input, remove-cell, hide-cell) keeps its tags;
- a chapter in GLANCE gets its result-at-a-glance cell right after its title (`report.show_at_a_glance`,
  cell id `glance`), the title cell split from the text below it (id `<title id>-intro`).
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


# chapter -> (study, the claim to lead with: None = the first testable one)
GLANCE = {"testbed": ("testbed", "testbed.ce_falls_with_n"), "merging": ("merging", None),
          "della": ("della", "della_beats_ta"), "routing": ("routing", "routing_beats_dense"),
          "resource": ("resource", None), "composition": ("composition", None)}
READER_TAGS = ("remove-input", "hide-input")
_SHOWS = ("plt.show", "display(", "print(")


def shows_something(source: str) -> bool:
    """Whether a code cell displays output of its own: a figure, printed text, or a last expression
    that is not a call of glue/show_provenance/plt.* (which display nothing or only plumbing)."""
    import ast
    if any(s in source for s in _SHOWS):
        return True
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return True
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    last = body[-1].value
    if isinstance(last, ast.Call):
        name = ast.unparse(last.func)
        return not (name.split(".")[-1] in ("glue", "glue_text", "show_provenance", "show_at_a_glance", "use_readable_tables", "use", "glue_numbers")
                    or name.startswith("plt."))
    return True


def reader_tags(cell) -> list[str]:
    """The tags a code cell should carry: its own, plus one of READER_TAGS when it has none (a cell an
    author already tagged remove-input, hide-input, remove-cell or hide-cell keeps its choice)."""
    tags = list(cell.get("metadata", {}).get("tags", []))
    if {"remove-cell", "hide-cell", *READER_TAGS} & set(tags):
        return tags
    src = "".join(cell["source"])
    want = "hide-input" if shows_something(src) and "parameters" not in tags else "remove-input"
    return tags + [want]


def _glance_source(study: str, headline) -> list[str]:
    return ["from scalinglaws.report import show_at_a_glance, use_readable_tables\n", "\n",
            "use_readable_tables()  # every table of the chapter in the book's number format\n",
            f"show_at_a_glance({study!r}, profile, headline={headline!r})"]


def reader(path) -> bool:
    """Apply the reader's order to one chapter; True when the file changed."""
    import json
    path = Path(path)
    before = path.read_text()
    nb = json.loads(before)
    cells = nb["cells"]
    if path.stem in GLANCE and not any(c.get("id") == "glance" for c in cells):
        title = cells[0]
        lines = "".join(title["source"]).split("\n")
        rest = "\n".join(lines[1:]).strip("\n")
        title["source"] = [lines[0]]
        at = 1
        if rest:
            cells.insert(1, {"cell_type": "markdown", "id": f"{title.get('id', 'title')}-intro", "metadata": {},
                             "source": rest.splitlines(True)})
        cells.insert(at, {"cell_type": "code", "execution_count": None, "id": "glance", "metadata": {},
                          "outputs": [], "source": _glance_source(*GLANCE[path.stem])})
    for c in cells:  # the glance cell follows the template (GLANCE may have changed)
        if c.get("id") == "glance" and path.stem in GLANCE:
            c["source"] = _glance_source(*GLANCE[path.stem])
    # the glance needs `profile`: the parameters cell goes before it (papermill injects after it)
    ids = [c.get("id") for c in cells]
    if "glance" in ids:
        g = ids.index("glance")
        p = next((i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        if p is not None and p > g:
            cells.insert(g, cells.pop(p))
    for c in cells:
        if c["cell_type"] == "code":
            tags = reader_tags(c)
            if tags != c.get("metadata", {}).get("tags", []):
                c.setdefault("metadata", {})["tags"] = tags
    after = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if after != before:
        path.write_text(after)
    return after != before


if __name__ == "__main__" and sys.argv[1:] == ["check"]:
    problems = check()
    print("\n".join(problems) or "notebooks ok")
    sys.exit(1 if problems else 0)

if __name__ == "__main__" and sys.argv[1:2] == ["reader"]:
    targets = sys.argv[2:] or sorted(str(p) for p in Path("book").glob("*.ipynb"))
    for t in targets:
        print(f"{t}: {'updated' if reader(t) else 'unchanged'}")
