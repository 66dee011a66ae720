"""The one character scanner of formula text: quotes skipped, bracket depth tracked.

Everything that splits or searches formula text (bar terms, ``+``/``-`` pieces, call arguments,
``^`` outside quotes, the safety check of formulas from files) goes through :func:`scan`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import FormulaError

__all__ = ["CALL", "outside_quotes", "scan", "split_additive", "split_call_args"]

#: a whole call ``name(arguments)``: groups 1 (the name) and 2 (the arguments as text)
CALL = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\((.*)\)\s*$", re.S)


def scan(
    text: str,
    base: int = 0,
    formula: str | None = None,
    *,
    opens: str = "(",
    closes: str = ")",
    strict: bool = True,
) -> Iterator[tuple[int, str, int]]:
    """Yield ``(index, char, depth)`` for the characters of ``text`` outside quotes.

    ``depth`` is the bracket depth the character stands at (an opening bracket at the depth
    outside it, a closing one likewise). ``strict``: unbalanced brackets and an unclosed quote
    raise :class:`FormulaError` with a caret at ``base + index`` in ``formula``; otherwise they
    pass (the depth may go negative).
    """
    formula = text if formula is None else formula
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
        if ch in opens:
            opened.append(i)
            depth += 1
        elif ch in closes:
            if depth == 0 and strict:
                raise FormulaError(
                    "Unbalanced parentheses: this ')' closes nothing.", formula, base + i
                )
            depth -= 1
            if opened:
                opened.pop()
            yield i, ch, depth
            continue
        yield i, ch, depth - (1 if ch in opens else 0)
    if not strict:
        return
    if quote:
        raise FormulaError("Unclosed quote.", formula, base + len(text) - 1)
    if opened:
        raise FormulaError(
            "Unbalanced parentheses: this '(' is never closed.", formula, base + opened[-1]
        )


def outside_quotes(text: str) -> set[int]:
    """Indices of the characters of ``text`` that stand outside quotes."""
    return {i for i, _, _ in scan(text, strict=False)}


def split_additive(text: str, base: int, formula: str) -> list[tuple[str, str, int]]:
    """Split ``text`` at top-level ``+`` and ``-`` into ``(sign, piece, offset)``."""
    pieces = []
    sign, start = "+", 0
    for i, ch, depth in scan(text, base, formula):
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


def split_call_args(text: str) -> list[str]:
    """Split ``"a, f(b, c), d"`` at top-level commas (parentheses and quotes respected)."""
    out, start = [], 0
    for i, ch, depth in scan(text, opens="([", closes=")]", strict=False):
        if ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out
