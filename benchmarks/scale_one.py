"""One cell of the scale benchmark, run in a fresh process by ``benchmarks.scale``.

``python benchmarks/scale_one.py MODEL ROWS LEVELS IMPL [--mem-gb 8] [--samplers pymc,nutpie]``
is run as a script, so ``formulahier`` comes from ``PYTHONPATH`` or the installed package. It
caps the address space of this process (``RLIMIT_AS``) first, simulates the data (seeded),
builds the model (IMPL ``fh``: ``fh.model(...)`` plus ``m.pymc_model``; ``hand``: the
index-based PyMC model below), times the compiled log-density gradient at the initial point and,
with ``--samplers``, samples. It prints one JSON line per stage (``simulate``, ``build``,
``grad``, ``sample:<sampler>``) as soon as the stage ends, so a later failure keeps the earlier
numbers; a failing stage prints ``{"stage": ..., "error": ...}`` and the process exits with
status 1 (a failing sampler does not stop the next one).
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import sys
import time
import warnings

import numpy as np

FORMULAS = {
    "gaussian": ("y ~ x + (x | g)", "gaussian"),
    "bernoulli": ("y ~ x + (1 | g)", "bernoulli"),
    "crossed": ("y ~ x + (1 | a) + (1 | b)", "gaussian"),
}
CROSSED_LEVELS = (3_000, 1_000)


def peak_gb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def _codes(rng, rows: int, levels: int) -> np.ndarray:
    """Uniformly drawn group of each row; every level gets at least one row."""
    g = rng.integers(levels, size=rows)
    g[:levels] = rng.permutation(levels)
    return g


def _factor(codes: np.ndarray, levels: int, prefix: str):
    import pandas as pd

    return pd.Categorical.from_codes(codes, categories=[f"{prefix}{i}" for i in range(levels)])


def simulate(model: str, rows: int, levels: int, seed: int = 20250101):
    """Data of one cell: population 0.5 + 1.0 x; see ``docs/performance.md``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    eta = 0.5 + 1.0 * x
    if model == "crossed":
        na, nb = CROSSED_LEVELS
        a, b = _codes(rng, rows, na), _codes(rng, rows, nb)
        eta += rng.normal(scale=0.5, size=na)[a] + rng.normal(scale=0.3, size=nb)[b]
        y = eta + rng.normal(size=rows)
        return pd.DataFrame({"y": y, "x": x, "a": _factor(a, na, "a"), "b": _factor(b, nb, "b")})
    g = _codes(rng, rows, levels)
    if model == "gaussian":  # sds 1 and 0.5, correlation -0.3, sigma 1
        sd, rho = np.array([1.0, 0.5]), -0.3
        cov = np.outer(sd, sd) * np.array([[1.0, rho], [rho, 1.0]])
        u = rng.multivariate_normal(np.zeros(2), cov, size=levels)
        y = eta + u[g, 0] + u[g, 1] * x + rng.normal(size=rows)
    else:  # bernoulli, sd 0.8
        eta += rng.normal(scale=0.8, size=levels)[g]
        y = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return pd.DataFrame({"y": y, "x": x, "g": _factor(g, levels, "g")})


def handwritten(model: str, data):
    """Index-based, non-centered PyMC model (``u = (L z)^T``, gathered with ``u[g]``).

    Priors follow Bambi's defaults (as in ``benchmarks.cases``) so both sides define about the
    same posterior; no rows x levels object is built.
    """
    import pymc as pm
    import pytensor.tensor as pt

    y = data["y"].to_numpy()
    x = data["x"].to_numpy(dtype=float)
    xbar, sx = x.mean(), x.std()
    xc = x - xbar
    gauss = model != "bernoulli"
    sy = y.std() if gauss else 1.0
    with pm.Model() as m:
        a_c = pm.Normal("Intercept_c", y.mean() if gauss else 0.0, 2.5 * sy if gauss else 1.5)
        b = pm.Normal("x", 0.0, 2.5 * sy / sx if gauss else 1.0 / sx)
        pm.Deterministic("Intercept", a_c - b * xbar)
        eta = a_c + b * xc
        if model == "gaussian":
            g = data["g"].cat.codes.to_numpy()
            chol, _, sd = pm.LKJCholeskyCov(
                "g_chol",
                n=2,
                eta=2.0,
                sd_dist=pm.HalfNormal.dist(np.array([2.5 * sy, 2.5 * sy / sx]), shape=2),
                compute_corr=True,
                store_in_trace=False,
            )
            pm.Deterministic("g_sd", sd)
            corr_chol = chol / sd[:, None]
            pm.Deterministic("g_corr", (corr_chol @ corr_chol.T)[1, 0])
            z = pm.Normal("g_z", 0.0, 1.0, shape=(2, data["g"].cat.categories.size))
            u = pt.dot(chol, z).T
            # one 1-d gather per column: ``u[g]`` on the (levels, 2) matrix then slicing costs
            # about 4x more per gradient (PyTensor's 2-d AdvancedIncSubtensor)
            eta = eta + u[:, 0][g] + u[:, 1][g] * x
        else:
            for f in ("a", "b") if model == "crossed" else ("g",):
                codes = data[f].cat.codes.to_numpy()
                sd = pm.HalfNormal(f"{f}_sd", 2.5 * sy if gauss else 2.5)
                z = pm.Normal(f"{f}_z", 0.0, 1.0, shape=data[f].cat.categories.size)
                eta = eta + (sd * z)[codes]
        if gauss:
            pm.Normal("y", eta, pm.HalfStudentT("sigma", nu=4, sigma=sy), observed=y)
        else:
            pm.Bernoulli("y", logit_p=eta, observed=y)
    return m


def time_gradient(model, seconds: float, max_evals: int, batches: int = 5) -> dict:
    """Compile logp+dlogp (as NUTS uses it) and time evaluations at the initial point.

    ``batches`` batches of about ``seconds / batches`` each; ms per gradient is the fastest
    batch's mean (as ``timeit`` does: the other jobs of a shared machine only slow batches down),
    the median batch is reported too.
    """
    from pymc.blocking import DictToArrayBijection

    t0 = time.perf_counter()
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    ip = model.initial_point()
    q = DictToArrayBijection.map({v.name: ip[v.name] for v in model.continuous_value_vars}).data
    logp, grad = f(q)
    compile_s = time.perf_counter() - t0
    assert np.isfinite(logp) and np.all(np.isfinite(grad)), "non-finite logp or gradient"
    t1 = time.perf_counter()
    f(q)
    f(q)
    guess = (time.perf_counter() - t1) / 2
    per_batch = int(min(max_evals / batches, max(1, seconds / batches / max(guess, 1e-9))))
    means = []
    for _ in range(batches):
        t1 = time.perf_counter()
        for _ in range(per_batch):
            f(q)
        means.append((time.perf_counter() - t1) / per_batch * 1e3)
    return {
        "grad_compile_s": compile_s,
        "ms_per_grad": min(means),
        "ms_per_grad_median": float(np.median(means)),
        "grad_evals": per_batch * batches,
        "n_params": q.size,
    }


def small_vars(posterior) -> list[str]:
    """Population effects, sds, correlations, sigma: variables with at most 16 values a draw."""
    return [
        v
        for v in posterior.data_vars
        if int(np.prod(posterior[v].shape[2:])) <= 16 and not v.endswith("_chol")
    ]


def diagnostics(idata) -> dict:
    import arviz as az

    post = idata["posterior"].to_dataset()
    names = small_vars(post)
    post = post[names]
    ess, rhat = az.ess(post, method="bulk"), az.rhat(post)
    e_all, r_all = [], []
    for v in names:
        ev, rv = np.asarray(ess[v].values, float), np.asarray(rhat[v].values, float)
        if ev.ndim == 2 and ev.shape[0] == ev.shape[1]:  # a correlation matrix: off-diagonal
            iu = np.triu_indices(ev.shape[0], 1)
            ev, rv = ev[iu], rv[iu]
        e_all += list(np.ravel(ev))
        r_all += list(np.ravel(rv))
    stats = idata["sample_stats"]
    div = int(stats["diverging"].values.sum()) if "diverging" in stats else -1
    return {
        "ess_bulk_min": float(np.nanmin(e_all)),
        "rhat_max": float(np.nanmax(r_all)),
        "divergences": div,
        "ess_vars": names,
    }


def sample(impl: str, fh_model, model, sampler: str, args) -> dict:
    t0 = time.perf_counter()
    common = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    if impl == "fh":
        fit = fh_model.fit(sampler=sampler, seed=args.seed, progressbar=False, **common)
        idata = fit.idata
    else:
        import pymc as pm

        kwargs = {"nuts_sampler": sampler, "target_accept": 0.9}  # fh's default
        if sampler == "pymc":
            kwargs["cores"] = min(args.chains, 2)
        with model:
            idata = pm.sample(random_seed=args.seed, progressbar=False, **common, **kwargs)
    out = {"sampling_s": time.perf_counter() - t0, **diagnostics(idata)}
    out["peak_gb"] = max(peak_gb(), peak_gb(resource.RUSAGE_CHILDREN))
    return out


def emit(stage: str, **values) -> None:
    values = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
    print(json.dumps({"stage": stage, **values}), flush=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale_one")
    ap.add_argument("model", choices=list(FORMULAS))
    ap.add_argument("rows", type=int)
    ap.add_argument("levels", type=int)
    ap.add_argument("impl", choices=["fh", "hand"])
    ap.add_argument("--mem-gb", type=float, default=8.0, help="RLIMIT_AS of this process")
    ap.add_argument("--fh-noncentered", default="nc", choices=["nc", "auto", "default"])
    ap.add_argument("--grad-seconds", type=float, default=2.0)
    ap.add_argument("--grad-max", type=int, default=100_000)
    ap.add_argument("--samplers", default="", help="comma-separated; empty: no sampling")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    cap = int(args.mem_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.simplefilter("ignore")

    stage = "simulate"
    try:
        t0 = time.perf_counter()
        data = simulate(args.model, args.rows, args.levels)
        emit(stage, simulate_s=time.perf_counter() - t0, data_peak_gb=peak_gb())
        stage = "import"
        t0 = time.perf_counter()
        if args.impl == "fh":
            import formulahier as lib
        else:
            import pymc as lib
        emit(stage, import_s=time.perf_counter() - t0, module=lib.__file__)
        stage = "build"
        fh_model = None
        t0 = time.perf_counter()
        if args.impl == "fh":
            formula, family = FORMULAS[args.model]
            # nc / auto: the full construction (non-centered, or chosen from the data) for a
            # like-for-like gradient against the hand-written model; default: formulahier's
            # defaults (collapsed gaussian models with one factor)
            options = {"nc": {"noncentered": True, "collapse": False},
                       "auto": {"noncentered": "auto", "collapse": False},
                       "default": {}}[args.fh_noncentered]  # fmt: skip
            if "collapse" in options and "collapse" not in inspect.signature(lib.Model).parameters:
                options.pop("collapse")  # an older formulahier (the "before" table)
            fh_model = lib.model(formula, data, family=family, **options)
            model = fh_model.pymc_model
        else:
            model = handwritten(args.model, data)
        emit(stage, build_s=time.perf_counter() - t0, peak_gb=peak_gb())
        stage = "grad"
        emit(stage, **time_gradient(model, args.grad_seconds, args.grad_max), peak_gb=peak_gb())
    except BaseException as exc:  # MemoryError under the cap included: record and exit
        emit(stage, error=first_line(exc), failed_peak_gb=peak_gb())
        sys.exit(1)
    failed = False
    for sampler in filter(None, args.samplers.split(",")):
        try:  # one sampler failing does not stop the other
            emit(f"sample:{sampler}", **sample(args.impl, fh_model, model, sampler, args))
        except Exception as exc:
            emit(f"sample:{sampler}", error=first_line(exc))
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
