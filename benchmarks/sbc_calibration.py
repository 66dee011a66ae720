"""Calibration evidence: SBC of each group-level construction, on a local Dask cluster.

    python -m benchmarks.sbc_calibration --sims 200 --configs all

For each construction (``CONFIGS``): ``fh.sbc`` with ``--sims`` simulations on a
sleepstudy-sized design (18 groups x 10 rows), by default 2 chains x 500 draws after 500 warm-up
(nutpie, target_accept 0.9), ranks over every 10th draw (L = 100), on a
``dask.distributed.LocalCluster`` (one worker process, whose nutpie chains use the 2 cores:
chains x workers <= cores). Each construction draws its own simulations: the seed is
``--seed`` plus the construction's position in ``CONFIGS`` (two runs of one seed refit the same
data sets, so they are not two pieces of evidence). Writes ``benchmarks/results/sbc_<name>.json``
(ranks, per-simulation ESS, chi-square and pot_c p-values, compilations, times, load average)
and ``docs/img/sbc_<name>_ecdf.png`` / ``_hist.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def sleep_design() -> pd.DataFrame:
    """The sleepstudy design: Days 0..9 for 18 subjects (the response only scales nothing here)."""
    import formulahier as fh

    return fh.datasets.load("sleepstudy")


def binomial_design(seed: int = 3) -> pd.DataFrame:
    """18 groups x 10 rows, 10 trials each, a standard-normal predictor."""
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i:02d}" for i in range(18)], 10)
    return pd.DataFrame({"x": rng.normal(size=g.size), "g": g, "n": 10,
                         "s": rng.integers(0, 11, size=g.size)})  # fmt: skip


def crossed_design(seed: int = 4) -> pd.DataFrame:
    """18 levels of ``a`` fully crossed with 10 of ``b`` (180 rows), a predictor."""
    rng = np.random.default_rng(seed)
    a, b = np.meshgrid(np.arange(18), np.arange(10), indexing="ij")
    frame = pd.DataFrame({"a": [f"a{i:02d}" for i in a.ravel()],
                          "b": [f"b{i}" for i in b.ravel()]})  # fmt: skip
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = rng.normal(size=len(frame))
    return frame


def priors(cor: bool = True, sigma: bool = True):
    """Proper priors (SBC needs the same in simulation and fit; these keep draws sensible)."""
    import formulahier as fh

    out = [fh.prior("normal(0, 1)", "b"), fh.prior("normal(0, 1)", "Intercept"),
           fh.prior("normal(0, 1)", "sd")]  # fmt: skip
    if cor:
        out.append(fh.prior("lkj(2)", "cor"))
    if sigma:
        out.append(fh.prior("normal(0, 1)", "sigma"))
    return out


CONFIGS = {
    "noncentered": dict(formula="Reaction ~ Days + (Days | Subject)", design=sleep_design,
                        options=dict(collapse=False, noncentered=True)),
    "centered": dict(formula="Reaction ~ Days + (Days | Subject)", design=sleep_design,
                     options=dict(collapse=False, noncentered=False)),
    "independent": dict(formula="Reaction ~ Days + (Days || Subject)", design=sleep_design,
                        options=dict(collapse=False, noncentered=True), cor=False),
    "binomial": dict(formula="cbind(s, n - s) ~ x + (1 | g)", design=binomial_design,
                     options=dict(family="binomial", noncentered=True), cor=False, sigma=False),
    "crossed": dict(formula="y ~ x + (1 | a) + (1 | b)", design=crossed_design,
                    options=dict(noncentered=True), cor=False),
    "collapsed_default": dict(formula="Reaction ~ Days + (Days | Subject)",
                              design=sleep_design, options=dict(collapse=True)),
}  # fmt: skip


def plots(result, name: str) -> None:
    img = ROOT / "docs/img"
    result.plot("ecdf").savefig(img / f"sbc_{name}_ecdf.png", dpi=80)
    result.plot("hist").savefig(img / f"sbc_{name}_hist.png", dpi=80)


def replot(names: list[str]) -> None:
    """Redraw the plots from the saved results (no sampling)."""
    import matplotlib.pyplot as plt

    import formulahier as fh

    for name in names:
        saved = json.loads((ROOT / "benchmarks/results" / f"sbc_{name}.json").read_text())
        plots(fh.SBCResult.from_dict(saved), name)
        plt.close("all")


def run(name: str, args, client) -> dict:
    import formulahier as fh

    cfg = CONFIGS[name]
    seed = args.seed + list(CONFIGS).index(name)  # each construction its own simulations
    options = dict(cfg["options"])
    family = options.pop("family", "gaussian")
    result = fh.sbc(cfg["formula"], cfg["design"](), n_sims=args.sims, family=family,
                    priors=priors(cfg.get("cor", True), cfg.get("sigma", True)), client=client,
                    seed=seed, draws=args.draws, tune=args.tune, chains=2, thin=args.thin,
                    target_accept=args.target_accept, **options)  # fmt: skip
    out = result.to_dict()
    out["name"], out["options"], out["formula"] = name, cfg["options"], cfg["formula"]
    out["command"] = "python -m benchmarks.sbc_calibration " + " ".join(args.argv)
    out["seed"], out["load_average_1min_at_end"] = seed, os.getloadavg()[0]
    name = name + args.suffix
    (ROOT / "benchmarks/results" / f"sbc_{name}.json").write_text(json.dumps(out, indent=1))
    plots(result, name)
    print(f"== {name}: {len(result.ranks)} sims, {len(result.failed)} failed, "
          f"{result.compilations} compilation(s) ({result.compile_seconds:.0f} s), "
          f"{result.seconds:.0f} s, divergent sims {int((result.divergences > 0).sum())}",
          flush=True)  # fmt: skip
    table = result.test()
    if result.ess is not None:
        table["min_ess"] = result.ess.min()
        table["sims_ess_below_L"] = (result.ess < result.n_draws).sum()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--thin", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2027)
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--suffix", default="", help="appended to the output names")
    ap.add_argument("--configs", default="all", help="comma-separated names, or all")
    ap.add_argument("--scheduler", default="local",
                    help="'local' (a LocalCluster), 'none' (no Dask) or a tcp:// address")
    ap.add_argument("--mem-gb", type=float, default=16)
    ap.add_argument("--replot", action="store_true", help="redraw plots from saved results")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))  # per process; workers inherit it
    warnings.filterwarnings("ignore")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    import matplotlib

    matplotlib.use("Agg")
    names = list(CONFIGS) if args.configs == "all" else args.configs.split(",")
    if args.replot:
        return replot(names)
    client = None
    if args.scheduler == "local":
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                               dashboard_address=":0")  # fmt: skip
        client = Client(cluster)
    elif args.scheduler != "none":
        from dask.distributed import Client

        client = Client(args.scheduler)
    start = time.perf_counter()
    for name in names:
        run(name, args, client)
    print(f"all done in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
