"""Response families: R/brms names -> Bambi family and link, and checks of the response data.

R and brms users write ``family = binomial``, ``negbinomial``, ``student`` or ``Gamma(link =
"log")``; Bambi calls these ``"binomial"``, ``"negativebinomial"``, ``"t"`` and ``"gamma"``.
:func:`resolve_family` accepts either spelling (and ``"binomial(link = 'probit')"``) and checks the
link against what Bambi supports for the family's main parameter. :func:`check_response` checks the
response column(s) against the family (numeric, counts, 0/1, successes <= trials, ...) and raises
:class:`~formulahier.errors.DataError` naming the offending rows.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError, FormulaError
from .formula.scan import split_call_args

__all__ = [
    "FAMILIES",
    "FamilyInfo",
    "bambi_hint",
    "check_response",
    "evaluate_expression",
    "resolve_family",
]


@dataclass(frozen=True)
class FamilyInfo:
    """A family formulahier documents and tests.

    Parameters
    ----------
    bambi : str
        Bambi's name of the family.
    aliases : tuple of str
        Names accepted (lower-cased) besides ``bambi``: R's and brms's spellings.
    links : tuple of str
        Links of the main parameter, formulahier's default first (R's and Bambi's too, except
        for gamma: log here, inverse in R).
    response : str
        What the response must be: ``"real"``, ``"positive"``, ``"unit"`` (strictly between 0
        and 1), ``"count"``, ``"binary"``, ``"trials"`` (successes and trials) or ``"ordinal"``.
    example : str
        A one-line formula using the family (documentation and tests).

    """

    bambi: str
    aliases: tuple[str, ...]
    links: tuple[str, ...]
    response: str
    example: str


FAMILIES: dict[str, FamilyInfo] = {
    info.bambi: info
    for info in (
        FamilyInfo(
            "gaussian", ("normal",), ("identity", "log", "inverse"), "real", "y ~ x + (x | g)"
        ),
        FamilyInfo(
            "t",
            ("student", "student_t", "studentt"),
            ("identity", "log", "inverse"),
            "real",
            "y ~ x + (x | g)",
        ),
        FamilyInfo(
            "bernoulli",
            (),
            ("logit", "probit", "cloglog", "identity"),
            "binary",
            "y01 ~ x + (x | g)",
        ),
        FamilyInfo(
            "binomial",
            (),
            ("logit", "probit", "cloglog", "identity"),
            "trials",
            "cbind(s, n - s) ~ x + (x | g)",
        ),
        FamilyInfo("poisson", (), ("log", "identity"), "count", "count ~ x + (x | g)"),
        FamilyInfo(
            "negativebinomial",
            ("negbinomial", "negative_binomial", "negbin"),
            ("log", "identity", "cloglog"),
            "count",
            "count ~ x + (x | g)",
        ),
        # log first: with R's default inverse link, mu = 1 / eta is invalid wherever eta <= 0,
        # which includes the sampler's starting point (Intercept 0)
        FamilyInfo("gamma", (), ("log", "inverse", "identity"), "positive", "pos ~ x + (x | g)"),
        FamilyInfo(
            "lognormal", (), ("identity", "log", "inverse"), "positive", "pos ~ x + (x | g)"
        ),
        FamilyInfo("beta", (), ("logit", "probit", "cloglog"), "unit", "prop ~ x + (x | g)"),
        FamilyInfo(
            "cumulative",
            ("ordinal", "cumlogit"),
            ("logit", "probit", "cloglog"),
            "ordinal",
            "rating ~ x + (x | g)",
        ),
    )
}

_ALIASES = {alias: key for key, info in FAMILIES.items() for alias in (key, *info.aliases)}
# what the response must be for Bambi's other families (checked too; see FamilyInfo.response):
# "nonneg" is >= 0, "circular" an angle in [-pi, pi]
BAMBI_RESPONSES = {
    "asymmetriclaplace": "real",
    "exgaussian": "real",
    "laplace": "real",
    "exponential": "positive",
    "wald": "positive",
    "weibull": "positive",
    "hurdle_gamma": "nonneg",
    "hurdle_lognormal": "nonneg",
    "hurdle_poisson": "count",
    "hurdle_negativebinomial": "count",
    "zero_inflated_poisson": "count",
    "zero_inflated_negativebinomial": "count",
    "zero_inflated_binomial": "trials",
    "beta_binomial": "trials",
    "vonmises": "circular",
}
_CONTINUOUS = ("real", "positive", "unit", "nonneg", "circular")
# R's spellings of links that Bambi names differently
_LINK_ALIASES = {"1/mu^2": "inverse_squared", "inverse_squared": "inverse_squared"}
_CALL = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\((.*)\)\s*$", re.S)


def _parse_family_call(family: str) -> tuple[str, str | None]:
    """``"binomial(link = 'probit')"`` -> ``("binomial", "probit")``; plain names pass."""
    match = _CALL.match(family)
    if not match:
        return family.strip(), None
    name, inner = match.group(1), match.group(2)
    link = None
    for arg in split_call_args(inner):
        if not arg:
            continue
        key, _, value = arg.rpartition("=")
        value = value.strip().strip("'\"")
        if key.strip() in ("", "link"):
            link = value
        else:
            raise FormulaError(
                f"family {family!r}: only the link can be set here (e.g. "
                f"\"{name}(link = 'log')\"); '{key.strip()}' is not supported."
            )
    return name, link


def resolve_family(family, link=None) -> tuple[object, object]:
    """Translate an R/brms/Bambi family name and link into what Bambi expects.

    Parameters
    ----------
    family : str or bambi.Family
        ``"gaussian"``, ``"student"``, ``"binomial"``, ``"negbinomial"``, ``"Gamma"``,
        ``"cumulative"``, ... (any case), optionally with a link as in R:
        ``"binomial(link = 'probit')"``. Other Bambi family names and :class:`bambi.Family`
        objects are passed through unchecked.
    link : str or dict, optional
        Link of the main parameter (``"log"``, ``"probit"``, R's ``"1/mu^2"``); a dict is passed
        to Bambi unchanged. ``None``: the family's default (the first of
        ``FAMILIES[name].links``; for gamma ``"log"``, where R defaults to ``"inverse"``).

    Returns
    -------
    family, link
        Bambi's family name (or the object given) and the link.

    Raises
    ------
    FormulaError
        For an unknown family name or a link the family does not support.

    """
    if not isinstance(family, str):
        if hasattr(family, "likelihood"):  # a bambi.Family
            return family, link
        raise FormulaError(
            f"`family` must be a name such as 'gaussian' or 'binomial', got "
            f"{type(family).__name__}."
        )
    name, call_link = _parse_family_call(family)
    if call_link is not None:
        if link is not None and link != call_link:
            raise FormulaError(
                f"Two links given: {call_link!r} in family={family!r} and link={link!r}. Keep one."
            )
        link = call_link
    key = _ALIASES.get(name.lower())
    if key is None:
        from .backend import bambi_family_names

        builtin = bambi_family_names()
        if name in builtin:  # another Bambi family: Bambi checks it
            return name, link
        known = sorted({*FAMILIES, *(a for i in FAMILIES.values() for a in i.aliases)})
        from .validate import did_you_mean

        hint = did_you_mean(name, [*known, *builtin])
        raise FormulaError(
            f"Unknown family {family!r}{hint}. Use one of {', '.join(known)} (or another "
            "Bambi family name); see docs/families.md."
        )
    info = FAMILIES[key]
    if isinstance(link, str):
        canon = _LINK_ALIASES.get(link.strip(), link.strip())
        if canon not in info.links:
            raise FormulaError(
                f"The {key} family does not support link={link!r}; use one of "
                f"{', '.join(map(repr, info.links))} (default {info.links[0]!r})."
            )
        link = canon
    elif link is None:
        link = info.links[0]
    elif not isinstance(link, dict):
        raise FormulaError(f"`link` must be a name such as 'log', got {type(link).__name__}.")
    return key, link


# --------------------------------------------------------------------------------------------
# response checks

_FUNCTIONS = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "round": np.round,
    "I": lambda x: x,
}
_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_SIGNS = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def evaluate_expression(expr: str, frame: pd.DataFrame):
    """Value of a response expression such as ``log(y)`` or ``s + f`` on the columns of ``frame``.

    A tiny evaluator over :mod:`ast`, no ``eval``: column names, numbers, ``+ - * / // **``, signs
    and calls of ``log, log2, log10, log1p, exp, sqrt, abs, round`` (numpy's) and ``I``.

    Raises
    ------
    FormulaError
        For anything else (attribute access, subscripts, other functions, names that are not
        columns, ...); nothing is evaluated then.
    DataError
        If the columns cannot be combined so (text columns in arithmetic, ...).

    """
    try:
        with warnings.catch_warnings():  # SyntaxWarning on odd escapes: the text is refused
            warnings.simplefilter("ignore")
            tree = ast.parse(f"({expr})", mode="eval")  # parentheses: leading spaces are fine
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise FormulaError(f"Cannot read the expression '{expr}'.") from None
    try:
        with np.errstate(all="ignore"):  # log of a negative: NaN, reported by row by the caller
            return _value(tree.body, frame, expr)
    except FormulaError:  # a ValueError too: not the data's fault
        raise
    except RecursionError:
        raise FormulaError(f"The expression '{expr}' is nested too deeply.") from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. log() of a text column
        raise DataError(f"Cannot compute '{expr}' from the data: {exc}") from None


def _value(node, frame: pd.DataFrame, expr: str):
    allowed = (
        "; only column names, numbers, + - * / // ** and the functions "
        f"{', '.join(_FUNCTIONS)} are evaluated"
    )
    if isinstance(node, ast.Name):
        if node.id.startswith("__") or node.id not in frame.columns:
            raise FormulaError(f"'{node.id}' in '{expr}' is not a column{allowed}.")
        return frame[node.id]
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        raise FormulaError(f"The constant {node.value!r} in '{expr}' is not a number{allowed}.")
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _value(node.left, frame, expr), _value(node.right, frame, expr)
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _SIGNS:
        return _SIGNS[type(node.op)](_value(node.operand, frame, expr))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise FormulaError(f"'{ast.unparse(node.func)}' in '{expr}' is not allowed{allowed}.")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise FormulaError(f"Keyword or starred arguments in '{expr}'{allowed}.")
        return _FUNCTIONS[node.func.id](*(_value(a, frame, expr) for a in node.args))
    if isinstance(node, ast.Attribute):
        raise FormulaError(f"Attribute access in '{expr}' is not allowed{allowed}.")
    if isinstance(node, ast.Subscript):
        raise FormulaError(f"Subscripts in '{expr}' are not allowed{allowed}.")
    raise FormulaError(f"'{ast.unparse(node)}' in '{expr}' is not allowed{allowed}.")


def _evaluate(expr: str, frame: pd.DataFrame):
    """Evaluate a response expression on the data, or return ``None`` if we cannot.

    ``None`` (no check here) for whatever :func:`evaluate_expression` refuses: the formula is
    then formulae's to read, as written by the user (formulas from files are checked with
    :func:`formulahier.safety.check_formula_safe` before they get here).
    """
    expr = expr.strip()
    if expr in frame.columns:
        return frame[expr]
    if re.fullmatch(r"-?\d+", expr):
        return pd.Series(int(expr), index=frame.index)
    try:
        value = evaluate_expression(expr, frame)
    except (FormulaError, DataError):
        return None
    if np.ndim(value) == 0:
        return pd.Series(value, index=frame.index)
    return pd.Series(np.asarray(value), index=frame.index) if len(value) == len(frame) else None


def _rows(mask: pd.Series, limit: int = 8) -> str:
    labels = [str(i) for i in mask.index[mask.to_numpy()]]
    shown = ", ".join(labels[:limit]) + (
        f", ... ({len(labels)} rows)" if len(labels) > limit else ""
    )
    return f"the row{'s' if len(labels) > 1 else ''} with index {shown}"


def _numeric(values: pd.Series, what: str, family: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(int)
    if not pd.api.types.is_numeric_dtype(values):
        raise DataError(
            f"The response {what} must be numeric for the {family} family, but it holds "
            f"{values.dtype} values (e.g. {values.iloc[0]!r}). Convert it, or choose another "
            "family (bernoulli for two classes, cumulative for ordered categories)."
        )
    return values.astype(float)


def _check_counts(values: pd.Series, what: str, family: str) -> None:
    bad = values < 0
    if bad.any():
        raise DataError(
            f"The response {what} of the {family} family must be a count >= 0; it is "
            f"negative in {_rows(bad)}."
        )
    bad = values != np.round(values)
    if bad.any():
        raise DataError(
            f"The response {what} of the {family} family must be whole numbers; it is not in "
            f"{_rows(bad)}."
        )


def check_response(frame: pd.DataFrame, response: str, family) -> pd.DataFrame:
    """Check the response against the family; return the frame (a copy if changed).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data, rows already complete in the used columns; its index labels name rows in
        messages.
    response : str
        Left-hand side in Bambi's spelling (``"y"``, ``"log(y)"``, ``"p(s, n)"``).
    family : str or bambi.Family
        As returned by :func:`resolve_family`; families not in :data:`FAMILIES` are not checked.

    Returns
    -------
    pandas.DataFrame
        ``frame``, or for the cumulative family with a plain non-categorical response column a
        copy where that column is an ordered categorical (levels sorted).

    Raises
    ------
    DataError
        Naming the rows whose response the family cannot take.

    """
    info = FAMILIES.get(family) if isinstance(family, str) else None
    if info is not None:
        kind, name = info.response, info.bambi
    elif isinstance(family, str) and family in BAMBI_RESPONSES:
        kind, name = BAMBI_RESPONSES[family], family
    else:
        return frame
    if frame.empty:
        return frame
    call = _CALL.match(response)
    if call and call.group(1) in ("p", "prop", "proportion"):
        if kind != "trials":
            raise DataError(
                f"The response {response} holds successes and trials, which only the binomial "
                f"family takes (family={name!r})."
            )
        args = split_call_args(call.group(2))
        if len(args) != 2:
            return frame
        succ, trials = (_evaluate(a, frame) for a in args)
        if succ is None or trials is None:
            return frame
        succ = _numeric(succ, f"successes '{args[0]}'", name)
        trials = _numeric(trials, f"trials '{args[1]}'", name)
        _check_counts(succ, f"successes '{args[0]}'", name)
        _check_counts(trials, f"trials '{args[1]}'", name)
        bad = succ > trials
        if bad.any():
            raise DataError(
                f"Binomial successes '{args[0]}' exceed the trials '{args[1]}' in {_rows(bad)}: "
                "check the data, and that cbind() has (successes, failures) and trials() the "
                "number of trials."
            )
        return frame
    if kind == "trials":
        raise DataError(
            f"The binomial family needs the number of trials: write 'cbind(successes, failures) "
            f"~ ...', 'successes | trials(n) ~ ...' or 'p(successes, n) ~ ...'. For a 0/1 "
            f"response '{response}', use family='bernoulli'."
        )
    values = _evaluate(response, frame)
    if values is None:
        return frame
    if kind == "ordinal":
        numeric = pd.api.types.is_float_dtype(values) and not isinstance(
            values.dtype, pd.CategoricalDtype
        )
        fractional = values[values != np.round(values)].nunique() if numeric else 0
        if fractional > 20:
            raise DataError(
                f"The {name} family needs ordered categories, but the response '{response}' "
                f"holds {values.nunique()} distinct values, {fractional} of them not whole "
                "numbers: it looks continuous. Cut it into ordered categories (an ordered "
                "pd.Categorical, e.g. pd.cut(...)) or use family='gaussian'."
            )
        if response in frame.columns and not isinstance(values.dtype, pd.CategoricalDtype):
            levels = sorted(values.unique())
            frame = frame.copy()
            frame[response] = pd.Categorical(values, categories=levels, ordered=True)
        elif isinstance(values.dtype, pd.CategoricalDtype) and not values.cat.ordered:
            frame = frame.copy()
            frame[response] = values.cat.as_ordered()
        if values.nunique() < 2:
            raise DataError(
                f"The ordinal response '{response}' has fewer than two categories in the data."
            )
        return frame
    if kind == "binary":
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
            if values.nunique() > 2:
                raise DataError(
                    f"The bernoulli response '{response}' has {values.nunique()} distinct values; "
                    "it needs two (0/1, True/False or two categories)."
                )
            return frame
        values = _numeric(values, f"'{response}'", name)
        bad = ~values.isin([0, 1])
        if bad.any():
            raise DataError(
                f"The bernoulli response '{response}' must be 0 or 1; it is not in {_rows(bad)}. "
                "For counts out of n trials use family='binomial' with cbind(s, n - s)."
            )
        return frame
    values = _numeric(values, f"'{response}'", name)
    if kind == "count":
        _check_counts(values, f"'{response}'", name)
    elif kind == "positive":
        bad = values <= 0
        if bad.any():
            raise DataError(
                f"The {name} family needs a response > 0; '{response}' is not in {_rows(bad)}."
            )
    elif kind == "unit":
        bad = (values <= 0) | (values >= 1)
        if bad.any():
            raise DataError(
                f"The beta family needs a response strictly between 0 and 1; '{response}' is "
                f"not in {_rows(bad)}."
            )
    elif kind == "nonneg":
        bad = values < 0
        if bad.any():
            raise DataError(
                f"The {name} family needs a response >= 0; '{response}' is not in {_rows(bad)}."
            )
    elif kind == "circular":
        bad = (values < -np.pi) | (values > np.pi)
        if bad.any():
            raise DataError(
                f"The {name} family needs an angle in radians between -pi and pi; "
                f"'{response}' is not in {_rows(bad)}."
            )
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"The response '{response}' is infinite or NaN in {_rows(bad)}.")
    if kind in _CONTINUOUS and values.nunique() < 2:
        raise DataError(
            f"The response '{response}' has the same value ({values.iloc[0]:g}) in every row: "
            f"there is nothing for the {name} family to explain (its scale would be 0)."
        )
    return frame


def bambi_hint(exc: Exception, family) -> str:
    """Advice to append to a Bambi/formulae error message for known causes (or ``""``)."""
    text = str(exc)
    if isinstance(exc, KeyError):
        return (
            f" ({text} is not a function or column formulae knows: use C()/factor(), I(), "
            "log(), exp(), scale(), center(), poly(), offset() or a column name)"
        )
    if "setting an array element with a sequence" in text and family in ("bernoulli", "binomial"):
        return (
            " (Bambi 0.21 cannot auto-scale the default prior of a multi-column numeric term such "
            "as poly() in bernoulli/binomial models with a logit or probit link; give that term "
            "a prior, e.g. priors={'poly(x, 2)': bmb.Prior('Normal', mu=0, sigma=2.5)})"
        )
    return ""
