"""PSIS-LOO and model comparison. The ranking test samples for real (slow, small)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import formulahier as fh
from formulahier import comparison as compare_module
from tests._support import simulate_correlated


def test_compare_needs_two_fits():
    with pytest.raises(fh.FormulahierError, match="at least two"):
        fh.compare({"one": object()})
    with pytest.raises(fh.FormulahierError, match="different numbers of observations"):
        fh.compare({"a": SimpleNamespace(nobs=10), "b": SimpleNamespace(nobs=12)})


def test_high_pareto_k_warns_with_advice():
    result = SimpleNamespace(pareto_k=np.array([0.1, 0.9, 1.2]), good_k=0.7)
    with pytest.warns(fh.FormulahierWarning, match=r"2 of 3 observations.*moment") as rec:
        compare_module._warn_k(result, "m")
    assert "K-fold" in str(rec[0].message) and "reloo" in str(rec[0].message)
    assert rec[0].filename == __file__  # attributed to the caller outside the package
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_module._warn_k(SimpleNamespace(pareto_k=np.array([0.1]), good_k=0.7), "m")


@pytest.fixture(scope="module")
def sim_fits():
    """y depends strongly on x with slopes varying by group: the slopes model must win."""
    data = simulate_correlated(seed=2, groups=12, per_group=15)
    opts = {"draws": 200, "tune": 300, "chains": 2, "seed": 5, "progressbar": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        simple = fh.fit("y ~ 1 + (1 | g)", data, **opts)
        slopes = simple.update(". ~ . + x - (1 | g) + (x | g)")
    return data, simple, slopes


@pytest.mark.slow
def test_compare_ranks_the_true_model_first(sim_fits):
    data, simple, slopes = sim_fits
    assert slopes.spec.formula == "y ~ 1 + x + (x | g)"
    assert slopes.settings["draws"] == 200 and slopes.settings["seed"] == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fh.FormulahierWarning)
        table = fh.compare({"simple": simple, "slopes": slopes})
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["slopes", "simple"]
    assert table.loc["simple", "elpd_diff"] < -5 * table.loc["simple", "dse"]
    # the columns docs/predictions.md documents (ArviZ 1.x), and no 1e-16 weights
    documented = ["rank", "elpd_diff", "dse", "p_worse", "diag_diff", "diag_elpd", "p", "elpd"]
    assert list(table.columns) == [*documented, "se", "weight"]
    assert ((table["weight"] == 0) | (table["weight"] > 1e-9)).all()


@pytest.mark.slow
def test_loo_matches_hand_computed_lppd(sim_fits):
    """elpd_loo <= lppd, and lppd from the stored log-likelihood matches a hand computation."""
    data, _, slopes = sim_fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fh.FormulahierWarning)
        res = slopes.loo()
    post = slopes.idata["posterior"]
    mu = slopes.predict(kind="mean", draws=True).values.reshape(-1, len(data))
    sigma = post["sigma"].values.reshape(-1, 1)
    y = data["y"].to_numpy()
    ll = -0.5 * np.log(2 * np.pi * sigma**2) - 0.5 * ((y - mu) / sigma) ** 2
    lppd = np.log(np.exp(ll).mean(axis=0)).sum()
    stored = slopes.idata["log_likelihood"]["y"].values.reshape(-1, len(data))
    np.testing.assert_allclose(stored, ll, rtol=1e-6)
    assert res.elpd < lppd and lppd - res.elpd == pytest.approx(res.p, rel=0.2)
    assert res.pareto_k.shape[-1] == len(data)


def test_log_likelihood_too_big_for_memory_says_which_thin(monkeypatch):
    monkeypatch.setattr(compare_module, "_memory_budget", lambda: 9 * 8 * 1000 * 500)
    compare_module.check_log_likelihood_memory(1000, 500)  # exactly the budget: fine
    with pytest.raises(fh.MemoryLimitError, match=r"thin=2 to keep one posterior draw in 2"):
        compare_module.check_log_likelihood_memory(2000, 500)
    compare_module.check_log_likelihood_memory(2000, 500, thin=2)
    assert issubclass(fh.MemoryLimitError, MemoryError)


@pytest.mark.slow
def test_thinned_loo_is_close_to_full_loo(sim_fits):
    _, _, slopes = sim_fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fh.FormulahierWarning)
        full = slopes.loo()
        thin = slopes.loo(thin=2)
    assert "log_likelihood_thin2" in slopes.idata.children
    assert thin.elpd == pytest.approx(full.elpd, abs=2 * full.se / 10 + 1.0)
    with pytest.raises(fh.FormulahierError, match="thin must be"):
        slopes.loo(thin=0)
