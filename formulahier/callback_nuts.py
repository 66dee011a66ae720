"""nutpie's NUTS on a PyTensor-compiled log-density that nutpie calls back in Python.

``pm.sample(nuts_sampler="nutpie")`` (Bambi's route) hands nutpie a numba *cfunc* of the
log-density: its NUTS loop then runs without the GIL, but numba compiles that cfunc again in
every process (it closes over the data, so numba cannot cache it): 10-15 s for sleepstudy on a
warm cache, where its NUTS loop takes 1-2 s. For a model whose gradient costs microseconds (every
collapsed gaussian model; small data) that compile is most of the fit.

This module gives nutpie the same log-density and gradient as a PyTensor function (numba
linker, so PyTensor's own on-disk numba cache applies) through nutpie's public
:func:`nutpie.compiled_pyfunc.from_pyfunc`: the NUTS loop, adaptation and draws are nutpie's;
each gradient is one call from Rust into Python. The chains run on one thread (``cores=1``):
Python callbacks from several threads wait on each other for the GIL. Which route a fit takes
is :func:`formulahier.samplers.nutpie_route`; the measurements are in docs/performance.md.
"""

from __future__ import annotations

import math
import threading
import time
from functools import wraps
from typing import Any

import numpy as np

__all__ = ["sample_callbacks"]


def _joined_functions(model, start: dict):
    """(logp-and-gradient function, expand function, kept names) of ``model``.

    Both functions take the flat unconstrained point (``start`` gives the value variables'
    shapes). ``expand`` returns the variables kept in the trace: every free variable on its
    constrained scale and every Deterministic except the per-observation ones (Bambi's ``mu``),
    as ``pm.sample`` keeps them for Bambi.
    """
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.graph import clone_replace

    value_vars = [model.rvs_to_values[rv] for rv in model.free_RVs]
    shapes = [tuple(np.shape(start[v.name])) for v in value_vars]
    offsets = np.cumsum([0, *[math.prod(s) for s in shapes]])
    x = pt.TensorType("float64", shape=(int(offsets[-1]),))("_unconstrained_point")
    replace = {
        v: x[int(a) : int(b)].reshape(s).astype(v.dtype)
        for v, a, b, s in zip(value_vars, offsets[:-1], offsets[1:], shapes, strict=True)
    }
    logp = model.logp()
    obs_dims = {"__obs__"}
    kept = [
        v
        for v in pm.util.get_default_varnames(
            model.unobserved_value_vars, include_transformed=False
        )
        if v not in model.deterministics
        or not obs_dims & set(model.named_vars_to_dims.get(v.name, ()))
    ]
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, value_vars)])
    logp_x, grad_x, *kept_x = clone_replace([logp, grad, *kept], replace)
    with model:
        logp_fn = pm.compile([x], [logp_x, grad_x], mode="NUMBA")
        expand_fn = pm.compile([x], kept_x, mode="NUMBA")
    logp_fn.trust_input = expand_fn.trust_input = True
    return logp_fn, expand_fn, [v.name for v in kept]


def _locked(func):
    lock = threading.Lock()

    @wraps(func)
    def wrapper(*args, **kwargs):
        with lock:
            return func(*args, **kwargs)

    return wrapper


def _compile(model):
    """A nutpie model (``from_pyfunc``) of ``model``'s log-density, with PyMC's initial points."""
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    # as nutpie's own compile: support points jittered by U(-1, 1) on the unconstrained scale
    start_fn = make_initial_point_fn(
        model=model, jitter_rvs=set(model.free_RVs), return_transformed=True
    )
    logp_fn, expand_fn, names = _joined_functions(model, start_fn(0))

    def initial_point(seed):
        start = start_fn(seed)
        return np.concatenate([np.asarray(start[n], dtype="float64").ravel() for n in value_names])

    x0 = initial_point(0)
    expanded = [np.asarray(v) for v in expand_fn(x0)]
    shapes = [v.shape for v in expanded]

    def make_logp():
        def logp(x, **_):
            value, grad = logp_fn(x)
            return float(value), np.asarray(grad, dtype="float64", order="C")

        return logp

    def make_expand(_seed1, _seed2, _chain):
        def expand(x, **_):
            values = expand_fn(x)
            return {
                n: np.asarray(v, dtype="float64", order="C").reshape(s)
                for n, v, s in zip(names, values, shapes, strict=True)
            }

        return expand

    import pandas as pd

    dims = {n: tuple(model.named_vars_to_dims[n]) for n in names if n in model.named_vars_to_dims}
    used = {d for ds in dims.values() for d in ds}
    coords = {  # as nutpie's own compile passes them
        k: pd.Index(range(int(model.dim_lengths[k].eval())) if v is None else v)
        for k, v in model.coords.items()
        if k in used
    }
    return from_pyfunc(
        ndim=x0.size,
        make_logp_fn=make_logp,
        make_expand_fn=make_expand,
        make_initial_point_fn=_locked(initial_point),
        expanded_dtypes=[np.dtype("float64")] * len(names),
        expanded_shapes=shapes,
        expanded_names=names,
        coords=coords,
        dims=dims,
    )


def sample_callbacks(
    model, *, draws: int, tune: int, chains: int, seed: int | None, progressbar: bool, **nuts: Any
):
    """Sample ``model`` with nutpie through Python callbacks; a DataTree as ``pm.sample``'s."""
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata
    from pymc.progress_bar.progress import NutpieProgressBarManager

    compiled = _compile(model)
    nuts = dict(nuts)
    if "max_treedepth" in nuts:  # PyMC's name, as pm.sample translates it for nutpie
        nuts["maxdepth"] = nuts.pop("max_treedepth")
    bar = NutpieProgressBarManager(chains=chains, draws=draws, progressbar=progressbar)
    start = time.time()
    with bar:
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=max(tune, 1),  # nuts-rs needs one warm-up draw at least, as pm.sample ensures
            chains=chains,
            cores=1,
            seed=int(np.random.default_rng().integers(2**31)) if seed is None else int(seed),
            progress_bar=False,
            progress_callback=bar.update,
            **nuts,
        )
    patch_nutpie_idata(idata, model, sampling_time=time.time() - start)
    return idata
