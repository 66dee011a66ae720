"""Benchmark runner: ``python -m benchmarks [--models a,b] [--quick] [--cold a,b] [--report]``.

``python -m benchmarks --scale [...]`` runs the scale benchmark instead (``benchmarks/scale.py``;
``python -m benchmarks --scale --help`` lists its options).

Each fit runs in a fresh process (``benchmarks.run_one``) so import, compilation and peak memory
are measured per fit. Results are appended, one JSON object per line, to
``benchmarks/results/runs.jsonl``; the table (and ``results/table.md``, ``results/table.json``) is
built from the latest run of every cell, so the suite can be run in parts.

With ``--seeds 1,2,3`` every cell runs once per seed, the cells of one seed in turn (formulahier
next to the hand-written model), and the table shows per-cell medians over the seeds; the ratio
columns are medians of the per-seed ratios, so a single unlucky chain does not decide them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = RESULTS / "runs.jsonl"
CACHE = RESULTS / ".compiledir"  # persistent compile cache for the warm runs
REFERENCE = HERE.parent.parent / "shared" / "reference"

# (case, impl, param, sampler): fh with auto (the default) next to the hand-written model with the
# same parameterization; fh always-non-centered where auto centers; centered where auto does not.
PLAN: list[tuple[str, str, str, str]] = [
    ("sleepstudy", "fh", "auto", "pymc"),
    ("sleepstudy", "pymc", "auto", "pymc"),
    ("sleepstudy", "fh", "full", "pymc"),
    ("sleepstudy", "fh", "nc", "pymc"),
    ("sleepstudy", "fh", "auto", "nutpie"),
    ("sleepstudy", "pymc", "auto", "nutpie"),
    ("sleepstudy", "fh", "full", "nutpie"),
    ("ozone_slopes", "fh", "auto", "pymc"),
    ("ozone_slopes", "pymc", "auto", "pymc"),
    ("ozone_slopes", "fh", "full", "pymc"),
    ("ozone_slopes", "fh", "nc", "pymc"),
    ("ozone_slopes", "fh", "auto", "nutpie"),
    ("ozone_slopes", "fh", "full", "nutpie"),
    ("radon_intercepts", "fh", "auto", "pymc"),
    ("radon_intercepts", "pymc", "auto", "pymc"),
    ("radon_intercepts", "fh", "full", "pymc"),
    ("radon_intercepts", "fh", "c", "pymc"),
    ("radon_slopes", "fh", "auto", "pymc"),
    ("radon_slopes", "pymc", "auto", "pymc"),
    ("radon_slopes", "fh", "full", "pymc"),
    ("radon_slopes", "fh", "c", "pymc"),
    ("cbpp", "fh", "auto", "pymc"),
    ("cbpp", "pymc", "auto", "pymc"),
    ("crossed", "fh", "auto", "pymc"),
    ("crossed", "pymc", "auto", "pymc"),
    ("crossed", "fh", "c", "pymc"),
] + [
    (c, "fh", "auto", sampler)
    for sampler in ("auto", "nutpie", "nutpie-compiled")  # -compiled: nutpie's numba cfunc
    for c in ("sleepstudy", "ozone_slopes", "radon_intercepts", "radon_slopes", "cbpp", "crossed")
    if (c, sampler) not in (("sleepstudy", "nutpie"), ("ozone_slopes", "nutpie"))  # listed above
] + [
    # either side of AUTO_NUTPIE_CELLS (sampled, bernoulli) and of CALLBACK_MAX_CELLS
    # (collapsed, gaussian): every sampler "auto" might pick there
    (c, "fh", "auto", sampler)
    for c in ("bernoulli_100k", "bernoulli_400k", "gaussian_5k", "gaussian_20k")
    for sampler in ("nutpie-callbacks", "nutpie-compiled", "pymc")
]
# --methods laplace,pathfinder,advi: formulahier's defaults with an approximation instead of NUTS
APPROX = ("laplace", "pathfinder", "advi")


def cases() -> dict:
    """The benchmark cases; imported on first use so ``--scale`` runs from a light process (a
    child's ``ru_maxrss`` starts at its parent's peak RSS on Linux)."""
    from benchmarks.cases import CASES

    return CASES


def run_cell(cell, args, compiledir: Path, label: str, seed: int = 1) -> dict | None:
    case, impl, param, sampler = cell
    env = dict(os.environ)
    # base_compiledir, not compiledir: PyTensor 3 keeps its numba cache beside the compiledir,
    # under base_compiledir, so a new compiledir alone left numba's cache warm in "cold" runs
    env["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir}"
    env["NUMBA_CACHE_DIR"] = str(compiledir / "numba")
    cmd = [sys.executable, "-m", "benchmarks.run_one", case, impl, param]
    if sampler in APPROX:
        cmd += ["--method", sampler]
    else:  # "nutpie-compiled" / "nutpie-callbacks": nutpie with its log-density route forced
        name, _, route = sampler.partition("-")
        cmd += ["--sampler", name] + (["--nutpie-route", route] if route else [])
    cmd += ["--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]
    cmd += ["--seed", str(seed)]
    if args.target_accept:
        cmd += ["--target-accept", str(args.target_accept)]
    print(f"[{label}] {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE.parent)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        print(proc.stderr[-3000:], file=sys.stderr)
        return None
    row = json.loads(lines[-1])
    row["run"] = label
    row["seed"] = seed
    RESULTS.mkdir(exist_ok=True)
    with RUNS.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def brms_row(case: str) -> dict | None:
    ref = cases()[case].reference
    path = REFERENCE / f"{ref}.json" if ref else None
    if path is None or not path.exists():
        return None
    ref = json.loads(path.read_text())
    rows = list(ref.get("brms_fixed", []))
    for block in ref.get("brms_random", {}).values():
        rows += block
    if not rows or not ref.get("brms_seconds_total"):
        return None
    ess = min(r["Bulk_ESS"] for r in rows)
    secs = ref["brms_seconds_total"]
    return {"ess": ess, "seconds": secs, "ess_per_s": ess / secs}


def table(rows: list[dict]) -> str:
    head = (
        "| model | rows | groups | impl | sampler | param | run | total s | MCMC s | min bulk ESS "
        "| ESS/s | max r_hat | div | peak MB |"
    )
    out = [head, "|" + "---|" * 14]
    for r in rows:
        out.append(
            f"| {r['case']} | {r['rows']} | {r['groups']} | {r['impl']} | {r['sampler']} "
            f"| {r['param']} ({r['chosen']}) | {r['run']} | {r['total_s']:.1f} "
            f"| {r.get('mcmc_s', float('nan')):.1f} "
            f"| {r['ess_bulk_min']:.0f} | {r['ess_per_s']:.1f} | {r['rhat_max']:.3f} "
            f"| {r['divergences']} | {r['peak_mb']:.0f} |"
        )
    return "\n".join(out)


def phase_table(rows: list[dict]) -> str:
    """Seconds per phase (run_one.py's docstring says what each holds), one row per cell."""
    keys = ("import", "import_backend", "build", "compile", "sample", "summarise")
    out = [
        "| model | impl | sampler / method | param | run | " + " | ".join(keys)
        + " | process s | k-hat |",
        "|" + "---|" * (len(keys) + 7),
    ]
    for r in rows:
        ph = r.get("phases")
        if not ph:
            continue
        used = r.get("sampler_used", r["sampler"])
        name = r["sampler"] if used == r["sampler"] else f"{r['sampler']} ({used})"
        khat = r.get("khat")
        out.append(
            f"| {r['case']} | {r['impl']} | {name} | {r['param']} | {r['run']} | "
            + " | ".join(f"{ph.get(k, float('nan')):.2f}" for k in keys)
            + f" | {r.get('process_s', float('nan')):.1f} | "
            + (f"{khat:.2f}" if isinstance(khat, float) and khat == khat else "-")
            + " |"
        )
    return "\n".join(out)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def aggregate(rows: list[dict]) -> list[dict]:
    """One row per cell: medians over seeds (divergences summed, r_hat the largest)."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault(_cell(r), []).append(r)
    out = []
    for group in cells.values():
        row = dict(group[0])
        for key in ("total_s", "mcmc_s", "ess_bulk_min", "ess_per_s", "peak_mb", "process_s"):
            row[key] = _median([g[key] for g in group if key in g])
        if all(g.get("phases") for g in group):
            row["phases"] = {
                k: _median([g["phases"][k] for g in group]) for k in group[0]["phases"]
            }
        row["rhat_max"] = max(g["rhat_max"] for g in group)
        row["divergences"] = sum(g["divergences"] for g in group)
        row["seeds"] = len(group)
        out.append(row)
    return out


def _cell(r: dict) -> tuple:
    return (r["case"], r["impl"], r["param"], r["sampler"], r["run"])


def ratios(rows: list[dict]) -> str:
    """Per-seed ratios of ESS/s, then their median (and range when several seeds ran)."""
    by = {(*_cell(r), r.get("seed", 1)): r for r in rows}
    out = [
        "| model | ESS/s fh / hand-written | ESS/s auto / the other param. "
        "| ESS/s auto / full (collapse=False) | ESS/s fh / brms |"
    ]
    out.append("|---|---|---|---|---|")

    def fmt(values: list[float], suffix: str = "") -> str:
        if not values:
            return "-"
        text = f"{_median(values):.2f}"
        if len(values) > 1:
            text += f" ({min(values):.2f}-{max(values):.2f}, {len(values)} seeds)"
        return text + suffix

    for case in cases():
        fhs = {k[-1]: r for k, r in by.items() if k[:-1] == (case, "fh", "auto", "pymc", "warm")}
        if not fhs:
            continue
        some = next(iter(fhs.values()))
        other = "c" if some["chosen"].endswith(":nc") else "nc"
        hand, alt, full = [], [], []
        for seed, fh in fhs.items():
            h = by.get((case, "pymc", "auto", "pymc", "warm", seed))
            a = by.get((case, "fh", other, "pymc", "warm", seed))
            f = by.get((case, "fh", "full", "pymc", "warm", seed))
            if h:
                hand.append(fh["ess_per_s"] / h["ess_per_s"])
            if a:
                alt.append(fh["ess_per_s"] / a["ess_per_s"])
            if f:
                full.append(fh["ess_per_s"] / f["ess_per_s"])
        brms = brms_row(case)
        best = _median([r["ess_per_s"] for r in fhs.values()])
        cells = [
            fmt(hand),
            fmt(alt, f" (vs {other})"),
            fmt(full),
            f"{best / brms['ess_per_s']:.1f}" if brms else "-",
        ]
        out.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _loop(r: dict) -> float:
    """ESS per second of the NUTS loop alone (no build, compile or summary)."""
    return r["ess_bulk_min"] / r["mcmc_s"]


def collapse_ratios(rows: list[dict]) -> str:
    """ESS/s of the default (collapsed where exact) over ``collapse=False``, same sampler and
    seed: on the whole fit's time and on the NUTS loop alone (medians over seeds)."""
    by = {(*_cell(r), r.get("seed", 1)): r for r in rows}
    out = [
        "| model | sampler | seeds | min bulk ESS auto / full | NUTS loop s auto / full "
        "| ESS/s (total time) auto / full | ESS/s (NUTS loop) auto / full |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases():
        for sampler in ("pymc", "nutpie"):
            pairs = []
            for key, a in by.items():
                if key[:5] != (case, "fh", "auto", sampler, "warm"):
                    continue
                f = by.get((case, "fh", "full", sampler, "warm", key[5]))
                if f and a["chosen"] == "collapsed":
                    pairs.append((a, f))
            if not pairs:
                continue

            def med(fn, pairs=pairs):
                vals = [fn(a, f) for a, f in pairs]
                text = f"{_median(vals):.2f}"
                return text + (f" ({min(vals):.2f}-{max(vals):.2f})" if len(vals) > 1 else "")

            out.append(
                f"| {case} | {sampler} | {len(pairs)} "
                f"| {med(lambda a, f: a['ess_bulk_min'] / f['ess_bulk_min'])} "
                f"| {med(lambda a, f: a['mcmc_s'] / f['mcmc_s'])} "
                f"| {med(lambda a, f: a['ess_per_s'] / f['ess_per_s'])} "
                f"| {med(lambda a, f: _loop(a) / _loop(f))} |"
            )
    return "\n".join(out)


def latest(settings: dict) -> list[dict]:
    if not RUNS.exists():
        return []
    rows = {}
    for line in RUNS.read_text().splitlines():
        r = json.loads(line)
        if any(r.get(k) != v for k, v in settings.items()):
            continue
        rows[(*_cell(r), r.get("seed", 1))] = r
    order = {c: i for i, c in enumerate(cases())}
    return sorted(rows.values(), key=lambda r: (order[r["case"]], r["run"] != "cold"))


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--scale" in argv:
        from benchmarks.scale import main as scale_main

        return scale_main(argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--scale", action="store_true", help="run the scale benchmark (see above)")
    ap.add_argument("--models", default=",".join(cases()), help="comma-separated case names")
    ap.add_argument("--quick", action="store_true", help="2 chains x 300 draws after 300 warm-up")
    ap.add_argument("--cold", default="sleepstudy", help="cases also run cold ('' for none)")
    ap.add_argument("--impl", default="fh,pymc", help="which implementations to run")
    ap.add_argument("--samplers", default="pymc,nutpie,auto")
    ap.add_argument(
        "--methods",
        default="",
        help="also fit formulahier's defaults with these approximations (laplace,pathfinder,advi)",
    )
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--target-accept", type=float, default=None)
    ap.add_argument("--seeds", default="1", help="comma-separated seeds; medians over them")
    ap.add_argument(
        "--params",
        default="auto,full,nc,c",
        help="auto: formulahier's defaults (collapsed where exact); full: same, collapse=False; "
        "nc / c: forced parameterization, collapse=False",
    )
    ap.add_argument("--report", action="store_true", help="only print the table of stored runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.draws, args.tune, args.chains = 300, 300, 2
    models = [m for m in args.models.split(",") if m]
    seeds = [int(x) for x in args.seeds.split(",") if x]
    unknown = set(models) - set(cases())
    if unknown:
        ap.error(f"unknown models {sorted(unknown)}; choose from {list(cases())}")
    cold = set(filter(None, args.cold.split(",")))
    impls, samplers = set(args.impl.split(",")), set(args.samplers.split(","))
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    settings["target_accept"] = args.target_accept
    if not args.report:
        CACHE.mkdir(parents=True, exist_ok=True)
        params = set(args.params.split(","))
        methods = [m for m in args.methods.split(",") if m]
        plan = PLAN + [(c, "fh", "auto", m) for c in cases() for m in methods]
        samplers |= set(methods)
        for seed in seeds:
            for cell in plan:
                if cell[0] not in models or cell[1] not in impls or cell[3] not in samplers:
                    continue
                if cell[2] not in params:
                    continue
                if cell[0] in cold and cell[2] == "auto":
                    with tempfile.TemporaryDirectory(prefix="fh-cold-") as tmp:
                        run_cell(cell, args, Path(tmp), "cold", seed)
                run_cell(cell, args, CACHE, "warm", seed)
    rows = [r for r in latest(settings) if r["case"] in models and r.get("seed", 1) in seeds]
    text = table(aggregate(rows)) + "\n\n" + ratios(rows) + "\n\n" + collapse_ratios(rows)
    text += "\n\nSeconds per phase:\n\n" + phase_table(aggregate(rows))
    print(text)
    RESULTS.mkdir(exist_ok=True)
    tag = f"{args.chains}x{args.draws}+{args.tune}"
    if args.target_accept:
        tag += f"_ta{args.target_accept:g}"
    if seeds != [1]:
        tag += "_seeds" + "-".join(map(str, seeds))
    (RESULTS / f"table_{tag}.md").write_text(text + "\n")
    (RESULTS / f"table_{tag}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
