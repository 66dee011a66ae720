"""Fit one benchmark case in this process and print one JSON line (run by the runner).

``python -m benchmarks.run_one CASE IMPL PARAM [--sampler ...] [--method ...]``; IMPL is ``fh``
(formulahier) or ``pymc`` (the hand-written model); PARAM is ``auto``, ``full``, ``nc`` or ``c``.

Phases (seconds, in the JSON line as ``phases``): ``import`` (``import formulahier``, or PyMC
and ArviZ for the hand-written side), ``build`` (``fh.model`` and the PyMC graph; the hand-written
model), ``compile`` (everything in the fit call outside the NUTS loop: PyTensor/numba
compilation, initialisation and, for a collapsed model, the exact draws of the group effects),
``sample`` (the NUTS loop as PyMC/nutpie report it; the whole approximation for
``--method laplace|pathfinder|advi``) and ``summarise`` (the printed summary).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings

import numpy as np

T0 = time.perf_counter()
LOAD0 = os.getloadavg()[0]  # the shared machine's 1-minute load average when the fit started


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


def estimates(idata, var_names: list[str]) -> dict[str, list[float]]:
    """Posterior mean and sd of every entry of ``var_names`` (to compare methods)."""
    post = idata["posterior"].to_dataset()
    out = {}
    for v in var_names:
        values = post[v].values.reshape(-1, *post[v].shape[2:])
        flat = values.reshape(values.shape[0], -1)
        pairs = zip(flat.mean(0), flat.std(0), strict=True)
        out[v] = [[round(float(m), 5), round(float(s), 5)] for m, s in pairs]
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
    ap.add_argument("--method", default="nuts")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-accept", type=float, default=None)
    # nutpie through Python callbacks or its compiled numba cfunc (default: formulahier's rule)
    ap.add_argument("--nutpie-route", choices=["auto", "callbacks", "compiled"], default="auto")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    t_imp = time.perf_counter()
    import formulahier as fh

    phases = {"import": time.perf_counter() - t_imp}  # `import formulahier` alone (lazy)
    t_imp = time.perf_counter()
    if args.impl == "fh":  # what the first fh.model() call imports: Bambi, PyMC, ArviZ
        _ = fh.model  # as a first fh.model / fh.fit imports it (formulahier/__init__.py)
        from formulahier import samplers

        samplers.NUTPIE_ROUTE = None if args.nutpie_route == "auto" else args.nutpie_route
    else:  # the hand-written side imports what it uses
        import arviz_stats  # noqa: F401
        import pymc  # noqa: F401
    phases["import_backend"] = time.perf_counter() - t_imp
    from benchmarks.cases import CASES, handwritten

    case = CASES[args.case]
    data = case.data()
    import_s = phases["import"] + phases["import_backend"]
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
        model = fh.model(
            case.formula,
            data,
            family=case.family,
            noncentered="auto" if args.param in ("auto", "full") else args.param == "nc",
            **({} if args.param == "auto" else {"collapse": False}),
        )
        model.build()
        _ = model.pymc_model
        phases["build"] = time.perf_counter() - start
        fit = model.fit(
            sampler=args.sampler,
            method=args.method,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
            progressbar=False,
            **extra,
        )
        t_sum = time.perf_counter()
        text = str(fit)
        phases["summarise"] = time.perf_counter() - t_sum
        idata = fit.idata
        sampling_s = fit.seconds
        chosen = ",".join(f"{b.factor}:{'nc' if b.noncentered else 'c'}" for b in fit.spec.blocks)
        if fit.settings.get("construction") == "collapsed":
            chosen = "collapsed"
        sampler_used = fit.settings["sampler"] if args.method == "nuts" else args.method
    else:
        import arviz_stats
        import pymc as pm

        model = handwritten(case, data, {f: not v for f, v in noncentered.items()})
        phases["build"] = time.perf_counter() - start
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
        t_sum = time.perf_counter()
        text = str(arviz_stats.summary(idata, var_names=names))
        phases["summarise"] = time.perf_counter() - t_sum
        sampler_used = args.sampler
    total_s = time.perf_counter() - start
    assert text
    by_var = ess_rhat_by_var(idata, metric_vars(idata, args.impl, case))
    ess_min = min(e for e, _ in by_var.values())
    rhat_max = max(r for _, r in by_var.values())
    stats = idata["sample_stats"] if "sample_stats" in idata else {}
    divergences = int(stats["diverging"].values.sum()) if "diverging" in stats else -1
    # leapfrog steps (gradient evaluations) per draw, warm-up excluded
    steps = float(stats["n_steps"].values.mean()) if "n_steps" in stats else float("nan")
    mcmc_s = idata["posterior"].attrs.get("sampling_time")  # NUTS loop only, no compilation
    if args.method != "nuts":
        mcmc_s = sampling_s  # the whole approximation
    mcmc_s = float(mcmc_s) if mcmc_s is not None else float("nan")
    phases["sample"] = mcmc_s
    phases["compile"] = max(sampling_s - mcmc_s, 0.0) if np.isfinite(mcmc_s) else float("nan")
    order = ("import", "import_backend", "build", "compile", "sample", "summarise")
    phases = {k: round(phases[k], 2) for k in order}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # CPU seconds of this process and its children (PyMC's sampling processes): less moved by
    # the other jobs of a shared machine than wall time
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_s = sum(u.ru_utime + u.ru_stime for u in usage)
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
                "sampler": (args.sampler if args.method == "nuts" else args.method)
                + ("" if args.nutpie_route == "auto" else f"-{args.nutpie_route}"),
                "sampler_used": sampler_used,
                "method": args.method,
                "nutpie_route": args.nutpie_route,
                "phases": phases,
                "khat": round(float(fit.settings.get("khat", float("nan"))), 3)
                if args.impl == "fh"
                else None,
                "estimates": estimates(idata, metric_vars(idata, args.impl, case)),
                "draws": args.draws,
                "tune": args.tune,
                "chains": args.chains,
                "target_accept": args.target_accept,
                "import_s": round(import_s, 2),
                "total_s": round(total_s, 2),
                "sampling_s": round(sampling_s, 2),
                "process_s": round(time.perf_counter() - T0, 2),
                "cpu_s": round(cpu_s, 2),
                "mcmc_s": round(mcmc_s, 2),
                "ess_bulk_min": round(ess_min, 1),
                "ess_per_s": round(ess_min / total_s, 2),
                "rhat_max": round(rhat_max, 4),
                "divergences": divergences,
                "steps_per_draw": round(steps, 2),
                "peak_mb": round(peak_mb, 1),
                "end_mb": round(end_mb, 1),
                "ess_by_var": {k: round(e) for k, (e, _) in by_var.items()},
                "load": [round(LOAD0, 2), round(os.getloadavg()[0], 2)],  # at start, at end
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
