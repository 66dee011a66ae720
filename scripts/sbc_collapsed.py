"""Simulation-based calibration of the collapsed gaussian construction (public API only).

For each simulation: draw every parameter and a response from the model's prior (the *full*
model, which samples the group effects, on the user's design: predictors and groups kept), fit
the *collapsed* model to that response, and record the rank of the true value among thinned
posterior draws, for the population effects, the sds, the correlation, sigma and two group
effects (drawn exactly after sampling). If the construction is right, every rank is uniform
(Talts et al. 2018). Ranks are tested with a chi-square test on ``--bins`` bins.

    python scripts/sbc_collapsed.py --sims 100 --out benchmarks/results/sbc_collapsed.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats


def design(seed: int = 7, levels: int = 12, per_level: int = 6) -> pd.DataFrame:
    """The user's design kept across simulations: predictor and groups."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), per_level)
    return pd.DataFrame({"x": rng.normal(size=g.size), "g": [f"g{i:02d}" for i in g]})


PARAMS = {
    "Intercept": ("Intercept", None),
    "x": ("x", None),
    "sd(Intercept)": ("1|g_sigma", None),
    "sd(x)": ("x|g_sigma", None),
    "cor(Intercept,x)": ("g_corr", (0, 1)),
    "sigma": ("sigma", None),
    "r_g[g00,Intercept]": ("1|g", 0),
    "r_g[g03,x]": ("x|g", 3),
}


def _value(ds, name, index):
    v = np.asarray(ds[name])
    if index is None:
        return v.reshape(v.shape[0], v.shape[1]) if v.ndim > 2 else v
    if isinstance(index, tuple):
        return v[..., index[0], index[1]]
    return v[..., index]


def main() -> None:
    """Run the simulations and write the ranks and p-values."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--thin", type=int, default=3)
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/sbc_collapsed.json")
    ap.add_argument("--mem-gb", type=float, default=8)
    args = ap.parse_args()
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.filterwarnings("ignore")
    import formulahier as fh

    frame = design()
    formula = "y ~ x + (x | g)"
    # a prior under which the model is well identified (priors matter for SBC only through
    # being the same in simulation and fit; these keep the draws in a sensible range)
    priors = [
        fh.prior("normal(0, 1)", "b"),
        fh.prior("normal(0, 1)", "Intercept"),
        fh.prior("normal(0, 1)", "sd"),
        fh.prior("lkj(2)", "cor"),
        fh.prior("normal(0, 1)", "sigma"),
    ]
    base = frame.assign(y=np.random.default_rng(0).normal(size=len(frame)))
    full = fh.model(formula, base, priors=priors, collapse=False)
    pp = full.prior_predictive(draws=args.sims, seed=args.seed)
    prior, ys = pp["prior"].to_dataset(), pp["prior_predictive"]["y"].values[0]
    ranks = {k: [] for k in PARAMS}
    t0, failed = time.perf_counter(), 0
    for s in range(args.sims):
        data = frame.assign(y=ys[s])
        try:
            fit = fh.fit(formula, data, priors=priors, draws=args.draws, tune=args.tune,
                         chains=2, seed=100 + s, progressbar=False)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - count and go on
            failed += 1
            print(f"sim {s}: {type(exc).__name__}: {exc}")
            continue
        assert fit.settings["construction"] == "collapsed"
        post = fit.idata["posterior"]
        for key, (name, index) in PARAMS.items():
            truth = _value(prior, name, index)[0, s]
            if key == "Intercept":  # the prior's intercept is for centered x, as Bambi samples it
                truth -= frame["x"].mean() * _value(prior, "x", None)[0, s]
            draws = _value(post, name, index).reshape(-1)[:: args.thin]
            ranks[key].append(int((draws < truth).sum()))
        if s % 10 == 0:
            print(f"sim {s}: {time.perf_counter() - t0:.0f} s", flush=True)
    n_post = len(range(0, 2 * args.draws, args.thin))
    out = {"sims": args.sims, "failed": failed, "posterior_draws": n_post,
           "seconds": time.perf_counter() - t0, "bins": args.bins, "params": {}}  # fmt: skip
    for key, r in ranks.items():
        counts = np.histogram(r, bins=args.bins, range=(0, n_post + 1))[0]
        p = stats.chisquare(counts).pvalue
        out["params"][key] = {"counts": counts.tolist(), "p_value": float(p)}
        print(f"{key:22s} chi2 p = {p:.3f}  {counts.tolist()}")
    with open(args.out, "w") as fh_out:
        json.dump(out, fh_out, indent=1)


if __name__ == "__main__":
    main()
