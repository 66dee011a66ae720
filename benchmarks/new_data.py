"""A model fitted before, on new data of the same structure: does the compile come back?

``python -m benchmarks.new_data [--runs N] [--src DIR]`` fits sleepstudy's
``Reaction ~ Days + (Days | Subject)`` in fresh processes, one JSON line each:

* ``same``: the bundled data (fitted before, so every cache is warm);
* ``shift``: the response shifted by a new amount in every run (the prior means and scales
  Bambi derives from the data differ; the shapes are the same);
* ``sim``: a new simulated data set in every run, 30 subjects x 12 days (other numbers of
  levels and rows);
* ``ozone_same`` / ``ozone_shift``: the same for ``make demo``'s ozone model
  ``log_ozone ~ TEMP + (TEMP | station)``.

``--src DIR`` runs the package found in DIR (e.g. an export of another commit) in place of
the installed one, to compare two versions side by side in one session (DIR needs this
script in its ``benchmarks/``). Each line gives the
whole process, the fit (``fh.fit``), its NUTS loop and the rest of the fit (``compile``: the
PyTensor/numba compile, initialisation and the exact draws of the group effects).

``python -m benchmarks.new_data --one KIND SEED`` is one fit (what the driver runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

T0 = time.perf_counter()
FORMULA = "Reaction ~ Days + (Days | Subject)"
OZONE = "log_ozone ~ TEMP + (TEMP | station)"


def data_for(kind: str, seed: int):
    import numpy as np
    import pandas as pd

    import formulahier as fh

    if kind.startswith("ozone"):
        data = fh.datasets.load("ozone").copy()
        if kind == "ozone_shift":
            data["log_ozone"] = data["log_ozone"] + 0.01 * (1 + seed % 997) + 1e-6 * seed
        return data
    if kind in ("same", "shift"):
        data = fh.datasets.load("sleepstudy").copy()
        if kind == "shift":  # a new shift every run: data this machine has not seen
            data["Reaction"] = data["Reaction"] + 0.01 * (1 + seed % 997) + 1e-6 * seed
        return data
    rng = np.random.default_rng(seed)
    subjects, days = 30, 12
    u0 = rng.normal(0, 25, subjects)
    u1 = rng.normal(0, 6, subjects)
    s = np.repeat(np.arange(subjects), days)
    d = np.tile(np.arange(days), subjects)
    y = 250 + 10 * d + u0[s] + u1[s] * d + rng.normal(0, 25, s.size)
    return pd.DataFrame({"Reaction": y, "Days": d, "Subject": [f"S{i}" for i in s]})


def one(kind: str, seed: int) -> dict:
    import formulahier as fh

    data = data_for(kind, seed)
    start = time.perf_counter()
    fit = fh.fit(OZONE if kind.startswith("ozone") else FORMULA, data, progressbar=False, seed=1)
    fit_s = time.perf_counter() - start
    assert str(fit)
    loop = float(fit.idata["posterior"].attrs.get("sampling_time", float("nan")))
    return {
        "kind": kind,
        "fit_s": round(fit_s, 2),
        "loop_s": round(loop, 2),
        "compile_s": round(fit.seconds - loop, 2),
        "process_s": round(time.perf_counter() - T0, 2),
        "load": round(os.getloadavg()[0], 2),
        "package": os.path.dirname(fh.__file__),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", nargs=2, metavar=("KIND", "SEED"))
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--kinds", default="same,shift,sim")
    ap.add_argument("--src", default=None)
    args = ap.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))
    if args.one:
        import warnings

        warnings.simplefilter("ignore")
        print(json.dumps(one(args.one[0], int(args.one[1]))), flush=True)
        return
    env, cwd = dict(os.environ), args.src or os.getcwd()
    if args.src:  # run from there: `-m` puts the working directory first on sys.path
        env["PYTHONPATH"] = os.pathsep.join([args.src, os.getcwd()])
    seed0 = int(time.time())
    for run in range(args.runs):
        for kind in args.kinds.split(","):
            cmd = [sys.executable, "-m", "benchmarks.new_data", "--one", kind, str(seed0 + run)]
            t = time.perf_counter()
            out = subprocess.run(
                cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False
            )
            line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
            row = json.loads(line) if line.startswith("{") else {"error": out.stderr[-500:]}
            row["wall_s"] = round(time.perf_counter() - t, 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
