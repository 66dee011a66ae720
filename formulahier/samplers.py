"""Sampler and method names: which NUTS implementation runs, and the ``sampler="auto"`` rule."""

from __future__ import annotations

import importlib.util

from . import validate as check
from .approx import METHODS
from .errors import (
    OptionError,
    SamplerError,
)

__all__ = [
    "AUTO_NUTPIE_CELLS",
    "CALLBACK_MAX_CELLS",
    "SAMPLERS",
    "auto_sampler",
    "check_method",
    "check_options",
    "check_sampler",
    "gradient_cells",
    "nutpie_route",
    "sampler_options",
]


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


def gradient_cells(collapsed: bool, nobs: int, n_effects: int, n_values: int) -> int:
    """What one gradient's cost grows with (the size the sampler rules compare).

    Rows x group-level columns; for a collapsed model, whose likelihood sums over levels and
    never touches the rows, levels x group-level columns.
    """
    return max(n_values, 1) if collapsed else nobs * max(n_effects, 1)


def auto_sampler(cells: int, collapsed: bool = True) -> str:
    """The NUTS implementation ``sampler="auto"`` picks (rule measured in docs/performance.md).

    ``cells`` is :func:`gradient_cells`. With nutpie installed: nutpie where one gradient is
    cheap in a collapsed model (below ``CALLBACK_MAX_CELLS``: nutpie calls the
    PyTensor-compiled log-density back in Python, which costs no numba compile) or where it is
    costly (``AUTO_NUTPIE_CELLS`` and above: nutpie's own numba-compiled route, whose compile
    the long loop amortises); PyMC's sampler in between (no band while the two are equal, as
    now), and for smaller models that sample their group effects (``collapsed=False``), whose
    funnels PyMC's warm-up mixed better on.
    Measurements: docs/performance.md, "How sampler="auto" chooses". Without nutpie, PyMC's
    sampler.
    """
    if importlib.util.find_spec("nutpie") is None:
        return "pymc"
    if cells >= AUTO_NUTPIE_CELLS:
        return "nutpie"
    return "nutpie" if collapsed and cells < CALLBACK_MAX_CELLS else "pymc"


def nutpie_route(cells: int, collapsed: bool = True) -> str:
    """How nutpie gets the log-density: ``"callbacks"`` (cheap gradient) or ``"compiled"``.

    A model that samples its group effects (``sampler="nutpie"`` named) keeps the callbacks
    only below :data:`SAMPLED_CALLBACK_MAX_CELLS`: on the crossed model of 140,000 cells they
    were about 1.3x slower than the compiled route (docs/performance.md).
    """
    if NUTPIE_ROUTE is not None:
        return NUTPIE_ROUTE
    limit = CALLBACK_MAX_CELLS if collapsed else SAMPLED_CALLBACK_MAX_CELLS
    return "callbacks" if cells < limit else "compiled"


#: below: nutpie's callbacks (one thread, no numba compile); measured with whole fits
#: (docs/performance.md): collapsed, callbacks 1.7x nutpie compiled's ESS/s at 10,000 cells,
#: a tie at 40,000, and PyMC's sampler 1.5-2.6x below both, so a collapsed model goes from the
#: callbacks straight to the compiled route (equal constants: no PyMC band for it)
CALLBACK_MAX_CELLS = 200_000
#: the callbacks' bound for a model that samples its group effects (the earlier round's rule)
SAMPLED_CALLBACK_MAX_CELLS = 20_000
#: from here nutpie's compiled route, for every model (the earlier round's boundary: sampled
#: models measured below it went either way, docs/performance.md)
AUTO_NUTPIE_CELLS = 200_000
#: ``None``: :func:`nutpie_route` decides; ``"callbacks"`` / ``"compiled"`` force a route
#: (``benchmarks/run_one.py --nutpie-route`` sets it to measure both side by side)
NUTPIE_ROUTE: str | None = None


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


def sampler_options(kwargs, sampler: str, where: str) -> dict:
    """:func:`formulahier.validate.sampler_options`, with nutpie imported first if it is asked.

    nutpie's options are read off nutpie itself; importing it here puts a stand-in for its
    ``import arviz`` (:func:`formulahier.callback_nuts.import_nutpie`), so reading them imports
    no ArviZ plotting.
    """
    if sampler == "nutpie" and importlib.util.find_spec("nutpie"):
        from .callback_nuts import import_nutpie

        import_nutpie()
    return check.sampler_options(kwargs, sampler, where)


def check_options(kwargs, sampler: str, where: str) -> None:
    """Check sampler options before the model is built (``sampler`` as :func:`check_sampler`).

    For ``"auto"``, whose pick depends on the built model, an option passes if it is one of a
    sampler ``"auto"`` may pick (PyMC's, nutpie's where installed); ``Model.fit`` checks it
    again against the sampler picked.
    """
    if sampler != "auto":
        sampler_options(kwargs, sampler, where)
        return
    errors = []
    for candidate in ("pymc", "nutpie"):
        if all(importlib.util.find_spec(p) is not None for p in SAMPLERS[candidate]):
            try:
                sampler_options(kwargs, candidate, where)
                return
            except OptionError as err:
                errors.append(err)
    raise errors[0]
