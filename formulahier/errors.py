"""Exceptions and warnings raised by formulahier.

Every error the public API raises on bad input is a :class:`FormulahierError`, so a caller can
catch one class. The subclasses say which part of the input was wrong.
"""

from __future__ import annotations

import warnings
from pathlib import Path

__all__ = [
    "DataError",
    "FitFileError",
    "FormulaError",
    "FormulahierError",
    "FormulahierWarning",
    "MemoryLimitError",
    "OptionError",
    "PriorError",
    "SamplerError",
    "warn",
]


class FormulahierError(Exception):
    """Root of every error raised by formulahier on bad input or an impossible request."""


class FormulaError(FormulahierError, ValueError):
    """The formula is malformed, names a missing column, or uses unsupported syntax.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    formula : str, optional
        The formula text; when given with ``pos``, the message shows it with a caret.
    pos : int, optional
        Zero-based character offset of the problem within ``formula``.

    """

    def __init__(self, message: str, formula: str | None = None, pos: int | None = None):
        self.formula = formula
        self.pos = pos
        self.reason = message
        text = message
        if formula is not None:
            text += f"\n    {formula}"
            if pos is not None:
                text += "\n    " + " " * max(pos, 0) + "^"
        super().__init__(text)


class PriorError(FormulahierError, ValueError):
    """A prior names an unknown slot or a distribution that cannot serve it."""


class DataError(FormulahierError, ValueError):
    """The data cannot support the model: missing values, unseen levels, wrong types."""


class OptionError(FormulahierError, ValueError):
    """An option has a wrong type or value, or a keyword argument is unknown.

    ``draws=0``, ``ci_prob=95``, ``target_accept=1.2``, ``seed=-1``, ``kind="means"``, a
    misspelled keyword: the message names the option and its valid values.
    """


class SamplerError(FormulahierError, RuntimeError):
    """The requested sampler is unknown or its optional dependency is not installed."""


class MemoryLimitError(FormulahierError, MemoryError):
    """A step needs more memory than the machine has; the message says what and what to do."""


class FitFileError(FormulahierError, OSError):
    """A saved fit cannot be read or written.

    The file is missing, not a formulahier fit, damaged, changed after it was saved, or from a
    newer formulahier; or the folder to save into does not exist.
    """


class FormulahierWarning(UserWarning):
    """Warnings about the fit or the data (dropped rows, sampling diagnostics)."""


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def warn(message: str) -> None:
    """Warn with :class:`FormulahierWarning`, attributed to the user's line that called us.

    The frames inside the package are skipped (``skip_file_prefixes``), so the warning shows
    the user's ``fit.loo()`` or ``fh.fit(...)`` line however deep in the package it is raised.
    """
    warnings.warn(message, FormulahierWarning, skip_file_prefixes=(_PACKAGE_DIR,))
