"""The response checked against the family: numeric, counts, 0/1, successes <= trials, ...

:func:`check_response` raises :class:`~formulahier.errors.DataError` naming the offending rows;
what each family needs is :attr:`formulahier.families.FamilyInfo.response`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from ..families import response_kind
from ..formula.scan import CALL, split_call_args
from .data import rows_text
from .expression import evaluate_or_none

__all__ = ["check_response"]

_CONTINUOUS = ("real", "positive", "unit", "nonneg", "circular")


def _rows(mask: pd.Series) -> str:
    return rows_text(mask.index[mask.to_numpy()])


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


def check_response(frame: pd.DataFrame, response: str, family: object) -> pd.DataFrame:
    """Check the response against the family; return the frame (a copy if changed).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data, rows already complete in the used columns; its index labels name rows in
        messages.
    response : str
        Left-hand side in Bambi's spelling (``"y"``, ``"log(y)"``, ``"p(s, n)"``).
    family : str or bambi.Family
        As returned by :func:`~formulahier.families.resolve_family`; families not in
        :data:`~formulahier.families.FAMILIES` (or Bambi's others with a known response) are
        not checked.

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
    known = response_kind(family)
    if known is None or frame.empty:
        return frame
    kind, name = known
    call = CALL.match(response)
    if call and call.group(1) in ("p", "prop", "proportion"):
        _check_trials(frame, response, call.group(2), kind, name)
        return frame
    if kind == "trials":
        raise DataError(
            f"The binomial family needs the number of trials: write 'cbind(successes, failures) "
            f"~ ...', 'successes | trials(n) ~ ...' or 'p(successes, n) ~ ...'. For a 0/1 "
            f"response '{response}', use family='bernoulli'."
        )
    values = evaluate_or_none(response, frame)
    if values is None:
        return frame
    if kind == "ordinal":
        return _check_ordinal(frame, response, values, name)
    if kind == "binary":
        _check_binary(values, response, name)
        return frame
    _check_numeric(_numeric(values, f"'{response}'", name), response, kind, name)
    return frame


def _check_trials(frame: pd.DataFrame, response: str, inner: str, kind: str, name: str) -> None:
    """``p(successes, trials)``: counts, and successes <= trials."""
    if kind != "trials":
        raise DataError(
            f"The response {response} holds successes and trials, which only the binomial "
            f"family takes (family={name!r})."
        )
    args = split_call_args(inner)
    if len(args) != 2:
        return
    succ, trials = (evaluate_or_none(a, frame) for a in args)
    if succ is None or trials is None:
        return
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


def _check_ordinal(
    frame: pd.DataFrame, response: str, values: pd.Series, name: str
) -> pd.DataFrame:
    """Ordered categories (a plain column becomes an ordered categorical), at least two."""
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


def _check_binary(values: pd.Series, response: str, name: str) -> None:
    """Two classes: 0/1, True/False or two categories."""
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
        if values.nunique() > 2:
            raise DataError(
                f"The bernoulli response '{response}' has {values.nunique()} distinct values; "
                "it needs two (0/1, True/False or two categories)."
            )
        return
    values = _numeric(values, f"'{response}'", name)
    bad = ~values.isin([0, 1])
    if bad.any():
        raise DataError(
            f"The bernoulli response '{response}' must be 0 or 1; it is not in {_rows(bad)}. "
            "For counts out of n trials use family='binomial' with cbind(s, n - s)."
        )


# support of a numeric response: kind -> (the rows outside it, message with {name} {response})
_SUPPORT: dict[str, tuple[Callable[[pd.Series], pd.Series], str]] = {
    "positive": (
        lambda v: v <= 0,
        "The {name} family needs a response > 0; '{response}' is not in {rows}.",
    ),
    "unit": (
        lambda v: (v <= 0) | (v >= 1),
        "The beta family needs a response strictly between 0 and 1; '{response}' is "
        "not in {rows}.",
    ),
    "nonneg": (
        lambda v: v < 0,
        "The {name} family needs a response >= 0; '{response}' is not in {rows}.",
    ),
    "circular": (
        lambda v: (v < -np.pi) | (v > np.pi),
        "The {name} family needs an angle in radians between -pi and pi; "
        "'{response}' is not in {rows}.",
    ),
}


def _check_numeric(values: pd.Series, response: str, kind: str, name: str) -> None:
    """Counts or a continuous response in the family's support, finite, not constant."""
    if kind == "count":
        _check_counts(values, f"'{response}'", name)
    elif kind in _SUPPORT:
        outside, message = _SUPPORT[kind]
        bad = outside(values)
        if bad.any():
            raise DataError(message.format(name=name, response=response, rows=_rows(bad)))
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"The response '{response}' is infinite or NaN in {_rows(bad)}.")
    if kind in _CONTINUOUS and values.nunique() < 2:
        raise DataError(
            f"The response '{response}' has the same value ({values.iloc[0]:g}) in every row: "
            f"there is nothing for the {name} family to explain (its scale would be 0)."
        )
