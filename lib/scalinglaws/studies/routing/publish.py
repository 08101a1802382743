"""The routing study's published checkpoints (`scalinglaws.core.published`): the dense model and every
router's model at one (size, E) of a stored run, shipped so that a reader can load each router's
checkpoint with AutoModelForCausalLM and score it with lm-eval against the stored `ce_documents`
without retraining (the test suite does exactly that).

    python scripts/publish_routing_checkpoints.py --profile cpu [--size d32l2] [--experts 16]
"""
from __future__ import annotations

from scalinglaws.core import published as PUB
from scalinglaws.core.results import ResultStore
from scalinglaws.core.sweep import find_checkpoint
from scalinglaws.core.validation import ParameterError, check_choice
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as RTR
from scalinglaws.studies.routing.names import DENSE

STUDY = "routing"


def choose(models, size: str | None = None, experts: int | None = None) -> list[dict]:
    """The rows of `models` to publish: dense, every router and control at (size, E); by default the smallest
    size (the smallest files) at the largest E (the most experts a router must balance)."""
    dense = models[models["experts"] == 1].sort_values("N")
    size = dense["size"].iloc[0] if size is None else check_choice("size", size, list(dense["size"]))
    experts = int(models["experts"].max()) if experts is None else check_choice(
        "experts", experts, sorted(set(models["experts"]) - {1}))
    # dense, Clark's routers and the controls (the vocab control: Hash's per-token-id parameters, no
    # routing), so a reader can score the Hash-vs-control comparison under lm-eval too
    rows = models[(models["size"] == size) & (models["experts"].isin([1, experts]))
                  & models["router"].isin([DENSE, *RTR.routers(), *RT.CONTROLS])]
    return [{"name": f"{r.size}-E{r.experts}-{r.router}", "size": r.size, "experts": int(r.experts),
             "router": r.router, "unit": r.unit} for r in rows.itertuples()]


def publish(profile: str, size: str | None = None, experts: int | None = None):
    store = ResultStore(STUDY, profile)
    if not store.has("models"):
        raise ParameterError(f"no stored routing results at profile {profile!r}: run "
                             f"`python -m scalinglaws reproduce routing --profile {profile}` first")
    entries = choose(store.read("models"), size, experts)
    for e in entries:
        e["source"] = str(find_checkpoint(e["unit"]))
    return PUB.publish(STUDY, profile, entries, results_commit=store.provenance()["commit"])
