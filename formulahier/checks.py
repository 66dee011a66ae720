"""Checks of the data, the design and the priors before anything is sampled.

Checks of the data and of the model as Bambi built it (non-finite values, collinear predictors,
a response used as a predictor, duplicated columns) and of Bambi-style prior dicts against the
model's terms (unknown keys, distributions and parameters, impossible values). Argument
validators are in :mod:`formulahier.validate`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, FormulaError, PriorError
from .validate import did_you_mean, is_real, params_of

__all__ = [
    "check_columns_unique",
    "check_design",
    "check_formula_roles",
    "check_prior_names",
    "check_prior_values",
    "check_used_columns",
]


# --------------------------------------------------------------------------------------------
# the formula: roles of variables


def _var_names(text: str) -> set[str]:
    import formulae as fm

    try:
        return set(fm.model_description(f"fhresponse ~ {text}").var_names) - {"", "fhresponse"}
    except Exception:  # noqa: BLE001 - formulae reads the whole formula later and reports
        return set()


def _response_names(response: str) -> set[str]:
    """Columns the response is computed from (for ``p(s, n)`` and friends: ``s`` only)."""
    from .families import split_call_args

    call = response.split("(", 1)
    if len(call) == 2 and call[0].strip() in (
        "p", "prop", "proportion", "weighted", "censored", "truncated",
    ) and response.rstrip().endswith(")"):  # fmt: skip
        args = split_call_args(call[1].rstrip()[:-1])
        response = args[0] if args else response
    return _var_names(response)


def check_formula_roles(spec) -> None:
    """A variable in two roles: the response as a predictor or inside a bar, ``(g | g)``.

    Raises
    ------
    FormulaError
        ``y ~ y + (1 | g)``, ``y ~ x + (y | g)``, ``y ~ x + (1 | y)``, ``y ~ x + (g | g)``.
    """
    formula = spec.formula
    response = _response_names(spec.response)

    def where(name: str) -> int | None:
        import re

        cut = formula.find("~")
        match = re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", formula[cut + 1 :])
        return cut + 1 + match.start() if match else None

    both = sorted(response & _var_names(spec.population))
    if both:
        raise FormulaError(
            f"The response variable '{both[0]}' is also a population-level predictor: a "
            "variable cannot explain itself. Remove it from the right-hand side.",
            formula,
            where(both[0]),
        )
    for block in spec.blocks:
        factor_cols = set(block.factor.split(":"))
        exprs = set().union(*(_var_names(t) for t in block.terms if t != "1"))
        for name in sorted(response & (exprs | factor_cols)):
            role = "grouping factor" if name in factor_cols else "group-level effect"
            raise FormulaError(
                f"The response '{name}' is used as a {role} in {block.source}; the response "
                "can only stand left of '~'.",
                formula,
                where(name),
            )
        for name in sorted(exprs & factor_cols):
            raise FormulaError(
                f"The grouping factor '{name}' is also an effect in {block.source}: a factor "
                f"cannot vary over its own levels. Write '(1 | {block.factor})'.",
                formula,
                where(name),
            )


# --------------------------------------------------------------------------------------------
# the data


def _rows(labels, limit: int = 8) -> str:
    labels = [str(i) for i in labels]
    shown = ", ".join(labels[:limit]) + (
        f", ... ({len(labels)} rows)" if len(labels) > limit else ""
    )
    return f"the row{'s' if len(labels) > 1 else ''} with index {shown}"


def check_columns_unique(frame: pd.DataFrame) -> None:
    """Refuse a table with two columns of the same name (which one would the formula mean?)."""
    dup = frame.columns[frame.columns.duplicated()]
    if len(dup):
        raise DataError(
            f"The data has more than one column named {', '.join(map(repr, dict.fromkeys(dup)))}; "
            "rename them so that every column name is unique."
        )


def check_used_columns(frame: pd.DataFrame, used: Iterable[str]) -> None:
    """Infinite values and complex numbers in the columns the model uses.

    Raises
    ------
    DataError
        Naming the column and the rows (by the data's own row labels).
    """
    for col in used:
        values = frame[col]
        if (
            pd.api.types.is_complex_dtype(values.dtype)
            or (
                values.dtype == object  # a sample: complex numbers among Python objects
                and values.iloc[:1000].map(lambda v: isinstance(v, complex)).any()
            )
        ):
            raise DataError(
                f"The column '{col}' holds complex numbers; the model needs real numbers. "
                "Use the real part, the modulus or the angle (np.real, np.abs, np.angle)."
            )
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype
        ):
            bad = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                raise DataError(
                    f"The column '{col}' is infinite in {_rows(frame.index[bad])}; drop or fix "
                    "those rows (only missing values are dropped automatically)."
                )


# --------------------------------------------------------------------------------------------
# the model as Bambi built it


def _labels(common) -> list[str]:
    out = []
    for name, term in common.terms.items():
        width = common.slices[name].stop - common.slices[name].start
        labels = list(getattr(term, "labels", None) or [])
        out += labels if len(labels) == width else [name] * width
    return out


def check_design(bambi_model, frame: pd.DataFrame) -> None:
    """Non-finite values in the response, the designs and the group-level columns; collinearity.

    Raises
    ------
    DataError
        ``log(x)`` of a non-positive ``x`` (and other transforms giving NaN or infinity),
        naming the term and the rows; population-level predictors that are linear combinations
        of each other (a rank-deficient design), naming them.
    """
    index = frame.index
    for cname, comp in bambi_model.conditional_parameters.items():
        design = comp.component.design if hasattr(comp, "component") else comp.design
        response = getattr(design, "response", None)
        if response is not None:
            values = np.asarray(response)
            if values.dtype.kind in "fc":
                bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
                if bad.any():
                    raise DataError(
                        f"The response '{response.name}' is infinite or NaN in "
                        f"{_rows(index[bad])} (after its transformation, e.g. log of values "
                        "<= 0); drop or fix those rows."
                    )
        common = getattr(design, "common", None)
        if common is None:
            continue
        X = np.asarray(common.design_matrix, dtype=float)
        labels = _labels(common)
        bad = ~np.isfinite(X)
        if bad.any():
            col = int(np.argmax(bad.any(axis=0)))
            what = f"of {cname} " if cname != bambi_model.family.likelihood.parent else ""
            raise DataError(
                f"The population-level term {what}'{labels[col]}' is infinite or NaN in "
                f"{_rows(index[bad[:, col]])} (e.g. log() of values <= 0, or 1/0); transform "
                "the column so that it is finite, or drop those rows."
            )
        _check_rank(X, labels, cname, bambi_model.family.likelihood.parent)
    for info in getattr(bambi_model, "fh_blocks", ()):
        bad = ~np.isfinite(info.data.X)
        if bad.any():
            col = int(np.argmax(bad.any(axis=0)))
            raise DataError(
                f"The group-level effect '{info.labels[col]}' of {info.block.source} is "
                f"infinite or NaN in {_rows(index[bad[:, col]])}; transform the column so "
                "that it is finite, or drop those rows."
            )


_RANK_TOL = 1e-7  # R's lm() tolerance: a column whose residual is below it is aliased
_SAMPLE_ROWS = 20_000  # above this (and 20 x columns), the test runs on a sample of rows


def _first_aliased(A: np.ndarray) -> tuple[int, list[int], np.ndarray] | None:
    """The first column of ``A`` (in order) spanned by the columns before it.

    Returns ``(column, earlier columns used, their coefficients)`` or ``None`` (full rank).
    Gram-Schmidt (twice, for stability) on the ``cols x cols`` triangle of a QR of ``A``: the
    triangle has the inner products of ``A``'s columns, so the answer is ``A``'s.
    """
    R = np.linalg.qr(A, mode="r") if A.shape[0] > A.shape[1] else A
    basis = np.zeros((R.shape[0], 0))
    tri = np.zeros((0, 0))  # R[:, kept] = basis @ tri
    kept: list[int] = []
    for j in range(R.shape[1]):
        a = R[:, j]
        h = basis.T @ a
        r = a - basis @ h
        h2 = basis.T @ r
        r, h = r - basis @ h2, h + h2
        size = np.linalg.norm(r)
        if size <= _RANK_TOL * max(np.linalg.norm(a), np.finfo(float).tiny):
            coef = np.linalg.solve(tri, h) if kept else np.zeros(0)
            return j, kept, coef
        basis = np.column_stack([basis, r / size])
        tri = np.block([[tri, h[:, None]], [np.zeros((1, len(kept))), np.array([[size]])]])
        kept.append(j)
    return None


def _check_rank(X: np.ndarray, labels: list[str], cname: str, parent: str) -> None:
    """Refuse a rank-deficient population design.

    Time ``O(rows x cols^2)`` up to 20,000 rows; above, the test runs on a random sample of rows
    (a deficient design is deficient on every sample; the sample holds a few rows where each
    column is not zero, so rare levels are in it) and a column found aliased there is
    confirmed on all rows in ``O(rows x cols)``; only if the sample misled are all rows used.
    """
    n, p = X.shape
    if p == 0:
        return
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    zero = norms <= 0
    if zero.any():
        raise DataError(
            f"The population-level column '{labels[int(np.argmax(zero))]}' is all zeros in "
            "the data used; it has no effect to estimate. Remove the term."
        )
    if n < p:
        raise DataError(
            f"The model has {p} population-level coefficients but only {n} rows of data; "
            "use fewer terms or more data."
        )
    Xn = X / norms  # unit columns: scale does not decide
    m = max(_SAMPLE_ROWS, 20 * p)
    if n > m:
        rows = np.random.default_rng(0).choice(n, m, replace=False)
        # and a few rows where each column is not zero: rare levels of a factor are in too
        rows = np.unique(np.concatenate([rows, *(np.flatnonzero(c)[:20] for c in X.T)]))
        found = _first_aliased(Xn[rows])
        if found is not None:
            j, kept, coef = found
            resid = Xn[:, j] - (Xn[:, kept] @ coef if kept else 0.0)
            if np.linalg.norm(resid) > 1e3 * _RANK_TOL:  # not on all rows: decide on all rows
                found = _first_aliased(Xn)
    else:
        found = _first_aliased(Xn)
    if found is None:
        return
    j, kept, coef = found
    partners = [labels[k] for k, c in zip(kept, coef, strict=True) if abs(c) > 1e-9]
    what = "" if cname == parent else f" (in the formula of {cname})"
    raise DataError(
        f"The population-level predictors{what} are collinear: '{labels[j]}' is a linear "
        f"combination of {', '.join(map(repr, partners)) or 'the other columns'} in the "
        "data used (a rank-deficient fixed-effect model matrix; lme4 would drop the "
        "column). Remove one of them, or check for duplicated or constant columns and "
        "for empty cells of an interaction."
    )


# --------------------------------------------------------------------------------------------
# priors


_POSITIVE_ARGS = {"sigma", "tau", "lam", "nu", "kappa", "scale", "b", "s", "phi", "eta"}
_POSITIVE_BY_DIST = {
    "Gamma": {"alpha", "beta", "mu"},
    "InverseGamma": {"alpha", "beta", "mu"},
    "Beta": {"alpha", "beta"},
    "Weibull": {"alpha", "beta"},
    "Kumaraswamy": {"a", "b"},
    "Cauchy": {"beta"},
    "HalfCauchy": {"beta"},
    "Wald": {"mu"},
    "Pareto": {"alpha", "m"},
}
_ARG_ALIASES = {"sd": "sigma", "scale": "sigma", "mean": "mu", "loc": "mu", "rate": "lam"}
_EXTRA_ARGS = {"shape", "size", "dims", "transform", "default_transform", "initval", "observed"}


def _pymc_class(name: str):
    import pymc as pm

    cls = getattr(pm, name, None) if isinstance(name, str) and not name.startswith("_") else None
    return cls if isinstance(cls, type) and issubclass(cls, pm.Distribution) else None


def _check_prior(prior, where: str) -> None:
    import bambi as bmb
    import pymc as pm

    if not isinstance(prior, bmb.Prior):
        return
    if prior.dist is not None:  # a custom distribution function: Bambi calls it
        return
    cls = _pymc_class(prior.name)
    if cls is None:
        known = [n for n in dir(pm) if _pymc_class(n) is not None]
        raise PriorError(
            f"The prior of {where} names the distribution {prior.name!r}, which PyMC does not "
            f"have{did_you_mean(prior.name, known)}. Use a PyMC name such as 'Normal', "
            "'HalfNormal', 'StudentT' or 'Exponential'."
        )
    try:
        accepted = params_of(cls.dist) | _EXTRA_ARGS
    except Exception:  # noqa: BLE001 - no signature: accept the names
        accepted = set(prior.args)
    positive = _POSITIVE_ARGS | _POSITIVE_BY_DIST.get(prior.name, set())
    for arg, value in prior.args.items():
        if arg not in accepted:
            close = _ARG_ALIASES.get(arg)
            hint = f" (did you mean {close!r}?)" if close in accepted else ""
            raise PriorError(
                f"The prior {prior} of {where}: {prior.name} has no parameter {arg!r}"
                f"{hint or did_you_mean(arg, accepted - _EXTRA_ARGS)}; its parameters are "
                f"{', '.join(sorted(accepted - _EXTRA_ARGS))}."
            )
        if isinstance(value, bmb.Prior):
            _check_prior(value, f"{where} ({arg})")
            continue
        if arg in _EXTRA_ARGS:
            continue
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise PriorError(
                f"The prior {prior} of {where}: {arg}={value!r} is not a number."
            ) from None
        if not np.isfinite(arr).all():
            raise PriorError(
                f"The prior {prior} of {where}: {arg} must be finite; got {arr.tolist()}."
            )
        if arg in positive and not (arr > 0).all():
            raise PriorError(
                f"The prior {prior} of {where}: {arg} is a scale or shape and must be > 0; "
                f"got {arr.tolist()}."
            )
    if prior.name == "Uniform" and {"lower", "upper"} <= set(prior.args):
        lower, upper = prior.args["lower"], prior.args["upper"]
        if not isinstance(lower, bmb.Prior) and not isinstance(upper, bmb.Prior):
            if not (np.asarray(lower, dtype=float) < np.asarray(upper, dtype=float)).all():
                raise PriorError(f"The prior {prior} of {where}: needs lower < upper.")


def check_prior_values(priors: Mapping[str, Any]) -> None:
    """Every value of a Bambi-style priors dict: a known PyMC distribution, valid parameters.

    Raises
    ------
    PriorError
        An unknown distribution name, an unknown parameter, a scale <= 0, a NaN.
    """
    import bambi as bmb

    for key, value in priors.items():
        if not isinstance(key, str):
            raise PriorError(f"The keys of the priors dict are term names; got {key!r}.")
        if isinstance(value, Mapping):
            check_prior_values(value)
        elif isinstance(value, bmb.Prior):
            _check_prior(value, f"'{key}'")
        elif is_real(value) and math.isfinite(value):
            continue  # a constant, e.g. a fixed sigma
        else:
            raise PriorError(
                f"The prior of '{key}' must be a bmb.Prior (e.g. bmb.Prior('Normal', mu=0, "
                f"sigma=1)), a number, or for a distributional parameter a dict; got {value!r}."
            )


def check_prior_names(priors: Mapping[str, Any], bambi_model) -> None:
    """Every key of a Bambi-style priors dict names a term or parameter of the model.

    Valid keys: population-level terms as Bambi names them (``"Intercept"``, ``"Days"``,
    ``"C(f)"``), family parameters (``"sigma"``, ``"alpha"``), group-level terms (``"1|g"``,
    ``"Days|g"``), ``"common"`` and ``"group_specific"``; for a parameter with its own formula,
    a dict of its terms.
    """
    components = bambi_model._components  # noqa: SLF001 - the names Bambi accepts
    parent = bambi_model.family.likelihood.parent
    valid = list(
        dict.fromkeys(
            [
                *components[parent].terms,
                *getattr(bambi_model, "fh_terms", {}),
                *components,
                "common",
                "group_specific",
            ]
        )
    )
    for key, value in priors.items():
        if key not in valid:
            raise PriorError(
                f"The priors dict names {key!r}, which is not a term or parameter of this "
                f"model{did_you_mean(key, valid)}. Valid keys: {', '.join(map(repr, valid))}."
            )
        if isinstance(value, Mapping):
            if key not in bambi_model.conditional_parameters:
                raise PriorError(
                    f"The prior of {key!r} is a dict, which only a parameter with its own "
                    f"formula takes (bf(..., {key}='~ x')); give a bmb.Prior."
                )
            nested = [*components[key].terms, "common", "group_specific"]
            for sub in value:
                if sub not in nested:
                    raise PriorError(
                        f"priors[{key!r}] names {sub!r}, which is not a term of the formula "
                        f"of {key}{did_you_mean(sub, nested)}. Valid: "
                        f"{', '.join(map(repr, nested))}."
                    )
