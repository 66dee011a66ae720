"""Predictions: existing levels against a hand computation from the draws, new levels against
the fitted population distribution. Sampling is mocked (prior draws): no MCMC runs here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import formulahier as fh
from formulahier import predict as predict_module


def flat(fit, name):
    v = fit.idata["posterior"][name].values
    return v.reshape(-1, *v.shape[2:])  # (sample, ...)


def hand_linpred(fit, frame, group=True):
    b0, b1 = flat(fit, "Intercept"), flat(fit, "Days")
    eta = b0[:, None] + b1[:, None] * frame["Days"].to_numpy()[None, :]
    if group:
        levels = [
            str(v) for v in fit.idata["posterior"]["1|Subject"].coords["Subject__factor_dim"].values
        ]
        idx = np.array([levels.index(str(s)) for s in frame["Subject"]])
        u0, u1 = flat(fit, "1|Subject"), flat(fit, "Days|Subject")
        eta = eta + u0[:, idx] + u1[:, idx] * frame["Days"].to_numpy()[None, :]
    return eta


def test_existing_levels_match_hand_computation(mfit, sleepstudy):
    rows = sleepstudy.iloc[[0, 15, 33, 179]]
    table = mfit.predict(rows)
    eta = hand_linpred(mfit, rows)
    assert list(table.columns) == ["estimate", "std_error", "lower", "upper"]
    assert list(table.index) == list(rows.index)
    np.testing.assert_allclose(table["estimate"], eta.mean(0))
    np.testing.assert_allclose(table["std_error"], eta.std(0, ddof=1))
    np.testing.assert_allclose(table["lower"], np.quantile(eta, 0.025, axis=0))
    np.testing.assert_allclose(table["upper"], np.quantile(eta, 0.975, axis=0))
    narrow = mfit.predict(rows, ci_prob=0.5)
    np.testing.assert_allclose(narrow["upper"], np.quantile(eta, 0.75, axis=0))


def test_draws_and_in_sample(mfit, sleepstudy):
    d = mfit.predict(draws=True)
    assert d.dims == ("chain", "draw", "__obs__")
    assert d.shape == (2, 40, len(sleepstudy))
    np.testing.assert_allclose(d.values.reshape(80, -1), hand_linpred(mfit, sleepstudy))


def test_population_level_and_subset_re_formula(mfit, sleepstudy):
    rows = sleepstudy.iloc[[0, 50]]
    pop = mfit.predict(rows, re_formula="~0", draws=True).values.reshape(80, -1)
    np.testing.assert_allclose(pop, hand_linpred(mfit, rows, group=False))
    # like brms, population-level predictions need no grouping column
    no_group = mfit.predict(rows[["Days"]], re_formula="~0", draws=True).values.reshape(80, -1)
    np.testing.assert_allclose(no_group, pop)
    with pytest.raises(fh.DataError, match="Subject"):
        mfit.predict(rows[["Days"]])
    same = mfit.predict(rows, re_formula="~ (Days | Subject)", draws=True)
    np.testing.assert_allclose(same.values.reshape(80, -1), hand_linpred(mfit, rows))
    with pytest.raises(fh.FormulaError, match="does not have"):
        mfit.predict(rows, re_formula="~ (1 | Other)")


def test_chunks_give_the_same_answer(mfit, sleepstudy, monkeypatch):
    whole = mfit.predict(sleepstudy)
    monkeypatch.setattr(predict_module, "_CELLS_PER_CHUNK", 80 * 7)  # 7 rows per chunk
    pd.testing.assert_frame_equal(mfit.predict(sleepstudy), whole)


def test_unseen_level_raises_naming_factor_and_levels(mfit, sleepstudy):
    new = sleepstudy.head(3).copy()
    new["Subject"] = ["A1", "A1", "B2"]
    with pytest.raises(fh.DataError, match="Subject") as err:
        mfit.predict(new)
    assert "A1" in str(err.value) and "B2" in str(err.value)
    assert "allow_new_levels=True" in str(err.value)
    # population-level predictions need no levels
    assert len(mfit.predict(new, re_formula="~0")) == 3


def test_new_levels_follow_the_fitted_population_distribution(mfit):
    """Each draw's new-level effects ~ MvNormal(0, S) with S from that draw's sds and corr."""
    n = 3000
    new = pd.DataFrame(
        {"Days": np.tile([0.0, 1.0], n), "Subject": np.repeat([f"new{i}" for i in range(n)], 2)}
    )
    eta = mfit.predict(new, kind="linpred", allow_new_levels=True, seed=11, draws=True)
    eta = eta.values.reshape(80, -1)
    b0, b1 = flat(mfit, "Intercept"), flat(mfit, "Days")
    u0 = eta[:, 0::2] - b0[:, None]  # (sample, level)
    u1 = eta[:, 1::2] - eta[:, 0::2] - b1[:, None]
    sd0, sd1 = flat(mfit, "1|Subject_sigma"), flat(mfit, "Days|Subject_sigma")
    rho = flat(mfit, "Subject_corr")[:, 0, 1]
    z0, z1 = u0 / sd0[:, None], u1 / sd1[:, None]
    # per draw: mean 0 (se 1/sqrt(n)), sd 1 (se ~ 1/sqrt(2n)), correlation rho (se (1-rho^2)/sqrt(n))
    assert np.abs(z0.mean(1)).max() < 5 / np.sqrt(n)
    assert np.abs(z1.mean(1)).max() < 5 / np.sqrt(n)
    assert np.abs(z0.std(1) - 1).max() < 5 / np.sqrt(2 * n)
    assert np.abs(z1.std(1) - 1).max() < 5 / np.sqrt(2 * n)
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(z0, z1, strict=True)])
    assert np.abs(r - rho).max() < 5 * (1 - rho**2).max() / np.sqrt(n) + 0.01
    assert np.ptp(rho) > 0.3  # the check above is per draw, with different correlations


def test_new_levels_reproducible_and_shared_within_level(mfit, sleepstudy):
    new = pd.DataFrame({"Days": [0.0, 0.0, 0.0], "Subject": ["x", "x", "y"]})
    kw = {"kind": "linpred", "allow_new_levels": True, "draws": True}
    a = mfit.predict(new, seed=5, **kw).values
    b = mfit.predict(new, seed=5, **kw).values
    c = mfit.predict(new, seed=6, **kw).values
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(a[..., 0], a[..., 1])  # same new level, same effects
    assert not np.allclose(a[..., 0], a[..., 2])  # another new level, other effects
    # mixing seen and unseen levels: seen rows are the usual prediction
    mixed = pd.concat([sleepstudy.head(2)[["Days", "Subject"]].astype({"Subject": str}), new])
    got = mfit.predict(mixed, allow_new_levels=True, seed=1, draws=True).values.reshape(80, -1)
    np.testing.assert_allclose(got[:, :2], hand_linpred(mfit, sleepstudy.head(2)))


def test_kinds(mfit, sleepstudy):
    rows = sleepstudy.head(4)
    mean = mfit.predict(rows, kind="mean", draws=True).values.reshape(80, -1)
    lin = mfit.predict(rows, kind="linpred", draws=True).values.reshape(80, -1)
    np.testing.assert_allclose(mean, lin)  # identity link
    resp = mfit.predict(rows, kind="response", seed=2, draws=True).values.reshape(80, -1)
    z = (resp - mean) / flat(mfit, "sigma")[:, None]
    assert abs(z.mean()) < 5 / np.sqrt(z.size) and abs(z.std() - 1) < 5 / np.sqrt(2 * z.size)
    with pytest.raises(ValueError, match="kind"):
        mfit.predict(rows, kind="epred")


def test_newdata_checked_and_never_modified(mfit, sleepstudy):
    new = sleepstudy.head(3).copy()
    before = new.copy()
    mfit.predict(new)
    pd.testing.assert_frame_equal(new, before)
    with pytest.raises(fh.DataError, match="Days"):
        mfit.predict(new.drop(columns="Days"))
    bad = new.copy()
    bad.loc[bad.index[0], "Days"] = np.nan
    with pytest.raises(fh.DataError, match="missing"):
        mfit.predict(bad)
    # the response is not needed
    assert len(mfit.predict(new.drop(columns="Reaction"))) == 3


def test_posterior_predictive_and_plots(mfit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pp = mfit.posterior_predictive(num_draws=10, seed=1)
    assert pp.shape == (1, 10, mfit.nobs)
    assert "posterior_predictive" in mfit.idata.children
    assert mfit.plot_ppc(num_samples=10) is not None
    assert mfit.plot_trace() is not None
    fig = mfit.plot_forest()
    assert len(fig.axes) == 2  # Intercept and Days
    fig2 = mfit.plot_shrinkage("Subject")
    assert fig2.axes[0].get_xlabel() == "Intercept" and fig2.axes[0].get_ylabel() == "Days"
    assert mfit.plot_conditional_effects("Days") is not None
    plt.close("all")


def test_shrinkage_plot_skips_levels_without_a_raw_fit(mfit, monkeypatch):
    """A level whose per-group fit is undefined (NaN) gets no arrow, and no crash."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from formulahier import plots

    real = plots.raw_group_estimates

    def with_nan(*args, **kwargs):
        raw = real(*args, **kwargs)
        raw.iloc[0, 1] = np.nan
        return raw

    monkeypatch.setattr(plots, "raw_group_estimates", with_nan)
    fig = mfit.plot_shrinkage("Subject")
    arrows = [c for c in fig.axes[0].texts]
    assert len(arrows) == mfit.ranef()["Subject"].shape[0] - 1
    plt.close("all")


def test_raw_group_estimates_are_per_group_least_squares(mfit, sleepstudy):
    from formulahier.plots import raw_group_estimates

    raw = raw_group_estimates(mfit.fh_model, "Subject", ["Intercept", "Days"])
    sub = sleepstudy[sleepstudy["Subject"].astype(str) == "308"]
    slope, intercept = np.polyfit(sub["Days"], sub["Reaction"], 1)
    assert raw.loc["308", "Days"] == pytest.approx(slope)
    assert raw.loc["308", "Intercept"] == pytest.approx(intercept)


def test_update_formula():
    from formulahier.fit_tools import update_formula

    old = "y ~ x + (x | g)"
    assert update_formula(old, ". ~ . + z") == "y ~ x + (x | g) + z"
    assert update_formula(old, ". ~ . - (x | g) + (1 | g)") == "y ~ x + (1 | g)"
    assert update_formula(old, "log(y) ~ .") == "log(y) ~ x + (x | g)"
    assert update_formula(old, "y ~ w") == "y ~ w"
    with pytest.raises(fh.FormulaError, match="not a term"):
        update_formula(old, ". ~ . - w")


def test_update_keeps_options_and_sampler_settings(sleepstudy, mock_sampling):
    first = fh.fit(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        draws=20,
        chains=2,
        seed=3,
        progressbar=False,
        target_accept=0.95,
        lkj_eta=3.0,
    )
    assert first.settings["sampler_kwargs"] == {"target_accept": 0.95}
    second = first.update(". ~ . - (Days | Subject) + (1 | Subject)", draws=10)
    assert second.spec.formula == "Reaction ~ Days + (1 | Subject)"
    assert second.settings["sampler_kwargs"] == {"target_accept": 0.95}
    assert (second.settings["draws"], second.settings["chains"]) == (10, 2)
    assert second.fh_model.options["lkj_eta"] == 3.0


def test_categorical_block_and_nested_factor_by_hand(mock_sampling):
    """(f | g) has one column per level of f; (1 | g:h) has the factor g:h (observed levels)."""
    rng = np.random.default_rng(0)
    n = 120
    data = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "f": rng.choice(["a", "b", "c"], n),
            "g": rng.choice([f"g{i}" for i in range(5)], n),
            "h": rng.choice(["p", "q"], n),
        }
    )
    fit = fh.fit("y ~ x + (f | g) + (1 | g:h)", data, draws=20, chains=2, progressbar=False)
    rows = data.head(12)
    ours = fit.predict(rows, draws=True).values
    post = fit.idata["posterior"]
    gi = [list(post["1|g"].coords["g__factor_dim"].values).index(v) for v in rows["g"]]
    gh = [f"{a}:{b}" for a, b in zip(rows["g"], rows["h"], strict=True)]
    ghi = [list(post["1|g:h"].coords["g:h__factor_dim"].values).index(v) for v in gh]
    f_levels = list(post["f|g"].coords["f__expr_dim"].values)
    assert f_levels == ["b", "c"]  # reduced coding beside the group intercept, as in lme4
    fcols = np.stack([(rows["f"] == lv).to_numpy(float) for lv in f_levels], axis=1)
    by_hand = (
        post["Intercept"].values[..., None]
        + post["x"].values[..., None] * rows["x"].to_numpy()
        + post["1|g"].values[..., gi]
        + np.einsum(
            "cdnk,nk->cdn",
            post["f|g"]
            .transpose("chain", "draw", "g__factor_dim", "f__expr_dim")
            .values[:, :, gi, :],
            fcols,
        )
        + post["1|g:h"].values[..., ghi]
    )
    np.testing.assert_allclose(ours, by_hand, rtol=1e-10, atol=1e-10)
    # g:h has the observed combinations only (lme4's levels), not the 5 x 2 product
    observed = data.groupby(["g", "h"]).size()
    assert post.sizes["g:h__factor_dim"] == len(observed)
    new = rows.head(2).assign(g=["new", "new"])
    out = fit.predict(new, allow_new_levels=True, seed=1)
    assert out["estimate"].notna().all()


def test_float_level_labels_match_integer_levels():
    frame = pd.DataFrame({"g": [308.0, 309.0], "h": ["a", "b"]})
    assert list(predict_module.level_labels(frame, "g:h")) == ["308:a", "309:b"]
