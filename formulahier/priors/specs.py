"""A brms-style prior on a class (:func:`prior`) and its translation into a Bambi prior."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import bambi as bmb

from ..errors import PriorError
from .dists import _HALF, _LKJ_PYMC, _REAL_PYMC, DISTRIBUTIONS, Dist, fmt_number, parse_dist

__all__ = ["PriorSpec", "lkj_eta_of", "prior", "split_priors"]


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
    assert dist is not None  # a string is parsed by PriorSpec.__post_init__
    pymc_name, _, pymc_args, dsupport, _ = DISTRIBUTIONS[dist.name]
    if dsupport == "corr":
        raise PriorError(f"{spec}: lkj(eta) can only serve class 'cor'.")
    if support in ("positive", "unit") and dsupport == "real":
        if support == "positive" and dist.name in _HALF:
            half, loc, keep = _HALF[dist.name]
            if dist.args[loc] != 0:
                raise PriorError(
                    f"{spec}: on class '{spec.cls}' {dist.name} becomes a half distribution "
                    f"(lower bound 0), which needs location 0; got {fmt_number(dist.args[loc])}. "
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


def lkj_eta_of(spec: PriorSpec) -> float:
    """The eta of a class-``cor`` prior (``lkj(eta)`` or a ``bambi.Prior`` LKJ)."""
    if isinstance(spec.dist, bmb.Prior):
        if spec.dist.name in _LKJ_PYMC and "eta" in spec.dist.args:
            return float(spec.dist.args["eta"])
    elif spec.parsed is not None and spec.parsed.name == "lkj":
        return spec.parsed.args[0]
    raise PriorError(f"{spec}: class 'cor' takes an LKJ prior, lkj(eta) with eta > 0.")
