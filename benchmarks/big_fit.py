"""One 10^6-row fit end to end: build, fit (collapsed), summary, ranef, LOO, save, load.

    python -m benchmarks.big_fit [--rows 1000000] [--levels 10000] [--draws 250] [--mem-gb 16]
    python -m benchmarks.big_fit --methods nuts,laplace --fit-only   # NUTS against Laplace

Prints the seconds and the peak memory (max RSS) after each step, so that "a 10^6-row fit can be
summarised, compared and saved on this machine" is measured, not assumed.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import warnings


def main() -> None:
    """Run the steps and print one line per step."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.big_fit")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--levels", type=int, default=10_000)
    ap.add_argument("--draws", type=int, default=250)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--mem-gb", type=float, default=16)
    ap.add_argument("--methods", default="nuts", help="comma-separated: nuts,laplace,...")
    ap.add_argument("--fit-only", action="store_true", help="only fit and summarise")
    args = ap.parse_args()
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.filterwarnings("ignore")
    import numpy as np
    import pandas as pd

    import formulahier as fh

    def step(name, t0):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(f"{name:32s} {time.perf_counter() - t0:7.1f} s   peak RSS {rss:5.2f} GB", flush=True)

    rng = np.random.default_rng(0)
    g = rng.integers(0, args.levels, args.rows)
    x = rng.normal(size=args.rows)
    u = rng.normal(size=(args.levels, 2)) * [1.0, 0.5]
    y = 0.5 + x + u[g, 0] + u[g, 1] * x + rng.normal(size=args.rows)
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    for method in args.methods.split(","):
        t = time.perf_counter()
        fit = fh.fit("y ~ x + (x | g)", data, draws=args.draws, tune=args.draws,
                     chains=args.chains, seed=1, progressbar=False, method=method,
                     **({"sampler": "nutpie"} if method == "nuts" else {}))  # fmt: skip
        step(f"fit {method} ({fit.settings['construction']})", t)
        t = time.perf_counter()
        str(fit)
        step("summary", t)
        fixef, sds = fit.fixef(), fit.varcorr()
        print(
            f"  {method}: " + ", ".join(
                f"{k} {fixef.loc[k, 'estimate']:.4f} ({fixef.loc[k, 'std_error']:.4f})"
                for k in fixef.index
            ),
            "| k-hat", round(float(fit.settings.get("khat", float("nan"))), 3),
        )
        print(sds.to_string())
    if args.fit_only:
        return
    t = time.perf_counter()
    ranef = fit.ranef()["g"]
    step(f"ranef ({len(ranef)} levels)", t)
    t = time.perf_counter()
    try:
        fit.loo()
        step("loo", t)
    except fh.MemoryLimitError as exc:
        print(f"loo refused: {str(exc)[:160]}...")
        t = time.perf_counter()
        res = fit.loo(thin=4)
        step(f"loo(thin=4): elpd {float(res.elpd):.0f}", t)
    path = os.path.join(tempfile.mkdtemp(), "big.nc")
    t = time.perf_counter()
    fit.save(path)
    step(f"save ({os.path.getsize(path) / 1e6:.0f} MB)", t)
    t = time.perf_counter()
    again = fh.load(path)
    str(again)
    step("load + summary", t)


if __name__ == "__main__":
    main()
