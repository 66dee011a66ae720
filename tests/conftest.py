"""Shared fixtures.

Most tests build models without MCMC. Tests marked ``slow`` sample for real; they share fitted
fixtures (session scope) because PyTensor compiles every new model graph once.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from _support import mocked_sampling

import formulahier as fh

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return fh.datasets.load("sleepstudy")


@pytest.fixture
def mock_sampling():
    """Mock sampling for one test. Module-scoped fitted fixtures use ``mocked_sampling()``
    inside their body instead, so that the mock never outlives what needs it."""
    with mocked_sampling():
        yield


@pytest.fixture(scope="session")
def sleep_fit(sleepstudy):
    """Real MCMC, brms settings (4 chains x 1000 after 1000 warm-up)."""
    return fh.fit(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        seed=1,
        progressbar=False,
        noncentered=False,
        collapse=False,  # the full centered construction (tests/test_collapsed.py: the other)
    )


@pytest.fixture(scope="session")
def small_fit(sleepstudy):
    """Real MCMC, small (2 chains x 200 draws after 200 warm-up, about 10 s): for the verbs and
    conditional effects, whose values are checked by arithmetic on the draws."""
    return fh.fit(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        chains=2,
        draws=200,
        tune=200,
        seed=1,
        progressbar=False,
    )


@pytest.fixture(scope="module")
def mfit_draws() -> int:
    """Draws per chain of ``mfit``; a test module overrides it where its assertions say so."""
    return 40


@pytest.fixture(scope="module")
def mfit(sleepstudy, mfit_draws):
    """The sleepstudy model with prior draws in place of MCMC (2 chains x ``mfit_draws``):
    values are checked by arithmetic on whatever draws there are."""
    with mocked_sampling():
        return fh.fit(
            "Reaction ~ Days + (Days | Subject)",
            sleepstudy,
            draws=mfit_draws,
            chains=2,
            seed=3,
            progressbar=False,
        )


@pytest.fixture(scope="module")
def draws(small_fit):
    """``small_fit``'s draws as brms's ``as_draws_df`` gives them (one row per draw)."""
    return small_fit.as_draws_df()
