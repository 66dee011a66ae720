"""lme4/brms formula text -> response, population part and bar terms (:class:`ParsedFormula`).

Bar terms are found with the scanner of :mod:`.scan`, which respects parentheses and quotes; R
spellings are translated (``factor(x)``, ``x^2``, ``cbind(s, f)``, ``s | trials(n)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import FormulaError
from .scan import outside_quotes, scan, split_additive, split_call_args

__all__ = ["NAME", "Bar", "ParsedFormula", "check_calls", "parse_formula", "r_calls"]

#: a column name as formulas spell it
NAME = re.compile(r"^[A-Za-z_.][\w.]*$")
_UNSUPPORTED_TERM_CALLS = {
    "s": "smooth terms s() are not supported; use poly() or a spline basis column",
    "t2": "smooth terms t2() are not supported",
    "mo": "monotonic effects mo() are not supported; use C(x) for a categorical effect",
    "me": "measurement-error terms me() are not supported",
    "gp": "gp() terms are not supported",
}


@dataclass(frozen=True)
class Bar:
    """One ``(expr | factor)`` or ``(expr || factor)`` term as written."""

    expr: str
    factor: str
    double: bool
    text: str
    start: int  # offset of "(" in the whole formula


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into response, population part and bar terms."""

    formula: str
    response: str
    population: str
    bars: tuple[Bar, ...]


def _find_bars(inner: str, base: int, formula: str) -> list[int]:
    return [i for i, ch, depth in scan(inner, base, formula) if depth == 0 and ch == "|"]


def _parse_bar(piece: str, offset: int, formula: str) -> Bar | None:
    """Return a :class:`Bar` if ``piece`` is a whole ``( ... | ... )`` term, else ``None``."""
    bars_anywhere = [i for i, ch, _ in scan(piece, offset, formula) if ch == "|"]
    if not bars_anywhere:
        return None
    is_wrapped = piece.startswith("(") and piece.endswith(")")
    if is_wrapped:
        # the first "(" must close at the very end
        for i, ch, depth in scan(piece, offset, formula):
            if ch == ")" and depth == 0 and i != len(piece) - 1:
                is_wrapped = False
                break
    inner = piece[1:-1] if is_wrapped else ""
    bars = _find_bars(inner, offset + 1, formula) if is_wrapped else []
    if not bars:
        raise FormulaError(
            "A group-level term must stand alone inside its own parentheses, as in "
            "'y ~ x + (x | g)'; it cannot be multiplied, nested or negated.",
            formula,
            offset + bars_anywhere[0],
        )
    first = bars[0]
    double = len(bars) >= 2 and bars[1] == first + 1
    if (double and len(bars) > 2) or (not double and len(bars) > 1):
        raise FormulaError(
            "brms's '(1 | ID | g)' syntax (correlations across formulas) is not supported. "
            "Write '(1 | g)'; effects inside one bar term are correlated already.",
            formula,
            offset + 1 + bars[1],
        )
    expr = r_calls(inner[:first].strip())
    factor = inner[first + (2 if double else 1) :].strip()
    bar_pos = offset + 1 + first
    if not expr:
        raise FormulaError(
            "Nothing before the bar: write '(1 | g)' for a group intercept, "
            "'(x | g)' for intercept and slope.",
            formula,
            bar_pos,
        )
    if not factor:
        raise FormulaError(
            "No grouping factor after the bar: name a column, as in '(1 | g)'.",
            formula,
            bar_pos + (2 if double else 1),
        )
    return Bar(expr=expr, factor=factor, double=double, text=piece, start=offset)


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4/brms formula into response, population part and bar terms.

    Parameters
    ----------
    formula : str
        For example ``"log_ozone ~ TEMP + (TEMP | station)"``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError
        On malformed text, with the formula and a caret under the problem.

    """
    if not isinstance(formula, str):
        raise FormulaError(f"The formula must be a string, got {type(formula).__name__}.")
    tildes = [i for i, ch, depth in scan(formula, 0, formula) if ch == "~" and depth == 0]
    if not tildes:
        raise FormulaError(
            "A formula needs a response and a '~', as in 'y ~ x + (1 | g)'.", formula, 0
        )
    if len(tildes) > 1:
        raise FormulaError("A formula has one '~'; found another here.", formula, tildes[1])
    cut = tildes[0]
    response = formula[:cut].strip()
    if not response:
        raise FormulaError("The response (left of '~') is missing.", formula, cut)
    response = _translate_response(
        response, formula, len(formula[:cut]) - len(formula[:cut].lstrip())
    )
    rhs = formula[cut + 1 :]
    if not rhs.strip():
        raise FormulaError("Nothing right of '~': write 'y ~ 1' for an intercept.", formula, cut)
    population, bars = [], []
    for sign, piece, offset in split_additive(rhs, cut + 1, formula):
        bar = _parse_bar(piece, offset, formula)
        if bar is None:
            population.append((sign, piece, offset))
        elif sign == "-":
            raise FormulaError("A group-level term cannot be subtracted.", formula, offset)
        else:
            bars.append(bar)
    check_calls(population, formula)
    pop_text = " ".join(
        (("- " if s == "-" else "") if k == 0 else f"{s} ") + r_calls(p)
        for k, (s, p, _) in enumerate(population)
    )
    return ParsedFormula(formula, response, pop_text or "1", tuple(bars))


def check_calls(pieces: Iterable[tuple[str, str, int]], formula: str) -> None:
    """Refuse brms term calls formulahier cannot fit (``s()``, ``mo()``, ...) with a caret."""
    for _, piece, offset in pieces:
        for m in re.finditer(r"(?<![\w.])([A-Za-z_][\w.]*)\s*\(", piece):
            hint = _UNSUPPORTED_TERM_CALLS.get(m.group(1))
            if hint:
                raise FormulaError(hint + ".", formula, offset + m.start(1))


_R_CALLS = re.compile(r"(?<![\w.])(?:as\.)?factor\s*\(")
_BRMS_ADDITIONS = {
    "weights": "write Bambi's 'weighted(y, w) ~ ...'",
    "cens": "write Bambi's 'censored(y, status) ~ ...'",
    "trunc": "write Bambi's 'truncated(y, lb, ub) ~ ...'",
    "se": "known measurement error se() is not available",
    "mi": "missing-value imputation mi() is not available",
    "subset": "subset() is not available; filter the rows of the data instead",
    "rate": "write 'offset(log(exposure))' on the right-hand side instead",
}


def r_calls(text: str) -> str:
    """R spellings -> formulae/Python: ``factor(x)`` -> ``C(x)``, ``x^2`` -> ``x**2``."""
    outside = outside_quotes(text)
    out = ("**" if ch == "^" and i in outside else ch for i, ch in enumerate(text))
    return _R_CALLS.sub("C(", "".join(out))


def _translate_response(response: str, formula: str, pos: int) -> str:
    """lme4's ``cbind(s, f)`` and brms's ``s | trials(n)`` -> Bambi's ``p(s, n)``."""
    bars = [i for i, ch, depth in scan(response, pos, formula) if ch == "|" and depth == 0]
    if bars:
        successes, addition = response[: bars[0]].strip(), response[bars[0] + 1 :].strip()
        call = re.fullmatch(r"([A-Za-z_][\w.]*)\s*\((.*)\)", addition, re.S)
        where = (
            pos
            + bars[0]
            + 1
            + (len(response[bars[0] + 1 :]) - len(response[bars[0] + 1 :].lstrip()))
        )
        if not call:
            raise FormulaError(
                "A '|' in the response must be followed by a brms addition such as "
                "'trials(n)', as in 's | trials(n) ~ x'.",
                formula,
                where,
            )
        if call.group(1) != "trials":
            hint = _BRMS_ADDITIONS.get(call.group(1), "it has no formulahier equivalent")
            raise FormulaError(
                f"The brms response addition '{call.group(1)}()' is not supported: {hint}.",
                formula,
                where,
            )
        args = split_call_args(call.group(2))
        if len(args) != 1 or not args[0] or not successes:
            raise FormulaError(
                "Write the binomial response as 'successes | trials(n) ~ ...'.", formula, where
            )
        return f"p({successes}, {args[0]})"
    call = re.fullmatch(r"cbind\s*\((.*)\)", response, re.S)
    if not call:
        return response
    args = split_call_args(call.group(1))
    if len(args) != 2 or not all(args):
        raise FormulaError(
            "cbind() in the response takes two columns, successes and failures, as in "
            "'cbind(s, n - s) ~ x' (lme4).",
            formula,
            pos,
        )
    successes, failures = args
    if not NAME.match(successes):
        raise FormulaError(
            f"The successes '{successes}' in cbind() must be a column name; compute it as a "
            "column of the data first.",
            formula,
            pos + response.find(successes),
        )
    total = re.fullmatch(rf"(.+?)\s*-\s*{re.escape(successes)}", failures)
    if total and (NAME.match(total.group(1)) or total.group(1).isdigit()):
        return f"p({successes}, {total.group(1)})"  # cbind(s, n - s): trials n
    if NAME.match(failures):
        return f"p({successes}, {successes} + {failures})"
    return f"p({successes}, {successes} + ({failures}))"


