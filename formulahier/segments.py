"""One model per segment (region, product, cohort): :func:`fit_many` and :class:`FitCollection`.

Each segment's fit is an independent job (:mod:`formulahier.many`: here or on a Dask cluster);
a worker returns the fit's draws, and the fit is rebuilt here around them (as
:func:`formulahier.load` does: the model is rebuilt from formula, options and data, without
sampling). A segment whose fit fails is reported in ``.failed``; the others are kept.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from .api import fit, model
from .errors import DataError, OptionError
from .fitted import Fit
from .many import quiet_pymc, run_jobs
from .spec import MODEL_OPTIONS

__all__ = ["FitCollection", "fit_many"]


def _fit_segment(job: dict) -> dict:
    """Fit one segment (public API only); return what rebuilds the fit: draws and settings."""
    with warnings.catch_warnings(), quiet_pymc():
        warnings.simplefilter("ignore")
        fitted = fit(job["formula"], job["data"], progressbar=False, **job["options"])
    return {"idata": fitted.idata, "settings": fitted.settings, "seconds": fitted.seconds}


class FitCollection(Mapping):
    """Fits by segment: ``fits[segment]`` is a :class:`~formulahier.Fit`.

    ``fixef()`` and ``varcorr()`` stack every segment's table (segment as the first index level
    / column); ``failed`` maps a segment to its error.
    """

    def __init__(self, by: str, fits: dict, failed: dict[Any, str]):
        self.by, self.fits, self.failed = by, fits, failed

    def __getitem__(self, key):
        return self.fits[key]

    def __iter__(self) -> Iterator:
        return iter(self.fits)

    def __len__(self) -> int:
        return len(self.fits)

    def fixef(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Population-level effects of every segment, indexed ``(segment, term)``."""
        parts = {k: f.fixef(ci_prob) for k, f in self.fits.items()}
        return pd.concat(parts, names=[self.by, "term"]) if parts else pd.DataFrame()

    def varcorr(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Standard deviations and correlations of every segment, a ``segment`` column first."""
        parts = [f.varcorr(ci_prob).assign(**{self.by: k}) for k, f in self.fits.items()]
        if not parts:
            return pd.DataFrame()
        table = pd.concat(parts, ignore_index=True)
        return table[[self.by, *[c for c in table.columns if c != self.by]]]

    def __repr__(self) -> str:
        failed = f", {len(self.failed)} failed ({list(self.failed)})" if self.failed else ""
        return f"<FitCollection by {self.by!r}: {len(self.fits)} fits{failed}>"


def fit_many(formula, data, by: str, *, client=None, workers: int | None = None,
             progressbar: bool = True, **options) -> FitCollection:  # fmt: skip
    """Fit the same model to every segment of the data (one fit per value of ``by``).

    Parameters
    ----------
    formula : str
        As for :func:`formulahier.fit`.
    data : pandas.DataFrame (or anything ``pandas.DataFrame`` takes)
        Never modified.
    by : str
        The column whose values are the segments.
    client : dask.distributed.Client, optional
        Fit on this Dask cluster; ``None``: here (``os.cpu_count() // chains`` processes).
    workers : int, optional
        Local worker processes.
    progressbar : bool
        One progress line on stderr.
    **options
        Model and sampler options of :func:`formulahier.fit` (``family``, ``priors``,
        ``draws``, ``chains``, ``sampler``, ``seed``...).

    Returns
    -------
    FitCollection

    """
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if not isinstance(by, str) or by not in frame.columns:
        raise DataError(f"by={by!r} is not a column of the data; columns: {list(frame.columns)}.")
    if "progressbar" in options:
        raise OptionError("fit_many() shows one progress line: pass progressbar=, not per fit.")
    missing = int(frame[by].isna().sum())
    if missing:
        raise DataError(f"{missing} row(s) have no value of by={by!r}: they belong to no "
                        "segment. Drop them (data.dropna(subset=[by])) or give them a value.")
    segments = list(pd.unique(frame[by]))
    try:
        segments = sorted(segments)
    except TypeError:  # mixed types: keep the order of appearance
        pass
    if not segments:
        raise DataError(f"The column {by!r} has no values: no segments to fit.")
    jobs = [{"formula": formula, "data": frame[frame[by] == s].reset_index(drop=True),
             "options": options} for s in segments]  # fmt: skip
    results = run_jobs(_fit_segment, jobs, client=client, chains=int(options.get("chains", 4)),
                       workers=workers, progress=progressbar,
                       label=f"fit_many ({len(jobs)} segments)")  # fmt: skip
    model_options = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    fits, failed = {}, {}
    for segment, job, res in zip(segments, jobs, results, strict=True):
        if not res.ok:
            failed[segment] = f"job {res.index}: {res.error}"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built = model(formula, job["data"], **model_options)
        out = res.value
        fits[segment] = Fit(built, out["idata"], out["settings"], out["seconds"])
    return FitCollection(by, fits, failed)

