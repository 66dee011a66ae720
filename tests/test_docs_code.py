"""Every ```python block of README.md and docs/*.md runs, and the README example is quiet.

Cheap mode: ``Model.fit`` is capped at 2 chains x 20 draws (20 warm-up) with PyMC's sampler
and PyMC's own test mock (prior draws in place of MCMC, ``pymc.testing``), and a bundled data
set over :data:`ROWS` rows is thinned to every k-th row (its levels kept), so that PSIS-LOO,
which ArviZ computes observation by observation, stays cheap. What is checked is that the code
in the docs runs as written, not the numbers. Blocks of one page share one namespace, in order, as a reader would run them, in a
temporary working directory (``fit.save("ozone.nc")`` writes there).

A block that cannot run is marked on the line before it with ``<!-- no-run: reason -->``
(a signature, a sketch with placeholders); the reason is required.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from _support import mocked_sampling

import formulahier as fh

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_NO_RUN = re.compile(r"<!--\s*no-run:\s*(\S.*?)\s*-->\s*$")
CAP = {"draws": 20, "tune": 20, "chains": 2}
ROWS = 2000


def code_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, no-run reason or None) of every ```python block of a page."""
    text = path.read_text()
    out = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").splitlines()
        marker = _NO_RUN.search(before[-1]) if before else None
        if before and "no-run" in before[-1] and marker is None:
            raise AssertionError(f"{path.name}:{line}: write <!-- no-run: reason -->")
        out.append((line, match.group(1), marker.group(1) if marker else None))
    return out


def test_collector_reads_markers(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n<!-- no-run: a signature -->\n```python\nf(a, *, b)\n```\n"
    )
    assert code_blocks(page) == [(3, "x = 1\n", None), (8, "f(a, *, b)\n", "a signature")]
    page.write_text("<!-- no-run -->\n```python\nx\n```\n")
    with pytest.raises(AssertionError, match="reason"):
        code_blocks(page)


@pytest.fixture
def cheap_fits(monkeypatch):
    """Model.fit capped (2 chains x 20 draws, PyMC) under PyMC's sampling mock."""
    original = fh.Model.fit

    def capped(self, **kwargs):
        kwargs.update({k: min(kwargs.get(k, v), v) for k, v in CAP.items()})
        kwargs["sampler"] = "pymc"
        kwargs["progressbar"] = False
        return original(self, **kwargs)

    monkeypatch.setattr(fh.Model, "fit", capped)
    load = fh.datasets.load

    def thinned(name, *args, **kwargs):
        frame = load(name, *args, **kwargs)
        step = -(-len(frame) // ROWS)
        return frame.iloc[::step].reset_index(drop=True) if step > 1 else frame

    monkeypatch.setattr(fh.datasets, "load", thinned)
    with mocked_sampling():
        yield


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_code_block_runs(page, cheap_fits, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = code_blocks(page)
    if not blocks:
        pytest.skip("no python blocks")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for line, code, reason in blocks:
        if reason:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # quietness is the next test's job
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - report which block, then fail
            pytest.fail(f"{page.name}, block at line {line}:\n{code}\n{type(exc).__name__}: {exc}")
        finally:
            plt.close("all")


QUIET = textwrap.dedent(
    """
    import warnings

    warnings.simplefilter("error")
    # Bambi 0.21 calls DataFrame.select_dtypes("object") when it builds a model; pandas 3
    # deprecates that for string columns (Pandas4Warning). Bambi's code, fixed upstream only.
    warnings.filterwarnings("ignore", message=".*'str' dtypes are included by select_dtypes")
    # PyMC 6.3 (kept below 6.4 by pymc-extras 0.15, our [approx] extra, which the test extras
    # install) imports IfElse from the path PyTensor 3.3 deprecates. PyMC's code, not ours;
    # hidden from users (a DeprecationWarning raised in a library). No BLAS filter: blas.py
    # configures PyTensor, and this test fails if its warning comes back.
    warnings.filterwarnings("ignore", message="Importing 'IfElse' from 'pytensor.ifelse'")

    import formulahier as fh

    original = fh.Model.fit

    def capped(self, **kwargs):  # small, but real MCMC with the progress bar on
        kwargs.update(draws=100, tune=100, chains=2)
        return original(self, **kwargs)

    fh.Model.fit = capped
    """
)


def test_readme_example_is_quiet(tmp_path):
    """The README's first example prints its summary on stdout and nothing else: no warning
    (they are errors here), no progress bar (it goes to stderr)."""
    code = code_blocks(ROOT / "README.md")[0][1]
    script = tmp_path / "readme.py"
    script.write_text(QUIET + "\n" + code)
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    env.pop("COLUMNS", None)
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(" Family: gaussian"), proc.stdout[:500]
    assert "Diagnostics:" in proc.stdout
    for noise in ("Warning", "Sampling", "━", "…"):
        assert noise not in proc.stdout, noise
    # the progress table went to stderr, at full width: no column cut to "Dive…"
    assert "Divergences" in proc.stderr and "…" not in proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr[-2000:]
