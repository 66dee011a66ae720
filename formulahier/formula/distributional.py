"""Distributional formulas, as brms's ``bf(y ~ x, sigma ~ z)``: :func:`bf` and their translation."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FormulaError
from .build import build_spec

__all__ = ["BrmsFormula", "bf", "dpar_formulas"]


@dataclass(frozen=True)
class BrmsFormula:
    """A main formula plus formulas for auxiliary parameters; create it with :func:`bf`."""

    formula: str
    dpars: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return "; ".join([self.formula, *(f"{k} {_rhs(v)}" for k, v in self.dpars)])


def _rhs(text: str) -> str:
    return "~" + text.split("~", 1)[1] if "~" in text else f"~ {text}"


def bf(formula: str, **dpars: str) -> BrmsFormula:
    """A distributional model, as brms's ``bf()``: the main formula plus auxiliary parameters.

    Parameters
    ----------
    formula : str
        The lme4/brms formula of the response, e.g. ``"y ~ x + (x | g)"``.
    **dpars : str
        One formula per auxiliary parameter of the family, written with or without the
        parameter name: ``sigma="~ x"`` or ``sigma="sigma ~ x + (1 | g)"``. Parameters are
        Bambi's (``sigma`` for gaussian, ``nu`` for student t, ``alpha`` for negative binomial
        and gamma, ``kappa`` for beta). Their group-level effects are independent.

    Returns
    -------
    BrmsFormula
        Pass it to :func:`formulahier.fit` or :func:`formulahier.model` as the formula.

    Examples
    --------
    >>> import formulahier as fh
    >>> fh.bf("y ~ x + (1 | g)", sigma="~ x")
    BrmsFormula(formula='y ~ x + (1 | g)', dpars=(('sigma', '~ x'),))

    """
    if not isinstance(formula, str):
        raise FormulaError(f"bf() takes the main formula as a string, got {formula!r}.")
    for name, text in dpars.items():
        if not isinstance(text, str):
            raise FormulaError(f"bf(): the formula for '{name}' must be a string, got {text!r}.")
        lhs = text.split("~", 1)[0].strip() if "~" in text else ""
        if lhs and lhs != name:
            raise FormulaError(
                f"bf(): the formula given as {name}= has '{lhs}' left of '~'; write "
                f"{name}='~ ...' or {name}='{name} ~ ...'.",
                text,
                0,
            )
    return BrmsFormula(formula, tuple(dpars.items()))


def dpar_formulas(bform: BrmsFormula, correlated) -> tuple[tuple[str, str], ...]:
    """Translate the auxiliary formulas of ``bform`` into Bambi formulas.

    Bar terms are read as in the main formula (``(x || g)``, ``(1 | a/b)``), but Bambi builds
    them with independent effects; a ``(x | g)`` term with two or more effects therefore raises
    :class:`FormulaError` unless ``correlated=False``.
    """
    out = []
    for name, text in bform.dpars:
        sub = build_spec(f"{name} {_rhs(text)}", correlated=False)
        wants_corr = correlated is not False and not (
            isinstance(correlated, dict) and not any(correlated.values())
        )
        for block in sub.blocks:
            source_double = "||" in block.source
            if wants_corr and len(block.terms) > 1 and not source_double:
                raise FormulaError(
                    f"In the formula for '{name}', {block.source} would be fitted with "
                    "independent effects (correlated blocks are built for the main formula "
                    f"only). Write it as '({' + '.join(block.terms)} || {block.factor})', or "
                    "pass correlated=False.",
                    f"{name} {_rhs(text)}",
                )
        out.append((name, sub.bambi_formula))
    return tuple(out)
