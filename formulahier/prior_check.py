"""Looking at priors: the table of prior slots (brms ``get_prior``) and prior predictive checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bambi as bmb
import numpy as np
import pandas as pd

from .priors import TO_BRMS, Resolved, slots
from .priors import fmt_number as _num

__all__ = [
    "PriorTable",
    "brms_text",
    "plot_prior_predictive",
    "prior_predictive",
    "prior_table",
    "pymc_text",
]

def brms_text(value: Any) -> str:
    """A Bambi prior (or a constant) in brms/Stan spelling, PyMC's when brms has no name."""
    if not isinstance(value, bmb.Prior):
        return f"constant({_num(value)})" if value is not None else ""
    known = TO_BRMS.get(value.name)
    if known is None or value.dist is not None or not set(value.args) <= set(known[1]):
        return pymc_text(value)
    name, params = known
    args = [p if not isinstance(p, str) else value.args.get(p) for p in params]
    if any(a is None or isinstance(a, bmb.Prior) for a in args):
        return pymc_text(value)
    return f"{name}({', '.join(_num(a) for a in args)})"


def pymc_text(value: Any) -> str:
    """A Bambi prior as PyMC would be called: ``HalfNormal(sigma=0.193)``."""
    if not isinstance(value, bmb.Prior):
        return _num(value) if value is not None else ""
    args = ", ".join(
        f"{k}={pymc_text(v) if isinstance(v, bmb.Prior) else _num(v)}"
        for k, v in value.args.items()
        if k != "transform"
    )
    return f"{value.name}({args})"


def prior_table(bambi_model, lkj_eta: float, lkj_eta_groups: Mapping[str, float],
                resolved: Resolved | None = None, dict_priors: Mapping | None = None
                ) -> pd.DataFrame:  # fmt: skip
    """Every prior slot of a built model, like brms's ``get_prior``.

    Parameters
    ----------
    bambi_model : formulahier.backend.HierModel
        The model (with the priors it will be built with).
    lkj_eta : float
        Default LKJ shape; ``lkj_eta_groups`` overrides it per grouping factor.
    lkj_eta_groups : mapping
        LKJ shape per grouping factor.
    resolved : Resolved, optional
        The user's brms-style priors, to mark slots ``"user"`` / ``"(vectorized)"``.
    dict_priors : mapping, optional
        The user's Bambi dict, to mark the terms it sets ``"user"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``prior`` (brms spelling), ``class``, ``coef``, ``group``, ``source``
        (``"default"``, ``"user"``, ``"(vectorized)"``), ``pymc`` (the PyMC distribution) and
        ``parameter`` (the PyMC variable it reaches).

    """
    resolved = resolved or Resolved()
    dict_priors = dict(dict_priors or {})
    parent = bambi_model.family.likelihood.parent
    comp = bambi_model.parameters[parent]
    rows = []

    def source(key, target=None):
        if key in resolved.sources:
            return resolved.sources[key]
        return "user" if target is not None and target in dict_priors else "default"

    def head(cls, group=""):
        key = (cls, "", group)
        src = source(key)
        if src == "default" and group and resolved.sources.get((cls, "", "")) == "user":
            src = "(vectorized)"
        rows.append([resolved.given.get(key, ""), cls, "", group, src, "", ""])

    lkj_user = lkj_eta != 2.0
    for slot in slots(bambi_model, bambi_model.fh_blocks):
        key = (slot.cls, slot.coef, slot.group)
        if slot.cls == "b" and not any(r[1] == "b" for r in rows):
            head("b")
        if slot.cls == "sd":
            if not any(r[1] == "sd" for r in rows):
                head("sd")
            if not any(r[1] == "sd" and r[3] == slot.group for r in rows):
                head("sd", slot.group)
        if slot.cls == "cor" and not any(r[1] == "cor" for r in rows):
            key0 = ("cor", "", "")
            src = source(key0) if key0 in resolved.sources else ("user" if lkj_user else "default")
            rows.append([f"lkj({_num(lkj_eta)})", "cor", "", "", src, "", ""])
        if slot.cls == "cor":
            eta = lkj_eta_groups.get(slot.group, lkj_eta)
            src = source(key)
            if src == "default" and lkj_user:
                src = "(vectorized)"
            rows.append([f"lkj({_num(eta)})", "cor", "", slot.group, src,
                         f"LKJCorr(eta={_num(eta)})", slot.parameter])  # fmt: skip
            continue
        value = _slot_prior(bambi_model, comp, slot)
        rows.append([brms_text(value), slot.cls, slot.coef, slot.group,
                     source(key, slot.target), pymc_text(value), slot.parameter])  # fmt: skip
    columns = ["prior", "class", "coef", "group", "source", "pymc", "parameter"]
    return PriorTable(rows, columns=columns)


class PriorTable(pd.DataFrame):
    """A DataFrame that prints whole, every row and column, as brms prints its prior tables.

    pandas cuts wide frames to the terminal (``...`` in place of columns); a prior table is
    read whole, so ``repr`` is :meth:`pandas.DataFrame.to_string`.
    """

    @property
    def _constructor(self):
        return PriorTable

    def __repr__(self) -> str:
        return self.to_string()


def _slot_prior(bambi_model: Any, comp: Any, slot: Any) -> Any:
    """The prior a slot other than ``cor`` has now (for ``sd``: the group sd's hyperprior)."""
    if slot.cls == "sd":
        value = bambi_model.fh_terms[slot.target].prior
        return value.args.get("sigma") if isinstance(value, bmb.Prior) else value
    if slot.cls in ("Intercept", "b"):
        return comp.terms[slot.target].prior
    return bambi_model.parameters[slot.target].prior


# --------------------------------------------------------------------------- prior predictive


def prior_predictive(bambi_model, draws: int = 500, seed: int | None = None):
    """Draw parameters and responses from the prior (no MCMC).

    Parameters
    ----------
    bambi_model : formulahier.backend.HierModel
        The model; built here if it is not yet.
    draws : int
        Number of prior draws.
    seed : int, optional
        Same seed, same draws.

    Returns
    -------
    xarray.DataTree
        Groups ``prior`` (parameters, Bambi's names), ``prior_predictive`` (the response, one
        value per observation and draw) and ``observed_data``.

    """
    if not bambi_model.built:
        bambi_model.build()
    return bambi_model.prior_predictive(draws=draws, random_seed=seed)


def _response(idata, bambi_model) -> tuple[str, np.ndarray, np.ndarray]:
    name = bambi_model.response_term.name
    pred = np.asarray(idata["prior_predictive"][name]).ravel()
    observed = np.asarray(idata["observed_data"][name]).ravel()
    return name, pred, observed


def plot_prior_predictive(idata, bambi_model, ax=None, bins: int = 80, clip: float = 0.005):
    """Histogram of the prior predictive response against the observed one.

    Parameters
    ----------
    idata : xarray.DataTree
        From :func:`prior_predictive`.
    bambi_model : bambi.Model
        The model (for the response name).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure otherwise.
    bins : int
        Histogram bins.
    clip : float
        Fraction of prior predictive draws cut from each tail of the x-range (the histogram of
        a very wide prior would otherwise be a single bar).

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the figure is ``ax.figure``. Nothing is shown or blocked on.

    """
    import matplotlib.pyplot as plt

    name, pred, observed = _response(idata, bambi_model)
    pred = pred[np.isfinite(pred)]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    lo, hi = np.quantile(pred, [clip, 1 - clip])
    lo, hi = min(lo, observed.min()), max(hi, observed.max())
    edges = np.linspace(lo, hi, bins + 1)
    ax.hist(pred, bins=edges, density=True, histtype="step", lw=1.5, label="prior predictive")
    ax.hist(observed, bins=edges, density=True, alpha=0.5, label="observed")
    inside = np.mean((pred >= observed.min()) & (pred <= observed.max()))
    ax.set_xlabel(name)
    ax.set_ylabel("density")
    ax.set_title(f"Prior predictive vs observed: {inside:.0%} of draws in the observed range")
    ax.legend(frameon=False)
    return ax
