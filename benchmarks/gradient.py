"""Cost of one log-density + gradient evaluation, collapsed next to sampled, in one process.

    python -m benchmarks.gradient [--case ozone_slopes] [--calls 500] [--repeats 7] [--profile]

Compiles ``model.logp_dlogp_function`` (what NUTS calls once per leapfrog step) for the default
construction (collapsed where exact) and for ``collapse=False``, and prints the fastest of
``--repeats`` timings of ``--calls`` calls each (the minimum is the least noisy estimate on a
shared machine), the compile time and the number of nodes. ``--profile`` prints PyTensor's
per-op profile of each function as well.
"""

from __future__ import annotations

import argparse
import time
import warnings


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gradient")
    ap.add_argument("--case", default="ozone_slopes")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import numpy as np
    import pytensor

    import formulahier as fh
    from benchmarks.cases import CASES

    case = CASES[args.case]
    data = case.data()
    for collapse in ("auto", False):
        m = fh.model(case.formula, data, family=case.family, collapse=collapse)
        model = m.pymc_model
        t0 = time.perf_counter()
        fn = model.logp_dlogp_function(ravel_inputs=True)
        fn.set_extra_values({})
        compile_s = time.perf_counter() - t0
        x = np.concatenate([np.ravel(v) for v in model.initial_point().values()]) + 0.01
        for _ in range(50):
            fn(x)
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(args.calls):
                fn(x)
            best = min(best, (time.perf_counter() - t0) / args.calls)
        nodes = len(fn._pytensor_function.maker.fgraph.apply_nodes)
        label = "collapsed" if m.collapsed else "full"
        print(
            f"{args.case} {label:9s} params {x.size:6d}  logp+grad {best * 1e6:8.1f} us  "
            f"compile {compile_s:5.1f} s  nodes {nodes}",
            flush=True,
        )
        if args.profile:
            value_vars = model.value_vars
            logp = model.logp()
            grads = pytensor.grad(logp, value_vars)
            prof = pytensor.function(value_vars, [logp, *grads], profile=True)
            point = model.initial_point()
            values = [point[v.name] for v in value_vars]
            for _ in range(args.calls):
                prof(*values)
            prof.profile.summary(n_ops_to_print=15, n_apply_to_print=0)


if __name__ == "__main__":
    main()
