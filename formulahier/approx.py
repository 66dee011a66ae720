"""Fast approximate posteriors: Laplace, Pathfinder and ADVI, with a Pareto k-hat check.

``fh.fit(..., method="laplace" | "pathfinder" | "advi")`` runs, on the same PyMC model that NUTS
would sample, one of the approximations PyMC and pymc-extras provide (no optimiser of our own):

* ``"laplace"``: for a collapsed gaussian model (group effects integrated out, a handful of
  hyperparameters left) :func:`formulahier.laplace.collapsed_laplace`: scipy's L-BFGS-B on the
  log-density and gradient that NUTS's callback route compiles, the curvature by finite
  differences of that exact gradient; where the Pareto k-hat of its draws is below 0.7 they
  are resampled by their PSIS weights p/q (importance resampling: they then estimate p, not
  q), and the group effects are drawn exactly given each draw, as after NUTS. Any other
  model: :func:`pymc_extras.fit_laplace` (mode and curvature of all its free variables, group
  effects included, which costs pymc-extras' own compiles); q's own draws are kept.
* ``"pathfinder"``: :func:`pymc_extras.fit_pathfinder` (multi-path, importance resampled).
* ``"advi"``: :func:`pymc.fit` with mean-field ADVI.

Whether the approximation can be trusted is :mod:`formulahier.approx_check`: the Pareto k-hat
of the importance ratios p/q (PSIS) and what reweighting q's draws by p/q moves. For Pathfinder,
whose draws are importance-resampled already, the ``k`` is pymc-extras's own, of its multi-path
importance ratios (from pymc-extras 0.15.1; 0.15.0 computed it on the reciprocal ratios, and
then the summary says the accuracy is unknown and names NUTS).
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .approx_check import KHAT_OK, Check, check_weighted, psis_log_weights, psis_resample
from .errors import SamplerError
from .progress import quiet_logger

__all__ = ["APPROXIMATIONS", "METHODS", "Approximation", "approximate"]

METHODS = ("nuts", "laplace", "pathfinder", "advi")
APPROXIMATIONS = METHODS[1:]
KHAT_DRAWS = 1000  # draws from q used for the k-hat
PSIS_RESAMPLE = True  # False: the collapsed Laplace keeps q's own draws (benchmarks compare)


@dataclass
class Approximation:
    """Draws of an approximate posterior and how far they can be trusted."""

    posterior: object  # xarray.Dataset (chain, draw, ...), constrained values, Bambi's names
    check: Check  # Pareto k-hat of p / q, and what reweighting by p / q moves
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, where known


def _pmx():
    try:
        import pymc_extras
    except ImportError:
        raise SamplerError(
            "The laplace and pathfinder methods need pymc-extras, which is not installed. "
            "Install it with `pip install 'formulahier[approx]'`, or use method='advi' or "
            "method='nuts'."
        ) from None
    return pymc_extras


Columns = Callable[[object], dict[str, np.ndarray]]


def approximate(
    model,
    method: str,
    draws: int,
    chains: int,
    seed,
    progressbar: bool,
    collapsed: bool = False,
    columns: Columns | None = None,
):
    """Run ``method`` on the PyMC ``model``; ``draws x chains`` draws as ``chains`` chains.

    ``collapsed``: the model's group effects are integrated out (a few hyperparameters are
    left), and ``"laplace"`` then runs on the compiled gradient (:mod:`.laplace`); its draws
    are PSIS-resampled by p/q where the k-hat is below 0.7 (``check.resampled``).
    ``columns``: from draws of the kept variables (an ``xarray.Dataset``, PyMC's names) to
    ``name -> (draws,)`` values of the quantities the fit reports, under the names the verdict
    should use (the summary's: ``b_Days``, ``sd(Days)``); default :func:`_scalars` (PyMC's).
    """
    import pytensor

    n = draws * chains
    start = time.perf_counter()
    if method == "laplace" and collapsed:
        from .laplace import collapsed_laplace

        pool, log_p, log_q, phases = collapsed_laplace(model, draws, chains, seed)
        begun = time.perf_counter()
        log_w, khat = psis_log_weights(log_p, log_q)
        check = _check_weighted(log_w, khat, (columns or _scalars)(pool))
        posterior = pool
        # below 0.7 the weighted draws estimate p: resample them by their weights
        if PSIS_RESAMPLE and log_w is not None and khat < KHAT_OK:
            rng = np.random.default_rng(None if seed is None else [int(seed), 31])
            posterior = pool.isel(draw=psis_resample(log_w, n, rng))
            check = replace(check, resampled=True)
        phases["check"] = time.perf_counter() - begun
        seconds = time.perf_counter() - start
        return Approximation(_as_chains(posterior, chains), check, seconds, phases)
    # a constant-folding rewrite of pymc-extras's graphs fails harmlessly (it is skipped) and
    # PyTensor would log its traceback; pymc-extras's own warnings are replaced by the k-hat
    with warnings.catch_warnings(), pytensor.config.change_flags(on_opt_error="ignore"):
        warnings.simplefilter("ignore")
        if method == "laplace":
            idata = _pmx().fit_laplace(
                model=model, draws=n, random_seed=seed, progressbar=progressbar
            )
            rows = [str(r) for r in idata["fit"]["mean_vector"].coords["rows"].values]
            mean = idata["fit"]["mean_vector"].values
            cov = idata["fit"]["covariance_matrix"].values
            check = _gaussian_check(model, rows, mean, cov, seed, columns)
            posterior = idata["posterior"].to_dataset()
        elif method == "pathfinder":
            idata = _pmx().fit_pathfinder(
                model=model, num_draws=n, random_seed=seed, progressbar=progressbar
            )
            # its draws are importance-resampled already: the k-hat alone
            check = Check(_pathfinder_khat(idata))
            posterior = idata["posterior"].to_dataset()
        elif method == "advi":
            import pymc as pm

            # pm.fit logs a "Finished [100%]" line
            with quiet_logger("pymc.variational.inference", logging.WARNING):
                fitted = pm.fit(
                    method="advi", model=model, random_seed=seed, progressbar=progressbar
                )
            posterior = fitted.sample(n, random_seed=seed, return_inferencedata=True)
            posterior = posterior["posterior"].to_dataset()
            mean, std = fitted.mean.eval(), fitted.std.eval()
            rows = _rows_of(fitted.ordering, mean.size)
            check = _gaussian_check(model, rows, mean, np.diag(std**2), seed, columns)
        else:  # pragma: no cover - checked by the caller
            raise SamplerError(f"Unknown method {method!r}; one of {list(APPROXIMATIONS)}.")
    posterior = _as_chains(posterior, chains)
    return Approximation(posterior, check, time.perf_counter() - start)


def _pathfinder_khat(idata) -> float:
    """pymc-extras's Pareto k-hat of Pathfinder's importance ratios p/q (nan if unknown).

    pymc-extras 0.15.0 passed its log importance weights to arviz-stats's ``psislw``, which
    negates its input (the LOO convention), so its k-hat was that of q/p; 0.15.1 negates them
    first, which makes it the k-hat of p/q.
    """
    from importlib.metadata import version

    release = tuple(int(p) for p in re.findall(r"\d+", version("pymc-extras"))[:3])
    group = idata.children.get("pathfinder") if release >= (0, 15, 1) else None
    if group is None or "pareto_k" not in group:
        return float("nan")
    return float(group["pareto_k"].values)


def _as_chains(posterior, chains: int):
    """``(1, chains * draws)`` iid draws as ``(chains, draws)``, so every summary works."""
    posterior = posterior.stack(__sample__=("chain", "draw")).transpose("__sample__", ...)
    n = posterior.sizes["__sample__"] // chains * chains
    posterior = posterior.isel(__sample__=slice(0, n)).drop_vars(["__sample__", "chain", "draw"])
    out = {}
    for name, da in posterior.data_vars.items():
        values = da.values.reshape(chains, n // chains, *da.shape[1:])
        out[name] = (("chain", "draw", *da.dims[1:]), values)
    import xarray as xr

    coords = {k: v for k, v in posterior.coords.items() if k not in ("chain", "draw")}
    coords.update(chain=np.arange(chains), draw=np.arange(n // chains))
    return xr.Dataset(out, coords=coords)


def _rows_of(ordering, size: int) -> list[str]:
    """Row labels ``name`` / ``name[i]`` of a flat vector laid out by a PyMC ordering."""
    rows = [""] * size
    for name, slc, shape, _ in ordering.values():
        width = slc.stop - slc.start
        labels = [name] if shape == () else [f"{name}[{i}]" for i in range(width)]
        rows[slc] = labels
    return rows


_BASE = re.compile(r"^(.*?)(\[[^\]]*\])?$")


def _scalars(posterior) -> dict[str, np.ndarray]:
    """Every draw of the quantities a fit reports, under PyMC's names (see :func:`_columns`)."""
    return _columns(
        (name, da.to_numpy().reshape(-1, *da.shape[2:])) for name, da in posterior.items()
    )


def _columns(named) -> dict[str, np.ndarray]:
    """``name[i]`` -> draws, of each ``(name, (draw, ...) array)``.

    Offsets and variables of more than 100 values (group effects, per-observation values) are
    left out.
    """
    out = {}
    for name, values in named:
        if name.endswith(("_offset", "_chol", "__")) or values[0].size > 100:
            continue
        values = values.reshape(values.shape[0], -1)
        for i in range(values.shape[1]):
            out[name if values.shape[1] == 1 else f"{name}[{i}]"] = values[:, i]
    return out


_SCALES = ("sigma", "alpha", "kappa", "nu", "phi", "shape")  # (name endings) sds, dispersions


def _check_weighted(log_w, khat: float, columns: dict[str, np.ndarray]) -> Check:
    """:func:`check_weighted`, each column judged by what it is (by either naming).

    Correlations: ``cor(...)`` (the summary's) or ``..._corr[i]`` (PyMC's); scales:
    ``sd(...)``, sigma and the other family scales; everything else (``b_...``) by its sd.
    """
    correlations = {c for c in columns if c.startswith("cor(") or _base(c).endswith("_corr")}
    scales = {
        c
        for c in columns
        if c.startswith("sd(") or (not c.startswith("b_") and _base(c).endswith(_SCALES))
    }
    return check_weighted(log_w, khat, columns, correlations, scales)


def _base(name: str) -> str:
    return name.split("[")[0]


def _gaussian_check(model, rows: list[str], mean, cov, seed, columns: Columns | None = None):
    """The :class:`Check` of q = Normal(mean, cov) over the unconstrained ``rows``.

    The moves are those of the quantities the fit reports (constrained: sigma, the sds, the
    correlations, the population effects) at q's draws; ``columns`` as in :func:`approximate`.
    """
    from .laplace import draws_dataset

    try:
        points = _points(model, rows)
        if points is None:
            return Check(float("nan"))
        rng = np.random.default_rng(None if seed is None else [int(seed), 23])
        chol = np.linalg.cholesky(np.asarray(cov, dtype=float))
        z = rng.standard_normal((KHAT_DRAWS, len(mean)))
        theta = mean + z @ chol.T
        logq = -0.5 * np.sum(z**2, axis=1) - np.log(np.diag(chol)).sum()
        logp_fn = model.compile_logp(jacobian=True)
        logp = np.array([logp_fn(points(t)) for t in theta], dtype=float)
    except (np.linalg.LinAlgError, ValueError):  # no draws of q to weigh: accuracy unknown
        return Check(float("nan"))
    from .callback_nuts import kept_variables

    kept = kept_variables(model)  # without Bambi's mean (``p``, ``mu``: one value per row)
    expand = model.compile_fn(kept, inputs=model.value_vars, on_unused_input="ignore")
    values = [expand(points(t)) for t in theta]
    named = {v.name: np.stack([np.asarray(d[j]) for d in values]) for j, v in enumerate(kept)}
    log_w, khat = psis_log_weights(logp, logq)
    return _check_weighted(log_w, khat, (columns or _scalars)(draws_dataset(model, named, 1)))


def _points(model, rows: list[str]):
    """A function from a flat unconstrained vector in ``rows`` order to a point dict."""
    index: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        found = _BASE.match(row)
        index.setdefault(found.group(1) if found else row, []).append(i)
    start = model.initial_point()
    shapes = {v.name: np.shape(start[v.name]) for v in model.value_vars}
    missing = set(shapes) - set(index)
    if missing:  # a variable the approximation did not lay out: no k-hat
        return None

    def point(theta):
        return {name: theta[index[name]].reshape(shape) for name, shape in shapes.items()}

    return point
