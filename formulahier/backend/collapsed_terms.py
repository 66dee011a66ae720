"""PyMC variables of the collapsed construction (:mod:`formulahier.collapsed`'s algebra).

:mod:`formulahier.backend.seam` calls these with what it reads from Bambi (names, dims and
priors); nothing here knows Bambi. Variables ending in ``_offset`` are what the sampler sees
and are dropped from the posterior (as Bambi drops its own offsets); what the posterior keeps
has Bambi's names and dims, as in the full construction.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..collapsed import Integrated, Precision, lkj_logp, population_effects, whitened_covariance

__all__ = ["PopulationSlot", "add_population", "add_whitened_block"]


class PopulationSlot(NamedTuple):
    """One population-level term as the posterior stores it."""

    name: str
    width: int
    dims: tuple[str, ...] | None  # None: a scalar


def add_whitened_block(
    model, name: str, sd_names: list[str], sd_dists: list[Any], corr: str,
    corr_dims: tuple[str, str], R: np.ndarray, eta: float, scale: float,
) -> Precision:  # fmt: skip
    """A correlated block's covariance, sampled in its whitened basis; returns its precision.

    The sampler sees ``{name}_chol_offset`` (log-diagonal, then below-diagonal entries of the
    Cholesky factor in the basis of :func:`~formulahier.collapsed.whitening`), declared
    ``Normal(centre, 1)`` so that every variable can be drawn; a Potential replaces that
    density by the priors of the sds (``sd_dists``) and ``LKJ(eta)`` of the correlation, times
    the Jacobian. The sds and the correlation are Deterministics under Bambi's names.
    """
    q = R.shape[0]
    m = q + q * (q - 1) // 2
    centre = np.concatenate([np.full(q, np.log(scale / 2)), np.zeros(m - q)])
    theta = pm.Normal(f"{name}_chol_offset", mu=centre, sigma=1.0, shape=m)
    w = whitened_covariance(theta[:q], theta[q:], R)
    for k, sd_name in enumerate(sd_names):
        pm.Deterministic(sd_name, w.sds[k])
    pm.Deterministic(corr, w.corr, dims=corr_dims)
    prior = sum(pm.logp(dist, w.sds[k]) for k, dist in enumerate(sd_dists))
    corr_logdet = w.precision.logdet - 2 * pt.sum(pt.log(w.sds))
    prior = prior + lkj_logp(corr_logdet, q, eta)
    declared = -0.5 * pt.sum((theta - centre) ** 2) - 0.5 * m * np.log(2 * np.pi)
    pm.Potential(f"{name}_prior", prior + w.log_jacobian - declared)
    return w.precision


def add_population(model, slots: list[PopulationSlot], integrated: Integrated, z_name: str):
    """The population effects drawn given the hyperparameters, as Deterministics."""
    p = sum(s.width for s in slots)
    z = pm.Normal(z_name, 0.0, 1.0, shape=p)
    beta = population_effects(integrated.chol_H, integrated.w, z)
    start = 0
    for slot in slots:
        value = beta[start] if slot.dims is None else beta[start : start + slot.width]
        pm.Deterministic(slot.name, value, dims=slot.dims)
        start += slot.width
    return beta
