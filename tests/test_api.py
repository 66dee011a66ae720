"""Real MCMC: recovery of a known correlation, agreement with brms, reproducibility.

Tolerances against brms are in units of brms's posterior sd (``Est.Error``). Both posterior means
carry Monte Carlo error of about sd/sqrt(ESS) ~ 0.03 sd; our default priors differ from brms's
(LKJ(2) vs LKJ(1), Bambi's half-normal sds vs half-t, Bambi's weak normal on b vs flat), which
with 18 subjects moves posterior means by well under 0.2 sd. We allow 0.35 sd: a wrong model
(an independent intercept and slope, a centered/uncentered intercept mix-up, a missing
correlation) misses by more than that, and posterior sds must agree within 25%.
"""

from __future__ import annotations

import numpy as np
import pytest
from _support import load_reference, simulate_correlated

import formulahier as fh
from formulahier import SamplerError

pytestmark = pytest.mark.slow
TOL_SD = 0.35


def brms_rows(ref):
    rows = {r["param"]: r for r in ref["brms_fixed"]}
    for table in ref["brms_random"].values():
        rows.update({r["param"]: r for r in table})
    rows.update({r["param"]: r for r in ref["brms_spec"]})
    return rows


def ours(fit):
    summary = fit.summary()
    tables = [summary.population, *summary.group.values(), summary.family]
    out = {}
    for table in tables:
        out.update(table[["estimate", "std_error", "r_hat"]].to_dict("index"))
    return out


@pytest.mark.parametrize("construction", ["centered", "noncentered", "collapsed"])
def test_sleepstudy_agrees_with_brms(sleepstudy, sleep_fit, construction):
    if construction == "centered":
        fit = sleep_fit
    else:
        fit = fh.fit(
            "Reaction ~ Days + (Days | Subject)",
            sleepstudy,
            seed=2,
            progressbar=False,
            noncentered=True,  # the default is "auto", which centers sleepstudy
            collapse=construction == "collapsed",  # the default "auto" collapses sleepstudy
        )
    assert fit.settings["construction"] == ("collapsed" if construction == "collapsed" else "full")
    ref = brms_rows(load_reference("sleepstudy"))
    got = ours(fit)
    assert set(ref) == set(got)
    for name, row in ref.items():
        est, err = row["Estimate"], row["Est.Error"]
        assert abs(got[name]["estimate"] - est) < TOL_SD * err, (name, got[name], row)
        assert 0.75 < got[name]["std_error"] / err < 1.25, (name, got[name], row)
        assert got[name]["r_hat"] < 1.01


def test_sleepstudy_printout_has_correlation(sleep_fit):
    text = str(sleep_fit)
    assert "cor(Intercept,Days)" in text
    ndiv = int(sleep_fit.idata["sample_stats"]["diverging"].sum())
    assert (f"{ndiv} divergent transitions" in text) if ndiv else ("No divergences" in text)


def test_uncorrelated_has_no_correlation(sleepstudy):
    fit = fh.fit(
        "Reaction ~ Days + (Days || Subject)",
        sleepstudy,
        draws=300,
        tune=300,
        chains=2,
        seed=4,
        progressbar=False,
    )
    assert not [v for v in fit.idata["posterior"].data_vars if "corr" in v]
    group = fit.summary().group["Subject"]
    assert list(group.index) == ["sd(Intercept)", "sd(Days)"]
    assert fit.varcorr()["var2"].isna().all()
    ref = brms_rows(load_reference("sleepstudy_uncorr"))
    for name in ["sd(Intercept)", "sd(Days)", "Intercept", "Days"]:
        # fewer draws here: allow 0.5 brms sd
        assert abs(
            group.loc[name, "estimate"]
            if name.startswith("sd")
            else fit.fixef().loc[name, "estimate"]
        ) == pytest.approx(ref[name]["Estimate"], abs=0.5 * ref[name]["Est.Error"])


@pytest.fixture(scope="module")
def recovery_data():
    return simulate_correlated(seed=11, groups=30, per_group=40, rho=-0.7)


@pytest.mark.parametrize(("noncentered", "collapse"), [(True, False), (False, False), (True, True)])
def test_recovers_known_correlation(recovery_data, noncentered, collapse):
    fit = fh.fit(
        "y ~ x + (x | g)",
        recovery_data,
        noncentered=noncentered,
        collapse=collapse,
        seed=5,
        progressbar=False,
        draws=500,
        tune=500,
    )
    vc = fit.varcorr(ci_prob=0.9)
    cor = vc[vc["var2"].notna()].iloc[0]
    assert cor["estimate"] == pytest.approx(-0.7, abs=0.15)
    assert cor["lower"] < -0.7 < cor["upper"]
    fe = fit.fixef(ci_prob=0.9)
    assert fe.loc["Intercept", "lower"] < 1 < fe.loc["Intercept", "upper"]
    assert fe.loc["x", "lower"] < 0.5 < fe.loc["x", "upper"]


def test_same_seed_same_draws(recovery_data):
    kw = dict(draws=50, tune=50, chains=2, progressbar=False)
    a = fh.fit("y ~ x + (x | g)", recovery_data, seed=9, **kw)
    b = fh.fit("y ~ x + (x | g)", recovery_data, seed=9, **kw)
    c = fh.fit("y ~ x + (x | g)", recovery_data, seed=10, **kw)
    np.testing.assert_array_equal(
        a.idata["posterior"]["g_corr"].values, b.idata["posterior"]["g_corr"].values
    )
    assert not np.array_equal(
        a.idata["posterior"]["g_corr"].values, c.idata["posterior"]["g_corr"].values
    )


def test_unknown_sampler(recovery_data):
    with pytest.raises(SamplerError, match="Unknown sampler"):
        fh.fit("y ~ x + (x | g)", recovery_data, sampler="stan")


def test_missing_sampler_extra(recovery_data, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "numpyro" else real(name, *a)
    )
    with pytest.raises(SamplerError, match=r"formulahier\[jax\]"):
        fh.fit("y ~ x + (x | g)", recovery_data, sampler="numpyro")
