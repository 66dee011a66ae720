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
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..about import __version__
from ..errors import FitFileError, FormulahierError, warn
from ..priors import decode_priors, encode_priors
from ..safety import check_formula_safe
from ..spec import MODEL_OPTIONS
from .tables import data_to_dataset, dataset_to_data

__all__ = [
    "DATA_GROUP",
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
    texts: Mapping[str, Any], posterior: xr.Dataset, data: xr.Dataset, version: int = FORMAT_VERSION
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
    children[DATA_GROUP] = xr.DataTree(data_to_dataset(data, required))
    root = xr.DataTree(children=children)
    try:
        attrs: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "formulahier_version": __version__,
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


def read_fit(path: str | os.PathLike[str]) -> SavedFit:
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
    tree = _open_tree(path)
    attrs = dict(tree.attrs)
    written = _format_version(attrs, path)
    for group in ("posterior", DATA_GROUP):
        if group not in tree.children:
            raise _damaged(path, f"the group '{group}' is missing")
    formula = _text_attr(attrs, "formula", path)
    check_formula_safe(formula)  # before anything parses it
    dpars = _read_dpars(attrs, path)
    options = _json_attr(attrs, "options", path, dict)
    settings = _json_attr(attrs, "settings", path, dict)
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise _damaged(path, f"unknown model options {unknown}")
    _verify_checksum(tree, attrs, written, path)
    _check_prior_names(options.get("priors"), path)
    try:
        options["priors"] = decode_priors(options.get("priors"))
        data = dataset_to_data(tree[DATA_GROUP].to_dataset())
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


def _open_tree(path: Path) -> xr.DataTree:
    """The whole file, loaded; a missing file, a folder or not netCDF: :class:`FitFileError`."""
    if not path.exists():
        raise FitFileError(f"No saved fit at {path}: the file does not exist.")
    if path.is_dir():
        raise FitFileError(f"{path} is a folder, not a saved fit; give the .nc file.")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            return tree.load()
    except Exception as exc:  # h5py/h5netcdf/xarray raise many types on damaged files
        raise FitFileError(
            f"{path} is not a netCDF file written by fit.save(), or it is damaged: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _format_version(attrs: dict, path: Path) -> int:
    """The file format version, if this formulahier reads it."""
    if attrs.get("format") != FORMAT:
        raise FitFileError(f"{path} is a netCDF file but not a fit saved by formulahier.")
    try:
        written = int(np.ravel(attrs.get("format_version", -1))[0])
    except (TypeError, ValueError, IndexError):
        raise _damaged(path, "the format version is not a number") from None
    if written > FORMAT_VERSION:
        raise FitFileError(
            f"{path} was written by formulahier {attrs.get('formulahier_version')} in file "
            f"format {written}; this formulahier ({__version__}) reads formats up to "
            f"{FORMAT_VERSION}. Upgrade formulahier to read it."
        )
    if written < 1:
        raise _damaged(path, f"unknown format version {written}")
    return written


def _read_dpars(attrs: dict, path: Path) -> tuple[tuple[str, str], ...]:
    """The ``bf()`` formulas stored with the fit, each checked against the safe grammar."""
    if "dpars" not in attrs:
        return ()
    pairs = _json_attr(attrs, "dpars", path, list)
    if not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in pairs
    ):
        raise _damaged(path, "the attribute 'dpars' is not a list of [name, formula]")
    for name, text in pairs:
        if not (name.isidentifier() and not name.startswith("_")):
            raise _damaged(path, f"{name!r} is not a parameter name")
        rhs = text.split("~", 1)[1] if "~" in text else text
        check_formula_safe(f"{name} ~{rhs}")
    return tuple((name, text) for name, text in pairs)


def _verify_checksum(tree: xr.DataTree, attrs: dict, written: int, path: Path) -> None:
    """Format 2: the stored checksum must match the contents; format 1: a warning."""
    if written < 2:
        warn(
            f"{path} was written in file format {written}, before files had checksums: changes "
            "made to it since it was saved cannot be detected. Save it again to add one.",
        )
        return
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
