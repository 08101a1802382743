"""`python -m scalinglaws merging-nine ...`: the nine-expert pool run in resumable parts (`nine.py`).

    merging-nine --profile cpu --part pilot     train one part's units (records committed beside the tables)
    merging-nine --profile cpu --measure        time the units, write nine_unit_costs and nine_parts
    merging-nine --profile cpu --plan           print the parts, their predicted CPU-s and commands
    merging-nine --profile cpu                  write the nine_* tables from the stored records

Every option is checked before anything runs (exit 2 with one line). Run parts on a clean tree
and write the tables from a clean tree: provenance (derived.nine) records the commit.
"""
from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("merging-nine", help="the nine-expert merging pool (issue 27): parts, costs, tables",
                              description=__doc__)
    p.add_argument("--profile", default="cpu", help="smoke or cpu (default cpu)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--part", default=None, help="run this part's units: pilot or a name of the profile's parts")
    g.add_argument("--measure", action="store_true", help="time a fine-tune and a merge + evaluation per size")
    g.add_argument("--plan", action="store_true", help="print the stored parts plan (nine_parts)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core, reproducible)")
    p.set_defaults(func=run)


def run(args) -> int:
    from scalinglaws.core.results import ResultStore
    from scalinglaws.core.validation import check_int
    from scalinglaws.studies.merging import nine as N
    params = N.resolve(args.profile)
    N.check_part(args.part, params)
    check_int("threads", args.threads, minimum=1, maximum=64)
    store = ResultStore("merging", args.profile)
    if args.plan:
        if not store.has("nine_parts"):
            print(f"no nine_parts table at {args.profile}: run `merging-nine --profile {args.profile} --measure` first",
                  file=sys.stderr)
            return 2
        df = store.read("nine_parts")
        print(df.to_string(index=False))
        print(f"total {df['cpu_s'].sum():.0f} CPU-s predicted (one core, excluding testbed bases)")
        return 0
    if args.part is not None:
        N.run_part(args.profile, args.part, threads=args.threads)
        print(f"part {args.part} recorded under {N.sweep(args.profile).dir}; "
              f"write the tables with `python -m scalinglaws merging-nine --profile {args.profile}`")
        return 0
    costs = N.measure(args.profile, threads=args.threads) if args.measure else (
        store.read("nine_unit_costs") if store.has("nine_unit_costs") else None)
    store, missing = N.write_tables(args.profile, costs=costs, measured=args.measure)
    print(f"{store.dir}: nine_* tables written" + (f"; sizes not yet recorded: {missing}" if missing else ""))
    return 0
