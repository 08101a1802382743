"""`python -m scalinglaws plan composition ...`: keep the base, merge, multitask, route or a larger base?

    python -m scalinglaws plan composition --profile cpu --pool related --k 3 --target 3.1
    python -m scalinglaws plan composition --profile cpu --pool unrelated --k 5 --budget 1e14
    ... --cost amortised        # the base is given: count fine-tuning (and merging) only
    ... --json

Reads the composition study's stored `summary` and `fits` tables (`planning.py`). Exit codes: 0
ok; 2 bad input or an unreachable target / too small a budget (one line on stderr, nothing written).

Every planner joins the one `plan` command through `studies.cli.plan_group` (which makes it on first
use and keeps its sub-command group): this module adds `plan composition`.
"""
from __future__ import annotations


from scalinglaws.core.results import open_store
from scalinglaws.core.validation import ParameterError
from scalinglaws.studies.composition import planning as P
from scalinglaws.studies.cli import plan_group


def plan(args) -> dict:
    if (args.target is None) == (args.budget is None):
        raise ParameterError("give exactly one of --target LOSS or --budget FLOPS")
    store = open_store("composition", args.profile)
    summary, fits = store.read("summary"), store.read("fits")
    if args.target is not None:
        return P.target_plan(summary, fits, args.pool, args.k, args.target, args.cost)
    return P.budget_plan(summary, fits, args.pool, args.k, args.budget, args.cost)


def run(args) -> int:
    from scalinglaws.studies.merging.cli import emit
    return emit(plan(args), args.json, P.render)


def register(subparsers) -> None:
    c = plan_group(subparsers).add_parser(
        "composition", help="keep the base, merge, multitask, route or a larger base: target loss or budget",
        description="From the composition study's stored tables: the cheapest option reaching --target, or the "
                    "best loss for --budget, with its extrapolation risk. Exit 0: ok; 2: bad input.")
    c.add_argument("--profile", default="best", help="composition profile (default: the best stored)")
    c.add_argument("--pool", required=True, help="domain pool of the stored results (related, unrelated)")
    c.add_argument("--k", type=int, required=True, help="number of domains composed")
    c.add_argument("--target", type=float, default=None, help="target in-domain loss (nats/token)")
    c.add_argument("--budget", type=float, default=None, help="compute budget (FLOPs)")
    c.add_argument("--cost", default="total", choices=list(P.COSTS),
                   help="total (pretraining charged, default) or amortised (the base is given)")
    c.add_argument("--json", action="store_true", help="print a JSON object")
    c.set_defaults(func=run)
