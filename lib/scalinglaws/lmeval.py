"""lm-eval glue: the per-domain held-out CE tasks, run fully offline on a saved checkpoint.

The package ships one task template (`lmeval_tasks/scalinglaws_ce_template.yaml`,
`output_type: loglikelihood_rolling`, metrics word_perplexity / byte_perplexity / bits_per_byte,
`dataset_path: json`). `write_tasks` instantiates it once per domain in a folder of task files
(task `scalinglaws_ce_<domain>`, `data_files` = the absolute path of the domain's split, since
lm-eval resolves relative paths against the working directory), and `run_lmeval` evaluates a
checkpoint on them with `TaskManager(include_path=..., include_defaults=False)` (no built-in task
indexing) and `lm_eval.simple_evaluate(model="hf", ...)`. `scalinglaws.evaluation` computes the
same numbers much faster; the tests hold the two to 1e-4 relative agreement. `run_lmeval_spec`
takes the `evaluation.EvalSpec` (protocol "documents") that `evaluation.evaluate` scores, so the
cross-check runs through the one evaluation API.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from scalinglaws.core.paths import CORPORA_DIR, TOKENIZER_DIR
from scalinglaws.core.validation import check_int

TASKS_DIR = Path(__file__).parent / "lmeval_tasks"
TEMPLATE = TASKS_DIR / "scalinglaws_ce_template.yaml"
TASK_PREFIX = "scalinglaws_ce_"


def split_path(domain: str, split: str = "test") -> Path:
    from scalinglaws.data.corpus import suffix  # .jsonl.gz for the original domains, .jsonl.xz for newer ones
    return CORPORA_DIR / domain / f"{split}{suffix(domain)}"


def write_tasks(domains, out_dir, split: str = "test", data_files: dict | None = None) -> list[str]:
    """Write one task YAML per domain into `out_dir` and return the task names.
    `data_files` maps a domain to its JSONL(.gz) file (default: the domain's `split`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for domain in domains:
        path = Path((data_files or {}).get(domain) or split_path(domain, split)).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no {split} split for domain {domain!r} at {path}")
        name = f"{TASK_PREFIX}{domain}"
        cfg = {"include": str(TEMPLATE.resolve()), "task": name,
               "dataset_kwargs": {"data_files": {"test": str(path)}}}
        (out_dir / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        names.append(name)
    return names


def _offline():
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")


def run_lmeval(checkpoint, domains, limit: int | None = None, *, split: str = "test",
               tokenizer_dir=None, data_files: dict | None = None, batch_size: int = 16,
               device: str = "cpu") -> pd.DataFrame:
    """Evaluate `checkpoint` with lm-eval's `hf` model on the domains' held-out splits.

    Returns one row per domain: domain, docs, bytes, nll_sum (sum of the per-document rolling
    log-likelihoods, negated), word_perplexity, byte_perplexity, bits_per_byte.
    `limit` keeps the first `limit` documents per domain. The tokenizer defaults to the one
    saved in the checkpoint, else data/tokenizer/.
    """
    _offline()
    import lm_eval
    from lm_eval.tasks import TaskManager

    checkpoint = Path(checkpoint)
    if not (checkpoint / "config.json").is_file():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    if limit is not None:
        check_int("limit", limit, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    if tokenizer_dir is None:
        tokenizer_dir = checkpoint if (checkpoint / "tokenizer.json").is_file() else TOKENIZER_DIR
    domains = list(domains)
    with tempfile.TemporaryDirectory(prefix="scalinglaws_lmeval_") as tmp:
        names = write_tasks(domains, tmp, split=split, data_files=data_files)
        tm = TaskManager(include_path=tmp, include_defaults=False)
        out = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={checkpoint},tokenizer={tokenizer_dir},dtype=float32",
            tasks=names, task_manager=tm, limit=limit, batch_size=batch_size, device=device,
            log_samples=True, bootstrap_iters=0, verbosity="ERROR")
    rows = []
    for domain, name in zip(domains, names):
        res, samples = out["results"][name], out["samples"][name]
        n_bytes = sum(len(s["doc"]["text"].encode("utf-8")) for s in samples)
        nll = -sum(float(s["resps"][0][0]) for s in samples)
        rows.append({"domain": domain, "docs": len(samples), "bytes": n_bytes, "nll_sum": nll,
                     "word_perplexity": res["word_perplexity,none"],
                     "byte_perplexity": res["byte_perplexity,none"],
                     "bits_per_byte": res["bits_per_byte,none"]})
    df = pd.DataFrame(rows)
    for r in df.itertuples():  # lm-eval's aggregate must match its own per-document results
        if not math.isclose(r.bits_per_byte, r.nll_sum / (r.bytes * math.log(2)), rel_tol=1e-9):
            raise RuntimeError(f"lm-eval bits_per_byte {r.bits_per_byte} disagrees with its samples "
                               f"for {r.domain}")
    return df


def run_lmeval_spec(checkpoint, spec, *, tokenizer_dir=None, device: str = "cpu") -> pd.DataFrame:
    """`run_lmeval` on an `evaluation.EvalSpec` of protocol "documents" (its domains, split,
    max_docs and batch): lm-eval's own numbers for the spec that `evaluation.evaluate` scores,
    the cross-check of the one evaluation API. Uniform windows have no lm-eval task: refused."""
    from scalinglaws.core.validation import ParameterError
    from scalinglaws.evaluation import EvalSpec
    if not isinstance(spec, EvalSpec) or spec.protocol != "documents":
        raise ParameterError("run_lmeval_spec needs an EvalSpec with protocol='documents' "
                             "(lm-eval scores whole documents, not uniform windows)")
    return run_lmeval(checkpoint, list(spec.domains), limit=spec.max_docs, split=spec.split,
                      tokenizer_dir=tokenizer_dir, batch_size=spec.batch or 16, device=device)
