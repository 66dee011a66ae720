"""The wheel a user installs holds the whole package: every module, the data sets, py.typed.

An editable install (``make``'s) finds modules in the source tree whatever pyproject lists, so a
subpackage left out of the build configuration only shows in a built wheel. This test builds one
and imports the package from it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # a clean copy of the source: a build/ directory left by an earlier build would be reused
    source = tmp_path_factory.mktemp("source") / "formulahier"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "site", "notebooks", "benchmarks",
        ".mypy_cache", ".ruff_cache", ".pytest_cache"))  # fmt: skip
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if build.returncode != 0 and "No module named pip" in build.stderr:
        pytest.skip("pip is not installed in this environment")
    assert build.returncode == 0, build.stderr[-2000:]
    (found,) = out.glob("formulahier-*.whl")
    return found


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    source = ROOT / "formulahier"
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in source.rglob("*")
        if p.is_file() and p.suffix in {".py", ".csv", ".typed"} and "__pycache__" not in p.parts
    }
    missing = sorted(expected - names)
    assert not missing, f"left out of the wheel: {missing}"
    assert any(n.startswith("formulahier/collapsed/") for n in names)


def test_package_imports_from_the_wheel(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import formulahier, formulahier.collapsed, formulahier.backend.seam; "
        "import formulahier.datasets as d; "
        "assert formulahier.__file__.startswith(sys.argv[1]), formulahier.__file__; "
        "print(len(d.load('sleepstudy')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "180"
