"""Cross-products of the data, computed once: all the collapsed likelihood reads of the rows.

One grouping factor: global ``X'X``, ``X'y``, ``y'y`` and per level ``Z_j'Z_j``, ``Z_j'X_j``,
``Z_j'y_j`` (:class:`Stats`). A factor nested in it (each inner level within one outer level,
``(1 | a/b)``) adds per *inner* level ``W_k'W_k``, ``W_k'Z_k``, ``W_k'X_k``, ``W_k'y_k`` and
the outer level of each inner level (:class:`Inner`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pytensor

__all__ = [
    "RESPONSE_PARTS",
    "Inner",
    "Stats",
    "level_products",
    "nesting_parent",
    "shape_of",
    "sufficient_stats",
]


@dataclass(frozen=True)
class Inner:
    """Cross-products of a nested factor's columns ``W``, per inner level ``k``."""

    parent: np.ndarray  # (K,) the outer level of each inner level
    WtW: np.ndarray  # (K, r, r)
    WtZ: np.ndarray  # (K, r, q)
    WtX: np.ndarray  # (K, r, p)
    Wty: Any  # (K, r); a shared variable once :meth:`Stats.shared`


@dataclass(frozen=True)
class Stats:
    """Cross-products of the data: global for ``X``/``y``, per level for ``Z`` (and ``W``)."""

    n: int
    yty: Any  # float
    Xty: Any  # (p,)
    XtX: np.ndarray  # (p, p)
    Zty: Any  # (J, q)
    ZtX: np.ndarray  # (J, q, p)
    ZtZ: np.ndarray  # (J, q, q)
    inner: Inner | None = None  # a factor nested in this one, or None

    def shared(self, prefix: str) -> Stats:
        """The same cross-products as named shared variables of fixed shape.

        Every field (:meth:`names`) becomes ``{prefix}__{name}`` (``{prefix}__yty`` ...), so one
        compiled graph serves a new response (new ``yty, Xty, Zty``, and the inner ``W_Wty``:
        ``HierModel.response_data``) or a subset of the rows (every field: the
        :func:`sufficient_stats` of the rows kept, as k-fold needs). The inner levels' parents
        stay constant: they come from the full data.
        """
        new = {k: pytensor.shared(v, name=f"{prefix}__{k}", shape=v.shape)
               for k, v in self.values().items()}  # fmt: skip
        return self._with(new)

    def names(self) -> list[str]:
        """The fields :meth:`shared` shares: ``n, yty, Xty, XtX, Zty, ZtX, ZtZ`` (+ ``W_...``).

        A nested factor adds its ``W_WtW, W_WtZ, W_WtX, W_Wty``.
        """
        return list(self._flat())

    def values(self) -> dict[str, np.ndarray]:
        """Every shared field as an array, by :meth:`names` (what the shared variables take)."""
        return {k: np.asarray(v, dtype=float) for k, v in self._flat().items()}

    def response_vars(self) -> dict[str, Any]:
        """The shared variables of :meth:`shared`'s result, by name."""
        return {v.name: v for v in self._flat().values() if getattr(v, "name", None)}

    def _flat(self) -> dict[str, Any]:
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "inner"}
        if self.inner is not None:
            flat |= {f"W_{k}": getattr(self.inner, k) for k in _INNER_SHARED}
        return flat

    def _with(self, flat: dict[str, Any]) -> Stats:
        inner = self.inner
        if inner is not None:
            inner = replace(inner, **{k: flat[f"W_{k}"] for k in _INNER_SHARED})
        return replace(self, **{k: v for k, v in flat.items() if not k.startswith("W_")},
                       inner=inner)  # fmt: skip

    def transformed(self, T: np.ndarray) -> Stats:
        """The cross-products of the design ``X @ T`` (e.g. predictors centered)."""
        inner = None if self.inner is None else replace(self.inner, WtX=self.inner.WtX @ T)
        return Stats(self.n, self.yty, T.T @ self.Xty, T.T @ self.XtX @ T, self.Zty,
                     self.ZtX @ T, self.ZtZ, inner)  # fmt: skip


_INNER_SHARED = ("WtW", "WtZ", "WtX", "Wty")
#: the fields (:meth:`Stats.names`) that depend on the response: a new ``y`` changes only these
RESPONSE_PARTS = ("yty", "Xty", "Zty", "W_Wty")


def shape_of(value: Any) -> tuple[int, ...]:
    """The shape of an array, or the static shape of a shared variable (:meth:`Stats.shared`)."""
    return tuple(value.type.shape) if hasattr(value, "type") else np.shape(value)


def level_products(codes: np.ndarray, n_levels: int, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``sum_{i in level j} A_i' B_i`` per level, ``(n_levels, a, b)``: a bincount per cell."""
    out = np.zeros((n_levels, A.shape[1], B.shape[1]))
    for a in range(A.shape[1]):
        for b in range(B.shape[1]):
            out[:, a, b] = np.bincount(codes, weights=A[:, a] * B[:, b], minlength=n_levels)
    return out


def _columns(values, n: int) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(n, -1)


def sufficient_stats(
    y: np.ndarray, X: np.ndarray, codes: np.ndarray, Z: np.ndarray, n_levels: int,
    inner: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Stats:  # fmt: skip
    """Cross-products, one ``bincount`` per pair of columns (O(rows x q x (p + q))).

    ``inner``: ``(codes, W, parent)`` of a factor nested in ``codes``' (``parent[k]`` is the
    outer level of inner level ``k``; :func:`nesting_parent`).
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    X, Z, Y = _columns(X, n), _columns(Z, n), y[:, None]
    ZtZ = level_products(codes, n_levels, Z, Z)
    Zty = level_products(codes, n_levels, Z, Y)[..., 0]
    ZtX = level_products(codes, n_levels, Z, X)
    stats = Stats(n, float(y @ y), X.T @ y, X.T @ X, Zty, ZtX, 0.5 * (ZtZ + np.swapaxes(ZtZ, 1, 2)))
    if inner is None:
        return stats
    c_in, W, parent = inner
    W, K = _columns(W, n), len(parent)
    WtW = level_products(c_in, K, W, W)
    parts = Inner(np.asarray(parent, dtype=np.int64), 0.5 * (WtW + np.swapaxes(WtW, 1, 2)),
                  level_products(c_in, K, W, Z), level_products(c_in, K, W, X),
                  level_products(c_in, K, W, Y)[..., 0])  # fmt: skip
    return replace(stats, inner=parts)


def nesting_parent(inner: np.ndarray, outer: np.ndarray, n_inner: int) -> np.ndarray | None:
    """The outer level of each inner level if every inner level lies in one outer level.

    ``inner``, ``outer``: level codes per row. None when some inner level spans two outer
    levels (crossed factors), or some inner level has no rows.
    """
    inner, outer = np.asarray(inner, dtype=np.int64), np.asarray(outer, dtype=np.int64)
    parent = np.full(n_inner, -1, dtype=np.int64)
    parent[inner] = outer
    if np.any(parent < 0) or np.any(parent[inner] != outer):
        return None
    return parent
