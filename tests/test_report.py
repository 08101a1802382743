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
