"""`python -m scalinglaws resource-parts --profile P`: the resource LM ladders' parts, what each has
spent and is predicted to cost (`studies/resource/parts.py`), and the command that runs it."""
from __future__ import annotations


def register(subparsers) -> None:
    q = subparsers.add_parser("resource-parts", help="the resource LM ladders' parts, their predicted cost and commands",
                              description=__doc__)
    q.add_argument("--profile", default="cpu", help="resource profile (default cpu)")
    q.add_argument("--write", action="store_true",
                   help="also write lm_parts from the unit records made so far (a part stopped midway included)")
    q.set_defaults(func=show_parts)


def show_parts(args) -> int:
    from scalinglaws.studies import resolve_params
    from scalinglaws.studies.resource import parts
    from scalinglaws.studies.resource import study as S
    if args.write:
        S.write_parts_table(args.profile, resolve_params(S, args.profile, {}),
                            f"python -m scalinglaws resource-parts --profile {args.profile} --write")
    df = parts.part_costs(args.profile)
    print(df.to_string(index=False))
    a = df.attrs
    toys = df[df["part"] == S.TOY_PART].iloc[0]
    df = df[df["part"] != S.TOY_PART]
    left = df.loc[df["done"] != df["rungs"]]
    print(f"measured: {a['flop_rate'] / 1e9:.1f} GFLOP per second of recorded unit time; remaining LM parts "
          f"{left['predicted_low_s'].sum():.0f} to {left['predicted_high_s'].sum():.0f} s at that rate; "
          f"{left['testbed_low_s'].sum():.0f} to {left['testbed_high_s'].sum():.0f} s of training at the stored testbed "
          f"run's {a['testbed_flop_rate'] / 1e9:.1f} GFLOP/s (a core free)")
    toy_left = ("not priced (no stored run)" if toys["predicted_low_s"] < 0 else
                f"~{toys['predicted_low_s']:.0f} s left at the stored run's {a['toy_s']:.0f} s for all")
    state = (f"all {toys['rungs']} recorded" if toys["done"] == toys["rungs"] else
             f"{toys['done'] or 'none'} of {toys['rungs']} recorded, {toy_left}")
    print(f"toy networks ({toys['command']}): {state}; "
          f"then the final run ({a['final_command']}) fits and writes every table, training whatever is not recorded")
    return 0
