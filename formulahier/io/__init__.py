"""Saving and reading fits: one netCDF file, the posterior plus the model spec as data.

* :mod:`.fitfile`: the file format, its checksum, :func:`write_fit` and :func:`read_fit`;
* :mod:`.tables`: the cleaned data as an xarray Dataset and back.

Rebuilding the :class:`~formulahier.Fit` happens in :func:`formulahier.load`.
"""

from .fitfile import (
    DATA_GROUP,
    FORMAT,
    FORMAT_VERSION,
    SavedFit,
    check_destination,
    checksum,
    read_fit,
    write_fit,
)
from .tables import data_to_dataset, dataset_to_data

__all__ = [
    "DATA_GROUP",
    "FORMAT",
    "FORMAT_VERSION",
    "SavedFit",
    "check_destination",
    "checksum",
    "data_to_dataset",
    "dataset_to_data",
    "read_fit",
    "write_fit",
]
