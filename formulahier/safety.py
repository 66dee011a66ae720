"""A safe grammar for formula text that does not come from the user's own Python code.

Formulas read from a saved fit (:func:`formulahier.load`) or given on the command line are
checked with :func:`check_formula_safe` before anything parses them: formulae (Bambi's formula
library) resolves the names of called functions, dotted ones included, in Python namespaces, so
``I(np.testing._private.utils.os.system('...')) ~ x`` would otherwise run a shell command.

The check never evaluates anything. The text is put into Python's expression syntax without
moving any character (``~`` -> ``<``, ``:`` -> ``&``, ``||`` -> ``//``, a backtick-quoted name
-> a placeholder name of the same length), parsed with :mod:`ast`, and every node of the tree
must be one the formula grammar needs: column names, numbers, the formula operators, and calls
of the functions in :data:`ALLOWED_CALLS` (text in quotes only as levels inside ``C()``).
Formulas passed to :func:`formulahier.fit` in Python are not checked: that code is the user's.
"""

from __future__ import annotations

import ast
import keyword
import re
import warnings

from .errors import FormulaError
from .formula import parse_formula
from .formula.scan import scan

__all__ = ["ALLOWED_CALLS", "check_formula_safe"]

#: Functions a checked formula may call (``as.factor`` and ``factor`` are read as ``C``).
ALLOWED_CALLS = frozenset(
    {
        "log", "log2", "log10", "log1p", "exp", "sqrt", "abs",
        "scale", "center", "standardize", "C", "factor", "I", "poly", "bs",
        "cbind", "trials", "p", "prop", "proportion", "offset",
        "weighted", "censored", "truncated",
    }
)  # fmt: skip
# keyword arguments of formulae's/Bambi's transforms (C, poly, bs, truncated)
_KEYWORDS = frozenset(
    {"levels", "ref", "degree", "raw", "df", "knots", "intercept", "lower_bound", "upper_bound",
     "lb", "ub"}
)  # fmt: skip
_STRING_CALLS = frozenset({"C", "factor", "as.factor"})  # may take levels in quotes
_OK_CHARS = set(" \t\r\n~+-*/:|^(),.=[]")
_STRING_TEXT = re.compile(r"[\w .+\-/]*")
_IDENT = re.compile(r"(?<![\w.])[^\W\d]\w*")
ALLOWED = (
    "A formula read from a file or the command line may use column names (`quoted` if they "
    "contain other characters), numbers, the operators ~ + - * / : | || ^ ** and parentheses, "
    "and the functions " + ", ".join(sorted(ALLOWED_CALLS, key=str.lower)) + "."
)
_OPERATORS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Pow,  # FloorDiv: "||"
    ast.BitOr, ast.BitXor, ast.BitAnd,
)  # fmt: skip


def _refuse(problem: str, formula: str, pos: int | None):
    raise FormulaError(f"{problem} {ALLOWED}", formula, pos)


def _mask_backticks(text: str) -> str:
    """Backtick-quoted names as identifiers of the same length (``Qqq...``); quotes skipped."""
    chars = list(text)
    i = 0
    while i < len(text):
        if text[i] in "'\"":  # skip a quoted string (checked later); an unclosed one: scan
            end = text.find(text[i], i + 1)
            i = len(text) if end < 0 else end + 1
            continue
        if text[i] == "`":
            end = text.find("`", i + 1)
            if end < 0:
                _refuse("This backtick is never closed.", text, i)
            name = text[i + 1 : end]
            if not name.strip() or re.search(r"[`'\"\\\r\n]", name):
                _refuse(
                    "A `quoted` column name must be non-empty and hold no quotes, backslashes "
                    "or line breaks.",
                    text,
                    i,
                )
            chars[i : end + 1] = ["Q"] + ["q"] * (end - i)
            i = end + 1
            continue
        i += 1
    return "".join(chars)


def _normalise(text: str) -> str:
    """The formula as a Python expression of the same length (offsets stay valid)."""
    masked = _mask_backticks(text)
    outside = [False] * len(masked)
    for i, ch, _ in scan(masked, 0, text):  # parentheses and quotes, with a caret
        outside[i] = True
        if not (ch.isalnum() or ch == "_" or ch in _OK_CHARS):
            _refuse(f"The character {ch!r} is not allowed here.", text, i)
    for match in re.finditer("//", masked):
        if outside[match.start()]:
            _refuse("The operator '//' is not allowed.", text, match.start())
    for match in re.finditer(r"(?<![\w.])as\.factor(?=\s*\()", masked):  # R's spelling
        if outside[match.start()]:
            masked = masked[: match.start()] + "as_factor" + masked[match.end() :]
    words = "".join(ch if outside[i] else " " for i, ch in enumerate(masked))
    for match in _IDENT.finditer(words):
        if keyword.iskeyword(match.group()) and match.group() not in ("True", "False", "None"):
            _refuse(f"The Python keyword '{match.group()}' is not allowed.", text, match.start())
        if match.group().startswith("__"):
            _refuse(f"The name '{match.group()}' (double underscore) is not allowed.", text,
                    match.start())  # fmt: skip
    out = [ch if not outside[i] or ch not in "~:|\r\n\t" else " " for i, ch in enumerate(masked)]
    swaps = {"~": "<", ":": "&"}
    i = 0
    while i < len(masked):
        if outside[i] and masked[i : i + 2] == "||":  # -> "//", which the text may not use
            out[i : i + 2] = ["/", "/"]
            i += 2
            continue
        if outside[i] and masked[i] in "~:|":
            out[i] = swaps.get(masked[i], masked[i])
        i += 1
    norm = "".join(out)
    stripped = norm.lstrip()
    if stripped.startswith("<"):  # a one-sided formula, "~ x" (bf() auxiliary parameters)
        cut = len(norm) - len(stripped)
        norm = norm[:cut] + " " + norm[cut + 1 :]
    return norm


def check_formula_safe(text: str) -> None:
    """Refuse formula text outside the safe grammar; return ``None`` if it is inside.

    Parameters
    ----------
    text : str
        A formula, two-sided (``"y ~ x + (1 | g)"``) or one-sided (``"~ x"``).

    Raises
    ------
    FormulaError
        Naming the problem, with the formula and a caret under it, and saying what is allowed.
        Nothing in ``text`` is ever evaluated.

    """
    if not isinstance(text, str):
        raise FormulaError(f"The formula must be a string, got {type(text).__name__}.")
    norm = "(" + _normalise(text) + ")"  # parentheses: leading spaces are no indentation
    try:
        with warnings.catch_warnings():  # SyntaxWarning on odd escapes (refused below)
            warnings.simplefilter("ignore")
            tree = ast.parse(norm, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        if "~" in text and not text.lstrip().startswith("~"):
            parse_formula(text)  # its own scanner, no evaluation: the better message, if any
        pos = None
        if isinstance(exc, SyntaxError) and exc.offset is not None:
            pos = _char_pos(norm, exc.offset - 1)
        _refuse("This formula cannot be read.", text, pos)
    _Checker(text, norm).run(tree.body)


def _char_pos(norm: str, byte_offset: int | None) -> int:
    """Character offset in the text of a UTF-8 byte offset in ``"(" + text + ")"`` (ast's)."""
    done = norm.encode("utf-8")[: max(byte_offset or 0, 0)].decode("utf-8", errors="ignore")
    return max(len(done) - 1, 0)


class _Checker:
    def __init__(self, text: str, norm: str):
        self.text, self.norm = text, norm

    def pos(self, node) -> int:
        return _char_pos(self.norm, node.col_offset)

    def raw(self, node) -> str:
        return self.text[self.pos(node) : _char_pos(self.norm, node.end_col_offset)]

    def run(self, root) -> None:
        if isinstance(root, ast.Compare):  # response ~ terms
            if len(root.ops) > 1:
                start = _char_pos(self.norm, root.comparators[0].end_col_offset)
                _refuse("A formula has one '~'; found another.", self.text,
                        self.text.find("~", start))  # fmt: skip
            stack = [(root.left, "arg"), (root.comparators[0], "arg")]
        else:
            stack = [(root, "arg")]
        while stack:  # no recursion: long formulas nest deeply
            node, where = stack.pop()
            stack.extend(self.children(node, where))

    def children(self, node, where: str):
        text = self.text
        if isinstance(node, ast.Name):
            if node.id.startswith("__") or self.raw(node).startswith("__"):
                _refuse(f"The name '{self.raw(node)}' (double underscore) is not allowed.",
                        text, self.pos(node))  # fmt: skip
            return []
        if isinstance(node, ast.Constant):
            self.constant(node, where)
            return []
        inner = "string" if where.startswith("string") else "arg"
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _OPERATORS):
                _refuse("This operator is not allowed.", text, self.pos(node))
            return [(node.left, inner), (node.right, inner)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return [(node.operand, inner)]
        if isinstance(node, (ast.List, ast.Tuple)) and where.endswith("keyword"):
            items = []
            for elt in node.elts:
                if not isinstance(elt, ast.Constant):
                    _refuse("A list may hold numbers (or levels in quotes inside C()) only.",
                            text, self.pos(elt))  # fmt: skip
                items.append((elt, "string" if where == "string-keyword" else "arg"))
            return items
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            dot = self.text.find(".", _char_pos(self.norm, node.value.end_col_offset))
            _refuse(f"Attribute access ('{self.raw(node)}') is not allowed.", text, dot)
        if isinstance(node, ast.Subscript):
            _refuse("Square brackets (subscripts) are not allowed.", text,
                    _char_pos(self.norm, node.value.end_col_offset))  # fmt: skip
        if isinstance(node, ast.Compare):
            _refuse("The '~' must stand between the whole response and the whole right-hand "
                    "side, outside parentheses.", text, self.pos(node))  # fmt: skip
        kind = {
            ast.Lambda: "A lambda", ast.ListComp: "A comprehension",
            ast.GeneratorExp: "A comprehension", ast.SetComp: "A comprehension",
            ast.DictComp: "A comprehension", ast.Starred: "A starred argument",
            ast.List: "A list", ast.Tuple: "A tuple", ast.Dict: "A dict", ast.Set: "A set",
        }.get(type(node), "This expression")  # fmt: skip
        _refuse(f"{kind} is not allowed in a formula.", text, self.pos(node))
        return []  # pragma: no cover - _refuse raises

    def constant(self, node: ast.Constant, where: str) -> None:
        """Numbers; True/False/None as keyword values; levels in quotes inside ``C()`` only."""
        text, value = self.text, node.value
        if isinstance(value, bool) or value is None:
            if where == "keyword":
                return
            _refuse(f"{value} is allowed only as a keyword argument's value.", text,
                    self.pos(node))  # fmt: skip
        if isinstance(value, (int, float)):
            return
        if isinstance(value, str) and where in ("string", "string-keyword"):
            raw = self.raw(node)
            if (
                len(raw) >= 2
                and raw[0] in "'\""
                and raw[-1] == raw[0]
                and raw[1:-1] == value
                and _STRING_TEXT.fullmatch(value)
            ):
                return
            _refuse("A level in quotes may hold letters, digits, spaces and _ . + - / only.",
                    text, self.pos(node))  # fmt: skip
        if isinstance(value, str):
            _refuse("Text in quotes is only allowed as a level inside C(), as in "
                    "C(g, levels=['b', 'a']).", text, self.pos(node))  # fmt: skip
        _refuse(f"The constant {self.raw(node)!r} is not allowed.", text, self.pos(node))

    def call(self, node: ast.Call):
        text, func = self.text, node.func
        name = self.raw(func).strip()
        # R's as.factor(x), read as C(x); the check spells it as_factor
        is_as_factor = isinstance(func, ast.Name) and func.id == "as_factor" and name == "as.factor"
        if not is_as_factor:
            if not isinstance(func, ast.Name):
                if isinstance(func, ast.Attribute):
                    _refuse(f"Calling '{name}' is not allowed (attribute access).", text,
                            self.pos(func))  # fmt: skip
                _refuse("Only named functions can be called.", text, self.pos(func))
            if name not in ALLOWED_CALLS:
                _refuse(f"The function '{name}' is not allowed.", text, self.pos(func))
        strings = name in _STRING_CALLS
        out = [(arg, "string" if strings else "arg") for arg in node.args]
        for kw in node.keywords:
            if kw.arg is None:
                _refuse("'**' arguments are not allowed.", text, self.pos(kw.value))
            if kw.arg not in _KEYWORDS:
                _refuse(f"The keyword argument '{kw.arg}=' is not allowed; use "
                        f"{', '.join(sorted(_KEYWORDS))}.", text, self.pos(kw.value))  # fmt: skip
            out.append((kw.value, "string-keyword" if strings else "keyword"))
        return out
