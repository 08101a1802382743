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


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".zip", ".npz", ".joblib")
_MAX_HEADER = 100 * 2**20  # safetensors caps its JSON header at 100 MB


def _is_pickle_name(p: Path) -> bool:
    return p.suffix.lower() in _PICKLE_SUFFIXES  # pytorch_model.BIN is a pickle too


def check_safetensors_header(path) -> None:
    """Refuse a file that does not start like safetensors (8-byte little-endian header length, then
    a JSON object) before any parser sees it: a pickle (starts with 0x80) or a zip (PK, torch.save's
    format) renamed `model.safetensors` is named as such, never unpickled."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    looks_safe = len(head) >= 9 and 2 <= n <= min(_MAX_HEADER, size - 8) and head[8:9] == b"{"
    # the format's shape first: a real safetensors whose header length is 0x..80 (or 0x..4B50) starts
    # with the same byte(s) as a pickle (or a zip), and must not be refused for it
    if not looks_safe and (head[:1] == b"\x80" or head[:2] == b"PK"):
        kind = "a pickle" if head[:1] == b"\x80" else "a zip/torch.save archive"
        raise ParameterError(f"checkpoint file {path} is {kind}, not safetensors; only safetensors are loaded")
    if not looks_safe:
        raise ParameterError(f"checkpoint file {path} is not a safetensors file (bad header); "
                             "only safetensors are loaded")
    with open(path, "rb") as f:
        f.seek(8)
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            header = None
    if not isinstance(header, dict):
        raise ParameterError(f"checkpoint file {path} has a corrupted safetensors header; only intact "
                             "safetensors checkpoints are loaded")


def _no_hf_bars() -> None:
    """transformers draws a progress bar per checkpoint written or loaded; a sweep saves and loads
    hundreds, and its own progress lines (`core.sweep`) are what a user watching a run needs."""
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()


def save_checkpoint(model, path, meta: dict | None = None, tokenizer=None) -> Path:
    """Write `model` (safetensors + config.json), `meta.json` and optionally the tokenizer to
    `path`, atomically: everything goes to a temporary sibling folder that is renamed into place,
    so a killed run leaves the previous checkpoint (or none), never half of one."""
    _no_hf_bars()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        with open(tmp / "meta.json", "w") as f:
            json.dump(meta or {}, f, indent=2, sort_keys=True, default=str)
        bad = [p.name for p in tmp.iterdir() if _is_pickle_name(p)]
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
    """Load a checkpoint written by `save_checkpoint`. Anything else is refused with one
    ParameterError line before a parser sees it: a folder holding pickle files (any case of the
    suffix), weights that are not safetensors (header checked first), a config.json that is not
    a JSON object. Nothing is ever unpickled."""
    from transformers import AutoModelForCausalLM

    _no_hf_bars()
    path = Path(path)
    if path.is_file():
        raise ParameterError(f"checkpoint {path} is a file; a checkpoint is a folder with model.safetensors "
                             "and config.json")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (config.json missing)")
    bad = sorted(p.name for p in path.iterdir() if _is_pickle_name(p))
    if bad:
        raise ParameterError(f"checkpoint {path} contains pickle files {bad}; only safetensors are loaded")
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ParameterError(f"checkpoint {path}: config.json is not valid JSON ({type(err).__name__}: "
                             f"{err})") from None
    if not isinstance(cfg, dict) or "model_type" not in cfg:
        raise ParameterError(f"checkpoint {path}: config.json is not a model config (no model_type)")
    weights = sorted(p for p in path.iterdir() if p.name.lower().endswith(".safetensors"))
    if not weights:
        raise ParameterError(f"checkpoint {path} has no model.safetensors; only safetensors are loaded")
    for w in weights:
        check_safetensors_header(w)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=dtype)
    except Exception as err:  # SafetensorError, OSError, ...: one line, never a traceback
        if isinstance(err, ParameterError):
            raise
        msg = " ".join(str(err).split())[:300]
        raise ParameterError(f"checkpoint {path} could not be loaded ({type(err).__name__}: {msg})") from None
    return model.to(device).eval()


def load_unit_checkpoint(key: str, device: str = "cpu", dtype=torch.float32):
    """The checkpoint a sweep unit wrote, by its unit key, verified first: `core.sweep.find_checkpoint`
    checks its weights against the sha256 in the unit's record (CorruptCheckpoint naming the file
    and the unit on a mismatch; the unit is redone on rerun), then `load_checkpoint` loads it. Every
    study loads the models it trained through this (routed ones through `routed.load_routed`,
    which takes the same verified path)."""
    from scalinglaws.core.sweep import find_checkpoint
    return load_checkpoint(find_checkpoint(key), device=device, dtype=dtype)


def load_meta(path) -> dict:
    with open(Path(path) / "meta.json") as f:
        return json.load(f)
