"""nutpie's NUTS on a PyTensor-compiled log-density that nutpie calls back in Python.

``pm.sample(nuts_sampler="nutpie")`` (Bambi's route) hands nutpie a numba *cfunc* of the
log-density: its NUTS loop then runs without the GIL, but numba compiles that cfunc again in
every process (it closes over the data, so numba cannot cache it): 10-15 s for sleepstudy on a
warm cache, where its NUTS loop takes 1-2 s. For a model whose gradient costs microseconds (every
collapsed gaussian model; small data) that compile is most of the fit.

This module gives nutpie the same log-density and gradient as a PyTensor function (numba
linker, so PyTensor's own on-disk numba cache applies) through nutpie's public
:func:`nutpie.compiled_pyfunc.from_pyfunc`: the NUTS loop, adaptation and draws are nutpie's;
each gradient is one call from Rust into Python. Which route a fit takes is
:func:`formulahier.samplers.nutpie_route`; the measurements are in docs/performance.md.

What one callback costs decides the loop (about 33,000 gradients for sleepstudy), so:

* the callback calls the numba-compiled graph itself (``Function.vm.jit_fn``, as nutpie's own
  numba route does), not PyTensor's ``Function.__call__``; it is reentrant, so chains may run
  on several threads;
* nutpie's worker threads are Rust threads: each callback's ``PyGILState_Ensure`` (PyO3's
  ``Python::with_gil``) made a new Python thread state and its release destroyed it again
  (PyO3 issue 2495), about 18 us of the ~40 us a callback cost. :class:`_ThreadState` keeps one
  per worker thread from a chain's first callback to its last draw;
* the functions are called once before sampling, so that loading them from numba's cache (and
  compiling the pointer look-ups of any LAPACK/BLAS op, in numba object mode, per process; the
  collapsed algebra has none up to 4 x 4 matrices and 3 population-level columns:
  :mod:`formulahier.collapsed.small`) is not counted as sampling
  time;
* the data are bound once per sampling run, and numba's outputs go to nutpie unconverted when
  they are C-ordered float64 (:func:`_direct`, :func:`_plain`).
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import numpy as np

from .graph_inputs import free_shapes, lift_constants
from .progress import collector_relaxed

__all__ = ["import_nutpie", "kept_variables", "sample_callbacks"]


def kept_variables(model) -> list:
    """What a trace keeps of ``model``, as ``pm.sample`` keeps it for Bambi.

    Every free variable on its constrained scale and every Deterministic except the
    per-observation ones (Bambi's ``mu``).
    """
    import pymc as pm

    # by name: ``unobserved_value_vars`` holds clones of the Deterministics, not the variables
    deterministic = {d.name for d in model.deterministics}
    return [
        v
        for v in pm.util.get_default_varnames(
            model.unobserved_value_vars, include_transformed=False
        )
        if v.name not in deterministic
        or "__obs__" not in model.named_vars_to_dims.get(v.name, ())
    ]


def _joined_functions(model, start: dict):
    """(logp-and-gradient function, expand function, kept names) of ``model``.

    Both functions take the flat unconstrained point (``start`` gives the value variables'
    shapes). ``expand`` returns the variables kept in the trace: every free variable on its
    constrained scale and every Deterministic except the per-observation ones (Bambi's ``mu``),
    as ``pm.sample`` keeps them for Bambi. The data's numbers and sizes are inputs of both
    (:mod:`formulahier.graph_inputs`), so numba's disk cache serves every data set of the same
    structure.
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
    kept = kept_variables(model)
    grad = pt.concatenate([pt.as_tensor(g).ravel() for g in pt.grad(logp, value_vars)])
    outputs = clone_replace([logp, grad, *kept], replace)
    # the data's numbers as one shared input, its sizes left open: the compiled code is the same
    # for every data set of this structure, so numba's disk cache serves them all (graph_inputs)
    logp_x, grad_x, *kept_x = free_shapes(lift_constants(outputs)[0])
    with model:
        logp_fn = pm.compile([x], [logp_x, grad_x], mode="NUMBA")
        expand_fn = pm.compile([x], kept_x, mode="NUMBA")
    logp_fn.trust_input = expand_fn.trust_input = True
    return logp_fn, expand_fn, [v.name for v in kept]


class _direct:  # noqa: N801  (called like a function: ``_direct(fn)(x)``)
    """``fn`` (a PyTensor function of one input) as a call of its numba-compiled graph.

    The graph's other inputs are its shared variables (the model's data), read from their
    containers at every call, so ``set_value`` on them is seen. :meth:`bound` is the same call
    with the values they hold now (one sampling run: its data do not change while it runs),
    which saves reading them at every callback. A function of another linker is called as it
    is.
    """

    def __init__(self, fn) -> None:
        jit = getattr(getattr(fn, "vm", None), "jit_fn", None)
        if jit is None or len(fn.input_storage) != len(fn.maker.fgraph.inputs):
            jit = None
        self._fn, self._jit = fn, jit
        self._shared = [] if jit is None else [c.storage for c in fn.input_storage[1:]]

    def __call__(self, x):
        if self._jit is None:
            return self._fn(x)
        return self._jit(x, *[cell[0] for cell in self._shared])

    def bound(self) -> Callable:
        """The call with the shared values of now."""
        if self._jit is None:
            return self._fn
        jit, values = self._jit, tuple(cell[0] for cell in self._shared)
        return lambda x: jit(x, *values)

    def plain(self) -> bool:
        """Whether nutpie may take the outputs as they are (:func:`_plain`)."""
        return self._jit is not None and _plain(self._jit)


def _plain(jit) -> bool:
    """Whether every output of the numba function ``jit`` is a C-ordered float64 array.

    nutpie then takes them as they are, with no conversion per callback. ``jit`` has been
    called once (its one signature is read); a 0-d array is contiguous whatever its layout.
    """
    signatures = getattr(jit, "nopython_signatures", [])
    if len(signatures) != 1:
        return False
    outputs = signatures[0].return_type
    from numba import types

    return all(getattr(t, "dtype", None) == types.float64
               and (t.layout == "C" or t.ndim == 0)
               for t in getattr(outputs, "types", [outputs]))  # fmt: skip


class _ThreadState:
    """One Python thread state per nutpie worker thread, from a chain's first callback to its end.

    Without it every callback from nutpie's Rust threads creates and destroys a thread state
    (``PyGILState_Ensure`` on a thread that has none). :meth:`keep` takes one more reference
    (``PyGILState_Ensure`` while the callback holds the GIL), so PyO3's release after the
    callback only detaches the state; :meth:`release` gives it back after a chain's last draw,
    so the state is destroyed as before once that callback returns. A chain that does not
    finish (failed initialisation, Ctrl-C) keeps its thread state, a few KB, until the process
    ends. CPython only.
    """

    local = threading.local()
    enabled = sys.implementation.name == "cpython" and hasattr(ctypes, "pythonapi")

    @classmethod
    def keep(cls) -> None:
        if cls.enabled and getattr(cls.local, "state", None) is None:
            cls.local.state = ctypes.pythonapi.PyGILState_Ensure()

    @classmethod
    def release(cls) -> None:
        state = getattr(cls.local, "state", None)
        if state is not None:
            cls.local.state = None
            ctypes.pythonapi.PyGILState_Release(ctypes.c_int(state))


def _locked(func):
    lock = threading.Lock()

    @wraps(func)
    def wrapper(*args, **kwargs):
        with lock:
            return func(*args, **kwargs)

    return wrapper


def _compile(model, draws_per_chain: int):
    """A nutpie model (``from_pyfunc``) of ``model``'s log-density, with PyMC's initial points.

    ``draws_per_chain`` (warm-up included): how many times nutpie calls a chain's expand
    function, the last of which ends the chain.
    """
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    # as nutpie's own compile: support points jittered by U(-1, 1) on the unconstrained scale
    start_fn = make_initial_point_fn(
        model=model, jitter_rvs=set(model.free_RVs), return_transformed=True
    )
    logp_fn, expand_fn, names = _joined_functions(model, start_fn(0))
    logp_fn, expand_fn = _direct(logp_fn), _direct(expand_fn)

    def initial_point(seed):
        start = start_fn(seed)
        return np.concatenate([np.asarray(start[n], dtype="float64").ravel() for n in value_names])

    x0 = initial_point(0)
    logp_fn(x0)  # loads and links it now (see the module's docstring), not inside the loop
    expanded = [np.asarray(v) for v in expand_fn(x0)]
    shapes = [v.shape for v in expanded]

    plain = [logp_fn.plain(), expand_fn.plain()]
    keep = _ThreadState.keep

    def make_logp():  # nutpie calls it when a run starts: its data are bound now (_direct)
        call = logp_fn.bound()
        if plain[0]:  # numba's outputs as nutpie takes them

            def logp(x, **_):
                keep()
                value, grad = call(x)
                return float(value), grad

            return logp

        def logp_converted(x, **_):
            keep()
            value, grad = call(x)
            return float(value), np.asarray(grad, dtype="float64", order="C")

        return logp_converted

    def make_expand(_seed1, _seed2, _chain):
        remaining = [draws_per_chain]
        call = expand_fn.bound()

        def expand(x, **_):
            values = call(x)
            remaining[0] -= 1
            if remaining[0] == 0:  # the chain's last draw: its thread state may go
                _ThreadState.release()
            if plain[1]:  # C-ordered float64 of the kept shapes already
                return dict(zip(names, values, strict=True))
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


#: threads nutpie runs the chains on (measured in docs/performance.md)
CORES = 1
#: milliseconds between progress updates: a chain takes a fraction of a second here, and with
#: nutpie's 100 ms the progress bar saw too few updates to show a speed (0.00 draws/s)
PROGRESS_MS = 20


def sample_callbacks(
    model, *, draws: int, tune: int, chains: int, seed: int | None, progressbar: bool, **nuts: Any
):
    """Sample ``model`` with nutpie through Python callbacks; a DataTree as ``pm.sample``'s."""
    tune = max(tune, 1)  # nuts-rs needs one warm-up draw at least, as pm.sample ensures
    with collector_relaxed():  # a small model's compile and loop: no full garbage collection
        idata = _sample(model, draws, tune, chains, seed, progressbar, nuts)
    return idata


def import_nutpie():
    """nutpie, imported with a stand-in for its ``import arviz``.

    nutpie uses two functions of arviz-base from it; all of ArviZ and its plotting come in
    only when something else uses them (:mod:`formulahier.backend.seam.deferred`).
    """
    from .backend.seam import deferred_imports

    with deferred_imports():
        import nutpie
        import nutpie.compiled_pyfunc  # noqa: F401  (what _compile uses)
    return nutpie


def _sample(model, draws, tune, chains, seed, progressbar, nuts):
    from pymc.backends.arviz import patch_nutpie_idata
    from pymc.progress_bar.progress import NutpieProgressBarManager

    nutpie = import_nutpie()

    compiled = _compile(model, draws + tune)
    nuts = dict(nuts)
    if "max_treedepth" in nuts:  # PyMC's name, as pm.sample translates it for nutpie
        nuts["maxdepth"] = nuts.pop("max_treedepth")
    bar = NutpieProgressBarManager(chains=chains, draws=draws, progressbar=progressbar)
    start = time.time()
    with bar:
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=CORES,
            seed=int(np.random.default_rng().integers(2**31)) if seed is None else int(seed),
            progress_bar=False,
            progress_callback=bar.update,
            progress_rate=PROGRESS_MS,
            **nuts,
        )
    patch_nutpie_idata(idata, model, sampling_time=time.time() - start)
    return idata
