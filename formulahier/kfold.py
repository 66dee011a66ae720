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

import importlib.util
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

    Why not ArviZ's: arviz_stats (1.3) has the same three splitters only as private helpers
    (``loo_kfold_helper._kfold_split_*``); its public ``loo_kfold`` runs the refits itself, one
    after another through a ``SamplingWrapper``, which would give up the folds' shared compiled
    model and their Dask jobs. Same rules as loo's and ArviZ's: folds of sizes differing by at
    most one, strata dealt round the folds, levels assigned whole.
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
    return _heldout(fit.fh_model, fit.idata, newdata, seed)


def _heldout(fh_model, idata, newdata, seed) -> np.ndarray:
    from .backend import family_log_likelihood
    from .predict import predict

    if fh_model.spec.dpars:
        raise OptionError("kfold() is not available for bf() models with formulas for "
                          "auxiliary parameters yet.")  # fmt: skip
    mean = predict(fh_model, idata, newdata, kind="mean", draws=True,
                   allow_new_levels=True, seed=seed)  # fmt: skip
    bmb_model = fh_model.bambi
    parent = bmb_model.family.likelihood.parent
    posterior = idata["posterior"].to_dataset().assign({parent: mean})
    frame = pd.DataFrame(newdata).reset_index(drop=True)
    ll = family_log_likelihood(bmb_model, posterior.assign_coords(__obs__=np.arange(len(frame))),
                               frame)  # fmt: skip
    values = np.asarray(ll.transpose("chain", "draw", ...))
    return values.reshape(-1, values.shape[-1])


def _elpd_i(ll: np.ndarray) -> np.ndarray:
    return logsumexp(ll, axis=0) - np.log(ll.shape[0])


def _shared_folds(job: dict) -> dict:
    """Every fold of a collapsed model from one compiled graph (the cross-products swapped).

    The model is built once on all rows; each fold replaces its shared cross-products by those
    of the fold's training rows (``fold_data``), samples, draws the group effects exactly given
    those rows (a level without training rows gets new-level draws) and scores the held-out
    rows. Returns ``elpd_i`` per fold, the compilations (1) and their seconds.
    """
    import warnings

    from .backend import add_exact_effects, bambi_posterior
    from .many import compile_for_data, sample_with_data

    start = time.perf_counter()
    with warnings.catch_warnings(), quiet_pymc():
        warnings.simplefilter("ignore")
        model = job["model_class"](job["formula"], job["data"], **job["model_options"])
        pymc_model = model.pymc_model
        compiled = compile_for_data(pymc_model, job["sampler"])
    compile_s = time.perf_counter() - start
    bmb, data, out = model.bambi, model.data, []
    drop = [b.corr + "_chol" for b in model.blocks if b.corr]
    for keep, seed in zip(job["keep"], job["seeds"], strict=True):
        values, raw = bmb.fh_plan.fold_data(bmb, keep)
        posterior, _ = sample_with_data(bmb, pymc_model, compiled, values, draws=job["draws"],
                                        tune=job["tune"], chains=job["chains"], seed=int(seed),
                                        options=job["sampler_options"])  # fmt: skip
        posterior = posterior[[v for v in posterior.data_vars if not v.endswith("__")]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            posterior = bambi_posterior(bmb, posterior)
        posterior = posterior.drop_vars([v for v in drop if v in posterior])
        posterior = add_exact_effects(bmb, posterior, int(seed), stats_raw=raw)
        idata = xr.DataTree.from_dict({"posterior": posterior})
        out.append(_elpd_i(_heldout(model, idata, data[~keep], int(seed))))
    n_compiles = 1 if compiled is not None else len(out)
    return {"elpd_i": out, "compilations": n_compiles, "compile_seconds": compile_s,
            "seconds": time.perf_counter() - start}  # fmt: skip


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
    return {"elpd_i": _elpd_i(ll), "seconds": time.perf_counter() - start}


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
    """K-fold cross-validation of ``fit`` by refitting (brms ``kfold``); ``fit.kfold(...)``.

    Parameters
    ----------
    fit : Fit
        The fitted model; its formula, options, data and sampler settings are refitted.
    K : int
        Number of folds (at most the rows, or the levels for ``folds="grouped"``).
    folds : {None, "stratified", "grouped"} or array
        ``None``: random folds of equal size; ``"stratified"``: each value of ``group`` spread
        over the folds; ``"grouped"``: every row of a level of ``group`` in one fold (its
        levels are then new levels, given new-level draws); or one fold id per row.
    group : str, optional
        A column of the data (default: the model's grouping factor, if it has one).
    seed : int, optional
        Seeds the folds and every refit.
    client : dask.distributed.Client, optional
        Run the refits on this Dask cluster; ``None``: here.
    workers : int, optional
        Local worker processes (at most ``os.cpu_count() // chains``).
    progressbar : bool
        One progress line on stderr.
    **options
        Sampler settings for the refits (``draws``, ``tune``, ``chains``, ``target_accept``,
        ``sampler``); the fit's by default.

    A collapsed gaussian fit (the default for one grouping factor) is refitted from **one
    compiled model**: every cross-product of the collapsed likelihood is shared data, and each
    fold swaps in those of its training rows, so only the first fold compiles (nutpie, where
    installed; ``sampler="pymc"`` samples each fold with PyMC, which compiles per call). The
    priors are then the full fit's in every fold (Bambi's default priors are scaled to the
    whole data set; a refit from scratch would rescale them to the training rows). Other models
    are refitted from scratch, one compilation per fold.

    Returns
    -------
    arviz_stats.ELPDDataLOOKFold
        ``elpd`` (elpd_kfold), ``se``, ``p`` (p_kfold), ``elpd_i`` (pointwise, over the rows),
        ``n_folds``; ``fh.compare`` takes it beside fits. Also ``compilations`` (how many
        models were compiled) and ``compile_seconds``.

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
    model_options = dict(fit.fh_model.options)
    if _shared_path(fit, settings):
        # nutpie compiles once (with_data); PyMC's sampler compiles per call: nutpie where
        # installed, unless this call asks for pymc
        nutpie = importlib.util.find_spec("nutpie") is not None
        settings["sampler"] = "pymc" if options.get("sampler") == "pymc" or not nutpie else "nutpie"
        elpd_i, info = _run_shared(fit, assignment, n_folds, settings, model_options, client,
                                   workers, progressbar)  # fmt: skip
    else:
        elpd_i, info = _run_refits(fit, assignment, n_folds, settings, model_options, client,
                                   workers, progressbar)  # fmt: skip
    lpd = _full_lpd(fit)
    elpd = float(elpd_i.sum())
    result = ELPDDataLOOKFold(
        elpd=elpd, se=float(np.sqrt(n * np.var(elpd_i))),
        p=float(lpd - elpd) if lpd is not None else float("nan"),
        n_samples=fit.idata["posterior"].sizes["chain"] * fit.idata["posterior"].sizes["draw"],
        n_data_points=n, scale="log", warning=False, good_k=None,
        elpd_i=xr.DataArray(elpd_i, dims=("__obs__",), coords={"__obs__": np.arange(n)}),
        n_folds=n_folds,
    )  # fmt: skip
    result.compilations, result.compile_seconds = info["compilations"], info["compile_seconds"]
    return result


def _shared_path(fit, settings: dict) -> bool:
    """Whether the folds can share one compiled graph: a collapsed model sampled by NUTS."""
    sampler = settings.get("sampler")
    return (fit.fh_model.collapsed and fit.settings.get("method", "nuts") == "nuts"
            and sampler in (None, "auto", "pymc", "nutpie"))  # fmt: skip


def _run_shared(fit, assignment, n_folds, settings, model_options, client, workers, progressbar):
    """The folds as chunks, each chunk in one process with one compiled model."""
    from .many import dask_workers, local_workers

    chains, sampler = int(settings.get("chains", 4)), settings["sampler"]
    seed = settings.get("seed")
    seeds = [(int(seed) + k) if seed is not None else int(np.random.default_rng().integers(2**31))
             for k in range(1, n_folds + 1)]  # fmt: skip
    n_workers = dask_workers(client) if client is not None else local_workers(chains, workers)
    size = -(-n_folds // max(1, min(n_workers, n_folds)))
    options = {k: v for k, v in settings.items() if k not in (*_SAMPLING, "seed", "cores")}
    options.setdefault("target_accept", 0.9)  # as fh.fit
    base = {"formula": _formula(fit), "data": fit.fh_model.data, "model_options": model_options,
            "model_class": type(fit.fh_model), "sampler": sampler, "chains": chains,
            "draws": int(settings.get("draws", 1000)), "tune": int(settings.get("tune", 1000)),
            "sampler_options": options}  # fmt: skip
    folds = list(range(1, n_folds + 1))
    jobs = [dict(base, folds=folds[a: a + size], keep=[assignment != k for k in folds[a: a + size]],
                 seeds=seeds[a: a + size]) for a in range(0, n_folds, size)]  # fmt: skip
    results = run_jobs(_shared_folds, jobs, client=client, chains=chains, workers=workers,
                       progress=progressbar, label=f"kfold ({n_folds} folds, one compiled model)")
    _raise_failed([(f"folds {j['folds'][0]}-{j['folds'][-1]}", r) for j, r in zip(jobs, results,
                   strict=True)], n_folds)  # fmt: skip
    elpd_i = np.empty(len(assignment))
    for job, res in zip(jobs, results, strict=True):
        for k, values in zip(job["folds"], res.value["elpd_i"], strict=True):
            elpd_i[assignment == k] = values
    info = {"compilations": sum(r.value["compilations"] for r in results),
            "compile_seconds": sum(r.value["compile_seconds"] for r in results)}
    return elpd_i, info


def _run_refits(fit, assignment, n_folds, settings, model_options, client, workers, progressbar):
    """One refit per fold (each compiles its own model): models the shared path cannot take."""
    data = fit.fh_model.data
    jobs = []
    for k in range(1, n_folds + 1):
        held = assignment == k
        job_options = dict(model_options, **settings)
        if job_options.get("seed") is not None:
            job_options["seed"] = int(job_options["seed"]) + k
        jobs.append({"formula": _formula(fit), "train": _drop_unused(data[~held]),
                     "test": data[held], "options": job_options,
                     "model_class": type(fit.fh_model)})  # fmt: skip
    chains = int(settings.get("chains", 4))
    results = run_jobs(_fit_fold, jobs, client=client, chains=chains, workers=workers,
                       progress=progressbar, label=f"kfold ({n_folds} fits)")  # fmt: skip
    _raise_failed([(f"fold {i + 1}", r) for i, r in enumerate(results)], n_folds)
    elpd_i = np.empty(len(assignment))
    for k, res in enumerate(results, start=1):
        elpd_i[assignment == k] = res.value["elpd_i"]
    return elpd_i, {"compilations": n_folds, "compile_seconds": float("nan")}


def _raise_failed(labelled, n_folds: int) -> None:
    failed = [(label, r) for label, r in labelled if not r.ok]
    if failed:
        shown = "; ".join(f"{label}: {r.error}" for label, r in failed[:5])
        raise SamplerError(f"{len(failed)} of the k-fold jobs ({n_folds} folds) failed, so "
                           f"elpd_kfold is undefined: {shown}")  # fmt: skip


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
