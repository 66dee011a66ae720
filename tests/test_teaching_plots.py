"""Teaching plots (pairs, funnel, correlations, shrinkage for every family) and the
marginaleffects-style verbs through Bambi's interpret, checked by arithmetic on the draws."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _support import mocked_sampling  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

import formulahier as fh  # noqa: E402
from formulahier.teaching_plots import lkj_marginal_density  # noqa: E402


@pytest.fixture(scope="module")
def cbpp_fit():
    """Binomial GLMM with prior draws in place of MCMC (PyMC's mock): values are checked by
    arithmetic on whatever draws there are."""
    cbpp = fh.datasets.load("cbpp")
    with mocked_sampling():
        return fh.fit(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            cbpp,
            family="binomial",
            draws=40,
            chains=1,
            progressbar=False,
        )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _logit(p):
    return np.log(p / (1 - p))


# ---- shrinkage for every family ---------------------------------------------------------------
def test_group_means_of_a_binomial_model_by_hand(cbpp_fit):
    from formulahier.teaching_plots import group_means

    data = cbpp_fit.fh_model.data
    herd = data["herd"].astype(str).to_numpy()
    epred = cbpp_fit.posterior_epred().mean(axis=0)  # expected counts per row
    pop = cbpp_fit.posterior_epred(re_formula="~0").mean(axis=0)
    means, label, size_name = group_means(cbpp_fit, "herd", "response")
    assert (label, size_name) == ("proportion", "trials")
    for level in ["1", "7", "15"]:
        rows = herd == level
        size = data["size"].to_numpy()[rows].sum()
        assert means.loc[level, "n"] == size
        assert means.loc[level, "raw"] == pytest.approx(data["incidence"][rows].sum() / size)
        assert means.loc[level, "pooled"] == pytest.approx(epred[rows].sum() / size)
        assert means.loc[level, "population"] == pytest.approx(pop[rows].sum() / size)
    link, label, _ = group_means(cbpp_fit, "herd", "link")
    assert label == "logit(proportion)"
    finite = (means["raw"] > 0) & (means["raw"] < 1)
    np.testing.assert_allclose(link["raw"][finite], _logit(means["raw"][finite]))
    np.testing.assert_allclose(link["pooled"], _logit(means["pooled"]))
    with pytest.raises(fh.DataError, match="scale"):
        group_means(cbpp_fit, "herd", "odds")


def test_shrinkage_plots_of_a_binomial_model(cbpp_fit, tmp_path):
    fig = cbpp_fit.plot_shrinkage()  # default scale for binomial: response
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "proportion (response scale)"
    assert len(ax.get_yticklabels()) == 15
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:2] == ["no pooling (observed group mean)", "partial pooling (model)"]
    fig.savefig(tmp_path / "shrink.png")
    assert "logit" in cbpp_fit.plot_shrinkage(scale="link").axes[0].get_xlabel()
    size = cbpp_fit.plot_shrinkage_size("herd")
    assert "trials" in size.axes[0].get_xlabel()
    assert len(size.axes[0].collections[1].get_offsets()) == 15  # one raw point per herd
    with pytest.raises(fh.OptionError):
        cbpp_fit.plot_shrinkage(effects=["Intercept"], scale="response")
    with pytest.raises(fh.DataError, match="No grouping factor"):
        cbpp_fit.plot_shrinkage("county")


def test_gaussian_shrinkage_keeps_coefficients_and_has_means(small_fit):
    fig = small_fit.plot_shrinkage()
    assert fig.axes[0].get_xlabel() == "Intercept" and fig.axes[0].get_ylabel() == "Days"
    means = small_fit.plot_shrinkage(scale="response")
    assert means.axes[0].get_xlabel() == "mean of Reaction (response scale)"


# ---- correlations, pairs, funnel -----------------------------------------------------------------
@pytest.mark.parametrize(("eta", "size"), [(1.0, 2), (2.0, 3), (4.0, 4)])
def test_lkj_marginal_density_matches_pymc_draws(eta, size):
    import pymc as pm

    grid = np.linspace(-1, 1, 20001)
    assert np.trapezoid(lkj_marginal_density(grid, eta, size), grid) == pytest.approx(1, abs=1e-3)
    draws = pm.draw(pm.LKJCorr.dist(n=size, eta=eta), draws=3000, random_seed=1)
    draws = np.asarray(draws)  # PyMC 6: Cholesky factors (L[1, 0] = cor); older: triangles
    r = draws[:, 1, 0] if draws.ndim == 3 else draws[:, 0]
    a = eta - 1 + size / 2
    assert stats.kstest((r + 1) / 2, stats.beta(a, a).cdf).pvalue > 0.01


def test_correlation_plot_one_panel_per_correlation(small_fit):
    fig = small_fit.plot_correlations()
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["cor_Subject__Intercept__Days"]
    labels = [t.get_text() for t in shown[0].get_legend().get_texts()]
    assert {"posterior", "prior LKJ(2)", "95% interval"} == set(labels)


def test_correlation_plot_needs_a_correlation(cbpp_fit):
    with pytest.raises(fh.DataError, match="no correlated"):
        cbpp_fit.plot_correlations()


def test_pairs_plot_brms_names(small_fit):
    fig = small_fit.plot_pairs(["b_Days", "sd_Subject__Days"])
    assert isinstance(fig, Figure)
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert {"b_Days", "sd_Subject__Days"} <= labels
    with pytest.raises(fh.DataError, match="No parameter"):
        small_fit.plot_pairs(["Days"])


def test_funnel_marks_divergences(small_fit, monkeypatch):
    sd = small_fit.idata["posterior"]["Days|Subject_sigma"]
    fake = sd < float(sd.quantile(0.1))  # pretend the neck of the funnel diverged
    monkeypatch.setattr(small_fit, "_diverging", lambda: fake.reset_coords(drop=True))
    fig = small_fit.plot_funnel(effect="Days", levels=3)
    assert "Funnel of log(sd_Subject__Days)" in fig.texts[0].get_text()
    assert f"{int(fake.sum())} divergent" in fig.texts[0].get_text()
    panels = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(panels) == 3 and panels[0].get_xlabel().startswith("r_Subject[")
    red = [c for c in panels[0].collections if np.allclose(c.get_facecolor()[0][:3], (1, 0, 0))]
    assert sum(len(c.get_offsets()) for c in red) == int(fake.sum())
    with pytest.raises(fh.DataError, match="No group-level effect"):
        small_fit.plot_funnel(effect="Reaction")


# ---- marginaleffects-style, population level -----------------------------------------------------
def test_slopes_and_comparisons_are_fixef_arithmetic(small_fit):
    draws = small_fit.as_draws_df(group_effects=False)
    days = draws["b_Days"].to_numpy()
    slope = small_fit.slopes("Days")
    assert len(slope) == 1
    assert slope["estimate"].iloc[0] == pytest.approx(days.mean(), rel=1e-6)
    lo, hi = np.quantile(days, [0.025, 0.975])
    assert slope["lower_2.5%"].iloc[0] == pytest.approx(lo, rel=1e-3)
    assert slope["upper_97.5%"].iloc[0] == pytest.approx(hi, rel=1e-3)
    diff = small_fit.comparisons({"Days": [0, 5]})
    assert diff["estimate"].iloc[0] == pytest.approx(5 * days.mean(), rel=1e-6)
    pred = small_fit.predictions({"Days": [0, 9]}, ci_prob=0.9)
    intercept = draws["b_Intercept"].to_numpy()
    np.testing.assert_allclose(
        pred["estimate"], [intercept.mean(), (intercept + 9 * days).mean()], rtol=1e-6
    )
    assert "lower_5.0%" in pred.columns or "lower_5%" in pred.columns
    with pytest.raises(fh.DataError, match="grouping factor"):
        small_fit.comparisons("Subject")


def test_binomial_contrast_is_probability_arithmetic(cbpp_fit):
    draws = cbpp_fit.as_draws_df(group_effects=False)
    b0 = draws["b_Intercept"].to_numpy()
    b2 = draws["b_period2"].to_numpy()
    expit = 1 / (1 + np.exp(-b0)), 1 / (1 + np.exp(-(b0 + b2)))
    out = cbpp_fit.comparisons({"period": ["1", "2"]})
    assert out["estimate"].iloc[0] == pytest.approx((expit[1] - expit[0]).mean(), rel=1e-6)


def test_many_levels_give_figures_that_fit():
    """Hundreds of levels: dot plots drop their labels and stay at most 10 inches high."""
    import pandas as pd

    rng = np.random.default_rng(1)
    g = rng.integers(0, 150, 1500)
    data = pd.DataFrame({"g": [f"g{k}" for k in g], "x": rng.normal(size=g.size)})
    data["y"] = rng.normal(size=g.size) + 0.3 * (g % 7)
    with mocked_sampling():
        fit = fh.fit("y ~ x + (1 | g)", data, draws=10, chains=1, progressbar=False)
    for fig in (fit.plot_forest(), fit.plot_shrinkage(), fit.plot_shrinkage(scale="response")):
        assert fig.get_size_inches()[1] <= 10
        assert fig.axes[0].get_yticklabels() == [] or not fig.axes[0].get_yticks().size
        assert "150 levels, sorted" == fig.axes[0].get_ylabel()


def test_ordinal_group_means_are_refused_with_advice(monkeypatch, cbpp_fit):
    from formulahier.teaching_plots import group_means

    monkeypatch.setattr(cbpp_fit.model.family, "name", "cumulative")
    with pytest.raises(fh.OptionError, match="plot_forest"):
        group_means(cbpp_fit, "herd")
