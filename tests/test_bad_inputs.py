"""Bad inputs, as a new user would type them, at every entry point: the CLI, each study's `run()`,
the notebook guard (what papermill injects), `merge()` and `load_checkpoint`.

Each row must end in one clear line (exit non-zero for the CLI; ParameterError elsewhere) that
names the parameter, and nothing may be written under the results or work roots.
"""
import json
import shutil
import struct
from pathlib import Path

import pytest
import torch

from scalinglaws.cli import main
from scalinglaws.core import paths
from scalinglaws.core.validation import ParameterError
from scalinglaws.studies import get_study, notebook_params

# ---------------------------------------------------------------------------- the table
# (entry, arguments, text the one-line message must contain)

CLI = [  # python -m scalinglaws ...
    (["reproduce", "merging", "--profile", "smoke", "-p", 'pools={"related": "code"}'], "pools"),
    (["reproduce", "merging", "--profile", "smoke", "-p", 'pools={"related": ["code", "poetry"]}'], "pools"),
    (["reproduce", "merging", "--profile", "smoke", "-p", "pilot_lrs=[0.001, -1]"], "pilot_lrs"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", 'domains="code"'], "domains"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", 'sizes="d16l1"'], "sizes"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "sizes=d16l1"], "sizes"),
    (["reproduce", "merging", "--profile", "smoke", "--backend", "dask"], "backend"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "size=[\"d9999\"]"], "unknown parameter"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "sizes=[\"d9999\"]"], "sizes"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "lr=fast"], "lr"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "seed=-1"], "seed"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "seed=1.5"], "seed"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "eval_tokens=0"], "eval_tokens"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "lrs=[]"], "lrs"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "lrs=[0.01, 2.0]"], "lrs entry"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "lrs=[0.01, 0.01]"], "duplicates"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", 'lr={"d16l1": 0.01}'], "missing ['d24l2']"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", 'lr={"d16l1": 0.01, "d24l2": 0}'], "lr[d24l2]"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "pretrain_tokens=100000000"], "epochs per domain"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", 'domains=["klingon"]'], "domains"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", "domains=[]"], "domains"),
    (["reproduce", "testbed", "--profile", "smoke", "-p", 'domains=["code","code"]'], "domains"),
    (["reproduce", "testbed", "--profile", "huge"], "profile"),
    (["reproduce", "routing_typo", "--profile", "smoke"], "study"),
    (["reproduce", "merging", "--profile", "smoke", "-p", 'methods="average"'], "methods"),
    (["reproduce", "merging", "--profile", "smoke", "-p", 'methods=["avg"]'], "methods"),
    (["reproduce", "merging", "--profile", "smoke", "-p", "n_permutations=1"], "n_permutations"),
    (["reproduce", "resource", "--profile", "smoke", "-p", 'tasks="square"'], "tasks"),
    (["reproduce", "resource", "--profile", "smoke", "--backend", "slurm"], "backend"),
    (["fit", "nosuchlaw", "x.csv"], "law"),
    (["fit", "merging", "/nonexistent/curves.parquet"], "curves.parquet"),
    (["data", "verify", "--data-dir", "/nonexistent/data"], "nonexistent"),
]

RUN = [  # study.run(profile, backend, **overrides)
    ("merging", "smoke", "dask", {}, "backend"),
    ("merging", "smoke", "local", {"pools": {"related": "code"}}, "pools"),
    ("merging", "smoke", "local", {"pools": {"related": ["code"]}}, "2 to 12"),
    ("merging", "smoke", "local", {"pools": {"related": ["code", "poetry"]}}, "poetry"),
    ("merging", "smoke", "local", {"pools": ["code", "legal"]}, "pools"),
    ("merging", "smoke", "local", {"pools": {"bad name": ["code", "legal"]}}, "pool name"),
    ("merging", "smoke", "local", {"pilot_lrs": []}, "pilot_lrs"),
    ("merging", "smoke", "local", {"pilot_lrs": [float("nan")]}, "pilot_lrs"),
    ("merging", "smoke", "local", {"pilot_lrs": [1e-3, 1e-3]}, "pilot_lrs"),
    ("merging", "smoke", "local", {"pilot_token_mults": [0]}, "pilot_token_mults"),
    ("merging", "smoke", "local", {"pilot_token_mults": "4"}, "pilot_token_mults"),
    ("merging", "smoke", "local", {"pilot_seeds": 0}, "pilot_seeds"),
    ("merging", "smoke", "local", {"pilot_size": "d9999"}, "pilot_size"),
    ("merging", "smoke", "local", {"pilot_domains_per_pool": 9}, "pilot_domains_per_pool"),
    ("merging", "smoke", "local", {"pilot_max_forgetting": -0.1}, "pilot_max_forgetting"),
    ("merging", "smoke", "local", {"ft_base_tokens": 10}, "ft_base_tokens"),
    ("merging", "smoke", "local", {"fit_r2_min": 1.5}, "fit_r2_min"),
    ("merging", "smoke", "local", {"noise_bootstrap": 1}, "noise_bootstrap"),
    ("merging", "smoke", "local", {"tail_bootstrap": -1}, "tail_bootstrap"),
    ("merging", "smoke", "local", {"sizes": "d16l1"}, "sizes"),
    ("merging", "smoke", "local", {"methods": ["nope"]}, "methods"),
    ("merging", "smoke", "local", {"full_enumeration": "d16l1"}, "full_enumeration"),
    ("merging", "smoke", "local", {"full_enumeration": ["d9999"]}, "full_enumeration"),
    ("merging", "smoke", "local", {"fit_scopes": "variance"}, "fit_scopes"),
    ("merging", "smoke", "local", {"multitask": [["d9999", 2]]}, "multitask"),
    ("merging", "smoke", "local", {"multitask": [[0, 2, 3]]}, "multitask"),
    ("merging", "smoke", "local", {"eval_tokens_per_domain": 8}, "eval_tokens_per_domain"),
    ("merging", "smoke", "local", {"chunk_size": 0}, "chunk_size"),
    ("merging", "smoke", "local", {"bootstrap": -1}, "bootstrap"),
    ("merging", "smoke", "local", {"ft_warmup_frac": 2.0}, "ft_warmup_frac"),
    ("merging", "smoke", "local", {"ft_lr": 1e-3}, "unknown parameter"),
    ("merging", "smoke", "local", {"seed": "0"}, "seed"),
    ("merging", "smoke", "local", {"lr": 1e-3}, "unknown parameter"),
    ("merging", "tpu", "local", {}, "profile"),
    ("testbed", "smoke", "local", {"domains": "code"}, "domains"),
    ("testbed", "smoke", "local", {"sizes": "d16l1"}, "sizes"),
    ("testbed", "smoke", "local", {"sizes": ["d16l1", "d16l1"]}, "sizes"),
    ("testbed", "smoke", "local", {"sizes": [["d16l1"]]}, "sizes"),
    ("testbed", "smoke", "local", {"sizes": None}, "sizes"),
    ("testbed", "smoke", "local", {"batch_tokens": 16}, "batch_tokens"),
    ("testbed", "smoke", "local", {"warmup_frac": 1.5}, "warmup_frac"),
    ("testbed", "smoke", "local", {"grad_clip": -1.0}, "grad_clip"),
    ("testbed", "smoke", "local", {"eval_tokens": 2.5}, "eval_tokens"),
    ("testbed", "smoke", "local", {"lr": {"d16l1": 0.01, "d24l2": "fast"}}, "lr[d24l2]"),
    ("testbed", "smoke", "local", {"eval_bootstrap": 1}, "eval_bootstrap"),
    ("testbed", "smoke", "ray ", {}, "backend"),
    ("testbed", "smoke", None, {}, "backend"),
    ("resource", "smoke", "dask", {}, "backend"),
    ("resource", "smoke", "local", {"tasks": "square"}, "tasks"),
    ("resource", "smoke", "local", {"activations": ["gelu9"]}, "activations"),
    ("resource", "smoke", "local", {"widths": [8]}, "widths"),
    ("resource", "smoke", "local", {"threshold": 0.5}, "threshold"),
    ("resource", "smoke", "local", {"lm_domains": "math"}, "lm_domains"),
    ("resource", "smoke", "local", {"lm_domains": ["poetry"]}, "lm_domains"),
    ("resource", "smoke", "local", {"compositions": ["diagonal"]}, "compositions"),
    ("resource", "smoke", "local", {"lr": 0.0}, "lr"),
    ("resource", "smoke", "local", {"width": [8, 16]}, "unknown parameter"),
    ("della", "smoke", "dask", {}, "backend"),
    ("della", "smoke", "local", {"p_grid": [0.5, 1.0]}, "p_grid"),
    ("della", "smoke", "local", {"eps_grid": "0.1"}, "eps_grid"),
    ("della", "smoke", "local", {"lam_grid": [float("nan")]}, "lam_grid"),
    ("della", "smoke", "local", {"elect": [1, 0]}, "elect"),
    ("della", "smoke", "local", {"roles": {"lm": "poetry", "math": "algebra", "code": "code"}}, "roles"),
    ("della", "smoke", "local", {"combos": [["lm", "lm"]]}, "combos"),
    ("della", "smoke", "local", {"ranks": ["column"]}, "ranks"),
    ("della", "smoke", "local", {"rescales": ["l2"]}, "rescales"),
    ("della", "smoke", "local", {"ablation_eps": 0.0}, "ablation_eps"),
    ("della", "smoke", "local", {"seq_len": 4096}, "seq_len"),
    ("della", "smoke", "local", {"window": 0.14}, "unknown parameter"),
]

NOTEBOOK = [  # what papermill leaves in the notebook's namespace before the guard cell
    ("testbed", {"profile": "smoke", "backend": "local", "overrides": {}, "size": ["d9999"]}, "size"),
    ("testbed", {"profile": "smoke", "backend": "local", "overrides": {}, "sizes": ["d9999"]}, "sizes"),
    ("testbed", {"profile": "smoke", "backend": "local", "overrides": {}, "profle": "cpu"}, "profle"),
    ("testbed", {"profile": "smoke", "backend": "local", "overrides": {"size": ["d16l1"]}}, "unknown parameter"),
    ("testbed", {"profile": "smoke", "backend": "local", "overrides": '{"sizes": ["d16l1"]}'}, "overrides"),
    ("testbed", {"profile": "smoke", "backend": "dask", "overrides": {}}, "backend"),
    ("testbed", {"profile": "tiny", "backend": "local", "overrides": {}}, "profile"),
    ("merging", {"profile": "smoke", "backend": "local", "overrides": {}, "pools": "code"}, "pools"),
    ("merging", {"profile": "smoke", "backend": "local", "overrides": {"seed": 1}, "seed": 2}, "seed"),
    ("resource", {"profile": "smoke", "backend": "local", "overrides": {}, "seeds": "2"}, "seeds"),
    ("della", {"profile": "smoke", "backend": "local", "overrides": {}, "p_grid": "0.5"}, "p_grid"),
]


def _states():
    base = {"w": torch.zeros(3, 2)}
    return base, [{"w": torch.ones(3, 2)}, {"w": -torch.ones(3, 2)}]


MERGE = [  # merge(base, experts, method, **options)
    (lambda b, e: ("nosuch", {}), "method"),
    (lambda b, e: ("ties", {"density": 1.5}), "density"),
    (lambda b, e: ("ties", {"densty": 0.5}), "densty"),
    (lambda b, e: ("task_arithmetic", {"lam": float("inf")}), "lam"),
    (lambda b, e: ("average", {"seed": -1}), "seed"),
    (lambda b, e: ("della", {"rank": "column"}), "rank"),
    (lambda b, e: ("dare", {"rank": "row"}), "rank"),
]


def _ckpt_bin_upper(d: Path):
    (d / "pytorch_model.BIN").write_bytes(b"\x80\x04K.")


def _ckpt_pickle_named_safetensors(d: Path):
    (d / "model.safetensors").write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00K.")


def _ckpt_zip_named_safetensors(d: Path):
    (d / "model.safetensors").write_bytes(b"PK\x03\x04" + b"\x00" * 60)


def _ckpt_truncated_header(d: Path):
    (d / "model.safetensors").write_bytes(struct.pack("<Q", 10_000) + b'{"a"')


def _ckpt_garbage_header(d: Path):
    body = b"[1,2,3]   "
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(body)) + body)


def _ckpt_broken_config(d: Path):
    (d / "config.json").write_text('{"model_type": "llama", ')


def _ckpt_no_model_type(d: Path):
    (d / "config.json").write_text('{"hidden_size": 8}')


def _ckpt_no_weights(d: Path):
    (d / "model.safetensors").unlink()


CHECKPOINT = [
    (_ckpt_bin_upper, "pickle"),
    (_ckpt_pickle_named_safetensors, "pickle"),
    (_ckpt_zip_named_safetensors, "zip"),
    (_ckpt_truncated_header, "safetensors"),
    (_ckpt_garbage_header, "safetensors"),
    (_ckpt_broken_config, "config.json"),
    (_ckpt_no_model_type, "config.json"),
    (_ckpt_no_weights, "safetensors"),
]

N_BAD_INPUTS = len(CLI) + len(RUN) + len(NOTEBOOK) + len(MERGE) + len(CHECKPOINT) + 4  # + corpus rows


def test_the_table_is_large_enough():
    assert N_BAD_INPUTS >= 7 + 40


# ---------------------------------------------------------------------------- checks

def _nothing_written(roots):
    res, work = roots
    assert not res.exists(), sorted(res.rglob("*"))
    assert not work.exists(), sorted(work.rglob("*"))


def _one_line(msg: str, must: str):
    assert len(msg.strip().splitlines()) == 1, msg
    assert must.lower() in msg.lower(), (must, msg)


@pytest.mark.parametrize("argv, must", CLI, ids=[" ".join(a) for a, _ in CLI])
def test_cli(scratch_roots, capsys, argv, must):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("error:"), err
    _one_line(err, must)
    _nothing_written(scratch_roots)


@pytest.mark.parametrize("study, profile, backend, overrides, must", RUN,
                         ids=[f"{s}-{b}-{o}" for s, _, b, o, _ in RUN])
def test_run(scratch_roots, study, profile, backend, overrides, must):
    with pytest.raises(ParameterError) as err:
        get_study(study).run(profile, backend=backend, **overrides)
    _one_line(str(err.value), must)
    _nothing_written(scratch_roots)


@pytest.mark.parametrize("study, namespace, must", NOTEBOOK, ids=[f"{s}-{sorted(n)}" for s, n, _ in NOTEBOOK])
def test_notebook_guard(scratch_roots, study, namespace, must):
    ns = {"__name__": "__main__", "In": [], "Out": {}, "_": None, "json": json, **namespace}
    with pytest.raises(ParameterError) as err:
        notebook_params(study, ns)
    _one_line(str(err.value), must)
    _nothing_written(scratch_roots)


def test_notebook_guard_accepts_declared_and_study_parameters(scratch_roots):
    ns = {"profile": "smoke", "backend": "local", "overrides": {"seed": 1}, "sizes": ["d16l1"], "In": []}
    assert notebook_params("testbed", ns) == ("smoke", "local", {"seed": 1, "sizes": ["d16l1"]})
    _nothing_written(scratch_roots)


def test_notebooks_call_the_guard_right_after_parameters():
    for nb_path in sorted((paths.REPO_ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        cells = nb["cells"]
        i = next(k for k, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
        assert "notebook_params(" in "".join(cells[i + 1]["source"]), nb_path
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), nb_path


@pytest.mark.parametrize("make, must", MERGE, ids=[m for _, m in MERGE])
def test_merge(make, must):
    from scalinglaws.merge import merge
    base, experts = _states()
    method, opts = make(base, experts)
    seed = opts.pop("seed", 0)
    with pytest.raises(ParameterError) as err:
        merge(base, experts, method, seed=seed, **opts)
    _one_line(str(err.value), must)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    from scalinglaws import models as M
    d = tmp_path_factory.mktemp("ckpt") / "good"
    M.save_checkpoint(M.build_model(M.ladder("smoke")[0]), d, meta={})
    return d


@pytest.mark.parametrize("spoil, must", CHECKPOINT, ids=[f.__name__ for f, _ in CHECKPOINT])
def test_load_checkpoint(good_checkpoint, tmp_path, spoil, must):
    from scalinglaws.models import load_checkpoint
    d = tmp_path / "ckpt"
    shutil.copytree(good_checkpoint, d)
    spoil(d)
    with pytest.raises(ParameterError) as err:
        load_checkpoint(d)
    _one_line(str(err.value), must)


def test_good_checkpoint_still_loads(good_checkpoint):
    from scalinglaws.models import load_checkpoint
    assert load_checkpoint(good_checkpoint) is not None


# ---------------------------------------------------------------------------- a corrupted corpus

@pytest.fixture
def corrupted_data(tmp_path, monkeypatch):
    """A copy of the shipped data folder with one corpus file corrupted (code/pretrain)."""
    from scalinglaws.data import corpus
    src = paths.DATA_DIR
    dst = tmp_path / "data"
    dst.mkdir()
    shutil.copy(src / "manifest.json", dst / "manifest.json")
    shutil.copytree(src / "corpora", dst / "corpora")
    shutil.copytree(src / "tokenizer", dst / "tokenizer")
    f = dst / "corpora" / "code" / "pretrain.jsonl.gz"
    blob = bytearray(f.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    f.write_bytes(bytes(blob))
    monkeypatch.setattr(paths, "DATA_DIR", dst)
    corpus._VERIFIED.clear()
    yield dst
    corpus._VERIFIED.clear()


@pytest.mark.parametrize("entry", ["cli-testbed", "cli-merging", "run-testbed", "notebook-merging"])
def test_corrupted_corpus(scratch_roots, corrupted_data, capsys, entry):
    kind, study = entry.split("-")
    if kind == "cli":
        assert main(["reproduce", study, "--profile", "smoke", "--no-notebook"]) == 2
        msg = capsys.readouterr().err
    else:
        with pytest.raises(ParameterError) as err:
            if kind == "run":
                get_study(study).run("smoke")
            else:
                notebook_params(study, {"profile": "smoke", "backend": "local", "overrides": {}})
        msg = str(err.value)
    _one_line(msg, "checksum mismatch")
    assert "pretrain.jsonl.gz" in msg
    _nothing_written(scratch_roots)
