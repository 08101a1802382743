"""Where things live. The repository layout is fixed; results can be redirected (tests do)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]  # lib/scalinglaws/core/paths.py
DATA_DIR = REPO_ROOT / "data"
CORPORA_DIR = DATA_DIR / "corpora"
TOKENIZER_DIR = DATA_DIR / "tokenizer"
MANIFEST_PATH = DATA_DIR / "manifest.json"
WORK_DIR = REPO_ROOT / ".work"  # checkpoints and scratch: never committed


def results_root() -> Path:
    """Root of the result tables. `SCALINGLAWS_RESULTS` overrides it (the test suite writes
    its smoke runs to a scratch folder so the shipped results stay untouched)."""
    return Path(os.environ.get("SCALINGLAWS_RESULTS", DATA_DIR / "results"))


def work_root() -> Path:
    """Scratch space for checkpoints (large, regenerable). `SCALINGLAWS_WORK` overrides it."""
    return Path(os.environ.get("SCALINGLAWS_WORK", WORK_DIR))
