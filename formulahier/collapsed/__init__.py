"""Gaussian multilevel models with the group effects integrated out, then drawn exactly.

For ``y = X b + Z u + e`` with one grouping factor, ``u_j ~ Normal(0, S)`` per level and
``e ~ Normal(0, sigma^2 I)``, the rows of level ``j`` are marginally
``Normal(X_j b, Z_j S Z_j' + sigma^2 I)``. With ``A_j = S^-1 + Z_j'Z_j / sigma^2``
(Woodbury, matrix determinant lemma) the log-likelihood of all rows is::

    -1/2 [ N log(2 pi sigma^2) + J log|S| + sum_j log|A_j|
           + r'r / sigma^2 - sum_j c_j' A_j^-1 c_j / sigma^4 ]

with ``r'r = y'y - 2 b'X'y + b'X'X b`` and ``c_j = Z_j'y_j - Z_j'X_j b``. It needs only
cross-products computed once from the data (:class:`Stats`), so a gradient costs
O(levels x q^3), not O(rows), and the sampler sees the hyperparameters only: no funnel.

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
from .stats import Inner, Stats, level_products, nesting_parent, sufficient_stats

__all__ = [
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
