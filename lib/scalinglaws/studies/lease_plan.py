"""Planning the gpu leases (issue 28): each part's predicted wall time on the H100 of the throughput
table, the refusal of a part predicted above its limit, the cost model's error at cpu against the
per-unit wall times the stored cpu tables record, and combining the stored parts into the tables of one
run (`combine`: the study's run replayed on the union of the parts' unit records)."""
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


INTERFERENCE = 3.0  # a unit this many times slower than the median of its identical siblings was not alone


def calibrate(root=None) -> dict:
    """The cost model at cpu against every stored per-unit wall time: ratios predicted / measured,
    their median and the worst (farthest from 1 either way), per source and overall. A unit measured
    more than INTERFERENCE times the median of its identical siblings (same source, size, tokens and
    batch: the same work) shares its machine with something else, which no model of the work predicts;
    such units are counted (`interference`) and left out of the median and the worst, and the worst
    with them is kept as `worst_all`."""
    import statistics
    rates = THROUGHPUT["cpu"]
    units = _cpu_units(root)
    if not units:
        raise ParameterError("no stored cpu table records per-unit wall times (data/results/*/cpu/)")
    siblings: dict[tuple, list[float]] = {}
    for source, w, measured in units:
        siblings.setdefault((source, w.size, w.tokens, w.batch_tokens, w.experts), []).append(measured)
    ratios: dict[str, list[tuple[float, bool]]] = {}
    for source, w, measured in units:
        alike = statistics.median(siblings[(source, w.size, w.tokens, w.batch_tokens, w.experts)])
        ratios.setdefault(source, []).append((w.seconds(rates) / measured, measured > INTERFERENCE * alike))

    def summary(rs):
        clean = [r for r, bad in rs if not bad] or [r for r, _ in rs]
        far = lambda xs: max(xs, key=lambda r: abs(math.log(r)))  # noqa: E731
        return {"n": len(rs), "median": statistics.median(clean), "worst": far(clean),
                "interference": sum(bad for _, bad in rs), "worst_all": far([r for r, _ in rs])}
    every = [x for rs in ratios.values() for x in rs]
    return {"overall": summary(every), **{k: summary(v) for k, v in ratios.items()}}


def unit_overhead_from_records(root=None) -> list[float]:
    """Seconds of every committed routing cpu training record spent outside its trainer (record wall
    minus the trainer's own wall: model build, data, checkpoint save), the source of the cpu
    `unit_overhead_s`."""
    import json

    from scalinglaws.core.results import ResultStore
    out = []
    for f in sorted((ResultStore("routing", "cpu", root).dir / "units").glob("*/*.json")):
        rec = json.loads(f.read_text())
        row = rec["rows"][0] if rec.get("rows") else {}
        if rec.get("kind") in ("routed", "dense") and isinstance(row.get("wall_s"), (int, float)):
            out.append(rec["wall_s"] - row["wall_s"])
    return out


# ----------------------------------------------------------------------------- combining the parts
# A part's tables land in `<results>/<study>/<profile>/parts/<part>/` and its unit records (every study's
# at that profile, the testbed bases a merging part trained included) in `parts/<part>/units/`, laid out
# like `<work>/units/` (`scripts/gpu_study.sh` copies them). Checkpoints never come back from a lease.
PART_UNITS = "units"


def stored_parts(study: str, profile: str = "gpu", root=None) -> list:
    """The stored part folders of `study`, in the order of `lease_parts.PARTS` (others after, by name)."""
    from scalinglaws.core.results import ResultStore
    base = ResultStore(study, profile, root).dir / "parts"
    found = {p.name: p for p in base.glob("*") if (p / "provenance.json").exists()}
    order = [p.name for p in PARTS.get(study, [])] if profile == "gpu" else []
    return [found[n] for n in order if n in found] + [found[n] for n in sorted(set(found) - set(order))]


def union_config(study: str, profile: str, configs: list[dict]) -> dict:
    """The overrides of one run covering every part: each part's resolved parameters (its provenance
    `config`); a parameter on which parts differ must be a list in all of them, and is their union in
    part order (each value once). Only the study's parameters at `profile` are kept."""
    import json
    from scalinglaws.studies import get_study
    known = get_study(study).PROFILES[profile]
    out = {}
    for k in known:
        vals = [c[k] for c in configs if k in c]
        if not vals:
            continue
        if all(v == vals[0] for v in vals):
            out[k] = vals[0]
        elif all(isinstance(v, list) for v in vals):
            seen, merged = set(), []
            for v in vals:
                for x in v:
                    if (j := json.dumps(x, sort_keys=True)) not in seen:
                        seen.add(j)
                        merged.append(x)
            out[k] = merged
        else:
            raise ParameterError(f"the stored parts of {study} at {profile} differ in {k!r} ({vals}), which is not "
                                 "a list of cells: they are not parts of one run")
    return out


def combine(study: str, profile: str = "gpu", root=None):
    """The study's tables at `profile` as one uninterrupted run over every stored part makes them:
    the study's own `run` with the union of the parts' parameters (`union_config`), replaying the
    union of the parts' unit records (`core.sweep.replay`: nothing trains, no checkpoint is needed),
    in a scratch work and results root (the results of the studies it depends on copied in), so its
    analysis, the fits across sizes and the claims included, sees every part's units at once.
    Stacking the parts' tables instead keeps each part's own fits, made on its sizes alone. The
    tables replace the study's tables at `profile` (the parts stay); provenance is the replayed run's
    with `parts` naming each part's commit, date, device and wall time. A unit no part recorded
    raises `core.sweep.NotRecorded`, and nothing is written. Returns the store, or None when no part
    is stored yet."""
    import json
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from scalinglaws.core import sweep as SW
    from scalinglaws.core.results import ResultStore
    from scalinglaws.studies import get_study, lease_parts
    store = ResultStore(study, profile, root)
    stored = stored_parts(study, profile, root)
    if not stored:
        return None
    provs = {p.name: json.loads((p / "provenance.json").read_text()) for p in stored}
    overrides = union_config(study, profile, [pv.get("config", {}) for pv in provs.values()])
    with tempfile.TemporaryDirectory(prefix=f"combine-{study}-") as tmp:
        tmp = Path(tmp)
        results, work = tmp / "results", tmp / "work"
        for dep in _dependencies(study):  # what the run reads of other studies (e.g. the testbed's rates)
            if (store.dir.parents[1] / dep).exists():
                shutil.copytree(store.dir.parents[1] / dep, results / dep, ignore=shutil.ignore_patterns("parts"))
        for p in stored:
            if (p / PART_UNITS).is_dir():
                shutil.copytree(p / PART_UNITS, work / "units", dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".lock", "*.failed.json", "run.failed.json"))
        env = {"SCALINGLAWS_RESULTS": str(results), "SCALINGLAWS_WORK": str(work)}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        lease_parts.AS_STORED.add(study)  # a rehearsal's parts stored rehearsed parameters: not thinned again
        try:
            with SW.replay():
                get_study(study).run(profile, **overrides)
        finally:
            lease_parts.AS_STORED.discard(study)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        made = results / study / profile
        prov = json.loads((made / "provenance.json").read_text())
        for old in [*store.dir.glob("*.parquet"), store.dir / "provenance.json"]:  # no stale table stays
            old.unlink(missing_ok=True)
        store.dir.mkdir(parents=True, exist_ok=True)
        for f in sorted(made.glob("*.parquet")):
            shutil.copy2(f, store.dir / f.name)
    prov["parts"] = {n: {k: pv.get(k) for k in ("commit", "date", "device", "wall_time_s", "unit_compute_s")}
                     for n, pv in provs.items()}
    prov["combined"] = "replayed the union of the parts' unit records (lease_plan.combine)"
    store.write_provenance(prov)
    return store


def _dependencies(study: str) -> list[str]:
    """The studies `study` reads, transitively."""
    from scalinglaws.studies import get_study
    out, todo = [], list(get_study(study).DEPENDS_ON)
    while todo:
        d = todo.pop()
        if d not in out:
            out.append(d)
            todo += list(get_study(d).DEPENDS_ON)
    return out
