"""Planning the gpu leases (issue 28): each part's predicted wall time on the H100 of the throughput
table, the refusal of a part predicted above its limit, and the cost model's error at cpu against the
per-unit wall times the stored cpu tables record."""
from __future__ import annotations

import math

from scalinglaws.core.validation import ParameterError, check_choice
from scalinglaws.studies.lease import THROUGHPUT, Part, Work
from scalinglaws.studies.lease_parts import PARTS, work


def part_params(study: str, part: Part, profile: str = "gpu") -> dict:
    """The study's profile with the part's overrides (not validated here: routing's `parts`/`part`
    are validated by the study when the part runs)."""
    from scalinglaws.studies import get_study
    return {**get_study(study).PROFILES[profile], **part.overrides}


def plan_study(study: str) -> list[dict]:
    """One row per gpu part: name, predicted seconds, limit, budget, and its units' predictions."""
    rates = THROUGHPUT["h100"]
    rows = []
    for part in PARTS[study]:
        units = [(w.label, w.n, w.seconds(rates)) for w in work(study, part_params(study, part))]
        total = sum(s for _, _, s in units)
        rows.append({"study": study, "part": part.name, "predicted_s": total, "limit_s": part.limit_s,
                     "fits": total <= part.limit_s, "budget": part.budget, "units": units})
    return rows


def check_part(study: str, name: str) -> Part:
    """The named part of `study`, refused (ParameterError, one line) when predicted above its limit."""
    check_choice("study", study, list(PARTS))
    names = [p.name for p in PARTS[study]]
    check_choice("part", name, names)
    row = next(r for r in plan_study(study) if r["part"] == name)
    if not row["fits"]:
        raise ParameterError(f"part {study}:{name} is predicted at {row['predicted_s'] / 60:.1f} min on "
                             f"{THROUGHPUT['h100'].device}, above its limit of {row['limit_s'] / 60:.0f} min; "
                             "split it (lease_parts.PARTS) before running it")
    return PARTS[study][names.index(name)]


def _cpu_units(root=None) -> list[tuple[str, Work, float]]:
    """(source, work, measured wall_s) of every unit whose wall time a stored cpu table records."""
    from scalinglaws.core.results import ResultStore
    out = []

    def table(study, name):
        store = ResultStore(study, "cpu", root)
        return store.read(name) if store.has(name) else None

    if (t := table("testbed", "ladder")) is not None:
        out += [("testbed ladder", Work("", r.size, tokens=int(r.tokens), batch_tokens=int(r.tokens // r.steps)),
                 r.wall_s) for r in t.itertuples()]
    if (t := table("routing", "models")) is not None:
        out += [("routing models", Work("", r.size, tokens=int(r.tokens), batch_tokens=int(r.tokens // r.steps),
                                        experts=int(r.experts)), r.wall_s) for r in t.itertuples()]
    if (t := table("merging", "experts")) is not None:
        out += [("merging experts", Work("", r.size, tokens=int(r.finetune_tokens),
                                         batch_tokens=int(r.finetune_tokens // r.steps)), r.wall_s)
                for r in t.itertuples()]
    if (t := table("resource", "lm_ladders")) is not None:
        t = t.drop_duplicates(["d_model", "n_layers", "lr"])
        # tables before issue 27 have no batch_tokens column: their batch was 4,096
        out += [("resource lm", Work("", f"d{r.d_model}l{r.n_layers}", tokens=int(r.tokens),
                                     batch_tokens=int(getattr(r, "batch_tokens", 4096))),
                 r.wall_s) for r in t.itertuples()]
    return out


def calibrate(root=None) -> dict:
    """The cost model at cpu against every stored per-unit wall time: ratios predicted / measured,
    their median and the worst (farthest from 1 either way), per source and overall."""
    import statistics
    rates = THROUGHPUT["cpu"]
    units = _cpu_units(root)
    if not units:
        raise ParameterError("no stored cpu table records per-unit wall times (data/results/*/cpu/)")
    ratios: dict[str, list[float]] = {}
    for source, w, measured in units:
        ratios.setdefault(source, []).append(w.seconds(rates) / measured)
    summary = lambda rs: {"n": len(rs), "median": statistics.median(rs),  # noqa: E731
                          "worst": max(rs, key=lambda r: abs(math.log(r)))}
    every = [r for rs in ratios.values() for r in rs]
    return {"overall": summary(every), **{k: summary(v) for k, v in ratios.items()}}


def combine(study: str, profile: str = "gpu", root=None):
    """The study's tables at `profile` from its stored parts (`<study>/<profile>/parts/<part>/`): each
    table stored by the parts is their rows stacked (every part's rows are its own sizes' units), the
    provenance is the first part's with `parts` naming each part's commit, date and wall time, and the
    claims are re-derived from the combined tables (`studies.cli.derive_claims`: fits re-judged where the
    study re-derives them). Returns the store, or None when no part is stored yet."""
    import pandas as pd

    from scalinglaws.core.results import ResultStore
    from scalinglaws.studies.cli import claims_studies, derive_claims
    store = ResultStore(study, profile, root)
    stored = sorted(p for p in (store.dir / "parts").glob("*") if (p / "provenance.json").exists())
    if not stored:
        return None
    parts = {p.name: ResultStore.__new__(ResultStore) for p in stored}
    for p, s in zip(stored, parts.values()):
        s.__dict__.update(store.__dict__)
        s.dir = p
    names = sorted({t for s in parts.values() for t in s.tables() if t != "claims"})
    for t in names:
        frames = [s.read(t) for s in parts.values() if s.has(t)]
        store.write(t, pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
    provs = {n: s.provenance() for n, s in parts.items()}
    prov = dict(next(iter(provs.values())))
    prov["parts"] = {n: {k: p.get(k) for k in ("commit", "date", "device", "wall_time_s", "unit_compute_s")}
                     for n, p in provs.items()}
    prov["unit_compute_s"] = sum(p.get("unit_compute_s") or 0 for p in provs.values())
    prov.pop("derived", None)
    store.write_provenance(prov)
    if study in claims_studies():
        derive_claims(study, profile, root)
    return store
