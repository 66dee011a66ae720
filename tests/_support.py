"""Helpers shared by tests: reference fits and simulated data."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# lme4/brms reference fits, kept in the repository (provenance: tests/data/README.md)
REFERENCE = Path(__file__).resolve().parent / "data" / "reference"


def load_reference(name: str) -> dict:
    path = REFERENCE / f"{name}.json"
    if not path.exists():  # a comparison with brms never skips: the file belongs to the repo
        pytest.fail(f"reference file {path} is missing (see tests/data/README.md)")
    return json.loads(path.read_text())


def simulate_correlated(seed: int = 0, groups: int = 30, per_group: int = 40, rho: float = -0.7):
    """y = (1 + a_j) + (0.5 + b_j) x + e with corr(a, b) = rho, sd(a) = 1, sd(b) = 0.5."""
    rng = np.random.default_rng(seed)
    sds = np.array([1.0, 0.5])
    cov = np.diag(sds) @ np.array([[1, rho], [rho, 1]]) @ np.diag(sds)
    effects = rng.multivariate_normal([0, 0], cov, size=groups)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=groups * per_group)
    y = 1 + effects[g, 0] + (0.5 + effects[g, 1]) * x + rng.normal(scale=0.5, size=x.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k + 1}" for k in g]})


@contextmanager
def mocked_sampling():
    """Replace pm.sample by prior draws (PyMC's own test helper) inside the block only."""
    from pymc.testing import mock_sample_setup_and_teardown

    from formulahier import samplers

    gen = mock_sample_setup_and_teardown()
    next(gen)
    route, samplers.NUTPIE_ROUTE = samplers.NUTPIE_ROUTE, "compiled"  # nutpie via pm.sample too
    try:
        yield
    finally:
        samplers.NUTPIE_ROUTE = route
        next(gen, None)


#: the fewest effective draws :func:`assert_same_posterior` credits a run with
MIN_ESS = 100


def assert_same_posterior(a, b, tol_sd: float = 0.25, se_ratio: tuple[float, float] | None = None):
    """Two fits of one model give the same posterior, within each run's Monte Carlo error.

    Every row of the summary (population effects, group sds and correlations, family
    parameters): the estimates differ by less than ``tol_sd`` posterior sds plus four standard
    errors of the difference of two Monte Carlo means (``sd * sqrt(1/ess_a + 1/ess_b)``, bulk
    ESS, each counted as at least 100), so a run whose chains mixed poorly (its summary warns) is
    judged by what its draws can tell, not by a seed's luck, and the bound never exceeds
    ``tol_sd + 0.57`` sds. ``se_ratio``: bounds on b's posterior sd over a's.
    """
    sa, sb = a.summary(), b.summary()
    tables = [(sa.population, sb.population), (sa.family, sb.family)]
    tables += [(sa.group[f], sb.group[f]) for f in sa.group]
    for ta, tb in tables:
        tb = tb.loc[ta.index]
        sd = ta["std_error"].to_numpy()
        ess_a, ess_b = (np.maximum(t["ess_bulk"].to_numpy(), MIN_ESS) for t in (ta, tb))
        mcse = sd * np.sqrt(1 / ess_a + 1 / ess_b)
        diff = np.abs(ta["estimate"].to_numpy() - tb["estimate"].to_numpy())
        assert np.all(diff < tol_sd * sd + 4 * mcse), (ta, tb)
        if se_ratio is not None:
            ratio = tb["std_error"].to_numpy() / sd
            assert np.all((ratio > se_ratio[0]) & (ratio < se_ratio[1])), (ta, tb)
