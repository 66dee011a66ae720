"""Prior distributions in brms/Stan spelling and their PyMC names: the one table of both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PriorError

__all__ = ["DISTRIBUTIONS", "TO_BRMS", "Dist", "fmt_number", "parse_dist"]

# brms/Stan name -> (PyMC name, brms argument names, PyMC argument names, support,
#                    indices of arguments that must be positive)
DISTRIBUTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str, tuple[int, ...]]] = {
    "normal": ("Normal", ("mu", "sigma"), ("mu", "sigma"), "real", (1,)),
    "student_t": ("StudentT", ("nu", "mu", "sigma"), ("nu", "mu", "sigma"), "real", (0, 2)),
    "cauchy": ("Cauchy", ("mu", "sigma"), ("alpha", "beta"), "real", (1,)),
    "double_exponential": ("Laplace", ("mu", "sigma"), ("mu", "b"), "real", (1,)),
    "logistic": ("Logistic", ("mu", "sigma"), ("mu", "s"), "real", (1,)),
    "exponential": ("Exponential", ("rate",), ("lam",), "positive", (0,)),
    "gamma": ("Gamma", ("alpha", "beta"), ("alpha", "beta"), "positive", (0, 1)),
    "inv_gamma": ("InverseGamma", ("alpha", "beta"), ("alpha", "beta"), "positive", (0, 1)),
    "lognormal": ("LogNormal", ("mu", "sigma"), ("mu", "sigma"), "positive", (1,)),
    "weibull": ("Weibull", ("alpha", "sigma"), ("alpha", "beta"), "positive", (0, 1)),
    "beta": ("Beta", ("alpha", "beta"), ("alpha", "beta"), "unit", (0, 1)),
    "uniform": ("Uniform", ("lower", "upper"), ("lower", "upper"), "bounded", ()),
    "lkj": ("LKJCorr", ("eta",), ("eta",), "corr", (0,)),
}
_ALIASES = {"lkj_corr": "lkj", "lkj_corr_cholesky": "lkj", "laplace": "double_exponential"}
# real-support distributions that brms turns into half distributions on scale classes:
# name -> (PyMC half name, index of the location argument, {PyMC arg: index} kept)
_HALF = {
    "normal": ("HalfNormal", 0, {"sigma": 1}),
    "student_t": ("HalfStudentT", 1, {"nu": 0, "sigma": 2}),
    "cauchy": ("HalfCauchy", 0, {"beta": 1}),
}
# PyMC names (as in bambi.Prior) by support, to check user-given bambi.Prior objects
_REAL_PYMC = {"Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "Flat", "SkewNormal"}
_POSITIVE_PYMC = {
    "HalfNormal",
    "HalfStudentT",
    "HalfCauchy",
    "HalfFlat",
    "Exponential",
    "Gamma",
    "InverseGamma",
    "LogNormal",
    "Weibull",
    "ChiSquared",
}
_LKJ_PYMC = {"LKJCorr", "LKJCholeskyCov"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Dist:
    """A parsed distribution in brms/Stan spelling: ``normal(0, 0.1)``."""

    name: str
    args: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(fmt_number(a) for a in self.args)})"


def fmt_number(value: Any) -> str:
    """A number (or array) as prior text shows it: ``0.1``, ``[1, 2]``."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.4g}"
    return "[" + ", ".join(f"{v:.4g}" for v in arr.ravel()) + "]"


def parse_dist(text: str) -> Dist:
    """Parse a brms/Stan distribution such as ``"student_t(3, 0, 2.5)"``.

    Raises
    ------
    PriorError
        On malformed text, unknown names, wrong argument counts or invalid parameters.

    """
    if not isinstance(text, str):
        raise PriorError(
            f"A prior distribution must be a string like 'normal(0, 1)'; got {text!r}."
        )
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*\((.*)\)\s*", text)
    if match is None or match.group(2).count("(") or match.group(2).count(")"):
        raise PriorError(
            f"Malformed prior {text!r}: write a distribution as name(arguments), e.g. "
            "'normal(0, 1)', 'student_t(3, 0, 2.5)', 'exponential(1)' or 'lkj(2)'."
        )
    name = _ALIASES.get(match.group(1).lower(), match.group(1).lower())
    if name not in DISTRIBUTIONS:
        raise PriorError(
            f"Unknown distribution {match.group(1)!r} in prior {text!r}; valid (brms/Stan "
            f"spelling): {', '.join(DISTRIBUTIONS)}."
        )
    _, brms_args, _, support, positive = DISTRIBUTIONS[name]
    pieces = [p.strip() for p in match.group(2).split(",")] if match.group(2).strip() else []
    usage = f"{name}({', '.join(brms_args)})"
    if len(pieces) != len(brms_args):
        raise PriorError(
            f"Prior {text!r}: {name} takes {len(brms_args)} argument(s), {usage}; "
            f"got {len(pieces)}."
        )
    bad = [p for p in pieces if not _NUMBER.match(p)]
    if bad:
        raise PriorError(f"Prior {text!r}: arguments must be numbers, as in {usage}; got {bad}.")
    args = tuple(float(p) for p in pieces)
    for i in positive:
        if not args[i] > 0:
            raise PriorError(f"Prior {text!r}: {brms_args[i]} of {usage} must be positive.")
    if support == "bounded" and not args[0] < args[1]:
        raise PriorError(f"Prior {text!r}: uniform(lower, upper) needs lower < upper.")
    return Dist(name, args)


def _to_brms() -> dict[str, tuple[str, tuple[str | int, ...]]]:
    """PyMC name -> (brms name, its arguments as PyMC names; 0 where a half fixes the location)."""
    out: dict[str, tuple[str, tuple[str | int, ...]]] = {
        pymc: (name, pymc_args)
        for name, (pymc, _, pymc_args, support, _) in DISTRIBUTIONS.items()
        if support != "corr"
    }
    for name, (half, loc, keep) in _HALF.items():
        args: list[str | int] = [0] * len(DISTRIBUTIONS[name][1])
        for arg, i in keep.items():
            args[i] = arg
        args[loc] = 0
        out[half] = (name, tuple(args))
    return out


#: PyMC name -> (brms/Stan name, arguments): the inverse of :data:`DISTRIBUTIONS` and the half
#: distributions of scale classes
TO_BRMS = _to_brms()
