"""Saving and reading fits: one netCDF file, the posterior plus the model spec as data.

The file is an xarray DataTree written with h5netcdf. It holds the inference groups of the fit
(``posterior``, ``sample_stats``, ``observed_data``, ...), the cleaned data the model was fitted
on (group ``formulahier_data``, one variable per column) and, in the root attributes, the
formula, the model options (priors encoded with :func:`formulahier.priors.encode_priors`), the
sampler settings and a format version, all as JSON. Nothing is pickled: reading a file never
runs code from it. Rebuilding the :class:`~formulahier.Fit` happens in :func:`formulahier.load`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DataError, FormulahierError
from .priors import decode_priors, encode_priors

__all__ = ["FORMAT", "FORMAT_VERSION", "SavedFit", "read_fit", "write_fit"]

FORMAT = "formulahier-fit"
FORMAT_VERSION = 1
DATA_GROUP = "formulahier_data"
_SKIP_GROUPS = ("log_likelihood", "posterior_predictive")  # recomputed on demand


@dataclass
class SavedFit:
    """What a saved file holds: enough to rebuild the model and its fit without sampling."""

    formula: str
    options: dict[str, Any]
    data: pd.DataFrame
    idata: xr.DataTree
    settings: dict[str, Any]
    seconds: float
    version: str


def _version() -> str:
    from . import __version__

    return __version__


def _data_to_dataset(frame: pd.DataFrame, required=None) -> xr.Dataset:
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


def _json_scalar(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _dataset_to_data(ds: xr.Dataset) -> pd.DataFrame:
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
    return pd.DataFrame(out)


def write_fit(
    path,
    *,
    formula: str,
    options: dict[str, Any],
    data: pd.DataFrame,
    idata,
    settings: dict[str, Any],
    seconds: float,
    required=None,
) -> Path:
    """Write a fit to ``path`` (one netCDF file; ``.nc`` is a good suffix).

    ``required``: the data columns the model uses; other columns of types netCDF cannot hold
    (dates, mixed objects) are left out.

    Returns
    -------
    pathlib.Path
        The path written.

    """
    path = Path(path)
    options = dict(options)
    options["priors"] = encode_priors(options.get("priors"))
    children = {}
    for name, node in idata.children.items():
        if name in _SKIP_GROUPS:
            continue
        children[name] = xr.DataTree(node.to_dataset())
    children[DATA_GROUP] = xr.DataTree(_data_to_dataset(data, required))
    root = xr.DataTree(children=children)
    root.attrs.update(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "formulahier_version": _version(),
            "formula": formula,
            "options": json.dumps(options),
            "settings": json.dumps(settings),
            "seconds": float(seconds),
        }
    )
    try:
        root.to_netcdf(path, engine="h5netcdf", mode="w")
    except (TypeError, ValueError) as exc:
        raise FormulahierError(f"Could not write {path}: {exc}") from exc
    return path


def read_fit(path) -> SavedFit:
    """Read a file written by :func:`write_fit`; explain what is wrong if it cannot."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No saved fit at {path}.")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except OSError as exc:
        raise FormulahierError(f"{path} is not a netCDF file written by fit.save(): {exc}") from exc
    attrs = dict(tree.attrs)
    if attrs.get("format") != FORMAT:
        raise FormulahierError(f"{path} is a netCDF file but not a fit saved by formulahier.")
    written = int(attrs.get("format_version", -1))
    if written > FORMAT_VERSION:
        raise FormulahierError(
            f"{path} was written by formulahier {attrs.get('formulahier_version')} in file "
            f"format {written}; this formulahier ({_version()}) reads formats up to "
            f"{FORMAT_VERSION}. Upgrade formulahier to read it."
        )
    if written < 1 or DATA_GROUP not in tree.children:
        raise FormulahierError(f"{path} is an incomplete or damaged formulahier file.")
    options = json.loads(attrs["options"])
    options["priors"] = decode_priors(options.get("priors"))
    data = _dataset_to_data(tree[DATA_GROUP].to_dataset())
    idata = xr.DataTree(
        children={
            name: xr.DataTree(node.to_dataset())
            for name, node in tree.children.items()
            if name != DATA_GROUP
        }
    )
    return SavedFit(
        formula=str(attrs["formula"]),
        options=options,
        data=data,
        idata=idata,
        settings=json.loads(attrs["settings"]),
        seconds=float(attrs.get("seconds", np.nan)),
        version=str(attrs.get("formulahier_version")),
    )
