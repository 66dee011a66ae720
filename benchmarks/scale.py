"""Scale benchmark: ``python -m benchmarks --scale [options]``.

Simulated data on a grid of rows x levels for ``y ~ x + (x | g)`` (gaussian) and ``y ~ x +
(1 | g)`` (bernoulli), plus a crossed ``y ~ x + (1 | a) + (1 | b)`` (3,000 x 1,000 levels).
Every (cell, implementation) runs in a fresh process (``benchmarks/scale_one.py``, run as a
script so that ``formulahier`` comes from ``PYTHONPATH`` or the installed package) whose address
space is capped with ``RLIMIT_AS``. Measured: building the model (formulahier: ``fh.model`` plus
``m.pymc_model``; hand: an index-based PyMC model), the peak RSS of that process (data included),
the cost of one logp+gradient evaluation and, with ``--sample``, sampling. A cell that fails (the
cap, a timeout, a crash) is recorded with the error's first line and the run goes on.

Rows are appended to ``--output`` (JSON lines); the Markdown table (``--table``) is rebuilt from
the latest row of every (model, rows, levels, impl) in that file, so a grid can be run in parts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = RESULTS / ".compiledir"
ONE = HERE / "scale_one.py"
MODELS = ("gaussian", "bernoulli", "crossed")
CROSSED = "3000x1000"


def _ints(text: str) -> list[int]:
    return [int(float(t)) for t in text.split(",") if t]


def grid(args) -> list[tuple[str, int, str]]:
    """(model, rows, levels) cells; levels > rows / 2 are skipped; crossed has its own rows."""
    cells = []
    for model in args.models:
        if model == "crossed":
            cells += [("crossed", rows, CROSSED) for rows in args.crossed_rows]
            continue
        cells += [
            (model, rows, str(levels))
            for rows in args.rows
            for levels in args.levels
            if levels <= rows / 2
        ]
    return cells


def run_one(cell, impl: str, args) -> dict:
    model, rows, levels = cell
    cmd = [sys.executable, str(ONE), model, str(rows), levels.split("x")[0], impl]
    cmd += ["--mem-gb", str(args.mem_gb), "--fh-noncentered", args.fh_noncentered]
    cmd += ["--grad-seconds", str(args.grad_seconds), "--grad-max", str(args.grad_max)]
    if args.sample:
        cmd += ["--samplers", ",".join(args.samplers)]
        cmd += ["--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]
        cmd += ["--seed", str(args.seed)]
    env = dict(os.environ)
    # --cold: a new, empty cache directory for this process. base_compiledir, not compiledir:
    # PyTensor 3 keeps its numba cache under base_compiledir (beside the compiledir), so a new
    # compiledir alone leaves that cache warm; numba's own cache is NUMBA_CACHE_DIR
    cache = Path(tempfile.mkdtemp(prefix="fh-scale-cold-")) if args.cold else CACHE
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    label = "cold" if args.cold else "warm"
    print(f"[scale] {model} rows={rows} levels={levels} {impl} {label}", file=sys.stderr)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=RESULTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends the sampler's workers too
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    finally:
        if args.cold:
            shutil.rmtree(cache, ignore_errors=True)
    row = {"model": model, "rows": rows, "levels": levels, "impl": impl, "mem_gb": args.mem_gb}
    row["cache"] = label
    row["fh_noncentered"] = args.fh_noncentered if impl == "fh" else "nc"
    for line in out.splitlines():
        if line.startswith("{"):
            stage = json.loads(line)
            name = stage.pop("stage")
            if name.startswith("sample:"):
                row.setdefault("sampling", {})[name[7:]] = stage
            elif "error" in stage:
                row["error"] = f"{name}: {stage['error']}"
                row["failed_peak_gb"] = stage.get("failed_peak_gb")
            else:
                row.update(stage)
    if timed_out:
        row["error"] = f"timeout after {args.timeout:.0f} s"
    elif proc.returncode and "error" not in row and not row.get("sampling"):
        tail = [ln for ln in err.splitlines() if ln.strip()]
        why = f"exit status {proc.returncode}"
        if proc.returncode < 0:
            why = f"killed by signal {-proc.returncode}"
        row["error"] = f"{why}: {tail[-1][:300] if tail else ''}"
    if row.get("error"):
        print(err[-2000:], file=sys.stderr)
    if args.sample:
        row["settings"] = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    row["process_s"] = round(time.perf_counter() - t0, 1)
    row["commit"] = _commit(row.get("module"))
    row["date"] = time.strftime("%Y-%m-%d %H:%M")
    return row


def _commit(module: str | None) -> str | None:
    if not module or "site-packages" in module:
        return None
    res = subprocess.run(
        ["git", "-C", str(Path(module).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    return res.stdout.strip() or None


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _level_key(levels: str) -> int:
    out = 1
    for part in levels.split("x"):
        out *= int(part)
    return out


def _sampling_cell(row: dict | None, sampler: str) -> str:
    s = (row or {}).get("sampling", {}).get(sampler)
    if not s:
        return "-"
    if "error" in s:
        return "failed"
    return (
        f"{s['sampling_s']:.0f} s, ESS {s['ess_bulk_min']:.0f}, r̂ {s['rhat_max']:.3f}, "
        f"{s['divergences']} div"
    )


def table(rows: list[dict]) -> str:
    """One line per (model, rows, levels), formulahier next to the hand-written model."""
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        key = (r["model"], r["rows"], r["levels"], r.get("cache", "warm"))
        cells.setdefault(key, {})[r["impl"]] = r
    samplers = sorted(
        {s for r in rows for s in r.get("sampling", {})}, key=["pymc", "nutpie"].index
    )
    head = [
        "model",
        "rows",
        "levels",
        "cache",
        "fh build s",
        "fh peak GB",
        "hand build s",
        "hand peak GB",
        "fh compile s",
        "hand compile s",
        "fh ms/grad",
        "hand ms/grad",
        "ratio",
    ]
    head += [
        f"{impl} {s} (sampling s, min bulk ESS, max r̂, div)"
        for s in samplers
        for impl in ("fh", "hand")
    ]
    head.append("notes")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = {m: i for i, m in enumerate(MODELS)}
    for key in sorted(cells, key=lambda k: (order[k[0]], k[1], _level_key(k[2]), k[3])):
        by = cells[key]
        fh, hand = by.get("fh"), by.get("hand")

        def get(r, k, fmt):
            if r is None:
                return "-"
            if k not in r and r.get("error"):
                at = r.get("failed_peak_gb")
                return f"failed at {at:.2f}" if k == "peak_gb" and at is not None else "failed"
            return _num(r.get(k), fmt)

        ratio = "-"
        if fh and hand and fh.get("ms_per_grad") and hand.get("ms_per_grad"):
            ratio = f"{fh['ms_per_grad'] / hand['ms_per_grad']:.2f}"
        line = [key[0], f"{key[1]:,}", key[2], key[3]]
        line += [get(fh, "build_s", ".1f"), get(fh, "peak_gb", ".2f")]
        line += [get(hand, "build_s", ".1f"), get(hand, "peak_gb", ".2f")]
        line += [get(fh, "grad_compile_s", ".1f"), get(hand, "grad_compile_s", ".1f")]
        line += [get(fh, "ms_per_grad", ".3g"), get(hand, "ms_per_grad", ".3g"), ratio]
        line += [_sampling_cell(r, s) for s in samplers for r in (fh, hand)]
        notes = []
        for impl, r in (("fh", fh), ("hand", hand)):
            if r and r.get("error"):
                notes.append(f"{impl} (cap {r['mem_gb']:g} GB): {r['error']}")
            for s, v in (r or {}).get("sampling", {}).items():
                if "error" in v:
                    notes.append(f"{impl} {s}: {v['error']}")
        line.append("; ".join(notes).replace("|", "\\|"))
        out.append("| " + " | ".join(line) + " |")
    return "\n".join(out)


def latest(path: Path) -> list[dict]:
    rows: dict[tuple, dict] = {}
    if path.exists():
        for text in path.read_text().splitlines():
            if text.strip():
                r = json.loads(text)
                key = (r["model"], r["rows"], r["levels"], r["impl"], r.get("cache", "warm"))
                rows[key] = r
    return list(rows.values())


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks --scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--scale", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--models", default=",".join(MODELS), help="gaussian,bernoulli,crossed")
    ap.add_argument("--rows", default="1e4,1e5,1e6", help="rows of the gaussian/bernoulli grid")
    ap.add_argument("--levels", default="1e2,1e3,1e4,1e5", help="levels of that grid")
    ap.add_argument("--crossed-rows", default="1e6", help="rows of the crossed model")
    ap.add_argument("--impl", default="fh,hand", help="fh (formulahier), hand (hand-written)")
    ap.add_argument(
        "--fh-noncentered",
        default="nc",
        choices=["nc", "auto", "default"],
        help="formulahier's construction: nc (non-centered), auto (parameterization chosen from "
        "the data), default (formulahier's defaults: collapsed gaussian models with one factor); "
        "hand-written: always non-centered",
    )
    ap.add_argument("--mem-gb", type=float, default=8.0, help="address-space cap of each process")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="every process with empty PyTensor and numba caches (rows marked cold; default: "
        "the persistent cache in results/.compiledir, rows marked warm)",
    )
    ap.add_argument(
        "--grad-seconds", type=float, default=3.0, help="time spent timing gradients (5 batches)"
    )
    ap.add_argument("--grad-max", type=int, default=100_000, help="at most this many gradients")
    ap.add_argument("--sample", action="store_true", help="also sample with --samplers")
    ap.add_argument("--samplers", default="pymc,nutpie")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", type=Path, default=RESULTS / "scale.jsonl", help="JSON lines")
    ap.add_argument(
        "--table", type=Path, default=None, help="Markdown table (default: --output with .md)"
    )
    ap.add_argument("--report", action="store_true", help="only rebuild and print the table")
    return ap


def main(argv=None) -> None:
    ap = parser()
    args = ap.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    if set(args.models) - set(MODELS):
        ap.error(f"unknown models {sorted(set(args.models) - set(MODELS))}; choose from {MODELS}")
    args.rows, args.levels = _ints(args.rows), _ints(args.levels)
    args.crossed_rows = _ints(args.crossed_rows)
    args.samplers = [s for s in args.samplers.split(",") if s]
    impls = [i for i in ("fh", "hand") if i in args.impl.split(",")]
    table_path = args.table or args.output.with_suffix(".md")
    if not args.report:
        CACHE.mkdir(parents=True, exist_ok=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        for cell in grid(args):
            for impl in impls:
                row = run_one(cell, impl, args)
                with args.output.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), file=sys.stderr, flush=True)
    rows = latest(args.output)
    text = table(rows)
    table_path.write_text(caption(rows, args.output) + "\n\n" + text + "\n")
    print(text)


def caption(rows: list[dict], path: Path) -> str:
    commits = sorted({r["commit"] for r in rows if r.get("commit") and r["impl"] == "fh"})
    dates = sorted(r["date"] for r in rows if r.get("date"))
    span = f"{dates[0]} to {dates[-1]}" if dates else "-"
    return (
        f"Scale benchmark (`python -m benchmarks --scale`), latest row of each cell in "
        f"`{path.name}`, run {span}; formulahier at {', '.join(commits) or '-'}. "
        "cache: warm (the persistent compile cache) or cold (empty PyTensor and numba caches); "
        "build s: `fh.model(...)` + `m.pymc_model` (hand: the index-based PyMC model); peak GB: "
        "max RSS of the process (data included; `failed at`: when it failed); compile s: "
        "compiling logp+gradient (`logp_dlogp_function`) and its first call; ms/grad: one "
        "logp+gradient at the initial point, fastest of 5 batches; ratio: fh / hand."
    )


if __name__ == "__main__":
    main()
