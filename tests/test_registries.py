"""The router and profile registries are the one source of their facts: a router or a profile added
to a temporary registry (monkeypatched, nothing left behind) is picked up by the routing and testbed
smoke paths, the routing tables, figures, chapter and claims, the profile checks and the
best-available order, with no other file touched (ARCHITECTURE.md, "Where things go")."""
from __future__ import annotations

import json

import pytest
import torch

from scalinglaws import studies as ST
from scalinglaws.core import claims as CL
from scalinglaws.core import profiles as PR
from scalinglaws.core import results as RES
from scalinglaws.core import sweep as SW
from scalinglaws.core.validation import ParameterError, check_profile, check_profile_keys
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as R




class ArgmaxRouter(R.Router):
    """A dummy router: top-1 of the logits, gate 1 (so the router learns nothing; enough to route)."""

    kind = "dummy"
    display = "Dummy argmax"
    gate_one = True
    options = (R.LR_MULT_OPTION,)

    @classmethod
    def from_config(cls, config, layer_idx):
        return cls(config.hidden_size, config.num_local_experts, lr_mult=config.router_lr_mult)

    def forward(self, x, token_ids=None):
        logits = self.router_logits(x)
        index = logits.argmax(dim=-1)
        return R.Route(index, torch.ones(index.shape, dtype=torch.float32, device=x.device), logits)


TINY = PR.Profile("tiny", "a test's profile: the smoke ladder's smallest size, a few steps",
                  PR.REGISTRY["smoke"].ladder[:1], pretrain_tokens=2048, finetune_cap=1024, lr_grid=(3e-3,),
                  rank=9, claims_testable=False, why_not_testable="tiny profile: a test's pipeline check")


@pytest.fixture
def registries(monkeypatch):
    """The dummy router and the tiny profile, registered for one test (monkeypatch undoes it)."""
    from scalinglaws.studies.routing import config as RC
    from scalinglaws.studies.testbed import study as TS
    monkeypatch.setitem(R.ROUTER_CLASSES, ArgmaxRouter.kind, ArgmaxRouter)
    monkeypatch.setitem(PR.REGISTRY, TINY.name, TINY)
    size = "d16l1"
    # one entry in each study's PROFILES: the tiny budgets of the two smoke paths
    tb = {**TS.PROFILES["smoke"], "sizes": [size], "lrs": [3e-3], "pretrain_tokens": 2048, "batch_tokens": 1024,
          "eval_tokens": 128, "domains": ["code", "legal"], "eval_bootstrap": 10, "step_check": None}
    rt = {**RC.PROFILES["smoke"], "sizes": ["d16l1", "d24l2"], "experts": [1, 2, 4], "routers": ["hash", "dummy"],
          "tokens": 2048, "batch_tokens": 1024, "domains": ["code", "legal"], "eval_tokens": 128,
          "eval_bootstrap": 10, "eval_docs": 1, "bootstrap": 10, "fit_maxiter": 50, "step_check": None}
    monkeypatch.setitem(TS.PROFILES, TINY.name, tb)  # (the packages export these very dicts)
    monkeypatch.setitem(RC.PROFILES, TINY.name, rt)
    yield size


def test_a_router_declares_its_facts_and_everything_else_derives_them(registries):
    assert RT.kinds() == ("sbase", "rlr", "hash", "switch", "dummy", "vocab")
    assert RT.display_names()["dummy"] == "Dummy argmax"
    assert "dummy" in R.gate_one_routers() and "dummy" in R.learned_routers()
    # options: every one checked by its declaration, one line
    with pytest.raises(ParameterError, match=r"^router_lr_mult=0.0 must lie in \(0.0, 1000.0\)$"):
        RT.routed_config("d16l1", 2, "dummy", router_lr_mult=0.0)
    with pytest.raises(ParameterError, match=r"unknown router option\(s\) \['nope'\]"):
        RT.routed_config("d16l1", 2, "dummy", nope=1)
    model = RT.build_routed("d16l1", 2, "dummy")
    assert RT.param_counts(model.config)["router"] == 2 * 16  # learned: one W (E x d) per routed block


def test_a_profile_declares_its_facts_and_every_check_reads_them(registries):
    assert PR.names()[-1] == "tiny" and PR.best_first()[0] == "tiny" and PR.best() == "tiny"
    assert check_profile("tiny") == "tiny"
    assert not PR.claims_testable("tiny") and PR.default() == "cpu"
    # a per-profile dict is validated against the registry: an unknown key, or (complete) a missing one
    with pytest.raises(ParameterError, match=r"CELLS is keyed by profile: \['huge'\] not in the registry"):
        check_profile_keys("CELLS", {"smoke": [], "huge": []})
    with pytest.raises(ParameterError, match=r"no entry for \['tiny'\]"):
        check_profile_keys("merging PROFILES", ST.get_study("merging").PROFILES, complete=True)
    # claims at a profile where they are not testable: every verdict 'not testable', the note says why
    row = {"claim_id": "c", "paper": "p", "claim": "text", "measure": "m", "value": float("nan"),
           "lo": float("nan"), "hi": float("nan"), "verdict": "inconclusive", "figure": "",
           "note": f"no fit; {CL.TO_DECIDE}a fit"}
    assert set(CL.frame([row], "cpu")["verdict"]) == {"inconclusive"}
    df = CL.frame([row], "tiny")
    assert set(df["verdict"]) == {"not testable"} and df["note"][0].startswith("tiny profile: a test's pipeline check")


def test_the_dummy_router_and_profile_run_the_testbed_and_routing_smoke_paths(registries, scratch_roots, one_thread):
    testbed, routing = ST.get_study("testbed"), ST.get_study("routing")
    tb = testbed.run("tiny")
    assert tb.read("ladder")["size"].tolist() == [registries]
    store = routing.run("tiny")
    loss = store.read("loss")
    assert sorted(set(loss["router"])) == ["dense", "dummy", "hash"]
    fits = store.read("fits")
    assert "dummy" in set(fits["router"])
    # the figure, the chapter and the claims name it by its declared display name
    from scalinglaws.studies.routing import chapter as CH
    from scalinglaws.studies.routing import figures as F
    fig = F.loss_vs_experts(loss, fits)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()] == ["Hash", "Dummy argmax"]
    assert list(CH.gap_at_top_e(loss).index) == ["hash", "dummy"]
    claims = store.read("claims")
    assert any("Dummy argmax" in m for m in claims["measure"]) and set(claims["verdict"]) == {"not testable"}
    # the tiny profile is now the best available one
    assert RES.available_profiles("routing") == ["tiny"] and RES.open_store("routing").profile == "tiny"
    # and its unit keys are those of the router's config (nothing outside the registry was told)
    rec = json.loads(next((SW.Sweep("routing", "tiny").dir / "routed").glob("*.json")).read_text())
    assert SW.Unit(rec["kind"], rec["config"]).key == rec["key"]


def test_nothing_is_left_behind():
    """(Runs after the tests above.) The temporary router and profile are gone from every registry."""
    from scalinglaws.studies.routing import config as RC
    from scalinglaws.studies.testbed import study as TS
    assert "dummy" not in R.ROUTER_CLASSES and "dummy" not in RT.kinds()
    assert "tiny" not in PR.REGISTRY and "tiny" not in TS.PROFILES and "tiny" not in RC.PROFILES


def test_architecture_md_names_exactly_the_files_a_profile_and_a_router_touch():
    """The "Where things go" rows for a profile and a router name the registry's file, and the profile
    row names the file of every study's `PROFILES` (found from the code, so moving one fails here)."""
    import ast
    import importlib
    import pkgutil
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (a profile|a router) \| (.*?) \|",
                                                          (repo / "ARCHITECTURE.md").read_text(), re.M)}
    named = {k: set(re.findall(r"`(lib/scalinglaws/[\w/]+\.py)`", v)) for k, v in rows.items()}
    assert named["a router"] == {"lib/scalinglaws/models/routers.py"}
    defining = set()
    for study in ST.study_names():
        pkg = importlib.import_module(f"scalinglaws.studies.{study}")
        for m in pkgutil.iter_modules(pkg.__path__):
            path = Path(pkg.__path__[0]) / f"{m.name}.py"
            if path.exists() and any(isinstance(n, (ast.Assign, ast.AnnAssign)) and "PROFILES" in
                                     [t.id for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                                      if isinstance(t, ast.Name)]
                                     for n in ast.parse(path.read_text()).body):
                defining.add(str(path.relative_to(repo)))
    assert named["a profile"] == {"lib/scalinglaws/core/profiles.py"} | defining
    for f in named["a profile"] | named["a router"]:
        assert (repo / f).exists(), f


def test_command_tables_are_recorded_by_their_commands_and_none_is_stale():
    """A table declared as made by a study's own commands (`studies.command_tables`) carries that
    command's record in the store's provenance (`derived.<table>`, or listed in an entry's `tables`)
    wherever it is stored, and every declared name is stored at some profile (a renamed table would
    otherwise leave a stale declaration that hides a missing one from the gpu rehearsal)."""
    import json

    from scalinglaws.core.paths import DATA_DIR
    from scalinglaws.studies import command_tables, study_names
    for study in study_names():
        declared, seen = command_tables(study), set()
        for prov_path in sorted((DATA_DIR / "results" / study).glob("*/provenance.json")):
            entries = json.loads(prov_path.read_text()).get("derived", {})
            recorded = set(entries) | {t for e in entries.values() for t in e.get("tables", [])}
            stored = {p.stem for p in prov_path.parent.glob("*.parquet")} & declared
            assert stored <= recorded, f"{prov_path}: {sorted(stored - recorded)} stored with no command record"
            seen |= stored
        assert seen == declared, f"{study}: declared command tables never stored: {sorted(declared - seen)}"


def test_no_stored_command_table_predates_its_study_run():
    """A stored table whose command's record a rerun marked `before_run` (`ResultStore.write_run_provenance`)
    was made beside an earlier run: the command must be rerun before the results are committed."""
    from scalinglaws.core.paths import DATA_DIR
    from scalinglaws.core.results import ResultStore
    stores = [ResultStore(p.parent.parent.name, p.parent.name, root=DATA_DIR / "results")
              for p in sorted((DATA_DIR / "results").glob("*/*/provenance.json"))]
    assert len(stores) >= 12
    stale = [f"{s.study}/{s.profile}: {name} (rerun `{cmd}`)" for s in stores for name, cmd in s.made_before_run().items()]
    assert not stale, stale


def test_a_rerun_marks_the_tables_it_did_not_remake(tmp_path):
    """The check above on a doctored copy: a rerun of the testbed that writes its own tables only
    carries the seeds record forward marked `before_run`, which `made_before_run` then names (with
    the command to rerun) and the banner warns of."""
    import shutil

    from scalinglaws.core.paths import DATA_DIR
    from scalinglaws.core.results import ResultStore
    shutil.copytree(DATA_DIR / "results" / "testbed" / "smoke", tmp_path / "testbed" / "smoke")
    store = ResultStore("testbed", "smoke", root=tmp_path)
    prov = store.provenance()
    assert "seeds" in prov["derived"] and store.made_before_run() == {}
    store.write("ladder", store.read("ladder"))  # the rerun rewrites its tables, not `seeds`
    carried = store.write_run_provenance({**{k: v for k, v in prov.items() if k != "derived"}, "date": "2026-12-07"})
    assert "seeds" in carried
    assert store.made_before_run()["seeds"] == prov["derived"]["seeds"]["command"]
    from scalinglaws.report import provenance_banner
    banner = provenance_banner(ResultStore("testbed", "smoke", root=tmp_path))
    made = next(line for line in banner.splitlines() if line.startswith("**Made beside an earlier run:**"))
    assert ":class: warning" in banner and "`seeds` (`" in made
