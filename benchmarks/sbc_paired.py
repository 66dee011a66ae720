"""Paired SBC diagnostic: the same simulated data sets fitted by three constructions.

    python -m benchmarks.sbc_paired --sims 200 --seed 2026 --sim-graph nc

Draws ``--sims`` parameter sets and responses from the prior of ``Reaction ~ Days +
(Days | Subject)`` on the sleepstudy design (the seed's sequence as ``fh.sbc`` draws it; the
full non-centered graph with ``--sim-graph nc``, the centered one with ``c``), then fits every
simulated response with the full non-centered, the full centered and the collapsed construction
(nutpie, 2 chains x 300 draws after ``--tune`` warm-up, target_accept 0.9), each compiled once.
Records, per construction and simulation, each parameter's rank among every 3rd draw (L = 200),
its bulk ESS, posterior mean and sd, and the divergences. If the constructions are the same
model and each samples it well, the ranks agree simulation by simulation: a skew of the ranks
that all three share belongs to the simulated data sets, not to a construction. Writes
``benchmarks/results/sbc_paired_<graph>_<seed>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FORMULA = "Reaction ~ Days + (Days | Subject)"
FITS = {"nc": dict(collapse=False, noncentered=True), "c": dict(collapse=False, noncentered=False),
        "col": dict(collapse=True)}  # fmt: skip


def summary(path: Path) -> None:
    """Per construction: divergent fits, mean rank / L, chi-square p (20 bins), median ESS;
    then the rank correlation of each full construction with the collapsed one."""
    from scipy import stats

    saved, L = json.loads(path.read_text()), 200
    for name in FITS:
        rec = saved[name]
        print(f"{name}: {sum(d > 0 for d in rec['div'])} fits with divergences")
        for k, v in rec["rank"].items():
            v = np.asarray(v)
            counts = np.histogram(v, bins=np.linspace(0, L + 1, 21))[0]
            print(f"  {k:30s} mean rank/L {v.mean() / L:.3f}  chi2 p "
                  f"{stats.chisquare(counts).pvalue:.3f}  median ESS "
                  f"{np.median(rec['ess'][k]):.0f}")  # fmt: skip
    for k in saved["col"]["rank"]:
        col = np.asarray(saved["col"]["rank"][k])
        parts = [f"{name}-col corr {np.corrcoef(saved[name]['rank'][k], col)[0, 1]:.3f}, mean "
                 f"difference {np.mean(np.asarray(saved[name]['rank'][k]) - col):+.1f}"
                 for name in ("nc", "c")]  # fmt: skip
        print(f"{k:30s} " + "; ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--sim-graph", choices=("nc", "c"), default="nc")
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--mem-gb", type=float, default=8)
    ap.add_argument("--summary", action="store_true", help="print the saved result's summary")
    args = ap.parse_args()
    path = ROOT / "benchmarks/results" / f"sbc_paired_{args.sim_graph}_{args.seed}.json"
    if args.summary:
        return summary(path)
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.filterwarnings("ignore")
    import arviz_stats as azs

    import formulahier as fh
    from benchmarks.sbc_calibration import priors

    S = importlib.import_module("formulahier.sbc")
    n, sleep, pri = args.sims, fh.datasets.load("sleepstudy"), priors()
    sim = fh.model(FORMULA, sleep, priors=pri, collapse=False, noncentered=args.sim_graph == "nc")
    base = np.random.SeedSequence(args.seed)  # as fh.sbc seeds its prior draws
    pp = sim.prior_predictive(draws=n, seed=int(base.generate_state(1)[0] % (2**31 - 1)))
    truths = S._scalar_params(sim, pp["prior"].to_dataset())
    ys = np.asarray(pp["prior_predictive"]["Reaction"]).reshape(n, -1)
    out: dict = {"truth": {k: v.tolist() for k, v in truths.items()}, "settings": vars(args)}
    for name, opts in FITS.items():
        job = {"key": name, "formula": FORMULA, "data": sim.data,
               "model_options": dict(opts, priors=pri), "sampler": "nutpie", "draws": 300,
               "tune": args.tune, "chains": 2, "thin": 3,
               "sampler_options": {"target_accept": 0.9}}  # fmt: skip
        (model, pmm, comp), compile_s, _ = S._build(job)
        rec: dict = {"rank": {}, "ess": {}, "mean": {}, "sd": {}, "div": []}
        start = time.perf_counter()
        for s in range(n):
            post, div = S._sample(model, pmm, comp, job, ys[s], 1000 + s)
            draws = S._scalar_params(model, post)
            rec["div"].append(div)
            for k, v in draws.items():
                rec["rank"].setdefault(k, []).append(int((v[::3] < truths[k][s]).sum()))
                rec["ess"].setdefault(k, []).append(float(azs.ess(v.reshape(2, -1))))
                rec["mean"].setdefault(k, []).append(float(v.mean()))
                rec["sd"].setdefault(k, []).append(float(v.std()))
        rec["compile_seconds"], rec["sampling_seconds"] = compile_s, time.perf_counter() - start
        print(f"{name}: compile {compile_s:.0f} s, sampling {rec['sampling_seconds']:.0f} s",
              flush=True)  # fmt: skip
        out[name] = rec
    out["load_average_1min_at_end"] = os.getloadavg()[0]
    path.write_text(json.dumps(out))
    summary(path)


if __name__ == "__main__":
    main()
