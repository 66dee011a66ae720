"""Contrasts, slopes and predictions marginaleffects-style, through Bambi's ``interpret``.

Bambi's :mod:`bambi.interpret` (``comparisons``, ``slopes``, ``predictions``) does the work;
this module only passes formulahier's defaults (equal-tailed intervals at ``ci_prob``, one
averaged row unless ``conditional`` is given) and keeps Bambi's own deprecation notices out of
the user's output. Bambi's model of a fit (``fit.model``) holds the **population-level part
only**, so every result here is population-level: brms's ``re_formula = NA``. For predictions
with group effects use :meth:`formulahier.Fit.predict` or
:meth:`formulahier.Fit.conditional_effects`.

This module does not import :mod:`formulahier.fitted`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import DataError, OptionError

if TYPE_CHECKING:
    from .fit_base import FitBase

#: A predictor and its values: ``"Days"`` or ``{"Days": [0, 5]}``.
Contrast = str | dict[str, Any]
#: The grid: ``"Days"``, ``["Days", "f"]``, ``{"Days": [0, 9]}`` or ``None``.
Conditional = str | list[str] | dict[str, Any] | None
#: Average by these columns; ``False``: one row per data row; ``None``: the default.
AverageBy = str | list[str] | bool | None

__all__ = ["comparisons", "predictions", "slopes"]


def _check(fitted, names, what: str, ci_prob: float) -> float:
    from .validate import probability

    ci_prob = probability(ci_prob, "ci_prob")
    data = fitted.fh_model.data
    factors = {b.block.factor for b in fitted.fh_model.blocks}
    for name in names:
        if name in factors and name not in _population_columns(fitted):
            raise DataError(
                f"{what}: '{name}' is a grouping factor; Bambi's model of the fit knows only the "
                "population-level part. Use fit.predict(newdata) or "
                "fit.conditional_effects(..., re_formula=None) for group-level values."
            )
        if name not in data.columns:
            raise DataError(
                f"{what}: '{name}' is not a column of the model's data; population-level "
                f"predictors: {sorted(_population_columns(fitted))}."
            )
    return ci_prob


def _population_columns(fitted) -> set[str]:
    from .effects import _population_variables

    return set(_population_variables(fitted.fh_model))


def _names(spec) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    return list(spec)


def _interpret(
    what: str,
    fitted: FitBase,
    ci_prob: float,
    conditional: Conditional,
    average_by: AverageBy,
    focus: Contrast | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """``bambi.interpret.<what>`` on the fit, after checking the predictors it names.

    ``focus``: the contrast or slope predictor, a name or a dict keyed by names.
    """
    import bambi as bmb

    ci_prob = _check(fitted, _names(focus) + _names(conditional), what, ci_prob)
    average = _average(conditional, average_by)
    function = getattr(bmb.interpret, what)
    return _call(function, fitted, ci_prob, conditional=conditional, average_by=average, **kwargs)


def _call(function, fitted, ci_prob: float, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        # Bambi 0.21 calls DataFrame.select_dtypes("object") on the model's data, which pandas
        # 3 flags as deprecated for string columns (Pandas4Warning): Bambi's code, not ours.
        warnings.filterwarnings("ignore", message=".*select_dtypes.*", category=Warning)
        try:
            result = function(fitted.model, fitted.idata, use_hdi=False, prob=ci_prob, **kwargs)
        except (KeyError, ValueError, TypeError) as exc:  # Bambi's messages for bad arguments
            raise OptionError(f"Bambi's interpret refused the arguments: {exc}") from None
    return result.summary


def _average(conditional, average_by):
    if average_by is None and conditional is None:
        return "all"  # one row, averaged over the data (marginaleffects' avg_*)
    return None if average_by is False else average_by


def comparisons(
    fitted: FitBase,
    contrast: Contrast,
    conditional: Conditional = None,
    average_by: AverageBy = None,
    comparison: str = "diff",
    ci_prob: float = 0.95,
) -> pd.DataFrame:
    """Population-level contrasts of the expected response (marginaleffects ``comparisons``).

    Parameters
    ----------
    contrast : str or dict
        The predictor to change: ``"period"`` (every pair of levels; a numeric predictor:
        one unit below against one unit above each row's value, Bambi's default) or
        ``{"Days": [0, 5]}`` (these two values).
    conditional : str, list or dict, optional
        Predictors to show the contrast at (a grid); others at their mean / reference level.
    average_by : str, list or False, optional
        Average Bambi's per-row summaries by these columns; default ``"all"`` (one row)
        without ``conditional``; ``False``: one row per data row.
    comparison : {"diff", "ratio", "lift"}
        How the two predictions are compared.
    ci_prob : float
        Probability of the equal-tailed interval.

    Returns
    -------
    pandas.DataFrame
        Bambi's summary: ``term, estimate_type, value, estimate, lower_..%, upper_..%``.

    """
    return _interpret(
        "comparisons", fitted, ci_prob, conditional, average_by, contrast,
        contrast=contrast, comparison=comparison,
    )  # fmt: skip


def slopes(
    fitted: FitBase,
    wrt: Contrast,
    conditional: Conditional = None,
    average_by: AverageBy = None,
    slope: str = "dydx",
    ci_prob: float = 0.95,
) -> pd.DataFrame:
    """Population-level slopes of the expected response (marginaleffects ``slopes``).

    ``wrt`` is a numeric predictor (``"Days"``, or ``{"Days": 2}`` to take the slope at that
    value); ``slope`` is ``"dydx"``, ``"eyex"``, ``"eydx"`` or ``"dyex"``. Other arguments as
    for :func:`comparisons`.
    """
    return _interpret(
        "slopes", fitted, ci_prob, conditional, average_by, wrt, wrt=wrt, slope=slope
    )


def predictions(
    fitted: FitBase,
    conditional: Conditional = None,
    average_by: AverageBy = None,
    ci_prob: float = 0.95,
) -> pd.DataFrame:
    """Population-level expected response on a grid (marginaleffects ``predictions``).

    ``conditional``: ``"Days"``, ``["Days", "f"]`` or ``{"Days": [0, 9]}``; without it, one
    row averaged over the data. Other arguments as for :func:`comparisons`.
    """
    return _interpret("predictions", fitted, ci_prob, conditional, average_by)
