"""Data sets shipped with formulahier (nothing is downloaded).

=============  ======  ==========================================================================
name           rows    what, source and licence
=============  ======  ==========================================================================
``ozone``      17,411  Daily maximum ozone (``O3``, µg/m³), ``log_ozone`` and daily maximum
                       temperature (``TEMP``, °C) at 12 Beijing stations, 2013-03-01 to
                       2017-02-28. Beijing Multi-Site Air-Quality Data (Zhang et al. 2017,
                       Proc. R. Soc. A 473: 20170457), UCI Machine Learning Repository,
                       CC BY 4.0; aggregated from the hourly files (max per station and day,
                       rows with missing or non-positive O3 dropped).
``sleepstudy`` 180     Reaction time (ms) of 18 subjects over 10 days of sleep deprivation.
                       Belenky et al. (2003), J. Sleep Research 12:1-12; as distributed with
                       lme4 (GPL >= 2).
``radon``      919     Log radon in Minnesota homes: ``floor`` (0 basement, 1 first floor),
                       ``county`` (85), county ``log_uranium``. Gelman & Hill (2007); as
                       distributed with rstanarm (GPL >= 3).
``nwo_grants`` 18      Applications and awards of Dutch NWO grants by discipline and gender.
                       van der Lee & Ellemers (2015), PNAS 112:12349; as distributed with
                       rethinking.
``cbpp``       56      Contagious bovine pleuropneumonia: new cases (``incidence``) of herd
                       ``size``, 15 herds, 4 periods. Lesnoff et al. (2004); as distributed
                       with lme4 (GPL >= 2).
=============  ======  ==========================================================================

:func:`simulate_wage_panel` makes a synthetic workers x years panel with known parameters, for
checking that a model recovers the truth.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["WAGE_PANEL_TRUTH", "list_datasets", "load", "simulate_wage_panel"]

_FILES = {
    "ozone": "beijing_ozone_daily.csv",
    "sleepstudy": "sleepstudy.csv",
    "radon": "radon.csv",
    "nwo_grants": "nwo_grants.csv",
    "cbpp": "cbpp.csv",
}
# Columns that are labels, not numbers (as R reads them into factors).
_FACTORS = {
    "sleepstudy": ["Subject"],
    "cbpp": ["herd", "period"],
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_FILES)


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a new pandas DataFrame.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`: ``"ozone"``, ``"sleepstudy"``, ``"radon"``,
        ``"nwo_grants"``, ``"cbpp"``.

    Returns
    -------
    pandas.DataFrame
        Label columns (``Subject``, ``herd``, ``period``) are strings, as R's factors.

    Raises
    ------
    DataError
        If ``name`` is not a bundled data set.

    """
    if name not in _FILES:
        raise DataError(f"Unknown data set {name!r}; choose one of {list_datasets()}.")
    path = resources.files(__package__).joinpath("data", _FILES[name])
    with resources.as_file(path) as file:
        frame = pd.read_csv(file)
    for col in _FACTORS.get(name, []):
        frame[col] = frame[col].astype(str)
    frame.attrs["name"] = name  # the summary's "Data: ozone (Number of observations: ...)"
    return frame


#: The parameters :func:`simulate_wage_panel` simulates with (its defaults).
WAGE_PANEL_TRUTH = {"mu_alpha": 2.5, "sigma_alpha": 0.3, "beta_exp": 0.02, "sigma": 0.2}


def simulate_wage_panel(
    seed: int = 42,
    n_workers: int = 100,
    n_years: int = 10,
    *,
    mu_alpha: float = WAGE_PANEL_TRUTH["mu_alpha"],
    sigma_alpha: float = WAGE_PANEL_TRUTH["sigma_alpha"],
    beta_exp: float = WAGE_PANEL_TRUTH["beta_exp"],
    sigma: float = WAGE_PANEL_TRUTH["sigma"],
) -> pd.DataFrame:
    """Simulate a balanced panel of log wages: workers observed over several years.

    Worker ``i`` in year ``t`` (``t = 0, ..., n_years - 1``) has ``experience`` = its experience
    at the start plus ``t``, and

    ``log_wage = alpha_i + beta_exp * experience + e``, with
    ``alpha_i ~ Normal(mu_alpha, sigma_alpha)`` and ``e ~ Normal(0, sigma)``.

    Starting experience is a whole number of years drawn uniformly from 0 to 20. Intercepts,
    starting experience and noise come from independent streams spawned from ``seed``, so the
    intercepts depend only on ``seed`` and ``n_workers``. The model
    ``log_wage ~ experience + (1 | worker)`` is the true one and should recover the parameters.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the same seed gives the same panel.
    n_workers, n_years : int
        Size of the panel (``n_workers * n_years`` rows).
    mu_alpha, sigma_alpha : float
        Mean and sd of the worker intercepts (defaults 2.5 and 0.3).
    beta_exp : float
        Effect of one year of experience on the log wage (default 0.02).
    sigma : float
        Residual sd (default 0.2).

    Returns
    -------
    pandas.DataFrame
        Columns ``worker`` (labels ``"w001"``, ...), ``year`` (0-based), ``experience``,
        ``log_wage`` and ``wage``; one row per worker and year. The true parameters are in
        ``frame.attrs["truth"]`` and the simulated intercepts in ``frame.attrs["alpha"]``.

    Examples
    --------
    >>> import formulahier as fh
    >>> panel = fh.datasets.simulate_wage_panel(seed=42)
    >>> panel.shape
    (1000, 5)
    >>> panel.attrs["truth"]["beta_exp"]
    0.02

    """
    if n_workers < 2 or n_years < 1:
        raise DataError("simulate_wage_panel needs n_workers >= 2 and n_years >= 1.")
    if sigma_alpha < 0 or sigma <= 0:
        raise DataError("sigma_alpha must be >= 0 and sigma > 0.")
    # one independent stream per component: the intercepts do not change with n_years
    alpha_rng, start_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    alpha = alpha_rng.normal(mu_alpha, sigma_alpha, size=n_workers)
    start = start_rng.integers(0, 21, size=n_workers)
    worker = np.repeat(np.arange(n_workers), n_years)
    year = np.tile(np.arange(n_years), n_workers)
    experience = start[worker] + year
    log_wage = alpha[worker] + beta_exp * experience + noise_rng.normal(0.0, sigma, worker.size)
    width = len(str(n_workers))
    labels = np.array([f"w{k + 1:0{width}d}" for k in range(n_workers)])
    frame = pd.DataFrame(
        {
            "worker": labels[worker],
            "year": year,
            "experience": experience,
            "log_wage": log_wage,
            "wage": np.exp(log_wage),
        }
    )
    frame.attrs["truth"] = {
        "mu_alpha": mu_alpha,
        "sigma_alpha": sigma_alpha,
        "beta_exp": beta_exp,
        "sigma": sigma,
    }
    frame.attrs["alpha"] = dict(zip(labels.tolist(), alpha.tolist(), strict=True))
    return frame
