"""Collapsed gaussian models: the group effects integrated out, then drawn exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats as sps

import formulahier as fh
from formulahier.collapsed import draw_effects, marginal_loglik, sufficient_stats


def _problem(q, p=2, levels=6, n=60, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, levels, n)
    codes[:levels] = np.arange(levels)  # every level observed
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    y = rng.normal(size=n) * 2
    beta = rng.normal(size=p)
    A = rng.normal(size=(q, q))
    S = A @ A.T + 0.5 * np.eye(q)
    return y, X, Z, codes, levels, beta, S, 0.7


def _dense_loglik(y, X, Z, codes, levels, beta, S, sigma):
    total = 0.0
    for j in range(levels):
        rows = codes == j
        Zj = Z[rows]
        V = Zj @ S @ Zj.T + sigma**2 * np.eye(rows.sum())
        total += sps.multivariate_normal(X[rows] @ beta, V).logpdf(y[rows])
    return total


@pytest.mark.parametrize("q", [1, 2, 3])
def test_marginal_loglik_equals_dense_multivariate_normal(q):
    y, X, Z, codes, levels, beta, S, sigma = _problem(q)
    stats = sufficient_stats(y, X, codes, Z, levels)
    b, L, s = pt.vector("b"), pt.matrix("L"), pt.scalar("s")
    fn = pytensor.function([b, L, s], marginal_loglik(stats, b, L, s))
    ours = fn(beta, np.linalg.cholesky(S), sigma)
    np.testing.assert_allclose(ours, _dense_loglik(y, X, Z, codes, levels, beta, S, sigma), rtol=1e-10)


def test_exact_draws_have_the_conditional_mean_and_covariance():
    y, X, Z, codes, levels, beta, S, sigma = _problem(2, levels=3, n=20)
    stats = sufficient_stats(y, X, codes, Z, levels)
    n = 40_000
    u = draw_effects(
        stats, np.tile(beta, (n, 1)), np.tile(S, (n, 1, 1)), np.full(n, sigma),
        np.random.default_rng(1),
    )  # fmt: skip
    for j in range(levels):
        rows = codes == j
        Zj = Z[rows]
        V = Zj @ S @ Zj.T + sigma**2 * np.eye(rows.sum())
        gain = S @ Zj.T @ np.linalg.inv(V)
        mean = gain @ (y[rows] - X[rows] @ beta)
        cov = S - gain @ Zj @ S
        se = np.sqrt(np.diag(cov) / n)
        assert np.all(np.abs(u[:, j].mean(0) - mean) < 5 * se)
        np.testing.assert_allclose(np.cov(u[:, j].T), cov, rtol=0.05, atol=1e-3)


def _frame(seed=0, n=200):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 10, n)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": 1 + x + rng.normal(size=10)[g] + rng.normal(size=n),
            "x": x,
            "g": [f"g{i}" for i in g],
            "h": rng.choice(["a", "b", "c"], n),
        }
    )


def test_auto_collapses_exactly_where_exact():
    d = _frame()
    assert fh.model("y ~ x + (x | g)", d).collapsed
    assert fh.model("y ~ x + (1 | g) + (0 + x | g)", d).collapsed  # two blocks, one factor
    assert not fh.model("y ~ x + (1 | g) + (1 | h)", d).collapsed  # crossed
    assert not fh.model("y ~ x + (1 | g/h)", d).collapsed  # nested: two factors
    assert not fh.model("y ~ x + (x | g)", d, collapse=False).collapsed
    assert not fh.model("y ~ x + (1 | g)", d.assign(y=(d.y > 1).astype(int)), family="bernoulli").collapsed
    assert not fh.model(fh.bf("y ~ x + (1 | g)", sigma="~ x"), d).collapsed
    with pytest.raises(fh.FormulaError, match="several factors"):
        fh.model("y ~ x + (1 | g) + (1 | h)", d, collapse=True)
    with pytest.raises(fh.OptionError, match="collapse must be"):
        fh.model("y ~ x + (1 | g)", d, collapse="yes")


def test_collapsed_graph_has_only_hyperparameters_and_prior_predictive_still_works():
    m = fh.model("y ~ x + (x | g)", _frame())
    model = m.pymc_model
    names = {v.name for v in model.free_RVs}
    assert names == {"Intercept", "x", "sigma", "1|g_sigma", "x|g_sigma", "g_corr_chol"}
    assert not model.observed_RVs and len(model.potentials) == 1
    pp = m.prior_predictive(draws=20, seed=1)  # the full model, with the group effects
    assert pp["prior_predictive"]["y"].shape[-1] == 200
    assert m.pymc_model is not None and m.bambi.fh_built_collapsed


def test_collapsed_fit_has_every_effect_and_all_verbs_work(mock_sampling):
    d = _frame()
    fit = fh.fit("y ~ x + (x | g)", d, draws=30, chains=2, seed=3, progressbar=False)
    assert fit.settings["construction"] == "collapsed"
    post = fit.idata["posterior"]
    assert post["1|g"].dims == ("chain", "draw", "g__factor_dim")
    assert post["x|g"].shape == (2, 30, 10)
    assert "collapsed gaussian" in str(fit)
    assert set(fit.ranef()["g"].index) == {f"g{i}" for i in range(10)}
    assert np.isfinite(fit.predict(d.head(5))["estimate"]).all()
    again = fh.fit("y ~ x + (x | g)", d, draws=30, chains=2, seed=3, progressbar=False)
    np.testing.assert_array_equal(post["1|g"].values, again.idata["posterior"]["1|g"].values)


@pytest.mark.slow
def test_collapsed_and_full_posteriors_agree():
    """Same posterior within Monte Carlo error: radon's floor slopes by county (85 levels)."""
    radon = fh.datasets.load("radon")
    kw = dict(seed=4, progressbar=False, draws=1000, tune=1000)
    full = fh.fit("log_radon ~ floor + (floor | county)", radon, collapse=False, **kw)
    coll = fh.fit("log_radon ~ floor + (floor | county)", radon, **kw)
    assert coll.settings["construction"] == "collapsed"
    for table in ("fixef", "varcorr"):
        a, b = getattr(full, table)(), getattr(coll, table)()
        diff = np.abs(a["estimate"].to_numpy() - b["estimate"].to_numpy())
        assert np.all(diff < 0.25 * a["std_error"].to_numpy()), (table, a, b)
    ra, rb = full.ranef()["county"], coll.ranef()["county"]
    est = ("Intercept", "estimate")
    np.testing.assert_allclose(ra[est], rb[est], atol=0.25 * ra[("Intercept", "std_error")].max())


def test_collapsed_diagnostics_do_not_suggest_a_parameterization(mock_sampling):
    fit = fh.fit("y ~ x + (x | g)", _frame(), draws=20, chains=2, seed=3, progressbar=False)
    notes = " ".join(fit.summary().diagnostics)
    assert "ESS below" in notes and "parameterization" not in notes
    full = fh.fit(
        "y ~ x + (x | g)", _frame(), draws=20, chains=2, seed=3, progressbar=False, collapse=False
    )
    assert "parameterization" in " ".join(full.summary().diagnostics)
