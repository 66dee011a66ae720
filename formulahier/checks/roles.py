"""Roles of variables in a formula: the response is not a predictor, a factor not its own effect."""

from __future__ import annotations

import re

from ..errors import FormulaError
from ..formula.scan import split_call_args
from ..spec import ModelSpec

__all__ = ["check_formula_roles"]



def _var_names(text: str) -> set[str]:
    import formulae as fm

    try:
        return set(fm.model_description(f"fhresponse ~ {text}").var_names) - {"", "fhresponse"}
    except Exception:  # noqa: BLE001 - formulae reads the whole formula later and reports
        return set()


def _response_names(response: str) -> set[str]:
    """Columns the response is computed from (for ``p(s, n)`` and friends: ``s`` only)."""
    call = response.split("(", 1)
    if len(call) == 2 and call[0].strip() in (
        "p", "prop", "proportion", "weighted", "censored", "truncated",
    ) and response.rstrip().endswith(")"):  # fmt: skip
        args = split_call_args(call[1].rstrip()[:-1])
        response = args[0] if args else response
    return _var_names(response)


def check_formula_roles(spec: ModelSpec) -> None:
    """A variable in two roles: the response as a predictor or inside a bar, ``(g | g)``.

    Raises
    ------
    FormulaError
        ``y ~ y + (1 | g)``, ``y ~ x + (y | g)``, ``y ~ x + (1 | y)``, ``y ~ x + (g | g)``.
    """
    formula = spec.formula
    response = _response_names(spec.response)

    def where(name: str) -> int | None:
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
