"""Conditional effects, as brms's ``conditional_effects()``: the model's line against one predictor.

For each effect a grid is built over one predictor (100 points from its minimum to its maximum
if numeric, its levels if categorical) and, for an interaction ``"x:f"``, over the levels of
the second (three values ``mean - sd``, ``mean``, ``mean + sd`` if numeric, as brms). Every
other predictor is held at its mean (numeric) or its reference level (categorical), unless
``conditions`` gives a value. The expected response at each grid point is computed with
formulahier's own prediction (:func:`formulahier.predict.predict`, ``kind="mean"``), by default
without group-level effects (brms's ``re_formula = NA``).

This module does not import :mod:`formulahier.fitted`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import predict as _predict
from .errors import DataError
from .validate import probability

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ConditionalEffects", "conditional_effects", "default_effects"]

RESOLUTION = 100  # grid points of a numeric predictor (brms's ``resolution``)


@dataclass
class ConditionalEffects:
    """What :meth:`formulahier.Fit.conditional_effects` returns.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per grid point: ``effect`` (e.g. ``"Days"`` or ``"Days:f"``), the predictor
        columns of the grid, ``estimate`` (posterior mean of the expected response),
        ``std_error``, ``lower``, ``upper`` (equal-tailed interval at ``ci_prob``).
    figure : matplotlib.figure.Figure
        One panel per effect; save it with ``figure.savefig("file.png")``.
    frames : dict of str to DataFrame
        ``data`` split by effect.

    """

    data: pd.DataFrame
    figure: Figure
    frames: dict

    def savefig(self, path, **kwargs) -> None:
        """Save the figure (``matplotlib.figure.Figure.savefig``)."""
        self.figure.savefig(path, **kwargs)

    def __repr__(self) -> str:
        return f"<ConditionalEffects of {list(self.frames)}: {len(self.data)} grid points>"


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _levels(series: pd.Series) -> list:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.cat.categories if (series == c).any()]
    return sorted(series.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))


def _population_variables(fh_model) -> list[str]:
    import formulae as fm

    desc = fm.model_description(fh_model.spec.population)
    names = []
    for term in desc.terms:
        names += sorted(getattr(term, "var_names", set()) - {""})
    return [n for n in dict.fromkeys(names) if n in fh_model.data.columns]


def default_effects(fh_model) -> list[str]:
    """Every population-level predictor and two-way interaction (as brms)."""
    import formulae as fm

    out = list(_population_variables(fh_model))
    for term in fm.model_description(fh_model.spec.population).terms:
        names = [n for n in getattr(term, "var_names", set()) if n]
        if len(names) == 2 and all(n in fh_model.data.columns for n in names):
            text = str(term)
            names.sort(key=lambda n: text.find(n))
            out.append(":".join(names))
    return list(dict.fromkeys(out))


def _grid(
    fh_model, effect: str, conditions: Mapping, columns: list[str], factors: set[str]
) -> pd.DataFrame:
    data = fh_model.data
    parts = effect.split(":")
    if len(parts) > 2 or not all(parts):
        raise DataError(f"An effect is one predictor or two joined by ':', got {effect!r}.")
    for name in parts:
        if name not in data.columns:
            raise DataError(
                f"Effect {effect!r}: '{name}' is not a column of the model's data; "
                f"predictors: {_population_variables(fh_model)}."
            )
    x = data[parts[0]]
    xs = np.linspace(x.min(), x.max(), RESOLUTION) if _is_numeric(x) else _levels(x)
    grid = pd.DataFrame({parts[0]: xs})
    if len(parts) == 2:
        z = data[parts[1]]
        if _is_numeric(z):
            mean, sd = float(z.mean()), float(z.std())
            zs = [mean - sd, mean, mean + sd]
        else:
            zs = _levels(z)
        grid = grid.merge(pd.DataFrame({parts[1]: zs}), how="cross")
    for name in columns:
        if name in grid.columns:
            continue
        if name in conditions:
            value = conditions[name]
        elif name in factors:  # a grouping factor: only where asked for (see the caller)
            continue
        elif _is_numeric(data[name]):
            value = float(data[name].mean())
        else:
            value = _levels(data[name])[0]
        grid[name] = [value] * len(grid)
        if isinstance(data[name].dtype, pd.CategoricalDtype):
            grid[name] = pd.Categorical(grid[name], categories=data[name].cat.categories)
    return grid


def conditional_effects(
    fitted,
    effects=None,
    re_formula: str | None = "~0",
    ci_prob: float = 0.95,
    conditions: Mapping | None = None,
    points: bool = False,
) -> ConditionalEffects:
    """Conditional effects of a fit (see :meth:`formulahier.Fit.conditional_effects`)."""
    ci_prob = probability(ci_prob, "ci_prob", error=DataError)
    fh_model = fitted.fh_model
    conditions = dict(conditions or {})
    effects = default_effects(fh_model) if effects is None else effects
    effects = [effects] if isinstance(effects, str) else list(effects)
    if not effects:
        raise DataError("The model has no population-level predictor to show; name one.")
    blocks = _predict._select_blocks(fh_model, re_formula)
    columns = sorted(_predict._var_names(fh_model, blocks) & set(fh_model.data.columns))
    columns = [c for c in columns if c != fh_model.spec.response]
    factors = {part for b in fh_model.blocks for part in b.block.factor.split(":")}
    unknown = sorted(set(conditions) - set(fh_model.data.columns))
    if unknown:
        raise DataError(f"conditions names {unknown}, which are not columns of the data.")
    frames = {}
    for effect in effects:
        grid = _grid(fh_model, str(effect), conditions, columns, factors)
        missing = [
            b.block.factor
            for b in blocks
            if any(part not in grid for part in b.block.factor.split(":"))
        ]
        if missing:
            raise DataError(
                f"re_formula={re_formula!r} includes the group-level effects of {missing}: say "
                f"which level, e.g. conditions={{'{missing[0]}': ...}}, or show one line per "
                f"level with '{effect}:{missing[0]}'; re_formula='~0' (the default) gives the "
                "population-level line."
            )
        table = fitted.predict(grid, kind="mean", re_formula=re_formula, ci_prob=ci_prob)
        frame = pd.concat([grid.reset_index(drop=True), table.reset_index(drop=True)], axis=1)
        frame.insert(0, "effect", str(effect))
        frames[str(effect)] = frame
    data = pd.concat(frames.values(), ignore_index=True)
    figure = _plot(frames, fh_model, ci_prob, points)
    return ConditionalEffects(data=data, figure=figure, frames=frames)


def _plot(frames: dict, fh_model, ci_prob: float, points: bool):
    import matplotlib.pyplot as plt

    n = len(frames)
    ncol = min(n, 3)
    nrow = -(-n // ncol)
    many = any(
        ":" in effect and frame[effect.split(":")[1]].nunique() > 6
        for effect, frame in frames.items()
    )
    width = 6.2 if many else 5.0  # room for a legend beside the panel
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(width * ncol, 3.8 * nrow), squeeze=False, layout="constrained"
    )
    response = fh_model.spec.response
    data = fh_model.data
    for ax, (effect, frame) in zip(axes.ravel(), frames.items(), strict=False):
        parts = effect.split(":")
        x = parts[0]
        numeric = _is_numeric(data[x])
        if points and response in data.columns:
            _observed(ax, data, x, response, numeric, frame)
        if len(parts) == 1:
            _draw(ax, frame, x, numeric, "C0", None, 0.0, 0.2)
        else:
            z = parts[1]
            values = list(dict.fromkeys(frame[z].tolist()))
            width = 0.6 / max(len(values), 1)
            colors = _colors(len(values))
            alpha = 0.2 if len(values) <= 4 else 0.07
            for k, value in enumerate(values):
                sub = frame[frame[z] == value]
                label = f"{value:.3g}" if isinstance(value, float) else str(value)
                offset = (k - (len(values) - 1) / 2) * width
                _draw(ax, sub, x, numeric, colors[k], label, offset, alpha)
            legend = {"title": z, "fontsize": 8, "title_fontsize": 8}
            if len(values) > 6:  # beside the panel, not over the lines
                legend.update(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
                legend["ncol"] = 1 if len(values) <= 20 else 2
            ax.legend(**legend)
        ax.set_xlabel(x)
        ax.set_ylabel(response)
        ax.set_title(f"{effect}  ({100 * ci_prob:g}% interval)", fontsize=10)
    for ax in axes.ravel()[n:]:
        fig.delaxes(ax)
    return fig


def _colors(n: int) -> list:
    import matplotlib as mpl

    if n <= 10:
        return [f"C{k}" for k in range(n)]
    cmap = mpl.colormaps["tab20" if n <= 20 else "viridis"]
    return [cmap(k) if n <= 20 else cmap(k / (n - 1)) for k in range(n)]


def _draw(ax, frame, x, numeric, color, label, offset, alpha):
    if numeric:
        ax.fill_between(frame[x], frame["lower"], frame["upper"], color=color, alpha=alpha, lw=0)
        ax.plot(frame[x], frame["estimate"], color=color, lw=2, label=label)
        return
    pos = np.arange(len(frame)) + offset
    est = frame["estimate"].to_numpy()
    err = [est - frame["lower"].to_numpy(), frame["upper"].to_numpy() - est]
    ax.errorbar(pos, est, yerr=err, fmt="o", color=color, capsize=4, label=label)
    ax.set_xticks(np.arange(len(frame)), [str(v) for v in frame[x]])


def _observed(ax, data, x, response, numeric, frame):
    y = data[response]
    if numeric:
        ax.scatter(data[x], y, s=8, color="0.55", alpha=0.6, lw=0, label=None, zorder=0)
        return
    levels = list(dict.fromkeys(frame[x].tolist()))
    index = {str(v): i for i, v in enumerate(levels)}
    pos = data[x].astype(str).map(index)
    keep = pos.notna()
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, int(keep.sum()))
    ax.scatter(pos[keep] + jitter, y[keep], s=8, color="0.55", alpha=0.6, lw=0, zorder=0)
