"""Laplace approximation of a collapsed model's few hyperparameters, on one compiled gradient.

A collapsed gaussian model (``formulahier.collapsed``) has its group effects, and its population
effects' dependence on them, integrated out: what is left to approximate is a handful of
hyperparameters (sigma, the group sds and correlations, a whitened population vector), whatever
the number of rows or levels. For that a Laplace approximation needs one log-density-and-gradient
function and little else:

* the function is :func:`formulahier.callback_nuts._joined_functions` (the one NUTS's callback
  route compiles: PyTensor, numba linker) and an ``expand`` function from the flat unconstrained
  point to the variables a trace keeps;
* the mode is found by :func:`scipy.optimize.minimize` (L-BFGS-B, what ``pm.find_MAP`` and
  pymc-extras call) on that function;
* the curvature at the mode is a central finite difference of the exact gradient (``2 d`` calls
  for ``d`` hyperparameters), not a second compiled graph;
* ``q = Normal(mode, H^-1)`` in the unconstrained space; its draws are expanded to the kept
  variables one by one and the Pareto k-hat of ``p / q`` is computed on them with the same
  compiled log-density (:mod:`formulahier.approx_check`).

pymc-extras' ``fit_laplace`` does the same steps but compiles its own loss, gradient, Hessian and
sampling graphs: 5-9 s on the ozone model, where the steps above take a fraction of a second once
the gradient is compiled (measurements: docs/performance.md, benchmarks/approx.py). Non-collapsed
models, whose group effects are parameters too, keep pymc-extras' route.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import SamplerError

__all__ = ["collapsed_laplace"]

KHAT_MAX_DRAWS = 4000  # draws of q whose log-density is evaluated for the k-hat


def collapsed_laplace(model, draws: int, chains: int, seed):
    """``(posterior, log_p, log_q, phases)``: a Laplace approximation of ``model``'s free variables.

    ``posterior``: ``chains x draws`` independent draws of the kept variables (constrained
    scale, PyMC's names and dims) as an ``xarray.Dataset``; ``log_p`` and ``log_q``: the
    unnormalised log-densities of the first (at most :data:`KHAT_MAX_DRAWS`) draws under the
    model and under the approximation, for the k-hat; ``phases``: seconds per step (compile,
    mode, curvature, k-hat, expand).
    """
    from scipy.optimize import minimize

    from .callback_nuts import _joined_functions

    clock = _Clock()
    start = model.initial_point()
    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    logp_grad, expand, names = _joined_functions(model, start)
    x0 = np.concatenate([np.asarray(start[n], dtype="float64").ravel() for n in value_names])
    logp_grad(x0)  # the numba linker compiles on the first call
    clock.lap("compile")

    def loss(x):
        value, grad = logp_grad(x)
        value = float(value)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(x)
        return -value, -np.asarray(grad, dtype="float64")

    found = minimize(loss, x0, jac=True, method="L-BFGS-B", options={"maxiter": 10_000})
    if not np.isfinite(found.fun):
        raise SamplerError(
            "laplace: the optimiser found no point where the log-density is finite; "
            "run method='nuts' (the default)."
        )
    mode = found.x
    clock.lap("mode")
    chol = _precision_cholesky(logp_grad, mode)
    clock.lap("curvature")
    n = draws * chains
    rng = np.random.default_rng(None if seed is None else [int(seed), 29])
    z = rng.standard_normal((n, mode.size))
    # theta = mode + L^-T z has covariance (L L^T)^-1 = H^-1
    from scipy.linalg import solve_triangular

    theta = mode + solve_triangular(chol, z.T, lower=True, trans="T").T
    log_q = -0.5 * np.sum(z**2, axis=1)  # + log|L|, a constant: the k-hat ignores it
    m = min(n, KHAT_MAX_DRAWS)
    log_p = np.array([float(logp_grad(t)[0]) for t in theta[:m]])
    clock.lap("khat")
    posterior = _expanded(model, expand, names, theta, chains)
    clock.lap("expand")
    return posterior, log_p, log_q[:m], clock.phases


class _Clock:
    """Seconds since the last lap, by name."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._last
        self._last = now


def _precision_cholesky(logp_grad, mode: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of ``-Hessian`` of the log-density at ``mode``.

    Central differences of the exact gradient, step ``eps^(1/3)`` relative to each coordinate.
    """
    d = mode.size
    steps = np.cbrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(mode))
    hess = np.empty((d, d))
    for i in range(d):
        up, down = mode.copy(), mode.copy()
        up[i] += steps[i]
        down[i] -= steps[i]
        g_up = np.asarray(logp_grad(up)[1], dtype="float64")
        g_down = np.asarray(logp_grad(down)[1], dtype="float64")
        hess[:, i] = (g_up - g_down) / (2 * steps[i])
    precision = -(hess + hess.T) / 2
    try:
        if not np.isfinite(precision).all():
            raise np.linalg.LinAlgError
        return np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        raise SamplerError(
            "laplace: the log-density is not curved downwards in every direction at its mode "
            "(a flat direction or a mode on a boundary), so there is no Laplace approximation; "
            "run method='nuts' (the default)."
        ) from None


def _expanded(model, expand, names: list[str], theta: np.ndarray, chains: int):
    """The kept variables of every draw, as a ``(chain, draw, ...)`` ``xarray.Dataset``."""
    import xarray as xr

    values = [expand(t) for t in theta]
    n = theta.shape[0] // chains
    out = {}
    coords: dict = {"chain": np.arange(chains), "draw": np.arange(n)}
    for j, name in enumerate(names):
        stacked = np.stack([np.asarray(v[j], dtype="float64") for v in values])
        stacked = stacked[: chains * n].reshape(chains, n, *stacked.shape[1:])
        dims = list(model.named_vars_to_dims.get(name, ()))
        dims += [f"{name}_dim_{i}" for i in range(len(dims), stacked.ndim - 2)]
        for dim, size in zip(dims, stacked.shape[2:], strict=True):
            labels = model.coords.get(dim)
            coords[dim] = np.arange(size) if labels is None else np.asarray(labels)
        out[name] = (("chain", "draw", *dims), stacked)
    return xr.Dataset(out, coords=coords)
