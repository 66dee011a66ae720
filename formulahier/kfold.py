"""K-fold cross-validation by refitting, as brms's ``kfold()`` (and ArviZ's ``loo_kfold``).

The rows are split into K folds (random, stratified by a column, grouped by a factor, or given);
the model is refitted K times without one fold (as independent jobs: :mod:`formulahier.many`,
here or on a Dask cluster), and each held-out row's log predictive density is

    elpd_i = log( 1/S sum_s p(y_i | theta_s) )       (log-sum-exp over the S draws)

from the fit that did not see it. Levels of a grouping factor absent from the training rows
(every level of a held-out group with ``folds="grouped"``) get new-level effects, drawn per
draw from the fitted population distribution (``predict(..., allow_new_levels=True)``, brms's
``sample_new_levels = "gaussian"``). ``elpd_kfold = sum elpd_i``, ``se = sqrt(n var(elpd_i))``,
``p_kfold = lpd(full fit) - elpd_kfold``. The result is ArviZ's ``ELPDDataLOOKFold``, which
:func:`formulahier.compare` ranks beside PSIS-LOO results.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from . import validate as check
from .errors import DataError, OptionError, SamplerError
from .many import quiet_pymc, run_jobs
from .spec import MODEL_OPTIONS

__all__ = ["heldout_log_likelihood", "kfold", "kfold_split"]

_SAMPLING = ("sampler", "draws", "tune", "chains")


def kfold_split(n: int, K: int = 10, folds=None, group=None, seed: int | None = None) -> np.ndarray:
    """Fold of each row, 1..K (loo's ``kfold_split_random/stratified/grouped``).

    ``folds=None``: random folds of (nearly) equal size; ``"stratified"``: each value of
    ``group`` (an array) spread evenly over the folds; ``"grouped"``: every row of one level of
    ``group`` in the same fold (K at most the number of levels); an array: the folds as given.
    """
    rng = np.random.default_rng(seed)
    if isinstance(folds, str) or folds is None:
        check.choice(folds or "random", "folds", ("random", "stratified", "grouped"))
    if folds is None or folds == "random":
        _check_k(K, n, "rows")
        return rng.permutation(np.arange(n) % K) + 1
    if not isinstance(folds, str):
        given = np.asarray(folds)
        if given.shape != (n,):
            raise OptionError(f"folds has {given.size} values; it needs one per row ({n}).")
        if pd.isna(given).any():
            raise OptionError("folds has missing values; give every row a fold (1..K).")
        values = pd.unique(given)
        if len(values) < 2:
            raise OptionError(f"folds gives {len(values)} distinct fold; k-fold needs at least 2.")
        return pd.Series(given).map({v: i + 1 for i, v in enumerate(sorted(values))}).to_numpy()
    if group is None:
        raise OptionError(f'folds="{folds}" needs group=: a column of the data (e.g. "Subject").')
    codes, levels = pd.factorize(np.asarray(group), sort=True)
    out = np.empty(n, dtype=int)
    if folds == "grouped":
        _check_k(K, len(levels), f"levels of the group (K = {len(levels)} is leave-one-group-out)")
        level_fold = rng.permutation(np.arange(len(levels)) % K) + 1
        return level_fold[codes]
    _check_k(K, n, "rows")
    start = rng.integers(K)
    for j in range(len(levels)):  # each stratum dealt round the folds, continuing the count
        rows = rng.permutation(np.flatnonzero(codes == j))
        out[rows] = (start + np.arange(len(rows))) % K + 1
        start = (start + len(rows)) % K
    return out


def _check_k(K, n: int, what: str) -> None:
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2 or K > n:
        raise OptionError(f"K must be a whole number from 2 to the number of {what} ({n}); "
                          f"got {K!r}.")  # fmt: skip


def heldout_log_likelihood(fit, newdata, seed: int | None = None) -> np.ndarray:
    """Log-likelihood of the rows of ``newdata`` under each posterior draw: ``(draws, rows)``.

    Unseen levels get new-level effects (``allow_new_levels=True``).
    """
    from .backend import family_log_likelihood
    from .predict import predict

    if fit.spec.dpars:
        raise OptionError("kfold() is not available for bf() models with formulas for "
                          "auxiliary parameters yet.")  # fmt: skip
    mean = predict(fit.fh_model, fit.idata, newdata, kind="mean", draws=True,
                   allow_new_levels=True, seed=seed)  # fmt: skip
    parent = fit.model.family.likelihood.parent
    posterior = fit.idata["posterior"].to_dataset().assign({parent: mean})
    frame = pd.DataFrame(newdata).reset_index(drop=True)
    ll = family_log_likelihood(fit.model, posterior.assign_coords(__obs__=np.arange(len(frame))),
                               frame)  # fmt: skip
    values = np.asarray(ll.transpose("chain", "draw", ...))
    return values.reshape(-1, values.shape[-1])


def _fit_fold(job: dict) -> dict:
    """Refit without one fold (``Model(...).fit(...)``); the held-out rows' elpd."""
    import warnings

    start = time.perf_counter()
    options = dict(job["options"])
    model_options = {k: options.pop(k) for k in list(options) if k in MODEL_OPTIONS}
    with warnings.catch_warnings(), quiet_pymc():
        warnings.simplefilter("ignore")
        # the fit's own Model class (as fit.update() does): this module never imports
        # fitted.py or modeling.py
        built = job["model_class"](job["formula"], job["train"], **model_options)
        fitted = built.fit(progressbar=False, **options)
        ll = heldout_log_likelihood(fitted, job["test"], seed=job["options"].get("seed"))
    elpd_i = logsumexp(ll, axis=0) - np.log(ll.shape[0])
    return {"elpd_i": elpd_i, "seconds": time.perf_counter() - start}


def _drop_unused(frame: pd.DataFrame) -> pd.DataFrame:
    """Training rows without the categories of the held-out levels (they are new levels)."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].cat.remove_unused_categories()
    return out


def kfold(fit, K: int = 10, *, folds=None, group: str | None = None, seed: int | None = None,
          client=None, workers: int | None = None, progressbar: bool = True,
          **options: Any):  # fmt: skip
    """K-fold cross-validation of ``fit`` by refitting (brms ``kfold``); see :meth:`Fit.kfold`.

    Returns
    -------
    arviz_stats.ELPDDataLOOKFold
        ``elpd`` (elpd_kfold), ``se``, ``p`` (p_kfold), ``elpd_i`` (pointwise, over the rows),
        ``n_folds``; ``fh.compare`` takes it beside fits.

    """
    from arviz_stats.utils import ELPDDataLOOKFold

    data = fit.fh_model.data
    n = len(data)
    if folds in ("grouped", "stratified") and group is None and len(fit.spec.factors) == 1:
        group = fit.spec.factors[0]  # the model's one grouping factor
    if group is not None and (folds is None or folds == "random"):
        raise OptionError(f"group={group!r} goes with folds='grouped' (leave groups out) or "
                          "folds='stratified'; random folds ignore it.")  # fmt: skip
    values = None
    if group is not None:
        if not isinstance(group, str) or group not in data.columns:
            raise DataError(f"group={group!r} is not a column of the fitted data; columns: "
                            f"{list(data.columns)}.")  # fmt: skip
        values = data[group].astype(str).to_numpy()
    seed = check.seed(seed)
    assignment = kfold_split(n, K, folds, values, seed)
    n_folds = int(assignment.max())
    settings = {k: v for k, v in fit.settings.items() if k in _SAMPLING}
    settings.update(dict(fit.settings.get("sampler_kwargs", {})))
    settings["seed"] = seed if seed is not None else fit.settings.get("seed")
    unknown = [k for k in options if k not in (*_SAMPLING, "target_accept", "cores")]
    if unknown:
        raise OptionError(f"kfold() takes sampler settings ({', '.join(_SAMPLING)}, "
                          f"target_accept) as keywords; unknown: {unknown}.")  # fmt: skip
    settings.update(options)
    chains = int(settings.get("chains", 4))
    model_options = dict(fit.fh_model.options)
    jobs = []
    for k in range(1, n_folds + 1):
        held = assignment == k
        job_options = dict(model_options, **settings)
        if job_options.get("seed") is not None:
            job_options["seed"] = int(job_options["seed"]) + k
        jobs.append({"formula": _formula(fit), "train": _drop_unused(data[~held]),
                     "test": data[held], "options": job_options,
                     "model_class": type(fit.fh_model)})  # fmt: skip
    results = run_jobs(_fit_fold, jobs, client=client, chains=chains, workers=workers,
                       progress=progressbar, label=f"kfold ({n_folds} fits)")  # fmt: skip
    failed = [r for r in results if not r.ok]
    if failed:
        shown = "; ".join(f"fold {r.index + 1}: {r.error}" for r in failed[:5])
        raise SamplerError(f"{len(failed)} of {n_folds} fold fits failed, so elpd_kfold is "
                           f"undefined: {shown}")  # fmt: skip
    elpd_i = np.empty(n)
    for k, res in enumerate(results, start=1):
        elpd_i[assignment == k] = res.value["elpd_i"]
    lpd = _full_lpd(fit)
    elpd = float(elpd_i.sum())
    return ELPDDataLOOKFold(
        elpd=elpd, se=float(np.sqrt(n * np.var(elpd_i))),
        p=float(lpd - elpd) if lpd is not None else float("nan"),
        n_samples=fit.idata["posterior"].sizes["chain"] * fit.idata["posterior"].sizes["draw"],
        n_data_points=n, scale="log", warning=False, good_k=None,
        elpd_i=xr.DataArray(elpd_i, dims=("__obs__",), coords={"__obs__": np.arange(n)}),
        n_folds=n_folds,
    )  # fmt: skip


def _formula(fit):
    from .formula import bf

    dpars = fit.spec.dpars
    return bf(fit.spec.formula, **dict(dpars)) if dpars else fit.spec.formula


def _full_lpd(fit) -> float | None:
    """Log pointwise predictive density of the full fit on its own rows (for ``p_kfold``)."""
    from .comparison import ensure_log_likelihood

    try:
        name = ensure_log_likelihood(fit)
    except Exception:  # noqa: BLE001 - p_kfold is then not reported
        return None
    ll = np.asarray(fit.idata["log_likelihood"][name].transpose("chain", "draw", ...))
    ll = ll.reshape(-1, ll.shape[-1])
    return float((logsumexp(ll, axis=0) - np.log(ll.shape[0])).sum())
