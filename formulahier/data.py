"""Data preparation: accept several table types, check columns, drop incomplete rows, order levels.

The user's object is never modified: everything here works on a copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from . import checks
from .errors import DataError, warn
from .formula import check_columns
from .spec import ModelSpec

__all__ = ["natural_key", "prepare_data", "to_pandas", "to_table"]


def to_pandas(data) -> pd.DataFrame:
    """Return a pandas copy of a pandas/polars DataFrame or a dict of arrays."""
    if isinstance(data, pd.DataFrame):
        return data.copy()
    if hasattr(data, "to_pandas") and hasattr(data, "columns"):  # polars, pyarrow tables
        try:
            frame = data.to_pandas()
        except Exception as exc:  # noqa: BLE001 - pyarrow/polars types pandas cannot hold
            what = type(data).__name__
            raise DataError(f"Could not convert the {what} to pandas: {exc}") from None
        if isinstance(frame, pd.DataFrame):
            return frame
    if isinstance(data, Mapping):
        try:
            return pd.DataFrame({k: np.asarray(v) for k, v in data.items()})
        except ValueError as exc:
            raise DataError(f"Could not make a table of the dict: {exc}") from None
    raise DataError(
        f"`data` must be a pandas or polars DataFrame or a dict of arrays, got "
        f"{type(data).__name__}."
    )


def to_table(data, what: str = "The data") -> pd.DataFrame:
    """A pandas copy of ``data`` (:func:`to_pandas`) with text column names, each once, and rows.

    ``what`` names the table in the message for one without rows (``"`newdata`"``).
    """
    frame = to_pandas(data)
    frame.columns = [str(c) for c in frame.columns]
    checks.check_columns_unique(frame)
    if frame.empty:
        raise DataError(f"{what} has no rows.")
    return frame


def natural_key(value) -> tuple:
    """Sort key putting ``s2`` before ``s10`` (numbers inside strings compared as numbers)."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _used_columns(spec: ModelSpec, columns) -> list[str]:
    names = spec.variables()
    return [c for c in columns if c in names]


def prepare_data(data, spec: ModelSpec) -> tuple[pd.DataFrame, int]:
    """Copy, check and clean the data for ``spec``.

    Returns
    -------
    frame : pandas.DataFrame
        Rows with missing values in used columns dropped (lme4's ``na.omit``), grouping factors
        as ordered categoricals in natural order (``s1, s2, s10``); a column that already is a
        categorical keeps its own level order.
    dropped : int
        Number of rows dropped.

    """
    frame = to_table(data)
    check_columns(spec, frame.columns)
    used = _used_columns(spec, frame.columns)
    checks.check_used_columns(frame, used)  # inf, complex
    incomplete = frame[used].isna().any(axis=1)
    dropped = int(incomplete.sum())
    if dropped:
        warn(
            f"Dropped {dropped} of {len(frame)} rows with missing values in "
            f"{', '.join(c for c in used if frame[c].isna().any())} (lme4's na.omit).",
        )
        frame = frame.loc[~incomplete]
    if frame.empty:
        raise DataError("No rows are left after dropping rows with missing values.")
    # the response against the family (messages name rows by the data's own row labels)
    frame = checks.check_response(frame, spec.response, spec.family)
    if dropped:
        frame = frame.reset_index(drop=True)
    for factor in spec.factors:
        for col in factor.split(":"):
            series = frame[col]
            # formulae keeps the level order of *ordered* categoricals only
            if isinstance(series.dtype, pd.CategoricalDtype):
                frame[col] = series.cat.remove_unused_categories().cat.as_ordered()
                continue
            levels = sorted(series.unique(), key=natural_key)
            frame[col] = pd.Categorical(series, categories=levels, ordered=True)
        observed = frame[factor.split(":")].drop_duplicates()
        if len(observed) < 2:
            raise DataError(
                f"The grouping factor '{factor}' has {len(observed)} level in the data; a "
                "group-level effect needs at least two levels. Drop the term or check the data."
            )
    return frame, dropped
