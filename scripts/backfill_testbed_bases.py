"""Record `testbed_bases` (core.bases) in stored results made before studies recorded it.

Results stored before the field existed say nothing about the bases they stand on, so the book
could not tell when the testbed moved under them. This script reads what they used from evidence
that names it, never from today's testbed:
- merging: the `base` in the unit record of every expert in its `experts` table;
- DELLA: its provenance's `experts[size]["base"]`;
- composition: the `base` of its multitask and upcycled unit records at the stored sizes;
- routing: its config's `lr_by_size`, when `lr` was "testbed".
A size whose evidence names more than one base, or none, is left out and reported. Each store
that gains the field gets a `migrations` entry saying so (the provenance banner prints it).

    python scripts/backfill_testbed_bases.py [--work DIR] [--dry-run]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

from scalinglaws.core.bases import KEY
from scalinglaws.core.paths import work_root
from scalinglaws.core.results import PROFILES, ResultStore, atomic_write_json


def _unit_configs(work: Path, study: str, profile: str, kind: str) -> dict[str, dict]:
    d = work / "units" / study / profile / kind
    return {f.stem: json.loads(f.read_text())["config"] for f in sorted(d.glob("*.json"))} if d.is_dir() else {}


def _one_each(found: dict[str, set], sizes) -> tuple[dict, list[str]]:
    bases, problems = {}, []
    for s in sizes:
        units = found.get(s, set())
        if len(units) == 1:
            bases[s] = {"unit": next(iter(units))}
        else:
            problems.append(f"{s}: {len(units)} bases in the evidence")
    return bases, problems


def merging(store: ResultStore, work: Path):
    records = _unit_configs(work, "merging", store.profile, "finetune")
    found = defaultdict(set)
    for r in store.read("experts").itertuples():
        if r.unit in records:
            found[r.size].add(records[r.unit]["base"])
    return _one_each(found, store.provenance()["config"]["sizes"]), "the base of each expert's unit record"


def della(store: ResultStore, work: Path):
    ex = store.provenance().get("experts", {})
    return ({s: {"unit": v["base"]} for s, v in ex.items()}, []), "the provenance's experts[size].base"


def composition(store: ResultStore, work: Path):
    found = defaultdict(set)
    for kind in ("multitask_model", "upcycled"):
        for c in _unit_configs(work, "composition", store.profile, kind).values():
            found[c["size"]].add(c["base"])
    return _one_each(found, store.provenance()["config"]["sizes"]), "the base of its multitask and upcycled unit records"


def routing(store: ResultStore, work: Path):
    cfg = store.provenance()["config"]
    if cfg.get("lr") != "testbed":
        return ({}, []), "lr was not 'testbed'"
    return ({s: {"lr": float(v)} for s, v in cfg["lr_by_size"].items()}, []), "its config's lr_by_size"


EVIDENCE = {"merging": merging, "della": della, "composition": composition, "routing": routing}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="unit records (default: SCALINGLAWS_WORK)")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    work = a.work or work_root()
    for study, evidence in EVIDENCE.items():
        for profile in PROFILES:
            store = ResultStore(study, profile)
            prov = store.provenance()
            if not prov or KEY in prov:
                continue
            (bases, problems), source = evidence(store, work)
            print(f"{study}/{profile}: {bases or 'nothing'} from {source}" + (f"; left out {problems}" if problems else ""))
            if a.dry_run or not bases:
                continue
            prov[KEY] = bases
            prov.setdefault("migrations", []).append({
                "date": dt.date.today().isoformat(),
                "what": f"`{KEY}` recorded after the fact from {source} (scripts/backfill_testbed_bases.py)."})
            atomic_write_json(store.dir / "provenance.json", prov)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
