"""Exact draws of the group effects of a collapsed fit, given each posterior draw of the rest.

One factor: ``u_j | rest ~ Normal(A_j^-1 c_j / sigma^2, A_j^-1)``. Nested factors: the outer
effects from their conditional with the inner ones integrated out (precision: the Schur
complement of :mod:`.loglik`), then each inner level's effects given its outer level's,
``v_k | u_j, rest ~ Normal(D_k^-1 (W_k'(y_k - X_k b) / sigma^2 - C_k u_j), D_k^-1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from .stats import Stats

__all__ = ["draw_effects"]

_CELLS_PER_CHUNK = 2_000_000  # draws x levels x q x q per chunk of exact draws


def _normal(precision: np.ndarray, h: np.ndarray, rng) -> np.ndarray:
    """Draws of ``Normal(precision^-1 h, precision^-1)``, batched over the leading axes."""
    L = np.linalg.cholesky(precision)
    mean = np.linalg.solve(precision, h[..., None])[..., 0]
    z = rng.standard_normal(mean.shape)
    return mean + np.linalg.solve(np.swapaxes(L, -1, -2), z[..., None])[..., 0]  # L^-T z


def _per_outer(parent: np.ndarray, n_outer: int, values: np.ndarray) -> np.ndarray:
    """Sums over the inner levels of each outer level: ``(s, K, ...)`` -> ``(s, J, ...)``."""
    K = len(parent)
    onehot = sparse.csr_matrix((np.ones(K), (parent, np.arange(K))), shape=(n_outer, K))
    moved = np.moveaxis(values, 1, 0)
    out = onehot @ moved.reshape(K, -1)
    return np.moveaxis(np.asarray(out).reshape(n_outer, *moved.shape[1:]), 0, 1)


def draw_effects(stats_raw: Stats, beta: np.ndarray, cov, sigma: np.ndarray, rng):
    """Exact draws of every level's effects given each posterior draw of the rest.

    Parameters
    ----------
    stats_raw : Stats
        Cross-products with the population design as Bambi stores its posterior (intercept
        column of ones, uncentered predictors), matching ``beta``.
    beta : (S, p) array
    cov : (S, q, q) array; for nested stats a pair, (outer (S, q, q), inner (S, r, r))
        Covariance of one level's effects per draw.
    sigma : (S,) array
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray or tuple
        ``(S, J, q)``; for nested stats ``((S, J, q), (S, K, r))``.

    """
    n_draws = beta.shape[0]
    J, q = stats_raw.Zty.shape
    inner = stats_raw.inner
    cov_i: Any
    cov_o, cov_i = (cov, None) if inner is None else cov
    u = np.empty((n_draws, J, q))
    cells = J * q * q
    if inner is not None:
        K, r = inner.Wty.shape
        v = np.empty((n_draws, K, r))
        cells += K * r * (r + q + 1)
    step = max(1, _CELLS_PER_CHUNK // max(1, cells))
    for start in range(0, n_draws, step):
        sl = slice(start, min(n_draws, start + step))
        s2 = sigma[sl, None, None] ** 2
        h = (stats_raw.Zty[None] - np.einsum("jqp,sp->sjq", stats_raw.ZtX, beta[sl])) / s2
        A = np.linalg.inv(cov_o[sl])[:, None] + stats_raw.ZtZ[None] / s2[..., None]
        if inner is None:
            u[sl] = _normal(A, h, rng)
            continue
        h_in = (inner.Wty[None] - np.einsum("krp,sp->skr", inner.WtX, beta[sl])) / s2
        D = np.linalg.inv(cov_i[sl])[:, None] + inner.WtW[None] / s2[..., None]  # (s, K, r, r)
        C = inner.WtZ[None] / s2[..., None]  # (s, K, r, q)
        solved = np.linalg.solve(D, np.concatenate([C, h_in[..., None]], axis=-1))
        M = np.einsum("skrq,skrm->skqm", C, solved)  # C' D^-1 [C, h_in]
        M = _per_outer(inner.parent, J, M)
        u[sl] = _normal(A - M[..., :q], h - M[..., q], rng)
        # given u: mean D^-1 (h_in - C u_parent), precision D
        shift = np.einsum("skrq,skq->skr", C, u[sl][:, inner.parent])
        v[sl] = _normal(D, h_in - shift, rng)
    return u if inner is None else (u, v)
