"""Saving and reading fits: one netCDF file, the posterior plus the model spec as data.

The file is an xarray DataTree written with h5netcdf. It holds the inference groups of the fit
(``posterior``, ``sample_stats``, ``observed_data``, ...), the cleaned data the model was fitted
on (group ``formulahier_data``, one variable per column) and, in the root attributes, the
formula, the model options (priors encoded with :func:`formulahier.priors.encode_priors`), the
sampler settings and a format version, all as JSON. Nothing is pickled: reading a file never
runs code from it. Rebuilding the :class:`~formulahier.Fit` happens in :func:`formulahier.load`.

Safety (format 2): the formulas of a file are checked with
:func:`formulahier.safety.check_formula_safe` before anything parses them, prior names must be
PyMC distributions, and a SHA-256 checksum over the formulas, options, settings, posterior and
data (attribute ``checksum``) is verified. The checksum detects accidental and naive changes; it
is not a signature (anyone can recompute it). Format 1 files (no checksum) still load, with a
:class:`~formulahier.FormulahierWarning`; their formulas are checked all the same.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DataError, FitFileError, FormulahierError, FormulahierWarning
from .priors import decode_priors, encode_priors
from .safety import check_formula_safe
from .spec import MODEL_OPTIONS

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SavedFit",
    "check_destination",
    "checksum",
    "read_fit",
    "write_fit",
]

FORMAT = "formulahier-fit"
FORMAT_VERSION = 2  # 2: attribute "checksum" (SHA-256), optional "dpars"
_OPTION_KEYS = set(MODEL_OPTIONS)
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
    dpars: tuple[tuple[str, str], ...] = field(default=())


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
    frame = pd.DataFrame(out)
    if "data_name" in ds.attrs:
        frame.attrs["name"] = str(ds.attrs["data_name"])
    return frame


def check_destination(path) -> Path:
    """Refuse at once a path whose folder does not exist, or that is a folder itself."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FitFileError(
            f"Cannot save to {path}: the folder {folder} does not exist. Create it first, or "
            "choose another path."
        )
    if path.is_dir():
        raise FitFileError(f"Cannot save to {path}: it is a folder; give a file name (fit.nc).")
    return path


def _canonical(values: np.ndarray) -> bytes:
    """Bytes of an array that survive a write and read (netCDF may change the dtype)."""
    values = np.asarray(values)
    head = f"{values.shape}".encode()
    if values.dtype.kind in "biu":
        return head + values.astype("<i8").tobytes()
    if values.dtype.kind == "f":
        return head + values.astype("<f8").tobytes()
    texts = [str(v).encode("utf-8", "surrogatepass") for v in values.ravel()]
    return head + b"".join(len(t).to_bytes(8, "little") + t for t in texts)


def checksum(
    texts: dict[str, str], posterior: xr.Dataset, data: xr.Dataset, version: int = FORMAT_VERSION
) -> str:
    """``"sha256:<hex>"`` over the format, the stored texts, the posterior and the data.

    The texts are the formula, dpars, options and settings attributes as stored; variables are
    taken in sorted name order, their values in a form that a write and read keep.
    """
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}\0{int(version)}\0".encode())
    for key in ("formula", "dpars", "options", "settings"):
        digest.update(f"{key}\0{texts.get(key, '')}\0".encode("utf-8", "surrogatepass"))
    for label, ds in (("posterior", posterior), ("data", data)):
        digest.update(f"{label}\0{ds.attrs.get('columns', '')}\0".encode())
        if "data_name" in ds.attrs:  # files without a name keep their checksum
            digest.update(f"data_name\0{ds.attrs['data_name']}\0".encode("utf-8", "surrogatepass"))
        for name in sorted(ds.data_vars, key=str):
            var = ds[name]
            digest.update(f"{name}\0{var.dims}\0".encode())
            digest.update(_canonical(var.to_numpy()))
    return "sha256:" + digest.hexdigest()


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
    dpars=(),
) -> Path:
    """Write a fit to ``path`` (one netCDF file; ``.nc`` is a good suffix).

    ``required``: the data columns the model uses; other columns of types netCDF cannot hold
    (dates, mixed objects) are left out. ``dpars``: ``(name, formula)`` pairs of a
    :func:`~formulahier.bf` model, as written by the user.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FitFileError
        If the folder does not exist (checked first) or the file cannot be written.

    """
    path = check_destination(path)
    options = dict(options)
    options["priors"] = encode_priors(options.get("priors"))
    children = {}
    for name, node in idata.children.items():
        if name.startswith(_SKIP_GROUPS):  # also log_likelihood_thin<k>
            continue
        children[name] = xr.DataTree(node.to_dataset())
    children[DATA_GROUP] = xr.DataTree(_data_to_dataset(data, required))
    root = xr.DataTree(children=children)
    try:
        attrs = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "formulahier_version": _version(),
            "formula": formula,
            "options": json.dumps(options),
            "settings": json.dumps(settings),
            "seconds": float(seconds),
        }
        if dpars:
            attrs["dpars"] = json.dumps([[str(k), str(v)] for k, v in dpars])
    except (TypeError, ValueError) as exc:
        raise FitFileError(f"Could not write {path}: {exc}") from exc
    attrs["checksum"] = checksum(
        attrs, children["posterior"].to_dataset(), children[DATA_GROUP].to_dataset()
    )
    root.attrs.update(attrs)
    try:
        root.to_netcdf(path, engine="h5netcdf", mode="w")
    except (TypeError, ValueError, OSError) as exc:
        raise FitFileError(f"Could not write {path}: {exc}") from exc
    return path


def _damaged(path, what: str) -> FitFileError:
    return FitFileError(f"{path} is an incomplete or damaged formulahier file: {what}.")


def _text_attr(attrs: dict, key: str, path) -> str:
    if key not in attrs:
        raise _damaged(path, f"the attribute '{key}' is missing")
    value = attrs[key]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _damaged(path, f"the attribute '{key}' is not text") from None
    if not isinstance(value, str):
        raise _damaged(path, f"the attribute '{key}' is not text")
    return value


def _json_attr(attrs: dict, key: str, path, kind: type):
    text = _text_attr(attrs, key, path)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise _damaged(path, f"the attribute '{key}' is not valid JSON") from None
    if not isinstance(value, kind):
        raise _damaged(path, f"the attribute '{key}' is not a JSON {kind.__name__}")
    return value


def _check_prior_names(encoded, path) -> None:
    """Every ``{"__prior__": name}`` must name a PyMC distribution (Bambi looks it up)."""
    import pymc as pm

    stack = [encoded]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if "__prior__" in item:
                name = item["__prior__"]
                dist = getattr(pm, name, None) if isinstance(name, str) else None
                ok = (
                    isinstance(name, str)
                    and name.isidentifier()
                    and not name.startswith("_")
                    and isinstance(dist, type)
                    and issubclass(dist, pm.Distribution)
                )
                if not ok:
                    raise _damaged(path, f"the prior {name!r} is not a PyMC distribution")
                if not isinstance(item.get("args"), dict):
                    raise _damaged(path, f"the prior {name!r} has no arguments table")
            stack.extend(item.values())


def read_fit(path) -> SavedFit:
    """Read a file written by :func:`write_fit`; explain what is wrong if it cannot.

    Raises
    ------
    FitFileError
        For a missing file, a folder, a file that is not a formulahier fit or is damaged, one
        changed after it was saved (checksum mismatch), or one from a newer formulahier.
    FormulaError
        If a stored formula is outside the safe grammar (nothing of it is run).

    """
    path = Path(path)
    if not path.exists():
        raise FitFileError(f"No saved fit at {path}: the file does not exist.")
    if path.is_dir():
        raise FitFileError(f"{path} is a folder, not a saved fit; give the .nc file.")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as exc:  # h5py/h5netcdf/xarray raise many types on damaged files
        raise FitFileError(
            f"{path} is not a netCDF file written by fit.save(), or it is damaged: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    attrs = dict(tree.attrs)
    if attrs.get("format") != FORMAT:
        raise FitFileError(f"{path} is a netCDF file but not a fit saved by formulahier.")
    try:
        written = int(np.ravel(attrs.get("format_version", -1))[0])
    except (TypeError, ValueError, IndexError):
        raise _damaged(path, "the format version is not a number") from None
    if written > FORMAT_VERSION:
        raise FitFileError(
            f"{path} was written by formulahier {attrs.get('formulahier_version')} in file "
            f"format {written}; this formulahier ({_version()}) reads formats up to "
            f"{FORMAT_VERSION}. Upgrade formulahier to read it."
        )
    if written < 1:
        raise _damaged(path, f"unknown format version {written}")
    for group in ("posterior", DATA_GROUP):
        if group not in tree.children:
            raise _damaged(path, f"the group '{group}' is missing")
    formula = _text_attr(attrs, "formula", path)
    check_formula_safe(formula)  # before anything parses it
    dpars = ()
    if "dpars" in attrs:
        pairs = _json_attr(attrs, "dpars", path, list)
        if not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p)
            for p in pairs
        ):
            raise _damaged(path, "the attribute 'dpars' is not a list of [name, formula]")
        for name, text in pairs:
            if not (name.isidentifier() and not name.startswith("_")):
                raise _damaged(path, f"{name!r} is not a parameter name")
            rhs = text.split("~", 1)[1] if "~" in text else text
            check_formula_safe(f"{name} ~{rhs}")
        dpars = tuple((name, text) for name, text in pairs)
    options = _json_attr(attrs, "options", path, dict)
    settings = _json_attr(attrs, "settings", path, dict)
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise _damaged(path, f"unknown model options {unknown}")
    if written >= 2:
        stored = attrs.get("checksum")
        if not isinstance(stored, str):
            raise _damaged(path, "the checksum is missing")
        texts = {k: _text_attr(attrs, k, path) for k in ("formula", "options", "settings")}
        if "dpars" in attrs:
            texts["dpars"] = _text_attr(attrs, "dpars", path)
        posterior, data_ds = tree["posterior"].to_dataset(), tree[DATA_GROUP].to_dataset()
        try:
            computed = checksum(texts, posterior, data_ds, written)
        except Exception as exc:  # e.g. a variable of a type the file should not hold
            raise _damaged(path, f"{type(exc).__name__}: {exc}") from None
        if stored != computed:
            raise FitFileError(
                f"{path}: the file was changed after it was saved (its checksum does not match "
                "its contents); it is refused. Load the original file, or refit the model."
            )
    else:
        warnings.warn(
            f"{path} was written in file format {written}, before files had checksums: changes "
            "made to it since it was saved cannot be detected. Save it again to add one.",
            FormulahierWarning,
            stacklevel=3,
        )
    _check_prior_names(options.get("priors"), path)
    try:
        options["priors"] = decode_priors(options.get("priors"))
        data = _dataset_to_data(tree[DATA_GROUP].to_dataset())
        seconds = float(np.ravel(attrs.get("seconds", np.nan))[0])
    except FormulahierError:
        raise
    except Exception as exc:  # malformed content under a valid (or absent) checksum
        raise _damaged(path, f"{type(exc).__name__}: {exc}") from None
    idata = xr.DataTree(
        children={
            name: xr.DataTree(node.to_dataset())
            for name, node in tree.children.items()
            if name != DATA_GROUP
        }
    )
    return SavedFit(
        formula=formula,
        options=options,
        data=data,
        idata=idata,
        settings=settings,
        seconds=seconds,
        version=str(attrs.get("formulahier_version")),
        dpars=dpars,
    )
