"""Response families: R/brms names -> Bambi family and link, and what each response must be.

R and brms users write ``family = binomial``, ``negbinomial``, ``student`` or ``Gamma(link =
"log")``; Bambi calls these ``"binomial"``, ``"negativebinomial"``, ``"t"`` and ``"gamma"``.
:func:`resolve_family` accepts either spelling (and ``"binomial(link = 'probit')"``) and checks the
link against what Bambi supports for the family's main parameter. :func:`response_kind` says what
the response must be; :func:`formulahier.checks.check_response` checks the data against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import FormulaError
from .formula.scan import CALL, split_call_args

__all__ = [
    "FAMILIES",
    "FamilyInfo",
    "BAMBI_RESPONSES",
    "resolve_family",
    "response_kind",
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
# R's spellings of links that Bambi names differently
_LINK_ALIASES = {"1/mu^2": "inverse_squared", "inverse_squared": "inverse_squared"}


def _parse_family_call(family: str) -> tuple[str, str | None]:
    """``"binomial(link = 'probit')"`` -> ``("binomial", "probit")``; plain names pass."""
    match = CALL.match(family)
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


def resolve_family(family: Any, link: Any = None, others: Iterable[str] = ()) -> tuple[Any, Any]:
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
    others : iterable of str
        The names of Bambi's other built-in families, passed through for Bambi to check
        (:func:`formulahier.construct.resolve_spec` gives
        :func:`formulahier.backend.bambi_family_names`); any other unknown name is refused.

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
        builtin = set(others)
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


def response_kind(family: object) -> tuple[str, str] | None:
    """``(what the response must be, family name)`` for a resolved family, ``None``: unchecked.

    See :attr:`FamilyInfo.response` for the kinds; Bambi's other families are in
    :data:`BAMBI_RESPONSES`.
    """
    if not isinstance(family, str):
        return None
    info = FAMILIES.get(family)
    if info is not None:
        return info.response, info.bambi
    if family in BAMBI_RESPONSES:
        return BAMBI_RESPONSES[family], family
    return None
