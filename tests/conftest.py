"""Shared fixtures.

Most tests build models without MCMC. Tests marked ``slow`` sample for real; they share fitted
fixtures (session scope) because PyTensor compiles every new model graph once.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import formulahier as fh

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return fh.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def mock_sampling():
    """Replace pm.sample by prior draws (PyMC's own test helper) for one test module."""
    from pymc.testing import mock_sample_setup_and_teardown

    gen = mock_sample_setup_and_teardown()
    next(gen)
    yield
    next(gen, None)


@pytest.fixture(scope="session")
def sleep_fit(sleepstudy):
    """Real MCMC, brms settings (4 chains x 1000 after 1000 warm-up)."""
    return fh.fit(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        seed=1,
        progressbar=False,
        noncentered=False,
    )
