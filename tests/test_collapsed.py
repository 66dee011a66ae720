"""Collapsed gaussian models: the group effects integrated out, then drawn exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats as sps

import formulahier as fh
from formulahier.collapsed import (
    draw_effects,
    integrated_loglik,
    lkj_logp,
    marginal_loglik,
    sufficient_stats,
    whitened_covariance,
    whitening,
)
from tests._support import assert_same_posterior


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


# static: the Cholesky factor's shape is known, so collapsed/small.py unrolls its algebra
STATIC = [(1, True), (2, True), (3, True), (3, False)]


@pytest.mark.parametrize(("q", "static"), STATIC)
def test_marginal_loglik_equals_dense_multivariate_normal(q, static):
    y, X, Z, codes, levels, beta, S, sigma = _problem(q)
    stats = sufficient_stats(y, X, codes, Z, levels)
    b, s = pt.vector("b"), pt.scalar("s")
    L = pt.matrix("L", shape=(q, q) if static else (None, None))
    fn = pytensor.function([b, L, s], marginal_loglik(stats, b, L, s))
    ours = fn(beta, np.linalg.cholesky(S), sigma)
    np.testing.assert_allclose(ours, _dense_loglik(y, X, Z, codes, levels, beta, S, sigma), rtol=1e-10)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_marginal_loglik_with_many_population_columns(q):
    """Seven population columns: the level sums go through a matrix product (m > 4)."""
    y, X, Z, codes, levels, beta, S, sigma = _problem(q, p=7, n=120)
    stats = sufficient_stats(y, X, codes, Z, levels)
    b, L, s = pt.vector("b"), pt.matrix("L", shape=(q, q)), pt.scalar("s")
    fn = pytensor.function([b, L, s], marginal_loglik(stats, b, L, s))
    ours = fn(beta, np.linalg.cholesky(S), sigma)
    np.testing.assert_allclose(ours, _dense_loglik(y, X, Z, codes, levels, beta, S, sigma), rtol=1e-10)


@pytest.mark.parametrize(("q", "static"), STATIC)
def test_integrated_loglik_equals_dense_and_gives_the_conditional_of_b(q, static):
    """Group and population effects integrated out: y ~ Normal(X m0, V + X P0^-1 X')."""
    y, X, Z, codes, levels, _, S, sigma = _problem(q, p=3)
    m0, sd0 = np.array([0.5, -1.0, 0.2]), np.array([2.0, 0.7, 1.5])
    stats = sufficient_stats(y, X, codes, Z, levels)
    L, s = pt.matrix("L", shape=(q, q) if static else (None, None)), pt.scalar("s")
    res = integrated_loglik(stats, L, s, m0, sd0)
    fn = pytensor.function([L, s], [res.loglik, res.chol_H, res.w])
    ll, chol_H, w = fn(np.linalg.cholesky(S), sigma)
    V = np.zeros((len(y), len(y)))
    for j in range(levels):
        rows = np.flatnonzero(codes == j)
        V[np.ix_(rows, rows)] = Z[rows] @ S @ Z[rows].T
    V += sigma**2 * np.eye(len(y))
    dense = sps.multivariate_normal(X @ m0, V + X @ np.diag(sd0**2) @ X.T).logpdf(y)
    np.testing.assert_allclose(ll, dense, rtol=1e-10)
    H = X.T @ np.linalg.solve(V, X) + np.diag(sd0**-2)  # b | S, sigma, y: GLS with the prior
    mean = np.linalg.solve(H, X.T @ np.linalg.solve(V, y) + m0 / sd0**2)
    np.testing.assert_allclose(chol_H @ chol_H.T, H, rtol=1e-10)
    np.testing.assert_allclose(np.linalg.solve(chol_H.T, w), mean, rtol=1e-9)


@pytest.mark.parametrize("q, scaled", [(2, True), (3, True), (3, False)])
def test_whitened_covariance_and_its_jacobian(q, scaled):
    rng = np.random.default_rng(q)
    Zc = np.column_stack([np.ones(50), 20 + 5 * rng.normal(size=(50, q - 1))])
    R = whitening(Zc.T @ Zc, 50)
    np.testing.assert_allclose(R.T @ R, Zc.T @ Zc / 50)
    theta = pt.vector("theta")
    w = whitened_covariance(theta[:q], theta[q:], R, scaled=scaled)
    iu = np.triu_indices(q, 1)
    fn = pytensor.function(
        [theta], [w.sds, w.corr, w.precision.inv, w.precision.logdet, w.log_jacobian]
    )
    point = rng.normal(size=q + q * (q - 1) // 2) * 0.5
    sds, corr, inv, logdet, log_jac = fn(point)
    S = np.diag(sds) @ corr @ np.diag(sds)
    np.testing.assert_allclose(np.diag(corr), 1.0)
    np.testing.assert_allclose(inv, np.linalg.inv(S), rtol=1e-8)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(S)[1], rtol=1e-10)

    def params(t):  # (sds, upper correlations): what the priors are densities of
        sd, c = fn(t)[:2]
        return np.concatenate([sd, c[iu]])

    eps, jac = 1e-6, np.empty((point.size, point.size))
    for k in range(point.size):
        step = np.zeros(point.size)
        step[k] = eps
        jac[:, k] = (params(point + step) - params(point - step)) / (2 * eps)
    np.testing.assert_allclose(log_jac, np.linalg.slogdet(jac)[1], rtol=1e-6)


def test_lkj_logp_is_a_normalized_density():
    from scipy.integrate import quad

    for eta in (1.0, 2.0, 4.5):
        total = quad(lambda r, e=eta: np.exp(lkj_logp(np.log(1 - r**2), 2, e)), -1, 1)[0]
        assert total == pytest.approx(1.0, rel=1e-8)
    # uniform over 3 x 3 correlation matrices: the volume of that set is pi^2 / 2
    assert lkj_logp(0.0, 3, 1.0) == pytest.approx(-np.log(np.pi**2 / 2))


def test_collapsed_model_logp_is_the_dense_posterior_density():
    """The sampled graph's log-density, at an arbitrary point, equals the dense computation:
    y ~ Normal(X m0, V + X P0^-1 X'), the priors of the sds, correlation and sigma, and the
    Jacobians (the whitened basis's taken numerically here)."""
    d = _frame()
    m = fh.model("y ~ x + (x | g)", d)
    model = m.pymc_model
    rng = np.random.default_rng(5)
    point = {k: v + 0.3 * rng.normal(size=np.shape(v)) for k, v in model.initial_point().items()}
    logp = model.compile_logp()(point)
    names = ["1|g_sigma", "x|g_sigma", "g_corr"]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    det = pytensor.function(model.value_vars, outs, on_unused_input="ignore")
    args = [point[v.name] for v in model.value_vars]
    (sd0, sd1, corr), sigma = det(*args), np.exp(point["sigma_log__"])
    theta_pos = [v.name for v in model.value_vars].index("g__block0_chol_offset")

    def params(t):
        a = list(args)
        a[theta_pos] = t
        s0, s1, c = det(*a)
        return np.array([s0, s1, c[0, 1]])

    theta, eps = point["g__block0_chol_offset"], 1e-6
    jac = np.column_stack([(params(theta + e) - params(theta - e)) / (2 * eps)
                           for e in np.eye(3) * eps])  # fmt: skip
    comp = m.bambi.parameters["mu"]
    pri = [comp.intercept_term.prior.args, comp.common_terms["x"].prior.args]
    m0 = np.array([pri[0]["mu"], pri[1]["mu"]], dtype=float)
    p_sd = np.array([pri[0]["sigma"], pri[1]["sigma"]], dtype=float)
    codes = d["g"].astype("category").cat.codes.to_numpy()
    X = np.column_stack([np.ones(len(d)), d.x - d.x.mean()])
    Z = np.column_stack([np.ones(len(d)), d.x])
    S = np.diag([sd0, sd1]) @ corr @ np.diag([sd0, sd1])
    V = sigma**2 * np.eye(len(d))
    for j in np.unique(codes):
        rows = np.flatnonzero(codes == j)
        V[np.ix_(rows, rows)] += Z[rows] @ S @ Z[rows].T
    ref = sps.multivariate_normal(X @ m0, V + X @ np.diag(p_sd**2) @ X.T).logpdf(d.y)
    hyper = {t: m.bambi.fh_terms[t].prior.args["sigma"].args["sigma"] for t in ("1|g", "x|g")}
    ref += sps.halfnorm(scale=hyper["1|g"]).logpdf(sd0)
    ref += sps.halfnorm(scale=hyper["x|g"]).logpdf(sd1)
    ref += lkj_logp(np.log(1 - corr[0, 1] ** 2), 2, m.spec.eta_for("g"))
    s_prior = m.bambi.marginal_parameters["sigma"].prior
    assert s_prior.name == "HalfStudentT"
    nu, s_scale = s_prior.args["nu"], s_prior.args["sigma"]
    ref += np.log(2) + sps.t(df=nu, scale=s_scale).logpdf(sigma) + np.log(sigma)  # log transform
    ref += np.linalg.slogdet(jac)[1]
    ref += sps.norm.logpdf(point["population__z_offset"]).sum()
    np.testing.assert_allclose(logp, ref, rtol=1e-8)


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
    assert fh.model("y ~ x + (1 | g/h)", d).collapsed  # nested (tests/test_collapsed_nested.py)
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
    # the population effects and the block's covariance in their whitened bases
    assert names == {"sigma", "population__z_offset", "g__block0_chol_offset"}
    kept = {v.name for v in model.deterministics}
    assert {"Intercept", "x", "1|g_sigma", "x|g_sigma", "g_corr"} <= kept
    assert not model.observed_RVs and len(model.potentials) == 2  # likelihood, block prior
    # a non-normal population prior keeps them sampled; a bounded sd prior, the LKJ form
    other = fh.model(
        "y ~ x + (x | g)", _frame(),
        priors=[fh.prior("student_t(3, 0, 1)", "b"), fh.prior("uniform(0, 10)", "sd", group="g", coef="x")],
    ).pymc_model  # fmt: skip
    names = {v.name for v in other.free_RVs}
    assert names == {"Intercept", "x", "sigma", "1|g_sigma", "x|g_sigma", "g_corr_chol"}
    # a categorical population term keeps Bambi's name and dims as a Deterministic
    cat = fh.model("y ~ x + h + (x | g)", _frame()).pymc_model
    assert "h" in {v.name for v in cat.deterministics}
    assert cat.named_vars_to_dims["h"] == ("h_dim",) and cat["h"].eval().shape == (2,)
    pp = m.prior_predictive(draws=20, seed=1)  # the full model, with the group effects
    assert pp["prior_predictive"]["y"].shape[-1] == 200
    assert m.pymc_model is model and m.bambi.fh_built_collapsed  # kept, not rebuilt
    full = m.bambi.backend.model if m.bambi.build(collapsed=False) is None else None
    assert m.pymc_model is model  # fit after prior_predictive: the collapsed graph, kept
    m.bambi.build(collapsed=False)
    assert m.bambi.backend.model is full
    m.bambi.set_group_priors({})  # priors changed: built again
    assert m.pymc_model is not model


def test_collapsed_fit_has_every_effect_and_all_verbs_work(mock_sampling):
    d = _frame()
    fit = fh.fit("y ~ x + (x | g)", d, draws=30, chains=2, seed=3, progressbar=False)
    assert fit.settings["construction"] == "collapsed"
    assert fit.settings["sampler_kwargs"]["target_accept"] == 0.8  # no funnel: PyMC's default
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
    assert_same_posterior(full, coll)
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
