"""The data a fit was made on as an xarray Dataset (one variable per column) and back."""

from __future__ import annotations

import json
from collections.abc import Collection

import pandas as pd
import xarray as xr

from ..errors import DataError

__all__ = ["data_to_dataset", "dataset_to_data"]


def data_to_dataset(frame: pd.DataFrame, required: Collection[str] | None = None) -> xr.Dataset:
    """Columns as variables; a column of another type is skipped unless in ``required``."""
    variables, kinds = {}, {}
    for i, col in enumerate(frame.columns):
        series = frame[col]
        if required is not None and col not in required and not _storable(series):
            continue
        key = f"c{i}"
        if isinstance(series.dtype, pd.CategoricalDtype):
            cats = series.cat.categories
            variables[key] = ("row", series.cat.codes.to_numpy(dtype="int64"))
            kinds[key] = {
                "name": col,
                "kind": "categorical",
                "categories": [_json_scalar(c) for c in cats],
                "ordered": bool(series.cat.ordered),
            }
        elif series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            values = series.to_numpy()
            if not all(isinstance(v, str) for v in values):
                raise DataError(
                    f"Column '{col}' mixes strings and other values; it cannot be saved. "
                    "Convert it to one type before fitting."
                )
            variables[key] = ("row", values.astype(str))
            kinds[key] = {"name": col, "kind": "string"}
        elif pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(
            series.dtype
        ):
            variables[key] = ("row", series.to_numpy())
            kinds[key] = {"name": col, "kind": "numeric"}
        else:
            raise DataError(
                f"Column '{col}' has dtype {series.dtype}, which cannot be saved; convert it "
                "to numbers, strings or a categorical before fitting."
            )
    ds = xr.Dataset(variables)
    ds.attrs["columns"] = json.dumps(kinds)
    if isinstance(frame.attrs.get("name"), str):  # the summary's "Data: <name> (...)"
        ds.attrs["data_name"] = frame.attrs["name"]
    return ds


def _storable(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return True
    if series.dtype == object:
        return all(isinstance(v, str) for v in series.to_numpy())
    return (
        pd.api.types.is_string_dtype(series.dtype)
        or pd.api.types.is_bool_dtype(series.dtype)
        or pd.api.types.is_numeric_dtype(series.dtype)
    )


def _json_scalar(value: object) -> object:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def dataset_to_data(ds: xr.Dataset) -> pd.DataFrame:
    """Inverse of :func:`data_to_dataset`."""
    kinds = json.loads(ds.attrs["columns"])
    out = {}
    for key, info in kinds.items():
        values = ds[key].to_numpy()
        if info["kind"] == "categorical":
            out[info["name"]] = pd.Categorical.from_codes(
                values, categories=info["categories"], ordered=info["ordered"]
            )
        elif info["kind"] == "string":
            out[info["name"]] = values.astype(object)
        else:
            out[info["name"]] = values
    frame = pd.DataFrame(out)
    if "data_name" in ds.attrs:
        frame.attrs["name"] = str(ds.attrs["data_name"])
    return frame
