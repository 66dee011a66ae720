"""lme4/brms formula text -> :class:`~formulahier.spec.ModelSpec` and a formula Bambi understands.

Bar terms are found with a small scanner that respects parentheses and quotes; the expressions
inside them are checked with formulae (Bambi's parser), so that every term name we compute is
the one Bambi will use.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import formulae as fm

from .errors import FormulaError, PriorError
from .spec import GroupBlock, ModelSpec

__all__ = ["Bar", "ParsedFormula", "build_spec", "check_columns", "parse_formula"]

_NAME = re.compile(r"^[A-Za-z_.][\w.]*$")
_UNSUPPORTED_FACTOR_CALLS = {
    "gr": "brms's gr() is not supported: write the factor itself, e.g. (1 | g)",
    "mm": "brms's multi-membership mm() is not supported",
}
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


def _scan(text: str, base: int, formula: str):
    """Yield ``(index, char, depth)`` for characters outside quotes; check parentheses."""
    depth = 0
    quote = None
    opened: list[int] = []
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
            continue
        if ch == "(":
            opened.append(i)
            depth += 1
        elif ch == ")":
            if depth == 0:
                raise FormulaError(
                    "Unbalanced parentheses: this ')' closes nothing.", formula, base + i
                )
            depth -= 1
            opened.pop()
            yield i, ch, depth
            continue
        yield i, ch, depth - (1 if ch == "(" else 0)
    if quote:
        raise FormulaError("Unclosed quote.", formula, base + len(text) - 1)
    if opened:
        raise FormulaError(
            "Unbalanced parentheses: this '(' is never closed.", formula, base + opened[-1]
        )


def _split_additive(text: str, base: int, formula: str) -> list[tuple[str, str, int]]:
    """Split ``text`` at top-level ``+`` and ``-`` into ``(sign, piece, offset)``."""
    pieces = []
    sign, start = "+", 0
    for i, ch, depth in _scan(text, base, formula):
        if depth == 0 and ch in "+-":
            pieces.append((sign, text[start:i], base + start))
            sign, start = ch, i + 1
    pieces.append((sign, text[start:], base + start))
    out = []
    for k, (sgn, piece, off) in enumerate(pieces):
        stripped = piece.strip()
        if not stripped:
            if k == 0 and len(pieces) > 1:  # a leading sign, as in "-1 + x"
                continue
            raise FormulaError("A term is missing next to this operator.", formula, max(off - 1, 0))
        out.append((sgn, stripped, off + (len(piece) - len(piece.lstrip()))))
    return out


def _find_bars(inner: str, base: int, formula: str) -> list[int]:
    return [i for i, ch, depth in _scan(inner, base, formula) if depth == 0 and ch == "|"]


def _parse_bar(piece: str, offset: int, formula: str) -> Bar | None:
    """Return a :class:`Bar` if ``piece`` is a whole ``( ... | ... )`` term, else ``None``."""
    bars_anywhere = [i for i, ch, _ in _scan(piece, offset, formula) if ch == "|"]
    if not bars_anywhere:
        return None
    is_wrapped = piece.startswith("(") and piece.endswith(")")
    if is_wrapped:
        # the first "(" must close at the very end
        for i, ch, depth in _scan(piece, offset, formula):
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
    expr = _r_calls(inner[:first].strip())
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
    tildes = [i for i, ch, depth in _scan(formula, 0, formula) if ch == "~" and depth == 0]
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
    for sign, piece, offset in _split_additive(rhs, cut + 1, formula):
        bar = _parse_bar(piece, offset, formula)
        if bar is None:
            population.append((sign, piece, offset))
        elif sign == "-":
            raise FormulaError("A group-level term cannot be subtracted.", formula, offset)
        else:
            bars.append(bar)
    _check_calls(population, formula)
    pop_text = " ".join(
        (("- " if s == "-" else "") if k == 0 else f"{s} ") + _r_calls(p)
        for k, (s, p, _) in enumerate(population)
    )
    return ParsedFormula(formula, response, pop_text or "1", tuple(bars))


def _check_calls(pieces: Iterable[tuple[str, str, int]], formula: str) -> None:
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


def _r_calls(text: str) -> str:
    """R spellings -> formulae/Python: ``factor(x)`` -> ``C(x)``, ``x^2`` -> ``x**2``."""
    out, quote = [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        out.append("**" if ch == "^" and quote is None else ch)
    return _R_CALLS.sub("C(", "".join(out))


def _translate_response(response: str, formula: str, pos: int) -> str:
    """lme4's ``cbind(s, f)`` and brms's ``s | trials(n)`` -> Bambi's ``p(s, n)``."""
    from .families import split_call_args  # families imports nothing from here

    bars = [i for i, ch, depth in _scan(response, pos, formula) if ch == "|" and depth == 0]
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
    if not _NAME.match(successes):
        raise FormulaError(
            f"The successes '{successes}' in cbind() must be a column name; compute it as a "
            "column of the data first.",
            formula,
            pos + response.find(successes),
        )
    total = re.fullmatch(rf"(.+?)\s*-\s*{re.escape(successes)}", failures)
    if total and (_NAME.match(total.group(1)) or total.group(1).isdigit()):
        return f"p({successes}, {total.group(1)})"  # cbind(s, n - s): trials n
    if _NAME.match(failures):
        return f"p({successes}, {successes} + {failures})"
    return f"p({successes}, {successes} + ({failures}))"


def _expand_factor(bar: Bar, formula: str) -> list[str]:
    """``a/b`` -> ``[a, a:b]`` (lme4's nesting); ``a:b`` stays one factor."""
    pos = bar.start + bar.text.rfind(bar.factor)
    call = re.match(r"\s*([A-Za-z_][\w.]*)\s*\(", bar.factor)
    if call:
        hint = _UNSUPPORTED_FACTOR_CALLS.get(call.group(1), "write a column name or a:b")
        raise FormulaError(f"Unsupported grouping factor '{bar.factor}': {hint}.", formula, pos)
    parts = [p.strip() for p in bar.factor.split("/")]
    factors, prefix = [], []
    for part in parts:
        names = [n.strip() for n in part.split(":")]
        bad = [n for n in names if not _NAME.match(n)]
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
    _check_calls([("+", bar.expr, bar.start + 1)], formula)
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


def _per_factor(value, factors: list[str], what: str) -> dict[str, object]:
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
    from .validate import positive_real

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
        needed = set(fm.model_description(spec.bambi_formula).var_names)
        for name, text in spec.dpars:  # distributional formulas: their response is a parameter
            needed |= set(fm.model_description(text).var_names) - {name}
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
