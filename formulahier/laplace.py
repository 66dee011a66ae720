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
  pymc-extras call) on that function, and checked: the Newton step ``H^-1 g`` left at the point
  it stops must be under :data:`MODE_SDS` posterior sds (a few Newton steps on the curvature
  below first polish it); otherwise :class:`~formulahier.errors.SamplerError` says so;
* the curvature at the mode is a central finite difference of the exact gradient (``2 d`` calls
  for ``d`` hyperparameters), not a second compiled graph;
* ``q = Normal(mode, H^-1)`` in the unconstrained space; its draws are expanded to the kept
  variables and their log-density is evaluated with the same compiled function, for the
  Pareto k-hat of ``p / q`` and the PSIS weights (:mod:`formulahier.approx_check`), by which
  :func:`formulahier.approx.approximate` resamples them when ``k < 0.7``.

pymc-extras' ``fit_laplace`` does the same steps but compiles its own loss, gradient, Hessian and
sampling graphs: 5-9 s on the ozone model, where the steps above take a fraction of a second once
the gradient is compiled (measurements: docs/approximations.md, benchmarks/approx.py). Non-collapsed
models, whose group effects are parameters too, keep pymc-extras' route.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import SamplerError

__all__ = ["MODE_SDS", "collapsed_laplace", "draws_dataset"]

MODE_SDS = 0.05  # a mode farther than this (posterior sds, the Newton step) is refused
POLISH_STEPS = 3  # Newton steps on the finite-difference curvature after L-BFGS-B


def collapsed_laplace(model, draws: int, chains: int, seed, maxiter: int = 10_000):
    """``(pool, log_p, log_q, phases)``: ``draws * chains`` draws of a Laplace approximation.

    ``pool``: the draws of q, the kept variables (constrained scale, PyMC's names and dims) as
    an ``xarray.Dataset`` of one chain; ``log_p`` and ``log_q``: the unnormalised
    log-densities of every draw under the model and under q, for the k-hat and the PSIS weights;
    ``phases``: seconds per step (compile, mode, curvature, k-hat, expand). ``maxiter``:
    L-BFGS-B's iterations at most.
    """
    from scipy.linalg import solve_triangular

    from .callback_nuts import _direct, _joined_functions

    clock = _Clock()
    start = model.initial_point()
    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    logp_fn, expand_fn, names = _joined_functions(model, start)
    x0 = np.concatenate([np.asarray(start[n], dtype="float64").ravel() for n in value_names])
    logp_fn(x0)  # the numba linker compiles (or loads its cache) on the first call
    expand_fn(x0)
    logp_grad, expand = _direct(logp_fn), _direct(expand_fn)
    clock.lap("compile")
    found = _optimised(logp_grad, x0, maxiter)
    clock.lap("mode")
    mode, chol = _polished(logp_grad, found)
    clock.lap("curvature")
    n = draws * chains
    rng = np.random.default_rng(None if seed is None else [int(seed), 29])
    z = rng.standard_normal((n, mode.size))
    # theta = mode + L^-T z has covariance (L L^T)^-1 = H^-1
    theta = mode + solve_triangular(chol, z.T, lower=True, trans="T").T
    log_q = -0.5 * np.sum(z**2, axis=1)  # + log|L|, a constant: the weights ignore it
    log_p = np.array([float(logp_grad(t)[0]) for t in theta])
    clock.lap("khat")
    pool = draws_dataset(model, dict(zip(names, _stacked(expand, theta), strict=True)), 1)
    clock.lap("expand")
    return pool, log_p, log_q, clock.phases


class _Clock:
    """Seconds since the last lap, by name."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._last
        self._last = now


def _optimised(logp_grad, x0: np.ndarray, maxiter: int):
    """The L-BFGS-B (scipy) result for the maximum of the log-density from ``x0``.

    ``ftol`` and ``gtol`` far below scipy's defaults: with 10^6 rows the log-density is in the
    millions, and the default relative ``ftol`` stops a few hundredths of a posterior sd short
    of the mode (the Newton step of :func:`_polished` measures it).
    """
    from scipy.optimize import minimize

    def loss(x):
        value, grad = logp_grad(x)
        value = float(value)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(x)
        return -value, -np.asarray(grad, dtype="float64")

    options = {"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-9}
    found = minimize(loss, x0, jac=True, method="L-BFGS-B", options=options)
    if not np.isfinite(found.fun):
        raise SamplerError(
            "laplace: the optimiser found no point where the log-density is finite; "
            "run method='nuts' (the default)."
        )
    return found


def _polished(logp_grad, found) -> tuple[np.ndarray, np.ndarray]:
    """``(mode, Cholesky factor of -H)`` after a few Newton steps from L-BFGS-B's point.

    The distance to the mode is the Newton step in posterior sds, ``sqrt(g' H^-1 g)``; over
    :data:`MODE_SDS` after the steps (L-BFGS-B stopped early: ``maxiter``, a line search that
    failed far from the mode) is a :class:`SamplerError`, never a silent answer.
    """
    from scipy.linalg import cho_solve

    mode = np.asarray(found.x, dtype="float64")
    try:
        chol = _precision_cholesky(logp_grad, mode)
    except SamplerError:
        if found.success:
            raise
        raise _not_found(found, float("inf")) from None
    for step in range(POLISH_STEPS + 1):
        grad = np.asarray(logp_grad(mode)[1], dtype="float64")
        newton = cho_solve((chol, True), grad)
        distance = float(np.sqrt(max(grad @ newton, 0.0)))
        if distance < 1e-3 or step == POLISH_STEPS or not np.isfinite(distance):
            break
        ahead = mode + newton
        if not np.isfinite(float(logp_grad(ahead)[0])):
            break
        mode = ahead
    if not distance <= MODE_SDS:
        raise _not_found(found, distance)
    if step:  # the mode moved: the curvature there
        chol = _precision_cholesky(logp_grad, mode)
    return mode, chol


def _not_found(found, distance: float) -> SamplerError:
    where = (
        "where the curvature is not that of a maximum"
        if not np.isfinite(distance)
        else f"{distance:.2g} posterior sds (a Newton step) from the mode"
    )
    return SamplerError(
        f"laplace: the optimiser (L-BFGS-B) stopped after {found.nit} iterations "
        f"({found.message}) at a point {where}, so there is no Laplace approximation "
        "to give; run method='nuts' (the default)."
    )


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


def _stacked(expand, theta: np.ndarray) -> list[np.ndarray]:
    """``expand`` at every row of ``theta``: one ``(draws, ...)`` array per kept variable."""
    first = [np.asarray(v, dtype="float64") for v in expand(theta[0])]
    out = [np.empty((theta.shape[0], *v.shape)) for v in first]
    for array, value in zip(out, first, strict=True):
        array[0] = value
    for i in range(1, theta.shape[0]):
        for array, value in zip(out, expand(theta[i]), strict=True):
            array[i] = value
    return out


def draws_dataset(model, named: dict[str, np.ndarray], chains: int):
    """``name -> (draws, ...)`` arrays as a ``(chain, draw, ...)`` ``xarray.Dataset``.

    The model's dims and coordinates name the extra axes (``name_dim_i`` where it has none);
    the draws are split into ``chains`` chains in order (a remainder is dropped).
    """
    import xarray as xr

    total = len(next(iter(named.values()))) if named else 0
    n = total // chains
    out = {}
    coords: dict = {"chain": np.arange(chains), "draw": np.arange(n)}
    for name, stacked in named.items():
        stacked = np.asarray(stacked)[: chains * n].reshape(chains, n, *np.shape(stacked)[1:])
        dims = list(model.named_vars_to_dims.get(name, ()))
        dims += [f"{name}_dim_{i}" for i in range(len(dims), stacked.ndim - 2)]
        for dim, size in zip(dims, stacked.shape[2:], strict=True):
            labels = model.coords.get(dim)
            coords[dim] = np.arange(size) if labels is None else np.asarray(labels)
        out[name] = (("chain", "draw", *dims), stacked)
    return xr.Dataset(out, coords=coords)
