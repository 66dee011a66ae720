"""A :class:`ParsedFormula` -> :class:`~formulahier.spec.ModelSpec`: blocks, options, columns.

The expressions inside bar terms are checked with formulae (Bambi's parser), so that every term
name computed here is the one Bambi will use.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import formulae as fm

from ..errors import FormulaError, PriorError
from ..spec import GroupBlock, ModelSpec
from .parse import NAME, Bar, check_calls, parse_formula

__all__ = ["build_spec", "check_columns"]

_UNSUPPORTED_FACTOR_CALLS = {
    "gr": "brms's gr() is not supported: write the factor itself, e.g. (1 | g)",
    "mm": "brms's multi-membership mm() is not supported",
}


def _expand_factor(bar: Bar, formula: str) -> list[str]:
    """``a/b`` -> ``[a, a:b]`` (lme4's nesting); ``a:b`` stays one factor."""
    pos = bar.start + bar.text.rfind(bar.factor)
    call = re.match(r"\s*([A-Za-z_][\w.]*)\s*\(", bar.factor)
    if call:
        hint = _UNSUPPORTED_FACTOR_CALLS.get(call.group(1), "write a column name or a:b")
        raise FormulaError(f"Unsupported grouping factor '{bar.factor}': {hint}.", formula, pos)
    parts = [p.strip() for p in bar.factor.split("/")]
    factors: list[str] = []
    prefix: list[str] = []
    for part in parts:
        names = [n.strip() for n in part.split(":")]
        bad = [n for n in names if not NAME.match(n)]
        if bad:
            raise FormulaError(
                f"Grouping factor '{bar.factor}' must be column names joined by ':' or '/' "
                f"(lme4: '(1 | a/b)' means '(1 | a) + (1 | a:b)'); '{bad[0]}' is not a name.",
                formula,
                pos,
            )
        prefix = prefix + names
        factors.append(":".join(prefix))
    return factors


def _expr_terms(bar: Bar, formula: str) -> tuple[bool, list[str]]:
    """Return (has intercept, non-intercept term names) of a bar's left side, via formulae."""
    check_calls([("+", bar.expr, bar.start + 1)], formula)
    try:
        desc = fm.model_description(f"fhresponse ~ {bar.expr}")
    except Exception as exc:  # formulae raises bare Exceptions and ParseError
        raise FormulaError(
            f"Cannot read the expression '{bar.expr}' before the bar: {exc}", formula, bar.start + 1
        ) from None
    has_intercept = False
    names = []
    for term in desc.terms:
        kind = type(term).__name__
        if kind == "Intercept":
            has_intercept = True
        elif kind == "Term":
            names.append(term.name)
        else:
            raise FormulaError(
                f"'{term.name}' cannot appear inside a group-level term.", formula, bar.start + 1
            )
    if not has_intercept and not names:
        raise FormulaError(
            f"The group-level term '{bar.text}' has no effects: remove it, or write '(1 | g)'.",
            formula,
            bar.start,
        )
    return has_intercept, names


def _per_factor(value: Any, factors: list[str], what: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(factors))
        if unknown:
            raise FormulaError(
                f"`{what}` names grouping factor(s) {unknown} not in the formula; "
                f"the grouping factors are {factors}."
            )
        return {f: value.get(f, _DEFAULTS[what]) for f in factors}
    return dict.fromkeys(factors, value)


_DEFAULTS = {"correlated": True, "noncentered": "auto"}


def build_spec(
    formula: str,
    *,
    family: str = "gaussian",
    link: str | None = None,
    correlated: bool | Mapping[str, bool] = True,
    noncentered: bool | str | Mapping[str, bool | str] = "auto",
    lkj_eta: float = 2.0,
) -> ModelSpec:
    """Translate an lme4/brms formula and options into a :class:`ModelSpec`.

    Parameters
    ----------
    formula : str
        lme4/brms formula.
    family, link : str
        Response family and link (``None``: the family's default link).
    correlated : bool or dict
        ``True`` (lme4): effects inside one ``|`` bar are correlated. ``False`` fits every effect
        independent (Bambi's behaviour). A dict maps grouping factor -> bool.
    noncentered : bool, "auto" or dict
        Parameterization of the group effects, per grouping factor if a dict. ``"auto"`` is
        resolved from the data later (:func:`formulahier.parameterization.resolve_auto`).
    lkj_eta : float
        Shape of the LKJ prior on correlation matrices.

    Returns
    -------
    ModelSpec

    """
    from ..validate import positive_real

    lkj_eta = positive_real(lkj_eta, "lkj_eta", error=PriorError)  # brms: lkj(2)
    parsed = parse_formula(formula)
    expanded = [
        (bar, _expand_factor(bar, formula), _expr_terms(bar, formula)) for bar in parsed.bars
    ]
    factors = list(dict.fromkeys(f for _, fs, _ in expanded for f in fs))
    corr_for = _per_factor(correlated, factors, "correlated")
    nc_for = _per_factor(noncentered, factors, "noncentered")
    for name, table in (("correlated", corr_for), ("noncentered", nc_for)):
        ok = (True, False, "auto") if name == "noncentered" else (True, False)
        bad = {f: v for f, v in table.items() if not any(v is o or v == o for o in ok)}
        if bad:
            also = ' or "auto"' if name == "noncentered" else ""
            raise FormulaError(f"`{name}` takes True/False{also} (or a dict of them); got {bad}.")
    blocks: list[GroupBlock] = []
    seen: dict[str, str] = {}
    for bar, facs, (has_int, names) in expanded:
        for factor in facs:
            terms = (["1"] if has_int else []) + names
            groups = [[t] for t in terms] if bar.double else [terms]
            for group in groups:
                block = GroupBlock(
                    factor=factor,
                    terms=tuple(group),
                    correlated=corr_for[factor] and not bar.double,
                    noncentered="auto" if nc_for[factor] == "auto" else bool(nc_for[factor]),
                    source=bar.text,
                )
                for name in block.bambi_terms:
                    if name in seen:
                        raise FormulaError(
                            f"The group-level effect '{name}' appears twice (in {seen[name]} and "
                            f"{bar.text}); lme4 would fit two copies that the data cannot tell "
                            "apart. Keep one.",
                            formula,
                            bar.start,
                        )
                    seen[name] = bar.text
                blocks.append(block)
    return ModelSpec(
        formula=formula,
        response=parsed.response,
        population=parsed.population,
        blocks=tuple(blocks),
        family=family,
        link=link,
        lkj_eta=float(lkj_eta),
    )


def check_columns(spec: ModelSpec, columns: Iterable[str]) -> None:
    """Raise :class:`FormulaError` naming any variable of the formula that is not a column."""
    columns = [str(c) for c in columns]
    try:
        needed = spec.variables()
    except Exception as exc:
        raise FormulaError(f"Cannot read the formula: {exc}", spec.formula) from None
    missing = sorted(v for v in needed if v and v not in columns)
    if missing:
        hints = []
        for name in missing:
            close = [c for c in columns if c.lower() == name.lower()]  # case slips first
            close += [c for c in difflib.get_close_matches(name, columns, 3, 0.5) if c not in close]
            hints.append(
                f"'{name}'" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
            )
        pos = spec.formula.find(missing[0])
        raise FormulaError(
            f"Column(s) not in the data: {', '.join(hints)}. "
            f"The data has: {', '.join(columns[:20])}{' ...' if len(columns) > 20 else ''}.",
            spec.formula,
            pos if pos >= 0 else None,
        )
