"""Where the sampler's progress bar goes: stderr, at full width, never into redirected stdout.

PyMC 6 draws its progress bar with ``rich`` on a console bound to stdout, so
``python fit.py > out.txt`` used to end with a progress table in ``out.txt``, and one cut to 80
columns (``Dive…``, ``0:00…``) because a console that is not a terminal gets rich's default
width. :func:`progress_on_stderr` sends that console to stderr for the duration of sampling; when
stderr is not a terminal either (a log file, CI), rich prints the finished table once, and we
give it room (:data:`PLAIN_WIDTH` columns) so that no column is cut. ``sampler="nutpie"`` runs
through PyMC and shows the same table (checked: it lands on stderr too).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout

__all__ = ["PLAIN_WIDTH", "progress_on_stderr", "quiet_logger"]

PLAIN_WIDTH = 160  # wide enough for PyMC's eight columns with four chains


@contextmanager
def progress_on_stderr(enabled: bool = True) -> Iterator[None]:
    """Inside the block, what PyMC's progress bar prints goes to stderr.

    The user's ``COLUMNS`` setting is respected; it is set (and restored afterwards) only when
    stderr is not a terminal and the user has not set it.
    """
    if not enabled:
        yield
        return
    err = sys.stderr
    wide = not _is_terminal(err) and "COLUMNS" not in os.environ
    if wide:
        os.environ["COLUMNS"] = str(PLAIN_WIDTH)
    try:
        with redirect_stdout(err):
            yield
    finally:
        if wide:
            os.environ.pop("COLUMNS", None)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


@contextmanager
def quiet_logger(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Inside the block, the logger ``name`` lets through only messages of ``level`` and up."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)
