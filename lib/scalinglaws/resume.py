"""A training run's state between steps, so a run killed midway resumes where it stopped and ends
with the same weights, bit for bit, as one that was never stopped (`training.train(resume=...)`).

Why: a cpu unit of the resource ladders trains for one to two hours on one core; a session that ends
while it trains would otherwise lose all of it (unit records are written only when a unit ends).

The state is everything the next step reads: the model's weights, AdamW's moments and step counts,
the window sampler's generator, torch's CPU generator (and the CUDA one on a GPU), the step reached,
the loss curve so far and the wall time already spent. Tensors go to `state.safetensors` (safetensors
only, as every checkpoint of the project), the rest to `state.json`; both are written to a temporary
folder `<path>.tmp`, then two renames swap it in (the previous state aside to `<path>.old`, the new one
to `<path>`; `.old` is removed after). A kill during a save thus leaves a whole state: the previous one
in `<path>` (before the first rename) or in `<path>.old` (between the two), which `load` falls back to. `signature` (the run's settings) must match on resume: a state of another run is refused.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from scalinglaws.core.validation import ParameterError

TENSORS, META = "state.safetensors", "state.json"


def _flat_optimizer(opt) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors = {f"opt.{i}.{k}": v.detach().cpu().contiguous() for i, st in sd["state"].items() for k, v in st.items()}
    return tensors, {"param_groups": sd["param_groups"], "state_keys": {str(i): list(st) for i, st in sd["state"].items()}}


def save(path, *, model, opt, sampler, step: int, extra: dict, signature: dict) -> None:
    """Write the state after `step` optimiser steps (atomic: a temporary folder swapped in by two renames,
    module doc)."""
    from safetensors.torch import save_file
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # clone each tensor: tied weights share storage, which safetensors refuses to save twice
    tensors = {f"model.{k}": v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = _flat_optimizer(opt)
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(tmp / TENSORS))
    meta = {"step": int(step), "signature": signature, "optimizer": opt_meta,
            "sampler": sampler.rng.bit_generator.state, **extra}
    (tmp / META).write_text(json.dumps(meta, default=_jsonable))
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _jsonable(x):
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def load(path, *, model, opt, sampler, signature: dict) -> dict | None:
    """Restore a saved state into `model`, `opt` and `sampler` and return its metadata (step, extra);
    None when `path` holds no state. A state saved by a run with another `signature` is refused."""
    from safetensors.torch import load_file

    from scalinglaws.models.checkpoints import check_safetensors_header
    path = Path(path)
    if not (path / META).exists():  # killed between the two renames of `save`: the previous state
        path = path.with_name(path.name + ".old")
    if not (path / META).exists() or not (path / TENSORS).exists():
        return None
    meta = json.loads((path / META).read_text())
    if meta.get("signature") != json.loads(json.dumps(signature, default=_jsonable)):
        raise ParameterError(f"the training state in {path} belongs to another run (its settings "
                             f"{meta.get('signature')} are not this run's {signature}); delete it to start over")
    check_safetensors_header(path / TENSORS)
    t = load_file(str(path / TENSORS))
    device = next(model.parameters()).device
    model.load_state_dict({k[len("model."):]: v.to(device) for k, v in t.items() if k.startswith("model.")})
    om = meta["optimizer"]
    state = {int(i): {k: t[f"opt.{i}.{k}"].to(device if t[f"opt.{i}.{k}"].ndim else "cpu") for k in keys}
             for i, keys in om["state_keys"].items()}
    opt.load_state_dict({"state": state, "param_groups": om["param_groups"]})
    sampler.rng.bit_generator.state = meta["sampler"]
    torch.set_rng_state(t["rng.torch"])
    if "rng.cuda" in t and device.type == "cuda":
        torch.cuda.set_rng_state(t["rng.cuda"])
    return meta


def clear(path) -> None:
    """Remove a finished run's state (and any half-written one)."""
    path = Path(path)
    for p in (path, path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")):
        shutil.rmtree(p, ignore_errors=True)
