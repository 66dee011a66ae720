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
