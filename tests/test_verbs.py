"""brms's verbs on a fit: checked by arithmetic on the draws, by simulation and against brms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from _support import load_reference

import formulahier as fh
from formulahier import verbs
from formulahier.brms_names import brms_label


@pytest.fixture(scope="module")
def sleep_data(small_fit):
    return small_fit.fh_model.data


def _by_hand(draws: pd.DataFrame, data: pd.DataFrame, groups: bool = True) -> np.ndarray:
    """Intercept + Days*b (+ the subject's deviations) per draw and row, from brms's names."""
    days = data["Days"].to_numpy(dtype=float)
    mu = draws["b_Intercept"].to_numpy()[:, None] + draws["b_Days"].to_numpy()[:, None] * days
    if groups:
        subj = data["Subject"].astype(str).to_numpy()
        r_int = np.column_stack([draws[f"r_Subject[{s},Intercept]"] for s in subj])
        r_days = np.column_stack([draws[f"r_Subject[{s},Days]"] for s in subj])
        mu = mu + r_int + r_days * days
    return mu


# ---- what the fit is ---------------------------------------------------------------------------
def test_properties(small_fit):
    assert small_fit.ndraws == 400
    assert small_fit.formula == "Reaction ~ Days + (Days | Subject)"
    assert small_fit.family == "gaussian"
    assert small_fit.ngrps() == {"Subject": 18}


def test_as_draws_df_has_brms_names_and_values(small_fit, draws):
    scalars = [
        "b_Intercept",
        "b_Days",
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "cor_Subject__Intercept__Days",
        "sigma",
    ]
    assert list(draws.columns[:6]) == scalars
    assert list(draws.columns[-3:]) == [".chain", ".iteration", ".draw"]
    assert len(draws) == 400 and draws.shape[1] == 6 + 2 * 18 + 3
    assert draws[".chain"].tolist() == [1] * 200 + [2] * 200
    assert draws[".iteration"].tolist() == list(range(1, 201)) * 2
    assert draws[".draw"].tolist() == list(range(1, 401))
    post = small_fit.idata["posterior"]
    np.testing.assert_array_equal(draws["b_Days"], post["Days"].values.reshape(-1))
    np.testing.assert_array_equal(draws["sigma"], post["sigma"].values.reshape(-1))
    u = post["Days|Subject"].sel(Subject__factor_dim="308").values.reshape(-1)
    np.testing.assert_array_equal(draws["r_Subject[308,Days]"], u)
    corr = post["Subject_corr"].values[..., 0, 1].reshape(-1)
    np.testing.assert_allclose(draws["cor_Subject__Intercept__Days"], corr)
    # the same numbers as the summary tables
    fixef = small_fit.fixef()
    assert draws["b_Days"].mean() == pytest.approx(fixef.loc["Days", "estimate"])


def test_as_draws_df_group_effects_option(small_fit):
    assert not any(c.startswith("r_") for c in small_fit.as_draws_df(group_effects=False))
    assert sum(c.startswith("r_") for c in small_fit.as_draws_df(group_effects=True)) == 36


def test_brms_label():
    assert brms_label("f[b]") == "fb"
    assert brms_label("Days:f[b]") == "Days:fb"
    assert brms_label("I(x ^ 2)") == "IxE2"


# ---- predictions ---------------------------------------------------------------------------------
def test_posterior_epred_is_the_linear_predictor_by_hand(small_fit, draws, sleep_data):
    epred = small_fit.posterior_epred()
    assert epred.shape == (400, 180)
    np.testing.assert_allclose(epred, _by_hand(draws, sleep_data), rtol=1e-9)
    np.testing.assert_allclose(small_fit.posterior_linpred(), epred)  # identity link
    population = small_fit.posterior_epred(re_formula="~0")
    np.testing.assert_allclose(population, _by_hand(draws, sleep_data, groups=False), rtol=1e-9)


def test_posterior_epred_newdata(small_fit, draws):
    new = pd.DataFrame({"Days": [0.0, 4.0], "Subject": ["308", "309"]})
    epred = small_fit.posterior_epred(new)
    np.testing.assert_allclose(epred, _by_hand(draws, new), rtol=1e-9)


def test_fitted_summarises_epred(small_fit):
    epred = small_fit.posterior_epred()
    table = small_fit.fitted()
    assert list(table.columns) == ["Estimate", "Est.Error", "Q2.5", "Q97.5"]
    np.testing.assert_allclose(table["Estimate"], epred.mean(axis=0))
    np.testing.assert_allclose(table["Est.Error"], epred.std(axis=0, ddof=1))
    np.testing.assert_allclose(table["Q97.5"], np.quantile(epred, 0.975, axis=0))
    assert list(small_fit.fitted(ci_prob=0.9).columns[2:]) == ["Q5", "Q95"]
    np.testing.assert_array_equal(small_fit.fitted(summary=False), epred)
    with pytest.raises(fh.DataError):
        small_fit.fitted(ci_prob=2)


def test_residuals_are_y_minus_epred(small_fit, sleep_data):
    y = sleep_data["Reaction"].to_numpy()
    res = small_fit.residuals(summary=False)
    np.testing.assert_allclose(res, y[None, :] - small_fit.posterior_epred())
    table = small_fit.residuals()
    np.testing.assert_allclose(table["Estimate"], y - small_fit.fitted()["Estimate"])


# ---- fit measures --------------------------------------------------------------------------------
def test_bayes_r2_by_hand(small_fit, sleep_data):
    mu = small_fit.posterior_epred()
    e = sleep_data["Reaction"].to_numpy()[None, :] - mu
    by_hand = mu.var(axis=1, ddof=1) / (mu.var(axis=1, ddof=1) + e.var(axis=1, ddof=1))
    np.testing.assert_allclose(small_fit.bayes_R2(summary=False), by_hand)
    table = small_fit.bayes_R2()
    assert list(table.columns) == ["Estimate", "Est.Error", "Q2.5", "Q97.5"]
    assert table.index.tolist() == ["R2"]
    assert 0.7 < table.loc["R2", "Estimate"] < 0.9  # lme4's conditional R2 is about 0.8


def test_loo_r2_below_bayes_r2(small_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fh.FormulahierWarning)
        loo = small_fit.loo_R2()
    assert list(loo.columns) == ["Estimate", "Est.Error", "Q2.5", "Q97.5"]
    assert 0.4 < loo.loc["R2", "Estimate"] < small_fit.bayes_R2().loc["R2", "Estimate"]


def test_waic_by_hand_and_against_brms(small_fit):
    table = small_fit.waic()
    assert table.index.tolist() == ["elpd_waic", "p_waic", "waic"]
    ll = small_fit.idata["log_likelihood"]["Reaction"].values.reshape(400, -1)
    lppd = np.log(np.exp(ll).mean(axis=0))
    p = ll.var(axis=0, ddof=1)
    assert table.loc["p_waic", "Estimate"] == pytest.approx(p.sum())
    assert table.loc["elpd_waic", "Estimate"] == pytest.approx((lppd - p).sum())
    assert table.loc["waic", "Estimate"] == pytest.approx(-2 * (lppd - p).sum())
    assert table.loc["elpd_waic", "SE"] == pytest.approx(math.sqrt(180 * (lppd - p).var(ddof=1)))
    # brms's PSIS-LOO elpd for this model: WAIC's is within a fraction of its SE
    elpd, se = load_reference("sleepstudy")["brms_loo_elpd"]
    assert abs(table.loc["elpd_waic", "Estimate"] - elpd) < 0.5 * se


# ---- hypothesis ------------------------------------------------------------------------------------
def test_hypothesis_one_sided(small_fit, draws):
    table = small_fit.hypothesis("Days > 5")
    assert list(table.columns) == [
        "Hypothesis",
        "Estimate",
        "Est.Error",
        "CI.Lower",
        "CI.Upper",
        "Evid.Ratio",
        "Post.Prob",
        "Star",
    ]
    row = table.iloc[0]
    x = draws["b_Days"].to_numpy() - 5
    assert row["Hypothesis"] == "(Days)-(5) > 0"
    assert row["Estimate"] == pytest.approx(x.mean())
    assert row["Est.Error"] == pytest.approx(x.std(ddof=1))
    assert row["CI.Lower"] == pytest.approx(np.quantile(x, 0.05))  # one-sided, as brms
    assert row["CI.Upper"] == np.inf
    hits = (x > 0).sum()
    if hits < len(x):
        assert row["Evid.Ratio"] == pytest.approx(hits / (len(x) - hits))
    assert row["Post.Prob"] == pytest.approx(hits / len(x))
    assert row["Star"] == "*"
    less = small_fit.hypothesis("b_Days < 10").iloc[0]
    y = draws["b_Days"].to_numpy() - 10
    assert less["CI.Lower"] == -np.inf
    assert less["CI.Upper"] == pytest.approx(np.quantile(y, 0.95))
    assert less["Evid.Ratio"] == pytest.approx((y < 0).sum() / (y >= 0).sum())


def test_hypothesis_point(small_fit, draws):
    table = small_fit.hypothesis("Intercept + Days*5 = 300", prior_draws=0)
    row = table.iloc[0]
    x = draws["b_Intercept"].to_numpy() + 5 * draws["b_Days"].to_numpy() - 300
    assert row["Hypothesis"] == "(Intercept+Days*5)-(300) = 0"
    assert row["Estimate"] == pytest.approx(x.mean())
    assert row["CI.Lower"] == pytest.approx(np.quantile(x, 0.025))
    assert row["CI.Upper"] == pytest.approx(np.quantile(x, 0.975))
    assert math.isnan(row["Evid.Ratio"]) and math.isnan(row["Post.Prob"])
    with_prior = small_fit.hypothesis(["Intercept + Days*5 = 300", "Days > 5"], seed=1)
    ratio = with_prior.loc[0, "Evid.Ratio"]
    assert np.isfinite(ratio) and ratio > 0
    assert with_prior.loc[0, "Post.Prob"] == pytest.approx(ratio / (1 + ratio))


def test_savage_dickey_by_simulation():
    """Posterior N(0, 1), prior N(0, 10): the density ratio at 0 is 10."""
    rng = np.random.default_rng(0)
    post = {"b": rng.normal(0, 1, 20000)}
    prior = {"b": rng.normal(0, 10, 20000)}
    row = verbs.hypothesis(post, "b = 0", prior=prior).iloc[0]
    assert row["Evid.Ratio"] == pytest.approx(10, rel=0.05)
    assert row["Star"] == ""
    # names with brackets and colons (Bambi's factor levels) are read as names
    two = {"f[b]": rng.normal(3, 1, 4000), "x:f[b]": rng.normal(1, 1, 4000)}
    out = verbs.hypothesis(two, "f[b] - x:f[b] > 0").iloc[0]
    assert out["Estimate"] == pytest.approx((two["f[b]"] - two["x:f[b]"]).mean())


@pytest.mark.parametrize(
    "bad",
    [
        "Days",
        "Days >= 5",
        "Days > 5 > 3",
        "Nope > 1",
        "__import__('os').system('true') > 0",
        "Days.real > 0",
        "Days(1) > 0",
        "[Days][0] > 0",
        "",
    ],
)
def test_hypothesis_rejects_what_is_not_arithmetic_of_effects(small_fit, bad):
    with pytest.raises(fh.FormulahierError):
        small_fit.hypothesis(bad, prior_draws=0)


# ---- binomial: expected counts, as brms ------------------------------------------------------
def test_binomial_epred_is_trials_times_probability(mock_sampling):
    cbpp = fh.datasets.load("cbpp")
    fit = fh.fit(
        "incidence | trials(size) ~ period + (1 | herd)",
        cbpp,
        family="binomial",
        draws=20,
        chains=1,
        progressbar=False,
    )
    prob = fit.predict(draws=True).values.reshape(20, -1)
    epred = fit.posterior_epred()
    np.testing.assert_allclose(epred, prob * cbpp["size"].to_numpy()[None, :])
    new = cbpp.head(3).assign(size=[10, 20, 30])
    prob_new = fit.predict(new, draws=True).values.reshape(20, -1)
    np.testing.assert_allclose(fit.posterior_epred(new), prob_new * np.array([10, 20, 30]))
    res = fit.residuals(summary=False)
    np.testing.assert_allclose(res, cbpp["incidence"].to_numpy()[None, :] - epred)


# ---- plots ---------------------------------------------------------------------------------------
def test_trace_plot_uses_brms_names_and_ppc_has_a_legend(small_fit, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pc = small_fit.plot_trace()
    names = list(pc.data.data_vars)
    assert names == [
        "b_Intercept",
        "b_Days",
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "cor_Subject__Intercept__Days",
        "sigma",
    ]
    pc.savefig(tmp_path / "trace.png")
    assert list(small_fit.plot_trace(var_names=["b_Days"]).data.data_vars) == ["b_Days"]
    ppc = small_fit.plot_ppc(num_samples=20, seed=1)
    figure = ppc.viz["figure"].item()
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert texts == ["observed data", "replicated (20 draws)"]
    plt.close("all")
