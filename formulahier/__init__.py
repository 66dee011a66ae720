"""formulahier: Bayesian multilevel models from lme4/brms formulas, on Bambi and PyMC.

>>> import formulahier as fh
>>> fit = fh.fit("log_ozone ~ TEMP + (TEMP | station)", fh.datasets.load("ozone"))  # doctest: +SKIP
>>> print(fit)  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from . import datasets
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
from .families import FAMILIES, BrmsFormula, bf
from .fit import Fit, Model, compare, fit, get_prior, load, model
from .formula import build_spec, parse_formula
from .priors import PriorSpec, prior
from .sbc import SBCResult, sbc
from .segments import FitCollection, fit_many
from .spec import GroupBlock, ModelSpec

try:
    __version__ = version("formulahier")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

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
