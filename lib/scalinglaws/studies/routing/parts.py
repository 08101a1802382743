"""The routing rerun in resumable parts (issue 27): what each part trains and what it is predicted to cost.

A profile's `parts` ({name: {"sizes", "experts"}}, validated to cover every (size, E) cell of the grid
once) splits the grid; `reproduce routing --param part=NAME` trains and evaluates one part's models
and writes their unit records (at cpu committed beside the tables: `study.unit_sweep`), no tables.
After the last part, a run without `part` reuses every record, trains the step check, and writes the
tables. A part stopped midway resumes where it stopped; a part already done costs nothing.

Predicted cost (`part_costs`), in CPU-seconds of units, from measurements, not guesses:
- training: each model's tokens / the tokens per second the stored run measured for the same (size,
  E, router) (`models` table of the stored run, its batch in provenance), times the slowdown of the
  new batch measured within the stored run (its step check trained the same models at a smaller
  batch: `_batch_slowdown`); the `vocab` control (not in the stored run) at its size's dense rate
  times its cost over dense in the regime pilot (`_vocab_over_dense`). The pilot's own timings
  are not used for the batch: they ran beside other engineers' jobs, at 1-4x the stored seconds;
- evaluation: the stored run's evaluation seconds per model (provenance `eval_s` / `models`), scaled
  by the evaluation tokens per domain.

    python -m scalinglaws routing-parts --profile cpu      (prints the plan and each part's command)
"""
from __future__ import annotations

import pandas as pd

from scalinglaws.core.results import ResultStore
from scalinglaws.studies import resolve_params
from scalinglaws.studies.routing import study as S

# a part should fit a ~2 hour session on 2 cores: 2 x 7,200 CPU-s, of which ~75% reach the units
# (the stored cpu run, backend="ray": 10,358 CPU-s of units in 85 minutes of wall, 2 cores = 10,200
# CPU-s of wall; the session also needs its start, the commit and slack): ~10,800 CPU-s of units
PART_BUDGET_S = 10_800


def _batch_slowdown(store: ResultStore, batch: int) -> float:
    """Training seconds per token at `batch` over the stored run's batch, measured within the stored
    run (same machine, same backend): 1 at its own batch; at its step check's batch, the step
    check's training seconds (provenance `step_check_s` less its evaluations) over the grid's
    seconds for the same models. Another batch is a ParameterError (no measurement to price it)."""
    prov = store.provenance()
    cfg = prov["config"]
    if batch == cfg["batch_tokens"]:
        return 1.0
    sc = cfg.get("step_check") or {}
    if batch != sc.get("batch_tokens"):
        raise S.V.ParameterError(f"no stored measurement prices batch_tokens={batch} (stored run: "
                                 f"{cfg['batch_tokens']}, its step check: {sc.get('batch_tokens')})")
    models = store.read("models")
    grid = models[(models["size"] == sc["size"]) & models["experts"].isin([1, sc["experts"]])]
    n = len(store.read("step_check"))
    sc_train = prov["step_check_s"] - n * prov["eval_s"] / prov["models"] / 2  # its evaluations: windows only
    return float(sc_train / grid["wall_s"].sum())


def _vocab_over_dense(store: ResultStore) -> float:
    """The vocab control's training seconds over dense's, from the regime pilot (same batch and
    tokens), the largest over its budgets: the pilot ran beside other engineers' jobs, so a ratio can
    be low by chance, and a plan should not be; 1 when the pilot has no vocab rows."""
    if not store.has("regime_pilot"):
        return 1.0
    pil = store.read("regime_pilot")
    rows = pil[pil["router"].isin(["vocab", "dense"])].groupby(["tokens", "batch_tokens", "router"])["train_s"].first()
    ratios = [rows[(t, b, "vocab")] / rows[(t, b, "dense")] for t, b, r in rows.index if r == "vocab"]
    return float(max(ratios)) if ratios else 1.0


def _factors(store: ResultStore, batch: int) -> tuple[float, float]:
    return _batch_slowdown(store, batch), _vocab_over_dense(store)


def part_costs(profile: str = "cpu", overrides: dict | None = None) -> pd.DataFrame:
    """One row per part: models, predicted training, evaluation and total CPU-seconds, and the
    command that runs it (module docstring). Raises ParameterError if the profile has no parts or
    no stored run to measure from."""
    params = resolve_params(S, profile, dict(overrides or {}))
    params["lr_by_size"] = S.learning_rates(params, profile)
    if params["parts"] is None:
        raise S.V.ParameterError(f"the routing {profile} profile defines no parts")
    store = ResultStore(S.STUDY, profile)
    if not store.has("models"):
        raise S.V.ParameterError(f"part_costs measures from the stored routing {profile} run; none is stored")
    ref = store.read("models").set_index(["size", "experts", "router"])["tokens_per_s"]
    prov = store.provenance()
    eval_per_model = prov["eval_s"] / prov["models"] * params["eval_tokens"] / prov["config"]["eval_tokens"]
    slow, vocab = _factors(store, params["batch_tokens"])
    rows = []
    for name in params["parts"]:
        train = 0.0
        units = S.units(params, name)
        for u in units:
            c = u.config
            if c["router"] == "vocab":
                rate = ref[(c["size"], 1, S.DENSE)] / vocab
            else:
                rate = ref[(c["size"], c["experts"], c["router"])]
            train += c["tokens"] / rate * slow
        evals = len(units) * eval_per_model  # uniform windows + whole documents (both in the stored eval_s)
        rows.append({"part": name, "sizes": ",".join(params["parts"][name]["sizes"]),
                     "experts": ",".join(map(str, params["parts"][name]["experts"])), "models": len(units),
                     "train_s": round(train), "eval_s": round(evals), "cpu_s": round(train + evals),
                     "fits_budget": train + evals <= PART_BUDGET_S,
                     "command": f"python -m scalinglaws reproduce routing --profile {profile} --no-notebook "
                                f"--backend ray --param part={name}"})
    out = pd.DataFrame(rows)
    out.attrs.update(batch_slowdown=slow, vocab_over_dense=vocab, eval_s_per_model=eval_per_model)
    return out


def step_check_cost(profile: str = "cpu") -> float:
    """Predicted CPU-s of the step check's training (the final run without `part` trains it), a lower
    bound: priced at the grid batch's rate."""
    params = resolve_params(S, profile, {})
    params["lr_by_size"] = S.learning_rates(params, profile)
    sc = params["step_check"]
    if sc is None:
        return 0.0
    store = ResultStore(S.STUDY, profile)
    ref = store.read("models").set_index(["size", "experts", "router"])["tokens_per_s"]
    # its smaller batch is not measured by the pilot: priced at the grid batch's rate, a lower bound
    slow_sc, vocab = _factors(store, params["batch_tokens"])
    total = 0.0
    for u in S.step_check_units(params):
        c = u.config
        rate = ref[(c["size"], 1, S.DENSE)] / vocab if c["router"] == "vocab" else ref[(c["size"], c["experts"], c["router"])]
        total += c["tokens"] / rate * slow_sc
    return total
