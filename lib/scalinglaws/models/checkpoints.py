"""Checkpoints: safetensors only (no pickle is ever written or read).

A checkpoint is a folder with `model.safetensors`, `config.json` (loadable with
`transformers.AutoModelForCausalLM.from_pretrained`), `meta.json` (the unit config that made it)
and optionally the tokenizer. Writes are atomic (temporary sibling folder, then rename).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from scalinglaws.core.validation import ParameterError


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def save_checkpoint(model, path, meta: dict | None = None, tokenizer=None) -> Path:
    """Write `model` (safetensors + config.json), `meta.json` and optionally the tokenizer to
    `path`, atomically: everything goes to a temporary sibling folder that is renamed into place,
    so a killed run leaves the previous checkpoint (or none), never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        with open(tmp / "meta.json", "w") as f:
            json.dump(meta or {}, f, indent=2, sort_keys=True, default=str)
        bad = [p.name for p in tmp.iterdir() if p.suffix in _PICKLE_SUFFIXES]
        if bad:
            raise RuntimeError(f"save_pretrained wrote pickle files {bad}; refusing")
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old.{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_checkpoint(path, device: str = "cpu", dtype=torch.float32):
    """Load a checkpoint written by `save_checkpoint`; refuses folders containing pickle files."""
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (config.json missing)")
    bad = [p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES]
    if bad:
        raise ParameterError(f"checkpoint {path} contains pickle files {bad}; only safetensors are loaded")
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=dtype)
    return model.to(device).eval()


def load_meta(path) -> dict:
    with open(Path(path) / "meta.json") as f:
        return json.load(f)
