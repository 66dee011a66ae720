"""A whitened basis for a correlated block's covariance, and the LKJ density it needs.

A correlated block's covariance is sampled as the Cholesky factor of the effects' covariance on
centered, uncorrelated columns (:func:`whitened_covariance`), with the Jacobian that keeps the
priors on the sds and the correlation: an intercept far from the data's centre (ozone's TEMP)
then does not couple the sds and the correlation on the sampler's scale.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytensor.tensor as pt
from scipy.special import betaln

from . import small
from .loglik import Precision

__all__ = ["Whitened", "lkj_logp", "whitened_covariance", "whitening"]


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


def whitened_covariance(log_diag, off, R: np.ndarray, scaled: bool = True) -> Whitened:
    """One block's covariance ``S = R^-1 L L' R^-T`` from unconstrained values.

    ``L`` is lower triangular, ``diag L = exp(log_diag)`` and ``L_ij = exp(log_diag_j) off_ij``
    below the diagonal (``off`` row by row; ``scaled=False``: ``L_ij = off_ij``, the previous
    basis, kept for the benchmark that compares them): ``S`` is the covariance of ``u`` when
    ``v = R u`` has Cholesky factor ``L``. The sampler sees ``(log_diag, off)``: the effects'
    covariance in a basis where the block's columns are centered and uncorrelated, so that an
    intercept far from the data's centre does not couple the sds and the correlation. ``off``
    is ``L_ij / L_jj``, the coefficient of the regression of ``v_i`` on ``v_j``'s own part:
    its posterior scale does not depend on the sds (the raw ``L_ij`` has the response's units,
    and a heavy-tailed, skewed posterior coupled to ``log_diag``).

    The log-Jacobian turns a density of ``(sds, corr)`` (the priors) into one of
    ``(log_diag, off)``: ``|dS/dL| = 2^q prod L_ii^(q-i+1)``,
    ``|dL/d(log_diag, off)| = prod L_jj^(q-j+1)`` (column ``j`` has ``q - j`` scaled entries;
    ``prod L_jj`` unscaled), ``|dS/dS_v| = |R|^-(q+1)``, ``|dS/d(sds, corr)| = 2^q prod sd_i^q``.
    """
    q = R.shape[0]
    L = _cholesky_factor(pt.exp(log_diag), off, q, scaled)
    F = small.matmul(np.linalg.inv(R), L)  # S = F F'
    sds, Fn = _scale_rows(F)
    corr = small.matmul(Fn, small.transpose(Fn))
    inv_F = small.matmul(small.inv_lower(L), R)  # F^-1
    logdet_R = float(np.sum(np.log(np.abs(np.diag(R)))))
    inv_S = small.matmul(small.transpose(inv_F), inv_F)
    precision = Precision(inv_S, 2 * pt.sum(log_diag) - 2 * logdet_R)
    powers = q - np.arange(q) + 1.0  # q - i + 2 for i = 1..q
    if scaled:
        powers = powers + q - np.arange(q) - 1.0  # 2 (q - i + 1)
    log_jac = pt.sum(powers * log_diag) - q * pt.sum(pt.log(sds)) - (q + 1) * logdet_R
    return Whitened(precision, sds, corr, log_jac)


def _cholesky_factor(diag, off, q: int, scaled: bool):
    """``L`` of :func:`whitened_covariance`: entry by entry where :mod:`.small` unrolls it."""
    rows, cols = np.tril_indices(q, -1)
    if q > small.MAX_UNROLLED:
        L = pt.diag(diag)
        return pt.set_subtensor(L[rows, cols], diag[cols] * off if scaled else off)
    L = [[diag[i] if i == j else 0.0 for j in range(q)] for i in range(q)]
    for k, (i, j) in enumerate(zip(rows, cols, strict=True)):
        L[i][j] = diag[j] * off[k] if scaled else off[k]
    return small.stack(L)


def _scale_rows(F):
    """The rows' norms of ``F`` and ``F`` with rows of norm 1."""
    if not small.unrolled(F):
        sds = pt.sqrt(pt.sum(F**2, axis=1))
        return sds, F / sds[:, None]
    rows = small.entries(F)
    sds = [pt.sqrt(sum(e**2 for e in row)) for row in rows]
    unit = [[e / s for e in row] for row, s in zip(rows, sds, strict=True)]
    return pt.stack(sds), small.stack(unit)


def lkj_logp(corr_logdet, n: int, eta: float):
    """LKJ(eta) log-density of an ``n x n`` correlation matrix from its log-determinant."""
    k = np.arange(1, n)
    a = eta + (n - k - 1) / 2
    log_c = np.sum((2 * eta - 2 + n - k) * (n - k) * np.log(2) + (n - k) * betaln(a, a))
    return (eta - 1) * corr_logdet - log_c
