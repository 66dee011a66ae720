"""Checks of the data, the design and the priors before anything is sampled.

* :mod:`.roles`: variables in two roles (the response as a predictor, ``(g | g)``);
* :mod:`.data`: the data table (duplicated column names, infinite or complex values);
* :mod:`.expression` and :mod:`.response`: the response evaluated and checked against the family;
* :mod:`.design`: the model as Bambi built it (non-finite designs, collinear predictors);
* :mod:`.priors`: Bambi-style prior dicts (distribution names, parameters, keys).

Argument validators are in :mod:`formulahier.validate`.
"""

from .data import check_columns_unique, check_used_columns, rows_text
from .design import check_design
from .expression import evaluate_expression, evaluate_or_none
from .priors import check_prior_names, check_prior_values
from .response import check_response
from .roles import check_formula_roles

__all__ = [
    "check_columns_unique",
    "check_design",
    "check_formula_roles",
    "check_prior_names",
    "check_prior_values",
    "check_response",
    "check_used_columns",
    "evaluate_expression",
    "evaluate_or_none",
    "rows_text",
]
