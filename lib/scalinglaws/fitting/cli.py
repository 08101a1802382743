"""`python -m scalinglaws fit LAW FILE.csv ...`: fit a registered law to a CSV table.

Example (Epoch's replication of Chinchilla):

    python -m scalinglaws fit chinchilla data/reference/chinchilla_svg_extracted_data.csv \\
        --columns N="Model Size" --flops-column "Training FLOP" --drop-highest-loss 5

Exit codes: 0 fit ok; 1 fitted but not ok (did not converge or a parameter at a bound: the
output says which); 2 bad input (one line on stderr).
"""
from __future__ import annotations

import json
import sys
import time

import pandas as pd

from scalinglaws.fitting.fitter import fit
from scalinglaws.laws import LAWS, get_law
from scalinglaws.core.validation import ParameterError, check_int


def _pairs(items, flag):
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ParameterError(f"{flag} expects NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def load_table(args) -> tuple[pd.DataFrame, dict]:
    """Read the CSV and apply --derive, --flops-column and --drop-highest-loss; returns (frame, columns)."""
    law = get_law(args.law)
    try:  # FileNotFoundError propagates: cli.main prints it, exit 2
        if str(args.file).endswith(".parquet"):  # the study's stored tables, as they are
            frame = pd.read_parquet(args.file)
        else:
            frame = pd.read_csv(args.file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ParameterError(f"cannot read {args.file} as a table: {str(e).splitlines()[0]}") from None
    if args.where:
        try:
            frame = frame.query(args.where, engine="python").reset_index(drop=True)
        except Exception as e:  # pandas raises many kinds here; the user needs one line
            raise ParameterError(f"--where {args.where!r} failed: {str(e).splitlines()[0]}") from None
        if frame.empty:
            raise ParameterError(f"--where {args.where!r} selects no rows of {args.file}")
    columns = _pairs(args.columns, "--columns")
    for name, expr in _pairs(args.derive, "--derive").items():
        try:
            frame[name] = pd.to_numeric(frame.eval(expr, engine="python"), errors="raise")
        except Exception as e:  # pandas raises many kinds here; the user needs one line
            raise ParameterError(f"--derive {name}={expr!r} failed: {str(e).splitlines()[0]} "
                                 "(quote column names with spaces in backticks)") from None
    if args.flops_column:
        if not {"N", "D"} <= set(law.inputs):
            raise ParameterError(f"--flops-column needs a law with inputs N and D; {law.name!r} has {list(law.inputs)}")
        ncol = columns.get("N", "N")
        for col in (args.flops_column, ncol):
            if col not in frame.columns:
                raise ParameterError(f"column {col!r} not in {args.file}; available: {list(frame.columns)}")
        frame["D"] = frame[args.flops_column] / (6.0 * frame[ncol])  # C = 6 N D
        columns["D"] = "D"
    if args.drop_highest_loss:
        check_int("--drop-highest-loss", args.drop_highest_loss, minimum=0)
        if args.y not in frame.columns:
            raise ParameterError(f"column {args.y!r} (--y) not in {args.file}; available: {list(frame.columns)}")
        if args.drop_highest_loss >= len(frame):
            raise ParameterError(f"--drop-highest-loss {args.drop_highest_loss} would drop all {len(frame)} rows")
        frame = frame.drop(frame[args.y].nlargest(args.drop_highest_loss).index)
    return frame, columns


def run(args) -> int:
    t0 = time.perf_counter()
    get_law(args.law)
    check_int("--bootstrap", args.bootstrap, minimum=0)
    check_int("--seed", args.seed, minimum=0)
    frame, columns = load_table(args)
    res = fit(args.law, frame, columns=columns, y=args.y, weights=args.weights, bootstrap=args.bootstrap,
              seed=args.seed, huber_delta=args.huber_delta)
    wall = time.perf_counter() - t0
    if args.json:
        out = res.to_dict()
        out["wall_s"] = wall
        if res.bootstrap is not None and len(res.bootstrap):  # draws let `plan --fit` carry uncertainty
            out["samples"] = res.bootstrap.to_dict("records")
        n_col = columns.get("N", "N") if columns else "N"
        if n_col in frame.columns:
            out["N_range"] = [float(frame[n_col].min()), float(frame[n_col].max())]
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        print(res.summary())
        print(f"wall time {wall:.2f} s (point estimate {res.info['seconds_point']:.2f} s, "
              f"bootstrap {args.bootstrap} resamples)")
    return 0 if res.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="fit a scaling law to a CSV file",
        description="Fit a registered law (Huber loss on log residuals, multi-start L-BFGS-B, bootstrap "
                    "intervals). Exit 0: ok; 1: fitted but not converged or a parameter at a bound; 2: bad input.")
    p.add_argument("law", help=f"one of {sorted(LAWS)}")
    p.add_argument("file", help="CSV (or .parquet, e.g. a stored results table), one row per observation")
    p.add_argument("--where", default=None, metavar="EXPR",
                   help="keep the rows matching a pandas query, e.g. \"method == 'average' and scope == 'cross_domain'\"")
    p.add_argument("--columns", nargs="+", metavar="NAME=COL", default=[],
                   help='map law inputs to CSV columns, e.g. N="Model Size"')
    p.add_argument("--y", default="loss", help="column of the fitted quantity (default: loss)")
    p.add_argument("--weights", default=None, metavar="COL", help="column of point weights")
    p.add_argument("--derive", nargs="+", metavar="NAME=EXPR", default=[],
                   help="add a column from a pandas expression, e.g. 'D=`Training FLOP` / (6 * `Model Size`)'")
    p.add_argument("--flops-column", default=None, metavar="COL",
                   help="derive D = FLOP / (6 N) from this column (laws with inputs N and D)")
    p.add_argument("--drop-highest-loss", "--drop-highest", type=int, default=0, metavar="K",
                   help="drop the K rows with the highest y before fitting")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: none; default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--huber-delta", type=float, default=1e-3)
    p.add_argument("--json", action="store_true", help="print a JSON object (params, ci, se, r2, converged, ...)")
    p.set_defaults(func=run)
