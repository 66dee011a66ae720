"""The progress bar goes to stderr, at full width when stderr is not a terminal."""

from __future__ import annotations

import io
import os
import sys

import pytest

from formulahier.progress import PLAIN_WIDTH, progress_on_stderr


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty", [False, True])
def test_stdout_goes_to_stderr_and_columns_are_restored(monkeypatch, tty):
    out, err = _Stream(tty=False), _Stream(tty=tty)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.delenv("COLUMNS", raising=False)
    with progress_on_stderr(True):
        print("progress")
        inside = os.environ.get("COLUMNS")
    assert out.getvalue() == "" and err.getvalue() == "progress\n"
    assert inside == (None if tty else str(PLAIN_WIDTH))  # a terminal knows its own width
    assert "COLUMNS" not in os.environ


def test_user_columns_and_disabled_bar_are_left_alone(monkeypatch):
    out, err = _Stream(tty=False), _Stream(tty=False)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("COLUMNS", "100")
    with progress_on_stderr(True):
        assert os.environ["COLUMNS"] == "100"
    with progress_on_stderr(False):
        print("summary")
    assert out.getvalue() == "summary\n" and os.environ["COLUMNS"] == "100"


def test_rich_console_made_inside_writes_to_stderr_unclipped(monkeypatch):
    from rich.console import Console
    from rich.table import Table

    out, err = _Stream(tty=False), _Stream(tty=False)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.delenv("COLUMNS", raising=False)
    table = Table(*["Progress", "Draw", "Divergences", "Step size", "Grad evals", "Speed",
                    "Elapsed", "Remaining"], expand=True)  # fmt: skip
    table.add_row("━━━━", "2000", "0", "0.31", "15", "512.33 draws/s", "0:00:04", "0:00:00")
    with progress_on_stderr(True):
        Console().print(table)  # as PyMC builds its console: Console(theme=...)
    assert out.getvalue() == ""
    assert "Divergences" in err.getvalue() and "…" not in err.getvalue()


def test_pymc_info_lines_left_out_its_warnings_kept(sleepstudy, caplog):
    """PyMC's "Initializing NUTS ..." lines are not shown (the summary says it); warnings are."""
    import logging

    import pymc as pm
    from _support import mocked_sampling

    import formulahier as fh

    caplog.set_level(logging.INFO, logger="pymc")
    with mocked_sampling():
        inner = pm.sample

        def noisy(*args, **kwargs):
            logging.getLogger("pymc").info("Initializing NUTS using jitter+adapt_diag...")
            logging.getLogger("pymc").warning("a warning of PyMC's")
            return inner(*args, **kwargs)

        pm.sample = noisy
        try:
            fh.fit("Reaction ~ Days + (1 | Subject)", sleepstudy, sampler="pymc", draws=10,
                   chains=1, progressbar=False)  # fmt: skip
        finally:
            pm.sample = inner
    said = [r.getMessage() for r in caplog.records if r.name.startswith("pymc")]
    assert "a warning of PyMC's" in said
    assert not any("Initializing NUTS" in m for m in said), said
    assert logging.getLogger("pymc").level == logging.INFO  # set back after the fit


def test_collector_relaxed_overlapping_blocks_restore_the_thresholds():
    import gc

    from formulahier.progress import collector_relaxed

    before = gc.get_threshold()
    first, second = collector_relaxed(), collector_relaxed()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first out (another thread's fit ending first)
    assert gc.get_threshold()[2] >= 10**9  # the second block is still inside
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_quiet_logger_never_lets_through_more():
    import logging

    from formulahier.progress import quiet_logger

    logger = logging.getLogger("fh_test_quiet")
    logger.setLevel(logging.ERROR)  # e.g. many.quiet_pymc around a job
    with quiet_logger("fh_test_quiet", logging.WARNING):
        assert logger.level == logging.ERROR
    assert logger.level == logging.ERROR
