"""Nested factors collapsed exactly: two-stage elimination, then exact draws outer -> inner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats as sps

import formulahier as fh
from formulahier.collapsed import (
    Precision,
    draw_effects,
    integrated_loglik,
    marginal_loglik,
    nesting_parent,
    sufficient_stats,
)
from tests._support import assert_same_posterior


def _nested(q, r, J=4, per=3, n=90, p=2, seed=0):
    """Outer levels J, ``per`` inner levels in each; Z (q columns) and W (r columns)."""
    rng = np.random.default_rng(seed)
    K = J * per
    inner = rng.integers(0, K, n)
    inner[:K] = np.arange(K)
    parent = np.arange(K) // per
    outer = parent[inner]
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    W = np.column_stack([np.ones(n), rng.normal(size=(n, r - 1))])
    y = rng.normal(size=n) * 2

    def cov(k):
        A = rng.normal(size=(k, k))
        return A @ A.T + 0.5 * np.eye(k)

    return dict(y=y, X=X, Z=Z, W=W, outer=outer, inner=inner, parent=parent, J=J, K=K,
                beta=rng.normal(size=p), S=cov(q), T=cov(r), sigma=0.7)  # fmt: skip


def _dense_design(d):
    """The rows x (J q + K r) design of every group effect, and its prior covariance."""
    n, q, r = len(d["y"]), d["Z"].shape[1], d["W"].shape[1]
    G = np.zeros((n, d["J"] * q + d["K"] * r))
    for i in range(n):
        j, k = d["outer"][i], d["inner"][i]
        G[i, j * q : (j + 1) * q] = d["Z"][i]
        G[i, d["J"] * q + k * r : d["J"] * q + (k + 1) * r] = d["W"][i]
    P = np.zeros((G.shape[1],) * 2)
    for j in range(d["J"]):
        P[j * q : (j + 1) * q, j * q : (j + 1) * q] = d["S"]
    for k in range(d["K"]):
        s = d["J"] * q + k * r
        P[s : s + r, s : s + r] = d["T"]
    return G, P


def _stats(d):
    return sufficient_stats(d["y"], d["X"], d["outer"], d["Z"], d["J"],
                            inner=(d["inner"], d["W"], d["parent"]))  # fmt: skip


def _chol_inputs():
    return pt.matrix("Ls"), pt.matrix("Lt"), pt.scalar("s")


@pytest.mark.parametrize("q, r", [(1, 1), (2, 1), (1, 2), (2, 3), (3, 2)])
def test_nested_marginal_loglik_equals_dense_multivariate_normal(q, r):
    d = _nested(q, r)
    stats = _stats(d)
    b, (Ls, Lt, s) = pt.vector("b"), _chol_inputs()
    fn = pytensor.function([b, Ls, Lt, s], marginal_loglik(stats, b, (Ls, Lt), s))
    ours = fn(d["beta"], np.linalg.cholesky(d["S"]), np.linalg.cholesky(d["T"]), d["sigma"])
    G, P = _dense_design(d)
    V = G @ P @ G.T + d["sigma"] ** 2 * np.eye(len(d["y"]))
    dense = sps.multivariate_normal(d["X"] @ d["beta"], V).logpdf(d["y"])
    np.testing.assert_allclose(ours, dense, rtol=1e-10)
    # the same with the response's cross-products as shared variables (a swappable response)
    shared = stats.shared("y")
    # every cross-product is shared (k-fold swaps them all), the response's among them
    assert set(shared.response_vars()) == {f"y__{k}" for k in stats.names()}
    assert {"y__yty", "y__Xty", "y__Zty", "y__W_Wty"} <= set(shared.response_vars())
    fn = pytensor.function([b, Ls, Lt, s], marginal_loglik(shared, b, (Ls, Lt), s))
    again = fn(d["beta"], np.linalg.cholesky(d["S"]), np.linalg.cholesky(d["T"]), d["sigma"])
    np.testing.assert_allclose(again, dense, rtol=1e-10)


@pytest.mark.parametrize("q, r", [(2, 1), (2, 2)])
def test_nested_integrated_loglik_equals_dense(q, r):
    d = _nested(q, r, p=3, seed=1)
    m0, sd0 = np.array([0.5, -1.0, 0.2]), np.array([2.0, 0.7, 1.5])
    Ls, Lt, s = _chol_inputs()
    prec_t = Precision(pt.matrix("Ti"), pt.scalar("Tl"))  # a Precision works as well
    res = integrated_loglik(_stats(d), (Ls, prec_t), s, m0, sd0)
    fn = pytensor.function([Ls, prec_t.inv, prec_t.logdet, s], res.loglik)
    T = d["T"]
    ll = fn(np.linalg.cholesky(d["S"]), np.linalg.inv(T), np.linalg.slogdet(T)[1], d["sigma"])
    G, P = _dense_design(d)
    V = G @ P @ G.T + d["sigma"] ** 2 * np.eye(len(d["y"]))
    dense = sps.multivariate_normal(d["X"] @ m0, V + d["X"] @ np.diag(sd0**2) @ d["X"].T)
    np.testing.assert_allclose(ll, dense.logpdf(d["y"]), rtol=1e-10)


def test_nested_exact_draws_have_the_joint_conditional_moments():
    """Outer from its marginal conditional, inner given outer: jointly the dense posterior."""
    d = _nested(2, 1, J=2, per=2, n=24, seed=2)
    n = 40_000
    u, v = draw_effects(
        _stats(d), np.tile(d["beta"], (n, 1)),
        (np.tile(d["S"], (n, 1, 1)), np.tile(d["T"], (n, 1, 1))), np.full(n, d["sigma"]),
        np.random.default_rng(3),
    )  # fmt: skip
    assert u.shape == (n, 2, 2) and v.shape == (n, 4, 1)
    G, P = _dense_design(d)
    precision = np.linalg.inv(P) + G.T @ G / d["sigma"] ** 2
    cov = np.linalg.inv(precision)
    mean = cov @ G.T @ (d["y"] - d["X"] @ d["beta"]) / d["sigma"] ** 2
    joint = np.concatenate([u.reshape(n, -1), v.reshape(n, -1)], axis=1)
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(joint.mean(0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(joint.T), cov, atol=0.02 * np.abs(cov).max())


def test_nesting_is_read_from_the_data():
    parent = nesting_parent(np.array([0, 1, 2, 2, 1]), np.array([0, 0, 1, 1, 0]), 3)
    np.testing.assert_array_equal(parent, [0, 0, 1])
    assert nesting_parent(np.array([0, 1, 1]), np.array([0, 0, 1]), 2) is None  # crossed
    assert nesting_parent(np.array([0, 2]), np.array([0, 1]), 3) is None  # level 1 unseen


def _frame(seed=0, n=240):
    rng = np.random.default_rng(seed)
    school = rng.integers(0, 6, n)
    klass = school * 4 + rng.integers(0, 4, n)  # class ids unique across schools
    x = rng.normal(size=n)
    y = 1 + x + rng.normal(size=6)[school] + 0.5 * rng.normal(size=24)[klass] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "school": [f"s{i}" for i in school],
                         "room": [f"r{i % 4}" for i in klass],  # labels repeat across schools
                         "klass": [f"c{i}" for i in klass],
                         "h": rng.choice(["a", "b", "c"], n)})  # fmt: skip


def test_auto_collapses_nested_factors_and_not_crossed_ones():
    d = _frame()
    nested = fh.model("y ~ x + (1 | school/room)", d)
    assert nested.collapsed
    plan = nested.bambi.fh_plan
    assert plan.nesting.outer == "school" and plan.nesting.inner == "school:room"
    assert fh.model("y ~ x + (x | school) + (1 | school:room)", d).collapsed
    assert fh.model("y ~ x + (1 | school) + (1 | klass)", d).collapsed  # nested by the data
    assert fh.model("y ~ x + (1 | klass) + (1 | school)", d).bambi.fh_plan.nesting.inner == "klass"
    assert not fh.model("y ~ x + (1 | school) + (1 | h)", d).collapsed  # crossed
    assert not fh.model("y ~ x + (1 | school/room/h)", d).collapsed  # three factors
    with pytest.raises(fh.FormulaError, match="not nested"):
        fh.model("y ~ x + (1 | school) + (1 | room)", d, collapse=True)  # rooms cross schools
    free = {v.name for v in fh.model("y ~ x + (x | school) + (1 | school:room)", d)
            .pymc_model.free_RVs}  # fmt: skip
    assert free == {"sigma", "population__z_offset", "school__block0_chol_offset",
                    "1|school:room_sigma"}  # fmt: skip
    # a categorical block's sds have its columns' dim (f__expr_dim) in the collapsed graph too
    assert "h|school_sigma" in fh.model("y ~ x + (h | school) + (1 | school:room)", d).pymc_model


def test_nested_collapsed_fit_stores_both_levels_and_says_so(mock_sampling):
    d = _frame()
    kw = dict(draws=30, chains=2, seed=3, progressbar=False)
    fit = fh.fit("y ~ x + (x | school) + (1 | school:room)", d, **kw)
    post = fit.idata["posterior"]
    assert post["1|school"].dims == ("chain", "draw", "school__factor_dim")
    assert post["x|school"].shape == (2, 30, 6)
    assert post["1|school:room"].shape == (2, 30, 24)
    assert "school:room nested in school" in str(fit)
    assert set(fit.ranef()) == {"school", "school:room"}
    assert np.isfinite(fit.predict(d.head(5))["estimate"]).all()
    again = fh.fit("y ~ x + (x | school) + (1 | school:room)", d, **kw)
    np.testing.assert_array_equal(post["1|school:room"].values,
                                  again.idata["posterior"]["1|school:room"].values)  # fmt: skip


def test_nested_response_swap_gives_the_cross_products_of_the_new_response():
    d = _frame()
    m = fh.model("y ~ x + (1 | school/room)", d)
    m.pymc_model  # noqa: B018 (built)
    y2 = d.y.to_numpy()[::-1].copy()
    new = m.bambi.response_data(y2)
    ref = fh.model("y ~ x + (1 | school/room)", d.assign(y=y2)).bambi.fh_plan.stats
    np.testing.assert_allclose(new["y__W_Wty"], ref.inner.Wty)
    np.testing.assert_allclose(new["y__Zty"], ref.Zty)
    np.testing.assert_allclose(new["y__Xty"], ref.Xty)


@pytest.mark.slow
def test_nested_collapsed_and_full_posteriors_agree():
    """Ozone, station-years nested in stations (60 in 12): the same posterior within MC error."""
    ozone = fh.datasets.load("ozone")
    ozone = ozone.assign(year=ozone["date"].str[:4])
    formula = "log_ozone ~ TEMP + (1 | station/year)"
    kw = dict(seed=4, progressbar=False, draws=500, tune=500)
    full = fh.fit(formula, ozone, collapse=False, **kw)
    coll = fh.fit(formula, ozone, **kw)
    assert coll.settings["construction"] == "collapsed"
    assert "station:year nested in station" in str(coll)
    assert_same_posterior(full, coll, se_ratio=(0.8, 1.25))
    for factor in ("station", "station:year"):
        ra, rb = full.ranef()[factor], coll.ranef()[factor]
        est, se = ("Intercept", "estimate"), ("Intercept", "std_error")
        np.testing.assert_allclose(ra[est], rb[est], atol=0.25 * ra[se].max())
