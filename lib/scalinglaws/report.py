"""Helpers for the book's analysis notebooks: glue computed values into the text.

myst-nb renders `{glue:text}`name`` by `ast.literal_eval` of the glued object's text/plain repr,
so a glued string like "3,591" would come out as the tuple "(3, 591)". `glue_text` formats the
value first and glues an object whose repr is the *quoted* text, which literal_eval turns back
into exactly that text: `cpu`, `0.731`, `3,591` or `1.2M` render as written.
"""
from __future__ import annotations

import os


class _Plain:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def glue_text(name: str, value, fmt: str | None = None) -> None:
    """Glue `format(value, fmt)` (or str(value)) under `name` for `{glue:text}` roles."""
    from myst_nb import glue

    glue(name, _Plain(format(value, fmt) if fmt else str(value)), display=False)


def provenance_banner(store, others=()) -> str:
    """A Markdown admonition for the top of a results chapter, generated from the stored provenance:
    profile, device, the full commit (a '+dirty' tree said loudly), date, wall time and unit compute.
    `others`: stores of studies this chapter also reads; a chapter built from several commits says so."""
    prov = store.provenance()
    commit = prov.get("commit", "unknown")
    dirty = commit.endswith("+dirty")
    lines = [f"**Results: profile `{store.profile}`** on {prov.get('device', 'unknown device')}, "
             f"{prov.get('date', '?')[:10]}: commit `{commit}`; "
             f"{prov.get('unit_compute_s', float('nan')) / 60:.1f} min of unit compute "
             f"({prov.get('wall_time_s', float('nan')) / 60:.1f} min of wall time in the last run)."]
    if store.profile != "gpu":
        lines.append(f"The `gpu` profile has not been run for this study; these are `{store.profile}` results.")
    if dirty:
        lines.append("**Not pinned to a commit: these results come from a tree with uncommitted changes "
                     "(`+dirty`), so the commit does not identify the code that made them.**")
    for m in prov.get("migrations", []):
        lines.append(f"Schema migration ({m.get('date', '?')}): {m.get('what', '')}")
    commits = {commit} | {o.provenance().get("commit", "unknown") for o in others}
    if len(commits) > 1:
        lines.append(f"This chapter reads results of {len(commits)} different commits: "
                     + ", ".join(f"`{c[:12]}`" for c in sorted(commits)) + ".")
    study = store.dir.parent.name
    lines.append("Reproduce: " + "; ".join(f"`make reproduce STUDY={study} PROFILE={p}`" for p in ("smoke", "cpu", "gpu"))
                 + f" (`scripts/gpu_study.sh {study}` on a lent GPU machine).")
    tables = sorted(store.dir.glob("*.parquet"))
    if tables:
        rel = lambda t: os.path.relpath(t, _book_dir())  # noqa: E731 -- download links resolve from book/
        lines.append("Tables (Parquet): " + ", ".join(f"{{download}}`{t.stem} <{rel(t)}>`" for t in tables) + ".")
    kind = "warning" if dirty or len(commits) > 1 else "note"
    return f":::{{admonition}} Provenance\n:class: {kind}\n" + "\n\n".join(lines) + "\n:::\n"


def _book_dir():
    from scalinglaws.core.paths import REPO_ROOT
    return REPO_ROOT / "book"


def show_provenance(store, others=()) -> None:
    """Display `provenance_banner` as Markdown in a chapter."""
    from IPython.display import Markdown, display

    display(Markdown(provenance_banner(store, others)))
