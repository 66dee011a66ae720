"""One 10^6-row fit end to end: build, fit (collapsed), summary, ranef, LOO, save, load.

    python -m benchmarks.big_fit [--rows 1000000] [--levels 10000] [--draws 250] [--mem-gb 16]
    python -m benchmarks.big_fit --methods nuts,laplace --fit-only   # NUTS against Laplace
    python -m benchmarks.big_fit --chains 4 --draws 1000 --tune 1000 --samplers auto,pymc,nutpie \
        --fit-only                                                 # issue 17's target, per sampler

Prints the seconds and the peak memory (max RSS) after each step, so that "a 10^6-row fit can be
summarised, compared and saved on this machine" is measured, not assumed. For NUTS the fit is
split into phases: build (``fh.model`` and the PyMC graph), compile (the rest of the fit call
outside the NUTS loop: graph rewriting, numba/C compile, initialisation), the NUTS loop (as the
sampler reports it) and the exact draws of the group effects; then max r_hat and min bulk ESS
(population effects, sds, correlation, sigma; and max r_hat over every group effect), divergences
and how many levels have their effects drawn (finite in every draw). ``--samplers`` fits once
per sampler, each after the other in this process (peak RSS is then the largest so far: run
one sampler per process to measure each one's).
"""

from __future__ import annotations

import argparse
import contextlib
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
    ap.add_argument("--tune", type=int, default=None, help="warm-up draws (default: --draws)")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument(
        "--samplers",
        default="nutpie",
        help="comma-separated: auto, pymc, nutpie; nutpie-callbacks / nutpie-compiled force "
        "nutpie's route",
    )
    ap.add_argument("--mem-gb", type=float, default=16)
    ap.add_argument("--methods", default="nuts", help="comma-separated: nuts,laplace,...")
    ap.add_argument("--fit-only", action="store_true", help="only fit and summarise")
    args = ap.parse_args()
    cap = int(args.mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.filterwarnings("ignore")
    import numpy as np
    import pandas as pd

    def step(name, t0):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        child = f" (largest child process {kids:.2f} GB)" if kids else ""
        print(f"{name:32s} {time.perf_counter() - t0:7.1f} s   peak RSS {rss:5.2f} GB{child}")

    t = time.perf_counter()
    import formulahier as fh
    import formulahier.api  # noqa: F401  (what the first fh.model() imports: Bambi, PyMC)
    from formulahier import samplers

    step("import", t)
    t = time.perf_counter()

    rng = np.random.default_rng(0)
    g = rng.integers(0, args.levels, args.rows)
    x = rng.normal(size=args.rows)
    u = rng.normal(size=(args.levels, 2)) * [1.0, 0.5]
    y = 0.5 + x + u[g, 0] + u[g, 1] * x + rng.normal(size=args.rows)
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    step("simulate", t)
    runs = [("nuts", s) if m == "nuts" else (m, None) for m in args.methods.split(",")
            for s in (args.samplers.split(",") if m == "nuts" else [None])]  # fmt: skip
    for method, sampler in runs:
        t = time.perf_counter()
        model = fh.model("y ~ x + (x | g)", data)
        _ = model.pymc_model
        step("build", t)
        name, _, route = (sampler or "").partition("-")
        samplers.NUTPIE_ROUTE = route or None
        t = time.perf_counter()
        with exact_draws_timed() as exact:
            fit = model.fit(draws=args.draws, tune=args.tune or args.draws, chains=args.chains,
                            seed=1, progressbar=False, method=method,
                            **({"sampler": name} if method == "nuts" else {}))  # fmt: skip
        used = f"{fit.settings['sampler']}{'-' + route if route else ''}"
        step(f"fit {method} ({fit.settings['construction']}, {used})", t)
        if method == "nuts":
            nuts_report(fit, time.perf_counter() - t, exact[0])
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


@contextlib.contextmanager
def exact_draws_timed():
    """Time the exact draws of the group effects inside ``Model.fit`` (a list of seconds)."""
    from formulahier import modeling

    seconds, inner = [0.0], modeling.add_exact_effects

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            seconds[0] += time.perf_counter() - t0

    modeling.add_exact_effects = timed
    try:
        yield seconds
    finally:
        modeling.add_exact_effects = inner


def nuts_report(fit, fit_s: float, exact_s: float) -> None:
    """Phases of a NUTS fit and its diagnostics, one line each."""
    import numpy as np
    from arviz_stats import rhat

    from benchmarks.scale_one import diagnostics

    loop = float(fit.idata["posterior"].attrs.get("sampling_time", float("nan")))
    print(f"  phases: compile+init {fit_s - loop - exact_s:.1f} s, NUTS loop {loop:.1f} s, "
          f"exact draws {exact_s:.1f} s")  # fmt: skip
    d = diagnostics(fit.idata)
    post = fit.idata["posterior"].to_dataset()
    effects = [v for v in post.data_vars if v.endswith("|g")]
    drawn = min(int(np.isfinite(post[v].values).all(axis=(0, 1)).sum()) for v in effects)
    levels = post[effects[0]].shape[-1]
    r_effects = max(float(np.nanmax(rhat(post[[v]])[v].values)) for v in effects)
    print(f"  min bulk ESS {d['ess_bulk_min']:.0f}, max r_hat {d['rhat_max']:.4f} "
          f"({', '.join(d['ess_vars'])}), max r_hat of the group effects {r_effects:.4f}, "
          f"divergences {d['divergences']}, levels drawn {drawn} of {levels} ({effects}), "
          f"ESS/s {d['ess_bulk_min'] / fit_s:.1f} (fit) {d['ess_bulk_min'] / loop:.1f} (loop), "
          f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
