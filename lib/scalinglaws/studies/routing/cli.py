"""`python -m scalinglaws clark --profile P`: Clark et al. 2022's own measurements through the routing
study's code (`studies/routing/clark.py`), written into the routing store of profile P as the tables
clark_loss, clark_fits, clark_fit_samples, clark_search, clark_extrapolation, clark_steps and
clark_claims, each
recorded in provenance.json under `derived` (commit, date, command). Exit 2 on a bad profile or a
reference file whose checksum differs (nothing written)."""
from __future__ import annotations


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
    c.add_argument("--profile", default="cpu", help="routing profile whose store receives the tables (default cpu)")
    c.add_argument("--bootstrap", type=int, default=None,
                   help="bootstrap draws per fit (default: 20 at smoke, 1000 otherwise)")
    c.set_defaults(func=run)
