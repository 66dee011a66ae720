"""Checks of the data table: unique column names, finite and real values in the used columns."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["check_columns_unique", "check_used_columns", "rows_text"]



def rows_text(labels: Iterable[object], limit: int = 8) -> str:
    """``"the rows with index 3, 7, ..."`` for messages naming rows by the data's labels."""
    texts = [str(i) for i in labels]
    shown = ", ".join(texts[:limit]) + (f", ... ({len(texts)} rows)" if len(texts) > limit else "")
    return f"the row{'s' if len(texts) > 1 else ''} with index {shown}"


def check_columns_unique(frame: pd.DataFrame) -> None:
    """Refuse a table with two columns of the same name (which one would the formula mean?)."""
    dup = frame.columns[frame.columns.duplicated()]
    if len(dup):
        raise DataError(
            f"The data has more than one column named {', '.join(map(repr, dict.fromkeys(dup)))}; "
            "rename them so that every column name is unique."
        )


def check_used_columns(frame: pd.DataFrame, used: Iterable[str]) -> None:
    """Infinite values and complex numbers in the columns the model uses.

    Raises
    ------
    DataError
        Naming the column and the rows (by the data's own row labels).
    """
    for col in used:
        values = frame[col]
        if (
            pd.api.types.is_complex_dtype(values.dtype)
            or (
                values.dtype == object  # a sample: complex numbers among Python objects
                and values.iloc[:1000].map(lambda v: isinstance(v, complex)).any()
            )
        ):
            raise DataError(
                f"The column '{col}' holds complex numbers; the model needs real numbers. "
                "Use the real part, the modulus or the angle (np.real, np.abs, np.angle)."
            )
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype
        ):
            bad = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                raise DataError(
                    f"The column '{col}' is infinite in {rows_text(frame.index[bad])}; drop or fix "
                    "those rows (only missing values are dropped automatically)."
                )
