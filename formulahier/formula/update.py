"""R's ``update.formula``: a new formula written relative to an old one with ``.``."""

from __future__ import annotations

import re

from ..errors import FormulaError
from .scan import split_additive

__all__ = ["update_formula"]


def update_formula(old: str, new: str) -> str:
    """R's ``update.formula``: ``.`` in ``new`` stands for that side of ``old``.

    ``". ~ . + x"`` adds ``x``; ``"log(y) ~ ."`` changes the response; ``". ~ . - x"`` drops
    the top-level term ``x``.
    """
    if "~" not in new:
        raise FormulaError("The new formula needs a '~', e.g. '. ~ . + x'.", new)
    old_lhs, old_rhs = (s.strip() for s in old.split("~", 1))
    lhs, rhs = (s.strip() for s in new.split("~", 1))
    lhs = old_lhs if lhs == "." else lhs
    pieces = _split_terms(rhs)
    if pieces and pieces[0] == ("+", "."):
        terms = _split_terms(old_rhs)
        for sign, term in pieces[1:]:
            if sign == "+":
                terms.append(("+", term))
            else:
                kept = [t for t in terms if _norm(t[1]) != _norm(term)]
                if len(kept) == len(terms):
                    raise FormulaError(f"Cannot drop '{term}': it is not a term of '{old}'.", new)
                terms = kept
        rhs = " + ".join(t for _, t in terms) or "1"
    elif re.search(r"(?<![\w.])\.(?![\w.])", rhs):
        raise FormulaError("Write '.' only at the start of the right-hand side: '. ~ . + x'.", new)
    return f"{lhs} ~ {rhs}"


def _norm(term: str) -> str:
    return re.sub(r"\s+", "", term)


def _split_terms(rhs: str) -> list[tuple[str, str]]:
    """Split at top-level ``+``/``-`` into (sign, term), with the formula layer's scanner."""
    return [(sign, piece) for sign, piece, _ in split_additive(rhs, 0, rhs)]
