"""Model comparison by PSIS-LOO (through ArviZ), with the log-likelihood computed on demand.

Works on anything with ``.model`` (the Bambi model) and ``.idata`` (its DataTree), i.e. a
:class:`formulahier.Fit`; this module does not import :mod:`formulahier.fitted`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from .backend import aliased_name, family_log_likelihood
from .errors import (
    DataError,
    FormulaError,
    FormulahierError,
    MemoryLimitError,
    OptionError,
    warn,
)

__all__ = ["check_log_likelihood_memory", "compare", "ensure_log_likelihood", "loo"]

_ADVICE = (
    "PSIS-LOO is unreliable for these observations (often points with much influence, or "
    "groups with few observations in a model with many group effects). Options: "
    "az.loo(fit.idata, moment_match=True, ...) (moment matching), K-fold cross-validation "
    "(fit.kfold(K=10)), or refitting without those points (reloo); more draws help when k is "
    "only slightly above the threshold."
)


_WORKING_COPIES = 9  # measured: 1 GB of log-likelihood peaked 8.5 GB above the fit (big_fit.py)


def _memory_budget() -> int | None:
    """Bytes PSIS-LOO may take: half of the machine's memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no check
        return None


def check_log_likelihood_memory(n_draws: int, nobs: int, thin: int = 1) -> None:
    """Refuse, with advice, a log-likelihood that would not fit in memory.

    The pointwise log-likelihood is ``draws x observations`` doubles; computing it (predicted
    means, Bambi's family log-density) and PSIS-LOO make working copies: about 9x in all,
    measured by ``python -m benchmarks.big_fit``.
    """
    budget = _memory_budget()
    kept = -(-n_draws // thin)
    need = _WORKING_COPIES * kept * nobs * 8
    if budget is None or need <= budget:
        return
    suggest = max(thin + 1, -(-need // budget) * thin)
    raise MemoryLimitError(
        f"PSIS-LOO needs the pointwise log-likelihood of {nobs:,} observations x {kept:,} "
        f"draws: about {need / 1e9:.1f} GB with working copies, more than the "
        f"{budget / 1e9:.1f} GB allowed here (half of this machine's memory). Pass "
        f"thin={suggest} to keep one posterior draw in {suggest} "
        f"({-(-n_draws // suggest):,} draws remain; PSIS-LOO is reliable with a few hundred)."
    )


def ensure_log_likelihood(fitted, thin: int = 1) -> str:
    """Add the pointwise log-likelihood group to ``fitted.idata`` if missing.

    With ``thin > 1`` only every ``thin``-th posterior draw is used, and the result is kept
    under the group ``log_likelihood_thin{thin}`` (the posterior itself is left whole).

    Returns
    -------
    str
        The name of the log-likelihood variable (the response).

    """
    name = aliased_name(fitted.model.response_term)
    group = "log_likelihood" if thin == 1 else f"log_likelihood_thin{thin}"
    if group not in fitted.idata.children:
        posterior = fitted.idata["posterior"]
        n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
        check_log_likelihood_memory(n_draws, fitted.nobs, thin)
        if thin > 1:
            fitted.idata[group] = _thinned_log_likelihood(fitted, thin, name)
            return name
        try:
            values = _fast_log_likelihood(fitted)
        except FormulahierError:  # families our predict does not cover: Bambi's own route
            values = None
        if values is None and fitted.fh_model.blocks:
            # Bambi's own route knows only the population part of our models
            raise FormulaError(
                f"loo() is not available yet for the '{fitted.model.family.name}' family "
                "or bf() models with group-level terms in the main formula."
            )
        try:
            if values is None:
                computed = fitted.model.compute_log_likelihood(fitted.idata, inplace=False)
                values = computed["log_likelihood"][name]
        except Exception as exc:  # Bambi raises plain errors for unsupported families
            raise FormulaError(
                f"Could not compute the log-likelihood of this model: {exc}"
            ) from exc
        fitted.idata["log_likelihood"] = values.rename(name).to_dataset()
    return name


def _fast_log_likelihood(fitted, samples=None):
    """Pointwise log-likelihood from our chunked mean prediction (no copy of the DataTree)."""
    from .predict import predict, select_draws

    bmodel = fitted.model
    mean = predict(fitted.fh_model, fitted.idata, kind="mean", draws=True, samples=samples)
    parent = bmodel.family.likelihood.parent
    # the same draws as ``mean`` (one chain of the chosen draws when thinned)
    posterior = select_draws(fitted.idata["posterior"].to_dataset(), samples)
    posterior = posterior.assign({parent: mean})
    posterior = posterior.assign_coords(__obs__=np.arange(mean.shape[-1]))
    return family_log_likelihood(bmodel, posterior)


def _thinned_log_likelihood(fitted, thin: int, name: str):
    posterior = fitted.idata["posterior"]
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    try:
        values = _fast_log_likelihood(fitted, samples=np.arange(0, n_draws, thin))
    except FormulahierError as exc:
        raise OptionError(
            f"thin= is not available for this model ({exc}); use loo() without it."
        ) from None
    return values.rename(name).to_dataset()


def _warn_k(result, label: str) -> None:
    k = getattr(result, "pareto_k", None)
    if k is None:
        return
    values = np.asarray(k).ravel()
    threshold = getattr(result, "good_k", 0.7) or 0.7
    bad = int((values > threshold).sum())
    if bad:
        warn(
            f"{label}: {bad} of {values.size} observations have Pareto k > {threshold:.2f} "
            f"(max {values.max():.2f}). {_ADVICE}",
        )


def loo(fitted, *, pointwise: bool = True, label: str = "loo", thin: int = 1):
    """PSIS-LOO of one fit (``arviz.loo``); warns with advice on high Pareto k.

    ``thin`` uses every ``thin``-th posterior draw for the pointwise log-likelihood (for
    data too big for ``draws x observations`` doubles; the error says when it is needed).

    Returns
    -------
    arviz_stats.ELPDData
        ``elpd``, ``se``, ``p``, and per observation ``elpd_i``, ``pareto_k``.

    """
    import arviz as az

    if isinstance(thin, bool) or not isinstance(thin, (int, np.integer)) or thin < 1:
        raise OptionError(f"thin must be a whole number >= 1, got {thin!r}.")
    name = ensure_log_likelihood(fitted, int(thin))
    data, extra = fitted.idata, {}
    if thin > 1:
        data = xr.DataTree.from_dict(
            {"log_likelihood": fitted.idata[f"log_likelihood_thin{thin}"].to_dataset()}
        )
        extra["reff"] = 1.0  # thinned draws of one pooled chain: taken as independent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's own k warning; ours says more
        result = az.loo(data, pointwise=pointwise, var_name=name, **extra)
    _warn_k(result, label)
    return result


def _is_elpd(value) -> bool:
    """An ELPD result of ArviZ (``loo``, ``loo_kfold``): what ``fit.kfold()`` returns."""
    from arviz_stats.utils import ELPDData

    return isinstance(value, ELPDData)


def compare(fits: Mapping[str, object], *, method: str = "stacking", thin: int = 1) -> pd.DataFrame:
    """Rank fits by PSIS-LOO expected log predictive density (``arviz.compare``).

    Parameters
    ----------
    fits : dict of str to Fit or ELPD result
        Name -> fitted model (compared by PSIS-LOO), or the result of ``fit.kfold()`` /
        ``fit.loo()`` (brms's ``loo_compare`` of ``kfold`` objects); all of the same
        observations.
    method : str
        Weighting method of :func:`arviz.compare` (``"stacking"``, ``"bb-pseudo-bma"``,
        ``"pseudo-bma"``).
    thin : int
        Use every ``thin``-th posterior draw for the log-likelihoods (big data).

    Returns
    -------
    pandas.DataFrame
        ArviZ's table, one row per model, best first: ``rank``, ``elpd_diff``, ``dse``,
        ``p_worse``, ``diag_diff``, ``diag_elpd``, ``p``, ``elpd``, ``se``, ``weight``
        (weights below 1e-9, optimizer noise, are 0).

    """
    import arviz as az

    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise OptionError(
            "compare() needs a dict of at least two fits, e.g. "
            "fh.compare({'simple': f0, 'slopes': f1})."
        )
    sizes = {name: getattr(f, "nobs", None) or getattr(f, "n_data_points", None)
             for name, f in fits.items() if hasattr(f, "nobs") or _is_elpd(f)}  # fmt: skip
    if len(set(sizes.values())) > 1:
        raise DataError(
            f"The fits use different numbers of observations {sizes}; LOO comparisons need the "
            "same data (check for rows dropped for missing values)."
        )
    # a fit gets PSIS-LOO; a computed elpd (fit.kfold(), fit.loo()) is taken as it is
    loos = {name: f if _is_elpd(f) else loo(f, label=name, thin=thin) for name, f in fits.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(loos, method=method, round_to="none")
    # the stacking optimizer leaves weights like 2.8e-16 for models it gives none: those are 0
    table["weight"] = table["weight"].where(table["weight"] > 1e-9, 0.0)
    return table
