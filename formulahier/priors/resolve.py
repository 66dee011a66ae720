"""brms-style priors matched against a model's slots (brms ``get_prior``) -> Bambi priors, LKJ."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bambi as bmb

from ..errors import PriorError
from .dists import _POSITIVE_PYMC
from .specs import PriorSpec, _to_bambi, lkj_eta_of

__all__ = ["Resolved", "group_slots", "resolve_lkj", "resolve_priors", "slots"]


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


def slots(bambi_model: Any, blocks: Sequence[Any]) -> list[_Slot]:
    """Every prior slot of a model: Intercept, b, sd, cor, family parameters (brms's order).

    ``bambi_model`` (Bambi's description of the population part, not yet built into PyMC)
    names the population and family slots; ``blocks`` (the group-level blocks as planned,
    :func:`formulahier.backend.plan_blocks`) the sd and cor slots.
    """
    parent = bambi_model.family.likelihood.parent
    comp = bambi_model.parameters[parent]
    out = []
    if comp.intercept_term is not None:
        name = comp.intercept_term.name
        out.append(_Slot("Intercept", target=name, parameter=name))
    for name in comp.common_terms:
        out.append(_Slot("b", coef=name, target=name, parameter=name))
    out += group_slots(blocks)
    for name, component in bambi_model.marginal_parameters.items():
        out.append(_Slot(name, target=name, support=_family_support(component.prior),
                         parameter=name))  # fmt: skip
    return out


def group_slots(blocks: Sequence[Any]) -> list[_Slot]:
    """The sd slots (one per effect) and cor slots (one per factor) of the planned blocks."""
    out = []
    for info in blocks:
        for tname, label in zip(info.terms, info.block.labels, strict=True):
            out.append(_Slot("sd", label, info.block.factor, tname, "positive", f"{tname}_sigma"))
    for info in blocks:
        if info.corr:
            factor = info.block.factor
            old = next((s for s in out if s.cls == "cor" and s.group == factor), None)
            if old is not None:
                old.parameter += f", {info.corr}"
            else:
                out.append(_Slot("cor", "", factor, factor, "corr", info.corr))
    return out


def resolve_lkj(
    specs: Iterable[PriorSpec], blocks: Sequence[Any]
) -> tuple[float | None, dict[str, float]]:
    """The LKJ shapes the class-``cor`` priors set: (every factor's, per factor).

    Needs only the planned blocks, so that the spec is complete before the backend is built.
    A prior it cannot use is left to :func:`resolve_priors`, which reports it with the others.
    """
    cor = [s for s in group_slots(blocks) if s.cls == "cor"]
    given = {(s.cls, s.coef or "", s.group or ""): s for s in specs if s.cls == "cor"}
    try:
        groups = {}
        for slot in cor:
            hit = next((k for k in (("cor", "", slot.group), ("cor", "", "")) if k in given), None)
            if hit is not None:
                groups[slot.group] = lkj_eta_of(given[hit])
        every = given.get(("cor", "", "")) if cor else None
        return (None if every is None else lkj_eta_of(every)), groups
    except PriorError:
        return None, {}


def _valid(values: Iterable[str]) -> str:
    values = list(dict.fromkeys(v for v in values if v))
    return ", ".join(repr(v) for v in values) if values else "none"


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


def resolve_priors(
    specs: Iterable[PriorSpec], bambi_model: Any, blocks: Sequence[Any]
) -> Resolved:
    """Match brms-style priors against a Bambi model built with its default priors.

    Precedence: a prior naming a ``coef`` beats one naming only a ``group``, which beats one
    naming only the class; a slot no prior names keeps Bambi's default.

    Parameters
    ----------
    specs : iterable of PriorSpec
        The user's priors.
    bambi_model : formulahier.backend.HierModel
        Bambi's description of the model with default priors (it names the population and
        family slots); the PyMC model need not be built.
    blocks : sequence of formulahier.backend.BlockInfo
        The group-level blocks as planned (they name the sd and cor slots).

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
    model_slots = slots(bambi_model, blocks)
    given: dict[tuple[str, str, str], PriorSpec] = {}
    for spec in specs:
        key = _check(spec, model_slots)
        if key in given:
            raise PriorError(f"Two priors for the same slot: {given[key]} and {spec}.")
        given[key] = spec
    out = Resolved(given={k: s.dist_text for k, s in given.items()})
    for slot in model_slots:
        keys = [(slot.cls, slot.coef, slot.group), (slot.cls, "", slot.group), (slot.cls, "", "")]
        hit = next((k for k in dict.fromkeys(keys) if k in given), None)
        if hit is None:
            continue
        spec = given[hit]
        out.sources[keys[0]] = "user" if hit == keys[0] else "(vectorized)"
        if slot.cls == "cor":
            out.lkj_eta_groups[slot.group] = lkj_eta_of(spec)
        elif slot.cls == "sd":
            out.bambi[slot.target] = bmb.Prior("Normal", mu=0, sigma=_to_bambi(spec, "positive"))
        else:
            out.bambi[slot.target] = _to_bambi(spec, slot.support)
    if ("cor", "", "") in given:
        out.lkj_eta = lkj_eta_of(given["cor", "", ""])
        out.sources["cor", "", ""] = "user"
    for key in given:
        if key[1] == "" and key[0] != "cor":
            out.sources[key] = "user"
        elif key[0] == "cor" and key[2]:
            out.sources[key] = "user"
    return out
