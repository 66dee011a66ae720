"""Behaviour behind the speed work: the ``noncentered="auto"`` rule and nutpie with a block.

No timings are tested here; the benchmark runner (``python -m benchmarks``) measures those.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support import simulate_correlated

import formulahier as fh
from formulahier.errors import FormulaError
from formulahier.parameterization import _anova_ratio, choose_noncentered, resolve_auto


def simulate_intercepts(groups: int, per_group: int, tau: float, sigma: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    y = 1 + 0.3 * x + rng.normal(scale=tau, size=groups)[g] + rng.normal(scale=sigma, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


def test_anova_ratio_matches_hand_computation():
    # two levels of two rows: means 1 and 5, within SS = 2 + 2 = 4 on 4 - 2 df -> sigma^2 = 2;
    # between mean square = 2 * ((1-3)^2 + (5-3)^2) / 1 = 16; n0 = 2; tau^2 = (16 - 2) / 2 = 7
    y = np.array([0.0, 2.0, 4.0, 6.0])
    codes = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(_anova_ratio(y, codes), [2 * 7 / 2, 2 * 7 / 2])


def test_anova_ratio_recovers_simulated_truth():
    df = simulate_intercepts(groups=400, per_group=20, tau=0.5, sigma=1.0, seed=3)
    codes = pd.factorize(df["g"])[0]
    # truth: 20 * 0.25 / 1 = 5 (the x effect adds 0.09 to sigma^2: about 4.6)
    ratio = _anova_ratio(df["y"].to_numpy(), codes)
    assert 4.0 < ratio[0] < 5.6


def test_auto_centers_many_informative_observations():
    df = simulate_intercepts(groups=12, per_group=300, tau=0.5, sigma=1.0)
    choice = choose_noncentered(fh.build_spec("y ~ x + (1 | g)"), df)["g"]
    assert choice.noncentered is False
    assert choice.ratio > 1 and choice.levels == 12


def test_auto_noncenters_sparse_groups():
    df = simulate_intercepts(groups=80, per_group=3, tau=0.3, sigma=1.0)
    choice = choose_noncentered(fh.build_spec("y ~ x + (1 | g)"), df)["g"]
    assert choice.noncentered is True
    assert choice.ratio < 1


def test_auto_weak_levels_decide():
    # most levels large, but 20% have two rows: a funnel for those -> non-centered
    big = simulate_intercepts(groups=40, per_group=200, tau=0.5, sigma=1.0, seed=1)
    small = simulate_intercepts(groups=10, per_group=2, tau=0.5, sigma=1.0, seed=2)
    small["g"] = "s" + small["g"]
    df = pd.concat([big, small], ignore_index=True)
    assert choose_noncentered(fh.build_spec("y ~ (1 | g)"), df)["g"].noncentered is True


def test_auto_on_the_benchmark_datasets():
    sleep = fh.model(
        "Reaction ~ Days + (Days | Subject)", fh.datasets.load("sleepstudy"), collapse=False
    )
    assert sleep.spec.blocks[0].noncentered is False
    assert sleep.parameterization["Subject"].noncentered is False
    ozone = fh.datasets.load("ozone")
    spec = fh.build_spec("log_ozone ~ TEMP + (TEMP | station)")
    assert choose_noncentered(spec, ozone)["station"].noncentered is False
    radon = fh.model(
        "log_radon ~ floor + (floor | county)", fh.datasets.load("radon"), collapse=False
    )
    assert radon.spec.blocks[0].noncentered is True
    # the built graphs follow the choice
    assert "Subject__block0_beta_offset" in sleep.pymc_model.named_vars
    assert "county__block0_z_offset" in radon.pymc_model.named_vars


def test_non_gaussian_falls_back_on_rows_per_level():
    cbpp = fh.datasets.load("cbpp")
    spec = fh.build_spec("p(incidence, size) ~ period + (1 | herd)", family="binomial")
    choice = choose_noncentered(spec, cbpp)["herd"]
    assert choice.noncentered is True and choice.ratio is None
    # many rows per level: centered
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.integers(0, 2, 2400), "g": np.repeat(list("abcdef"), 400)})
    spec = fh.build_spec("y ~ 1 + (1 | g)", family="bernoulli")
    assert choose_noncentered(spec, df)["g"].noncentered is False


def test_auto_per_factor_and_explicit_values_win():
    df = simulate_intercepts(groups=12, per_group=300, tau=0.5, sigma=1.0)
    df["h"] = np.tile(["h1", "h2", "h3"], len(df) // 3)
    spec = fh.build_spec("y ~ x + (1 | g) + (0 + x | h)", noncentered={"g": "auto", "h": True})
    resolved, choices = resolve_auto(spec, df)
    assert [b.noncentered for b in resolved.blocks] == [False, True]
    assert set(choices) == {"g"}
    explicit, none = resolve_auto(fh.build_spec("y ~ (1 | g)", noncentered=True), df)
    assert explicit.blocks[0].noncentered is True and none == {}


def test_auto_noncenters_crossed_and_nested_intercepts():
    # both factors well informed (r_j ~ 5), but they share the one population intercept
    df = simulate_intercepts(groups=12, per_group=300, tau=0.5, sigma=1.0)
    df["h"] = np.tile([f"h{i}" for i in range(10)], len(df) // 10)
    choices = choose_noncentered(fh.build_spec("y ~ x + (1 | g) + (1 | h)"), df)
    assert choices["g"].noncentered is True and "crossed" in choices["g"].rule
    nested = choose_noncentered(fh.build_spec("y ~ x + (1 | g/h)"), df)
    assert all(c.noncentered for c in nested.values())
    # alone, g is centered
    assert choose_noncentered(fh.build_spec("y ~ x + (1 | g)"), df)["g"].noncentered is False


def test_auto_does_not_touch_the_users_data():
    df = simulate_intercepts(groups=10, per_group=5, tau=0.5, sigma=1.0)
    before = df.copy()
    fh.model("y ~ x + (1 | g)", df)
    pd.testing.assert_frame_equal(df, before)


def test_bad_noncentered_value():
    with pytest.raises(FormulaError, match="auto"):
        fh.build_spec("y ~ (1 | g)", noncentered="sometimes")


@pytest.mark.slow
def test_nutpie_samples_a_correlated_block():
    pytest.importorskip("nutpie")
    df = simulate_correlated(seed=4, groups=30, per_group=40, rho=-0.7)
    fit = fh.fit(
        "y ~ x + (x | g)",
        df,
        sampler="nutpie",
        draws=300,
        tune=300,
        chains=2,
        seed=2,
        progressbar=False,
    )
    post = fit.idata["posterior"]
    assert fit.settings["sampler"] == "nutpie"
    corr = post["g_corr"].values
    assert corr.shape[:2] == (2, 300)
    np.testing.assert_allclose(corr[..., 0, 0], 1.0, atol=1e-8)
    # simulated truth: corr -0.7, sd(Intercept) 1, sd(x) 0.5
    assert -0.95 < corr[..., 0, 1].mean() < -0.35
    assert 0.6 < post["1|g_sigma"].values.mean() < 1.5
    assert 0.3 < post["x|g_sigma"].values.mean() < 0.75
    vc = fit.varcorr()
    cor = vc[(vc["group"] == "g") & vc["var2"].notna()]
    assert len(cor) == 1 and cor["estimate"].iloc[0] < 0


def test_group_terms_come_from_codes_and_predict_works(mock_sampling):
    rng = np.random.default_rng(5)
    n = 600
    df = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "a": [f"a{i}" for i in rng.integers(40, size=n)],
            "b": [f"b{i}" for i in rng.integers(15, size=n)],
        }
    )
    fit = fh.fit("y ~ x + (1 | a) + (x | b)", df, draws=20, tune=10, chains=2, progressbar=False)
    # Bambi never sees the bar terms: no formulae indicator matrix exists
    assert not fit.model.distributional_components["mu"].group_specific_terms
    for info in fit.fh_model.blocks:
        assert info.data.codes.shape == (n,) and info.data.codes.dtype == np.int32
        assert info.data.X.shape == (n, info.size)
    # predictions on new rows evaluate the factors from the new data
    new = df.iloc[:7]
    mu = fit.predict(new, kind="mean", draws=True).values
    assert mu.shape[-1] == 7 and np.isfinite(mu).all()
    # and agree with the linear predictor computed by hand from the draws
    post = fit.idata["posterior"]
    a_idx = [list(post["1|a"].coords[post["1|a"].dims[-1]].values).index(v) for v in new["a"]]
    b_dim = post["1|b"].dims[-1]
    b_idx = [list(post["1|b"].coords[b_dim].values).index(v) for v in new["b"]]
    by_hand = (
        post["Intercept"].values[..., None]
        + post["x"].values[..., None] * new["x"].to_numpy()
        + post["1|a"].values[..., a_idx]
        + post["1|b"].values[..., b_idx]
        + post["x|b"].values[..., b_idx] * new["x"].to_numpy()
    )
    np.testing.assert_allclose(mu, by_hand, rtol=1e-6, atol=1e-8)
