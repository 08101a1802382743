from myst_nb.core.variables import format_plain_text

from scalinglaws.report import _Plain


def test_glued_text_renders_verbatim():
    # what myst-nb does with a glued object's text/plain when rendering {glue:text}
    for text in ["cpu", "3,591", "0.731", "1.2M", "(a, b)", "it's 5%"]:
        assert format_plain_text(repr(_Plain(text)), "") == text


def test_provenance_banner_says_profile_commit_dirty_and_mixed_commits(tmp_path):
    from scalinglaws.core.results import ResultStore
    from scalinglaws.report import provenance_banner

    clean = ResultStore("demo", "cpu", root=tmp_path)
    clean.write_provenance({"commit": "a" * 40, "date": "2026-11-23T10:00:00+00:00", "device": "cpu:x",
                            "unit_compute_s": 120.0, "wall_time_s": 60.0})
    text = provenance_banner(clean)
    assert "a" * 40 in text and "profile `cpu`" in text and "2.0 min of unit compute" in text
    assert ":class: note" in text and "not been run" in text and "dirty" not in text
    dirty = ResultStore("other", "cpu", root=tmp_path)
    dirty.write_provenance({"commit": "b" * 40 + "+dirty", "date": "2026-11-23", "device": "cpu:x",
                            "unit_compute_s": 1.0, "wall_time_s": 1.0})
    text = provenance_banner(dirty, others=[clean])
    assert ":class: warning" in text and "uncommitted changes" in text and "Not pinned" in text and "2 different commits" in text


def _testbed(tmp_path, chosen: dict):
    """A stored testbed lr_sweep choosing {size: (unit, lr)} (plus one rejected rate per size)."""
    import pandas as pd

    from scalinglaws.core.results import ResultStore

    rows = []
    for size, (unit, lr) in chosen.items():
        rows += [{"size": size, "unit": unit, "lr": lr, "chosen": True},
                 {"size": size, "unit": unit + "x", "lr": lr * 2, "chosen": False}]
    ResultStore("testbed", "cpu", root=tmp_path).write("lr_sweep", pd.DataFrame(rows))


def test_stale_bases_names_sizes_whose_base_or_rate_the_testbed_no_longer_chooses(tmp_path):
    from scalinglaws.core.results import ResultStore
    from scalinglaws.studies import stale_bases
    from scalinglaws.studies.testbed.bases import testbed_choice

    _testbed(tmp_path, {"d32l2": ("aaa", 0.008), "d64l4": ("bbb", 0.004)})
    assert testbed_choice("cpu", tmp_path) == {"d32l2": {"unit": "aaa", "lr": 0.008}, "d64l4": {"unit": "bbb", "lr": 0.004}}
    assert testbed_choice("gpu", tmp_path) == {}

    def stale(prov, profile):
        store = ResultStore("merging", profile, root=tmp_path)
        store.write_provenance(prov)
        return stale_bases(store)

    same = {"testbed_bases": {"d32l2": {"unit": "aaa"}, "d64l4": {"lr": 0.004}}}
    assert stale(same, "cpu") == []
    moved = {"testbed_bases": {"d32l2": {"unit": "old"}, "d64l4": {"lr": 0.008}, "d96l4": {"lr": 0.002}}}
    assert stale(moved, "cpu") == ["d32l2 (unit old -> aaa)", "d64l4 (lr 0.008 -> 0.004)",
                                   "d96l4 (not in the stored testbed ladder)"]
    # nothing recorded (a study that does not build on the testbed), or no testbed stored: nothing to say
    assert stale({}, "cpu") == [] and stale(moved, "gpu") == []


def test_provenance_banner_warns_when_results_stand_on_an_earlier_testbed(tmp_path):
    from scalinglaws.core.results import ResultStore
    from scalinglaws.report import provenance_banner as banner
    from scalinglaws.studies import stale_bases

    def provenance_banner(store):  # what `studies.show_provenance` shows
        return banner(store, stale=stale_bases(store))

    _testbed(tmp_path, {"d32l2": ("new", 0.008)})
    store = ResultStore("merging", "cpu", root=tmp_path)
    base = {"commit": "a" * 40, "date": "2026-11-23", "device": "cpu:x", "unit_compute_s": 1.0, "wall_time_s": 1.0}
    store.write_provenance({**base, "testbed_bases": {"d32l2": {"unit": "new"}}})
    text = provenance_banner(store)
    assert "earlier testbed" not in text and ":class: note" in text
    store.write_provenance({**base, "testbed_bases": {"d32l2": {"unit": "old"}}})
    text = provenance_banner(store)
    assert ":class: warning" in text and "Built on an earlier testbed" in text and "d32l2 (unit old -> new)" in text
    assert "STUDY=merging PROFILE=cpu" in text


def test_profile_drift_names_parameters_changed_since_the_results_and_the_banner_warns(tmp_path):
    from scalinglaws.core.results import ResultStore
    from scalinglaws.report import provenance_banner
    from scalinglaws.studies import get_study, profile_drift, resolve_params

    now = resolve_params(get_study("testbed"), "smoke", {})
    store = ResultStore("testbed", "smoke", root=tmp_path)
    base = {"commit": "a" * 40, "date": "2026-11-23", "device": "cpu:x", "unit_compute_s": 1.0, "wall_time_s": 1.0}
    # a stored config equal to today's profile (plus a derived key a run adds): no drift
    store.write_provenance({**base, "config": {**now, "derived_by_run": 1}})
    assert profile_drift(store) == []
    old = {k: v for k, v in now.items() if k != "lr_bracket"}
    store.write_provenance({**base, "config": {**old, "batch_tokens": now["batch_tokens"] * 2}})
    (line,) = profile_drift(store)
    assert f"`batch_tokens` {now['batch_tokens'] * 2} -> {now['batch_tokens']}" in line
    assert "`lr_bracket` (new) 0" in line and "STUDY=testbed PROFILE=smoke" in line
    text = provenance_banner(store, notes=[line])
    assert ":class: warning" in text and line in text
    assert profile_drift(ResultStore("not_a_study", "smoke", root=tmp_path)) == []


# ----------------------------------------------------------------------------- numbers and the result block

def test_numbers_are_formatted_for_reading():
    from scalinglaws.report import fmt_interval, fmt_number
    assert fmt_number(6243540271104.0) == "6.24T"
    assert fmt_number(122.0) == "122" and fmt_number(443232) == "443,232" and fmt_number(12345.678) == "12,346"
    assert fmt_number(0.000123456) == "0.000123" and fmt_number(0.731) == "0.731" and fmt_number(2_100_000) == "2.1M"
    assert fmt_number(float("nan")) == "–" and fmt_number(None) == "–" and fmt_number("hash") == "hash"
    # an R^2 interval that rounds to "1 [1, 1]" gets the digits that tell its ends apart
    assert fmt_interval(0.99989, 0.99985, 0.99994) == "0.99989 [0.99985, 0.99994]"
    assert fmt_interval(-0.0498, -0.063, -0.0366) == "-0.0498 [-0.0630, -0.0366]"
    assert fmt_interval(0.5, float("nan"), float("nan")) == "0.500"


def test_readable_tables_have_no_raw_floats():
    import pandas as pd

    from scalinglaws.report import readable
    html = readable(pd.DataFrame({"total_flops": [6243540271104.0], "count": [122.0], "r2": [float("nan")]})).to_html()
    assert "6.24T" in html and ">122<" in html and "–" in html and "total flops" in html
    assert "6243540271104" not in html and "e+02" not in html and "nan" not in html
    assert "white-space: nowrap" in html  # numbers are not broken across lines in a narrow column


def test_at_a_glance_leads_with_the_result_and_lists_verdicts_first(tmp_path, monkeypatch):
    import pandas as pd

    from scalinglaws.core import claims as CL
    from scalinglaws.core.results import ResultStore
    from scalinglaws.report import at_a_glance
    store = ResultStore("demo", "cpu", root=tmp_path)
    # one claim per verdict, stored in the reverse of the verdict order; the last one holds
    rows = [CL.claim(f"c{i}", "Paper 2025", f"claim {i}", "slope", 0.3 + 0.1 * i, 0.2 + 0.1 * i, 0.4 + 0.1 * i,
                     verdict=verdict, figure="") for i, verdict in enumerate(reversed(CL.VERDICTS))]
    last = len(CL.VERDICTS) - 1
    store.write("claims", pd.DataFrame(rows))
    store.write("ladder", pd.DataFrame({"N": [27_000, 443_232], "x": [1, 2]}))
    text = at_a_glance(store)
    assert text.startswith(":::{admonition} Result at a glance\n:class: glance")
    v = 0.3 + 0.1 * last
    assert f"**Headline.** claim {last}: slope = {v:.3f} [{v - 0.1:.3f}, {v + 0.1:.3f}]" in text  # the first claim in verdict order
    assert all(f"1 {v}" in text for v in CL.VERDICTS)
    order = [text.index(f"**{v}**: claim") for v in CL.VERDICTS]
    assert order == sorted(order)
    assert "27,000 to 443,232 non-embedding parameters" in text and "profile `cpu`" in text
    assert "claim 1: slope" in at_a_glance(store, headline="c1")


def test_reader_script_tags_cells_and_is_idempotent(tmp_path):
    import importlib.util
    import json
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("nbtools", Path(__file__).resolve().parents[1] / "scripts" / "nbtools.py")
    nbtools = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nbtools)
    cells = [{"cell_type": "markdown", "id": "t", "metadata": {}, "source": ["# Title\n", "\n", "Intro text."]},
             {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "outputs": [], "execution_count": None,
              "source": ['profile = "best"']},
             {"cell_type": "code", "id": "i", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["import pandas as pd\n", "glue('x', 1)\n", "show_provenance(store)"]},
             {"cell_type": "code", "id": "f", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["plt.show(F.fig(T))"]},
             {"cell_type": "code", "id": "tab", "metadata": {"tags": ["remove-input"]}, "outputs": [],
              "execution_count": None, "source": ["T['fits'].round(3)"]}]
    path = tmp_path / "della.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n")
    assert nbtools.reader(path)
    nb = json.loads(path.read_text())
    by_id = {c["id"]: c for c in nb["cells"]}
    assert [c["id"] for c in nb["cells"]] == ["t", "p", "glance", "t-intro", "i", "f", "tab"]
    assert by_id["t"]["source"] == ["# Title"] and "show_at_a_glance('della'" in "".join(by_id["glance"]["source"])
    assert by_id["p"]["metadata"]["tags"] == ["parameters", "remove-input"]
    assert by_id["i"]["metadata"]["tags"] == ["remove-input"] and by_id["glance"]["metadata"]["tags"] == ["remove-input"]
    assert by_id["f"]["metadata"]["tags"] == ["hide-input"]
    assert by_id["tab"]["metadata"]["tags"] == ["remove-input"]  # an author's own choice is kept
    before = path.read_text()
    assert not nbtools.reader(path) and path.read_text() == before  # idempotent


def test_the_seed_replicates_paragraph_is_one_text_for_every_chapter(tmp_path):
    """The six chapters show one paragraph (`report.seed_replicates_paragraph`), with the study's own
    command and the seed-0 check of its stored `seeds_reproduction` (or that none is stored)."""
    import shutil

    from scalinglaws.core.paths import DATA_DIR
    from scalinglaws.core.results import ResultStore
    from scalinglaws.core.seeds import REPRODUCTION_TABLE, reproduction_sentence
    from scalinglaws.report import seed_replicates_paragraph
    store = ResultStore("testbed", "cpu", root=DATA_DIR / "results")
    text = seed_replicates_paragraph(store)
    assert text.startswith("**Training-seed replicates.**") and "`python -m scalinglaws seeds testbed`" in text
    assert text.endswith(reproduction_sentence(store.read(REPRODUCTION_TABLE)))
    shutil.copytree(DATA_DIR / "results" / "routing" / "cpu", tmp_path / "routing" / "cpu")
    (tmp_path / "routing" / "cpu" / f"{REPRODUCTION_TABLE}.parquet").unlink()
    bare = seed_replicates_paragraph(ResultStore("routing", "cpu", root=tmp_path))
    assert "`python -m scalinglaws seeds routing`" in bare and bare.endswith(reproduction_sentence(None))
    chapters = [p for p in (DATA_DIR.parent / "book").glob("*.ipynb") if "show_seed_replicates(store" in p.read_text()]
    assert len(chapters) == 6 and not any("**Training-seed replicates.**" in p.read_text() for p in chapters)
