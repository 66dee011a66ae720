"""Plots that teach partial pooling: pairs and funnels, correlations, shrinkage.

Pairs and funnels mark divergent transitions; correlation posteriors are drawn over their LKJ
prior; shrinkage of group means works for every family, also against group size.

Every function returns a matplotlib ``Figure`` and never calls ``plt.show()``. Functions take
the pieces they need (brms-named draws, group means) so that this module does not import
:mod:`formulahier.fitted`; :class:`formulahier.fit_tools.FitTools` gathers them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from .errors import DataError, OptionError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .fit_base import FitBase

__all__ = [
    "lkj_marginal_density",
    "group_means",
    "plot_correlations",
    "plot_funnel",
    "plot_pairs",
    "plot_shrinkage_means",
    "plot_shrinkage_size",
]

_DIVERGENCE = {"color": "red", "alpha": 0.8, "s": 9}
_RAW = {"color": "C1", "label": "no pooling (observed group mean)"}
_POOLED = {"color": "C0", "label": "partial pooling (model)"}


def _figure_of(pc):
    """The matplotlib figure behind an ArviZ ``PlotCollection``."""
    return pc.viz["figure"].item() if "figure" in pc.viz else pc.viz["chart"].item()


def _tree(draws: dict[str, xr.DataArray], diverging: xr.DataArray | None) -> xr.DataTree:
    groups = {"posterior": xr.Dataset(draws)}
    if diverging is not None:
        groups["sample_stats"] = xr.Dataset({"diverging": diverging})
    return xr.DataTree.from_dict(groups)


def _n_divergent(diverging: xr.DataArray | None) -> int:
    return 0 if diverging is None else int(diverging.sum())


def plot_pairs(
    draws: dict[str, xr.DataArray],
    diverging: xr.DataArray | None = None,
    var_names: Sequence[str] | None = None,
) -> Figure:
    """Pair plot of scalar parameters, divergent transitions in red (brms ``pairs(m)``).

    Parameters
    ----------
    draws : dict of str to DataArray
        brms-named ``(chain, draw)`` draws (:func:`formulahier.brms_names.scalar_draws`).
    diverging : DataArray, optional
        ``sample_stats.diverging`` of the fit.
    var_names : list of str, optional
        Which of ``draws`` (default: all, at most 6).

    Returns
    -------
    matplotlib.figure.Figure

    """
    import arviz_plots as azp

    names = list(var_names or list(draws)[:6])
    missing = [n for n in names if n not in draws]
    if missing:
        raise DataError(f"No parameter {missing}; choose from {list(draws)}.")
    size = 1.9 * len(names) + 0.6
    pc = azp.plot_pair(
        _tree({n: draws[n] for n in names}, diverging),
        var_names=names,
        marginal=True,
        visuals={
            "divergence": _DIVERGENCE if diverging is not None else False,
            "scatter": {"alpha": 0.25, "s": 4},
        },
        figure_kwargs={"figsize": (size + 0.8, size)},
    )
    fig = _figure_of(pc)
    fig.suptitle(_divergence_title("Posterior pairs", diverging))
    fig.tight_layout()
    return fig


def _divergence_title(what: str, diverging) -> str:
    n = _n_divergent(diverging)
    if diverging is None:
        return what
    if not n:
        return f"{what}: no divergences"
    return f"{what}: {n} divergent transition{'s' * (n != 1)} (red)"


def plot_funnel(
    focus: tuple[str, xr.DataArray],
    effects: dict[str, xr.DataArray],
    diverging: xr.DataArray | None = None,
) -> Figure:
    """The funnel: log sd of a group effect against that effect in a few levels.

    Where the sd is small the level effects are squeezed together, where it is large they
    spread: the funnel that makes the centered parameterization hard to sample. Divergent
    transitions are marked in red; they cluster in the neck of the funnel when the
    parameterization does not suit the data.

    Parameters
    ----------
    focus : (str, DataArray)
        The name and draws of the log sd, e.g. ``("log(sd_Subject__Intercept)", ...)``.
    effects : dict of str to DataArray
        ``r_`` draws of some levels, e.g. ``{"r_Subject[308,Intercept]": ...}``.
    diverging : DataArray, optional
        ``sample_stats.diverging`` of the fit.

    Returns
    -------
    matplotlib.figure.Figure

    """
    import arviz_plots as azp

    name, values = focus
    draws = {name: values, **effects}
    pc = azp.plot_pair_focus(
        _tree(draws, diverging),
        focus_var=name,
        var_names=list(effects),
        visuals={
            "divergence": _DIVERGENCE if diverging is not None else False,
            "scatter": {"alpha": 0.3, "s": 5},
        },
        figure_kwargs={"figsize": (3.2 * len(effects), 3.4)},
    )
    fig = _figure_of(pc)
    fig.suptitle(_divergence_title(f"Funnel of {name}", diverging))
    fig.tight_layout()
    return fig


def lkj_marginal_density(r: np.ndarray, eta: float, size: int) -> np.ndarray:
    """Density of one correlation under ``LKJ(eta)`` on a ``size x size`` matrix.

    Each off-diagonal correlation is ``2 B - 1`` with ``B ~ Beta(a, a)``, ``a = eta - 1 +
    size / 2`` (Lewandowski, Kurowicka and Joe 2009).
    """
    a = eta - 1 + size / 2
    log_norm = math.lgamma(2 * a) - 2 * math.lgamma(a) - (2 * a - 1) * math.log(2)
    with np.errstate(divide="ignore"):
        return math.exp(log_norm) * np.power(1 - np.asarray(r, dtype=float) ** 2, a - 1)


def plot_correlations(
    blocks: list[tuple[str, dict[str, xr.DataArray], float, int]], ci_prob: float = 0.95
) -> Figure:
    """Posterior of each group-level correlation, with its LKJ prior and interval.

    Parameters
    ----------
    blocks : list of (factor, draws, eta, size)
        Per correlated block: the factor, its brms-named ``cor_`` draws, the LKJ shape and the
        number of effects in the block.
    ci_prob : float
        Probability of the equal-tailed interval drawn under each density.

    Returns
    -------
    matplotlib.figure.Figure

    """
    import matplotlib.pyplot as plt

    panels = [(f, n, da, eta, k) for f, draws, eta, k in blocks for n, da in draws.items()]
    if not panels:
        raise DataError("The model has no correlated group-level block (write (x | g)).")
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    grid = np.linspace(-1, 1, 401)
    tail = (1 - ci_prob) / 2
    for ax, (_factor, name, da, eta, k) in zip(axes.flat, panels, strict=False):
        values = np.asarray(da).reshape(-1)
        ax.hist(
            values, bins=40, range=(-1, 1), density=True, color="C0", alpha=0.6, label="posterior"
        )
        ax.plot(
            grid,
            lkj_marginal_density(grid, eta, k),
            color="k",
            ls="--",
            lw=1,
            label=f"prior LKJ({eta:g})",
        )
        lo, hi = np.quantile(values, [tail, 1 - tail])
        ax.plot(
            [lo, hi],
            [0, 0],
            color="C3",
            lw=4,
            solid_capstyle="butt",
            label=f"{100 * ci_prob:g}% interval",
        )
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlim(-1, 1)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("correlation")
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_shrinkage_means(means: pd.DataFrame, factor: str, scale: str, label: str) -> Figure:
    """Observed group means against the model's fitted group means, one row per level.

    Parameters
    ----------
    means : DataFrame
        Indexed by level, columns ``n`` (group size), ``raw``, ``pooled``, ``population``
        (see :meth:`formulahier.Fit.plot_shrinkage`).
    factor : str
        The grouping factor (for the title).
    scale : str
        ``"response"`` or ``"link"`` (for the axis label).
    label : str
        What the values are, e.g. ``"proportion"``.

    Returns
    -------
    matplotlib.figure.Figure

    """
    import matplotlib.pyplot as plt

    order = means["raw"].sort_values().index
    many = len(order) > 60  # as plots.MANY_LEVELS: no labels, a figure that fits
    fig, ax = plt.subplots(figsize=(6.5, min(10.0, max(2.8, 0.22 * len(order) + 1.2))))
    pos = np.arange(len(order))
    sub = means.loc[order]
    ax.hlines(pos, sub["raw"], sub["pooled"], color="grey", lw=0.8)
    ax.scatter(sub["raw"], pos, s=14, **_RAW)
    ax.scatter(sub["pooled"], pos, s=14, **_POOLED)
    ax.scatter(
        sub["population"],
        pos,
        marker="|",
        s=60,
        color="k",
        label="population level (no group effect)",
    )
    if many:
        ax.set_yticks([])
        ax.set_ylabel(f"{len(order)} levels, sorted")
    else:
        ax.set_yticks(
            pos, [f"{lv} (n={int(n)})" for lv, n in zip(order, sub["n"], strict=True)], fontsize=7
        )
    ax.set_xlabel(f"{label} ({scale} scale)")
    ax.set_title(f"Shrinkage of the group means over '{factor}'")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_shrinkage_size(
    means: pd.DataFrame, factor: str, scale: str, label: str, size_name: str
) -> Figure:
    """Distance from the population level against group size: small groups shrink most.

    Each level is a pair of points at its size: the observed group mean (orange) and the
    model's (blue), both as differences from the level's population-level value, joined by
    a line (the shrinkage).

    Returns
    -------
    matplotlib.figure.Figure

    """
    import matplotlib.pyplot as plt

    n = means["n"].to_numpy(dtype=float)
    raw = (means["raw"] - means["population"]).to_numpy()
    pooled = (means["pooled"] - means["population"]).to_numpy()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x = n.copy()
    if np.ptp(n) == 0:  # all groups the same size: spread them a little to tell them apart
        x = n * np.exp(np.random.default_rng(0).uniform(-0.1, 0.1, size=n.size))
    ax.vlines(x, raw, pooled, color="grey", lw=0.8)
    ax.scatter(x, raw, s=16, **_RAW)
    ax.scatter(x, pooled, s=16, **_POOLED)
    ax.axhline(0, color="k", ls="--", lw=1, label="population level")
    if n.max() > 4 * max(n.min(), 1):
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")  # plain numbers at 1, 2, 5, 10, 20, ... instead of 2x10^2
        nice = np.array([m * 10.0**e for e in range(7) for m in (1, 2, 5)])
        ticks = nice[(nice >= x.min() / 1.5) & (nice <= x.max() * 1.5)]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"group size ({size_name} per level of '{factor}')")
    ax.set_ylabel(f"group mean - population ({label}, {scale} scale)")
    ax.set_title("Shrinkage against group size")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


_CATEGORY_FAMILIES = {"cumulative", "sratio", "categorical"}
_PROPORTION_FAMILIES = {"bernoulli", "binomial", "beta", "beta_binomial"}


def group_means(
    fitted: FitBase, factor: str, scale: str = "response"
) -> tuple[pd.DataFrame, str, str]:
    """Observed and fitted mean response per level of ``factor``, for any family.

    ``raw`` is the level's observed mean response (a proportion ``sum(s) / sum(n)`` for a
    binomial response with trials); ``pooled`` the posterior mean of the model's expected
    response averaged over the level's rows, group effects included; ``population`` the same
    without group effects (``re_formula="~0"``), so that covariates of the level are accounted
    for. On the link scale each mean goes through the link; an observed mean at the edge of
    the link's range (a proportion of 0 or 1, a count mean of 0) gets half an observation
    added, the empirical logit.

    Returns
    -------
    (DataFrame, str, str)
        The table (index: levels; ``n, raw, pooled, population``), what the values are
        (``"proportion"``, ``"mean of y"``) and what ``n`` counts (``"rows"``, ``"trials"``).

    """
    from . import verbs as _verbs
    from .backend import link_function

    if scale not in ("response", "link"):
        raise DataError(f"scale must be 'response' or 'link', got {scale!r}.")
    if fitted.model.family.name in _CATEGORY_FAMILIES:
        raise OptionError(
            f"A {fitted.model.family.name} response has a probability per category, not one "
            "mean per group: use fit.plot_forest() for the group effects on the link scale."
        )
    info = next(b for b in fitted.fh_model.blocks if b.block.factor == factor)
    codes, levels = info.data.codes, list(info.data.groups)
    y = _verbs.observed_response(fitted)
    fitted_mean = _verbs.epred_draws(fitted).mean(axis=0)
    population = _verbs.epred_draws(fitted, re_formula="~0").mean(axis=0)
    binomial = _verbs._is_binomial_counts(fitted)
    weight = _verbs._trials(fitted, None) if binomial else np.ones_like(y)
    k = len(levels)
    n = np.bincount(codes, weights=weight, minlength=k)
    sums = {
        "raw": np.bincount(codes, weights=y, minlength=k),
        "pooled": np.bincount(codes, weights=fitted_mean, minlength=k),
        "population": np.bincount(codes, weights=population, minlength=k),
    }
    table = pd.DataFrame({"n": n, **{key: v / n for key, v in sums.items()}}, index=levels)
    family = fitted.model.family.name
    label = "proportion" if family in _PROPORTION_FAMILIES else f"mean of {fitted.spec.response}"
    if scale == "link":
        link_name, link = link_function(fitted.model)
        label = f"{link_name}({label})"
        raw = table["raw"].to_numpy(dtype=float).copy()
        proportion = family in _PROPORTION_FAMILIES
        edge = (raw <= 0) | (raw >= 1) if proportion else raw <= 0
        adjusted = (sums["raw"] + 0.5) / (n + 1) if proportion else (sums["raw"] + 0.5) / n
        raw[edge] = adjusted[edge]
        table["raw"] = raw
        for key in ("raw", "pooled", "population"):
            table[key] = np.asarray(link(table[key].to_numpy(dtype=float).copy()), dtype=float)
    return table, label, "trials" if binomial else "rows"
