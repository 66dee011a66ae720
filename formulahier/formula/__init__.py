"""The formula layer: lme4/brms text -> a frozen :class:`~formulahier.spec.ModelSpec`.

* :mod:`.scan`: the one character scanner (quotes, bracket depth) and the splitters built on it;
* :mod:`.parse`: text -> response, population part and bar terms (:class:`ParsedFormula`);
* :mod:`.build`: parsed formula and options -> :class:`~formulahier.spec.ModelSpec`;
* :mod:`.distributional`: brms's distributional ``bf()`` formulas;
* :mod:`.update`: R's ``update.formula`` (``. ~ . + x``), for :meth:`Fit.update`.

Nothing here imports from a later stage (families, data, backend, fit).
"""

from .build import build_spec, check_columns
from .distributional import BrmsFormula, bf, dpar_formulas
from .parse import Bar, ParsedFormula, parse_formula

__all__ = [
    "Bar",
    "BrmsFormula",
    "ParsedFormula",
    "bf",
    "build_spec",
    "check_columns",
    "dpar_formulas",
    "parse_formula",
]
