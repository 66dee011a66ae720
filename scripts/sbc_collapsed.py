"""Simulation-based calibration of the collapsed gaussian construction, through ``fh.sbc``.

Draws every parameter and a response from the model's prior on a fixed design (12 groups x 6
rows, one predictor), fits the *collapsed* model (group effects integrated out while sampling)
to each, and tests the ranks of the population effects, sds, correlation and sigma for
uniformity (chi-square on binned ranks and ArviZ's pot_c; ``fh.SBCResult.test``). One compiled
model serves every simulation (``compilations`` in the output).

    python scripts/sbc_collapsed.py --sims 100 --out benchmarks/results/sbc_collapsed.json

``--nested``: nested factors, ``y ~ x + (x | g) + (1 | g:h)`` (8 groups x 3 subgroups x 4 rows),
collapsed in two stages (inner levels, then outer); the sd of ``1|g:h`` is ranked too.

    python scripts/sbc_collapsed.py --nested --sims 200 \
        --out benchmarks/results/sbc_collapsed_nested.json

The six constructions at 200 simulations each: ``python -m benchmarks.sbc_calibration``.
"""

from __future__ import annotations

import argparse
import json
import resource
import warnings

import numpy as np
import pandas as pd


def design(seed: int = 7, levels: int = 12, per_level: int = 6) -> pd.DataFrame:
    """The user's design kept across simulations: predictor and groups."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), per_level)
    return pd.DataFrame({"x": rng.normal(size=g.size), "g": [f"g{i:02d}" for i in g],
                         "y": rng.normal(size=g.size)})  # fmt: skip


def nested_design(seed: int = 7, levels: int = 8, inner: int = 3, rows: int = 4) -> pd.DataFrame:
    """Groups ``g`` with ``inner`` subgroups ``h`` each (labels repeat across groups)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), inner * rows)
    h = np.tile(np.repeat(np.arange(inner), rows), levels)
    return pd.DataFrame({"x": rng.normal(size=g.size), "g": [f"g{i:02d}" for i in g],
                         "h": [f"h{i}" for i in h], "y": rng.normal(size=g.size)})  # fmt: skip


def main() -> None:
    """Run the simulations and write the ranks and p-values."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--thin", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/sbc_collapsed.json")
    ap.add_argument("--mem-gb", type=float, default=16)
    ap.add_argument("--nested", action="store_true", help="(x | g) + (1 | g:h), nested")
    args = ap.parse_args()
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.filterwarnings("ignore")
    import formulahier as fh

    priors = [fh.prior("normal(0, 1)", "b"), fh.prior("normal(0, 1)", "Intercept"),
              fh.prior("normal(0, 1)", "sd"), fh.prior("lkj(2)", "cor"),
              fh.prior("normal(0, 1)", "sigma")]  # fmt: skip
    formula, data = "y ~ x + (x | g)", design()
    if args.nested:
        formula, data = "y ~ x + (x | g) + (1 | g:h)", nested_design()
    res = fh.sbc(formula, data, n_sims=args.sims, priors=priors, collapse=True,
                 seed=args.seed, draws=args.draws, tune=args.tune, chains=2,
                 thin=args.thin)  # fmt: skip
    print(res)
    with open(args.out, "w") as out:
        json.dump(res.to_dict(), out, indent=1)


if __name__ == "__main__":
    main()
