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

from scalinglaws.core import profiles as PR


class _Plain:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def glue_text(name: str, value, fmt: str | None = None) -> None:
    """Glue `format(value, fmt)` (or str(value)) under `name` for `{glue:text}` roles."""
    from myst_nb import glue

    glue(name, _Plain(format(value, fmt) if fmt else str(value)), display=False)


def seed_replicates_paragraph(store) -> str:
    """The chapters' one paragraph on a study's training-seed replicates (Markdown): the command that
    makes them, what the table below it shows, and whether the stored run's own seed, retrained, gives
    its stored values again (`core.seeds.reproduction_sentence` of the store's `seeds_reproduction`)."""
    from scalinglaws.core.seeds import REPRODUCTION_TABLE, reproduction_sentence
    check = reproduction_sentence(store.read(REPRODUCTION_TABLE) if store.has(REPRODUCTION_TABLE) else None)
    return ("**Training-seed replicates.** The same configurations trained again from other seeds "
            f"(`python -m scalinglaws seeds {store.study}`): per replicated cell and measure, the spread over "
            "seeds beside the value the stored single-seed run measured (`stored`). The pooled SD is what widens "
            "the intervals of the verdicts above; an empty table means no replicates are stored at this profile. "
            + check)


def show_seed_replicates(store, table):
    """Display `seed_replicates_paragraph` and return `table` (the study's `seed_table`), so one
    hidden-input cell of a chapter shows both."""
    from IPython.display import Markdown, display

    display(Markdown(seed_replicates_paragraph(store)))
    return table


def provenance_banner(store, others=(), notes=(), stale=()) -> str:
    """A Markdown admonition for the top of a results chapter, generated from the stored provenance:
    profile, device, the full commit (a '+dirty' tree said loudly), date, wall time and unit compute.
    `others`: stores of studies this chapter also reads; a chapter built from several commits says so.
    `notes`: further warnings from the layers above (e.g. `studies.profile_drift`), one line each;
    `stale`: the sizes whose testbed base the stored testbed no longer chooses (`studies.stale_bases`)."""
    prov = store.provenance()
    commit = prov.get("commit", "unknown")
    dirty = commit.endswith("+dirty")
    lines = [f"**Results: profile `{store.profile}`** on {prov.get('device', 'unknown device')}, "
             f"{prov.get('date', '?')[:10]}: commit `{commit}`; "
             f"{prov.get('unit_compute_s', float('nan')) / 60:.1f} min of unit compute "
             f"({prov.get('wall_time_s', float('nan')) / 60:.1f} min of wall time in the last run)."]
    if store.profile != PR.best():
        lines.append(f"The `{PR.best()}` profile has not been run for this study; these are `{store.profile}` results.")
    if dirty:
        lines.append("**Not pinned to a commit: these results come from a tree with uncommitted changes "
                     "(`+dirty`), so the commit does not identify the code that made them.**")
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
    lines.append("Reproduce: " + "; ".join(f"`make reproduce STUDY={study} PROFILE={p}`" for p in PR.names())
                 + f" (`scripts/gpu_study.sh {study}` on a lent GPU machine).")
    for name, d in sorted(prov.get("derived", {}).items()):
        lines.append(f"Table `{name}` derived later from the stored tables (`{d.get('command', '')}`) at commit "
                     f"`{d.get('commit', 'unknown')}`, {str(d.get('date', '?'))[:10]}.")
    before_run = [f"`{name}` (`{cmd}`)" for name, cmd in store.made_before_run().items()]
    if before_run:
        lines.append("**Made beside an earlier run:** " + ", ".join(before_run) + " predate the run above and were "
                     "not remade from its tables; rerun each command to bring it up to date.")
    tables = sorted(store.dir.glob("*.parquet"))
    if tables:
        rel = lambda t: os.path.relpath(t, _book_dir())  # noqa: E731 -- download links resolve from book/
        lines.append("Tables to download (Parquet, CSV): " + ", ".join(
            f"`{t.stem}` ({{download}}`Parquet <{rel(t)}>`, {{download}}`CSV <{rel(csv_copy(t))}>`)" for t in tables) + ".")
    kind = "warning" if dirty or stale or notes or before_run or len(commits) > 1 else "note"
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


def show_provenance(store, others=(), notes=(), stale=()) -> None:
    """Display `provenance_banner` as Markdown in a chapter (chapters call `studies.show_provenance`,
    which adds the study's profile drift)."""
    from IPython.display import Markdown, display

    display(Markdown(provenance_banner(store, others, notes, stale)))


# ----------------------------------------------------------------------------- numbers for reading

def fmt_number(v, sig: int = 3) -> str:
    """A number as a reader wants it: `sig` significant digits, thousands separators, integers as
    integers, no scientific notation under a trillion, an en dash for a missing value.
    6243540271104.0 -> '6.24e+12'... no: '6,240,000,000,000' is unreadable too, so values of 1e6 and
    more are given in K/M/B/T with `sig` digits ('6.24T'); 122.0 -> '122'; 0.0001234 -> '0.000123'."""
    import math
    if v is None or isinstance(v, bool):
        return "–" if v is None else str(v)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return "–" if x != x else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 1e6:
        for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
            if ax >= div:
                return f"{x / div:.{sig}g}{unit}"
    if float(x).is_integer() and ax < 1e6:
        return f"{int(x):,}"
    if ax >= 10 ** (sig - 1):
        return f"{x:,.0f}"
    digits = sig - 1 - math.floor(math.log10(ax))
    return f"{x:.{max(0, digits)}f}"


def fmt_interval(value, lo, hi, sig: int = 3) -> str:
    """'value [lo, hi]' with `fmt_number`; an interval whose ends print like the value ('1 [1, 1]')
    gets more digits until they differ (up to 6), so a reader sees how tight it is."""
    v, a, b = fmt_number(value, sig), fmt_number(lo, sig), fmt_number(hi, sig)
    if v == a == b and a != "–":  # e.g. R^2 0.99989 [0.99985, 0.99994]: fixed decimals until they differ
        for d in range(sig, 7):
            v, a, b = (f"{float(x):.{d}f}" for x in (value, lo, hi))
            if not v == a == b:
                break
    return v if a == "–" and b == "–" else f"{v} [{a}, {b}]"


def _cell(v, sig: int) -> str:
    """A cell of any column: numbers through `fmt_number`, missing values (None, NaN, 'nan') as a dash."""
    if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and v.strip().lower() in ("nan", "none")):
        return "–"
    import numbers
    if isinstance(v, numbers.Number) and not isinstance(v, (bool, complex)):  # numpy scalars included
        v = float(v)
        if 0 < abs(v) < 1:  # 0.008, not 0.00800: a table cell needs no trailing zeros
            return f"{v:.{sig}g}"
        return fmt_number(v, sig)
    return str(v)


def readable(df, sig: int = 3, index: bool | None = None, formats: dict | None = None):
    """A table formatted for the page: every number through `fmt_number` (no 6243540271104.0000,
    1.220000e+02 or nan cells), column names with spaces instead of underscores, the index shown
    when it means something (`index` None: not a plain 0..n-1 range); `formats`: per-column format
    strings that replace it. Returns a pandas Styler."""
    import pandas as pd
    if index is None:
        index = not (isinstance(df.index, pd.RangeIndex) and df.index.name is None)
    out = df.copy()
    sty = _numbers_unbroken(out.style.format({c: (lambda v, s=sig: _cell(v, s)) for c in out.columns}))
    if formats:  # a column whose convention differs (a learning rate as 0.003, not 0.00300)
        cols = [c for c in formats if c in out.columns]
        sty = sty.format({c: formats[c] for c in cols}, subset=cols)  # (without subset the others are reset)
    sty = sty.format_index(lambda c: str(c).replace("_", " "), axis=1)
    return sty if index else sty.hide(axis="index")


_UNBROKEN_MAX_COLUMNS = 9   # a wider table needs every cell breakable to fit the column
_SHORT_TEXT = 14            # 'does not hold', 'not testable': kept whole


def _numbers_unbroken(sty):
    """In a table of at most _UNBROKEN_MAX_COLUMNS columns, numeric columns and columns of short
    words kept on one line: the book's CSS lets table cells wrap anywhere, so that text columns fit
    the page, and a number broken as '0.1 / 03' or a verdict as 'hold / s' reads wrong."""
    import pandas as pd
    d = sty.data
    if d.shape[1] > _UNBROKEN_MAX_COLUMNS:
        return sty
    keep = [c for c in d.columns if (pd.api.types.is_numeric_dtype(d[c]) and not pd.api.types.is_bool_dtype(d[c]))
            or d[c].astype(str).str.len().max() <= _SHORT_TEXT]
    return sty.set_properties(subset=keep, **{"white-space": "nowrap", "overflow-wrap": "normal"}) if keep else sty


def _styler_html(sty) -> str:
    return _numbers_unbroken(sty).to_html()


def _readable_html(df) -> str | None:
    if len(df) > 500 or df.shape[1] > 60:
        return None  # (IPython falls back to pandas' own HTML)
    return readable(df).to_html()


def use_readable_tables() -> None:
    """In a chapter's kernel, show every DataFrame through `readable` (the one number format of the
    book's tables); outside IPython nothing to do."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None:
        return
    import pandas as pd
    from pandas.io.formats.style import Styler
    ip.display_formatter.formatters["text/html"].for_type(pd.DataFrame, _readable_html)
    ip.display_formatter.formatters["text/html"].for_type(Styler, _styler_html)
    # a Styler's columns without a format of their own get the same one
    pd.set_option("styler.format.formatter", lambda v: _cell(v, 3))


# ----------------------------------------------------------------------------- result at a glance

_SIZE_COLUMNS = ("non_embedding", "params_non_embedding", "N")


def _scale(store, testbed_store=None) -> str:
    """The scale a study's stored tables were measured at: its models' non-embedding parameters
    (min-max over the tables that record them) and the testbed's pretraining tokens per model."""
    import pandas as pd
    sizes = []
    for t in sorted(store.dir.glob("*.parquet")):
        if any(w in t.stem for w in ("extrapolation", "effective", "plan")):
            continue  # sizes predicted or planned, not trained
        cols = pd.read_parquet(t, columns=None).columns if t.stat().st_size < 50_000_000 else []
        col = next((c for c in _SIZE_COLUMNS if c in cols), None)
        if col is not None:
            v = pd.to_numeric(pd.read_parquet(t, columns=[col])[col], errors="coerce").dropna()
            sizes += [v[v > 0].min(), v.max()] if len(v[v > 0]) else []
    parts = [f"profile `{store.profile}`"]
    if sizes:
        parts.append(f"models of {fmt_number(min(sizes))} to {fmt_number(max(sizes))} non-embedding parameters")
    if testbed_store is not None and (testbed_store.dir / "ladder.parquet").exists():
        tokens = pd.read_parquet(testbed_store.dir / "ladder.parquet", columns=["tokens"])["tokens"]
        parts.append(f"base models pretrained on {fmt_number(tokens.max())} tokens each")
    if store.profile != PR.best():
        parts.append(f"no `{PR.best()}` run yet")
    return "; ".join(parts)


def at_a_glance(store, headline: str | None = None, testbed_store=None, max_claims: int = 8) -> str:
    """The chapter's opening block (a MyST admonition of class `glance`): the headline claim in
    one sentence with its number, the chapter's claims counted by verdict and listed verdict first
    (every verdict of `core.claims.VERDICTS`, whatever its vocabulary), and the scale it was
    measured at. `headline`: the claim_id to lead with (default the first testable claim)."""
    import pandas as pd

    from scalinglaws.core.claims import VERDICTS
    lines = []
    path = store.dir / "claims.parquet"
    claims = pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=["claim_id", "verdict"])
    if len(claims):
        order = {v: i for i, v in enumerate(VERDICTS)}
        claims = claims.assign(_o=claims["verdict"].map(order).fillna(len(order))).sort_values("_o", kind="stable")
        testable = claims[claims["verdict"] != VERDICTS[-1]]
        pick = claims[claims["claim_id"] == headline] if headline else testable.head(1)
        if len(pick):
            r = pick.iloc[0]
            lines.append(f"**Headline.** {_md_cell(r['claim'])}: {_md_cell(r['measure'])} = "
                         f"{fmt_interval(r['value'], r['lo'], r['hi'])}; verdict: **{r['verdict']}**.")
        counts = claims["verdict"].value_counts()
        lines.append("**The paper's claims here.** " + ", ".join(
            f"{int(counts.get(v, 0))} {v}" for v in VERDICTS) + f" (of {len(claims)}):")
        items = [f"- **{r['verdict']}**: {_md_cell(r['claim'])} ({fmt_interval(r['value'], r['lo'], r['hi'])})"
                 for _, r in claims.head(max_claims).iterrows()]
        if len(claims) > max_claims:
            items.append(f"- and {len(claims) - max_claims} more in the claims table below.")
        lines.append("\n".join(items))
    else:
        lines.append("This chapter tests no claim of a paper directly; the chapters that build on it do.")
    lines.append(f"**Scale.** {_scale(store, testbed_store)}.")
    return ":::{admonition} Result at a glance\n:class: glance\n" + "\n\n".join(lines) + "\n:::\n"


def show_at_a_glance(study: str, profile: str = "best", headline: str | None = None) -> None:
    """Display `at_a_glance` for `study` at `profile` (a chapter's first output)."""
    from IPython.display import Markdown, display

    from scalinglaws.core.results import open_store
    store = open_store(study, profile)
    try:
        testbed = open_store("testbed", store.profile)
    except Exception:  # noqa: BLE001 -- a study without a testbed at this profile shows no token budget
        testbed = None
    display(Markdown(at_a_glance(store, headline, testbed)))
