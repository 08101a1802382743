"""Published checkpoints: the manifest guards every file, and the routing checkpoints shipped with the
repository load with AutoModelForCausalLM and score, under lm-eval, what the stored tables say."""
from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM

from scalinglaws import models as M
from scalinglaws.core import published as PUB
from scalinglaws.core.paths import DATA_DIR
from scalinglaws.core.results import ResultStore
from scalinglaws.core.validation import ParameterError
from scalinglaws.data import tokenizer as TK


def test_publish_copies_verifies_and_refuses_an_altered_file(tmp_path):
    src = tmp_path / "work" / "ckpt"
    M.save_checkpoint(M.build_model("d16l1", seed=0), src, meta={"unit": {"size": "d16l1"}},
                      tokenizer=TK.load_tokenizer())
    dest = tmp_path / "published"
    PUB.publish("demo", "smoke", [{"name": "d16l1-dense", "source": str(src), "unit": "abc", "size": "d16l1"}],
                results_commit="c0ffee", dest=dest)
    man = PUB.published("demo", "smoke", dest)
    assert man["results_commit"] == "c0ffee" and man["checkpoints"][0]["unit"] == "abc"
    assert set(man["checkpoints"][0]["sha256"]) == set(PUB.FILES)
    path = PUB.verified_path("demo", "smoke", "d16l1-dense", dest)
    assert M.load_checkpoint(path).config.hidden_size == M.model_config("d16l1").hidden_size
    with pytest.raises(ParameterError, match="no published demo/smoke checkpoint 'x'"):
        PUB.verified_path("demo", "smoke", "x", dest)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ParameterError, match="model.safetensors is missing or does not match") as e:
        PUB.verified_path("demo", "smoke", "d16l1-dense", dest)
    assert len(str(e.value).splitlines()) == 1
    with pytest.raises(ParameterError, match="unique"):
        PUB.publish("demo", "smoke", [{"name": "a", "source": str(src), "unit": "1"}] * 2, "c", dest=dest)
    assert PUB.published("demo", "smoke", dest)["checkpoints"][0]["name"] == "d16l1-dense"  # left whole


def _routing_cpu():
    man = PUB.published("routing", "cpu")
    assert man, "data/checkpoints/routing/cpu holds no manifest: run scripts/publish_routing_checkpoints.py"
    return man


def test_published_routing_checkpoints_belong_to_the_stored_results():
    """The manifest names units of the stored cpu run (a rerun without republishing fails here)."""
    man = _routing_cpu()
    store = ResultStore("routing", "cpu", root=DATA_DIR / "results")  # the shipped results
    assert man["results_commit"] == store.provenance()["commit"]
    units = set(store.read("models")["unit"])
    assert {c["unit"] for c in man["checkpoints"]} <= units
    routers = {c["router"] for c in man["checkpoints"]}
    assert routers == {"dense", "sbase", "rlr", "hash", "switch", "vocab"}  # the vocab control too


@pytest.mark.parametrize("router", ["dense", "sbase", "rlr", "hash", "switch", "vocab"])
def test_published_routing_checkpoint_scores_the_stored_ce_under_lm_eval(router, one_thread):
    from scalinglaws.lmeval import run_lmeval
    from scalinglaws.models import routed as RT
    man = _routing_cpu()
    entry = next(c for c in man["checkpoints"] if c["router"] == router)
    path = PUB.verified_path("routing", "cpu", entry["name"])
    m = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    if router == "dense":
        assert not isinstance(m, RT.RoutedForCausalLM)
    else:  # its own registered class and router (or control), never the stock Mixtral one
        assert isinstance(m, RT.RoutedForCausalLM) and m.config.router == router
        assert m.config.num_local_experts == entry["experts"]
    assert json.loads((path / "meta.json").read_text())["unit"]["router"] == router
    store = ResultStore("routing", "cpu", root=DATA_DIR / "results")  # the shipped results
    docs = store.read("ce_documents")
    docs = docs[docs["checkpoint"] == entry["unit"]].set_index("domain")
    domains = ["code", "math"]
    got = run_lmeval(path, domains, limit=store.provenance()["config"]["eval_docs"], batch_size=4).set_index("domain")
    for d in domains:
        assert got.loc[d, "docs"] == docs.loc[d, "docs"]
        assert got.loc[d, "nll_sum"] == pytest.approx(docs.loc[d, "nll_sum"], rel=1e-4)
