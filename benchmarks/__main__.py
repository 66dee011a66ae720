"""Benchmark runner: ``python -m benchmarks [--models a,b] [--quick] [--cold a,b] [--report]``.

Each fit runs in a fresh process (``benchmarks.run_one``) so import, compilation and peak memory
are measured per fit. Results are appended, one JSON object per line, to
``benchmarks/results/runs.jsonl``; the table (and ``results/table.md``, ``results/table.json``) is
built from the latest run of every cell, so the suite can be run in parts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.cases import CASES

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
    ("sleepstudy", "fh", "nc", "pymc"),
    ("sleepstudy", "fh", "auto", "nutpie"),
    ("sleepstudy", "pymc", "auto", "nutpie"),
    ("ozone_slopes", "fh", "auto", "pymc"),
    ("ozone_slopes", "pymc", "auto", "pymc"),
    ("ozone_slopes", "fh", "nc", "pymc"),
    ("ozone_slopes", "fh", "auto", "nutpie"),
    ("radon_intercepts", "fh", "auto", "pymc"),
    ("radon_intercepts", "pymc", "auto", "pymc"),
    ("radon_intercepts", "fh", "c", "pymc"),
    ("radon_slopes", "fh", "auto", "pymc"),
    ("radon_slopes", "pymc", "auto", "pymc"),
    ("radon_slopes", "fh", "c", "pymc"),
    ("cbpp", "fh", "auto", "pymc"),
    ("cbpp", "pymc", "auto", "pymc"),
    ("crossed", "fh", "auto", "pymc"),
    ("crossed", "pymc", "auto", "pymc"),
    ("crossed", "fh", "c", "pymc"),
]


def run_cell(cell, args, compiledir: Path, label: str) -> dict | None:
    case, impl, param, sampler = cell
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"compiledir={compiledir}"
    env["NUMBA_CACHE_DIR"] = str(compiledir / "numba")
    cmd = [sys.executable, "-m", "benchmarks.run_one", case, impl, param, "--sampler", sampler]
    cmd += ["--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]
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
    RESULTS.mkdir(exist_ok=True)
    with RUNS.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def brms_row(case: str) -> dict | None:
    path = REFERENCE / f"{CASES[case].reference}.json" if CASES[case].reference else None
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


def ratios(rows: list[dict]) -> str:
    by = {(r["case"], r["impl"], r["param"], r["sampler"], r["run"]): r for r in rows}
    out = ["| model | ESS/s fh / hand-written | ESS/s auto / the other param. | ESS/s fh / brms |"]
    out.append("|---|---|---|---|")
    for case in CASES:
        fh = by.get((case, "fh", "auto", "pymc", "warm"))
        if fh is None:
            continue
        hand = by.get((case, "pymc", "auto", "pymc", "warm"))
        other = "c" if fh["chosen"].endswith(":nc") else "nc"
        nc = by.get((case, "fh", other, "pymc", "warm"))
        brms = brms_row(case)
        cells = [
            f"{fh['ess_per_s'] / hand['ess_per_s']:.2f}" if hand else "-",
            f"{fh['ess_per_s'] / nc['ess_per_s']:.2f} (vs {other})" if nc else "-",
            f"{fh['ess_per_s'] / brms['ess_per_s']:.1f}" if brms else "-",
        ]
        out.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def latest(settings: dict) -> list[dict]:
    if not RUNS.exists():
        return []
    rows = {}
    for line in RUNS.read_text().splitlines():
        r = json.loads(line)
        if any(r.get(k) != v for k, v in settings.items()):
            continue
        rows[(r["case"], r["impl"], r["param"], r["sampler"], r["run"])] = r
    order = {c: i for i, c in enumerate(CASES)}
    return sorted(rows.values(), key=lambda r: (order[r["case"]], r["run"] != "cold"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--models", default=",".join(CASES), help="comma-separated case names")
    ap.add_argument("--quick", action="store_true", help="2 chains x 300 draws after 300 warm-up")
    ap.add_argument("--cold", default="sleepstudy", help="cases also run cold ('' for none)")
    ap.add_argument("--impl", default="fh,pymc", help="which implementations to run")
    ap.add_argument("--samplers", default="pymc,nutpie")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--target-accept", type=float, default=None)
    ap.add_argument("--report", action="store_true", help="only print the table of stored runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.draws, args.tune, args.chains = 300, 300, 2
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(CASES)
    if unknown:
        ap.error(f"unknown models {sorted(unknown)}; choose from {list(CASES)}")
    cold = set(filter(None, args.cold.split(",")))
    impls, samplers = set(args.impl.split(",")), set(args.samplers.split(","))
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    settings["target_accept"] = args.target_accept
    if not args.report:
        CACHE.mkdir(parents=True, exist_ok=True)
        for cell in PLAN:
            if cell[0] not in models or cell[1] not in impls or cell[3] not in samplers:
                continue
            if cell[0] in cold and cell[2] == "auto":
                with tempfile.TemporaryDirectory(prefix="fh-cold-") as tmp:
                    run_cell(cell, args, Path(tmp), "cold")
            run_cell(cell, args, CACHE, "warm")
    rows = [r for r in latest(settings) if r["case"] in models]
    text = table(rows) + "\n\n" + ratios(rows)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    tag = f"{args.chains}x{args.draws}+{args.tune}"
    if args.target_accept:
        tag += f"_ta{args.target_accept:g}"
    (RESULTS / f"table_{tag}.md").write_text(text + "\n")
    (RESULTS / f"table_{tag}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
