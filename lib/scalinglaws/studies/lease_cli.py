"""`python -m scalinglaws plan gpu STUDY|all [--part P] [--verbose]`: the lease parts of a study's gpu
profile with their predicted minutes (`studies.lease`), and the cost model's error at cpu.
Exit 0: every listed part fits its limit; 1: a part is predicted above it (one line each); 2: bad input."""
from __future__ import annotations

import sys

from scalinglaws.studies.cli import plan_group


def register(subparsers) -> None:
    g = plan_group(subparsers).add_parser(
        "gpu", help="lease parts of a study's gpu profile: predicted minutes per part and unit",
        description=__doc__.splitlines()[0])
    g.add_argument("study", help="a study, or 'all'")
    g.add_argument("--part", default=None, help="one part: print its overrides as JSON (refused over its limit)")
    g.add_argument("--params", action="store_true", help="with --part: the overrides as NAME=JSON words "
                   "for `reproduce -p` (gpu_study.sh reads them)")
    g.add_argument("--combine", action="store_true", help="write the study's gpu tables from its stored parts: its run replayed on the "
                   "union of their unit records (fits across sizes refitted as one run)")
    g.add_argument("--names", action="store_true", help="the study's part names, one a line")
    g.add_argument("--verbose", action="store_true", help="predicted seconds of every unit")
    g.set_defaults(func=run)


def run(args) -> int:
    import json

    from scalinglaws.core.validation import check_choice
    from scalinglaws.studies import lease as L
    from scalinglaws.studies import lease_plan as LPL
    from scalinglaws.studies.lease_parts import PARTS
    if args.combine:
        store = LPL.combine(check_choice("study", args.study, list(PARTS)))
        print(f"{args.study}: " + (f"combined {sorted(store.provenance()['parts'])} into {store.dir}" if store
                                   else "no stored part to combine"))
        return 0
    if args.names:
        print("\n".join(p.name for p in PARTS[check_choice("study", args.study, list(PARTS))]))
        return 0
    if args.part is not None:
        over = LPL.check_part(args.study, args.part).overrides
        if args.params:
            print(" ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in sorted(over.items())))
        else:
            print(json.dumps(over, sort_keys=True))
        return 0
    studies = list(PARTS) if args.study == "all" else [check_choice("study", args.study, list(PARTS))]
    rates = L.THROUGHPUT["h100"]
    print(f"throughput: {rates.device}; {rates.source}")
    over = []
    for study in studies:
        for row in LPL.plan_study(study):
            flag = "ok" if row["fits"] else "OVER"
            print(f"{study}:{row['part']:<8} {row['predicted_s'] / 60:5.1f} min (limit {row['limit_s'] / 60:.0f}) "
                  f"{flag:4}  {row['budget']}")
            if args.verbose:
                for label, n, s in row["units"]:
                    print(f"    {label:<40} x{n:<4} {s:7.1f} s ({s / n:.2f} s each)")
            if not row["fits"]:
                over.append(row)
    cal = LPL.calibrate()
    o = cal["overall"]
    print(f"cpu calibration ({L.THROUGHPUT['cpu'].source}; per-unit overhead {L.THROUGHPUT['cpu'].unit_overhead_s} s) "
          f"vs stored per-unit wall times: {o['n']} units, predicted/measured median {o['median']:.2f}, worst "
          f"{o['worst']:.2f} ({o['interference']} unit(s) > {LPL.INTERFERENCE:g}x their identical siblings left out "
          f"as interference; worst with them {o['worst_all']:.2f})")
    for source, s in cal.items():
        if source != "overall":
            print(f"    {source:<16} n={s['n']:<3} median {s['median']:.2f} worst {s['worst']:.2f}"
                  + (f" (interference {s['interference']}, worst with them {s['worst_all']:.2f})" if s["interference"] else ""))
    for row in over:
        print(f"error: part {row['study']}:{row['part']} predicted {row['predicted_s'] / 60:.1f} min > "
              f"limit {row['limit_s'] / 60:.0f} min", file=sys.stderr)
    return 1 if over else 0
