"""Published checkpoints: a few trained models shipped with the repository, so a reader can load and
score them (AutoModelForCausalLM, lm-eval) against the stored tables without retraining.

A study's checkpoints live in `.work/` (large, regenerable, never committed). `publish` copies the
chosen ones into `data/checkpoints/<study>/<profile>/<name>/` (safetensors weights, config, the
tokenizer) with `manifest.json`: per checkpoint the unit key it came from (the `checkpoint` / `unit`
column of the study's tables), its metadata and the sha256 of every file. `published` lists them and
`verified_path` checks a checkpoint's files against the manifest before anyone loads it, as the
corpora are checked on load.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from scalinglaws.core.paths import DATA_DIR
from scalinglaws.core.results import sha256_file
from scalinglaws.core.validation import ParameterError

MANIFEST = "manifest.json"
# what a reader needs to load and score a checkpoint; meta.json holds the unit config (provenance)
FILES = ("config.json", "generation_config.json", "meta.json", "model.safetensors", "tokenizer.json",
         "tokenizer_config.json")


def root(study: str, profile: str) -> Path:
    return DATA_DIR / "checkpoints" / study / profile


def publish(study: str, profile: str, entries: list[dict], results_commit: str, dest: Path | None = None) -> Path:
    """Copy checkpoints into the published folder and write its manifest (replacing both).

    entries: dicts with `name` (folder name), `source` (the checkpoint folder in .work), `unit` (its
    unit key) and any descriptive fields (size, experts, router...). Written to a temporary sibling
    and renamed into place, so a failure leaves the previous publication whole."""
    dest = Path(dest) if dest is not None else root(study, profile)
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise ParameterError(f"published checkpoint names must be unique: {names}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        manifest = {"study": study, "profile": profile, "results_commit": results_commit, "checkpoints": []}
        for e in entries:
            src, out = Path(e["source"]), tmp / e["name"]
            out.mkdir()
            missing = [f for f in FILES if not (src / f).is_file()]
            if missing:
                raise FileNotFoundError(f"checkpoint {src} lacks {missing}")
            for f in FILES:
                shutil.copyfile(src / f, out / f)
            info = {k: v for k, v in e.items() if k != "source"}
            info["sha256"] = {f: sha256_file(out / f) for f in FILES}
            manifest["checkpoints"].append(info)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def published(study: str, profile: str, base: Path | None = None) -> dict:
    """The manifest of a study's published checkpoints at a profile ({} when none are published)."""
    path = (Path(base) if base is not None else root(study, profile)) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def verified_path(study: str, profile: str, name: str, base: Path | None = None) -> Path:
    """The folder of a published checkpoint after checking every file's sha256 against the manifest;
    a missing or altered file is one ParameterError line naming it."""
    folder = Path(base) if base is not None else root(study, profile)
    manifest = published(study, profile, folder)
    entry = next((c for c in manifest.get("checkpoints", []) if c["name"] == name), None)
    if entry is None:
        known = [c["name"] for c in manifest.get("checkpoints", [])]
        raise ParameterError(f"no published {study}/{profile} checkpoint {name!r}; published: {known}")
    for f, digest in entry["sha256"].items():
        p = folder / name / f
        if not p.is_file() or sha256_file(p) != digest:
            raise ParameterError(f"published checkpoint {study}/{profile}/{name}: {f} is missing or does not match "
                                 "its sha256 in the manifest")
    return folder / name
