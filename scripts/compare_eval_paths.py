"""Old vs new evaluation paths of the studies, bit for bit (issue 25: the one evaluation API).

    python scripts/compare_eval_paths.py [--base 0e25d1c]      # ~1 min on one CPU thread

The study modules of commit --base (before `evaluation.evaluate` existed: merging/units.py,
della/study.py, composition/units.py, testbed/study.py, resource/lm.py and evaluation.py) are
loaded from git next to the current ones. The evaluation functions the old study code imports
lazily (evaluate_states, evaluate_models, uniform_windows, ...) are the old evaluation.py's,
patched onto the current package while old code runs. Both score the same smoke-ladder model and
three perturbed experts (checkpoint loading replaced by in-memory models) on real domains: merging
merge_eval (4 methods) and specialise, DELLA references and merge_eval (eval_chunk 2), composition's
checkpoint and merge arms (forward backend), the testbed's eval unit, a resource rung's scores.
Every record must be equal (Python ==, no tolerance); exit 1 otherwise. First, merge.py of
--base against the current registry: every old method x options x k x seed bit-identical (the
registry rewrite and model_stock change no existing method's result)."""
import argparse, copy, importlib.util, subprocess, sys, tempfile, types
from pathlib import Path
import numpy as np, pandas as pd, torch

ROOT = Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--base", default="0e25d1c", help="the commit before the evaluation API")
args = ap.parse_args()
OLD = Path(tempfile.mkdtemp(prefix="old_eval_"))
for name, path in [("old_merge", "merge.py"), ("old_evaluation", "evaluation.py"), ("old_merging_units", "studies/merging/units.py"),
                   ("old_della_study", "studies/della/study.py"), ("old_composition_units", "studies/composition/units.py"),
                   ("old_testbed_study", "studies/testbed/study.py"), ("old_resource_lm", "studies/resource/lm.py")]:
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.base}:lib/scalinglaws/{path}"], check=True,
                         capture_output=True, text=True).stdout
    (OLD / f"{name}.py").write_text(src)
sys.path.insert(0, str(OLD))
torch.set_num_threads(1)
import old_evaluation as OE
from scalinglaws import evaluation as NE, models as Mo
from scalinglaws.studies.merging import units as NMU
from scalinglaws.studies.della import study as NDS
from scalinglaws.studies.composition import units as NCU
from scalinglaws.studies.testbed import study as NTS
from scalinglaws.studies.resource import lm as NRL

# merge.py: every method of the old registry, old vs new
import itertools
import old_merge as OM
from scalinglaws import merge as NM
g = torch.Generator().manual_seed(0)
mb = {"emb": torch.randn(40, 24, generator=g), "norm": torch.ones(24), "proj": torch.randn(30, 40, generator=g),
      "e3": torch.randn(5, 4, 6, generator=g), "steps": torch.arange(3)}
mb["head"] = mb["emb"]
mx = []
for _ in range(4):
    e = {n: t + 0.1 * torch.randn(t.shape, generator=g) if t.is_floating_point() else t.clone()
         for n, t in mb.items() if n != "head"}
    e["head"] = e["emb"]
    mx.append(e)
cases = [(m, {}) for m in OM.METHODS] + [
    ("ties", {"density": 0.5, "trim_scope": "model"}), ("ties", {"trim_count": "merging_eval", "lam": 0.5}),
    ("dare", {"p": 0.7, "rescale": "l1"}), ("della", {"p": 0.3, "eps": 0.2, "rank": "random"}),
    ("della_linear", {"rank": "tensor", "rescale": "none"}), ("task_arithmetic", {"lam": 1.3})]
n = 0
for (meth, opts), k, seed in itertools.product(cases, (1, 2, 4), (0, 7)):
    a, b = OM.merge(mb, mx[:k], meth, seed=seed, **opts), NM.merge(mb, mx[:k], meth, seed=seed, **opts)
    if list(a) != list(b) or not all(torch.equal(a[x], b[x]) for x in a) \
            or OM.resolve_options(meth, opts) != NM.resolve_options(meth, opts) \
            or OM.to_mergekit_yaml(meth, "b", ["e1", "e2"], **opts) != NM.to_mergekit_yaml(meth, "b", ["e1", "e2"], **opts):
        sys.exit(f"merge {meth} {opts} k={k} seed={seed}: DIFFERS")
    n += 1
print(f"merge: {n} merges (old method x options x k x seed) bit-identical, same options and mergekit YAML")

OLD_NAMES = ["evaluate_states", "evaluate_models", "uniform_windows", "window_loss_sums", "domain_metrics",
             "bootstrap_domain_ce"]


def load_old(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m


class old_eval:  # HEAD's evaluation functions under the names the old study code imports
    def __enter__(self):
        self.saved = {n: getattr(NE, n, None) for n in OLD_NAMES}
        for n in OLD_NAMES:
            setattr(NE, n, getattr(OE, n))
    def __exit__(self, *a):
        for n, f in self.saved.items():
            if f is None: delattr(NE, n)
            else: setattr(NE, n, f)


OMU = load_old(OLD / "old_merging_units.py", "old_merging_units")
ODS = load_old(OLD / "old_della_study.py", "old_della_study")
OCU = load_old(OLD / "old_composition_units.py", "old_composition_units")
OTS = load_old(OLD / "old_testbed_study.py", "old_testbed_study")
ORL = load_old(OLD / "old_resource_lm.py", "old_resource_lm")

size = Mo.ladder("smoke")[-1]
base = Mo.build_model(size, seed=0).eval()
T = int(base.config.max_position_embeddings)
g = torch.Generator().manual_seed(1)
experts = []
for _ in range(3):
    e = copy.deepcopy(base)
    with torch.no_grad():
        for p in e.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    experts.append(e.state_dict())
doms = ["speeches", "algebra", "code"]
ckpts = {"B": base, "E0": experts[0], "E1": experts[1], "E2": experts[2]}


def fake_load(key, device="cpu", **kw):
    if key == "B":
        return copy.deepcopy(base)
    m = copy.deepcopy(base); m.load_state_dict(ckpts[key]); return m


def equal(a, b, what):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True); print(f"  {what}: frames identical {a.shape}"); return
    if a != b:
        sys.exit(f"  {what}: DIFFERS")
    n = sum(len(r["nll"]) if isinstance(r, dict) and "nll" in r else 1 for r in a)
    print(f"  {what}: {len(a)} records identical ({n} numbers)")


# merging: merge_eval, specialise
ev = NMU.eval_config(doms, {"eval_tokens_per_domain": 256, "seed": 0}, T)
cfg = {"base": "B", "experts": ["E0", "E1", "E2"], "domains": doms, "eval": ev, "seed": 0,
       "subsets": ["0", "1", "0-1", "0-2", "0-1-2"], "n_boot": 50}
for mod in (OMU, NMU):
    mod._load = fake_load
print("merging")
for method, opts in [("average", {}), ("ties", {"density": 0.5}), ("dare", {"p": 0.3}), ("della", {"eps": 0.2})]:
    c = {**cfg, "registry_method": method, "options": opts}
    with old_eval():
        old = OMU.merge_eval(c)
    equal(old, NMU.merge_eval(c), f"merge_eval {method}")
with old_eval():
    old = OMU.specialise(cfg)
new = NMU.specialise(cfg)
old.pop("wall_s"); new.pop("wall_s")
equal([old], [new], "specialise (spec + bootstrap noise)")

# della: references and merge_eval (eval_chunk 2: several stacked passes)
print("della")
dcfg = {"base": "B", "experts": ["E0", "E1", "E2"], "domains": doms, "roles": ["lm", "math", "code"],
        "tokens_per_domain": 256, "seq_len": T, "window_seed": 0, "eval_chunk": 2}
ODS._load = NDS._load = lambda config: (fake_load("B"), [ckpts[k] for k in config["experts"]])
with old_eval():
    old = ODS._references(dcfg)
equal(old, NDS._references(dcfg), "references")
grid, abl = NDS.plan({**NDS.PROFILES["smoke"]})
dcfg["settings"] = (grid + abl)[:7]
with old_eval():
    old = ODS._merge_eval(dcfg)
equal(old, NDS._merge_eval(dcfg), "merge_eval (7 settings)")

# composition: checkpoint and merge arms (forward backend)
print("composition")
saved = Mo.load_unit_checkpoint
Mo.load_unit_checkpoint = fake_load
import scalinglaws.models.routed as RT
saved_routed, saved_find = RT.load_routed, NCU.find_checkpoint
RT.load_routed = lambda path, device="cpu": fake_load(path)
NCU.find_checkpoint = OCU.find_checkpoint = lambda key: key
try:
    for spec in [{"kind": "checkpoint", "key": "E1", "size": size.name if hasattr(size, "name") else size},
                 {"kind": "merge", "base": "B", "experts": ["E0", "E2"], "method": "ties", "options": {"density": 0.3},
                  "seed": 5, "size": "x"}]:
        c = NCU.eval_config(spec, doms, {"eval_tokens_per_domain": 256, "seed": 0}, T)
        with old_eval():
            old = OCU.evaluate(c)
        equal(old, NCU.evaluate(c), f"evaluate {spec['kind']}")
finally:
    Mo.load_unit_checkpoint, RT.load_routed = saved, saved_routed

# testbed eval unit and resource rung scores
print("testbed / resource")
OTS.M = types.SimpleNamespace(load_unit_checkpoint=fake_load); NTS.M = OTS.M
tcfg = {"checkpoint": "E0", "domains": doms, "tokens_per_domain": 256, "seed": 0, "bootstrap": 50}
with old_eval():
    old = OTS._evaluate(tcfg)
equal(old, NTS._evaluate(tcfg), "testbed _evaluate (val + test, bootstrap)")
m = fake_load("E2")
with old_eval():
    w_old = {s: (*OE.uniform_windows(doms, 256, seq_len=T, seed=0, split=s), doms) for s in ("val", "test")}
    old = {s: float(OE.domain_metrics(OE.evaluate_models([m], w)[0], w, dom, d)["ce"].mean()) for s, (w, dom, d) in w_old.items()}
new = {s: float(NE.evaluate(m, NE.EvalSpec(doms, 256, T, 0, split=s)).frame(model=0)["ce"].mean()) for s in ("val", "test")}
if old != new:
    sys.exit(f"resource rung scores differ: {old} vs {new}")
print(f"  resource rung scores identical {new}")
print("ALL BIT-IDENTICAL")
