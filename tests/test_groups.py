"""Group-level effects from integer codes (formulahier.groups + backend).

The PyMC graph gathers ``u[codes] * X``; here the pointwise log-likelihood of that graph is
checked, at draws from the prior, against an independent computation with a *dense* rows x
(levels x effects) design matrix (the textbook ``X b + Z u``), for every kind of block and
family. The population part comes from Bambi's own predict (it knows only that part).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytest
import xarray as xr

import formulahier as fh
from formulahier.groups import factor_codes


def _data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "f": rng.choice(["a", "b", "c"], n),
            "g": rng.choice([f"g{i}" for i in range(7)], n),
            "h": rng.choice(["p", "q", "r"], n),
            "k": rng.integers(0, 8, n),
            "n": np.full(n, 8),
            "yp": rng.poisson(3.0, n),
            "yb": rng.integers(0, 2, n),
            "ypos": rng.gamma(2.0, 1.0, n),
            "yu": rng.uniform(0.05, 0.95, n),
        }
    )


def _dense_group_part(fit_model, post: xr.Dataset) -> np.ndarray:
    """sum over blocks of Z_dense @ u, from level indicators (rows x levels) and the draws."""
    frame = fit_model.data
    eta = 0.0
    for info in fit_model.blocks:
        for column in info.columns:
            u = post[column.term]
            fdim = next(d for d in u.dims if d.endswith("__factor_dim"))
            if column.index is not None:
                u = u.isel({next(d for d in u.dims if d.endswith("__expr_dim")): column.index})
            u = u.transpose("chain", "draw", fdim).values  # (c, d, levels)
            levels = [str(v) for v in post[column.term].coords[fdim].values]
            labels = _labels(frame, info.block.factor)
            Z = (labels[:, None] == np.array(levels)[None, :]).astype(float)  # rows x levels
            x = _column(frame, column)
            eta = eta + np.einsum("nl,cdl->cdn", Z * x[:, None], u)
    return eta


def _labels(frame, factor):
    out = None
    for col in factor.split(":"):
        text = frame[col].astype(str).to_numpy(dtype=object)
        out = text if out is None else out + ":" + text
    return out.astype(str)


def _column(frame, column):
    expr = column.term.split("|")[0]
    if expr == "1":
        return np.ones(len(frame))
    if column.level is not None:
        base = expr[2:-1] if expr.startswith("C(") else expr
        return (frame[base].astype(str) == column.level).to_numpy(float)
    return frame[expr].to_numpy(float)


def _uncentered(bmodel, post: xr.Dataset) -> xr.Dataset:
    """The intercept for uncentered predictors (Bambi samples it for centered ones)."""
    comp = bmodel.parameters[bmodel.family.likelihood.parent]
    if comp.intercept_term is None or not comp.common_terms or not bmodel.center_predictors:
        return post
    design = comp.design.common
    keep = np.ones(design.design_matrix.shape[1], bool)
    keep[design.slices["Intercept"]] = False
    xbar = np.asarray(design.design_matrix)[:, keep].mean(0)
    b = np.concatenate(
        [post[name].values.reshape(*post[name].shape[:2], -1) for name in comp.common_terms],
        axis=-1,
    )
    return post.assign(Intercept=post["Intercept"] - xr.DataArray(b @ xbar, dims=("chain", "draw")))


CASES = [
    ("y ~ x + (1 | g)", "gaussian", {}),
    ("y ~ x + (x | g)", "gaussian", {"noncentered": True}),
    ("y ~ x + (x | g)", "gaussian", {"noncentered": False}),
    ("y ~ x + (x || g)", "gaussian", {}),
    ("y ~ x + (x || g)", "gaussian", {"noncentered": False}),
    ("y ~ x + (1 + x + z | g)", "gaussian", {}),
    ("y ~ x + (f | g)", "gaussian", {}),
    ("y ~ x + (0 + f | g)", "gaussian", {"correlated": False}),
    ("y ~ x + (1 | g/h)", "gaussian", {}),
    ("y ~ x + (1 | g) + (x | h)", "gaussian", {}),
    ("y ~ x + (1 | g) + (0 + x | g)", "gaussian", {"noncentered": False}),
    ("y ~ x + (x | g)", "student", {}),
    ("yb ~ x + (x | g)", "bernoulli", {}),
    ("cbind(k, n - k) ~ x + (1 | g)", "binomial", {}),
    ("yp ~ x + (x | g)", "poisson", {}),
    ("yp ~ x + (1 | g)", "negbinomial", {}),
    ("ypos ~ x + (x | g)", "Gamma", {}),
    ("ypos ~ x + (1 | g)", "lognormal", {}),
    ("yu ~ x + (1 | g)", "beta", {}),
]


@pytest.mark.parametrize(("formula", "family", "options"), CASES)
def test_gather_log_likelihood_equals_dense(formula, family, options):
    data = _data()
    m = fh.model(formula, data, family=family, collapse=False, **options)
    model = m.pymc_model
    names = [v.name for v in model.free_RVs + model.deterministics]
    prior = pm.sample_prior_predictive(draws=3, model=model, random_seed=1, var_names=names)
    prior = prior["prior"]
    prior = prior.to_dataset() if hasattr(prior, "to_dataset") else prior
    free = list(model.free_RVs)
    (obs,) = model.observed_RVs
    # the graph's log-likelihood as a function of the (constrained) free variables
    fn = pytensor.function(free, pm.logp(obs, model.rvs_to_values[obs]), on_unused_input="ignore")
    ours = np.stack(
        [fn(*(prior[v.name].values[0, d] for v in free)) for d in range(prior.sizes["draw"])]
    )[None]  # (chain, draw, obs)
    bmodel = m.bambi
    pop_post = _uncentered(bmodel, prior)  # as Bambi stores the intercept after sampling
    pop = bmodel.predict(
        xr.DataTree.from_dict({"posterior": pop_post}), kind="response_params", inplace=False
    )["posterior"]
    parent = bmodel.family.likelihood.parent
    link = bmodel.family.link[parent]
    eta = link.link(pop[parent].transpose("chain", "draw", "__obs__").values)
    eta = eta + _dense_group_part(m, prior)
    post = prior.assign({parent: (("chain", "draw", "__obs__"), link.linkinv(eta))})
    post = post.assign_coords(__obs__=np.arange(eta.shape[-1]))
    ref = bmodel.family.log_likelihood(model=bmodel, posterior=post, data=None)
    ref = ref.transpose("chain", "draw", ...).values
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-7)


def test_bf_model_main_blocks_from_codes():
    """A distributional model keeps its main blocks gathered; sigma's own group term is Bambi's."""
    data = _data()
    m = fh.model(fh.bf("y ~ x + (x | g)", sigma="~ z + (1 | h)"), data)
    names = set(m.pymc_model.named_vars)
    assert {"1|g", "x|g", "g_corr", "sigma_1|h"} <= names
    assert not m.bambi.parameters["mu"].group_specific_terms  # main blocks are ours


def test_factor_codes_interaction_keeps_observed_levels_only():
    frame = pd.DataFrame(
        {
            "a": pd.Categorical(["x", "x", "y", "z"], categories=["x", "y", "z"], ordered=True),
            "b": pd.Categorical([2, 1, 1, 2], categories=[1, 2], ordered=True),
        }
    )
    codes, labels = factor_codes(frame, "a:b")
    assert labels == ("x:1", "x:2", "y:1", "z:2")
    assert codes.tolist() == [1, 0, 2, 3]
    codes, labels = factor_codes(frame, "b")
    assert labels == ("1", "2") and codes.tolist() == [1, 0, 0, 1]


_BOUNDED = textwrap.dedent(
    """
    import resource, sys, time
    import numpy as np, pandas as pd
    import formulahier as fh
    rows, levels = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    g = rng.integers(0, levels, rows)
    x = rng.normal(size=rows)
    y = 0.5 + x + rng.normal(size=levels)[g] + 0.3 * rng.normal(size=levels)[g] * x
    d = pd.DataFrame({"y": y + rng.normal(size=rows), "x": x, "g": g})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = fh.model("y ~ x + (x | g)", d, noncentered=True)
    m.pymc_model.compile_logp()  # the graph, built and compiled
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024.0)
    """
)


def test_big_model_memory_is_bounded(tmp_path):
    """10^5 rows x 10^4 levels: rows x levels int64 alone would be 8 GB; we need a few hundred MB.

    Measured in a fresh process (peak RSS growth while building and compiling the model),
    under a 6 GB address-space cap so that a regression fails cleanly.
    """
    script = tmp_path / "bounded.py"
    script.write_text(_BOUNDED)
    cap = 6 * 1024**3

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    out = subprocess.run(
        [sys.executable, str(script), "100000", "10000"],
        capture_output=True, text=True, timeout=600, preexec_fn=limit,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mb = float(out.stdout.strip().splitlines()[-1])
    # rows x effects float64 (1.6 MB) and levels x effects per variable are tiny; the bound
    # leaves room for PyTensor's compilation and Bambi's copies of the data
    assert grown_mb < 600, f"peak RSS grew by {grown_mb:.0f} MB"
