"""The docs site builds in strict mode, and what the docs claim holds (no MCMC)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import formulahier as fh

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Pages written by other parts of the project; until they land the test builds with a stub.
OTHERS = ("priors.md", "families.md", "predictions.md", "performance.md")


def _code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """Rows (as cell lists) of the first Markdown table after ``heading``."""
    section = text.split(heading, 1)[1]
    rows = []
    started = False
    for line in section.splitlines():
        if line.startswith("|"):
            started = True
            # split on pipes outside code spans
            cells, buf, in_code = [], "", False
            for ch in line.strip()[1:-1]:
                if ch == "`":
                    in_code = not in_code
                if ch == "|" and not in_code:
                    cells.append(buf.strip())
                    buf = ""
                else:
                    buf += ch
            cells.append(buf.strip())
            rows.append(cells)
        elif started:
            break
    return rows[2:]  # drop header and rule


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Build the site with ``mkdocs build --strict`` (warnings fail), API pages included."""
    pytest.importorskip("mkdocs", reason="install the docs extra: pip install -e '.[docs]'")
    work = tmp_path_factory.mktemp("docs")
    shutil.copytree(DOCS, work / "docs")
    for page in OTHERS:
        if not (work / "docs" / page).exists():
            (work / "docs" / page).write_text(f"# {page}\n\nNot written yet.\n")
    config = (ROOT / "mkdocs.yml").read_text()
    config = re.sub(r"(?m)^docs_dir:.*$", f"docs_dir: {work / 'docs'}", config)
    (work / "mkdocs.yml").write_text(config)
    out = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(work / "mkdocs.yml")]
        + ["-d", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_strict_build_renders_every_page(site):
    config = (ROOT / "mkdocs.yml").read_text()
    pages = re.findall(r":\s*([\w-]+\.md)\s*$", config, flags=re.M)
    assert {p.name for p in DOCS.glob("*.md")} <= set(pages), "every page must be in the nav"
    for page in pages:
        if page in OTHERS and not (DOCS / page).exists():
            continue
        html = site / ("" if page == "index.md" else page[:-3]) / "index.html"
        assert html.exists(), page


def test_api_reference_comes_from_docstrings(site):
    html = (site / "api" / "index.html").read_text()
    text = re.sub(r"<[^>]+>", " ", html)
    # first lines of real docstrings, so a broken mkdocstrings setup fails here
    for obj in (fh.fit, fh.model, fh.datasets.simulate_wage_panel, fh.datasets.load):
        first = obj.__doc__.strip().splitlines()[0]
        assert first.split(":")[0][:40] in " ".join(text.split()), obj.__name__


def test_migration_guide_covers_every_r_call():
    text = (DOCS / "migration.md").read_text()
    rows = _table_rows(text, "## Side by side")
    r_side = " ".join(row[0] for row in rows)
    for call in (
        "lmer(",
        "glmer(",
        "brm(",
        "summary(",
        "fixef(",
        "ranef(",
        "coef(",
        "VarCorr(",
        "allow_new_levels",
        "pp_check(",
        "loo_compare(",
        "prior(",
        "get_prior(",
        "update(",
    ):
        assert call in r_side, call
    assert all(len(row) == 3 and row[1] for row in rows), "each R call needs its twin"
    assert not any("not equivalent" in " ".join(row).lower() for row in rows)
    assert "## What differs" in text


@pytest.mark.parametrize(
    "method",
    [
        "fixef",
        "ranef",
        "coef",
        "varcorr",
        "summary",
        "predict",
        "loo",
        "plot_ppc",
        "update",
        "fitted",
        "posterior_epred",
        "posterior_linpred",
        "residuals",
        "bayes_R2",
        "loo_R2",
        "waic",
        "hypothesis",
        "as_draws_df",
        "ngrps",
        "conditional_effects",
        "plot_conditional_effects",
        "plot_trace",
        "plot_forest",
        "plot_pairs",
        "plot_funnel",
        "plot_correlations",
        "plot_shrinkage",
        "plot_shrinkage_size",
        "comparisons",
        "slopes",
        "predictions",
    ],
)
def test_migration_guide_names_real_fit_methods(method):
    """Every ``fit.X(`` the guide promises exists on :class:`formulahier.Fit`."""
    text = (DOCS / "migration.md").read_text()
    assert f"fit.{method}(" in text
    assert callable(getattr(fh.Fit, method, None)), f"Fit.{method} is documented but missing"


def test_formula_reference_forms_all_build():
    """Every bar form in the formula table is accepted, with the documented parameters."""
    text = (DOCS / "formulas.md").read_text()
    rows = _table_rows(text, "## Group-level (bar) terms")
    assert len(rows) >= 10
    checked = 0
    for you_write, _meaning, _params in rows:
        for form in _code_spans(you_write):
            if "|" not in form:
                continue
            spec = fh.build_spec(f"y ~ x + {form}")
            assert spec.blocks, form
            checked += 1
    assert checked >= 12

    # the documented meanings, computed
    def shape(formula):
        return [(b.factor, b.terms) for b in fh.build_spec(formula).blocks]

    assert shape("y ~ (x || g)") == shape("y ~ (1 | g) + (0 + x | g)")
    assert shape("y ~ (x | g)") == [("g", ("1", "x"))]
    nested = fh.build_spec("y ~ (1 | a/b)")
    assert [b.factor for b in nested.blocks] == ["a", "a:b"]
    three = fh.build_spec("y ~ (1 | a/b/c)")
    assert [b.factor for b in three.blocks] == ["a", "a:b", "a:b:c"]


def test_formula_reference_unsupported_forms_raise():
    text = (DOCS / "formulas.md").read_text()
    rows = _table_rows(text, "## What is not supported, and what to write instead")
    checked = 0
    for you_wrote, _why, _instead in rows:
        for form in _code_spans(you_wrote):
            formula = f"y ~ x + {form}" if not form.startswith("-") else f"y ~ x {form}"
            with pytest.raises(fh.FormulaError):
                fh.build_spec(formula)
            checked += 1
    assert checked >= 12


def test_cli_page_lists_every_fit_option():
    from formulahier import cli

    text = (DOCS / "cli.md").read_text()
    fit_parser = cli._parser()._subparsers._group_actions[0].choices["fit"]
    for action in fit_parser._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert f"`{option}" in text, option
