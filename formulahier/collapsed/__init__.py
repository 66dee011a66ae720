"""Gaussian multilevel models with the group effects integrated out, then drawn exactly.

Given the hyperparameters (population effects, sds, correlations, sigma) the group effects of
a gaussian model are integrated out of the likelihood exactly (:mod:`.loglik`: Woodbury and
the matrix determinant lemma per level). That needs only cross-products computed once from
the data (:mod:`.stats`), so a gradient costs O(levels x q^3), not O(rows), and the sampler
sees the hyperparameters only: no funnel.

After sampling, the group effects are drawn from their exact conditional posterior,
``u_j | rest ~ Normal(A_j^-1 c_j / sigma^2, A_j^-1)``, once per posterior draw
(:func:`draw_effects`). lme4 owes its speed to the same algebra.

Nested factors (``(1 | a/b)``, or ``(x | a) + (1 | a:b)``: each level of the inner factor
within one level of the outer one, as the data show) are integrated out in two stages, inner
levels first, exactly (:mod:`.loglik`); their effects are drawn outer first, then inner given
outer (:mod:`.draws`).

What the sampler sees (the posterior is the same whatever the parameterization):

* with normal priors on the population effects ``b`` they are integrated out too
  (:func:`integrated_loglik`) and drawn as ``b = chol_H^-T (w + z)``, ``z ~ Normal(0, I)``
  (:func:`population_effects`): ``z`` is independent of the hyperparameters a priori and a
  posteriori;
* a correlated block's covariance is sampled as the Cholesky factor of the effects'
  covariance on centered, uncorrelated columns (:func:`whitened_covariance`), with the
  Jacobian that keeps the priors on the sds and the correlation.

On ozone's ``(TEMP | station)`` (TEMP's zero far from the data) the two together raise the
bulk ESS per gradient about 4x (``docs/performance.md``).
"""

from __future__ import annotations

from .basis import Whitened, lkj_logp, whitened_covariance, whitening
from .draws import draw_effects
from .loglik import (
    Integrated,
    Precision,
    block_precision,
    integrated_cost,
    integrated_loglik,
    marginal_loglik,
    population_effects,
    precision_from_chol,
)
from .stats import RESPONSE_PARTS, Inner, Stats, level_products, nesting_parent, sufficient_stats

__all__ = [
    "RESPONSE_PARTS",
    "Inner",
    "Integrated",
    "Precision",
    "Stats",
    "Whitened",
    "block_precision",
    "draw_effects",
    "integrated_cost",
    "integrated_loglik",
    "level_products",
    "lkj_logp",
    "marginal_loglik",
    "nesting_parent",
    "population_effects",
    "precision_from_chol",
    "sufficient_stats",
    "whitened_covariance",
    "whitening",
]
