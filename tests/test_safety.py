"""Loading a file runs no code from it (issue 13): formulas from files and the command line are
checked against a safe grammar, the response evaluator has no ``eval``, tampered files are
refused, and every problem with a file is a :class:`formulahier.FitFileError` (or another
formulahier error). Sampling is mocked (prior draws)."""

from __future__ import annotations

import json
import shutil
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _support import mocked_sampling
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import formulahier as fh
from formulahier import cli, io
from formulahier.checks import evaluate_expression
from formulahier.checks import evaluate_or_none as _evaluate
from formulahier.safety import check_formula_safe

FORMULA = "y ~ x + (1 | g)"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(3)
    data = pd.DataFrame(
        {
            "y": rng.normal(size=40),
            "x": rng.normal(size=40),
            "g": np.repeat([f"g{k}" for k in range(5)], 8),
        }
    )
    with mocked_sampling():
        fit = fh.fit(FORMULA, data, draws=10, chains=1, seed=2, progressbar=False)
    path = tmp_path_factory.mktemp("sec") / "fit.nc"
    fit.save(path)
    return path


def _copy(saved, tmp_path, name="copy.nc"):
    target = tmp_path / name
    shutil.copyfile(saved, target)
    return target


def _set_attrs(path, *, recompute=False, **attrs):
    """Change root attributes; ``recompute``: forge a matching checksum, as an attacker can."""
    with h5py.File(path, "a") as f:
        for key, value in attrs.items():
            if value is None:
                del f.attrs[key]
            else:
                f.attrs[key] = value
    if recompute:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
        texts = {k: str(tree.attrs[k]) for k in ("formula", "options", "settings", "dpars")
                 if k in tree.attrs}  # fmt: skip
        digest = io.checksum(
            texts, tree["posterior"].to_dataset(), tree[io.DATA_GROUP].to_dataset()
        )
        with h5py.File(path, "a") as f:
            f.attrs["checksum"] = digest


# -- the attack ---------------------------------------------------------------------------------

ATTACKS = [
    "I(np.testing._private.utils.os.system('touch {m}')) ~ x + (1 | g)",
    "__import__('os').system('touch {m}') ~ x + (1 | g)",
    "np.os.system('touch {m}') ~ x + (1 | g)",
    "y ~ x + I(np.testing._private.utils.os.system('touch {m}')) + (1 | g)",
    "y ~ x + (1 | g) + log(os.system('touch {m}'))",
    "y ~ x + (I(np.os.system('touch {m}')) | g)",
    'y ~ x + (1 | g) + C(g, levels=[\'a" + np.os.system("touch {m}") + "\'])',
]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("recompute", [False, True], ids=["plain", "forged-checksum"])
def test_stored_formula_runs_no_code(saved, tmp_path, attack, recompute):
    marker = tmp_path / "pwned"
    path = _copy(saved, tmp_path)
    _set_attrs(path, recompute=recompute, formula=attack.format(m=marker))
    with pytest.raises(fh.FormulaError) as info:
        fh.load(path)
    assert not marker.exists()
    assert "may use column names" in str(info.value)  # says what is allowed


def test_old_format_without_checksum_is_still_checked(saved, tmp_path):
    marker = tmp_path / "pwned"
    path = _copy(saved, tmp_path)
    _set_attrs(path, format_version=1, checksum=None, formula=ATTACKS[0].format(m=marker))
    with pytest.raises(fh.FormulaError):
        fh.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "dpar",
    [
        "~ np.os.system('touch {m}')",
        "sigma ~ x + I(np.testing._private.utils.os.system('touch {m}'))",
        "~ __import__('os').system('touch {m}')",
    ],
)
def test_stored_bf_formula_runs_no_code(saved, tmp_path, dpar):
    marker = tmp_path / "pwned"
    path = _copy(saved, tmp_path)
    pairs = [["sigma", dpar.format(m=marker)]]
    _set_attrs(path, recompute=True, dpars=json.dumps(pairs))
    with pytest.raises(fh.FormulaError):
        fh.load(path)
    assert not marker.exists()


def test_stored_bf_parameter_name_is_checked(saved, tmp_path):
    path = _copy(saved, tmp_path)
    _set_attrs(path, recompute=True, dpars=json.dumps([["__class__", "~ x"]]))
    with pytest.raises(fh.FitFileError, match="not a parameter name"):
        fh.load(path)


def test_stored_prior_must_be_a_pymc_distribution(saved, tmp_path):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "r") as f:
        options = json.loads(f.attrs["options"])
    options["priors"] = {"__dict__": {"x": {"__prior__": "sample", "args": {}}}}
    _set_attrs(path, recompute=True, options=json.dumps(options))
    with pytest.raises(fh.FitFileError, match="not a PyMC distribution"):
        fh.load(path)


def test_cli_formula_runs_no_code(capsys, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setattr(fh, "fit", lambda *a, **k: pytest.fail("sampled"))
    formula = ATTACKS[0].format(m=marker)
    code = cli.main(["fit", "sleepstudy", formula, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not allowed" in err
    assert not marker.exists()


def test_cli_save_into_missing_folder_fails_before_sampling(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(fh, "fit", lambda *a, **k: pytest.fail("sampled"))
    target = tmp_path / "no such folder" / "fit.nc"
    code = cli.main(["fit", "sleepstudy", "Reaction ~ Days + (Days | Subject)", "--save",
                     str(target), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no such folder" in err and "does not exist" in err


# -- tampering ----------------------------------------------------------------------------------


def test_changed_posterior_value_is_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "a") as f:
        values = f["posterior/x"][...]
        values.flat[3] += 1e-9
        f["posterior/x"][...] = values
    with pytest.raises(fh.FitFileError, match="changed after it was saved"):
        fh.load(path)


def test_changed_data_value_is_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "a") as f:
        columns = json.loads(f[io.DATA_GROUP].attrs["columns"])
        key = next(k for k, info in columns.items() if info["name"] == "x")
        f[io.DATA_GROUP][key][0] = 123.0
    with pytest.raises(fh.FitFileError, match="changed after it was saved"):
        fh.load(path)


@pytest.mark.parametrize(
    "change",
    [
        {"formula": "y ~ 1 + (1 | g)"},
        {"formula": "y ~ x + (x | g)"},
        {"settings": json.dumps({"draws": 10})},
        {"checksum": "sha256:" + "0" * 64},
    ],
)
def test_changed_attributes_are_refused(saved, tmp_path, change):
    path = _copy(saved, tmp_path)
    _set_attrs(path, **change)
    with pytest.raises(fh.FitFileError, match="changed after it was saved"):
        fh.load(path)


def test_changed_options_are_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "r") as f:
        options = json.loads(f.attrs["options"])
    options["lkj_eta"] = 7.0
    _set_attrs(path, options=json.dumps(options))
    with pytest.raises(fh.FitFileError, match="changed after it was saved"):
        fh.load(path)


def test_removed_checksum_is_refused(saved, tmp_path):
    path = _copy(saved, tmp_path)
    _set_attrs(path, checksum=None)
    with pytest.raises(fh.FitFileError, match="checksum is missing"):
        fh.load(path)


def test_format_1_file_loads_with_a_warning(saved, tmp_path):
    path = _copy(saved, tmp_path)
    _set_attrs(path, format_version=1, checksum=None)
    with pytest.warns(fh.FormulahierWarning, match="before files had checksums") as rec:
        back = fh.load(path)
    assert back.nobs == 40
    assert rec[0].filename == __file__  # the user's fh.load line


def test_untouched_file_loads_without_warning(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error", fh.FormulahierWarning)
        assert fh.load(saved).spec.formula == FORMULA
    with h5py.File(saved, "r") as f:
        assert str(f.attrs["checksum"]).startswith("sha256:")
        assert int(np.ravel(f.attrs["format_version"])[0]) == io.FORMAT_VERSION == 2


# -- every file error is ours -------------------------------------------------------------------


def _expect_file_error(path, match):
    with pytest.raises(fh.FitFileError, match=match) as info:
        fh.load(path)
    assert isinstance(info.value, OSError) and isinstance(info.value, fh.FormulahierError)


def test_missing_file_and_folder(tmp_path):
    _expect_file_error(tmp_path / "nope.nc", "does not exist")
    _expect_file_error(tmp_path, "is a folder")


@pytest.mark.parametrize("content", [b"", b"hello", bytes(range(256)) * 40])
def test_random_bytes(tmp_path, content):
    path = tmp_path / "junk.nc"
    path.write_bytes(content)
    _expect_file_error(path, "not a netCDF file")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_file(saved, tmp_path, fraction):
    raw = saved.read_bytes()
    path = tmp_path / "cut.nc"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(fh.FitFileError):
        fh.load(path)


def test_netcdf_that_is_not_a_fit(tmp_path):
    path = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3))}).to_netcdf(path, engine="h5netcdf")
    _expect_file_error(path, "not a fit saved by formulahier")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"formula": None}, "'formula' is missing"),
        ({"options": None}, "'options' is missing"),
        ({"settings": None}, "'settings' is missing"),
        ({"options": "{not json"}, "'options' is not valid JSON"),
        ({"settings": "[1, 2]"}, "'settings' is not a JSON dict"),
        ({"options": json.dumps({"family": "gaussian", "evil": 1})}, "unknown model options"),
        ({"format_version": "two"}, "format version is not a number"),
        ({"format_version": 0}, "unknown format version"),
        ({"format_version": 99}, "Upgrade formulahier"),
        ({"dpars": "{"}, "'dpars' is not valid JSON"),
        ({"dpars": json.dumps([["sigma"]])}, "not a list of"),
    ],
)
def test_damaged_attributes(saved, tmp_path, change, match):
    path = _copy(saved, tmp_path)
    _set_attrs(path, **change)
    _expect_file_error(path, match)


@pytest.mark.parametrize("group", ["posterior", io.DATA_GROUP])
def test_missing_group(saved, tmp_path, group):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "a") as f:
        del f[group]
    _expect_file_error(path, f"'{group}' is missing")


def test_damaged_data_columns_under_a_forged_checksum(saved, tmp_path):
    path = _copy(saved, tmp_path)
    with h5py.File(path, "a") as f:
        f[io.DATA_GROUP].attrs["columns"] = "{bad"
    _set_attrs(path, recompute=True)
    _expect_file_error(path, "damaged")


def test_save_into_missing_folder_fails_at_once(saved, tmp_path):
    back = fh.load(saved)
    target = tmp_path / "missing" / "fit.nc"
    with pytest.raises(fh.FitFileError, match="missing.*does not exist") as info:
        back.save(target)
    assert str(tmp_path / "missing") in str(info.value)
    with pytest.raises(fh.FitFileError, match="is a folder"):
        back.save(tmp_path)
    assert not target.parent.exists()


# -- the safe grammar ---------------------------------------------------------------------------

SAFE = [
    "y ~ x + (1 | g)",
    "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ Days + (Days || Subject)",
    "y~x+(x||g)",
    "cbind(s, n - s) ~ period + (1 | herd)",
    "s | trials(n) ~ x",
    "p(s, n) ~ x",
    "log(pos) ~ I(x^2) + I(x**2) + poly(x, 2) + bs(x, df=3) + center(x) + scale(z)",
    "y ~ C(f, levels=['b', 'a']) + factor(f) + as.factor(f) + standardize(z)",
    "y ~ 0 + x + offset(log(n)) - 1 + log2(x) + log10(x) + log1p(x) + exp(z) + sqrt(abs(z))",
    "y ~ x * z + x:z + x / z + (1 | a/b) + (1 | a:b)",
    "`my y` ~ `x 1` + (1 | `group (a)`)",
    "y ~ 1.5e-3 * x + .5",
    "y ~ x\n  + z",
    "~ x + (1 | g)",
    "y ~ poly(x, 2, raw=True)",
]


@pytest.mark.parametrize("formula", SAFE)
def test_safe_grammar_accepts_formulas(formula):
    check_formula_safe(formula)


@pytest.mark.parametrize(
    ("formula", "needle", "pos"),
    [
        ("np.os.system('x') ~ x", "attribute access", 0),
        ("y ~ I(x.real)", "Attribute access", 7),
        ("y ~ x[0]", "Square brackets", 5),
        ("y ~ (lambda: 1)()", "keyword 'lambda'", 5),
        ("y ~ [a for a in b]", "keyword 'for'", 7),
        ("y ~ __class__", "double underscore", 4),
        ("__import__('os') ~ x", "double underscore", 0),
        ("y ~ eval('1')", "function 'eval'", 4),
        ("y ~ getattr(x, 'a')", "function 'getattr'", 4),
        ("import os", "keyword 'import'", 0),
        ("y ~ x; z", "character ';'", 5),
        ("y ~ log(x, 'a')", "only allowed as a level inside C()", 11),
        ("y ~ C(g, levels=r'a')", "A level in quotes", 16),
        ("y ~ x ~ z", "one '~'", 6),
        ("y ~ x // 2", "'//'", 6),
        ("y ~ f'{x}'", "not allowed", 4),
        ("y ~ `x`(1)", "function '`x`'", 4),
        ("y ~ log(x, out=z)", "keyword argument 'out='", 15),
    ],
)
def test_safe_grammar_refuses_with_caret(formula, needle, pos):
    with pytest.raises(fh.FormulaError, match="log, log10") as info:  # says what is allowed
        check_formula_safe(formula)
    assert needle in str(info.value)
    assert info.value.formula == formula and info.value.pos == pos


def test_formulas_of_the_fuzz_suite_pass_the_grammar():
    from test_errors import GOOD_BARS, GOOD_FACTORS, GOOD_TERMS, MATCHED

    for _, response in MATCHED:
        for term in GOOD_TERMS:
            check_formula_safe(f"{response} ~ {term}")
    for bar in GOOD_BARS:
        for factor in GOOD_FACTORS:
            check_formula_safe(f"y ~ x + ({bar} | {factor}) + ({bar} || {factor})")


FORMULA_BITS = st.sampled_from(
    ["y", "x", "~", "+", "-", "*", "/", ":", "|", "||", "^", "**", "(", ")", ",", ".", "1", "2.5",
     "log", "I", "C", "np", "os", "__", "'", '"', "`", "[", "]", "=", "levels", " ", "\n",
     "lambda", "for", "\\", "ｌｏｇ", "as.factor"]
)  # fmt: skip


@settings(
    derandomize=True, max_examples=400, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(st.one_of(st.text(st.characters(codec="utf-8"), max_size=60),
                 st.lists(FORMULA_BITS, max_size=25).map("".join)))  # fmt: skip
def test_safe_grammar_raises_only_formula_error(text):
    try:
        check_formula_safe(text)
    except fh.FormulaError:
        pass


# -- the response evaluator ---------------------------------------------------------------------


@pytest.fixture
def frame():
    return pd.DataFrame({"y": [1.0, 2.0, 4.0], "s": [1, 2, 3], "n": [5, 5, 5], "t": list("abc")})


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("log(y)", np.log([1.0, 2.0, 4.0])),
        ("n - s", [4, 3, 2]),
        ("s + (n - s)", [5, 5, 5]),
        ("sqrt(abs(-y)) * 2 ** 1", 2 * np.sqrt([1.0, 2.0, 4.0])),
        ("log2(y) + log10(y) + log1p(y) + exp(y)",
         np.log2([1, 2, 4]) + np.log10([1, 2, 4]) + np.log1p([1, 2, 4]) + np.exp([1, 2, 4])),
        ("round(y / 3)", np.round(np.array([1.0, 2.0, 4.0]) / 3)),
        ("n // 2", [2, 2, 2]),
        ("I(s)", [1, 2, 3]),
        ("  y", [1.0, 2.0, 4.0]),
    ],
)  # fmt: skip
def test_evaluator_computes_response_forms(frame, expr, expected):
    np.testing.assert_allclose(np.asarray(evaluate_expression(expr, frame), float), expected)
    np.testing.assert_allclose(_evaluate(expr, frame).to_numpy(float), expected)


@pytest.mark.parametrize(
    "expr",
    [
        "np.log(y)",
        "y.values",
        "y[0]",
        "__import__('os')",
        "y.__class__",
        "__builtins__",
        "eval('1')",
        "open('x')",
        "(lambda: 1)()",
        "[y for y in s]",
        "log(y, **{})",
        "'text'",
        "nope",
        "y if s else n",
    ],
)
def test_evaluator_refuses(frame, expr):
    with pytest.raises(fh.FormulaError):
        evaluate_expression(expr, frame)
    assert _evaluate(expr, frame) is None  # the response check is skipped, nothing is run


def test_evaluator_data_problems_are_data_errors(frame):
    with pytest.raises(fh.DataError):
        evaluate_expression("log(t)", frame)


def test_package_has_no_eval():
    import pathlib

    import formulahier

    root = pathlib.Path(formulahier.__file__).parent
    for source in root.glob("*.py"):
        text = source.read_text()
        assert "eval(" not in text.replace(".eval(", "").replace("_eval(", ""), source
        assert "exec(" not in text, source
