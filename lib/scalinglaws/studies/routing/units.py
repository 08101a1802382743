"""The routing study's units: the configs that identify a trained model (`train_unit`), its
evaluation on the testbed's windows (`eval_unit`) and on whole documents (`docs_unit`), the functions
that compute them (`_train`, `_evaluate`, `_evaluate_docs`), the grid's and the step check's units,
and where their records live (`unit_sweep`). A unit's key is the hash of its config: these configs
are what stored unit records are found by, so they change only with what the model is.
"""
from __future__ import annotations

import torch

from scalinglaws import data as D
from scalinglaws import evaluation as EV
from scalinglaws import models as M
from scalinglaws import training as T
from scalinglaws.core import results as RES
from scalinglaws.core import sweep as SW
from scalinglaws.core import validation as V
from scalinglaws.data import tokenizer as TK
from scalinglaws.models import routed as RT
from scalinglaws.studies.routing.config import _SCHEDULE, DENSE, STUDY


class RoutedTrainingDiverged(RuntimeError):
    """A model of the routing grid diverged (NaN/inf loss); names the router and the unit."""



def _arch(size: str) -> dict:
    """The dense architecture of a size, as in the testbed's unit keys."""
    arch = M.model_config(size).to_diff_dict()
    arch.pop("transformers_version", None)
    return arch


def _lr_of(params: dict, size: str) -> float:
    """The peak learning rate of a size: resolved by `run()` (lr_by_size), or a float/dict lr."""
    if "lr_by_size" in params:
        return params["lr_by_size"][size]
    lr = params["lr"]
    if isinstance(lr, str):
        raise V.ParameterError(f"lr={lr!r} is resolved from the stored testbed by run(); call learning_rates() first")
    return float(lr[size] if isinstance(lr, dict) else lr)


def train_unit(size: str, experts: int, router: str, params: dict) -> SW.Unit:
    """The config that identifies one trained model (E = 1: the dense model, router 'dense')."""
    common = {"size": size, "tokens": params["tokens"], "data": D.checksums(params["domains"], "pretrain"),
              "lr": _lr_of(params, size), **{k: params[k] for k in _SCHEDULE}}
    if experts == 1:
        return SW.Unit("dense", {**common, "experts": 1, "router": DENSE, "arch": _arch(size)})
    cfg = RT.routed_config(size, experts, router, routed_every=params["routed_every"], hash_seed=params["seed"],
                           **params["router_options"])
    # every routing setting explicitly (defaults included), so a changed default means new units
    return SW.Unit("routed", {**common, "experts": experts, "router": router, "arch": _arch(size),
                              "routing": RT.routing_fields(cfg)})


def routed_config_of(config: dict):
    """The RoutedConfig of a `routed` unit's config."""
    rt = config["routing"]
    return RT.routed_config(config["size"], rt["num_local_experts"], rt["router"], routed_every=rt["routed_every"],
                            hash_seed=rt["hash_seed"], **RT.router_options_of(rt))


def _train(config: dict, experts_implementation: str | None = None, compile: bool = False) -> dict:
    size, E, router = config["size"], config["experts"], config["router"]
    if E == 1:
        model = M.build_model(size, seed=config["seed"])
        cfg = model.config
    else:
        cfg = routed_config_of(config)
        cfg._attn_implementation = "sdpa"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config["seed"])
            model = RT.RoutedForCausalLM(cfg)
        RT.set_experts_implementation(model, experts_implementation
                                      or RT.default_experts_implementation(T.default_device()))
        model.reset_routing_stats()
    arrays = {d: D.token_ids(d, "pretrain") for d in config["domains"]}
    try:
        res = T.train(model, arrays, tokens=config["tokens"], batch_tokens=config["batch_tokens"], lr=config["lr"],
                      warmup_frac=config["warmup_frac"], min_lr_frac=config["min_lr_frac"],
                      weight_decay=config["weight_decay"], grad_clip=config["grad_clip"], seed=config["seed"],
                      weights={d: 1.0 for d in arrays}, device=T.default_device(), progress=False, compile=compile)
    except T.TrainingDiverged as e:
        shown = {k: v for k, v in config.items() if k not in ("arch", "data")}
        raise RoutedTrainingDiverged(f"router={router} E={E} size={size} diverged at step {e.step} (loss {e.loss}); "
                                     f"unit config {shown}") from e
    unit = SW.Unit("dense" if E == 1 else "routed", config)
    M.save_checkpoint(model.cpu(), SW.checkpoint_dir(unit), meta={"unit": config, "train_loss": res.final_loss},
                      tokenizer=TK.load_tokenizer())
    if E == 1:
        counts = {"N": M.param_formula(cfg)["non_embedding"], **M.param_formula(cfg)}
        counts["active"] = counts["non_embedding"]
        flops, routing = M.flops_per_token(cfg), []
    else:
        counts = RT.param_counts(cfg)
        flops, routing = RT.flops_per_token(cfg), model.routing_stats()
    return {"size": size, "experts": E, "router": router, "N": counts["N"], "non_embedding": counts["non_embedding"],
            "active": counts["active"], "total": counts["total"], "flops_per_token": flops, "tokens": res.tokens,
            "steps": res.steps, "train_loss": res.final_loss, "wall_s": res.wall_s,
            "tokens_per_s": res.tokens / res.wall_s, "device": T.default_device(),
            "curve": res.curve.to_dict("records"), "routing": routing}


def eval_unit(train: SW.Unit, params: dict) -> SW.Unit:
    c = train.config
    return SW.Unit("eval", {"checkpoint": train.key, "size": c["size"], "experts": c["experts"], "router": c["router"],
                         "split": "test", "domains": params["domains"], "tokens_per_domain": params["eval_tokens"],
                         "seed": params["eval_seed"], "bootstrap": params["eval_bootstrap"],
                         "data": D.checksums(params["domains"], "test")})


def _evaluate(config: dict, batch_size: int = 32) -> list[dict]:
    """CE per domain on the testbed's evaluation windows (`evaluation.uniform_windows`: same
    domains, tokens, seed and the model's context, so a dense model here scores on exactly the
    windows the testbed uses), with bootstrap standard errors; one domain at a time so that the
    router's statistics (tokens per expert, entropy) are recorded per domain."""
    device = T.default_device()
    model = RT.load_routed(SW.find_checkpoint(config["checkpoint"]), device=device)
    model.eval()
    routed = isinstance(model, RT.RoutedForCausalLM)
    rows = []
    for domain in config["domains"]:
        if routed:
            model.reset_routing_stats()
        spec = EV.EvalSpec([domain], config["tokens_per_domain"], seed=config["seed"], split=config["split"],
                           backend="forward", batch=batch_size)  # seq_len: the model's context
        df = EV.evaluate(model, spec).bootstrap(config["bootstrap"], config["seed"], model=0)
        row = {k: df.iloc[0][k] for k in ("domain", "windows", "tokens", "bytes", "nll_sum", "ce", "ce_se", "bpb")}
        row["routing"] = model.routing_stats() if routed else []
        rows.append(row)
    return rows


def docs_unit(train: SW.Unit, params: dict) -> SW.Unit:
    c = train.config
    return SW.Unit("eval_docs", {"checkpoint": train.key, "size": c["size"], "experts": c["experts"],
                                 "router": c["router"], "split": "test", "domains": params["domains"],
                                 "max_docs": params["eval_docs"], "data": D.checksums(params["domains"], "test")})


def _evaluate_docs(config: dict, batch_size: int = 32) -> list[dict]:
    """CE of the first `max_docs` whole documents of each domain's test split, scored by rolling
    windows (`evaluation.evaluate_domains`), which is what lm-eval's loglikelihood_rolling computes:
    the table a reader checks a checkpoint against with `lmeval.run_lmeval(..., limit=max_docs)`.
    (The study's CE is on the uniform windows; document starts have less context, so these differ.)"""
    device = T.default_device()
    model = RT.load_routed(SW.find_checkpoint(config["checkpoint"]), device=device)
    spec = EV.EvalSpec(config["domains"], protocol="documents", max_docs=config["max_docs"],
                       split=config["split"], batch=batch_size)
    return EV.evaluate(model, spec).frame(model=0).to_dict("records")



def units(params: dict, part: str | None = None) -> list[SW.Unit]:
    """The training units: the dense model of every size, then every routed (size, E, router);
    with `part`, only the (size, E) cells of that part (`parts`)."""
    sel = params["parts"][part] if part is not None else {"sizes": params["sizes"], "experts": params["experts"]}
    keep = lambda s, E: s in sel["sizes"] and E in sel["experts"]  # noqa: E731
    out = [train_unit(s, 1, DENSE, params) for s in params["sizes"] if keep(s, 1)]
    out += [train_unit(s, E, r, params) for s in params["sizes"] for E in params["experts"] if E > 1
            for r in params["routers"] if keep(s, E)]
    return out


def unit_sweep(profile: str, params: dict) -> SW.Sweep:
    """Where the unit records live. unit_records="work": `.work/units/routing/<profile>/` (scratch);
    "results": beside the tables, `data/results/routing/<profile>/units/<kind>/<key>.json`, committed
    with them, so a sweep resumes on a new machine from git (the layout of the seeds replicates,
    branch `seeds`: `Sweep` with its `dir` moved under the results root; `.gitignore` ignores the
    lock). Checkpoints stay in `.work/` either way (`train_and_evaluate` needs one only for a model
    whose evaluations are not recorded yet)."""
    sweep = SW.Sweep(STUDY, profile)
    if params["unit_records"] == "results":
        sweep.dir = RES.results_root() / STUDY / profile / "units"
    return sweep


def train_and_evaluate(sweep: SW.Sweep, train_units: list[SW.Unit], params: dict, docs: bool = False,
                       backend: str = "local") -> tuple[list[dict], ...]:
    """Train, evaluate (and with `docs`, score whole documents) every unit not yet recorded;
    returns the records (train, eval[, docs]) in unit order. A trained model whose evaluations are
    all recorded needs no checkpoint: its record is reused even where `.work/` was lost (a fresh
    clone with the committed records redoes nothing); any other model is retrained if its
    checkpoint is missing."""
    impl, comp, bs = params["experts_implementation"], params["compile"], params["eval_batch_size"]
    ev = [eval_unit(u, params) for u in train_units]
    dc = [docs_unit(u, params) for u in train_units] if docs else []
    settled = {u.key for i, u in enumerate(train_units)
               if sweep.done(ev[i]) and (not docs or sweep.done(dc[i])) and sweep.done(u)}
    train = lambda c: _train(c, impl, comp)  # noqa: E731
    sweep.run([u for u in train_units if u.key not in settled], train, backend=backend, desc="train", checkpoints=True)
    trecs = sweep.run(train_units, train, backend=backend, desc="train")  # all recorded now: loads them
    erecs = sweep.run(ev, lambda c: _evaluate(c, bs), backend=backend, desc="eval")
    if not docs:
        return trecs, erecs
    return trecs, erecs, sweep.run(dc, lambda c: _evaluate_docs(c, bs), backend=backend, desc="eval_docs")


def step_check_units(params: dict) -> list[SW.Unit]:
    """The step check's training units (module docstring): dense and every router at (size, E),
    the grid's recipe with the smaller batch; [] when step_check is None or (size, E) is not in the grid."""
    sc = params["step_check"]
    if sc is None or sc["size"] not in params["sizes"] or sc["experts"] not in params["experts"]:
        return []
    small = {**params, "batch_tokens": sc["batch_tokens"]}
    return [train_unit(sc["size"], 1, DENSE, small)] + [train_unit(sc["size"], sc["experts"], r, small)
                                                        for r in params["routers"]]

