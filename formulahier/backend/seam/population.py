"""What the backend reads from Bambi's built model: the population design and the priors.

The population-level part of the parent parameter (names, design, how Bambi centers it), the
normal priors of its terms, the sd priors of the group terms, and Bambi's default prior scale
of a group term's sd.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from bambi.backend.terms import CommonTerm
from bambi.backend.utils import get_distribution
from bambi.families.multivariate import MultivariateFamily
from bambi.families.univariate import Categorical
from bambi.priors import Prior
from bambi.utils import get_aliased_name

from ..collapsed_terms import PopulationSlot

__all__ = [
    "PopulationDesign",
    "default_group_sd",
    "has_response_dim",
    "population_design",
    "population_names",
    "population_priors",
    "sd_prior_dist",
]


class PopulationDesign(NamedTuple):
    """The population-level part of the parent parameter as Bambi builds it."""

    intercept: str | None  # posterior name of the intercept (None: no intercept)
    names: list[str]  # posterior names of the other terms, in column order
    X: np.ndarray  # (rows, columns) of those terms, uncentered
    xbar: np.ndarray | None  # the column means Bambi centers by (None: it does not center)


def population_names(component) -> list[str]:
    """Posterior names of a component's intercept and population terms, in Bambi's order."""
    names = [] if component.intercept_term is None else [get_aliased_name(component.intercept_term)]
    return names + [get_aliased_name(t) for t in component.common_terms.values()]


def population_design(bmb_model) -> PopulationDesign:
    """Bambi's population design of the parent parameter, and how it centers it.

    Bambi samples the intercept of predictors centered at ``xbar`` and reports the intercept of
    the uncentered ones (``Intercept - xbar . b``) in the posterior.
    """
    comp = bmb_model.parameters[bmb_model.family.likelihood.parent]
    n = len(np.asarray(bmb_model.response_term.data))
    cols = [np.asarray(t.data, dtype=float).reshape(n, -1) for t in comp.common_terms.values()]
    X = np.column_stack(cols) if cols else np.zeros((n, 0))
    intercept = None if comp.intercept_term is None else get_aliased_name(comp.intercept_term)
    centered = intercept is not None and cols and bmb_model.center_predictors
    names = [get_aliased_name(t) for t in comp.common_terms.values()]
    return PopulationDesign(intercept, names, X, X.mean(0) if centered else None)


def population_priors(bmb_model) -> tuple[list[PopulationSlot], np.ndarray, np.ndarray] | None:
    """The parent's population terms (in column order) and their normal priors' means and sds.

    None unless every prior is ``Normal`` with numeric arguments (what integrating the
    population effects out needs).
    """
    comp = bmb_model.parameters[bmb_model.family.likelihood.parent]
    terms = [] if comp.intercept_term is None else [comp.intercept_term]
    terms += list(comp.common_terms.values())
    slots: list[Any] = []
    means: list[Any] = []
    sds: list[Any] = []
    for k, term in enumerate(terms):
        prior = term.prior
        if not (isinstance(prior, Prior) and prior.name == "Normal" and prior.dist is None):
            return None
        if set(prior.args) != {"mu", "sigma"} or any(
            isinstance(v, Prior) for v in prior.args.values()
        ):
            return None
        if k == 0 and comp.intercept_term is not None:
            slot = PopulationSlot(get_aliased_name(term), 1, None)
        else:
            coords = CommonTerm(term).coords
            width = int(np.prod(np.shape(term.data)[1:], dtype=int))
            slot = PopulationSlot(get_aliased_name(term), width, tuple(coords) or None)
        slots.append(slot)
        for value, out in ((prior.args["mu"], means), (prior.args["sigma"], sds)):
            out.append(np.broadcast_to(np.asarray(value, dtype=float).ravel(), (slot.width,)))
    if not slots:
        return None
    return slots, np.concatenate(means), np.concatenate(sds)


_POSITIVE = {"HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma", "InverseGamma",
             "LogNormal", "Weibull"}  # fmt: skip


def sd_prior_dist(term):
    """The PyMC distribution of a one-column group term's sd prior, else None.

    Only priors with support (0, inf) and numeric arguments: what the whitened covariance of
    the collapsed construction needs.
    """
    prior = term.prior
    if not (isinstance(prior, Prior) and prior.name == "Normal") or term.width != 1:
        return None
    sd = prior.args.get("sigma")
    if not isinstance(sd, Prior) or sd.dist is not None or sd.name not in _POSITIVE:
        return None
    if any(isinstance(v, Prior) for v in sd.args.values()):
        return None
    return get_distribution(sd.name).dist(**sd.args)


def has_response_dim(bmb_model) -> bool:
    """Whether the family's linear predictor has a response dim (categorical, multinomial)."""
    return isinstance(bmb_model.family, (MultivariateFamily, Categorical))


def default_group_sd(bmb_model, intercept: bool, cols: np.ndarray):
    """Scale of Bambi's default ``HalfNormal`` prior on a group-level term's sd.

    Bambi's own rule (its ``PriorScaler``): the intercept's prior scale, or 2.5 sd(y) / sd(x)
    per column of a slope (1 where Bambi does not scale priors).
    """
    scaler = getattr(bmb_model, "scaler", None)
    if scaler is None:
        sigma = np.ones(cols.shape[1])
    elif intercept:
        sigma = scaler.get_intercept_stats()[1]
    else:
        sigma = np.array([scaler.get_slope_sigma(c) for c in cols.T])
    sigma = np.squeeze(np.atleast_1d(np.asarray(sigma, dtype=float)))
    return float(sigma) if sigma.ndim == 0 else sigma

