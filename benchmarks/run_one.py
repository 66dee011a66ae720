"""Fit one benchmark case in this process and print one JSON line (run by the runner).

``python -m benchmarks.run_one CASE IMPL PARAM [--sampler ...]``; IMPL is ``fh`` (formulahier)
or ``pymc`` (the hand-written model); PARAM is ``auto``, ``nc`` or ``c``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

import numpy as np

T0 = time.perf_counter()


def ess_rhat_by_var(idata, var_names: list[str]) -> dict[str, tuple[float, float]]:
    """Min bulk ESS and max rank r_hat per variable; correlations: off-diagonal entries only."""
    from arviz_stats import ess, rhat

    post = idata["posterior"].to_dataset()[var_names]
    e, r = ess(post, method="bulk"), rhat(post)
    out = {}
    for v in var_names:
        ev, rv = np.asarray(e[v].values, dtype=float), np.asarray(r[v].values, dtype=float)
        if v.endswith("_corr") and ev.ndim == 2:  # the diagonal is the constant 1
            iu = np.triu_indices(ev.shape[0], 1)
            ev, rv = ev[iu], rv[iu]
        out[v] = (float(np.nanmin(ev)), float(np.nanmax(rv)))
    return out


def metric_vars(idata, impl: str, case) -> list[str]:
    post = idata["posterior"]
    names = list(post.data_vars)
    sds = [n for n in names if "|" in n and n.endswith("_sigma")]
    corr = [n for n in names if n.endswith("_corr")]
    if impl == "fh":
        pop = ["Intercept", *case.fixed] + ([case.categorical] if case.categorical else [])
    else:
        pop = ["Intercept", "b"]
    return [n for n in pop if n in names] + sds + corr


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("impl", choices=["fh", "pymc"])
    # auto: formulahier's defaults (collapsed gaussian models where exact); full: the same
    # parameterization with the group effects sampled (collapse=False); nc / c: forced, sampled
    ap.add_argument("param", choices=["auto", "full", "nc", "c"])
    ap.add_argument("--sampler", default="pymc")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-accept", type=float, default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    from benchmarks.cases import CASES, handwritten

    case = CASES[args.case]
    data = case.data()
    t_imp = time.perf_counter()
    import formulahier as fh

    import_s = time.perf_counter() - t_imp
    extra = {}
    if args.target_accept is not None:
        extra["target_accept"] = args.target_accept
    if args.param in ("auto", "full"):
        from formulahier.parameterization import choose_noncentered

        choices = choose_noncentered(fh.build_spec(case.formula, family=case.family), data)
        noncentered = {f: c.noncentered for f, c in choices.items()}
    else:
        noncentered = dict.fromkeys([f for f, _ in case.blocks], args.param == "nc")
    chosen = ",".join(f"{f}:{'nc' if v else 'c'}" for f, v in noncentered.items())

    start = time.perf_counter()
    if args.impl == "fh":
        fit = fh.fit(
            case.formula,
            data,
            family=case.family,
            noncentered="auto" if args.param in ("auto", "full") else args.param == "nc",
            **({} if args.param == "auto" else {"collapse": False}),
            sampler=args.sampler,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
            progressbar=False,
            **extra,
        )
        text = str(fit)
        idata = fit.idata
        sampling_s = fit.seconds
        chosen = ",".join(f"{b.factor}:{'nc' if b.noncentered else 'c'}" for b in fit.spec.blocks)
        if fit.settings.get("construction") == "collapsed":
            chosen = "collapsed"
    else:
        import arviz_stats
        import pymc as pm

        model = handwritten(case, data, {f: not v for f, v in noncentered.items()})
        s0 = time.perf_counter()
        kwargs = {"nuts_sampler": args.sampler}  # PyMC 6 picks nutpie by default if installed
        if args.sampler == "pymc":
            kwargs["cores"] = min(args.chains, 2)
        with model:
            idata = pm.sample(
                draws=args.draws,
                tune=args.tune,
                chains=args.chains,
                random_seed=args.seed,
                progressbar=False,
                **kwargs,
                **extra,
            )
        sampling_s = time.perf_counter() - s0
        names = [n for n in idata["posterior"].data_vars if not n.endswith(("_z", "_beta"))]
        text = str(arviz_stats.summary(idata, var_names=names))
    total_s = time.perf_counter() - start
    assert text
    by_var = ess_rhat_by_var(idata, metric_vars(idata, args.impl, case))
    ess_min = min(e for e, _ in by_var.values())
    rhat_max = max(r for _, r in by_var.values())
    stats = idata["sample_stats"]
    divergences = int(stats["diverging"].values.sum()) if "diverging" in stats else -1
    # leapfrog steps (gradient evaluations) per draw, warm-up excluded
    steps = float(stats["n_steps"].values.mean()) if "n_steps" in stats else float("nan")
    mcmc_s = idata["posterior"].attrs.get("sampling_time")  # NUTS loop only, no compilation
    mcmc_s = float(mcmc_s) if mcmc_s is not None else float("nan")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:  # resident memory now, with the fit and its summary alive (Linux)
        with open("/proc/self/statm") as statm:
            end_mb = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        end_mb = float("nan")
    print(
        json.dumps(
            {
                "case": case.name,
                "rows": len(data),
                "groups": "x".join(str(data[f].nunique()) for f, _ in case.blocks),
                "impl": args.impl,
                "param": args.param,
                "chosen": chosen,
                "sampler": args.sampler,
                "draws": args.draws,
                "tune": args.tune,
                "chains": args.chains,
                "target_accept": args.target_accept,
                "import_s": round(import_s, 2),
                "total_s": round(total_s, 2),
                "sampling_s": round(sampling_s, 2),
                "process_s": round(time.perf_counter() - T0, 2),
                "mcmc_s": round(mcmc_s, 2),
                "ess_bulk_min": round(ess_min, 1),
                "ess_per_s": round(ess_min / total_s, 2),
                "rhat_max": round(rhat_max, 4),
                "divergences": divergences,
                "steps_per_draw": round(steps, 2),
                "peak_mb": round(peak_mb, 1),
                "end_mb": round(end_mb, 1),
                "ess_by_var": {k: round(e) for k, (e, _) in by_var.items()},
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
