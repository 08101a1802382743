"""Routing's evaluation units go through the one evaluation API (`evaluation.EvalSpec`) and give
bit-identical records to the primitives they replaced (uniform windows + window_loss_sums +
bootstrap_domain_ce per domain; evaluate_domains for whole documents)."""
import torch

from scalinglaws import evaluation as EV
from scalinglaws.data import tokenizer as TK
from scalinglaws.models import routed as RT
from scalinglaws.studies.routing import units as RU


def test_routing_eval_units_equal_the_primitives(monkeypatch, one_thread):
    torch.manual_seed(0)
    model = RT.build_routed("d32l2", 4, "sbase", seed=0)
    model = RT.build_routed("d32l2", 4, "sbase", seed=0)
    monkeypatch.setattr(RU.RT, "load_routed", lambda *a, **k: model)
    monkeypatch.setattr(RU.SW, "find_checkpoint", lambda key: "x")
    doms = ["arithmetic", "code"]
    cfg = {"checkpoint": "x", "domains": doms, "tokens_per_domain": 2048, "seed": 3, "split": "test", "bootstrap": 50}
    new = RU._evaluate(cfg, batch_size=8)
    old = []
    for d in doms:
        model.reset_routing_stats()
        w, dom = EV.uniform_windows([d], 2048, seq_len=model.config.max_position_embeddings, seed=3, split="test")
        nll = EV.window_loss_sums(model, w, chunk=8)
        df = EV.bootstrap_domain_ce(nll, w, dom, [d], n_boot=50, seed=3)
        row = {k: df.iloc[0][k] for k in ("domain", "windows", "tokens", "bytes", "nll_sum", "ce", "ce_se", "bpb")}
        row["routing"] = model.routing_stats()
        old.append(row)
    for a, b in zip(old, new):
        for k in a:
            assert (a[k] == b[k]) if not isinstance(a[k], float) else a[k] == b[k], (k, a[k], b[k])
    assert [r["domain"] for r in new] == doms and all(r["routing"] for r in new)
    dcfg = {"checkpoint": "x", "domains": doms, "split": "test", "max_docs": 3}
    n2 = RU._evaluate_docs(dcfg, batch_size=8)
    o2 = EV.evaluate_domains(model, TK.load_tokenizer(), doms, split="test", max_docs=3, batch_size=8, device="cpu").to_dict("records")
    assert n2 == o2, (n2, o2)
