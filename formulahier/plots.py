"""Plots of a fit: trace, posterior predictive check, caterpillar, shrinkage, conditional effects.

Every function returns the figure objects (a matplotlib ``Figure`` or an ArviZ
``PlotCollection``) and never calls ``plt.show()``. Functions take the pieces they need
(``idata``, the formulahier ``Model``, result tables) so that this module does not import
:mod:`formulahier.fitted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import DataError, FormulaError

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from .fit_base import BuiltModel

__all__ = ["plot_forest", "plot_ppc", "plot_shrinkage", "plot_trace", "raw_group_estimates"]

MANY_LEVELS = 60  # above this many levels, dot plots drop their level labels


def plot_trace(
    idata: xr.DataTree,
    var_names: Sequence[str] | None = None,
    draws: dict[str, xr.DataArray] | None = None,
    **kwargs: Any,
) -> Any:
    """Trace and marginal density per parameter (``arviz.plot_trace_dist``).

    Parameters
    ----------
    idata : xarray.DataTree
        The fit's posterior.
    var_names : list of str, optional
        Parameters to show: brms names (keys of ``draws``) or the posterior's own variables.
        Default: every key of ``draws``, i.e. what brms's ``plot(m)`` shows.
    draws : dict of str to DataArray, optional
        brms-named scalar draws (:func:`formulahier.brms_names.scalar_draws`): population
        effects, sds, correlations, family parameters.
    **kwargs
        Passed to :func:`arviz.plot_trace_dist`.

    Returns
    -------
    arviz_plots.PlotCollection

    """
    import arviz as az
    import xarray as xr

    names = [var_names] if isinstance(var_names, str) else var_names
    if draws and (names is None or all(n in draws for n in names)):
        chosen = {n: draws[n] for n in (names or list(draws))}
        idata = xr.DataTree.from_dict({"posterior": xr.Dataset(chosen)})
        names = list(chosen)
    elif names is None:
        posterior = idata["posterior"]
        names = [v for v in posterior.data_vars if posterior[v].ndim <= 3]
    kwargs.setdefault("compact", False)
    if "plot_collection" not in kwargs:  # room for the names of the rows
        figure_kwargs = dict(kwargs.pop("figure_kwargs", None) or {})
        figure_kwargs.setdefault("figsize", (11, 0.6 + 1.9 * len(names)))
        kwargs["figure_kwargs"] = figure_kwargs
    return az.plot_trace_dist(idata, var_names=names, **kwargs)


def plot_ppc(idata: xr.DataTree, num_samples: int = 50, **kwargs: Any) -> Any:
    """Observed response against posterior predictive draws (``arviz.plot_ppc_dist``).

    Replicated data sets are thin blue lines, the observed data a thick black line; a legend
    says which is which.
    """
    import arviz as az
    from matplotlib.lines import Line2D

    if "posterior_predictive" not in idata.children:
        raise DataError("No posterior predictive draws: call fit.posterior_predictive().")
    visuals = dict(kwargs.pop("visuals", None) or {})
    predictive = {"color": "C0", "alpha": 0.3, "width": 0.8}
    observed = {"color": "black", "width": 2.0}
    visuals.setdefault("predictive_dist", predictive)
    visuals.setdefault("observed_dist", observed)
    pc = az.plot_ppc_dist(idata, num_samples=num_samples, visuals=visuals, **kwargs)
    figure = pc.viz["figure"].item() if "figure" in pc.viz else None
    if figure is not None and hasattr(figure, "legend") and figure.axes:
        handles = [
            Line2D([], [], color="black", lw=2.0, label="observed data"),
            Line2D(
                [], [], color="C0", lw=1.0, alpha=0.6, label=f"replicated ({num_samples} draws)"
            ),
        ]
        figure.axes[0].legend(handles=handles, fontsize=8, loc="best")
    return pc


def plot_forest(
    tables: dict[str, pd.DataFrame],
    factor: str | None = None,
    effects: Sequence[str] | None = None,
) -> Figure:
    """Caterpillar plot: group-level effects per level with intervals, sorted by estimate.

    Parameters
    ----------
    tables : dict of str to DataFrame
        As returned by :meth:`formulahier.Fit.ranef`.
    factor : str, optional
        One grouping factor (default: the first).
    effects : list of str, optional
        Which effects (default: all of the factor).

    Returns
    -------
    matplotlib.figure.Figure

    """
    import matplotlib.pyplot as plt

    if not tables:
        raise FormulaError(
            "The model has no group-level effects to plot; add a term such as (1 | group)."
        )
    factor = factor or next(iter(tables))
    if factor not in tables:
        raise DataError(f"No grouping factor '{factor}'; the model has {list(tables)}.")
    table = tables[factor]
    effects = list(effects or dict.fromkeys(table.columns.get_level_values(0)))
    many = len(table) > MANY_LEVELS  # thousands of levels: no labels, a figure that fits
    height = min(10.0, max(2.5, 0.18 * len(table) + 1))
    fig, axes = plt.subplots(1, len(effects), figsize=(3.5 * len(effects), height), squeeze=False)
    for ax, effect in zip(axes[0], effects, strict=True):
        sub = table[effect].sort_values("estimate")
        pos = np.arange(len(sub))
        ax.errorbar(
            sub["estimate"],
            pos,
            xerr=[sub["estimate"] - sub["lower"], sub["upper"] - sub["estimate"]],
            fmt="o",
            ms=3,
            lw=1,
        )
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        if many:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(sub)} levels, sorted")
        else:
            ax.set_yticks(pos, [str(i) for i in sub.index], fontsize=7)
        ax.set_title(f"{effect} | {factor}")
    fig.tight_layout()
    return fig


def raw_group_estimates(fh_model: BuiltModel, factor: str, effects: list[str]) -> pd.DataFrame:
    """No-pooling estimates: a least-squares fit of the response per level of ``factor``.

    The regressors are the block's effects (``Intercept`` and slopes of numeric columns), so
    these are the per-group estimates a separate regression per group would give.
    """
    data = fh_model.data
    response = fh_model.spec.response
    if response not in data.columns:
        raise FormulaError(
            f"Raw per-group estimates need the response as a column; '{response}' is an expression."
        )
    rows = {}
    for level, sub in data.groupby(factor.split(":"), observed=True, sort=False):
        cols = []
        for effect in effects:
            if effect == "Intercept":
                cols.append(np.ones(len(sub)))
            elif effect in sub.columns and pd.api.types.is_numeric_dtype(sub[effect]):
                cols.append(sub[effect].to_numpy(dtype=float))
            else:
                raise DataError(
                    f"Raw estimates are available for the intercept and numeric slopes, not "
                    f"'{effect}'."
                )
        X = np.column_stack(cols)
        y = sub[response].to_numpy(dtype=float)
        if np.linalg.matrix_rank(X) < X.shape[1]:
            beta = np.full(X.shape[1], np.nan)
        else:
            beta = np.linalg.lstsq(X, y, rcond=None)[0]
        key = ":".join(map(str, level)) if isinstance(level, tuple) else str(level)
        rows[key] = beta
    return pd.DataFrame.from_dict(rows, orient="index", columns=effects)


def plot_shrinkage(
    fh_model: BuiltModel,
    coef_table: pd.DataFrame,
    fixef: pd.DataFrame,
    factor: str,
    effects: Sequence[str],
) -> Figure:
    """Per-group raw estimates against partial-pooling estimates, with the population mean.

    One effect: a dot per level at its raw (no pooling) and its partially pooled estimate,
    joined by a line, with the population estimate as a vertical line. Two effects: the same in
    the plane of the two effects (arrows from raw to pooled), the population mean as a cross.

    Returns
    -------
    matplotlib.figure.Figure

    """
    import matplotlib.pyplot as plt

    effects = list(effects)
    raw = raw_group_estimates(fh_model, factor, effects)
    pooled = pd.DataFrame({e: coef_table[(e, "estimate")] for e in effects})
    pooled.index = [str(i) for i in pooled.index]
    raw = raw.reindex(pooled.index)
    pop = [fixef.loc[e, "estimate"] if e in fixef.index else 0.0 for e in effects]
    if len(effects) == 1:
        e = effects[0]
        fig, ax = plt.subplots(figsize=(6, min(10.0, max(2.5, 0.2 * len(raw) + 1))))
        order = raw[e].sort_values().index
        pos = np.arange(len(order))
        for p, lv in zip(pos, order, strict=True):
            ax.plot([raw.loc[lv, e], pooled.loc[lv, e]], [p, p], color="grey", lw=0.8)
        ax.scatter(raw.loc[order, e], pos, label="no pooling (per-group fit)", color="C1", s=14)
        ax.scatter(pooled.loc[order, e], pos, label="partial pooling (model)", color="C0", s=14)
        ax.axvline(pop[0], color="k", ls="--", lw=1, label="population mean")
        if len(order) > MANY_LEVELS:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(order)} levels, sorted")
        else:
            ax.set_yticks(pos, list(order), fontsize=7)
        ax.set_xlabel(e)
    else:
        a, b = effects[:2]
        fig, ax = plt.subplots(figsize=(6, 5))
        # a level whose raw fit is undefined (e.g. no variation in the slope's predictor) has
        # no arrow; its pooled estimate is still shown
        complete = raw[[a, b]].notna().all(axis=1)
        for lv in raw.index[complete]:
            ax.annotate(
                "",
                xy=(pooled.loc[lv, a], pooled.loc[lv, b]),
                xytext=(raw.loc[lv, a], raw.loc[lv, b]),
                arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8},
            )
        ax.scatter(raw[a], raw[b], label="no pooling (per-group fit)", color="C1", s=14)
        ax.scatter(pooled[a], pooled[b], label="partial pooling (model)", color="C0", s=14)
        ax.scatter([pop[0]], [pop[1]], marker="X", s=80, color="k", label="population mean")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
    ax.set_title(f"Shrinkage over '{factor}'")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
