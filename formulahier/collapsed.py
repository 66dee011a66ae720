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

from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt
from scipy.special import betaln

__all__ = [
    "Integrated",
    "Precision",
    "Stats",
    "Whitened",
    "block_precision",
    "draw_effects",
    "integrated_cost",
    "integrated_loglik",
    "lkj_logp",
    "marginal_loglik",
    "population_effects",
    "precision_from_chol",
    "response_parts",
    "sufficient_stats",
    "whitened_covariance",
    "whitening",
]

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
        """The same cross-products as named shared variables of fixed shape.

        Every field becomes ``{prefix}__{field}`` (``{prefix}__yty`` ...), so one compiled graph
        serves a new response (new ``yty, Xty, Zty``: :func:`response_parts`) or a subset of the
        rows (every field: :func:`sufficient_stats` of the rows kept, as k-fold needs).
        """
        new = {k: pytensor.shared(np.asarray(getattr(self, k), dtype=float), name=f"{prefix}__{k}",
                                  shape=np.shape(getattr(self, k)))
               for k in self.names()}  # fmt: skip
        return replace(self, **new)

    @classmethod
    def names(cls) -> list[str]:
        """The fields: ``n, yty, Xty, XtX, Zty, ZtX, ZtZ``."""
        return [f.name for f in fields(cls)]

    def values(self) -> dict[str, np.ndarray]:
        """Every field as an array, by field name (the values :meth:`shared` variables take)."""
        return {k: np.asarray(getattr(self, k), dtype=float) for k in self.names()}

    def transformed(self, T: np.ndarray) -> Stats:
        """The cross-products of the design ``X @ T`` (e.g. predictors centered)."""
        return Stats(self.n, self.yty, T.T @ self.Xty, T.T @ self.XtX @ T, self.Zty,
                     self.ZtX @ T, self.ZtZ)  # fmt: skip


def _shape(value) -> tuple[int, ...]:
    """The shape of an array, or the static shape of a shared variable (:meth:`Stats.shared`)."""
    return tuple(value.type.shape) if hasattr(value, "type") else np.shape(value)


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


class Precision(NamedTuple):
    """The inverse ``S^-1`` of one level's effects covariance and ``log|S|`` (tensors)."""

    inv: Any  # (q, q)
    logdet: Any  # scalar


def precision_from_chol(chol_S) -> Precision:
    """From the lower Cholesky factor of ``S``."""
    q = int(chol_S.type.shape[0]) if chol_S.type.shape[0] is not None else None
    eye = np.eye(q) if q is not None else pt.eye(chol_S.shape[0])
    inv_L = pt.linalg.solve_triangular(chol_S, eye, lower=True)
    return Precision(pt.dot(inv_L.T, inv_L), 2 * pt.sum(pt.log(pt.diagonal(chol_S))))


def block_precision(parts: list[Precision]) -> Precision:
    """The precision of independent blocks (block-diagonal ``S``)."""
    if len(parts) == 1:
        return parts[0]
    return Precision(pt.linalg.block_diag(*[p.inv for p in parts]), sum(p.logdet for p in parts))


def _levels(stats: Stats, prec: Precision, s2, B):
    """``sum_j log|A_j|`` and ``sum_j B_j' A_j^-1 B_j`` with ``A_j = S^-1 + Z_j'Z_j / s2``.

    ``B`` is ``(J, q, k)``; closed forms for q = 1, 2, batched Cholesky otherwise.
    """
    q = _shape(stats.ZtZ)[1]
    A = prec.inv[None, :, :] + stats.ZtZ / s2  # (J, q, q)
    if q == 1:
        a = A[:, 0, 0]
        return pt.sum(pt.log(a)), pt.dot((B[:, 0, :] / a[:, None]).T, B[:, 0, :])
    if q == 2:
        a, b, d = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        det = a * d - b**2
        B0, B1 = B[:, 0, :], B[:, 1, :]
        W0 = (d[:, None] * B0 - b[:, None] * B1) / det[:, None]
        W1 = (a[:, None] * B1 - b[:, None] * B0) / det[:, None]
        return pt.sum(pt.log(det)), pt.dot(B0.T, W0) + pt.dot(B1.T, W1)
    L = pt.linalg.cholesky(A)
    W = pt.linalg.solve_triangular(L, B, lower=True, b_ndim=2)  # (J, q, k)
    logdet = 2 * pt.sum(pt.log(pt.diagonal(L, axis1=1, axis2=2)))
    return logdet, pt.tensordot(W, W, axes=[[0, 1], [0, 1]])


def marginal_loglik(stats: Stats, beta, cov, sigma):
    """The log-likelihood of all rows with the group effects integrated out (a PyTensor scalar).

    Parameters
    ----------
    stats : Stats
        From :func:`sufficient_stats` with the same column order as ``beta`` and ``cov``.
    beta : tensor (p,)
        Population-level coefficients.
    cov : tensor (q, q) or Precision
        Lower Cholesky factor of the covariance ``S`` of one level's effects, or its
        :class:`Precision`.
    sigma : tensor
        Residual standard deviation.

    """
    prec = cov if isinstance(cov, Precision) else precision_from_chol(cov)
    s2 = sigma**2
    J = _shape(stats.ZtZ)[0]  # static shapes: the cross-products may be shared variables
    if np.prod(_shape(stats.XtX)):
        rr = stats.yty - 2 * pt.dot(stats.Xty, beta) + pt.dot(beta, pt.dot(stats.XtX, beta))
        c = stats.Zty - pt.dot(stats.ZtX, beta)  # (J, q)
    else:
        rr, c = pt.as_tensor_variable(stats.yty), pt.as_tensor_variable(stats.Zty)
    logdet_A, G = _levels(stats, prec, s2, c[:, :, None])
    quad = rr / s2 - G[0, 0] / s2**2
    n = stats.n
    return -0.5 * (n * np.log(2 * np.pi) + n * pt.log(s2) + J * prec.logdet + logdet_A + quad)


class Integrated(NamedTuple):
    """:func:`integrated_loglik`: the log-likelihood and what the population effects need."""

    loglik: Any  # scalar
    chol_H: Any  # (p, p) lower Cholesky factor of the conditional precision of b
    w: Any  # (p,) chol_H^-1 (X'V^-1 y + P0 m0)


def integrated_loglik(stats: Stats, cov, sigma, prior_mean, prior_sd) -> Integrated:
    """The log-likelihood with the group effects *and* the population effects integrated out.

    With ``b ~ Normal(m0, diag(prior_sd^2))`` (Bambi's normal priors) and ``V`` the marginal
    covariance of the rows given the hyperparameters, ``y ~ Normal(X m0, V + X P0^-1 X')``; its
    log-density, from the cross-products only (``H = X'V^-1X + P0``, ``g = X'V^-1y + P0 m0``)::

        -1/2 [ N log(2 pi) + log|V| + y'V^-1y + m0'P0 m0 - g'H^-1 g + log|H| - log|P0| ]

    ``b | rest ~ Normal(H^-1 g, H^-1)`` is then ``chol_H^-T (w + z)`` with ``z ~ Normal(0, I)``
    (:func:`population_effects`): the sampler sees ``z``, independent of everything else.
    """
    prec = cov if isinstance(cov, Precision) else precision_from_chol(cov)
    s2 = sigma**2
    J, p = _shape(stats.ZtZ)[0], _shape(stats.XtX)[0]
    m0, p0 = np.asarray(prior_mean, float), 1.0 / np.asarray(prior_sd, float) ** 2
    # PyTensor ops (constant-folded for arrays), so the cross-products may also be tensors
    B = pt.concatenate([stats.ZtX, stats.Zty[:, :, None]], axis=2)  # (J, q, p + 1)
    Xty = pt.as_tensor_variable(stats.Xty)
    top = pt.concatenate([stats.XtX, Xty[:, None]], axis=1)
    bottom = pt.concatenate([Xty, pt.atleast_1d(stats.yty)])[None, :]
    C = pt.concatenate([top, bottom], axis=0)  # [X y]'[X y]
    logdet_A, G = _levels(stats, prec, s2, B)
    K = C / s2 - G / s2**2  # [X y]' V^-1 [X y]
    chol_H = pt.linalg.cholesky(K[:p, :p] + np.diag(p0))
    w = pt.linalg.solve_triangular(chol_H, K[:p, p] + p0 * m0, lower=True)
    quad = K[p, p] + float(np.sum(p0 * m0**2)) - pt.dot(w, w)
    logdet_H = 2 * pt.sum(pt.log(pt.diagonal(chol_H)))
    n = stats.n
    logdet_V = n * pt.log(s2) + J * prec.logdet + logdet_A
    const = n * np.log(2 * np.pi) - float(np.sum(np.log(p0)))
    return Integrated(-0.5 * (const + logdet_V + quad + logdet_H), chol_H, w)


def population_effects(chol_H, w, z):
    """``b = chol_H^-T (w + z)``: a draw of ``b | rest`` for ``z ~ Normal(0, I)``."""
    return pt.linalg.solve_triangular(chol_H.T, w + z, lower=False)


def integrated_cost(stats: Stats) -> int:
    """Cells per gradient that integrating the population effects out adds (J q (p + 1)^2)."""
    J, q = _shape(stats.ZtZ)[:2]
    return J * q * (_shape(stats.XtX)[0] + 1) ** 2


# ------------------------------------------------------------ a whitened covariance basis


def whitening(ZtZ: np.ndarray, n: int) -> np.ndarray:
    """Upper-triangular ``R`` with ``R'R = Z'Z / n`` for one block's columns.

    ``v = R u`` are the effects on the orthonormal columns ``Z R^-1``; identity if singular.
    """
    q = ZtZ.shape[0]
    try:
        R = np.linalg.cholesky(ZtZ / n).T
    except np.linalg.LinAlgError:
        return np.eye(q)
    return R if np.linalg.cond(R) < 1e8 else np.eye(q)


class Whitened(NamedTuple):
    """:func:`whitened_covariance`: one block's covariance from unconstrained values."""

    precision: Precision
    sds: Any  # (q,)
    corr: Any  # (q, q)
    log_jacobian: Any  # log |d(sds, corr) / d(log_diag, off)|


def whitened_covariance(log_diag, off, R: np.ndarray) -> Whitened:
    """One block's covariance ``S = R^-1 L L' R^-T`` from unconstrained values.

    ``L`` is lower triangular, ``diag L = exp(log_diag)`` and ``off`` below the diagonal (row
    by row): ``S`` is the covariance of ``u`` when ``v = R u`` has Cholesky factor ``L``. The
    sampler sees ``(log_diag, off)``: the effects' covariance in a
    basis where the block's columns are centered and uncorrelated, so that an intercept far
    from the data's centre does not couple the sds and the correlation.

    The log-Jacobian turns a density of ``(sds, corr)`` (the priors) into one of
    ``(log_diag, off)``: ``|dS/dL| = 2^q prod L_ii^(q-i+1)``, ``|dL/dlog_diag| = prod L_ii``,
    ``|dS/dS_v| = |R|^-(q+1)``, ``|dS/d(sds, corr)| = 2^q prod sd_i^q``.
    """
    q = R.shape[0]
    rows, cols = np.tril_indices(q, -1)
    L = pt.diag(pt.exp(log_diag))
    if q > 1:
        L = pt.set_subtensor(L[rows, cols], off)
    R_inv = np.linalg.inv(R)
    F = pt.dot(R_inv, L)  # S = F F'
    sds = pt.sqrt(pt.sum(F**2, axis=1))
    Fn = F / sds[:, None]
    corr = pt.dot(Fn, Fn.T)
    inv_L = pt.linalg.solve_triangular(L, np.eye(q), lower=True)
    inv_F = pt.dot(inv_L, R)  # F^-1
    logdet_R = float(np.sum(np.log(np.abs(np.diag(R)))))
    precision = Precision(pt.dot(inv_F.T, inv_F), 2 * pt.sum(log_diag) - 2 * logdet_R)
    powers = q - np.arange(q) + 1.0  # q - i + 2 for i = 1..q
    log_jac = pt.sum(powers * log_diag) - q * pt.sum(pt.log(sds)) - (q + 1) * logdet_R
    return Whitened(precision, sds, corr, log_jac)


def lkj_logp(corr_logdet, n: int, eta: float):
    """LKJ(eta) log-density of an ``n x n`` correlation matrix from its log-determinant."""
    k = np.arange(1, n)
    a = eta + (n - k - 1) / 2
    log_c = np.sum((2 * eta - 2 + n - k) * (n - k) * np.log(2) + (n - k) * betaln(a, a))
    return (eta - 1) * corr_logdet - log_c


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
