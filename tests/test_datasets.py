"""Bundled data sets and the simulated wage panel (no MCMC)."""

from __future__ import annotations

import numpy as np
import pytest

import formulahier as fh


@pytest.mark.parametrize(
    ("name", "rows", "columns"),
    [
        ("ozone", 17411, {"station", "log_ozone", "TEMP"}),
        ("sleepstudy", 180, {"Reaction", "Days", "Subject"}),
        ("radon", 919, {"log_radon", "floor", "county", "log_uranium"}),
        ("nwo_grants", 18, {"discipline", "gender", "applications", "awards"}),
        ("cbpp", 56, {"herd", "incidence", "size", "period"}),
    ],
)
def test_load_bundled(name, rows, columns):
    frame = fh.datasets.load(name)
    assert len(frame) == rows
    assert columns <= set(frame.columns)
    # a new frame every time: editing one never changes the next load
    frame.iloc[0, 0] = None
    assert fh.datasets.load(name).iloc[0, 0] is not None


def test_unknown_name_is_data_error():
    with pytest.raises(fh.DataError, match="choose one of"):
        fh.datasets.load("iris")


def test_wage_panel_shape_and_reproducibility():
    a = fh.datasets.simulate_wage_panel(seed=42)
    b = fh.datasets.simulate_wage_panel(seed=42)
    c = fh.datasets.simulate_wage_panel(seed=43)
    assert a.shape == (1000, 5)
    assert a.equals(b) and not a.equals(c)
    assert a.groupby("worker").size().eq(10).all()
    assert a.attrs["truth"] == {"mu_alpha": 2.5, "sigma_alpha": 0.3, "beta_exp": 0.02, "sigma": 0.2}
    # experience rises by one a year within a worker
    steps = a.groupby("worker")["experience"].diff().dropna()
    assert (steps == 1).all()


def test_wage_panel_recovers_truth_by_least_squares():
    """Within-worker OLS and the between-worker spread match the known parameters."""
    panel = fh.datasets.simulate_wage_panel(seed=42, n_workers=400, n_years=10)
    truth = panel.attrs["truth"]
    # within estimator: demean by worker, regress log_wage on experience
    demeaned = panel.groupby("worker")[["log_wage", "experience"]].transform(lambda s: s - s.mean())
    beta = (demeaned.log_wage * demeaned.experience).sum() / (demeaned.experience**2).sum()
    resid = demeaned.log_wage - beta * demeaned.experience
    sigma = np.sqrt((resid**2).sum() / (len(panel) - panel.worker.nunique() - 1))
    assert beta == pytest.approx(truth["beta_exp"], abs=0.005)
    assert sigma == pytest.approx(truth["sigma"], rel=0.05)
    # the simulated intercepts have the stated mean and sd (sampling error ~ 0.3 / sqrt(400))
    alpha = np.array(list(panel.attrs["alpha"].values()))
    assert alpha.mean() == pytest.approx(truth["mu_alpha"], abs=0.05)
    assert alpha.std(ddof=1) == pytest.approx(truth["sigma_alpha"], rel=0.12)
    # and the data are built from them: worker means minus beta * mean experience
    means = panel.groupby("worker")[["log_wage", "experience"]].mean()
    implied = means.log_wage - truth["beta_exp"] * means.experience
    assert np.corrcoef(implied, alpha)[0, 1] > 0.95


@pytest.mark.parametrize("kwargs", [{"n_workers": 1}, {"sigma": 0}, {"sigma_alpha": -1}])
def test_wage_panel_bad_arguments(kwargs):
    with pytest.raises(fh.DataError):
        fh.datasets.simulate_wage_panel(**kwargs)


def test_wage_panel_intercepts_do_not_depend_on_years():
    short = fh.datasets.simulate_wage_panel(seed=42, n_years=3)
    long = fh.datasets.simulate_wage_panel(seed=42, n_years=12)
    assert short.attrs["alpha"] == long.attrs["alpha"]
