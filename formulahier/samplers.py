"""Sampler and method names: which NUTS implementation runs, and the ``sampler="auto"`` rule."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from . import validate as check
from .approx import METHODS
from .errors import (
    SamplerError,
)

if TYPE_CHECKING:
    pass


__all__ = ["AUTO_NUTPIE_CELLS", "SAMPLERS", "auto_sampler", "check_method", "check_sampler"]


SAMPLERS: dict[str, tuple[str, ...]] = {
    "auto": (),
    "pymc": (),
    "nutpie": ("nutpie",),
    "numpyro": ("numpyro", "jax"),
    "blackjax": ("blackjax", "jax"),
}
_EXTRA = {"nutpie": "nutpie", "numpyro": "jax", "blackjax": "jax"}


def check_method(method: str) -> str:
    """Validate ``method``: ``"nuts"`` (MCMC) or one of the approximations of :mod:`.approx`."""
    key = method.lower() if isinstance(method, str) else method
    if key not in METHODS:
        hint = check.did_you_mean(key, METHODS) if isinstance(key, str) else ""
        raise SamplerError(f"Unknown method {method!r}{hint}; `method` is one of {list(METHODS)}.")
    return key


def auto_sampler(collapsed: bool, nobs: int, n_effects: int) -> str:
    """The NUTS implementation ``sampler="auto"`` picks (rule measured in docs/performance.md).

    nutpie's NUTS loop is 2-3x faster than PyMC's, but it compiles the model with numba in every
    new process (10-40 s even with a warm cache), which PyMC's sampler does not pay. So nutpie
    is chosen only where one gradient is costly: a model that is not collapsed, with at least
    ``AUTO_NUTPIE_CELLS`` rows x group-level columns; PyMC's sampler otherwise.
    """
    if importlib.util.find_spec("nutpie") is None or collapsed:
        return "pymc"
    return "nutpie" if nobs * max(n_effects, 1) >= AUTO_NUTPIE_CELLS else "pymc"


AUTO_NUTPIE_CELLS = 200_000


def check_sampler(sampler: str) -> str:
    """Validate a sampler name and that its optional packages are importable."""
    key = sampler.lower() if isinstance(sampler, str) else sampler
    if key not in SAMPLERS:
        hint = check.did_you_mean(key, SAMPLERS) if isinstance(key, str) else ""
        raise SamplerError(
            f"Unknown sampler {sampler!r}{hint}; `sampler` is one of {sorted(SAMPLERS)}."
        )
    missing = [p for p in SAMPLERS[key] if importlib.util.find_spec(p) is None]
    if missing:
        raise SamplerError(
            f"sampler={key!r} needs {', '.join(missing)}, which is not installed. Install it with "
            f"`pip install 'formulahier[{_EXTRA[key]}]'`, or use sampler='pymc'."
        )
    return key
