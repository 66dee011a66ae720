"""Group-level design from integer codes: what each block's effects multiply, row by row.

A block ``(1 + x | g)`` needs two things from the data, and nothing of size rows x levels:

* ``codes``: the level of ``g`` of each row as an integer (``int32``, one per row), and the
  level labels in order;
* ``X``: the block's columns (``rows x effects``): ``1`` for the intercept, the values of
  ``x``, the coded columns of a categorical term.

The linear predictor then gets ``sum_k u[codes, k] * X[:, k]`` (a gather). Memory is
O(rows x effects + levels x effects) whatever the number of levels. The columns are evaluated
with formulae's public ``design_matrices`` on the block's own expression (so ``C(f)``,
``scale(x)`` or ``x:z`` inside a bar are coded exactly as in the population part), and
re-evaluated on new data for predictions with ``evaluate_new_data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import formulae as fm
import numpy as np
import pandas as pd

from .errors import DataError
from .spec import GroupBlock, effect_label

__all__ = ["BlockData", "Column", "GroupTerm", "block_data", "factor_codes", "factor_labels"]


@dataclass(frozen=True)
class Column:
    """One effect column of a block: its term, label, and level of a multi-column term."""

    term: str
    label: str
    level: str | None = None
    index: int | None = None  # position of ``level`` within the term's columns


@dataclass
class GroupTerm:
    """One group-level term as Bambi names it (``"x|g"``), with its prior.

    ``levels`` are the expression's column labels for a multi-column term (the levels of a
    categorical ``f`` in ``(f | g)``), else ``None``. ``prior`` is a :class:`bambi.Prior`
    ``Normal(0, sigma=<hyperprior>)`` (set when the model is made, from Bambi's scaled
    default or the user's priors).
    """

    name: str
    expr: str
    factor: str
    groups: tuple[str, ...]
    levels: tuple[str, ...] | None = None
    prior: Any = None
    alias: str | None = None  # Bambi's term builder reads these two
    hyperprior_alias: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """lme4/brms label of the effect (``Intercept``, ``x``)."""
        return effect_label(self.expr)

    @property
    def width(self) -> int:
        """Number of columns of the term."""
        return 1 if self.levels is None else len(self.levels)

    @property
    def factor_dim(self) -> str:
        """Bambi's dim of the levels: ``g__factor_dim``."""
        return f"{self.factor}__factor_dim"

    @property
    def expr_dim(self) -> str | None:
        """Bambi's dim of the columns of a multi-column term (``f__expr_dim``), else None."""
        return None if self.levels is None else f"{self.expr}__expr_dim"

    @property
    def coords(self) -> dict[str, list]:
        """Dims of the term's variable (levels, then columns) with their values."""
        out: dict[str, list] = {self.factor_dim: list(self.groups)}
        if self.levels is not None:
            out[self.expr_dim] = list(self.levels)  # type: ignore[index]
        return out


@dataclass
class BlockData:
    """The data side of one block: level codes, level labels, columns and their terms."""

    block: GroupBlock
    codes: np.ndarray  # (rows,) int32
    groups: tuple[str, ...]  # level labels, in code order
    X: np.ndarray  # (rows, effects) float64
    terms: dict[str, GroupTerm]  # Bambi term name -> GroupTerm
    columns: list[Column] = field(default_factory=list)
    design: Any = None  # formulae's common design of the block expression (None: intercept)

    @property
    def labels(self) -> list[str]:
        """One label per column, as in ``sd(...)`` and ``cor(...)`` rows."""
        return [c.label for c in self.columns]

    @property
    def size(self) -> int:
        """Number of columns (effects)."""
        return len(self.columns)

    def columns_for(self, frame: pd.DataFrame) -> np.ndarray:
        """The block's columns evaluated on (new) data, ``(rows, effects)``."""
        if self.design is None:
            return np.ones((len(frame), 1))
        try:
            values = self.design.common.evaluate_new_data(frame).design_matrix
        except Exception as exc:  # formulae raises plain errors on unseen categories etc.
            raise DataError(
                f"Could not evaluate the group-level terms of {self.block.source or 'a block'} "
                f"on the new data: {exc}"
            ) from None
        return np.asarray(values, dtype=float).reshape(len(frame), -1)


def factor_labels(frame: pd.DataFrame, factor: str) -> np.ndarray:
    """Labels of ``factor`` (``"a"`` or ``"a:b"``) per row, spelled as the level labels."""
    out: np.ndarray = np.empty(0, dtype=object)
    first = True
    for col in factor.split(":"):
        series = frame[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(series.cat.categories.dtype)
        if pd.api.types.is_float_dtype(series.dtype) and np.all(np.mod(series, 1) == 0):
            series = series.astype("int64")  # 308.0 in newdata is the level 308
        text = series.astype(str).to_numpy(dtype=object)
        out = text if first else out + ":" + text
        first = False
    return out


def factor_codes(frame: pd.DataFrame, factor: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer level of each row and the level labels of a grouping factor.

    The columns of ``factor`` are ordered categoricals (made so by
    :func:`formulahier.data.prepare_data`); a single column keeps its category order, an
    interaction ``a:b`` (nested or crossed-within designs) gets the observed combinations in
    ``a``-major order, as lme4 does. Nothing of size rows x levels is made.
    """
    parts = [frame[c] for c in factor.split(":")]
    cats = [pd.Categorical(p) if not isinstance(p.dtype, pd.CategoricalDtype) else p.array
            for p in parts]  # fmt: skip
    if len(cats) == 1:
        cat = cats[0]
        labels = tuple(str(c) for c in _plain(cat.categories))
        return np.asarray(cat.codes, dtype=np.int32), labels
    combined = np.zeros(len(frame), dtype=np.int64)
    for cat in cats:
        combined = combined * len(cat.categories) + np.asarray(cat.codes, dtype=np.int64)
    observed, codes = np.unique(combined, return_inverse=True)
    names: list[str] = []
    for value in observed:
        pieces = []
        for cat in reversed(cats):
            n = len(cat.categories)
            pieces.append(str(_plain(cat.categories)[int(value % n)]))
            value //= n
        names.append(":".join(reversed(pieces)))
    return codes.astype(np.int32), tuple(names)


def _plain(categories: pd.Index) -> list:
    """Category values as Python scalars (``308``, not ``np.int64(308)``)."""
    return [c.item() if hasattr(c, "item") else c for c in categories]


def _expr_design(block: GroupBlock, frame: pd.DataFrame, namespace: Mapping[str, Any]):
    slopes = [t for t in block.terms if t != "1"]
    if not slopes:
        return None
    rhs = " + ".join(["1" if block.has_intercept else "0", *slopes])
    return fm.design_matrices(rhs, frame, na_action="error", extra_namespace=dict(namespace))


def block_data(block: GroupBlock, frame: pd.DataFrame, namespace: Mapping[str, Any]) -> BlockData:
    """Evaluate one block on the model's (cleaned) data.

    ``namespace``: the functions the block's expression may call (``log()``, ``scale()``...),
    those Bambi gives formulae (``backend.seam.formula_namespace``).
    """
    codes, groups = factor_codes(frame, block.factor)
    design = _expr_design(block, frame, namespace)
    if design is None:
        X = np.ones((len(frame), 1))
        slices = {"Intercept": slice(0, 1)}
        fterms: dict = {}
    else:
        X = np.asarray(design.common.design_matrix, dtype=float).reshape(len(frame), -1)
        slices, fterms = design.common.slices, design.common.terms
    terms, columns = {}, []
    for expr, name in zip(block.terms, block.bambi_terms, strict=True):
        key = "Intercept" if expr == "1" else expr
        width = slices[key].stop - slices[key].start
        levels = None
        if width > 1 or (key in fterms and _categorical(fterms[key])):
            levels = _term_levels(fterms[key], width)
        term = GroupTerm(name, expr, block.factor, groups, levels)
        terms[name] = term
        if levels is None:
            columns.append(Column(name, term.label))
        else:
            columns.extend(
                Column(name, f"{term.label}[{lv}]", lv, i) for i, lv in enumerate(levels)
            )
    return BlockData(block, codes, groups, np.ascontiguousarray(X), terms, columns, design)


def _categorical(fterm) -> bool:
    kinds = [getattr(c, "kind", None) for c in getattr(fterm, "components", [])]
    return "categoric" in kinds


def _term_levels(fterm, width: int) -> tuple[str, ...]:
    levels = getattr(fterm, "levels", None)
    if levels is not None and len(levels) == width:
        return tuple(str(v) for v in levels)
    return tuple(str(i) for i in range(width))
