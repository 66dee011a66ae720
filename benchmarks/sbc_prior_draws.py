"""Are the priors SBC simulates from the priors the model states, and its density's?

    python -m benchmarks.sbc_prior_draws [--draws 20000]

For the full correlated ``Reaction ~ Days + (Days | Subject)`` model (non-centered and
centered) with the SBC benchmark's priors (``benchmarks.sbc_calibration.priors``): (1) forward
draws of every scalar parameter (``Model.prior_predictive``, what ``fh.sbc`` simulates from)
against the stated distributions (KS test: normal(0, 1), half-normal(0, 1), and for the
correlation of LKJ(2) in 2 dimensions ``(r + 1) / 2 ~ Beta(2, 2)``); (2) NUTS on the same graph
with the likelihood removed, i.e. the prior as the model's log density defines it, against the
same distributions (every 10th draw). A prior whose forward sampler and log density disagree
(a missing Jacobian, a Potential the forward sampler ignores) fails (2) but not (1).
"""

from __future__ import annotations

import argparse
import importlib
import warnings

from scipy import stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=20000)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import pymc as pm
    from pymc.model.fgraph import ModelObservedRV, fgraph_from_model, model_from_fgraph
    from pytensor.graph import FunctionGraph

    import formulahier as fh
    from benchmarks.sbc_calibration import priors

    scalar_params = importlib.import_module("formulahier.sbc")._scalar_params
    ref = {"b_Intercept": stats.norm(0, 1), "b_Days": stats.norm(0, 1),
           "sd_Subject__Intercept": stats.halfnorm(0, 1), "sd_Subject__Days": stats.halfnorm(0, 1),
           "sigma": stats.halfnorm(0, 1),
           "cor_Subject__Intercept__Days": stats.beta(2, 2, loc=-1, scale=2)}  # fmt: skip
    sleep = fh.datasets.load("sleepstudy")
    for noncentered in (True, False):
        m = fh.model("Reaction ~ Days + (Days | Subject)", sleep, priors=priors(), collapse=False,
                     noncentered=noncentered)  # fmt: skip
        forward = scalar_params(m, m.prior_predictive(draws=args.draws, seed=1)["prior"]
                                .to_dataset())  # fmt: skip
        fg, _ = fgraph_from_model(m.pymc_model)
        outs = [o for o in fg.outputs if not isinstance(o.owner.op, ModelObservedRV)]
        prior_fg = FunctionGraph(outputs=outs, clone=False)
        prior_fg._coords, prior_fg._dim_lengths = fg._coords, fg._dim_lengths  # type: ignore
        with model_from_fgraph(prior_fg, mutate_fgraph=True):
            trace = pm.sample(draws=5000, tune=1000, chains=2, cores=1, random_seed=2,
                              progressbar=False, target_accept=0.95,
                              compute_convergence_checks=False)  # fmt: skip
        nuts = scalar_params(m, trace["posterior"].to_dataset())
        div = int(trace["sample_stats"]["diverging"].sum())
        print(f"noncentered={noncentered}: KS p-values, forward draws / sampled prior "
              f"({div} divergent transitions)")  # fmt: skip
        for k, dist in ref.items():
            p_fwd = stats.kstest(forward[k], dist.cdf).pvalue
            p_nuts = stats.kstest(nuts[k][::10], dist.cdf).pvalue
            print(f"  {k:30s} {p_fwd:.3f} / {p_nuts:.3f}")


if __name__ == "__main__":
    main()
