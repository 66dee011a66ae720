"""formulahier: Bayesian multilevel models from lme4/brms formulas, on Bambi and PyMC.

>>> import formulahier as fh
>>> fit = fh.fit("log_ozone ~ TEMP + (TEMP | station)", fh.datasets.load("ozone"))  # doctest: +SKIP
>>> print(fit)  # doctest: +SKIP

``import formulahier`` loads only the error classes: Bambi, PyMC, pandas and the rest are
imported on first use of a name that needs them (``fh.fit``, ``fh.model``, ``fh.datasets``...),
so a script that fails early, ``formulahier --help`` and a notebook's first cell are fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from .about import __version__
from .errors import (
    DataError,
    FitFileError,
    FormulaError,
    FormulahierError,
    FormulahierWarning,
    MemoryLimitError,
    OptionError,
    PriorError,
    SamplerError,
)

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from . import datasets
    from .api import compare, fit, get_prior, load, model
    from .families import FAMILIES
    from .fitted import Fit
    from .formula import BrmsFormula, bf, build_spec, parse_formula
    from .modeling import Model
    from .priors import PriorSpec, prior
    from .sbc import SBCResult, sbc
    from .segments import FitCollection, fit_many
    from .spec import GroupBlock, ModelSpec

# public name -> the submodule that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "datasets": ".datasets",
    "FAMILIES": ".families",
    "BrmsFormula": ".formula",
    "bf": ".formula",
    "Fit": ".fitted",
    "Model": ".modeling",
    "compare": ".api",
    "fit": ".api",
    "get_prior": ".api",
    "load": ".api",
    "model": ".api",
    "build_spec": ".formula",
    "parse_formula": ".formula",
    "PriorSpec": ".priors",
    "prior": ".priors",
    "GroupBlock": ".spec",
    "ModelSpec": ".spec",
    "SBCResult": ".sbc",
    "sbc": ".sbc",
    "FitCollection": ".segments",
    "fit_many": ".segments",
}


# modules that import Bambi (and PyMC): first arviz-base, then the backend (see _import_heavy)
_HEAVY = {".api", ".fitted", ".modeling", ".priors", ".sbc", ".segments"}


def _import_heavy(where: str):
    """Import ``where``, which imports Bambi, PyMC and the backend, in the order that costs least.

    arviz-base (imported by every fit, through PyMC, nutpie and arviz-stats) calls
    ``inspect.stack()`` at import when JAX is not installed (``lazy_loader``); that walks every
    frame and module loaded, and cost 0.33 s inside Bambi's import against 0.04 s first. The
    backend comes next, before anything imports Bambi: its seam defers Bambi's plotting imports
    (formulahier/backend/seam/deferred.py). No full garbage collection meanwhile: imports make
    long-lived objects only.
    """
    from .progress import collector_relaxed

    with collector_relaxed():
        if importlib.util.find_spec("arviz_base") is not None:
            importlib.import_module("arviz_base")
        importlib.import_module(".backend", __name__)
        return importlib.import_module(where, __name__)


def __getattr__(name: str):
    """Import the submodule behind a public name on first use (PEP 562)."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'formulahier' has no attribute {name!r}")
    if where in _HEAVY:
        module = _import_heavy(where)
    else:
        module = importlib.import_module(where, __name__)
    for other, place in _LAZY.items():  # bind every public name of that module at once
        if place == where:
            globals()[other] = module if other == "datasets" else getattr(module, other)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DataError",
    "Fit",
    "FitFileError",
    "FormulaError",
    "FormulahierError",
    "MemoryLimitError",
    "FormulahierWarning",
    "GroupBlock",
    "Model",
    "ModelSpec",
    "OptionError",
    "PriorError",
    "SamplerError",
    "__version__",
    "bf",
    "BrmsFormula",
    "FAMILIES",
    "build_spec",
    "compare",
    "load",
    "datasets",
    "fit",
    "model",
    "parse_formula",
    "prior",
    "PriorSpec",
    "get_prior",
    "SBCResult",
    "sbc",
    "FitCollection",
    "fit_many",
]
