"""Model comparison by PSIS-LOO (through ArviZ), with the log-likelihood computed on demand.

Works on anything with ``.model`` (the Bambi model) and ``.idata`` (its DataTree), i.e. a
:class:`formulahier.Fit`; this module does not import :mod:`formulahier.fit`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import FormulahierError, FormulahierWarning

__all__ = ["compare", "ensure_log_likelihood", "loo"]

_ADVICE = (
    "PSIS-LOO is unreliable for these observations (often points with much influence, or "
    "groups with few observations in a model with many group effects). Options: "
    "az.loo(fit.idata, moment_match=True, ...) (moment matching), K-fold cross-validation "
    "(az.loo_kfold), or refitting without those points (reloo); more draws help when k is "
    "only slightly above the threshold."
)


def ensure_log_likelihood(fitted) -> str:
    """Add the pointwise log-likelihood group to ``fitted.idata`` if missing.

    Returns
    -------
    str
        The name of the log-likelihood variable (the response).

    """
    from bambi.utils import get_aliased_name

    name = get_aliased_name(fitted.model.response_term)
    if "log_likelihood" not in fitted.idata.children:
        try:
            values = _fast_log_likelihood(fitted)
        except FormulahierError:  # families our predict does not cover: Bambi's own route
            values = None
        try:
            if values is None:
                computed = fitted.model.compute_log_likelihood(fitted.idata, inplace=False)
                values = computed["log_likelihood"][name]
        except Exception as exc:  # Bambi raises plain errors for unsupported families
            raise FormulahierError(
                f"Could not compute the log-likelihood of this model: {exc}"
            ) from exc
        fitted.idata["log_likelihood"] = values.rename(name).to_dataset()
    return name


def _fast_log_likelihood(fitted):
    """Pointwise log-likelihood from our chunked mean prediction (no copy of the DataTree)."""
    from .predict import predict

    bmodel = fitted.model
    mean = predict(fitted.fh_model, fitted.idata, kind="mean", draws=True)
    parent = bmodel.family.likelihood.parent
    posterior = fitted.idata["posterior"].to_dataset().assign({parent: mean})
    posterior = posterior.assign_coords(__obs__=np.arange(mean.shape[-1]))
    return bmodel.family.log_likelihood(model=bmodel, posterior=posterior, data=None)


def _warn_k(result, label: str) -> None:
    k = getattr(result, "pareto_k", None)
    if k is None:
        return
    values = np.asarray(k).ravel()
    threshold = getattr(result, "good_k", 0.7) or 0.7
    bad = int((values > threshold).sum())
    if bad:
        warnings.warn(
            f"{label}: {bad} of {values.size} observations have Pareto k > {threshold:.2f} "
            f"(max {values.max():.2f}). {_ADVICE}",
            FormulahierWarning,
            stacklevel=3,
        )


def loo(fitted, *, pointwise: bool = True, label: str = "loo"):
    """PSIS-LOO of one fit (``arviz.loo``); warns with advice on high Pareto k.

    Returns
    -------
    arviz_stats.ELPDData
        ``elpd``, ``se``, ``p``, and per observation ``elpd_i``, ``pareto_k``.

    """
    import arviz as az

    name = ensure_log_likelihood(fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's own k warning; ours says more
        result = az.loo(fitted.idata, pointwise=pointwise, var_name=name)
    _warn_k(result, label)
    return result


def compare(fits: Mapping[str, object], *, method: str = "stacking") -> pd.DataFrame:
    """Rank fits by PSIS-LOO expected log predictive density (``arviz.compare``).

    Parameters
    ----------
    fits : dict of str to Fit
        Name -> fitted model; all fitted to the same observations.
    method : str
        Weighting method of :func:`arviz.compare` (``"stacking"``, ``"bb-pseudo-bma"``,
        ``"pseudo-bma"``).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``rank``, ``elpd``, ``p``, ``elpd_diff``, ``weight``,
        ``se``, ``dse``, ``warning``.

    """
    import arviz as az

    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise FormulahierError(
            "compare() needs a dict of at least two fits, e.g. "
            "fh.compare({'simple': f0, 'slopes': f1})."
        )
    sizes = {name: f.nobs for name, f in fits.items() if hasattr(f, "nobs")}
    if len(set(sizes.values())) > 1:
        raise FormulahierError(
            f"The fits use different numbers of observations {sizes}; LOO comparisons need the "
            "same data (check for rows dropped for missing values)."
        )
    loos = {name: loo(f, label=name) for name, f in fits.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(loos, method=method, round_to="none")
    return table
