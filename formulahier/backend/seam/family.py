"""Bambi's families and names as the later stages use them.

Aliases, Bambi's family names, the population-level linear predictor, link functions, the
families' log-likelihood and posterior predictive, Bambi's cleaning of draws, and the names a
formula may call (``log()``, ``scale()``...) as Bambi gives them to formulae.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from bambi.utils import get_aliased_name

__all__ = [
    "aliased_name",
    "bambi_family_names",
    "bambi_posterior",
    "family_log_likelihood",
    "family_posterior_predictive",
    "formula_namespace",
    "inverse_link",
    "link_function",
    "population_linpred",
]


def aliased_name(term) -> str:
    """The posterior name Bambi gives a term (its alias if it has one)."""
    return get_aliased_name(term)


def bambi_family_names() -> set[str]:
    """Names of Bambi's built-in families."""
    import bambi.defaults.families as bambi_families

    return set(getattr(bambi_families, "BUILTIN_FAMILIES", {}))


def population_linpred(bmb_model, posterior, frame: pd.DataFrame) -> np.ndarray:
    """Population-level linear predictor of the parent parameter, ``(draws, rows)``."""
    comp = bmb_model.parameters[bmb_model.family.likelihood.parent]
    n = len(frame)
    if not comp.design.common:
        return np.zeros((posterior.sizes["chain"] * posterior.sizes["draw"], n))
    common = comp.predict_common(
        posterior, frame, False, ("chain", "draw"), ("__obs__", "__variables__"), {}
    )
    return common.transpose("chain", "draw", "__obs__").to_numpy().reshape(-1, n)


def inverse_link(bmb_model):
    """The inverse link function of the parent parameter (numpy)."""
    return bmb_model.family.link[bmb_model.family.likelihood.parent].linkinv


def link_function(bmb_model):
    """Name and function (numpy, response -> link scale) of the parent parameter's link."""
    link = bmb_model.family.link[bmb_model.family.likelihood.parent]
    return link.name, link.link


@contextmanager
def _one_off_graphs() -> Iterator[None]:
    """Numba's note that a one-off graph cannot be cached, kept out of the output.

    Bambi evaluates these with ``pm.logp(...).eval()`` / ``pm.draw``: a one-off graph holding
    the draws as constants, which numba (PyTensor's default linker) compiles and then cannot
    cache on disk, saying so in a NumbaWarning. Nothing was meant to be cached.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Cannot cache compiled function")
        yield


def family_log_likelihood(bmb_model, posterior, frame: pd.DataFrame | None = None):
    """Pointwise log-likelihood given the parent parameter's values in ``posterior``.

    Of the model's own response, or of the rows of ``frame`` (their response and trials).
    """
    with _one_off_graphs():
        return bmb_model.family.log_likelihood(model=bmb_model, posterior=posterior, data=frame)


def family_posterior_predictive(bmb_model, posterior, rng, frame: pd.DataFrame):
    """Draws of new responses given the parent parameter's values in ``posterior``."""
    with _one_off_graphs():
        return bmb_model.family.posterior_predictive(
            model=bmb_model, posterior=posterior, random_seed=rng, data=frame
        )


def bambi_posterior(bmb_model, posterior):
    """Draws of the built PyMC model as Bambi's ``fit`` returns them.

    The intercept uncentered, offsets dropped, Bambi's dim order: what an approximation's
    draws need to read like a sampled fit's.
    """
    import xarray as xr

    idata = xr.DataTree()
    idata["posterior"] = posterior
    idata = bmb_model.backend._clean_results(idata, True, False)  # omit offsets, no mu
    return idata["posterior"].to_dataset()


def formula_namespace() -> dict:
    """The functions a formula may call (``log()``, ``scale()``...), as Bambi gives formulae."""
    from bambi.transformations import transformations_namespace

    return dict(transformations_namespace)
