"""The whitened basis of a collapsed model's covariance, side by side in one process.

``python -m benchmarks.collapsed_basis [--cases sleepstudy,ozone] [--samplers pymc,nutpie]``
fits each case collapsed (4 chains x (1000 + 1000), seed 1) with the below-diagonal Cholesky
entries scaled by their column's diagonal (``new``, the default) and raw (``previous``,
``whitened_covariance(..., scaled=False)``), at ``target_accept`` 0.9 and 0.8, and prints one
JSON line per fit: total and NUTS-loop seconds, leapfrog steps per draw, divergences, min bulk
ESS of the sds, correlation and sigma. Results: ``benchmarks/results/collapsed_basis.jsonl``.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import time
import warnings

import numpy as np

CASES = {"sleepstudy": "Reaction ~ Days + (Days | Subject)",
         "ozone": "log_ozone ~ TEMP + (TEMP | station)"}  # fmt: skip


def one_fit(fh, formula: str, data, sampler: str, target_accept: float) -> dict:
    """Fit once; what the sampler spent and reached."""
    import arviz_stats as azs

    start = time.perf_counter()
    fit = fh.fit(formula, data, seed=1, progressbar=False, sampler=sampler,
                 target_accept=target_accept)  # fmt: skip
    total = time.perf_counter() - start
    stats = fit.idata["sample_stats"]
    post = fit.idata["posterior"].to_dataset()
    names = [v for v in post.data_vars if v == "sigma" or v.endswith("_corr")
             or ("|" in v and v.endswith("_sigma"))]  # fmt: skip
    ess = azs.ess(post[names], method="bulk")
    by_var = {}
    for k in names:
        values = np.asarray(ess[k].values, dtype=float)
        if k.endswith("_corr"):  # the diagonal is the constant 1
            values = values[np.triu_indices(values.shape[0], 1)]
        by_var[k] = round(float(np.nanmin(values)))
    loop = stats.attrs.get("sampling_time") or fit.idata["posterior"].attrs.get("sampling_time")
    return {"total_s": round(total, 1), "loop_s": None if loop is None else round(float(loop), 2),
            "steps_per_draw": round(float(stats["n_steps"].mean()), 2),
            "divergences": int(stats["diverging"].sum()), "min_ess": min(by_var.values()),
            "ess": by_var}  # fmt: skip


def main() -> None:
    """Run every case x sampler x basis x target_accept, one JSON line each."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.collapsed_basis")
    ap.add_argument("--cases", default="sleepstudy,ozone")
    ap.add_argument("--samplers", default="pymc,nutpie")
    ap.add_argument("--mem-gb", type=float, default=8)
    args = ap.parse_args()
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.filterwarnings("ignore")
    import formulahier as fh
    import formulahier.backend.collapsed_terms as terms
    from formulahier.collapsed import whitened_covariance

    bases = {"previous": functools.partial(whitened_covariance, scaled=False),
             "new": whitened_covariance}  # fmt: skip
    for case in args.cases.split(","):
        data = fh.datasets.load(case)
        for sampler in args.samplers.split(","):
            for basis, fn in bases.items():
                terms.whitened_covariance = fn  # what add_whitened_block calls
                for ta in (0.9, 0.8):
                    row = {"case": case, "sampler": sampler, "basis": basis, "target_accept": ta}
                    row.update(one_fit(fh, CASES[case], data, sampler, ta))
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
