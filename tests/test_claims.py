"""Claims tables: the shared schema and its validator, the routing and resource claims on small
synthetic tables, the `claims` command (recompute from stored tables, provenance), and the Findings
chapter's table builder (merging studies, listing the ones without claims)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scalinglaws import report
from scalinglaws.core import claims as CL
from scalinglaws.core.results import ResultStore


def good(**over) -> pd.DataFrame:
    rows = [CL.claim("a", "Paper 2024", "x < 0", "x", -1.0, -1.5, -0.5, "holds", "routing.html#fig-x", "below 0"),
            CL.claim("b", "this study", "y = 1", "y", 2.0, 1.5, 2.5, "does not hold", "fig-y", ""),
            CL.claim("c", "Paper 2024", "z", "z", note="too few points")]
    df = pd.DataFrame(rows)
    for k, v in over.items():
        df[k] = v
    return df


def test_schema_accepts_a_good_frame():
    out = CL.check_claims(good())
    assert list(out.columns) == list(CL.COLUMNS) and out["value"].dtype == float
    assert math.isnan(out.loc[2, "lo"])


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.drop(columns=["note"]), "missing"),
    (lambda d: d.assign(extra=1), "extra"),
    (lambda d: d.assign(verdict=["holds", "maybe", "holds"]), "maybe"),
    (lambda d: d.assign(claim_id=["a", "a", "c"]), "unique"),
    (lambda d: d.assign(value=["x", 1, 2]), "numeric"),
    (lambda d: d.assign(note=["", "", ""]), "not testable"),
    (lambda d: d.assign(figure=["routing.html#fig x", "", ""]), "figure"),
    (lambda d: d.assign(lo=[0.0, 3.0, math.nan]), "lo"),
    (lambda d: d.assign(paper=["", "p", "p"]), "paper"),
    (lambda d: d.assign(claim=[1, "y", "z"]), "strings"),
])
def test_schema_rejects_bad_frames(mutate, match):
    with pytest.raises(CL.ClaimsError, match=match):
        CL.check_claims(mutate(good()))
    with pytest.raises(CL.ClaimsError):
        CL.check_claims([1, 2])


def test_interval_verdicts_and_smoke():
    assert CL.contains(0.5, 1.5, 1) == "holds" and CL.contains(1.1, 1.5, 1) == "does not hold"
    assert CL.contains(math.nan, 1, 1) == "not testable"
    assert CL.sign(-2, -1, positive=False) == "holds" and CL.sign(-2, 0.1, positive=False) == "does not hold"
    assert CL.sign(0.1, 2, positive=True) == "holds" and CL.sign(None, 2, positive=True) == "not testable"
    df = CL.frame([CL.claim("a", "p", "c", "m", 1, 0, 2, "holds", note="n")], "smoke")
    assert df.loc[0, "verdict"] == "not testable" and df.loc[0, "note"].startswith("smoke profile")
    assert "holds" in df.loc[0, "note"] and df.loc[0, "value"] == 1


# ------------------------------------------------------------------------------------- routing

ES = [1, 2, 4, 8, 16, 32, 64]


def routing_tables(b=(-0.12, -0.13, -0.11), c=(0.02, 0.018, 0.022), e_max=(100.0, 60.0, 200.0), cutoff=(6.0, 5.8, 6.2),
                   frac=1.0, shift=None, gamma=(1.0, 0.8, 1.2), r2=0.99):
    """Stored routing tables as the study writes them, with chosen estimates and intervals: the
    same (b, c, E_max, cutoff) for both routers; dense sizes 10^3..10^5 and E up to 64."""
    routers = ("sbase", "hash")
    loss = []
    for i, N in enumerate((1e3, 1e4, 1e5)):
        loss.append({"size": f"s{i}", "N": int(N), "experts": 1, "router": "dense", "L": 4.0 - i * 0.3})
        for r in routers:
            for E in ES[1:]:
                loss.append({"size": f"s{i}", "N": int(N), "experts": E, "router": r,
                             "L": 4.0 - i * 0.3 - 0.01 * np.log2(E) + (shift or {}).get(r, 0.0)})
    fits = []
    for r in routers:
        for p, (est, lo, hi) in {"a": (-0.08, -0.09, -0.07), "b": b, "c": c, "d": (1.1, 1.0, 1.2),
                                  "E_start": (2.0, 1.5, 2.5), "E_max": e_max}.items():
            fits.append({"router": r, "law": "routing", "param": p, "estimate": est, "lo": lo, "hi": hi, "r2": r2,
                         "ok": r2 >= 0.9, "why_not_ok": "" if r2 >= 0.9 else f"R^2 {r2:g} < 0.9",
                         "n_points": 21, "message": "converged"})  # ok as the trust rule (fitting.trust) sets it
    n_cut = pd.DataFrame([{"router": r, "b": b[0], "c": c[0], "log10_n_cutoff": cutoff[0], "n_cutoff": 10 ** cutoff[0],
                           "log10_lo": cutoff[1], "log10_hi": cutoff[2], "frac_c_positive": frac, "ok": True}
                          for r in routers])
    rf = pd.DataFrame([{"router": r, "size": "s2", "gamma": gamma[0], "lo": gamma[1], "hi": gamma[2], "points": 9,
                        "domains": 3, "one_over_n": True} for r in routers])
    return {"loss": pd.DataFrame(loss), "fits": pd.DataFrame(fits), "n_cutoff": n_cut, "resource_fits": rf}


def verdicts(df):
    return df.set_index("claim_id")["verdict"]


def test_routing_claims_on_synthetic_tables():
    from scalinglaws.studies.routing.claims import claims
    # Clark's picture: b < 0, c > 0, a cutoff at 10^6 beyond the sizes 10^3..10^5, E_max seen, S-BASE better
    df = claims(routing_tables(shift={"hash": 0.01}), "cpu")
    v = verdicts(df)
    for r in ("sbase", "hash"):
        assert v[f"helps_at_fixed_N_{r}"] == "holds" and v[f"shrinks_with_N_{r}"] == "holds"
        assert v[f"n_cutoff_{r}"] == "holds"
    assert v["sbase_best"] == "holds" and v["one_functional_form"] == "holds"
    assert v["saturates_with_E"] == "holds" and v["experts_as_resources"] == "holds"
    assert df.set_index("claim_id").loc["shrinks_with_N_sbase", ["value", "lo", "hi"]].tolist() == [0.02, 0.018, 0.022]
    # benefits that grow with N, a cutoff inside the range, S-BASE worse, E_max unseen, gamma far from 1
    v = verdicts(claims(routing_tables(c=(-0.01, -0.02, -0.005), cutoff=(4.5, 4.0, 5.0), shift={"sbase": 0.01},
                                       e_max=(1e5, 50.0, 1e6), gamma=(0.1, 0.05, 0.2), r2=0.5), "cpu"))
    assert v["shrinks_with_N_sbase"] == "does not hold" and v["n_cutoff_sbase"] == "does not hold"
    assert v["sbase_best"] == "does not hold" and v["experts_as_resources"] == "does not hold"
    assert v["saturates_with_E"] == "does not hold" and v["one_functional_form"] == "does not hold"
    # Clark's signs from fits that are not ok (R^2 below the threshold) confirm nothing
    v = verdicts(claims(routing_tables(shift={"hash": 0.01}, r2=0.5), "cpu"))
    assert v["helps_at_fixed_N_sbase"] == "does not hold" and v["shrinks_with_N_hash"] == "does not hold"
    t = routing_tables()
    t["n_cutoff"]["ok"] = False
    assert verdicts(claims(t, "cpu"))["n_cutoff_sbase"] == "does not hold"
    # c > 0 in too few bootstrap draws: the cutoff may not exist
    assert verdicts(claims(routing_tables(frac=0.6), "cpu"))["n_cutoff_hash"] == "does not hold"
    # an interval straddling 0, or none at all (no bootstrap): never judged from a point estimate alone
    nan3 = (math.nan, math.nan)
    t = routing_tables(b=(-0.1, -0.2, 0.05), c=(0.02, *nan3), e_max=(100.0, *nan3), cutoff=(6.0, *nan3), frac=math.nan)
    v = verdicts(claims(t, "cpu"))
    assert v["helps_at_fixed_N_sbase"] == "does not hold" and v["shrinks_with_N_sbase"] == "not testable"
    assert v["n_cutoff_sbase"] == "not testable" and v["saturates_with_E"] == "not testable"
    assert set(claims(routing_tables(), "smoke")["verdict"]) == {"not testable"}


# ------------------------------------------------------------------------------------ resource

def _exp(part, subject, est, lo, hi, **kw):
    return {"part": part, "subject": subject, "law": kw.pop("law", "power"), "param": kw.pop("param", "exponent"),
            "estimate": est, "lo": lo, "hi": hi, "ok": True, "n_points": 10, "activation": kw.pop("activation", None),
            "method": kw.pop("method", "weight"), "threshold": 1e-3, "primary": kw.pop("primary", True)}


def resource_tables(single=(-1.05, -1.2, -0.9), lm_depth=(-0.3, -0.4, -0.25)):
    fits = pd.DataFrame([
        _exp("single", "square", *single, activation="relu"),
        _exp("single", "square", -2.0, -2.2, -1.8, activation="silu"),
        _exp("single", "square", -1.0, -1.1, -0.9, activation="relu", primary=False),  # not the primary count
        _exp("lm", "width", -0.1, -0.2, -0.05, method="non_embedding"),
        _exp("lm", "depth", *lm_depth, method="non_embedding"),
        _exp("lm", "depth", -0.9, -1.0, -0.8, method="total", primary=False),
        _exp("chinchilla", "epoch_refit", 0.35, 0.32, 0.37, law="chinchilla", param="alpha", method="reference_csv"),
    ])
    shares = pd.DataFrame([{"kind": "parallel", "slope": 0.02, "slope_lo": 0.01, "slope_hi": 0.03},
                           {"kind": "series", "slope": 0.0, "slope_lo": -0.01, "slope_hi": 0.01}])
    additive = pd.DataFrame([{"kind": "parallel", "form": "free exponents", "param": p, "estimate": e, "lo": lo, "hi": hi}
                             for p, e, lo, hi in (("c1", 1, 0.5, 2), ("a1", 1.1, 0.8, 1.4), ("a2", 2.5, 2.0, 3.0))])
    return {"fits": fits, "shares": shares, "additive": additive}


def test_resource_claims_on_synthetic_tables():
    from scalinglaws.studies.resource.claims import claims
    df = claims(resource_tables(), "cpu")
    v = verdicts(df)
    assert v["single_square_relu"] == "holds" and v["single_square_silu"] == "does not hold"
    assert v["shares_constant_parallel"] == "does not hold" and v["shares_constant_series"] == "holds"
    assert v["additive_parallel_a1"] == "holds" and v["additive_parallel_a2"] == "does not hold"
    assert v["chinchilla_one_third"] == "holds"
    assert v["lm_width"] == "does not hold" and v["lm_depth"] == "holds" and v["lm_depth_chinchilla"] == "holds"
    assert df.set_index("claim_id").loc["single_square_relu", "value"] == -1.05
    assert (df["figure"] != "").all()
    v = verdicts(claims(resource_tables(single=(-3, math.nan, math.nan), lm_depth=(-0.1, -0.2, -0.05)), "cpu"))
    assert v["single_square_relu"] == "not testable" and v["lm_depth"] == "does not hold"
    # a fit that is not ok cannot confirm a claim, however its interval falls
    t = resource_tables()
    bad = (t["fits"]["subject"] == "depth") & (t["fits"]["part"] == "lm")
    t["fits"].loc[bad, "ok"], t["fits"].loc[bad, "why_not_ok"] = False, "R^2 0.5 < 0.9"
    d = claims(t, "cpu").set_index("claim_id")
    assert d.loc["lm_depth", "verdict"] == "does not hold" and "cannot confirm" in d.loc["lm_depth", "note"]
    assert "R^2 0.5 < 0.9" in d.loc["lm_depth", "note"] and d.loc["single_square_relu", "verdict"] == "holds"


# --------------------------------------------------------------------- the command, provenance

def test_claims_command_recomputes_from_stored_tables(tmp_path, monkeypatch):
    from scalinglaws.cli import main
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(tmp_path))
    store = ResultStore("resource", "cpu", root=tmp_path)
    for name, df in resource_tables().items():
        store.write(name, df)
    assert main(["claims", "resource", "--profile", "smoke"]) == 2  # no run at smoke: one error line, nothing written
    assert not ResultStore("resource", "smoke", root=tmp_path).has("claims")
    store.write_provenance({"commit": "c" * 40, "config": {}})
    assert main(["claims", "resource", "--profile", "cpu"]) == 0
    df = store.read("claims")
    assert verdicts(df)["lm_depth"] == "holds" and list(df.columns) == list(CL.COLUMNS)
    prov = json.loads((store.dir / "provenance.json").read_text())
    assert prov["commit"] == "c" * 40  # the run's own record is kept
    d = prov["derived"]["claims"]
    assert d["command"] == "python -m scalinglaws claims resource --profile cpu" and d["commit"] and d["date"]
    assert "fits" in d["from"] and "claims" not in d["from"]
    assert main(["claims", "testbed", "--profile", "cpu"]) == 2  # a study without claims.py


# ---------------------------------------------------------------------------- findings table

def test_findings_merges_studies_at_their_best_profile_and_lists_missing(tmp_path):
    def put(study, profile, claims):
        s = ResultStore(study, profile, root=tmp_path)
        s.write_provenance({"commit": "x"})
        if claims is not None:
            s.write("claims", claims)

    put("routing", "smoke", good(claim_id=["s1", "s2", "s3"]))
    put("routing", "cpu", good())
    put("resource", "smoke", good())
    put("merging", "cpu", None)  # a run without a claims table
    df, missing = CL.collect(["routing", "resource", "merging", "testbed"], root=tmp_path)
    assert missing == ["merging", "testbed"]
    assert list(df.columns[:2]) == ["study", "profile"]
    assert set(df.loc[df["study"] == "routing", "profile"]) == {"cpu"}  # cpu beats smoke
    assert set(df.loc[df["study"] == "resource", "profile"]) == {"smoke"} and len(df) == 6
    md = report.findings_markdown(df, missing)
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + len(df)  # the header and one per claim
    assert "{ref}`see <fig-x>`" in md and "{ref}`see <fig-y>`" in md
    assert "x: -1 [-1.5, -0.5]" in md and "z: n/a" in md
    assert "No stored claims yet: `merging`, `testbed`." in md
    assert report.verdict_counts(df) == {"holds": 2, "does not hold": 2, "not testable": 2}
    empty, missing = CL.collect(["merging"], root=tmp_path)
    assert len(empty) == 0 and "No study has stored claims yet" in report.findings_markdown(empty, missing)
