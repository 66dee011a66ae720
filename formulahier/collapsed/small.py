"""Cholesky factor, triangular solves, products and log-determinants of small matrices, unrolled.

The collapsed likelihood's matrices have sizes fixed when the graph is built: a level's ``q``
group columns, the ``p`` population effects. Written entry by entry (one expression per entry,
batched over the leading dimensions), their algebra is elementwise: PyTensor fuses it, its
gradient is elementwise too, and the compiled graph calls no LAPACK or BLAS routine (each
distinct one costs a numba object-mode compile in every process, and a call's checks and
workspace cost more than a 2 x 2 block's arithmetic). Above :data:`MAX_UNROLLED` rows the
functions fall back to :mod:`pytensor.tensor.linalg` (the unrolled graph grows as ``n^3``).

A matrix is a tensor whose last two dimensions have static lengths, a 2-D numpy array (a
constant), or its *entries*: ``rows[i][j]``, each a tensor of the leading dimensions or a float.
A tensor made here (:func:`stack`) remembers its entries, so that the next function here reads
them instead of indexing the tensor (whose gradient would be one ``IncSubtensor`` per entry).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

__all__ = ["MAX_UNROLLED", "cholesky", "entries", "inv_lower", "logdet_chol", "matmul",
           "matvec", "matrix_shape", "solve_lower", "solve_lower_t", "stack", "transpose",
           "unrolled"]  # fmt: skip

#: the largest matrix written out entry by entry: a level's group columns are rarely more
#: (sizes 1-4 are tested and measured; larger ones were not timed against LAPACK)
MAX_UNROLLED = 4

Entries = list[list[Any]]


def matrix_shape(A) -> tuple[int | None, int | None]:
    """The static lengths of ``A``'s last two dimensions (None where unknown)."""
    if isinstance(A, np.ndarray):
        return A.shape[-2], A.shape[-1]
    A = pt.as_tensor_variable(A)
    if A.ndim < 2:
        return None, None
    return A.type.shape[-2], A.type.shape[-1]


def unrolled(A) -> bool:
    """Whether ``A``'s algebra is written out entry by entry here (both sizes static, small)."""
    n, m = matrix_shape(A)
    return n is not None and m is not None and max(n, m) <= MAX_UNROLLED


def entries(A) -> Entries:
    """``A``'s entries ``rows[i][j]``; those :func:`stack` was given if it made ``A``."""
    if isinstance(A, np.ndarray):
        return [[float(v) for v in row] for row in A]
    memo = getattr(getattr(A, "tag", None), "small_entries", None)
    if memo is not None:
        return memo
    n, m = matrix_shape(A)
    assert n is not None and m is not None
    return [[A[..., i, j] for j in range(m)] for i in range(n)]


def stack(rows: Entries):
    """The tensor ``(..., n, m)`` of ``rows[i][j]``, which remembers them (:func:`entries`)."""
    flat = [e for row in rows for e in row]
    tensors = pt.broadcast_arrays(*[pt.as_tensor_variable(e, dtype="float64") for e in flat])
    m = len(rows[0])
    out = pt.stack([pt.stack(tensors[i * m : (i + 1) * m], axis=-1) for i in range(len(rows))],
                   axis=-2)  # fmt: skip
    out.tag.small_entries = rows
    return out


def transpose(A):
    """``A`` with its last two dimensions swapped."""
    if unrolled(A):
        return stack([list(col) for col in zip(*entries(A), strict=True)])
    return pt.swapaxes(A, -1, -2)


def _zero(e) -> bool:
    return isinstance(e, float) and e == 0.0


def _dot(terms) -> Any:
    """``sum a * b`` over ``(a, b)`` pairs, skipping constant zeros (0.0 if nothing is left)."""
    total: Any = 0.0
    for a, b in terms:
        if _zero(a) or _zero(b):
            continue
        term = a * b
        total = term if _zero(total) else total + term
    return total


def matmul(A, B):
    """``A @ B``, batched over the leading dimensions; entry by entry when both are small.

    Otherwise as a sum of elementwise products (PyTensor's ``Dot`` calls BLAS: one numba
    object-mode compile per kernel and process).
    """
    if unrolled(A) and unrolled(B):
        a, b = entries(A), entries(B)
        return stack([[_dot((a[i][k], b[k][j]) for k in range(len(b)))
                       for j in range(len(b[0]))] for i in range(len(a))])  # fmt: skip
    A, B = pt.as_tensor_variable(A), pt.as_tensor_variable(B)
    return pt.sum(A[..., :, :, None] * B[..., None, :, :], axis=-2)


def matvec(A, v):
    """``A @ v`` (``A``: ``(..., n, k)``, ``v``: ``(..., k)``) as a sum of elementwise products."""
    return pt.sum(pt.as_tensor_variable(A) * pt.as_tensor_variable(v)[..., None, :], axis=-1)


def _chol_entries(a: Entries) -> Entries:
    n = len(a)
    L: Entries = [[0.0] * n for _ in range(n)]
    for j in range(n):
        L[j][j] = pt.sqrt(a[j][j] - _dot((L[j][k], L[j][k]) for k in range(j)))  # NaN: not PD
        for i in range(j + 1, n):
            L[i][j] = (a[i][j] - _dot((L[i][k], L[j][k]) for k in range(j))) / L[j][j]
    return L


def cholesky(A):
    """Lower Cholesky factor of the symmetric positive definite ``A`` (``(..., n, n)``).

    Reads ``A``'s lower triangle only; NaN where ``A`` is not positive definite.
    """
    if not unrolled(A):
        return pt.linalg.cholesky(A)
    return stack(_chol_entries(entries(A)))


def _rows(B, n: int, b_ndim: int) -> list[Any]:
    if b_ndim == 2 and unrolled(B):
        return entries(B)
    return [B[..., i] if b_ndim == 1 else B[..., i, :] for i in range(n)]


def _substitute(L: Entries, b: list[Any], transposed: bool, vector_rows: bool) -> list[Any]:
    """``x`` with ``L x = b`` (``L' x = b`` if ``transposed``); rows of ``b`` may be vectors."""
    n = len(L)

    def entry(i, j):
        e = L[j][i] if transposed else L[i][j]
        return e[..., None] if vector_rows and not isinstance(e, float) else e

    x: dict[int, Any] = {}
    for i in range(n - 1, -1, -1) if transposed else range(n):
        x[i] = (b[i] - _dot((entry(i, k), x[k]) for k in x)) / entry(i, i)
    return [x[i] for i in range(n)]


def _solve(L, B, b_ndim: int, transposed: bool):
    n = len(entries(L))
    if b_ndim == 2 and unrolled(B):  # entry by entry: rows of scalars
        x = [_substitute(entries(L), list(col), transposed, False)
             for col in zip(*entries(B), strict=True)]  # fmt: skip
        return stack([list(row) for row in zip(*x, strict=True)])
    x = _substitute(entries(L), _rows(B, n, b_ndim), transposed, vector_rows=b_ndim == 2)
    return pt.stack(x, axis=-1 if b_ndim == 1 else -2)


def solve_lower(L, B, b_ndim: int = 2):
    """``L^-1 B`` for lower-triangular ``L`` (``(..., n, n)``).

    ``B``: ``(..., n, m)``, or ``(..., n)`` with ``b_ndim=1`` (as
    :func:`pytensor.tensor.linalg.solve_triangular`'s ``b_ndim``).
    """
    if not unrolled(L):
        return pt.linalg.solve_triangular(L, B, lower=True, b_ndim=b_ndim)
    return _solve(L, B, b_ndim, transposed=False)


def solve_lower_t(L, B, b_ndim: int = 2):
    """``L^-T B`` for lower-triangular ``L``: back substitution on its transpose."""
    if not unrolled(L):
        return pt.linalg.solve_triangular(pt.swapaxes(L, -1, -2), B, lower=False, b_ndim=b_ndim)
    return _solve(L, B, b_ndim, transposed=True)


def inv_lower(L):
    """``L^-1`` for lower-triangular ``L`` (``(..., n, n)``); lower-triangular too."""
    if not unrolled(L):
        n = matrix_shape(L)[0]
        eye = pt.eye(pt.as_tensor_variable(L).shape[-1]) if n is None else np.eye(n)
        return pt.linalg.solve_triangular(L, eye, lower=True)
    el = entries(L)
    n = len(el)
    inv: Entries = [[0.0] * n for _ in range(n)]
    for i in range(n):
        inv[i][i] = 1.0 / el[i][i]
        for j in range(i):
            inv[i][j] = -_dot((el[i][k], inv[k][j]) for k in range(j, i)) * inv[i][i]
    return stack(inv)


def logdet_chol(L, total: bool = True):
    """``log|L L'|`` = ``2 sum log diag L``.

    Summed over the leading dimensions (a scalar), or per matrix (``(...)``) with
    ``total=False``.
    """
    if not unrolled(L):
        per = 2 * pt.sum(pt.log(pt.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    else:
        el = entries(L)
        per = 2 * sum(pt.log(el[i][i]) for i in range(len(el)))
    return pt.sum(per) if total else per
