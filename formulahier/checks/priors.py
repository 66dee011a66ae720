"""Checks of Bambi-style prior dicts: known PyMC distributions, valid parameters and keys."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import PriorError
from ..validate import did_you_mean, is_real, params_of

__all__ = ["check_prior_names", "check_prior_values"]



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
        elif arg not in _EXTRA_ARGS:
            _check_number(prior, where, arg, value, arg in positive)
    if prior.name == "Uniform" and {"lower", "upper"} <= set(prior.args):
        lower, upper = prior.args["lower"], prior.args["upper"]
        if not isinstance(lower, bmb.Prior) and not isinstance(upper, bmb.Prior):
            if not (np.asarray(lower, dtype=float) < np.asarray(upper, dtype=float)).all():
                raise PriorError(f"The prior {prior} of {where}: needs lower < upper.")


def _check_number(prior: Any, where: str, arg: str, value: Any, positive: bool) -> None:
    """A parameter of a prior given as a number (or array): finite, and > 0 if ``positive``."""
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
    if positive and not (arr > 0).all():
        raise PriorError(
            f"The prior {prior} of {where}: {arg} is a scale or shape and must be > 0; "
            f"got {arr.tolist()}."
        )


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


def check_prior_names(
    priors: Mapping[str, Any], bambi_model: Any, group_terms: Iterable[str] = ()
) -> None:
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
                *group_terms,
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
