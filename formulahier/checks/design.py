"""Checks of the model as Bambi built it: non-finite designs, collinear predictors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .data import rows_text

__all__ = ["check_design"]



def _labels(common) -> list[str]:
    out = []
    for name, term in common.terms.items():
        width = common.slices[name].stop - common.slices[name].start
        labels = list(getattr(term, "labels", None) or [])
        out += labels if len(labels) == width else [name] * width
    return out


def check_design(bambi_model: Any, frame: pd.DataFrame, blocks: Sequence[Any] = ()) -> None:
    """Non-finite values in the response, the designs and the group-level columns; collinearity.

    Raises
    ------
    DataError
        ``log(x)`` of a non-positive ``x`` (and other transforms giving NaN or infinity),
        naming the term and the rows; population-level predictors that are linear combinations
        of each other (a rank-deficient design), naming them; group-level columns of the
        planned ``blocks`` that are not finite.
    """
    index = frame.index
    for cname, comp in bambi_model.conditional_parameters.items():
        design = comp.component.design if hasattr(comp, "component") else comp.design
        response = getattr(design, "response", None)
        if response is not None:
            values = np.asarray(response)
            if values.dtype.kind in "fc":
                bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
                if bad.any():
                    raise DataError(
                        f"The response '{response.name}' is infinite or NaN in "
                        f"{rows_text(index[bad])} (after its transformation, e.g. log of values "
                        "<= 0); drop or fix those rows."
                    )
        common = getattr(design, "common", None)
        if common is None:
            continue
        X = np.asarray(common.design_matrix, dtype=float)
        labels = _labels(common)
        bad = ~np.isfinite(X)
        if bad.any():
            col = int(np.argmax(bad.any(axis=0)))
            what = f"of {cname} " if cname != bambi_model.family.likelihood.parent else ""
            raise DataError(
                f"The population-level term {what}'{labels[col]}' is infinite or NaN in "
                f"{rows_text(index[bad[:, col]])} (e.g. log() of values <= 0, or 1/0); transform "
                "the column so that it is finite, or drop those rows."
            )
        _check_rank(X, labels, cname, bambi_model.family.likelihood.parent)
    for info in blocks:
        bad = ~np.isfinite(info.data.X)
        if bad.any():
            col = int(np.argmax(bad.any(axis=0)))
            raise DataError(
                f"The group-level effect '{info.labels[col]}' of {info.block.source} is "
                f"infinite or NaN in {rows_text(index[bad[:, col]])}; transform the column so "
                "that it is finite, or drop those rows."
            )


_RANK_TOL = 1e-7  # R's lm() tolerance: a column whose residual is below it is aliased
_SAMPLE_ROWS = 20_000  # above this (and 20 x columns), the test runs on a sample of rows


def _first_aliased(A: np.ndarray) -> tuple[int, list[int], np.ndarray] | None:
    """The first column of ``A`` (in order) spanned by the columns before it.

    Returns ``(column, earlier columns used, their coefficients)`` or ``None`` (full rank).
    Gram-Schmidt (twice, for stability) on the ``cols x cols`` triangle of a QR of ``A``: the
    triangle has the inner products of ``A``'s columns, so the answer is ``A``'s.
    """
    R = np.linalg.qr(A, mode="r") if A.shape[0] > A.shape[1] else A
    basis = np.zeros((R.shape[0], 0))
    tri = np.zeros((0, 0))  # R[:, kept] = basis @ tri
    kept: list[int] = []
    for j in range(R.shape[1]):
        a = R[:, j]
        h = basis.T @ a
        r = a - basis @ h
        h2 = basis.T @ r
        r, h = r - basis @ h2, h + h2
        size = np.linalg.norm(r)
        if size <= _RANK_TOL * max(np.linalg.norm(a), np.finfo(float).tiny):
            coef = np.linalg.solve(tri, h) if kept else np.zeros(0)
            return j, kept, coef
        basis = np.column_stack([basis, r / size])
        tri = np.block([[tri, h[:, None]], [np.zeros((1, len(kept))), np.array([[size]])]])
        kept.append(j)
    return None


def _check_rank(X: np.ndarray, labels: list[str], cname: str, parent: str) -> None:
    """Refuse a rank-deficient population design.

    Time ``O(rows x cols^2)`` up to 20,000 rows; above, the test runs on a random sample of rows
    (a deficient design is deficient on every sample; the sample holds a few rows where each
    column is not zero, so rare levels are in it) and a column found aliased there is
    confirmed on all rows in ``O(rows x cols)``; only if the sample misled are all rows used.
    """
    n, p = X.shape
    if p == 0:
        return
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    zero = norms <= 0
    if zero.any():
        raise DataError(
            f"The population-level column '{labels[int(np.argmax(zero))]}' is all zeros in "
            "the data used; it has no effect to estimate. Remove the term."
        )
    if n < p:
        raise DataError(
            f"The model has {p} population-level coefficients but only {n} rows of data; "
            "use fewer terms or more data."
        )
    Xn = X / norms  # unit columns: scale does not decide
    m = max(_SAMPLE_ROWS, 20 * p)
    if n > m:
        rows = np.random.default_rng(0).choice(n, m, replace=False)
        # and a few rows where each column is not zero: rare levels of a factor are in too
        rows = np.unique(np.concatenate([rows, *(np.flatnonzero(c)[:20] for c in X.T)]))
        found = _first_aliased(Xn[rows])
        if found is not None:
            j, kept, coef = found
            resid = Xn[:, j] - (Xn[:, kept] @ coef if kept else 0.0)
            if np.linalg.norm(resid) > 1e3 * _RANK_TOL:  # not on all rows: decide on all rows
                found = _first_aliased(Xn)
    else:
        found = _first_aliased(Xn)
    if found is None:
        return
    j, kept, coef = found
    partners = [labels[k] for k, c in zip(kept, coef, strict=True) if abs(c) > 1e-9]
    what = "" if cname == parent else f" (in the formula of {cname})"
    raise DataError(
        f"The population-level predictors{what} are collinear: '{labels[j]}' is a linear "
        f"combination of {', '.join(map(repr, partners)) or 'the other columns'} in the "
        "data used (a rank-deficient fixed-effect model matrix; lme4 would drop the "
        "column). Remove one of them, or check for duplicated or constant columns and "
        "for empty cells of an interaction."
    )
