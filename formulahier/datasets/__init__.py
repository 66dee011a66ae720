"""Data sets shipped with formulahier (nothing is downloaded).

=============  ======  ==========================================================================
name           rows    what, source and licence
=============  ======  ==========================================================================
``ozone``      17,411  Daily maximum ozone (``O3``, µg/m³), ``log_ozone`` and daily maximum
                       temperature (``TEMP``, °C) at 12 Beijing stations, 2013-03-01 to
                       2017-02-28. Beijing Multi-Site Air-Quality Data (Zhang et al. 2017,
                       Proc. R. Soc. A 473: 20170457), UCI Machine Learning Repository,
                       CC BY 4.0; aggregated from the hourly files (max per station and day,
                       rows with missing or non-positive O3 dropped).
``sleepstudy`` 180     Reaction time (ms) of 18 subjects over 10 days of sleep deprivation.
                       Belenky et al. (2003), J. Sleep Research 12:1-12; as distributed with
                       lme4 (GPL >= 2).
``radon``      919     Log radon in Minnesota homes: ``floor`` (0 basement, 1 first floor),
                       ``county`` (85), county ``log_uranium``. Gelman & Hill (2007); as
                       distributed with rstanarm (GPL >= 3).
``nwo_grants`` 18      Applications and awards of Dutch NWO grants by discipline and gender.
                       van der Lee & Ellemers (2015), PNAS 112:12349; as distributed with
                       rethinking.
``cbpp``       56      Contagious bovine pleuropneumonia: new cases (``incidence``) of herd
                       ``size``, 15 herds, 4 periods. Lesnoff et al. (2004); as distributed
                       with lme4 (GPL >= 2).
=============  ======  ==========================================================================
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["list_datasets", "load"]

_FILES = {
    "ozone": "beijing_ozone_daily.csv",
    "sleepstudy": "sleepstudy.csv",
    "radon": "radon.csv",
    "nwo_grants": "nwo_grants.csv",
    "cbpp": "cbpp.csv",
}
# Columns that are labels, not numbers (as R reads them into factors).
_FACTORS = {
    "sleepstudy": ["Subject"],
    "cbpp": ["herd", "period"],
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_FILES)


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a new pandas DataFrame.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`: ``"ozone"``, ``"sleepstudy"``, ``"radon"``,
        ``"nwo_grants"``, ``"cbpp"``.

    Returns
    -------
    pandas.DataFrame
        Label columns (``Subject``, ``herd``, ``period``) are strings, as R's factors.

    """
    if name not in _FILES:
        raise ValueError(f"Unknown data set {name!r}; choose one of {list_datasets()}.")
    path = resources.files(__package__).joinpath("data", _FILES[name])
    with resources.as_file(path) as file:
        frame = pd.read_csv(file)
    for col in _FACTORS.get(name, []):
        frame[col] = frame[col].astype(str)
    return frame
