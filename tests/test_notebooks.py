"""Every notebook runs top to bottom (few draws), and is stored with its outputs.

Running them samples real models (about 17 graphs, a few minutes on 2 cores); marked slow. The
notebooks read ``FORMULAHIER_NB_DRAWS`` and lower draws, warm-up and chains from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
NB_DRAWS = os.environ.get("FORMULAHIER_NB_DRAWS", "40")
THEMES = ("getting_started", "pooling", "centered", "ozone", "nwo")


def _ids(paths):
    return [p.stem for p in paths]


def test_one_notebook_per_theme():
    names = " ".join(p.stem for p in NOTEBOOKS)
    for theme in THEMES:
        assert theme in names, f"no notebook for {theme}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_with_outputs_and_reads_the_draws_variable(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, path.name
    assert all(c.get("execution_count") for c in code), f"{path.name}: run it before storing"
    assert all(c.outputs for c in code if "print(" in c.source), f"{path.name}: outputs missing"
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, f"{path.name} was stored with an error"
    setup = code[0].source
    assert "FORMULAHIER_NB_DRAWS" in setup and "SAMPLING" in setup
    # every fit uses the shared settings, so the test's draws variable reaches all of them
    for cell in code:
        for line in cell.source.splitlines():
            if "fh.fit(" in line:
                block = cell.source[cell.source.index(line) :]
                assert "**SAMPLING" in block, f"{path.name}: a fit ignores SAMPLING: {line}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("FORMULAHIER_NB_DRAWS", NB_DRAWS)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError with the failing cell
    nbformat.write(nb, tmp_path / path.name)  # executed copy, for inspection on failure
