"""`python -m scalinglaws clark --profile P`: Clark et al. 2022's own measurements through the routing
study's code (`studies/routing/clark.py`), written into the routing store of profile P as the tables
clark_loss, clark_fits, clark_fit_samples, clark_search, clark_extrapolation, clark_steps and
clark_claims, each
recorded in provenance.json under `derived` (commit, date, command). Exit 2 on a bad profile or a
reference file whose checksum differs (nothing written)."""
from __future__ import annotations

from scalinglaws.core import profiles as PR


def run(args) -> int:
    from scalinglaws.studies.routing import clark as C
    store = C.derive(args.profile, bootstrap=args.bootstrap)
    claims = store.read("clark_claims")
    counts = claims["verdict"].value_counts()
    print(f"{store.dir}: " + ", ".join(C.TABLES) + "; Clark's claims: "
          + ", ".join(f"{v} {n}" for v, n in counts.items()))
    return 0


def register(subparsers) -> None:
    c = subparsers.add_parser("clark", help="fit and judge the routing law on Clark et al. 2022's own measurements",
                              description=__doc__)
    c.add_argument("--profile", default=PR.default(), help=f"routing profile whose store receives the tables (default {PR.default()})")
    c.add_argument("--bootstrap", type=int, default=None,
                   help="bootstrap draws per fit (default: 20 at smoke, 1000 otherwise)")
    c.set_defaults(func=run)
    p = subparsers.add_parser("routing-pilot", help="regime pilots: router settings at one small cell (regime_pilot)",
                              description=_pilot_doc())
    p.add_argument("--profile", default=PR.default(), help=f"routing profile whose store receives the table (default {PR.default()})")
    p.add_argument("--settings", default=None, help="comma-separated settings (default: all of pilot.SETTINGS)")
    p.set_defaults(func=run_pilot)
    q = subparsers.add_parser("routing-parts", help="the routing rerun's parts, their predicted CPU cost and commands")
    q.add_argument("--profile", default=PR.default(), help=f"routing profile (default {PR.default()})")
    q.set_defaults(func=show_parts)


def show_parts(args) -> int:
    from scalinglaws.studies.routing import parts
    df = parts.part_costs(args.profile)
    print(df.to_string(index=False))
    a = df.attrs
    print(f"measured factors: batch slowdown {a['batch_slowdown']:.2f}, vocab/dense {a['vocab_over_dense']:.2f}, "
          f"eval {a['eval_s_per_model']:.0f} CPU-s per model; step check >= "
          f"{parts.step_check_cost(args.profile):.0f} CPU-s (final run: python -m scalinglaws reproduce routing "
          f"--profile {args.profile} --backend ray); total {df['cpu_s'].sum():.0f} CPU-s")
    return 0


def _pilot_doc() -> str:
    from scalinglaws.studies.routing import pilot
    return pilot.__doc__


def run_pilot(args) -> int:
    from scalinglaws.studies.routing import pilot
    store = pilot.run_pilot(args.profile, args.settings or tuple(pilot.SETTINGS))
    df = store.read(pilot.TABLE)
    print(df.drop(columns=["router_options"]).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"{store.path(pilot.TABLE)}: {len(df)} rows")
    return 0
