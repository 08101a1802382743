"""The resource model on our language models: width and depth ladders, trained alike.

The resource model says a subtask's loss falls like 1/N with N the neurons given to it; if the
shares stay constant, the total loss falls like N^-1 too. Parameters per layer grow like N^2, so

    fixed depth L:      N_p ~ N^2 L ~ N^2   =>  loss ~ N_p^-1/2
    depth L ~ N:        N_p ~ N^2 L ~ N^3   =>  loss ~ N_p^-1/3   (Chinchilla: alpha = 0.34)

Two ladders test this on the testbed's model family (`scalinglaws.models`, Llama blocks, vocabulary
4096), data (every domain, equal weights) and trainer (`scalinglaws.training.train`): widths d_model
at a fixed depth, and widths with depth L = d_model / depth_ratio exactly (a width that is not a
multiple of the ratio is refused, so d/L is one constant along the ladder).

Every rung is trained alike (issue 27; the first design gave every rung one token budget and let
the largest rungs pick the top rate of the grid):
- tokens proportional to N: `tokens_per_param` x non-embedding parameters, in whole batches, capped
  by the epoch rule (`core.profiles.MAX_EPOCHS` passes over the smallest domain's unique pretraining
  tokens at equal domain weights; `epoch_cap`). Along such a ladder Chinchilla's
  L(N, D) = E + A N^-alpha + B D^-beta becomes E + A N^-alpha + B (rN)^-beta: the reducible loss is
  a sum of two powers of N, and the fitted exponent is the ladder's effective one (alpha ~ beta
  ~ 0.34 in Chinchilla, so both terms fall alike there);
- every rung at every rate of a small grid, and the rate bracketed as in the testbed
  (`core.regime.bracketed_rounds`): a rung whose best rate sits at an edge of the rates it was
  trained at gets the next rate beyond that edge, up to `lr_bracket` rounds. The rung keeps the
  rate with the lowest validation CE and is scored on the test split (uniform windows).

The exponent is fitted on *reducible* loss (`power_offset`, E' free) and compared with the predicted
1/2 and 1/3; the pure power law (no floor) is kept beside it.
"""
from __future__ import annotations

from scalinglaws.models import Size, build_model, count_params, model_config
from scalinglaws.models.dense import _ff


def lm_size(d_model: int, n_layers: int, head_dim: int, context: int) -> Size:
    """A ladder rung: Llama MLP width 8/3 d (rounded to 16), heads of `head_dim` dimensions."""
    return Size(d_model, n_layers, max(1, d_model // head_dim), _ff(d_model), context)


def ladder_sizes(widths, fixed_depth: int, depth_ratio: int, head_dim: int, context: int) -> list[dict]:
    """The two ladders as rows {ladder, d_model, n_layers}: 'width' (depth fixed) and 'depth'
    (n_layers = d_model / depth_ratio: depth exactly proportional to width). ValueError for a width
    that is not a multiple of depth_ratio (`study.validate` says so first, as a ParameterError)."""
    bad = [d for d in widths if d % depth_ratio]
    if bad:
        raise ValueError(f"widths {bad} are not multiples of depth_ratio={depth_ratio}: depth would not be proportional")
    rows = [{"ladder": "width", "d_model": d, "n_layers": fixed_depth} for d in widths]
    rows += [{"ladder": "depth", "d_model": d, "n_layers": d // depth_ratio} for d in widths]
    return rows


def non_embedding_params(d_model: int, n_layers: int, head_dim: int, context: int) -> int:
    return count_params(model_config(lm_size(d_model, n_layers, head_dim, context)))["non_embedding"]


def epoch_cap(domains) -> int:
    """The most tokens a rung may train on: `MAX_EPOCHS` passes over the smallest domain's unique
    pretraining tokens, times the number of domains (equal domain weights repeat the smallest most)."""
    from scalinglaws.core.profiles import MAX_EPOCHS
    from scalinglaws.data import domain_table
    t = domain_table(domains=list(domains))
    uniq = t[t["split"] == "pretrain"]["tokens"]
    return int(MAX_EPOCHS * uniq.min() * len(domains))


def rung_tokens(n_params: int, tokens_per_param: float, batch_tokens: int, cap: int) -> tuple[int, bool]:
    """(tokens, capped): tokens_per_param x N in whole batches (at least one), at most `cap`."""
    want = max(1, round(tokens_per_param * n_params / batch_tokens)) * batch_tokens
    limit = max(batch_tokens, cap // batch_tokens * batch_tokens)
    return (limit, True) if want > limit else (want, False)


def train_rung(cfg: dict, train_arrays: dict, windows: dict, resume=None) -> dict:
    """Build, train and score one ladder rung at one learning rate; cfg has d_model, n_layers,
    head_dim, context, seed, tokens, batch_tokens, lr. `windows` maps split -> its
    `evaluation.EvalSpec` (uniform windows of the context); the loss of a split is the mean CE over
    domains (equal weights, as in training). `resume`: a folder where the training saves its state
    every ten minutes and resumes from it (`training.train`), so a rung killed midway is not trained
    again from its start."""
    from scalinglaws.evaluation import evaluate
    from scalinglaws.training import TrainingDiverged, train

    size = lm_size(cfg["d_model"], cfg["n_layers"], cfg["head_dim"], cfg["context"])
    counts = count_params(model_config(size))
    row = {"size": size.name, "lr": cfg["lr"], "n_heads": size.n_heads, "d_ff": size.d_ff,
           "params_total": counts["total"], "params_non_embedding": counts["non_embedding"],
           "params_embedding": counts["embedding"]}
    model = build_model(size, seed=cfg["seed"])
    try:
        res = train(model, train_arrays, tokens=cfg["tokens"], batch_tokens=cfg["batch_tokens"],
                    seq_len=cfg["context"], lr=cfg["lr"], seed=cfg["seed"], progress=False,
                    weights={d: 1.0 for d in train_arrays}, resume=resume)
    except TrainingDiverged:  # a rate of the grid that diverges is a result: never chosen
        nan = float("nan")
        return {**row, "diverged": True, "tokens": 0, "steps": 0, "tokens_per_param": 0.0, "train_loss": nan,
                "val_loss": nan, "loss": nan, "wall_s": nan}
    scores = {}
    for split, spec in windows.items():
        scores[split] = float(evaluate(model, spec).frame(model=0)["ce"].mean())
    return {**row, "diverged": False, "tokens": res.tokens, "steps": res.steps, "tokens_per_param": res.tokens / counts["non_embedding"],
            "train_loss": res.final_loss, "val_loss": scores["val"], "loss": scores["test"], "wall_s": res.wall_s}
