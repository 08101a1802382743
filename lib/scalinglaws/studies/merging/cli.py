"""`python -m scalinglaws plan merging ...`: plan experts, stopping and compute from a merging fit.

    python -m scalinglaws plan merging --profile cpu --method average --scope cross_domain \\
        --size d64l4 --target 3.9                       # experts for a target loss
    python -m scalinglaws plan merging ... --size d64l4 --eps 0.01      # when to stop
    python -m scalinglaws plan merging ... --budget-flops 1e15          # base size vs experts
    python -m scalinglaws plan merging --fit FIT.json --size d64l4 ...  # from `fit merging --json`
    python -m scalinglaws conventions merging --profile cpu   # ours vs the paper's code vs mergekit

The fit comes from the merging study's stored `fits`/`fit_samples` tables of one pool of experts
(`--experts related|unrelated`; intervals from the bootstrap draws; k = 0, keeping the base, is an
answer whenever the base's stored loss meets the target; a k beyond the pool is flagged) or from a JSON file (intervals only if it carries draws under "samples").
Costs use the profile's ladder and token budgets (see `scalinglaws.planning`). Every run also
prints the floor, the marginal gains and "double the base vs one more expert" at --k experts.
The law must be ok by the trust rule (`fitting/trust.py`, the stored fit's `ok`): when it is not,
the plan is refused (exit 1), naming the failed criterion and showing what the stored results do
support at that size (the measured curve, the per-size tail fit, the smallest measured k reaching
the target); `--untrusted` plans from the law anyway, with the warning on top.
Exit codes: 0 ok; 1 the law is not ok (refused); 2 bad input (one line on stderr).
"""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd

from scalinglaws.core import profiles as PR
from scalinglaws.studies.merging import planning as P
from scalinglaws.core.validation import ParameterError, check_choice, check_float, check_int, check_profile


def _json_safe(x):
    if isinstance(x, pd.DataFrame):
        return [_json_safe(r) for r in x.to_dict("records")]
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else None)
    return x


def _fmt_iv(est, lo, hi, fmt="{:.4g}"):
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return fmt.format(est)
    return f"{fmt.format(est)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def validate(args) -> dict:
    """All user inputs checked before anything is read or computed; returns them as a dict (the
    plan's inputs, numbers as floats)."""
    from scalinglaws.models import SIZES
    from scalinglaws.studies.merging.config import METHOD_VARIANTS

    check_profile(args.profile)
    if args.fit is None:
        check_choice("method", args.method, list(METHOD_VARIANTS))
        P.check_scope(args.scope)
    if args.size is None and args.n_params is None:
        raise ParameterError("give --size NAME or --n-params N (the base size to plan for)")
    if args.size is not None:
        check_choice("size", args.size, list(SIZES))
    if args.n_params is not None:
        check_float("n-params", args.n_params, 0.0, open_interval=True)
    if args.target is not None:
        check_float("target", args.target, 0.0, open_interval=True)
    if args.eps is not None:
        check_float("eps", args.eps, 0.0, open_interval=True)
    if args.budget_flops is not None:
        check_float("budget-flops", args.budget_flops, 0.0, open_interval=True)
    check_int("k", args.k, minimum=1)
    if args.pool is not None:
        check_int("pool", args.pool, minimum=2)
    if args.max_experts is not None:
        check_int("max-experts", args.max_experts, minimum=1)
    check_float("level", args.level, 0.0, 1.0, open_interval=True)
    return {k: getattr(args, k) for k in ("profile", "method", "scope", "experts", "fit", "size", "n_params", "target", "eps",
                                          "budget_flops", "k", "pool", "max_experts", "level")}


def plan(args) -> dict:
    from scalinglaws.models import count_params, model_config

    v = validate(args)
    fit = P.load_fit(v["fit"], profile=v["profile"], method=v["method"], scope=v["scope"], pool=v["experts"])
    pool = args.pool or fit.pool_size or 8
    cost = P.CostModel.from_profile(args.profile)
    N = float(args.n_params) if args.n_params is not None else float(
        count_params(model_config(args.size))["non_embedding"])
    out = {"fit": {"source": fit.source, "pool": fit.pool, "method": fit.method, "scope": fit.scope, "params": fit.params,
                   "draws": 0 if fit.draws is None else len(fit.draws), "N_range": fit.N_range, **fit.info},
           "size": args.size, "N": N, "profile": args.profile, "level": args.level}
    ok, why = P.trusted(fit)
    out["trusted"], out["why_not_ok"] = ok, why
    if not ok:
        if v["fit"] is None:
            out["supported"] = P.supported(args.profile, fit.pool, fit.method, fit.scope, args.size, N, args.target)
        if not args.untrusted:
            out["refused"] = True
            return out
    out["stopping"] = P.stopping(fit, N, eps=args.eps, pool=pool, level=args.level)
    if args.target is not None:
        out["target"] = P.experts_for_target(fit, N, args.target, level=args.level)
    out["next_step"] = P.double_vs_expert(fit, cost, N, args.k, count_pretraining=not args.no_pretrain_cost,
                                          level=args.level)
    if args.budget_flops is not None:
        out["budget_flops"] = args.budget_flops
        cap = args.max_experts if args.max_experts is not None else pool
        out["budget"] = P.budget_plan(fit, cost, args.budget_flops, max_experts=cap,
                                      count_pretraining=not args.no_pretrain_cost, level=args.level)
    return out


def render_untrusted(out: dict) -> list[str]:
    """The refusal (or, with --untrusted, the warning): the failed criterion and what the stored
    results support instead."""
    f = out["fit"]
    L = [f"{'refused' if out.get('refused') else 'WARNING'}: the merging law {f['source']} (method {f['method']}, scope {f['scope']}) is not ok by the "
         f"trust rule (fitting/trust.py): {out['why_not_ok'] or 'not ok'} (ok = False); "
         + ("the plan below is computed from it anyway (--untrusted): do not act on it" if not out.get("refused")
            else "no plan is made from it")]
    sup = out.get("supported")
    if sup is None:
        return L
    if "curve" not in sup:
        L.append(f"  no measured curve at this size; the stored results measure sizes {sup['measured_sizes']}")
        return L
    L.append(f"what the stored results support at {sup['size']} (measured, mean CE over subsets; k = 0 is the base):")
    L.append(sup["curve"].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    tf = sup.get("tail_fit")
    if tf:
        L.append(f"  per-size tail fit L(k) = L_inf + A/(k + b) at {sup['size']}: L_inf = "
                 f"{_fmt_iv(tf['L_inf'], tf['L_inf_lo'], tf['L_inf_hi'])}, A = {tf['A']:.4g}, b = {tf['b']:.4g}, "
                 f"R^2 = {tf['r2']:.3g}, " + ("ok" if tf["ok"] else f"not ok ({tf['why_not_ok']})"))
    if "target" in sup:
        best = sup["best_measured"]
        L.append(f"  target {sup['target']:.4g}: " + (
            f"measured at k = {sup['measured_k']}" if sup["measured_k"] is not None else
            f"no measured k reaches it (lowest measured CE {best['ce']:.4g} at k = {best['k']})")
            + ("" if "tail_k" not in sup else
               ("; the per-size tail fit never reaches it (below its floor)" if not math.isfinite(sup["tail_k"])
                else f"; the per-size tail fit reaches it at k = {sup['tail_k']:.3g}"
                + (f" (beyond the {int(sup['curve']['k'].max())} measured experts: an extrapolation)"
                   if sup["tail_k"] > sup["curve"]["k"].max() else ""))))
    if out.get("refused"):
        L.append("  rerun with --untrusted to plan from the law anyway")
    return L


def render(out: dict) -> str:
    f, L = out["fit"], []
    if not out.get("trusted", True):
        L += render_untrusted(out)
        if out.get("refused"):
            return "\n".join(L)
    pct = f"{out['level']:.0%}"
    L.append(f"merging law {f['source']} (method {f['method']}, scope {f['scope']}; "
             f"{f['draws']} bootstrap draws, intervals {pct}):")
    L.append("  L(N, k) = L* + B N^-beta + A0 N^-gamma / (k + b);  "
             + ", ".join(f"{k}={v:.4g}" for k, v in f["params"].items()))
    st = out["stopping"]
    where = f"size {out['size']} " if out["size"] else ""
    L.append(f"base {where}(N = {out['N']:,.0f} non-embedding parameters)"
             + ("  [outside the fitted N range: extrapolation]" if st["extrapolated"] else ""))
    if "target" in out:
        t = out["target"]
        L.append(f"target L = {t['target']:.4g}: floor L_inf(N) = "
                 f"{_fmt_iv(t['floor'], t['floor_lo'], t['floor_hi'])}, amplitude A(N) = {t['amplitude']:.4g}")
        if t["status"] == "keep the base":
            L.append(f"  keep the base: its measured loss {t['base_loss']:.4g} already meets the target (k = 0)")
        elif t.get("beyond_pool"):
            L.append(f"  {t['status']} (extrapolated in k; k = {t['k']:.3g})")
        elif t["status"] == "unreachable":
            L.append(f"  unreachable: the target is below the floor (reachable in "
                     f"{t['p_reachable']:.0%} of draws)" if not math.isnan(t["p_reachable"])
                     else "  unreachable: the target is below the floor")
        else:
            L.append(f"  experts needed: {t['k_needed']} (k = {_fmt_iv(t['k'], t['k_lo'], t['k_hi'], '{:.3g}')}; "
                     f"{t['status']}" + ("" if math.isnan(t["p_reachable"])
                                         else f"; reachable in {t['p_reachable']:.0%} of draws") + ")")
    if "eps" in st:
        L.append(f"within eps = {st['eps']:.4g} of the floor: k_eps = "
                 f"{_fmt_iv(st['k_eps'], st['k_eps_lo'], st['k_eps_hi'], '{:.3g}')} -> {st['k_eps_needed']} experts"
                 + (f"  [beyond the pool of {st['pool']}: extrapolated]" if st.get("k_eps_beyond_pool") else ""))
    if st.get("keep_base"):
        L.append(f"  no merge of up to {st['pool']} experts is predicted to beat the base: keep the base (k = 0)")
    tab = st["table"].dropna(axis=1, how="all")
    L.append(f"marginal gain Delta_k = L(k) - L(k+1) and stopping curve R(k) over a pool of {st['pool']}:")
    L.append(tab.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    L.append("  R reaches " + ", ".join(f"{lv:.0%} at k = {k}" for lv, k in st["k_at_R"].items()))
    n = out["next_step"]
    L.append(f"next step from k = {n['k']} experts: one more expert gains {n['gain_expert']:.4g} for "
             f"{n['flops_expert']:.3g} FLOPs; doubling the base gains {n['gain_double']:.4g} for "
             f"{n['flops_double']:.3g} FLOPs")
    L.append(f"  gain ratio double/expert = {n['gain_ratio']:.3g}; per FLOP = "
             + _fmt_iv(n["per_flop_ratio"], n.get("per_flop_ratio_lo"), n.get("per_flop_ratio_hi"), "{:.3g}")
             + f" -> {n['better']}"
             + (f" (in {n['p_double_better']:.0%} of draws doubling is better)" if "p_double_better" in n else ""))
    if "budget" in out:
        b = out["budget"]
        best = b[b["best"]].iloc[0]
        L.append(f"budget {out['budget_flops']:.3g} FLOPs: best N = {best['N']:,.0f}" + (f" ({best['size']})" if best["size"] else "")
                 + f" with k = {int(best['k'])} experts, loss {_fmt_iv(best['loss'], best['loss_lo'], best['loss_hi'])}")
        cols = ["N", "size", "k", "pretrain_flops", "expert_flops", "total_flops", "loss", "loss_lo", "loss_hi", "p_best"]
        L.append(b[cols].dropna(axis=1, how="all").to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return "\n".join(L)


def emit(out: dict, as_json: bool, render_fn) -> int:
    """Print a plan as JSON (NaN/inf made JSON-safe) or as text; exit status 0. Shared by every
    study's `plan` command."""
    if as_json:
        json.dump(_json_safe(out), sys.stdout, indent=2)
        print()
    else:
        print(render_fn(out))
    return 0


def run(args) -> int:
    out = plan(args)
    emit(out, args.json, render)
    return 1 if out.get("refused") else 0


def register(subparsers) -> None:
    from scalinglaws.studies.cli import plan_group
    m = plan_group(subparsers).add_parser(
        "merging", help="experts for a target loss, when to stop, base size vs more experts",
        description="Plan with the merging law L(N, k) = L_inf(N) + A(N)/(k + b): experts needed for a "
                    "target loss, k_eps, marginal gains and R(k), and FLOP trade-offs. Exit 0: ok; 1: the law is not ok "
                    "(refused; --untrusted plans anyway); 2: bad input.")
    m.add_argument("--profile", default=PR.default(),
                   help=f"merging study profile (fit tables and cost model; default {PR.default()})")
    m.add_argument("--method", default="average", help="merge method of the stored fit (default average)")
    m.add_argument("--scope", default="cross_domain",
                   help="scope of the stored fit: in_domain, cross_domain, held_out or domain:<name>")
    m.add_argument("--fit", default=None, metavar="FILE.json",
                   help="plan from this JSON (from `python -m scalinglaws fit merging ... --json`)")
    m.add_argument("--size", default=None, help="base size name, e.g. d64l4")
    m.add_argument("--n-params", type=float, default=None, help="base size as non-embedding parameters N")
    m.add_argument("--target", type=float, default=None, help="target loss (nats/token)")
    m.add_argument("--eps", type=float, default=None, help="tolerance above the floor for k_eps")
    m.add_argument("--budget-flops", type=float, default=None, help="FLOP budget for base + experts")
    m.add_argument("--k", type=int, default=5, help="experts already merged, for 'double vs one more' (default 5)")
    m.add_argument("--experts", default=None,
                   help="pool of experts of the stored fit: related or unrelated (default: the first stored)")
    m.add_argument("--pool", type=int, default=None,
                   help="pool size M for R(k) (default: the stored pool's size, else 8)")
    m.add_argument("--max-experts", type=int, default=None, help="cap on k in the budget plan (default: --pool)")
    m.add_argument("--no-pretrain-cost", action="store_true",
                   help="bases are given: count only fine-tuning FLOPs")
    m.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    m.add_argument("--untrusted", action="store_true",
                   help="plan even when the law is not ok by the trust rule (the output says so on top)")
    m.add_argument("--json", action="store_true", help="print a JSON object")
    m.set_defaults(func=run)
    c = subparsers.add_parser(
        "conventions", help="measure our merges against the merging paper's code and mergekit (a derived table)",
        description="Merge drawn experts with ours, the merging paper's code (merging-eval) and mergekit; store "
                    "the measured differences as the `conventions` table of the study's results at --profile "
                    "(recorded in provenance.json under derived.conventions). Needs the dev extra. "
                    "Exit 0: ok; 2: bad input or a missing reference.")
    c.add_argument("study", help="the study whose merges are compared: merging")
    c.add_argument("--profile", default=PR.default(), help=f"results to store it with (default {PR.default()})")
    c.set_defaults(func=run_conventions)
    from scalinglaws.studies.merging import nine_cli  # the nine-expert pool's parts (issue 27)
    nine_cli.register(subparsers)


def run_conventions(args) -> int:
    from scalinglaws.core.validation import check_choice
    from scalinglaws.studies.merging import conventions as CV
    check_choice("study", args.study, ["merging"])
    store = CV.derive(args.profile)
    df = store.read("conventions")
    print(f"{store.path('conventions')}: {len(df)} comparisons; matched pairs differ by at most "
          f"{df.loc[df['matched'], 'max_abs_diff'].max():.2g}, the others by "
          f"{df.loc[~df['matched'], 'max_abs_diff'].min():.2g} to {df.loc[~df['matched'], 'max_abs_diff'].max():.2g}")
    return 0
