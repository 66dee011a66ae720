"""Bad input gives a FormulahierError that names the problem; the user's data is never modified."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import formulahier as fh


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 40
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "temp": rng.normal(size=n),
            "g": np.repeat(["a", "b", "c", "d"], n // 4),
            "s": rng.integers(0, 5, size=n),
            "n": rng.integers(5, 10, size=n),
            "count": rng.poisson(2, size=n),
            "label": [f"l{i}" for i in range(n)],
        },
        index=[f"r{i}" for i in range(n)],
    )


def caret_position(err: fh.FormulaError) -> int:
    """Column of the caret in the printed message, relative to the formula line."""
    lines = str(err).splitlines()
    return lines[-1].index("^") - 4


# ---------------------------------------------------------------------------------------------
# formula errors


@pytest.mark.parametrize(
    ("formula", "missing", "close"),
    [
        ("y ~ tmp + (1 | g)", "tmp", "temp"),
        ("y ~ x + (1 | gg)", "gg", "g"),
        ("y ~ x + (tmp | g)", "tmp", "temp"),
        ("Y ~ x + (1 | g)", "Y", "y"),
    ],
)
def test_missing_column_names_it_and_the_closest(data, formula, missing, close):
    with pytest.raises(fh.FormulaError) as info:
        fh.model(formula, data)
    msg = str(info.value)
    assert f"'{missing}'" in msg and f"'{close}'" in msg
    assert formula[info.value.pos :].startswith(missing)


@pytest.mark.parametrize(
    ("formula", "char", "needle"),
    [
        ("y ~ x + (x | )", "|", None),
        ("y ~ x + (| g)", "|", "Nothing before the bar"),
        ("y ~ x + (1 | g", "(", "never closed"),
        ("y ~ x) + (1 | g)", ")", "closes nothing"),
        ("y ~ x + x | g", "|", "own parentheses"),
        ("y ~ x + (1 | g) - (1 | g)", "(", "cannot be subtracted"),
        ("y ~ x + ", "+", "missing next to"),
    ],
)
def test_malformed_formula_has_caret(data, formula, char, needle):
    with pytest.raises(fh.FormulaError) as info:
        fh.model(formula, data)
    err = info.value
    if needle:
        assert needle in err.reason
    assert err.formula == formula and err.pos is not None
    pos = caret_position(err)
    assert pos == err.pos
    # the caret is under the offending character (or just after it, for an empty factor)
    assert char in formula[max(pos - 2, 0) : pos + 1]


@pytest.mark.parametrize(
    ("formula", "needle", "advice"),
    [
        ("y ~ x + (1 | ID | g)", "not supported", "(1 | g)"),
        ("y ~ x + (1 | gr(g, by = x))", "gr() is not supported", "(1 | g)"),
        ("y ~ mo(x) + (1 | g)", "mo() are not supported", "C(x)"),
        ("y ~ s(x) + (1 | g)", "s() are not supported", "poly()"),
        ("y ~ x + (s(x) | g)", "s() are not supported", "poly()"),
        ("y | weights(n) ~ x + (1 | g)", "not supported", "weighted(y, w)"),
        ("y | se(x) ~ x + (1 | g)", "not supported", "se()"),
        ("y | foo ~ x + (1 | g)", "brms addition", "trials(n)"),
        ("cbind(s) ~ x + (1 | g)", "two columns", "cbind(s, n - s)"),
        ("cbind(log(s), n) ~ x + (1 | g)", "must be a column name", "column"),
    ],
)
def test_unsupported_syntax_says_what_to_write(data, formula, needle, advice):
    with pytest.raises(fh.FormulaError) as info:
        fh.model(formula, data, family="binomial" if "cbind" in formula else "gaussian")
    assert needle in info.value.reason and advice in info.value.reason
    assert info.value.pos is not None


# ---------------------------------------------------------------------------------------------
# missing values: lme4's na.omit


def test_missing_values_dropped_with_one_warning(data):
    frame = data.copy()
    frame.iloc[[1, 5], frame.columns.get_loc("y")] = np.nan
    frame.iloc[[5, 9], frame.columns.get_loc("x")] = np.nan
    frame.iloc[[2, 3, 4], frame.columns.get_loc("temp")] = np.nan  # unused column: kept
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = fh.model("y ~ x + (1 | g)", frame)
    ours = [w for w in caught if issubclass(w.category, fh.FormulahierWarning)]
    assert len(ours) == 1
    assert "Dropped 3 of 40 rows" in str(ours[0].message)
    assert ours[0].filename == __file__  # shown at the user's line, not inside the package
    assert m.nobs == 37 and m.dropped == 3
    np.testing.assert_array_equal(m.data["y"], frame["y"].dropna().drop("r9"))


def test_missing_values_in_aux_formula_are_dropped(data):
    frame = data.copy()
    frame.iloc[[0, 1], frame.columns.get_loc("temp")] = np.nan
    with pytest.warns(fh.FormulahierWarning, match="Dropped 2 of 40"):
        m = fh.model(fh.bf("y ~ x + (1 | g)", sigma="~ temp"), frame)
    assert m.nobs == 38


def test_all_rows_missing(data):
    frame = data.assign(y=np.nan)
    with pytest.warns(fh.FormulahierWarning), pytest.raises(fh.DataError, match="No rows"):
        fh.model("y ~ x + (1 | g)", frame)


# ---------------------------------------------------------------------------------------------
# data errors naming rows


def test_one_level_factor(data):
    with pytest.raises(fh.DataError, match="'g' has 1 level"):
        fh.model("y ~ x + (1 | g)", data.assign(g="a"))


def test_empty_data(data):
    with pytest.raises(fh.DataError, match="no rows"):
        fh.model("y ~ x + (1 | g)", data.iloc[:0])


def test_non_numeric_response(data):
    with pytest.raises(fh.DataError, match="must be numeric for the gaussian family"):
        fh.model("label ~ x + (1 | g)", data)
    with pytest.raises(fh.DataError, match="must be numeric for the poisson family"):
        fh.model("label ~ x + (1 | g)", data, family="poisson")


def test_successes_exceed_trials_names_rows(data):
    frame = data.copy()
    frame.loc[["r3", "r17"], "s"] = frame.loc[["r3", "r17"], "n"] + 1
    for lhs in ("s | trials(n)", "p(s, n)"):
        with pytest.raises(fh.DataError, match="exceed the trials") as info:
            fh.model(f"{lhs} ~ x + (1 | g)", frame, family="binomial")
        assert "r3, r17" in str(info.value)
    frame = data.copy()
    frame.loc["r8", "s"] = -1  # cbind(s, n - s): trials n, successes negative
    with pytest.raises(fh.DataError, match="r8"):
        fh.model("cbind(s, n - s) ~ x + (1 | g)", frame, family="binomial")


def test_negative_counts_name_rows(data):
    frame = data.assign(count=data["count"].astype(float))
    frame.loc["r12", "count"] = -2
    with pytest.raises(fh.DataError, match=r"count >= 0.*index r12"):
        fh.model("count ~ x + (1 | g)", frame, family="poisson")
    frame.loc["r12", "count"] = 1.5
    with pytest.raises(fh.DataError, match=r"whole numbers.*r12"):
        fh.model("count ~ x + (1 | g)", frame, family="negbinomial")


@pytest.mark.parametrize(
    ("family", "valid", "value", "needle"),
    [
        ("bernoulli", 1, 2, "must be 0 or 1"),
        ("gamma", 0.5, 0.0, "response > 0"),
        ("lognormal", 0.5, -1.0, "response > 0"),
        ("beta", 0.5, 1.0, "strictly between 0 and 1"),
    ],
)
def test_response_range_per_family(data, family, valid, value, needle):
    frame = data.assign(r=np.where(data["y"] > 0, valid, 0 if family == "bernoulli" else 0.25))
    fh.model("r ~ x + (1 | g)", frame, family=family)  # valid data builds
    frame.loc["r4", "r"] = value
    with pytest.raises(fh.DataError, match=needle) as info:
        fh.model("r ~ x + (1 | g)", frame, family=family)
    assert "r4" in str(info.value)


def test_binomial_without_trials(data):
    with pytest.raises(fh.DataError, match="needs the number of trials"):
        fh.model("s ~ x + (1 | g)", data, family="binomial")


# ---------------------------------------------------------------------------------------------
# the user's data is never modified; pandas, polars and dicts give the same model


def test_pandas_frame_not_modified(data):
    frame = data.copy()
    frame.iloc[[1, 2], frame.columns.get_loc("y")] = np.nan
    frame["rating"] = np.digitize(frame["x"], [-0.5, 0.5])
    before = frame.copy(deep=True)
    with pytest.warns(fh.FormulahierWarning):
        fh.model("y ~ factor(rating) + (x | g)", frame)
    fh.model("rating ~ x + (x | g)", frame, family="cumulative")
    fh.model("cbind(s, n - s) ~ x + (1 | g)", frame, family="binomial")
    pd.testing.assert_frame_equal(frame, before)
    assert frame["g"].dtype == before["g"].dtype and frame["rating"].dtype.kind == "i"


def test_polars_and_dict_accepted_and_not_modified(data):
    pl = pytest.importorskip("polars")
    frame = data.reset_index(drop=True)
    frame.loc[3, "x"] = np.nan
    pl_frame = pl.from_pandas(frame)
    pl_before = pl_frame.clone()
    as_dict = {k: frame[k].to_numpy().copy() for k in frame.columns}
    dict_before = {k: v.copy() for k, v in as_dict.items()}
    models = []
    for source in (frame, pl_frame, as_dict):
        with pytest.warns(fh.FormulahierWarning, match="Dropped 1 of 40"):
            models.append(fh.model("cbind(s, n - s) ~ x + (x | g)", source, family="binomial"))
    assert pl_frame.equals(pl_before)
    for k, v in dict_before.items():
        np.testing.assert_array_equal(as_dict[k], v)
    for m in models[1:]:
        assert m.nobs == models[0].nobs == 39
        np.testing.assert_array_equal(m.data["s"], models[0].data["s"])
        np.testing.assert_array_equal(m.data["x"], models[0].data["x"])


def test_not_a_table():
    with pytest.raises(fh.DataError, match="pandas or polars"):
        fh.model("y ~ x + (1 | g)", [1, 2, 3])


def test_transformed_response_invalid_rows(data):
    frame = data.assign(w=data["y"].abs() + 1.0)
    frame.loc["r6", "w"] = -1.0  # log(-1) is NaN: named, not passed on to the sampler
    with pytest.raises(fh.DataError, match=r"infinite or NaN.*r6"):
        fh.model("log(w) ~ x + (1 | g)", frame)
