"""Where the sampler's progress bar goes: stderr, at full width, never into redirected stdout.

PyMC 6 draws its progress bar with ``rich`` on a console bound to stdout, so
``python fit.py > out.txt`` used to end with a progress table in ``out.txt``, and one cut to 80
columns (``Dive…``, ``0:00…``) because a console that is not a terminal gets rich's default
width. :func:`progress_on_stderr` sends that console to stderr for the duration of sampling; when
stderr is not a terminal either (a log file, CI), rich prints the finished table once, and we
give it room (:data:`PLAIN_WIDTH` columns) so that no column is cut. ``sampler="nutpie"`` runs
through PyMC and shows the same table (checked: it lands on stderr too).

Also what a running fit does to the rest of the process: :func:`quiet_logger` keeps a library's
info lines out while it runs, :func:`collector_relaxed` holds off Python's full garbage
collections during imports and small fits.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout

__all__ = ["PLAIN_WIDTH", "collector_relaxed", "progress_on_stderr", "quiet_logger"]

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
    logger.setLevel(max(level, before))  # never lets through more than a caller outside did
    try:
        yield
    finally:
        logger.setLevel(before)


_RELAXED: list[tuple[int, int, int] | None] = []  # [thresholds before, a None per block in]
_RELAXED_LOCK = threading.Lock()


@contextmanager
def collector_relaxed() -> Iterator[None]:
    """No full collection by Python's cyclic garbage collector while inside (young ones run).

    Importing the backend and compiling and sampling a small model make a few hundred thousand
    long-lived objects (modules, the data, the built model and its compiled functions), and
    every full collection walked all of them: about 1 s of a sleepstudy fit on 2 busy cores,
    3-4 full collections in the imports and 3-4 in the fit (docs/performance.md). Inside, the
    oldest generation's threshold is raised out of reach; afterwards it is set back, and the
    next full collection comes when Python's own rule calls for it. Cyclic garbage that
    reaches the oldest generation inside waits until then (a cold compile's: about 90 MB), so
    it is used around the imports and the callback route (small models, seconds), not around
    long fits.
    """
    with _RELAXED_LOCK:  # fits may overlap in threads: the first in raises, the last out restores
        if not _RELAXED:
            young, middle, old = gc.get_threshold()
            _RELAXED.append((young, middle, old))
            gc.set_threshold(young, middle, max(old, 10**9))
        _RELAXED.append(None)
    try:
        yield
    finally:
        with _RELAXED_LOCK:
            _RELAXED.pop()
            if len(_RELAXED) == 1:
                saved = _RELAXED.pop()
                assert saved is not None  # the first entry holds the thresholds
                gc.set_threshold(*saved)
