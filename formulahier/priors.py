"""Priors: brms-style priors by class, their translation into Bambi's form, and their encoding.

Users set priors the way brms does, by *class*::

    fh.prior("normal(0, 0.1)", "b", coef="TEMP")     # one slope
    fh.prior("exponential(1)", "sd", group="station")  # every sd of one grouping factor
    fh.prior("lkj(4)", "cor")                        # every correlation matrix

:func:`resolve_priors` matches such priors against a built Bambi model and returns the
Bambi prior dict (keyed by term name) plus the LKJ shapes (:mod:`formulahier.prior_check` lists
the slots, like brms's ``get_prior``). Bambi's own dict form still works.
``encode_priors`` turns a prior specification into JSON-able data (for saving fits) and
``decode_priors`` back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import bambi as bmb
import numpy as np

from .errors import PriorError

__all__ = [
    "DISTRIBUTIONS",
    "Dist",
    "PriorSpec",
    "Resolved",
    "decode_priors",
    "encode_priors",
    "parse_dist",
    "prior",
    "resolve_priors",
    "split_priors",
]

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
        return f"{self.name}({', '.join(_num(a) for a in self.args)})"


def _num(value: Any) -> str:
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


@dataclass(frozen=True)
class PriorSpec:
    """A brms-style prior on one class of parameters; create it with :func:`prior`."""

    dist: str | bmb.Prior
    cls: str
    coef: str | None = None
    group: str | None = None
    parsed: Dist | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if isinstance(self.dist, str):
            object.__setattr__(self, "parsed", parse_dist(self.dist))
        elif not isinstance(self.dist, bmb.Prior):
            raise PriorError(
                f"prior(): dist must be a string in brms spelling ('normal(0, 1)') or a "
                f"bambi.Prior; got {self.dist!r}."
            )
        for name in ("cls", "coef", "group"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise PriorError(f"prior(): {name} must be a string; got {value!r}.")
        if not self.cls:
            raise PriorError("prior(): give the class, e.g. prior('normal(0, 1)', 'b').")

    @property
    def dist_text(self) -> str:
        """The distribution as text (brms spelling for strings)."""
        return str(self.parsed) if self.parsed is not None else str(self.dist)

    def __str__(self) -> str:
        parts = [self.dist_text, f"class = {self.cls}"]
        parts += [f"{k} = {v}" for k, v in (("coef", self.coef), ("group", self.group)) if v]
        return "prior(" + ", ".join(parts) + ")"


def prior(
    dist: str | bmb.Prior, cls: str, coef: str | None = None, group: str | None = None
) -> PriorSpec:
    """A prior on a class of parameters, as brms's ``prior(dist, class, coef, group)``.

    Parameters
    ----------
    dist : str or bambi.Prior
        brms/Stan spelling: ``"normal(0, 0.1)"``, ``"student_t(3, 0, 2.5)"``,
        ``"cauchy(0, 1)"``, ``"exponential(1)"``, ``"gamma(2, 0.1)"``, ``"lognormal(0, 1)"``,
        ``"uniform(0, 10)"``, ``"beta(2, 2)"``, ``"lkj(2)"``. On scale classes (``sd``,
        ``sigma``, ...) normal, student_t and cauchy become half distributions and need
        location 0. A :class:`bambi.Prior` is used as given.
    cls : str
        ``"Intercept"``, ``"b"`` (slopes), ``"sd"`` (group-level standard deviations),
        ``"cor"`` (LKJ correlation), or a family parameter (``"sigma"``, ``"alpha"``, ``"nu"``...).
    coef : str, optional
        For ``b``: a population-level term (``"TEMP"``). For ``sd`` (with ``group``): an
        effect of the block (``"Intercept"``, ``"TEMP"``).
    group : str, optional
        For ``sd`` and ``cor``: a grouping factor (``"station"``).

    Returns
    -------
    PriorSpec
        Pass a list of them as ``priors=`` to :func:`formulahier.fit` or
        :func:`formulahier.model`.

    Examples
    --------
    >>> import formulahier as fh
    >>> fh.prior("normal(0, 0.1)", "b", coef="TEMP")
    PriorSpec(dist='normal(0, 0.1)', cls='b', coef='TEMP', group=None)

    """
    return PriorSpec(dist, cls, coef, group)


def split_priors(priors: Any) -> tuple[dict, list[PriorSpec]]:
    """Split ``priors=`` into a Bambi dict and a list of :class:`PriorSpec`."""
    if priors is None:
        return {}, []
    if isinstance(priors, PriorSpec):
        return {}, [priors]
    if isinstance(priors, Mapping):
        return dict(priors), []
    if isinstance(priors, Iterable) and not isinstance(priors, str):
        items = list(priors)
        bad = [p for p in items if not isinstance(p, PriorSpec)]
        if bad:
            raise PriorError(
                f"priors= takes a list of fh.prior(...) or a Bambi dict keyed by term name; "
                f"the list holds {bad[0]!r}."
            )
        return {}, items
    raise PriorError(
        f"priors= takes a list of fh.prior(...) or a Bambi dict keyed by term name; got {priors!r}."
    )


# --------------------------------------------------------------------------- slots of a model


@dataclass
class _Slot:
    cls: str
    coef: str = ""
    group: str = ""
    target: str = ""  # Bambi term / component name, or factor for cor
    support: str = "real"
    parameter: str = ""  # PyMC variable the prior reaches


def _family_support(prior: Any) -> str:
    name = getattr(prior, "name", None)
    if name in _POSITIVE_PYMC:
        return "positive"
    if name == "Beta":
        return "unit"
    if isinstance(prior, bmb.Prior) and "transform" in prior.args:
        return "fixed"  # e.g. ordered thresholds: set them with a Bambi dict
    return "real"


def _slots(bambi_model) -> list[_Slot]:
    parent = bambi_model.family.likelihood.parent
    comp = bambi_model.parameters[parent]
    slots = []
    if comp.intercept_term is not None:
        name = comp.intercept_term.name
        slots.append(_Slot("Intercept", target=name, parameter=name))
    for name in comp.common_terms:
        slots.append(_Slot("b", coef=name, target=name, parameter=name))
    for info in bambi_model.fh_blocks:
        for tname, label in zip(info.terms, info.block.labels, strict=True):
            slots.append(_Slot("sd", label, info.block.factor, tname, "positive", f"{tname}_sigma"))
    for info in bambi_model.fh_blocks:
        if info.corr:
            factor = info.block.factor
            old = next((s for s in slots if s.cls == "cor" and s.group == factor), None)
            if old is not None:
                old.parameter += f", {info.corr}"
            else:
                slots.append(_Slot("cor", "", factor, factor, "corr", info.corr))
    for name, component in bambi_model.marginal_parameters.items():
        slots.append(_Slot(name, target=name, support=_family_support(component.prior),
                           parameter=name))  # fmt: skip
    return slots


def _valid(values: Iterable[str]) -> str:
    values = list(dict.fromkeys(v for v in values if v))
    return ", ".join(repr(v) for v in values) if values else "none"


# --------------------------------------------------------------------------- translation


def _to_bambi(spec: PriorSpec, support: str) -> bmb.Prior:
    """The Bambi prior a :class:`PriorSpec` sets on a slot of the given support."""
    if isinstance(spec.dist, bmb.Prior):
        name = spec.dist.name
        if name in _LKJ_PYMC:
            raise PriorError(f"{spec}: an LKJ prior can only serve class 'cor'.")
        if support in ("positive", "unit") and name in _REAL_PYMC:
            raise PriorError(
                f"{spec}: {name} has negative support and cannot serve class '{spec.cls}', "
                f"which must be positive; use Half{name}, Exponential, Gamma or LogNormal."
            )
        return spec.dist
    dist = spec.parsed
    pymc_name, _, pymc_args, dsupport, _ = DISTRIBUTIONS[dist.name]
    if dsupport == "corr":
        raise PriorError(f"{spec}: lkj(eta) can only serve class 'cor'.")
    if support in ("positive", "unit") and dsupport == "real":
        if support == "positive" and dist.name in _HALF:
            half, loc, keep = _HALF[dist.name]
            if dist.args[loc] != 0:
                raise PriorError(
                    f"{spec}: on class '{spec.cls}' {dist.name} becomes a half distribution "
                    f"(lower bound 0), which needs location 0; got {_num(dist.args[loc])}. "
                    "Use location 0, or lognormal/gamma for a prior centred away from 0."
                )
            return bmb.Prior(half, **{k: dist.args[i] for k, i in keep.items()})
        raise PriorError(
            f"{spec}: {dist.name} has negative support and cannot serve class '{spec.cls}', "
            f"which must be {'in (0, 1)' if support == 'unit' else 'positive'}; use "
            + ("beta or uniform(0, 1)." if support == "unit" else
               "normal(0, s), student_t(nu, 0, s), cauchy(0, s), exponential or gamma.")
        )  # fmt: skip
    if dsupport == "bounded":
        lower, upper = dist.args
        if (support == "positive" and lower < 0) or (
            support == "unit" and (lower < 0 or upper > 1)
        ):
            raise PriorError(
                f"{spec}: the support of {dist} reaches outside the valid values of class "
                f"'{spec.cls}' ({'(0, 1)' if support == 'unit' else 'positive'})."
            )
    if support == "unit" and dsupport == "positive":
        raise PriorError(f"{spec}: class '{spec.cls}' lies in (0, 1); use beta or uniform(0, 1).")
    return bmb.Prior(pymc_name, **dict(zip(pymc_args, dist.args, strict=True)))


def _lkj_eta(spec: PriorSpec) -> float:
    if isinstance(spec.dist, bmb.Prior):
        if spec.dist.name in _LKJ_PYMC and "eta" in spec.dist.args:
            return float(spec.dist.args["eta"])
    elif spec.parsed.name == "lkj":
        return spec.parsed.args[0]
    raise PriorError(f"{spec}: class 'cor' takes an LKJ prior, lkj(eta) with eta > 0.")


@dataclass
class Resolved:
    """What a list of :class:`PriorSpec` does to a model.

    Attributes
    ----------
    bambi : dict
        Bambi prior dict keyed by term or family-parameter name.
    lkj_eta : float or None
        LKJ shape for every correlation matrix (class ``cor`` without group).
    lkj_eta_groups : dict
        LKJ shape per grouping factor.
    sources : dict
        ``(class, coef, group)`` -> ``"user"`` or ``"(vectorized)"`` for every slot set.
    given : dict
        ``(class, coef, group)`` -> the prior text for the slots the user named.

    """

    bambi: dict = field(default_factory=dict)
    lkj_eta: float | None = None
    lkj_eta_groups: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    given: dict = field(default_factory=dict)


def _check(spec: PriorSpec, slots: list[_Slot]) -> tuple[str, str, str]:
    """Validate the class/coef/group of ``spec``; return its key (class, coef, group)."""
    classes = list(dict.fromkeys(s.cls for s in slots))
    if spec.cls not in classes:
        why = {
            "Intercept": "no population-level intercept",
            "b": "no population-level slopes",
            "sd": "no group-level effects",
            "cor": "no correlated (x | g) block",
        }
        problem = (
            f"this model has no class {spec.cls!r} ({why[spec.cls]})"
            if spec.cls in why
            else f"unknown prior class {spec.cls!r}"
        )
        raise PriorError(f"{spec}: {problem}. Valid classes for this model: {_valid(classes)}.")
    mine = [s for s in slots if s.cls == spec.cls]
    coef, group = spec.coef or "", spec.group or ""
    if spec.cls == "sd":
        if group and group not in {s.group for s in mine}:
            raise PriorError(
                f"{spec}: {group!r} is not a grouping factor of this model; valid group: "
                f"{_valid(s.group for s in mine)}."
            )
        if coef and not group:
            raise PriorError(
                f"{spec}: class 'sd' with coef= also needs group= (one of "
                f"{_valid(s.group for s in mine)})."
            )
        if coef and coef not in {s.coef for s in mine if s.group == group}:
            raise PriorError(
                f"{spec}: {coef!r} is not a group-level effect of {group!r}; valid coef: "
                f"{_valid(s.coef for s in mine if s.group == group)}."
            )
    elif spec.cls == "cor":
        if coef:
            raise PriorError(f"{spec}: class 'cor' takes no coef; use group= or nothing.")
        if group and group not in {s.group for s in mine}:
            raise PriorError(
                f"{spec}: {group!r} has no correlated block in this model; valid group: "
                f"{_valid(s.group for s in mine)}."
            )
    else:
        if group:
            raise PriorError(f"{spec}: class {spec.cls!r} takes no group; only 'sd' and 'cor' do.")
        if spec.cls == "b":
            if coef and coef not in {s.coef for s in mine}:
                raise PriorError(
                    f"{spec}: {coef!r} is not a population-level term of this model; valid "
                    f"coef: {_valid(s.coef for s in mine)}."
                )
        elif coef:
            raise PriorError(f"{spec}: class {spec.cls!r} takes no coef; only 'b' and 'sd' do.")
        if mine[0].support == "fixed":
            raise PriorError(
                f"{spec}: class {spec.cls!r} has a constrained (transformed) prior; set it "
                f"with a Bambi dict, priors={{{spec.cls!r}: bmb.Prior(...)}}."
            )
    return spec.cls, coef, group


def resolve_priors(specs: Iterable[PriorSpec], bambi_model) -> Resolved:
    """Match brms-style priors against a Bambi model built with its default priors.

    Precedence: a prior naming a ``coef`` beats one naming only a ``group``, which beats one
    naming only the class; a slot no prior names keeps Bambi's default.

    Parameters
    ----------
    specs : iterable of PriorSpec
        The user's priors.
    bambi_model : formulahier.backend.HierModel
        The model built with default priors (it provides terms and blocks).

    Returns
    -------
    Resolved
        The Bambi prior dict and LKJ shapes to rebuild the model with.

    Raises
    ------
    PriorError
        A class, coef or group the model does not have, a distribution that cannot serve its
        class, or two priors on the same slot.

    """
    slots = _slots(bambi_model)
    given: dict[tuple[str, str, str], PriorSpec] = {}
    for spec in specs:
        key = _check(spec, slots)
        if key in given:
            raise PriorError(f"Two priors for the same slot: {given[key]} and {spec}.")
        given[key] = spec
    out = Resolved(given={k: s.dist_text for k, s in given.items()})
    for slot in slots:
        keys = [(slot.cls, slot.coef, slot.group), (slot.cls, "", slot.group), (slot.cls, "", "")]
        hit = next((k for k in dict.fromkeys(keys) if k in given), None)
        if hit is None:
            continue
        spec = given[hit]
        out.sources[keys[0]] = "user" if hit == keys[0] else "(vectorized)"
        if slot.cls == "cor":
            out.lkj_eta_groups[slot.group] = _lkj_eta(spec)
        elif slot.cls == "sd":
            out.bambi[slot.target] = bmb.Prior("Normal", mu=0, sigma=_to_bambi(spec, "positive"))
        else:
            out.bambi[slot.target] = _to_bambi(spec, slot.support)
    if ("cor", "", "") in given:
        out.lkj_eta = _lkj_eta(given["cor", "", ""])
        out.sources["cor", "", ""] = "user"
    for key in given:
        if key[1] == "" and key[0] != "cor":
            out.sources[key] = "user"
        elif key[0] == "cor" and key[2]:
            out.sources[key] = "user"
    return out


# --------------------------------------------------------------------------- encoding


def _encode(value: Any) -> Any:
    if isinstance(value, PriorSpec):
        return {
            "__fhprior__": _encode(value.dist),
            "cls": value.cls,
            "coef": value.coef,
            "group": value.group,
        }
    if isinstance(value, bmb.Prior):
        if value.dist is not None:
            raise PriorError(
                f"The prior {value} uses a custom distribution function and cannot be saved "
                "as data; use a named PyMC distribution."
            )
        args = {k: _encode(v) for k, v in value.args.items()}
        return {"__prior__": value.name, "args": args, "auto_scale": value.auto_scale}
    if isinstance(value, dict):
        return {"__dict__": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise PriorError(f"Cannot encode the prior component {value!r} as data.")


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__fhprior__" in value:
        dist = _decode(value["__fhprior__"])
        return PriorSpec(dist, value["cls"], value.get("coef"), value.get("group"))
    if isinstance(value, dict) and "__prior__" in value:
        args = {k: _decode(v) for k, v in value["args"].items()}
        return bmb.Prior(value["__prior__"], auto_scale=value.get("auto_scale", True), **args)
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def encode_priors(priors: Any) -> Any:
    """Encode a prior specification as JSON-able data.

    ``None``, a Bambi-style dict, a :class:`PriorSpec` or a list of them.
    """
    return _encode(priors)


def decode_priors(data: Any) -> Any:
    """Inverse of :func:`encode_priors`."""
    return _decode(data)
