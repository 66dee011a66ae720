"""The command line: help, one-line errors with exit status 2, fit/demo/data (mocked sampling)."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import formulahier as fh
from formulahier import cli

SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"
QUICK = ["--draws", "20", "--tune", "20", "--chains", "1", "--seed", "3", "--no-progress"]


@pytest.fixture
def sleep_csv(tmp_path, sleepstudy) -> Path:
    path = tmp_path / "sleepstudy.csv"
    sleepstudy.to_csv(path, index=False)
    return path


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("fit", "demo", "data", "examples:", "(x | g)"):
        assert word in out


def test_fit_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    out = capsys.readouterr().out
    for option in ("--family", "--draws", "--chains", "--seed", "--save", "--centered"):
        assert option in out


def test_console_script_entry_point_runs():
    """`python -m formulahier --help` works in a fresh process (no traceback, exit 0)."""
    proc = subprocess.run(
        [sys.executable, "-m", "formulahier", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: formulahier" in proc.stdout


@pytest.mark.parametrize(
    ("formula", "needle"),
    [
        ("Reaction ~ Days + (| Subject)", "Nothing before the bar"),
        ("Reaction ~ Dayz + (Days | Subject)", "Dayz"),
        ("Reaction ~ Days + (1 | ID | Subject)", "not supported"),
    ],
)
def test_bad_formula_prints_one_line_and_exits_2(capsys, sleep_csv, formula, needle):
    code = cli.main(["fit", str(sleep_csv), formula, *QUICK])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("formulahier: error: ")
    assert needle in lines[0]
    assert formula in lines[0]  # the formula is quoted so the user sees what was read
    assert "Traceback" not in captured.err


def test_missing_file_is_one_line_error(capsys, tmp_path):
    code = cli.main(["fit", str(tmp_path / "nope.csv"), "y ~ x", *QUICK])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "No such file" in err


def test_unreadable_csv_is_one_line_error(capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code = cli.main(["fit", str(empty), "y ~ x", *QUICK])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Cannot read" in err


@pytest.mark.parametrize("bad", [["--draws", "0"], ["--chains", "-1"], ["--draws", "ten"]])
def test_bad_numbers_are_rejected_by_argparse(capsys, sleep_csv, bad):
    with pytest.raises(SystemExit) as info:
        cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, *bad])
    assert info.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_bad_ci_is_one_line_error(capsys, sleep_csv):
    code = cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, "--ci", "95", *QUICK])
    assert code == 2
    assert "--ci" in capsys.readouterr().err


def test_data_lists_and_writes_bundled_sets(capsys):
    assert cli.main(["data"]) == 0
    listed = capsys.readouterr().out.split()
    assert set(fh.datasets.list_datasets()) <= set(listed)

    assert cli.main(["data", "sleepstudy"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype={"Subject": str})
    pd.testing.assert_frame_equal(frame, fh.datasets.load("sleepstudy"))

    assert cli.main(["data", "nope"]) == 2
    assert "Unknown data set" in capsys.readouterr().err


def test_unexpected_errors_stay_one_line(capsys, sleep_csv, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("sampler\nexploded")

    monkeypatch.setattr(fh, "fit", boom)
    code = cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, *QUICK])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "RuntimeError: sampler exploded" in err and "--debug" in err
    with pytest.raises(RuntimeError):
        cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, *QUICK, "--debug"])


def test_fit_passes_options_through(capsys, sleep_csv, monkeypatch):
    seen = {}

    class FakeFit:
        def summary(self, ci_prob):
            seen["ci_prob"] = ci_prob
            return "SUMMARY"

    def fake_fit(formula, data, **kwargs):
        seen.update(kwargs, formula=formula, nobs=len(data))
        return FakeFit()

    monkeypatch.setattr(fh, "fit", fake_fit)
    argv = ["fit", str(sleep_csv), SLEEP_FORMULA, "--family", "student_t", "--centered"]
    argv += ["--uncorrelated", "--target-accept", "0.9", "--ci", "0.9", *QUICK]
    assert cli.main(argv) == 0
    assert "SUMMARY" in capsys.readouterr().out
    assert seen["formula"] == SLEEP_FORMULA and seen["nobs"] == 180
    assert seen["family"] == "student_t"
    assert seen["noncentered"] is False and seen["correlated"] is False
    assert (seen["draws"], seen["tune"], seen["chains"], seen["seed"]) == (20, 20, 1, 3)
    assert seen["target_accept"] == 0.9 and seen["ci_prob"] == 0.9
    # the parameterization: auto unless asked, and the two flags exclude each other
    assert cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, *QUICK]) == 0
    assert seen["noncentered"] == "auto"
    assert cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, "--noncentered", *QUICK]) == 0
    assert seen["noncentered"] is True
    with pytest.raises(SystemExit):
        cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, "--centered", "--noncentered"])


def test_bundled_name_works_as_data(capsys, monkeypatch):
    seen = {}

    def fake_fit(formula, data, **kwargs):
        seen["columns"] = list(data.columns)
        raise fh.DataError("stop here")

    monkeypatch.setattr(fh, "fit", fake_fit)
    assert cli.main(["fit", "sleepstudy", SLEEP_FORMULA, *QUICK]) == 2
    assert seen["columns"] == ["Reaction", "Days", "Subject"]


@pytest.mark.usefixtures("mock_sampling")
def test_fit_prints_brms_style_summary(capsys, sleep_csv, tmp_path):
    """The issue's acceptance command (mocked sampling): the summary names every block."""
    target = tmp_path / "fit.nc"
    code = cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, *QUICK, "--save", str(target)])
    captured = capsys.readouterr()
    out = captured.out
    for needle in (
        "Formula: Reaction ~ Days + (Days | Subject)",
        "Data: sleepstudy (Number of observations: 180)",
        "Links: mu = identity; sigma = identity",
        "~Subject (Number of levels: 18)",
        "sd(Intercept)",
        "sd(Days)",
        "cor(Intercept,Days)",
        "Population-level effects:",
        "sigma",
    ):
        assert needle in out
    has_backend = importlib.util.find_spec("h5py") is not None or hasattr(fh.Fit, "save")
    if has_backend:
        assert code == 0 and target.exists()
        if hasattr(fh, "load"):
            assert fh.load(target).nobs == 180
    else:  # the summary still printed; saving says what to install, in one line
        assert code == 2 and "pip install" in captured.err and captured.err.count("\n") == 1


@pytest.mark.usefixtures("mock_sampling")
def test_demo_fits_the_readme_model(capsys):
    assert cli.main(["demo", "--draws", "10", "--chains", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Formula: log_ozone ~ TEMP + (TEMP | station)" in out
    assert "~station (Number of levels: 12)" in out
    assert "cor(Intercept,TEMP)" in out


def test_data_into_a_closed_pipe_exits_quietly():
    """`formulahier data ozone | head -1` (more than a pipe holds): no BrokenPipeError, exit 0."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "formulahier", "data", "ozone"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as `head` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err


def _no_sampling(monkeypatch):
    """Sampling would be a bug in these tests: refuse it loudly."""
    from formulahier.backend.model import HierModel

    def refuse(*args, **kwargs):
        raise AssertionError("sampling started")

    monkeypatch.setattr(HierModel, "fit", refuse)


def test_target_accept_out_of_range_is_refused_before_sampling(capsys, sleep_csv, monkeypatch):
    _no_sampling(monkeypatch)
    code = cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, "--target-accept", "1.5", *QUICK])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "target_accept" in err and "1.5" in err


def test_save_into_missing_folder_fails_before_sampling(capsys, sleep_csv, monkeypatch, tmp_path):
    _no_sampling(monkeypatch)
    target = tmp_path / "no" / "such" / "fit.nc"
    code = cli.main(["fit", str(sleep_csv), SLEEP_FORMULA, "--save", str(target), *QUICK])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not exist" in err and str(target.parent) in err
    assert not target.parent.exists()


def test_csv_file_name_is_the_data_name(tmp_path, sleepstudy):
    path = tmp_path / "sleep_days.csv"
    sleepstudy.to_csv(path, index=False)
    assert cli._read_data(str(path)).attrs["name"] == "sleep_days"
    assert cli._read_data("sleepstudy").attrs["name"] == "sleepstudy"
