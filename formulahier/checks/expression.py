"""A response expression such as ``log(y)`` evaluated on the data, by a tiny :mod:`ast` walker."""

from __future__ import annotations

import ast
import operator
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError

__all__ = ["evaluate_expression", "evaluate_or_none"]

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "round": np.round,
    "I": lambda x: x,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_SIGNS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def evaluate_expression(expr: str, frame: pd.DataFrame):
    """Value of a response expression such as ``log(y)`` or ``s + f`` on the columns of ``frame``.

    A tiny evaluator over :mod:`ast`, no ``eval``: column names, numbers, ``+ - * / // **``, signs
    and calls of ``log, log2, log10, log1p, exp, sqrt, abs, round`` (numpy's) and ``I``.

    Raises
    ------
    FormulaError
        For anything else (attribute access, subscripts, other functions, names that are not
        columns, ...); nothing is evaluated then.
    DataError
        If the columns cannot be combined so (text columns in arithmetic, ...).

    """
    try:
        with warnings.catch_warnings():  # SyntaxWarning on odd escapes: the text is refused
            warnings.simplefilter("ignore")
            tree = ast.parse(f"({expr})", mode="eval")  # parentheses: leading spaces are fine
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise FormulaError(f"Cannot read the expression '{expr}'.") from None
    try:
        with np.errstate(all="ignore"):  # log of a negative: NaN, reported by row by the caller
            return _value(tree.body, frame, expr)
    except FormulaError:  # a ValueError too: not the data's fault
        raise
    except RecursionError:
        raise FormulaError(f"The expression '{expr}' is nested too deeply.") from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. log() of a text column
        raise DataError(f"Cannot compute '{expr}' from the data: {exc}") from None


def _value(node, frame: pd.DataFrame, expr: str):
    allowed = (
        "; only column names, numbers, + - * / // ** and the functions "
        f"{', '.join(_FUNCTIONS)} are evaluated"
    )
    if isinstance(node, ast.Name):
        if node.id.startswith("__") or node.id not in frame.columns:
            raise FormulaError(f"'{node.id}' in '{expr}' is not a column{allowed}.")
        return frame[node.id]
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        raise FormulaError(f"The constant {node.value!r} in '{expr}' is not a number{allowed}.")
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _value(node.left, frame, expr), _value(node.right, frame, expr)
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _SIGNS:
        return _SIGNS[type(node.op)](_value(node.operand, frame, expr))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise FormulaError(f"'{ast.unparse(node.func)}' in '{expr}' is not allowed{allowed}.")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise FormulaError(f"Keyword or starred arguments in '{expr}'{allowed}.")
        return _FUNCTIONS[node.func.id](*(_value(a, frame, expr) for a in node.args))
    if isinstance(node, ast.Attribute):
        raise FormulaError(f"Attribute access in '{expr}' is not allowed{allowed}.")
    if isinstance(node, ast.Subscript):
        raise FormulaError(f"Subscripts in '{expr}' are not allowed{allowed}.")
    raise FormulaError(f"'{ast.unparse(node)}' in '{expr}' is not allowed{allowed}.")


def evaluate_or_none(expr: str, frame: pd.DataFrame) -> pd.Series | None:
    """Evaluate a response expression on the data, or return ``None`` if we cannot.

    ``None`` (no check here) for whatever :func:`evaluate_expression` refuses: the formula is
    then formulae's to read, as written by the user (formulas from files are checked with
    :func:`formulahier.safety.check_formula_safe` before they get here).
    """
    expr = expr.strip()
    if expr in frame.columns:
        return frame[expr]
    if re.fullmatch(r"-?\d+", expr):
        return pd.Series(int(expr), index=frame.index)
    try:
        value = evaluate_expression(expr, frame)
    except (FormulaError, DataError):
        return None
    if np.ndim(value) == 0:
        return pd.Series(value, index=frame.index)
    return pd.Series(np.asarray(value), index=frame.index) if len(value) == len(frame) else None
