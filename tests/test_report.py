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
    from scalinglaws.core.bases import stale_bases, testbed_choice

    _testbed(tmp_path, {"d32l2": ("aaa", 0.008), "d64l4": ("bbb", 0.004)})
    assert testbed_choice("cpu", tmp_path) == {"d32l2": {"unit": "aaa", "lr": 0.008}, "d64l4": {"unit": "bbb", "lr": 0.004}}
    assert testbed_choice("gpu", tmp_path) == {}
    same = {"testbed_bases": {"d32l2": {"unit": "aaa"}, "d64l4": {"lr": 0.004}}}
    assert stale_bases(same, "cpu", tmp_path) == []
    moved = {"testbed_bases": {"d32l2": {"unit": "old"}, "d64l4": {"lr": 0.008}, "d96l4": {"lr": 0.002}}}
    assert stale_bases(moved, "cpu", tmp_path) == ["d32l2 (unit old -> aaa)", "d64l4 (lr 0.008 -> 0.004)",
                                                   "d96l4 (not in the stored testbed ladder)"]
    # nothing recorded (a study that does not build on the testbed), or no testbed stored: nothing to say
    assert stale_bases({}, "cpu", tmp_path) == [] and stale_bases(moved, "gpu", tmp_path) == []


def test_provenance_banner_warns_when_results_stand_on_an_earlier_testbed(tmp_path):
    from scalinglaws.core.results import ResultStore
    from scalinglaws.report import provenance_banner

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
