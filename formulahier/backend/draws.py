"""Draws of a fitted model: stacked draws, block sds, and the exact draws of a collapsed fit."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..collapsed import draw_effects
from ..errors import PriorError
from .model import BlockInfo
from .seam import aliased_name

__all__ = ["add_exact_effects", "block_sds", "observed_data", "stacked_draws"]


def stacked_draws(posterior, name: str) -> np.ndarray:
    """Draws of a posterior variable as ``(sample, ...)`` (chains and draws flattened)."""
    values = posterior[name].to_numpy()
    return values.reshape(-1, *values.shape[2:])


def block_sds(posterior, info: BlockInfo) -> np.ndarray:
    """Per-column standard deviations of a block as ``(sample, column)``.

    From the posterior (``{term}_sigma``), or the prior's number where the sd is fixed.
    """
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    out = []
    for column in info.columns:
        name = f"{column.term}_sigma"
        if name in posterior:
            sd = stacked_draws(posterior, name)
            out.append(sd if column.index is None else sd[:, column.index])
            continue
        sigma = getattr(info.terms[column.term].prior, "args", {}).get("sigma")
        if not isinstance(sigma, (int, float, np.ndarray)):
            raise PriorError(
                f"The standard deviation of '{column.term}' is neither in the posterior "
                f"('{name}') nor a fixed number in its prior."
            )
        value = np.asarray(sigma, dtype=float)
        value = value if value.ndim == 0 or column.index is None else value[column.index]
        out.append(np.broadcast_to(value, (n,)))
    return np.stack(out, axis=-1)


def observed_data(bmb_model):
    """The ``observed_data`` group of a fit whose likelihood is a Potential (collapsed)."""
    name = aliased_name(bmb_model.response_term)
    y = np.asarray(bmb_model.response_term.data, dtype=float).ravel()
    return xr.Dataset({name: (("__obs__",), y)}, coords={"__obs__": np.arange(len(y))})


def _covariance(posterior, blocks: list[BlockInfo], n: int) -> np.ndarray:
    """Block-diagonal covariance of one level's effects per draw, ``(n, q, q)``."""
    q = sum(info.size for info in blocks)
    cov, start = np.zeros((n, q, q)), 0
    for info in blocks:
        sd = block_sds(posterior, info)  # (n, k)
        corr = stacked_draws(posterior, info.corr) if info.corr else np.eye(info.size)[None]
        sl = slice(start, start + info.size)
        cov[:, sl, sl] = sd[:, :, None] * corr * sd[:, None, :]
        start += info.size
    return cov


def add_exact_effects(bmb_model, posterior, seed=None, stats_raw=None):
    """Add every group effect of a collapsed fit, drawn from its exact conditional posterior.

    Stored as a full fit stores them: Bambi's names, dims ``(chain, draw[, expr], level)``.
    Nested factors: the outer level's effects first, then the inner given the outer.
    ``stats_raw``: the cross-products the draws condition on (default: all rows; k-fold gives
    those of a fold's training rows, ``_CollapsedPlan.fold_data``).
    """
    plan = bmb_model.fh_plan
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    n = n_chain * n_draw
    beta = np.concatenate([stacked_draws(posterior, v).reshape(n, -1) for v in plan.names], 1)
    covs = [_covariance(posterior, level, n) for level in plan.levels]
    sigma = stacked_draws(posterior, plan.sigma).reshape(n)
    rng = np.random.default_rng(None if seed is None else [int(seed), 17])
    cov = covs[0] if len(covs) == 1 else tuple(covs)
    stats = plan.stats_raw if stats_raw is None else stats_raw
    drawn = draw_effects(stats, beta, cov, sigma, rng)  # (n, J, q) per level
    drawn = [drawn] if len(covs) == 1 else list(drawn)
    new = {}
    for level, u in zip(plan.levels, drawn, strict=True):
        start = 0
        for info in level:
            for name, term in info.terms.items():
                new[name] = _stored(u[:, :, start : start + term.width], term, n_chain, n_draw)
                start += term.width
    return posterior.assign(new)


def _stored(values: np.ndarray, term, n_chain: int, n_draw: int) -> xr.DataArray:
    """One term's draws ``(n, levels, width)`` with Bambi's dims and coords."""
    data: np.ndarray
    dims: tuple[str, ...]
    if term.levels is None:
        data = values[..., 0].reshape(n_chain, n_draw, -1)
        dims = ("chain", "draw", term.factor_dim)
    else:  # (chain, draw, expr, level), as Bambi orders a full fit's dims
        data = np.swapaxes(values, 1, 2).reshape(n_chain, n_draw, term.width, -1)
        dims = ("chain", "draw", term.expr_dim, term.factor_dim)
    return xr.DataArray(data, dims=dims, coords=dict(term.coords))
