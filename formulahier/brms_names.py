"""Posterior draws under brms's names: ``b_Days``, ``sd_Subject__Days``, ``r_Subject[308,Days]``.

brms names every parameter of a multilevel model in one flat scheme; R users know it from
``as_draws_df(m)``, ``plot(m)`` and ``hypothesis(m, ...)``. This module maps the PyMC/Bambi
variables of a fit to that scheme:

=====================================  =================================================
brms                                   what
=====================================  =================================================
``b_Intercept``, ``b_Days``, ``b_fb``  population-level effects (``f[b]`` -> ``fb``)
``b_sigma_Intercept``                  population effects of a distributional formula
``sd_Subject__Intercept``              standard deviation of a group-level effect
``cor_Subject__Intercept__Days``       correlation of two group-level effects
``sigma``, ``shape``, ``phi``, ``nu``  family parameters
``r_Subject[308,Days]``                group-level deviation of one level
=====================================  =================================================

Labels are cleaned as brms's ``rename()`` does (spaces, brackets and commas removed, ``+`` ->
``P``, ``-`` -> ``M``, ``*`` -> ``MU``, ``/`` -> ``D``, ``^`` -> ``E``, ``=`` -> ``EQ``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["GROUP_COLUMNS_LIMIT", "brms_label", "brms_links", "draws_frame", "scalar_draws"]

# as_draws_df includes the r_ columns by default only up to this many
GROUP_COLUMNS_LIMIT = 5000

_RENAME = [(" ", ""), ("(", ""), (")", ""), ("[", ""), ("]", ""), (",", ""), ('"', ""), ("'", "")]
_RENAME += [("?", ""), ("+", "P"), ("-", "M"), ("*", "MU"), ("/", "D"), ("^", "E"), ("=", "EQ")]

# Bambi's names of family parameters -> brms's, where they differ
_FAMILY_PARAMS = {
    ("negativebinomial", "alpha"): "shape",
    ("gamma", "alpha"): "shape",
    ("weibull", "alpha"): "shape",
    ("beta", "kappa"): "phi",
}


def brms_label(name: str) -> str:
    """A Bambi term label as brms spells it: ``f[b]`` -> ``fb``, ``x:f[b]`` -> ``x:fb``."""
    for old, new in _RENAME:
        name = name.replace(old, new)
    return name


def _sd_cor_name(label: str, factor: str) -> str:
    inner = label[label.index("(") + 1 : -1]
    kind = label[: label.index("(")]
    parts = [brms_label(p) for p in inner.split(",")]
    return f"{kind}_{factor}__" + "__".join(parts)


def scalar_draws(view) -> dict[str, xr.DataArray]:
    """brms-named draws of every scalar parameter (no ``r_`` effects), in brms's order.

    ``b_*`` (population), ``sd_*`` and ``cor_*`` (per grouping factor), then the family
    parameters. Each value is a ``(chain, draw)`` array.
    """
    out = {f"b_{brms_label(k)}": v for k, v in view.population_draws().items()}
    for factor in view.factors():
        for label, da in view.group_draws(factor).items():
            out[_sd_cor_name(label, factor)] = da
    family = view.bmb_model.family.name
    for name, da in view.family_draws().items():
        out[_FAMILY_PARAMS.get((family, name), name)] = da
    return {k: v.reset_coords(drop=True).transpose("chain", "draw") for k, v in out.items()}


def _group_effect_columns(view) -> dict[str, np.ndarray]:
    """``r_<factor>[<level>,<effect>]`` columns as flat ``(chain*draw,)`` arrays."""
    columns: dict[str, np.ndarray] = {}
    for factor in view.factors():
        for label, u, _pop in view._effect_draws(factor):
            level_dim = next(d for d in u.dims if d.endswith("__factor_dim"))
            values = u.transpose("chain", "draw", level_dim).to_numpy()
            values = values.reshape(-1, values.shape[-1])
            effect = brms_label(label)
            for j, level in enumerate(u[level_dim].values):
                columns[f"r_{factor}[{level},{effect}]"] = values[:, j]
    return columns


def n_group_columns(view) -> int:
    """How many ``r_`` columns :func:`draws_frame` would add."""
    levels = view.levels()
    return sum(
        len(info.columns) * levels[info.block.factor]
        for info in view.blocks
        if info.block.factor in levels
    )


def draws_frame(view, group_effects: bool | None = None) -> pd.DataFrame:
    """One row per posterior draw, brms's columns, and ``.chain``, ``.iteration``, ``.draw``.

    Parameters
    ----------
    view : formulahier.results.PosteriorView
        The posterior to read.
    group_effects : bool, optional
        Add the ``r_`` columns: ``None`` (default) when they are at most
        :data:`GROUP_COLUMNS_LIMIT`, ``True`` always, ``False`` never.

    Returns
    -------
    pandas.DataFrame

    """
    posterior = view.posterior
    nchain, ndraw = posterior.sizes["chain"], posterior.sizes["draw"]
    columns = {k: v.to_numpy().reshape(-1) for k, v in scalar_draws(view).items()}
    if group_effects is None:
        group_effects = n_group_columns(view) <= GROUP_COLUMNS_LIMIT
    if group_effects:
        columns.update(_group_effect_columns(view))
    frame = pd.DataFrame(columns)
    frame[".chain"] = np.repeat(np.arange(1, nchain + 1), ndraw)
    frame[".iteration"] = np.tile(np.arange(1, ndraw + 1), nchain)
    frame[".draw"] = np.arange(1, nchain * ndraw + 1)
    return frame


def brms_links(bmb_model) -> str:
    """The ``Links:`` line as brms prints it: ``mu = identity; sigma = identity``.

    As brms's ``summarise_links``: the mean gets the family's link; an auxiliary parameter
    shows its link only when it has its own formula (``fh.bf(..., sigma="~ x")``: ``sigma =
    log``), otherwise ``identity``, since it is then a plain parameter, not a linear predictor.
    """
    family = bmb_model.family
    parent = family.likelihood.parent
    modelled = set(bmb_model.conditional_parameters)
    parts = []
    for name, link in family.link.items():
        brms = "mu" if name == parent else _FAMILY_PARAMS.get((family.name, name), name)
        parts.append(f"{brms} = {link.name if name in modelled else 'identity'}")
    return "; ".join(parts)
