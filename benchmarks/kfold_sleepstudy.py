"""k-fold CV of the sleepstudy model against PSIS-LOO, timed (whole-process wall times).

    python -m benchmarks.kfold_sleepstudy [--K 10] [--chains 4] [--draws 1000]

Fits ``Reaction ~ Days + (Days | Subject)`` (defaults: collapse="auto", pymc sampler), then
``fit.kfold(K)`` with random folds and ``fit.loo()``; prints and writes
``benchmarks/results/kfold_sleepstudy.json``: elpd_kfold, se, p_kfold, elpd_loo, se, the
difference in units of the k-fold se, the times, the compilations the folds took (1: the
collapsed model's folds share one compiled graph) and the load average. Also
leave-one-subject-out (``folds="grouped"``) with ``--grouped``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--grouped", action="store_true")
    ap.add_argument("--mem-gb", type=float, default=8)
    args = ap.parse_args()
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.filterwarnings("ignore")
    import formulahier as fh

    sleep = fh.datasets.load("sleepstudy")
    t0 = time.perf_counter()
    fit = fh.fit("Reaction ~ Days + (Days | Subject)", sleep, chains=args.chains,
                 draws=args.draws, tune=args.draws, seed=args.seed, progressbar=False)  # fmt: skip
    t_fit = time.perf_counter() - t0
    loo = fit.loo()
    t1 = time.perf_counter()
    kf = fit.kfold(K=args.K, seed=args.seed)
    t_kfold = time.perf_counter() - t1
    out = {"K": args.K, "chains": args.chains, "draws": args.draws,
           "construction": fit.settings["construction"], "fit_seconds": t_fit,
           "kfold_seconds": t_kfold, "elpd_kfold": kf.elpd, "se_kfold": kf.se, "p_kfold": kf.p,
           "elpd_loo": float(loo.elpd), "se_loo": float(loo.se), "p_loo": float(loo.p),
           "kfold_compilations": kf.compilations, "kfold_compile_seconds": kf.compile_seconds,
           "load_average_1min_at_end": os.getloadavg()[0]}  # fmt: skip
    out["diff_in_se"] = (out["elpd_kfold"] - out["elpd_loo"]) / out["se_kfold"]
    if args.grouped:
        t2 = time.perf_counter()
        kg = fit.kfold(K=18, folds="grouped", seed=args.seed)
        out.update(grouped_seconds=time.perf_counter() - t2, elpd_logo=kg.elpd, se_logo=kg.se,
                   p_logo=kg.p, grouped_compilations=kg.compilations)  # fmt: skip
    print(json.dumps(out, indent=1))
    path = ROOT / "benchmarks/results/kfold_sleepstudy.json"
    path.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
