"""NUTS against the approximate methods, side by side in one run, per phase, one fresh process each.

    python -m benchmarks.approx                                   # ozone and the 10^6-row model
    python -m benchmarks.approx --models sleepstudy,ozone,radon_intercepts,radon_slopes,cbpp
    python -m benchmarks.approx --models big --methods laplace    # one cell

Every (model, method) cell runs in its own fresh process (``--cell MODEL METHOD``), with its
address space capped (``--mem-gb``), so no cell profits from another's compiled functions. A
cell prints one JSON line: seconds per phase (``import`` of formulahier and of the backend,
``build`` = data + ``fh.model`` + the PyMC graph, ``fit``, ``summary`` = the printed summary),
the approximation's own steps (``fit.settings["phases"]``), the sampler that ran, the Pareto
k-hat and the verdict, and the estimates. The parent prints two tables: wall times with the
ratio of NUTS's fit time to each method's (and of build + fit), and the accuracy of each method
against the NUTS fit of the same run (population effects in NUTS posterior sds, group-level sds
and sigma in %, posterior sds, i.e. interval widths, in %), with the k-hat and the verdict the
summary printed. The load average is printed beside every cell: the machine is shared.

Models: ``sleepstudy``, ``ozone``, ``radon_intercepts``, ``radon_slopes``, ``cbpp`` (the
reference models of ``benchmarks.cases``; default draws 4 x 1000 after 1000 warm-up) and
``big``: ``y ~ x + (x | g)``, 10^6 rows, 10^4 levels (``benchmarks.scale_one.simulate``;
2 x 250 draws after 250 warm-up, as ``benchmarks.big_fit``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODELS = ("sleepstudy", "ozone", "radon_intercepts", "radon_slopes", "cbpp", "big",
          "bernoulli_100k_100")  # fmt: skip
METHODS = ("nuts", "laplace", "pathfinder", "advi")
# laplace_raw: the collapsed Laplace with q's own draws (no PSIS resampling), for before/after
EXTRA_METHODS = ("laplace_raw",)
CASE_NAMES = {"ozone": "ozone_slopes"}  # benchmarks.cases names


def _data_and_formula(name: str):
    if name == "big":
        from benchmarks.scale_one import FORMULAS, simulate

        formula, family = FORMULAS["gaussian"]
        return simulate("gaussian", 1_000_000, 10_000), formula, family, (250, 250, 2)
    from benchmarks.cases import CASES, simulate_bernoulli

    if name == "bernoulli_100k_100":  # never collapsed; 100 levels: a Hessian pymc-extras can
        data = simulate_bernoulli(100_000, n_g=100)  # afford (1,000 levels: > 25 min)
        return data, "y ~ x + (1 | g)", "bernoulli", (1000, 1000, 4)
    case = CASES[CASE_NAMES.get(name, name)]
    return case.data(), case.formula, case.family, (1000, 1000, 4)


def _estimates(fit) -> dict:
    """Population effects (mean, sd) and group-level sds, correlations and sigma (mean)."""
    fixef = fit.fixef()
    out = {"fixef": {k: [float(fixef.loc[k, "estimate"]), float(fixef.loc[k, "std_error"])]
                     for k in fixef.index}}  # fmt: skip
    sds, errors = {}, {}
    for row in fit.varcorr().itertuples():
        if row.group == "Residual":
            name = "sigma"
        elif isinstance(row.var2, str):
            name = f"cor({row.var1},{row.var2}|{row.group})"
        else:
            name = f"sd({row.var1}|{row.group})"
        sds[name], errors[name] = float(row.estimate), float(row.std_error)
    out["sds"], out["sd_errors"] = sds, errors
    return out


def cell(model: str, method: str, mem_gb: float, sampler: str = "auto") -> dict:
    """One fit in this process; the dict printed as the cell's JSON line."""
    cap = int(mem_gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import warnings

    warnings.filterwarnings("ignore")
    times, cpu = {}, {}  # wall seconds; CPU seconds of the process (all threads)
    t, c = time.perf_counter(), time.process_time()
    import formulahier as fh
    import formulahier.backend  # noqa: F401  (Bambi, PyMC, PyTensor)

    times["import"], times["backend import"] = 0.0, time.perf_counter() - t
    cpu["import"] = time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    data, formula, family, (draws, tune, chains) = _data_and_formula(model)
    m = fh.model(formula, data, family=family)
    m.build()
    times["build"] = time.perf_counter() - t
    cpu["build"] = time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    how = {"sampler": sampler} if method == "nuts" else {}
    if method == "laplace_raw":
        import formulahier.approx

        formulahier.approx.PSIS_RESAMPLE = False
    fit = m.fit(
        method=method.removesuffix("_raw"), draws=draws, tune=tune, chains=chains, seed=1,
        progressbar=False, **how,
    )  # fmt: skip
    times["fit"] = time.perf_counter() - t
    cpu["fit"] = time.process_time() - c
    # the method's own time (the NUTS loop; the approximation's steps after the compile) and
    # the rest of the fit (compile, initialisation, the exact group effects: paid by both)
    steps = fit.settings.get("phases", {})
    if method == "nuts":
        loop = fit.idata["posterior"].attrs.get("sampling_time")
        times["method"] = float("nan") if loop is None else float(loop)
    elif "compile" in steps:  # the collapsed Laplace: its own steps after the compile
        times["method"] = sum(v for k, v in steps.items() if k not in ("compile", "finish"))
    else:  # pymc-extras / PyMC: the whole approximation, their compiles included
        times["method"] = times["fit"] - steps.get("finish", 0.0)
    times["fit rest"] = times["fit"] - times["method"]
    t, c = time.perf_counter(), time.process_time()
    text = str(fit)
    times["summary"] = time.perf_counter() - t
    cpu["summary"] = time.process_time() - c
    verdict = fit.settings.get("verdict", "")
    return {
        "model": model,
        "method": method,
        "times": times,
        "cpu_phases": cpu,
        "steps": steps,
        "sampler": fit.settings.get("sampler"),
        "construction": fit.settings.get("construction"),
        "khat": fit.settings.get("khat"),
        "verdict": verdict,
        "header_names_method": f"method {method.removesuffix('_raw')}" in text
        or method == "nuts",
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        # CPU seconds of the process (all threads): less moved by a shared machine's load
        "cpu": sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f)
                   for f in ("ru_utime", "ru_stime")),  # fmt: skip
        **_estimates(fit),
    }


def _run_cell(model: str, method: str, mem_gb: float, sampler: str = "auto") -> dict:
    load = os.getloadavg()[0]
    cmd = [sys.executable, "-m", "benchmarks.approx", "--cell", model, method,
           "--mem-gb", str(mem_gb), "--sampler", sampler]  # fmt: skip
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"model": model, "method": method, "error": out.stderr.strip()[-400:],
                "load": load}  # fmt: skip
    result = json.loads(lines[-1])
    result.update(process=wall, load=load)
    return result


def _tier(verdict: str) -> str:
    for words, tier in (("NOT reliable", "NOT reliable"), ("roughly", "roughly right"),
                        ("close enough", "close"), ("unknown", "unknown")):  # fmt: skip
        if words in verdict:
            return tier
    return "-"


def _print_times(results: list[dict]) -> None:
    print("\n| model | method | sampler / construction | load | import s | build s | fit s | "
          "summary s | process s | NUTS fit / fit | NUTS (build+fit) / (build+fit) | steps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    nuts = {r["model"]: r for r in results if r["method"] == "nuts" and "error" not in r}
    for r in results:
        if "error" in r:
            print(f"| {r['model']} | {r['method']} | error: {r['error'][-120:]} |")
            continue
        t = r["times"]
        ref = nuts.get(r["model"])
        ratio = both = "-"
        if ref is not None:
            ratio = f"{ref['times']['fit'] / t['fit']:.1f}x"
            both = (ref["times"]["build"] + ref["times"]["fit"]) / (t["build"] + t["fit"])
            both = f"{both:.1f}x"
        steps = ", ".join(f"{k} {v:.2f}" for k, v in r["steps"].items())
        print(f"| {r['model']} | {r['method']} | {r['sampler']}, {r['construction']} | "
              f"{r['load']:.1f} | {t['import'] + t['backend import']:.2f} | {t['build']:.2f} | "
              f"{t['fit']:.2f} | {t['summary']:.2f} | {r['process']:.1f} | {ratio} | {both} | "
              f"{steps} |")  # fmt: skip


def _fixed(r: dict) -> float:
    """Seconds of the process outside the method's own time: what both sides pay."""
    return r["process"] - r["times"]["method"]


def _print_split(results: list[dict]) -> None:
    """Whole process = fixed costs + the method's own time, and what the ratio can reach."""
    print("\n| model | method | load | import s | build s | fit rest s (compile, init, exact "
          "effects) | method s | process s | NUTS process / process | NUTS method / method | "
          "at most (NUTS process / this fixed) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    nuts = {r["model"]: r for r in results if r["method"] == "nuts" and "error" not in r}
    for r in results:
        if "error" in r:
            continue
        t, ref = r["times"], nuts.get(r["model"])
        ratios = ["-", "-", "-"]
        if ref is not None and r is not ref:
            ratios = [f"{ref['process'] / r['process']:.1f}x",
                      f"{ref['times']['method'] / max(t['method'], 1e-9):.0f}x",
                      f"{ref['process'] / _fixed(r):.1f}x"]  # fmt: skip
        print(f"| {r['model']} | {r['method']} | {r['load']:.1f} | "
              f"{t['import'] + t['backend import']:.2f} | {t['build']:.2f} | {t['fit rest']:.2f} | "
              f"{t['method']:.2f} | {r['process']:.1f} | {' | '.join(ratios)} |")  # fmt: skip


def _print_cpu(results: list[dict]) -> None:
    """CPU seconds per phase (all threads): what a quiet machine's wall time would be near."""
    rows = [r for r in results if "cpu_phases" in r]
    if not rows:
        return
    print("\n| model | method | load | CPU s: imports | build | fit | summary | process | "
          "NUTS CPU / CPU |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    nuts = {r["model"]: r for r in rows if r["method"] == "nuts"}
    for r in rows:
        c, ref = r["cpu_phases"], nuts.get(r["model"])
        ratio = "-" if ref is None or ref is r else f"{ref['cpu'] / r['cpu']:.1f}x"
        print(f"| {r['model']} | {r['method']} | {r['load']:.1f} | {c['import']:.2f} | "
              f"{c['build']:.2f} | {c['fit']:.2f} | {c['summary']:.2f} | {r['cpu']:.1f} | "
              f"{ratio} |")  # fmt: skip


def _print_accuracy(results: list[dict]) -> None:
    nuts = {r["model"]: r for r in results if r["method"] == "nuts" and "error" not in r}
    print("\n| model | method | k-hat | verdict | worst population effect (NUTS sds) | "
          "worst group sd / sigma (%) | worst posterior sd (%) | every estimate |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        ref = nuts.get(r["model"])
        if "error" in r or r["method"] == "nuts" or ref is None:
            continue
        pop = {k: (v[0] - ref["fixef"][k][0]) / ref["fixef"][k][1] for k, v in r["fixef"].items()}
        rel = {k: 100 * (v / ref["sds"][k] - 1) for k, v in r["sds"].items()
               if not k.startswith("cor(")}  # fmt: skip
        cor = {k: v - ref["sds"][k] for k, v in r["sds"].items() if k.startswith("cor(")}
        widths = {k: 100 * (v[1] / ref["fixef"][k][1] - 1) for k, v in r["fixef"].items()}
        widths.update({k: 100 * (v / ref["sd_errors"][k] - 1)
                       for k, v in r["sd_errors"].items()})  # fmt: skip
        worst_width = max(widths.items(), key=lambda kv: abs(kv[1]))
        worst_pop = max(pop.items(), key=lambda kv: abs(kv[1]))
        worst_sd = max(rel.items(), key=lambda kv: abs(kv[1]))
        every = "; ".join(
            [f"{k} {v:+.2f} sd" for k, v in pop.items()]
            + [f"{k} {v:+.1f}%" for k, v in rel.items()]
            + [f"{k} {v:+.3f}" for k, v in cor.items()]
        )
        khat = r["khat"]
        khat = "-" if khat is None or khat != khat else f"{khat:.2f}"
        print(f"| {r['model']} | {r['method']} | {khat} | {_tier(r['verdict'])} | "
              f"{worst_pop[0]} {worst_pop[1]:+.2f} | {worst_sd[0]} {worst_sd[1]:+.1f}% | "
              f"{worst_width[0]} {worst_width[1]:+.0f}% | {every} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.approx")
    ap.add_argument("--models", default="ozone,big", help=f"comma-separated, of {MODELS}")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"of {METHODS + EXTRA_METHODS}")
    ap.add_argument("--mem-gb", type=float, default=8.0)
    ap.add_argument("--sampler", default="auto", help="NUTS's sampler (the approximations: none)")
    ap.add_argument("--cell", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write every cell's result to this file")
    ap.add_argument("--report", help="print the tables of a --json file of an earlier run")
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(cell(*args.cell, args.mem_gb, args.sampler)), flush=True)
        return
    if args.report:
        with open(args.report) as f:
            results = json.load(f)
        _print_times(results)
        _print_split(results)
        _print_cpu(results)
        _print_accuracy(results)
        return
    results = []
    for model in args.models.split(","):
        for method in args.methods.split(","):
            r = _run_cell(model, method, args.mem_gb, args.sampler)
            results.append(r)
            print(json.dumps(r), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    _print_times(results)
    _print_split(results)
    _print_cpu(results)
    _print_accuracy(results)


if __name__ == "__main__":
    main()
