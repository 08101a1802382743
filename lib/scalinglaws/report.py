"""Helpers for the book's analysis notebooks: glue computed values into the text.

myst-nb renders `{glue:text}`name`` by `ast.literal_eval` of the glued object's text/plain repr,
so a glued string like "3,591" would come out as the tuple "(3, 591)". `glue_text` formats the
value first and glues an object whose repr is the *quoted* text, which literal_eval turns back
into exactly that text: `cpu`, `0.731`, `3,591` or `1.2M` render as written.
"""
from __future__ import annotations

import html
import os
import re


class _Plain:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def glue_text(name: str, value, fmt: str | None = None) -> None:
    """Glue `format(value, fmt)` (or str(value)) under `name` for `{glue:text}` roles."""
    from myst_nb import glue

    glue(name, _Plain(format(value, fmt) if fmt else str(value)), display=False)


def provenance_banner(store, others=(), notes=()) -> str:
    """A Markdown admonition for the top of a results chapter, generated from the stored provenance:
    profile, device, the full commit (a '+dirty' tree said loudly), date, wall time and unit compute.
    `others`: stores of studies this chapter also reads; a chapter built from several commits says so.
    `notes`: further warnings from the layers above (e.g. `studies.profile_drift`), one line each."""
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
    from scalinglaws.core.bases import stale_bases
    stale = stale_bases(prov, store.profile, store.dir.parent.parent)
    if stale:
        lines.append("**Built on an earlier testbed:** the stored testbed at this profile no longer chooses the "
                     "bases these results were made from (" + "; ".join(stale) + "). These results describe the "
                     "earlier bases, recorded in the provenance's `testbed_bases`; the testbed chapter shows the "
                     f"current ones. Rerunning `make reproduce STUDY={store.dir.parent.name} PROFILE={store.profile}` "
                     "rebuilds them on the current ladder.")
    lines += list(notes)
    for m in prov.get("migrations", []):
        lines.append(f"Schema migration ({m.get('date', '?')}): {m.get('what', '')}")
    commits = {commit} | {o.provenance().get("commit", "unknown") for o in others}
    if len(commits) > 1:
        lines.append(f"This chapter reads results of {len(commits)} different commits: "
                     + ", ".join(f"`{c[:12]}`" for c in sorted(commits)) + ".")
    study = store.dir.parent.name
    lines.append("Reproduce: " + "; ".join(f"`make reproduce STUDY={study} PROFILE={p}`" for p in ("smoke", "cpu", "gpu"))
                 + f" (`scripts/gpu_study.sh {study}` on a lent GPU machine).")
    for name, d in sorted(prov.get("derived", {}).items()):
        lines.append(f"Table `{name}` derived later from the stored tables (`{d.get('command', '')}`) at commit "
                     f"`{d.get('commit', 'unknown')}`, {str(d.get('date', '?'))[:10]}.")
    tables = sorted(store.dir.glob("*.parquet"))
    if tables:
        rel = lambda t: os.path.relpath(t, _book_dir())  # noqa: E731 -- download links resolve from book/
        lines.append("Tables to download (Parquet, CSV): " + ", ".join(
            f"`{t.stem}` ({{download}}`Parquet <{rel(t)}>`, {{download}}`CSV <{rel(csv_copy(t))}>`)" for t in tables) + ".")
    kind = "warning" if dirty or stale or notes or len(commits) > 1 else "note"
    return f":::{{admonition}} Provenance\n:class: {kind}\n" + "\n\n".join(lines) + "\n:::\n"


def csv_copy(parquet, out_root=None):
    """A CSV copy of a stored Parquet table for readers without a Parquet reader, under
    `_build/tables/<study>/<profile>/<table>.csv` (rewritten atomically when older than the table).
    The book links it beside the Parquet file; Sphinx copies both into the site."""
    from pathlib import Path

    import pandas as pd

    from scalinglaws.core.paths import REPO_ROOT
    from scalinglaws.core.results import atomic_write_bytes

    parquet = Path(parquet)
    out = Path(out_root or REPO_ROOT / "_build" / "tables") / parquet.parent.parent.name / parquet.parent.name / \
        f"{parquet.stem}.csv"
    if not out.exists() or out.stat().st_mtime < parquet.stat().st_mtime:
        atomic_write_bytes(out, pd.read_parquet(parquet).to_csv(index=False).encode())
    return out


VERDICT_ORDER = ("holds", "refuted", "inconclusive", "not testable")  # core.claims.VERDICTS, for the Findings


def _md_cell(text) -> str:
    """Text safe inside a MyST table cell (no pipes, emphasis, math or roles by accident)."""
    out = str(text)
    for ch in ("\\", "|", "*", "_", "$", "`", "<"):
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.split())


def _num(v) -> str:
    return "n/a" if v != v else f"{v:.3g}"


def measurement(row, with_measure: bool = True) -> str:
    """'measure: value [lo, hi]' of a claims row (the interval left out where there is none)."""
    text = _num(row["value"])
    if row["lo"] == row["lo"] and row["hi"] == row["hi"]:
        text += f" [{_num(row['lo'])}, {_num(row['hi'])}]"
    return f"{row['measure']}: {text}" if with_measure else text


_PAPER_NUMBER = re.compile(r"\(((?:Clark|Table|paper|Chinchilla)[^()]*?):\s*([^()]*)\)")
_CLAIMED = re.compile(r"(?<=\s)(?:=|<|>)\s+(-?[0-9][0-9.]*(?:/[0-9]+)?)")  # "alpha = 1/3", not "k=5"


def paper_number(claim: str) -> str:
    """The paper's number quoted in a claim's text: a parenthesised '(Source: value)' (e.g. "(Clark
    Table 3, second-hand: -0.082)", "(Table 1: +1.2 on average)"), else the value a relation names
    ("alpha = 1/3", "R^2 > 0.98"); '' when the claim quotes none."""
    m = _PAPER_NUMBER.search(claim)
    if m:
        return f"{m.group(2).strip()} ({m.group(1).strip()})"
    m = _CLAIMED.search(claim)
    return m.group(0).replace(" ", "") if m else ""


def _target(target: str, study: str) -> tuple[str, str]:
    """(chapter, label) of a claims row's `figure` ('<chapter>.html#<label>' or '<label>' of the
    study's own chapter)."""
    if "#" in target:
        page, label = target.split("#", 1)
        return page.removesuffix(".html"), label
    return study, target


def link_text(target: str, study: str) -> str:
    """A link's visible name from its target: the chapter and the label in words
    ('routing: loss vs experts' for routing.html#fig-routing-loss-vs-experts)."""
    chapter, label = _target(target, study)
    words = label.removeprefix("fig-").removeprefix("tab-").removeprefix(f"{chapter}-").replace("-", " ")
    return f"{chapter}: {words}"


def figure_link(target: str, study: str = "") -> str:
    """A claims row's `figure` as a MyST {ref} to the label, named by its target: Sphinx resolves it
    to the right page, and a label that does not exist fails the build."""
    if not target:
        return ""
    return f"{{ref}}`{link_text(target, study)} <{_target(target, study)[1]}>`"


def figure_href(target: str, study: str) -> str:
    """The same link as HTML (for the sortable table, which renders HTML, not MyST)."""
    if not target:
        return ""
    chapter, label = _target(target, study)
    return f'<a href="{chapter}.html#{label}">{html.escape(link_text(target, study))}</a>'


def why_or_decide(row) -> str:
    """For an inconclusive claim what would decide it (`core.claims.to_decide`); for a not testable
    one why; '' for a decided claim."""
    from scalinglaws.core.claims import to_decide
    if row["verdict"] == "inconclusive":
        return to_decide(row["note"])
    if row["verdict"] == "not testable":
        return row["note"]
    return ""


def findings_markdown(claims, missing=()) -> str:
    """The Findings chapter's tables, one per paper (rows grouped by paper): study, claim, the paper's
    number, ours with its 95% interval, the verdict, what would decide an inconclusive claim, and a
    link named by its target; studies without stored claims listed after them."""
    if not len(claims):
        out = "No study has stored claims yet.\n"
    else:
        out = ""
        for paper, g in claims.groupby("paper", sort=False):
            out += f"\n#### {_md_cell(paper)}\n\n"
            out += ("| study | claim | paper's number | ours [95% interval] | verdict | what would decide it | figure |\n"
                    "|---|---|---|---|---|---|---|\n")
            for _, r in g.iterrows():
                out += "| " + " | ".join([
                    _md_cell(r["study"]), _md_cell(r["claim"]), _md_cell(paper_number(r["claim"])),
                    _md_cell(measurement(r)), f"**{r['verdict']}**", _md_cell(why_or_decide(r)),
                    figure_link(r["figure"], r["study"])]) + " |\n"
    if missing:
        out += "\nNo stored claims yet: " + ", ".join(f"`{m}`" for m in missing) + ".\n"
    return out


def findings_table(claims):
    """One row per claim for the sortable, filterable table (and the combined download): plain
    columns, the link as HTML."""
    import pandas as pd
    if not len(claims):
        return pd.DataFrame()
    return pd.DataFrame({
        "paper": claims["paper"], "study": claims["study"], "profile": claims["profile"], "claim": claims["claim"],
        "paper's number": [paper_number(c) for c in claims["claim"]],
        "measure": claims["measure"], "value": claims["value"].round(4), "lo": claims["lo"].round(4),
        "hi": claims["hi"].round(4), "verdict": claims["verdict"],
        "what would decide it": [why_or_decide(r) for _, r in claims.iterrows()],
        "figure": [figure_href(f, s) for f, s in zip(claims["figure"], claims["study"])]})


def scorecard(claims, by: str = "paper"):
    """Claims per `by` ('paper' or 'study') and verdict, every verdict a column (zeros included), and a total."""
    import pandas as pd
    if not len(claims):
        return pd.DataFrame(columns=[*VERDICT_ORDER, "total"])
    out = pd.crosstab(claims[by], claims["verdict"]).reindex(columns=list(VERDICT_ORDER), fill_value=0)
    out["total"] = out.sum(axis=1)
    return out.sort_values("total", ascending=False)


def found_sentences(claims) -> list[str]:
    """Three sentences of what was found, from the claims alone: the counts, what holds or is refuted,
    and why the rest is inconclusive (the most common reasons)."""
    from scalinglaws.core.claims import SEEDS_UNKNOWN, FIT_NOT_OK
    c = verdict_counts(claims)
    verb = lambda n, one, many: f"{n} {one if n == 1 else many}"  # noqa: E731
    first = (f"Of {len(claims)} claims, {verb(c['holds'], 'holds', 'hold')}, {verb(c['refuted'], 'is refuted', 'are refuted')}, "
             f"{verb(c['inconclusive'], 'is inconclusive', 'are inconclusive')} and "
             f"{verb(c['not testable'], 'is not testable', 'are not testable')} at the stored profiles.")
    dec = claims[claims["verdict"].isin(["holds", "refuted"])]
    second = ("Decided: " + "; ".join(f"{r.claim_id} ({r.study}) {r.verdict}" for r in dec.itertuples()) + "."
              if len(dec) else "No claim on our trained models is decided yet.")
    inc = claims[claims["verdict"] == "inconclusive"]["note"]
    reasons = {"training-seed noise not measured": inc.str.contains(SEEDS_UNKNOWN).sum(),
               "a fit that is not ok": inc.str.contains(FIT_NOT_OK).sum(),
               "an unmet precondition of the paper's regime": inc.str.contains("precondition unmet").sum(),
               "an interval too wide to decide": inc.str.contains("too wide").sum()}
    top = [f"{k} ({v})" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]) if v]
    third = (f"The inconclusive claims wait for: " + ", ".join(top) + " (a claim may have several reasons)."
             if top else "No claim is inconclusive.")
    return [first, second, third]


def verdict_sentence(claims) -> str:
    """'Of 24 claims at this profile, 3 hold, 1 is refuted, 19 are inconclusive and 1 is not testable.'
    with a pointer to the notes: the sentence each chapter glues under its claims table."""
    c = verdict_counts(claims)
    verb = lambda n, one, many: f"{n} {one if n == 1 else many}"  # noqa: E731
    return (f"Of {len(claims)} claims at this profile, {verb(c['holds'], 'holds', 'hold')}, "
            f"{verb(c['refuted'], 'is refuted', 'are refuted')}, {verb(c['inconclusive'], 'is inconclusive', 'are inconclusive')} "
            f"and {verb(c['not testable'], 'is not testable', 'are not testable')}; each note says why, and an "
            "inconclusive claim's note ends with what would decide it.")


def verdict_counts(claims) -> dict:
    """Claims per verdict (every verdict of the schema, zeros included)."""
    counts = claims["verdict"].value_counts() if len(claims) else {}
    return {v: int(counts.get(v, 0)) for v in VERDICT_ORDER}


def _book_dir():
    from scalinglaws.core.paths import REPO_ROOT
    return REPO_ROOT / "book"


def show_provenance(store, others=(), notes=()) -> None:
    """Display `provenance_banner` as Markdown in a chapter (chapters call `studies.show_provenance`,
    which adds the study's profile drift)."""
    from IPython.display import Markdown, display

    display(Markdown(provenance_banner(store, others, notes)))
