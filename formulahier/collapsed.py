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
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytensor
import pytensor.tensor as pt

__all__ = ["Stats", "draw_effects", "marginal_loglik", "response_parts", "sufficient_stats"]

_CELLS_PER_CHUNK = 2_000_000  # draws x levels x q x q per chunk of exact draws


@dataclass(frozen=True)
class Stats:
    """Cross-products of the data: global for ``X``/``y``, per level for ``Z``."""

    n: int
    yty: float
    Xty: np.ndarray  # (p,)
    XtX: np.ndarray  # (p, p)
    Zty: np.ndarray  # (J, q)
    ZtX: np.ndarray  # (J, q, p)
    ZtZ: np.ndarray  # (J, q, q)

    def shared(self, prefix: str) -> Stats:
        """The same cross-products, those of the response as named shared variables.

        ``yty, Xty, Zty`` become ``{prefix}__yty`` ...: a new response, same compiled graph
        (new values from :func:`response_parts`).
        """
        new = {k: pytensor.shared(np.asarray(getattr(self, k), dtype=float), name=f"{prefix}__{k}")
               for k in ("yty", "Xty", "Zty")}  # fmt: skip
        return replace(self, **new)

    def transformed(self, T: np.ndarray) -> Stats:
        """The cross-products of the design ``X @ T`` (e.g. predictors centered)."""
        return Stats(self.n, self.yty, T.T @ self.Xty, T.T @ self.XtX @ T, self.Zty,
                     self.ZtX @ T, self.ZtZ)  # fmt: skip


def sufficient_stats(
    y: np.ndarray, X: np.ndarray, codes: np.ndarray, Z: np.ndarray, n_levels: int
) -> Stats:
    """Cross-products, one pass of ``bincount`` per pair of columns (O(rows x q x (p + q)))."""
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    Z = np.asarray(Z, dtype=float).reshape(len(y), -1)
    q, p = Z.shape[1], X.shape[1]

    def per_level(w):
        return np.bincount(codes, weights=w, minlength=n_levels)

    Zty = np.stack([per_level(Z[:, a] * y) for a in range(q)], axis=1)
    ZtX = np.stack(
        [np.stack([per_level(Z[:, a] * X[:, c]) for c in range(p)], axis=1) for a in range(q)],
        axis=1,
    ) if p else np.zeros((n_levels, q, 0))  # fmt: skip
    ZtZ = np.empty((n_levels, q, q))
    for a in range(q):
        for b in range(a, q):
            ZtZ[:, a, b] = ZtZ[:, b, a] = per_level(Z[:, a] * Z[:, b])
    return Stats(len(y), float(y @ y), X.T @ y, X.T @ X, Zty, ZtX, ZtZ)


def response_parts(
    y: np.ndarray, X: np.ndarray, codes: np.ndarray, Z: np.ndarray, n_levels: int
) -> dict[str, np.ndarray]:
    """The cross-products that involve the response: ``yty``, ``Xty``, ``Zty``."""
    y = np.asarray(y, dtype=float)
    Z = np.asarray(Z, dtype=float).reshape(len(y), -1)
    Zty = np.stack(
        [np.bincount(codes, weights=Z[:, a] * y, minlength=n_levels) for a in range(Z.shape[1])],
        axis=1,
    )
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    return {"yty": np.asarray(y @ y), "Xty": X.T @ y, "Zty": Zty}


def marginal_loglik(stats: Stats, beta, chol_S, sigma):
    """The log-likelihood of all rows with the group effects integrated out (a PyTensor scalar).

    Parameters
    ----------
    stats : Stats
        From :func:`sufficient_stats` with the same column order as ``beta`` and ``chol_S``.
    beta : tensor (p,)
        Population-level coefficients.
    chol_S : tensor (q, q)
        Lower Cholesky factor of the covariance ``S`` of one level's effects.
    sigma : tensor
        Residual standard deviation.

    """
    s2 = sigma**2
    J, q = stats.ZtZ.shape[:2]  # shapes from the design parts: the response's may be shared
    if stats.XtX.size:
        rr = stats.yty - 2 * pt.dot(stats.Xty, beta) + pt.dot(beta, pt.dot(stats.XtX, beta))
        c = stats.Zty - pt.dot(stats.ZtX, beta)  # (J, q)
    else:
        rr, c = pt.as_tensor_variable(stats.yty), pt.as_tensor_variable(stats.Zty)
    logdet_S = 2 * pt.sum(pt.log(pt.diagonal(chol_S)))
    eye = np.eye(q)
    S_inv = pt.linalg.solve_triangular(
        chol_S.T, pt.linalg.solve_triangular(chol_S, eye, lower=True), lower=False
    )
    A = S_inv[None, :, :] + stats.ZtZ / s2  # (J, q, q)
    if q == 1:
        a = A[:, 0, 0]
        logdet_A = pt.sum(pt.log(a))
        quad_A = pt.sum(c[:, 0] ** 2 / a)
    elif q == 2:
        a, b, d = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        det = a * d - b**2
        logdet_A = pt.sum(pt.log(det))
        quad_A = pt.sum((d * c[:, 0] ** 2 - 2 * b * c[:, 0] * c[:, 1] + a * c[:, 1] ** 2) / det)
    else:
        L = pt.linalg.cholesky(A)
        logdet_A = 2 * pt.sum(pt.log(pt.diagonal(L, axis1=1, axis2=2)))
        w = pt.linalg.solve_triangular(L, c[:, :, None], lower=True)
        quad_A = pt.sum(w**2)
    quad = rr / s2 - quad_A / s2**2
    n = stats.n
    return -0.5 * (n * np.log(2 * np.pi) + n * pt.log(s2) + J * logdet_S + logdet_A + quad)


def draw_effects(
    stats_raw: Stats, beta: np.ndarray, cov: np.ndarray, sigma: np.ndarray, rng
) -> np.ndarray:
    """Exact draws of every level's effects given each posterior draw of the rest.

    Parameters
    ----------
    stats_raw : Stats
        Cross-products with the population design as Bambi stores its posterior (intercept
        column of ones, uncentered predictors), matching ``beta``.
    beta : (S, p) array
    cov : (S, q, q) array
        Covariance ``S`` of one level's effects per draw.
    sigma : (S,) array
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(S, J, q)``.

    """
    n_draws = beta.shape[0]
    J, q = stats_raw.Zty.shape
    out = np.empty((n_draws, J, q))
    step = max(1, _CELLS_PER_CHUNK // max(1, J * q * q))
    for start in range(0, n_draws, step):
        sl = slice(start, min(n_draws, start + step))
        s2 = sigma[sl, None, None, None] ** 2
        c = stats_raw.Zty[None] - np.einsum("jqp,sp->sjq", stats_raw.ZtX, beta[sl])
        A = np.linalg.inv(cov[sl])[:, None] + stats_raw.ZtZ[None] / s2  # (s, J, q, q)
        L = np.linalg.cholesky(A)
        mean = np.linalg.solve(A, (c / s2[..., 0])[..., None])[..., 0]
        z = rng.standard_normal(mean.shape)
        noise = np.linalg.solve(np.swapaxes(L, -1, -2), z[..., None])[..., 0]  # L^-T z
        out[sl] = mean + noise
    return out
