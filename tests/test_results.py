"""lme4/brms-style tables from a fit. Sampling is mocked (prior draws), so no MCMC runs here;
every number is checked against a hand computation from the draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import formulahier as fh


@pytest.fixture(scope="module")
def mfit_draws() -> int:
    """Draws per chain of the shared ``mfit`` (the header below says 60)."""
    return 60


def draws(fit, name):
    return fit.idata["posterior"][name].values  # (chain, draw, ...)


def test_fixef(mfit):
    fe = mfit.fixef()
    assert list(fe.index) == ["Intercept", "Days"]
    assert list(fe.columns) == ["estimate", "std_error", "lower", "upper"]
    b = draws(mfit, "Days").ravel()
    assert fe.loc["Days", "estimate"] == pytest.approx(b.mean())
    assert fe.loc["Days", "std_error"] == pytest.approx(b.std(ddof=1))
    assert fe.loc["Days", "lower"] == pytest.approx(np.quantile(b, 0.025))
    assert fe.loc["Days", "upper"] == pytest.approx(np.quantile(b, 0.975))


def test_ci_prob(mfit):
    wide, narrow = mfit.fixef(), mfit.fixef(ci_prob=0.5)
    assert (narrow["upper"] - narrow["lower"] < wide["upper"] - wide["lower"]).all()
    b = draws(mfit, "Intercept").ravel()
    assert narrow.loc["Intercept", "lower"] == pytest.approx(np.quantile(b, 0.25))
    with pytest.raises(ValueError, match="ci_prob"):
        mfit.fixef(ci_prob=95)


def test_ranef(mfit, sleepstudy):
    re = mfit.ranef()
    assert list(re) == ["Subject"]
    table = re["Subject"]
    assert list(table.index) == sorted(sleepstudy["Subject"].unique(), key=int)
    assert table.columns.names == ["effect", "statistic"]
    assert set(table.columns.get_level_values(0)) == {"Intercept", "Days"}
    u = draws(mfit, "Days|Subject")  # (chain, draw, level)
    expected = u.reshape(-1, u.shape[-1]).mean(axis=0)
    np.testing.assert_allclose(table[("Days", "estimate")].to_numpy(), expected)


def test_coef_is_population_plus_group(mfit):
    co = mfit.coef()["Subject"]
    u = draws(mfit, "1|Subject")
    b = draws(mfit, "Intercept")[..., None]
    total = (u + b).reshape(-1, u.shape[-1])
    np.testing.assert_allclose(co[("Intercept", "estimate")].to_numpy(), total.mean(axis=0))
    np.testing.assert_allclose(
        co[("Intercept", "upper")].to_numpy(), np.quantile(total, 0.975, axis=0)
    )


def test_varcorr(mfit):
    vc = mfit.varcorr()
    assert list(vc.columns) == ["group", "var1", "var2", "estimate", "std_error", "lower", "upper"]
    assert vc["group"].tolist() == ["Subject", "Subject", "Subject", "Residual"]
    assert vc["var1"].tolist()[:3] == ["Intercept", "Days", "Intercept"]
    assert vc["var2"].isna().tolist() == [True, True, False, True]
    assert vc.loc[2, "var2"] == "Days"
    rho = draws(mfit, "Subject_corr")[..., 0, 1].ravel()
    assert vc.loc[2, "estimate"] == pytest.approx(rho.mean())
    sd = draws(mfit, "1|Subject_sigma").ravel()
    assert vc.loc[0, "estimate"] == pytest.approx(sd.mean())
    sigma = draws(mfit, "sigma").ravel()
    assert vc.loc[3, "estimate"] == pytest.approx(sigma.mean())


def test_printed_summary(mfit):
    text = str(mfit)
    for piece in [
        "Formula: Reaction ~ Days + (Days | Subject)",
        "Family: gaussian",
        "Links: mu = identity; sigma = identity",  # brms: sigma has no formula here
        "Data: sleepstudy (Number of observations: 180)",  # the name from fh.datasets.load
        "~Subject (Number of levels: 18)",
        "sd(Intercept)",
        "sd(Days)",
        "cor(Intercept,Days)",
        "Population-level effects:",
        "Family specific parameters:",
        "sigma",
        "Rhat",
        "Bulk_ESS",
        "Tail_ESS",
        "l-95% CI",
        "2 chains x 60 draws",
        "Diagnostics:",
    ]:
        assert piece in text, piece
    # few draws: the diagnostics must say ESS is low, and what to do
    assert "ESS below 200" in text and "increase draws" in text


def test_summary_tables_and_html(mfit):
    summary = mfit.summary()
    group = summary.group["Subject"]
    assert list(group.index) == ["sd(Intercept)", "sd(Days)", "cor(Intercept,Days)"]
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(group.columns)
    assert list(summary.population.index) == ["Intercept", "Days"]
    assert list(summary.family.index) == ["sigma"]
    html = mfit._repr_html_()
    assert "<table" in html and "cor(Intercept,Days)" in html
    assert "~Subject (Number of levels: 18)" in html
    ess = summary.population["ess_bulk"].iloc[0]
    assert f"<td>{int(ess)}</td>" in html and f"{ess:.1f}" not in html  # integer ESS


def test_links_line_as_brms(sleepstudy):
    from formulahier.brms_names import brms_links

    def links(formula, **options):
        return brms_links(fh.model(formula, sleepstudy, **options).bambi)

    assert links("Reaction ~ Days") == "mu = identity; sigma = identity"
    assert links(fh.bf("Reaction ~ Days", sigma="~ Days")) == "mu = identity; sigma = log"
    counts = sleepstudy.assign(Reaction=sleepstudy["Reaction"].round().astype(int))
    nb = brms_links(fh.model("Reaction ~ Days", counts, family="negbinomial").bambi)
    assert nb == "mu = log; shape = identity"


def test_unnamed_data_has_no_name_and_the_user_frame_is_untouched(sleepstudy):
    frame = sleepstudy.copy()
    frame.attrs.clear()
    m = fh.model("Reaction ~ Days + (1 | Subject)", frame)
    assert "name" not in m.data.attrs and frame.attrs == {}


def test_prior_tables_print_whole():
    sleep = fh.datasets.load("sleepstudy")
    table = fh.get_prior("Reaction ~ Days + (Days | Subject)", sleep)
    with pd.option_context("display.width", 60, "display.max_columns", 4):
        text = repr(table)
    assert "..." not in text
    header = text.splitlines()[0].split()
    assert header == ["prior", "class", "coef", "group", "source", "pymc", "parameter"]
    assert len(text.splitlines()) == len(table) + 1


def test_fit_exposes_bambi_model_and_idata(mfit):
    import bambi as bmb

    assert isinstance(mfit.model, bmb.Model)
    assert "posterior" in mfit.idata.children
    assert mfit.nobs == 180
    # the Cholesky factor of the correlation is not kept; the correlation matrix is
    assert "Subject_corr_chol" not in mfit.idata["posterior"]
    assert "Subject_corr" in mfit.idata["posterior"]


def test_bambi_predict_is_the_population_level_part(mfit, sleepstudy):
    """Bambi knows the population part only: its predict is brms's re_formula = NA."""
    idata = mfit.model.predict(mfit.idata, data=sleepstudy.head(5), inplace=False)
    mu = idata["posterior"]["mu"]
    assert mu.shape[-1] == 5
    b0, b1 = draws(mfit, "Intercept"), draws(mfit, "Days")
    days = sleepstudy["Days"].to_numpy()[:5]
    np.testing.assert_allclose(mu.values, b0[..., None] + b1[..., None] * days, rtol=1e-8)
    ours = mfit.predict(sleepstudy.head(5), re_formula="~0", draws=True).values
    np.testing.assert_allclose(ours, mu.values, rtol=1e-8)


def test_tables_computed_together_equal_table_by_table():
    """The summary computes all its tables in one stacked pass (results._tables): same figures."""
    import xarray as xr

    from formulahier import results

    rng = np.random.default_rng(3)

    def draws(scale, dtype="float64"):
        values = rng.normal(size=(4, 250)).cumsum(axis=1) * scale  # autocorrelated, like MCMC
        return xr.DataArray(values.astype(dtype), dims=("chain", "draw"))

    parts = {
        ("group", "a"): {"sd(Intercept)": draws(1.0), "sd(x)": draws(0.1)},
        ("group", "b"): {"sd(Intercept)": draws(3.0)},  # the same label under another factor
        "population": {"Intercept": draws(10.0), "x": draws(0.5)},
        "family": {},
    }
    together = results._tables(parts, 0.9)
    assert list(together) == list(parts)
    for name, part in parts.items():
        apart = results._table(part, 0.9)
        assert list(together[name].index) == list(part)
        pd.testing.assert_frame_equal(together[name], apart, check_exact=True)
    # rows of another dtype are not cast: each table is computed apart
    parts["family"] = {"sigma": draws(1.0, "float32")}
    mixed = results._tables(parts, 0.9)
    pd.testing.assert_frame_equal(mixed["family"], results._table(parts["family"], 0.9))
