"""The CPU rehearsal of every study's gpu path (issue 28): `scripts/gpu_study.sh STUDY:PART` exactly as
a device lease runs it (the gpu profile's sizes, context 512, batch shapes, routers with grouped_mm
experts and the compile flag, the part's overrides, the staging of its tables, the combination of the
parts and the archive), on a CPU with `SCALINGLAWS_REHEARSE` (token budgets to two steps, grids thinned:
`lease_parts.rehearse`) and one torch thread. Each part's tables must carry every column of the same
table in the stored cpu results, which is what the chapters read. One part per study: the parts of a
study differ only in their overrides."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest

from scalinglaws.core.paths import DATA_DIR, REPO_ROOT
from scalinglaws.studies import command_tables, study_names
from scalinglaws.studies.lease_parts import PARTS

pytestmark = pytest.mark.slow  # minutes: part of make test, like the other slow tests
# Bootstrap draws of fits across sizes: with one part stored the combined tables are that part's run (a part
# with two sizes fits fewer parameters, e.g. resource's fit_samples without E), so only their presence is
# checked here; that combining several parts refits them as one run is tests/test_lease_combine.py.
ACROSS_SIZES = {"fit_samples"}
# dependencies first (routing reads the testbed's rates); with routing's regime parts, its `tables` part too
FIRST_PARTS = [f"{s}:{p.name}" for s in study_names() for i, p in enumerate(PARTS[s])
               if i == 0 or p.name == "tables"]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    root = tmp_path_factory.mktemp("rehearsal")
    results = root / "results"
    results.mkdir()
    env = {**os.environ, "SCALINGLAWS_RESULTS": str(results), "SCALINGLAWS_WORK": str(root / "work"),
           "SCALINGLAWS_REHEARSE": "1000000", "OUT": str(root / "out"), "OMP_NUM_THREADS": "1",
           "PYTHON": sys.executable, "PYTHONPATH": str(REPO_ROOT / "lib")}
    timings = {}
    for target in FIRST_PARTS:
        t0 = time.perf_counter()
        proc = subprocess.run([str(REPO_ROOT / "scripts" / "gpu_study.sh"), target], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=600)
        timings[target] = time.perf_counter() - t0
        assert proc.returncode == 0, f"{target} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print("rehearsal wall s:", json.dumps({k: round(v) for k, v in timings.items()}))
    return results, root / "out"


@pytest.mark.parametrize("target", FIRST_PARTS)
def test_each_part_stores_the_tables_and_columns_the_chapters_read(rehearsal, target):
    results, out = rehearsal
    study, part = target.split(":")
    if part != "tables" and f"{study}:tables" in FIRST_PARTS:  # records its units only; `tables` writes
        return
    gpu = results / study / "gpu"
    assert (gpu / "provenance.json").exists()
    cpu = DATA_DIR / "results" / study / "cpu"
    made_by_commands = command_tables(study)  # clark_*, nine_*, seeds, ...: a run never makes them
    wrongly_declared = sorted(t.stem for t in gpu.glob("*.parquet") if t.stem in made_by_commands)
    assert not wrongly_declared, f"{study}:{part}'s run made {wrongly_declared}, declared as command tables"
    for table in sorted(cpu.glob("*.parquet")):
        if table.stem in made_by_commands:
            continue
        here = gpu / table.name
        assert here.exists(), f"{study}:{part} stores no {table.stem}"
        want = set(pd.read_parquet(table).columns)
        got = pd.read_parquet(here)
        if table.stem in ACROSS_SIZES:
            continue
        missing = want - set(got.columns)
        assert not missing, f"{study}:{part} {table.stem} lacks {sorted(missing)}"
    if part != "tables":  # combined by replaying the part's unit records, stored beside its tables
        assert json.loads((gpu / "provenance.json").read_text())["combined"]
        assert any((gpu / "parts" / part / "units" / study / "gpu").rglob("*.json"))
    with tarfile.open(out / f"{study}-{part}.tar.gz") as tar:  # what a lease sends back
        names = tar.getnames()
    assert any(n.endswith(f"{study}/gpu/provenance.json") for n in names)
    assert not any(n.endswith(".safetensors") for n in names)
