"""The log-likelihood with the group effects (and the population effects) integrated out.

For ``y = X b + Z u + e`` with one grouping factor, ``u_j ~ Normal(0, S)`` per level and
``e ~ Normal(0, sigma^2 I)``, the rows of level ``j`` are marginally
``Normal(X_j b, Z_j S Z_j' + sigma^2 I)``. With ``A_j = S^-1 + Z_j'Z_j / sigma^2``
(Woodbury, matrix determinant lemma) the log-likelihood of all rows is::

    -1/2 [ N log(2 pi sigma^2) + J log|S| + sum_j log|A_j|
           + r'r / sigma^2 - sum_j c_j' A_j^-1 c_j / sigma^4 ]

with ``r'r = y'y - 2 b'X'y + b'X'X b`` and ``c_j = Z_j'y_j - Z_j'X_j b``.

**Nested factors** (``(1 | a/b)``: effects ``v_k ~ Normal(0, T)`` of inner levels ``k``, each
within one outer level ``j``): the joint precision of ``(u_j, v_j1, v_j2, ...)`` is an arrow
matrix, ``[[A_j, C_j'], [C_j, diag(D_k)]]`` with ``D_k = T^-1 + W_k'W_k / sigma^2`` and
``C_k = W_k'Z_k / sigma^2``. Two-stage elimination, exact: the inner levels first (``D_k``,
per inner level), then the outer level with its Schur complement
``A_j - sum_k C_k' D_k^-1 C_k`` (determinant lemma on the block-structured covariance):
``log|.|`` and the quadratic form split the same way. The prior's ``J log|S|`` becomes
``J log|S| + K log|T|``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytensor.tensor as pt

from . import small
from .stats import Stats, shape_of

__all__ = ["Integrated", "Precision", "block_precision", "integrated_cost", "integrated_loglik",
           "marginal_loglik", "population_effects", "precision_from_chol"]  # fmt: skip


class Precision(NamedTuple):
    """The inverse ``S^-1`` of one level's effects covariance and ``log|S|`` (tensors)."""

    inv: Any  # (q, q)
    logdet: Any  # scalar


def precision_from_chol(chol_S) -> Precision:
    """From the lower Cholesky factor of ``S``."""
    inv_L = small.inv_lower(chol_S)
    return Precision(small.matmul(small.transpose(inv_L), inv_L), small.logdet_chol(chol_S))


def block_precision(parts: list[Precision]) -> Precision:
    """The precision of independent blocks (block-diagonal ``S``)."""
    if len(parts) == 1:
        return parts[0]
    logdet = sum(p.logdet for p in parts)
    if not all(small.unrolled(p.inv) for p in parts):
        return Precision(pt.linalg.block_diag(*[p.inv for p in parts]), logdet)
    sizes = [len(small.entries(p.inv)) for p in parts]
    if sum(sizes) > small.MAX_UNROLLED:
        return Precision(pt.linalg.block_diag(*[p.inv for p in parts]), logdet)
    rows: list[list[Any]] = []
    for k, part in enumerate(parts):  # entry by entry: zeros off the blocks
        left, right = sum(sizes[:k]), sum(sizes[k + 1 :])
        rows += [[0.0] * left + row + [0.0] * right for row in small.entries(part.inv)]
    return Precision(small.stack(rows), logdet)


def _precisions(stats: Stats, cov) -> tuple[Precision, Precision | None]:
    """``cov``: a Cholesky factor or Precision; for nested stats, a pair (outer, inner)."""

    def one(c):
        return c if isinstance(c, Precision) else precision_from_chol(c)

    if stats.inner is None:
        return one(cov), None
    outer, inner = cov
    return one(outer), one(inner)


def _solve_2x2(A, B):
    """``det A_j``, the rows of ``B_j`` and of ``A_j^-1 B_j`` for 2 x 2 blocks (closed form).

    ``A``: entries (:func:`_posterior_precision`); ``B``: (J, 2, m).
    """
    a, b, d = A[0][0], A[1][0], A[1][1]
    det = a * d - b**2
    B0, B1 = B[:, 0, :], B[:, 1, :]
    W0 = (d[:, None] * B0 - b[:, None] * B1) / det[:, None]
    W1 = (a[:, None] * B1 - b[:, None] * B0) / det[:, None]
    return det, (B0, B1), (W0, W1)


def _level_sum(U, V):
    """``sum_j U_j' V_j`` for ``U``, ``V``: (J, m) rows.

    Elementwise for up to :data:`.small.MAX_UNROLLED` columns (no BLAS call, whose numba
    object-mode look-up each process pays); a matrix product above, where the elementwise sum
    was 4.6x slower (10^5 levels, m = 31).
    """
    m = U.type.shape[1]
    if m is None or m > small.MAX_UNROLLED:
        return pt.dot(U.T, V)
    return pt.sum(U[:, :, None] * V[:, None, :], axis=0)


def _posterior_precision(prior_inv, cross, s2):
    """``A_j = prior_inv + cross_j / s2`` per level.

    Entries, each (J,), where :mod:`.small` unrolls ``q x q`` (no indexing of a tensor the
    gradient flows through); else a (J, q, q) tensor.
    """
    q = shape_of(cross)[1]
    if q > small.MAX_UNROLLED:
        return prior_inv[None, :, :] + cross / s2
    if small.unrolled(prior_inv):
        inv = small.entries(prior_inv)
    else:  # a precision of unknown static shape (q x q all the same)
        inv = [[prior_inv[i, j] for j in range(q)] for i in range(q)]
    return [[inv[i][j] + cross[:, i, j] / s2 for j in range(q)] for i in range(q)]


def _minus(A, part, q: int):
    """``A - part[:, :q, :q]`` for ``A`` as :func:`_posterior_precision` gives it."""
    if q > small.MAX_UNROLLED:
        return A - part[:, :q, :q]
    return [[A[i][j] - part[:, i, j] for j in range(q)] for i in range(q)]


def _cholesky_solve(A, B):
    """Batched Cholesky ``L`` of ``A`` (entries or (J, q, q)) and ``W = L^-1 B`` ((J, q, m))."""
    L = small.cholesky(small.stack(A) if isinstance(A, list) else A)
    return L, small.solve_lower(L, B)


def _solve_sum(A, B, q: int):
    """``sum_j log|A_j|`` and ``sum_j B_j' A_j^-1 B_j``.

    ``A``: as :func:`_posterior_precision` gives it; ``B``: (J, q, m). Closed forms for
    q = 1, 2, batched Cholesky otherwise (:mod:`.small`).
    """
    if q == 1:
        a = A[0][0]
        return pt.sum(pt.log(a)), _level_sum(B[:, 0, :] / a[:, None], B[:, 0, :])
    if q == 2:
        det, (B0, B1), (W0, W1) = _solve_2x2(A, B)
        return pt.sum(pt.log(det)), _level_sum(B0, W0) + _level_sum(B1, W1)
    L, W = _cholesky_solve(A, B)  # W: (J, q, m)
    m = W.type.shape[2]
    if m is None or m > small.MAX_UNROLLED:  # as _level_sum: a matrix product for wide ones
        return small.logdet_chol(L), pt.tensordot(W, W, axes=[[0, 1], [0, 1]])
    return small.logdet_chol(L), pt.sum(W[:, :, :, None] * W[:, :, None, :], axis=(0, 1))


def _solve_each(A, B, q: int):
    """Per level: ``log|A_k|`` (K,) and ``B_k' A_k^-1 B_k`` (K, m, m)."""
    if q == 1:
        a = A[0][0]
        return pt.log(a), B[:, 0, :, None] * B[:, 0, None, :] / a[:, None, None]
    if q == 2:
        det, (B0, B1), (W0, W1) = _solve_2x2(A, B)
        return pt.log(det), B0[:, :, None] * W0[:, None, :] + B1[:, :, None] * W1[:, None, :]
    L, W = _cholesky_solve(A, B)  # W: (K, q, m)
    return small.logdet_chol(L, total=False), pt.sum(W[:, :, :, None] * W[:, :, None, :], axis=1)


def _levels(stats: Stats, precs, s2, B, B_in=None):
    """``log|A|`` and ``B' A^-1 B`` of the group effects' posterior precision ``A``.

    ``B``: (J, q, m) cross-products of the outer columns with the right-hand sides; for nested
    stats ``B_in`` (K, r, m) those of the inner columns: two-stage elimination (module doc).
    """
    outer, inner = precs
    q = shape_of(stats.ZtZ)[1]
    A = _posterior_precision(outer.inv, stats.ZtZ, s2)
    if stats.inner is None:
        return _solve_sum(A, B, q)
    parts, J, r = stats.inner, shape_of(stats.ZtZ)[0], shape_of(stats.inner.WtW)[1]
    D = _posterior_precision(inner.inv, parts.WtW, s2)
    F = pt.concatenate([parts.WtZ / s2, B_in], axis=2)  # (K, r, q + m)
    logdet_D, M = _solve_each(D, F, r)  # M_k = F_k' D_k^-1 F_k
    per_outer = pt.inc_subtensor(pt.zeros((J, M.shape[1], M.shape[2]))[parts.parent], M)
    schur = _minus(A, per_outer, q)
    logdet_S, G = _solve_sum(schur, B - per_outer[:, :q, q:], q)
    return pt.sum(logdet_D) + logdet_S, G + pt.sum(M[:, q:, q:], axis=0)


def _prior_logdet(stats: Stats, precs) -> Any:
    outer, inner = precs
    # the number of levels read from the graph (a constant only when its shape is fixed), so a
    # compiled graph whose sizes are left open serves any number of levels (graph_inputs)
    levels = stats.ZtZ.shape[0] if hasattr(stats.ZtZ, "type") else shape_of(stats.ZtZ)[0]
    total = levels * outer.logdet
    if inner is None or stats.inner is None:
        return total
    return total + len(stats.inner.parent) * inner.logdet


def marginal_loglik(stats: Stats, beta, cov, sigma):
    """The log-likelihood of all rows with the group effects integrated out (a PyTensor scalar).

    Parameters
    ----------
    stats : Stats
        From :func:`~formulahier.collapsed.sufficient_stats` with the same column order as
        ``beta`` and ``cov``.
    beta : tensor (p,)
        Population-level coefficients.
    cov : tensor (q, q) or Precision; a pair of them (outer, inner) for nested stats
        Lower Cholesky factor of the covariance ``S`` of one level's effects, or its
        :class:`Precision`.
    sigma : tensor
        Residual standard deviation.

    """
    precs = _precisions(stats, cov)
    s2 = sigma**2
    B_in = None
    if np.prod(shape_of(stats.XtX)):
        rr = stats.yty - 2 * pt.sum(stats.Xty * beta) + pt.sum(beta * small.matvec(stats.XtX, beta))
        c = stats.Zty - small.matvec(stats.ZtX, beta)  # (J, q)
        if stats.inner is not None:
            B_in = (stats.inner.Wty - small.matvec(stats.inner.WtX, beta))[:, :, None]
    else:
        rr, c = pt.as_tensor_variable(stats.yty), pt.as_tensor_variable(stats.Zty)
        if stats.inner is not None:
            B_in = pt.as_tensor_variable(stats.inner.Wty)[:, :, None]
    logdet_A, G = _levels(stats, precs, s2, c[:, :, None], B_in)
    quad = rr / s2 - G[0, 0] / s2**2
    n = stats.n
    logdet = n * pt.log(s2) + _prior_logdet(stats, precs) + logdet_A
    return -0.5 * (n * np.log(2 * np.pi) + logdet + quad)


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
    ``cov`` as in :func:`marginal_loglik`.
    """
    precs = _precisions(stats, cov)
    s2 = sigma**2
    p = shape_of(stats.XtX)[0]
    m0, p0 = np.asarray(prior_mean, float), 1.0 / np.asarray(prior_sd, float) ** 2
    # PyTensor ops (constant-folded for arrays), so the cross-products may also be tensors
    B = pt.concatenate([stats.ZtX, stats.Zty[:, :, None]], axis=2)  # (J, q, p + 1)
    B_in = None
    if stats.inner is not None:
        B_in = pt.concatenate([stats.inner.WtX, stats.inner.Wty[:, :, None]], axis=2)
    Xty = pt.as_tensor_variable(stats.Xty)
    top = pt.concatenate([stats.XtX, Xty[:, None]], axis=1)
    bottom = pt.concatenate([Xty, pt.atleast_1d(stats.yty)])[None, :]
    C = pt.concatenate([top, bottom], axis=0)  # [X y]'[X y]
    logdet_A, G = _levels(stats, precs, s2, B, B_in)
    K = C / s2 - G / s2**2  # [X y]' V^-1 [X y]
    chol_H = small.cholesky(K[:p, :p] + np.diag(p0))
    w = small.solve_lower(chol_H, K[:p, p] + p0 * m0, b_ndim=1)
    quad = K[p, p] + float(np.sum(p0 * m0**2)) - pt.sum(w**2)
    logdet_H = small.logdet_chol(chol_H)
    n = stats.n
    logdet_V = n * pt.log(s2) + _prior_logdet(stats, precs) + logdet_A
    const = n * np.log(2 * np.pi) - float(np.sum(np.log(p0)))
    return Integrated(-0.5 * (const + logdet_V + quad + logdet_H), chol_H, w)


def population_effects(chol_H, w, z):
    """``b = chol_H^-T (w + z)``: a draw of ``b | rest`` for ``z ~ Normal(0, I)``."""
    return small.solve_lower_t(chol_H, w + z, b_ndim=1)


def integrated_cost(stats: Stats) -> int:
    """Cells per gradient that integrating the population effects out adds (J q (p + 1)^2)."""
    J, q = shape_of(stats.ZtZ)[:2]
    cells = J * q * (shape_of(stats.XtX)[0] + 1) ** 2
    if stats.inner is not None:
        K, r = shape_of(stats.inner.WtW)[:2]
        cells += K * r * (q + shape_of(stats.XtX)[0] + 1) ** 2
    return cells
