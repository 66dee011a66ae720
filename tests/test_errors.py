"""Property-based tests: for any formula, family and small data frame, ``fh.model`` either builds
a model or raises a :class:`~formulahier.FormulahierError` subclass. No other exception type may
escape the public API (no formulae ``ParseError``, PyTensor or pandas error as the user's answer).

Models are built, never compiled or sampled (~0.05-0.3 s each).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import formulahier as fh
from formulahier import plots as fh_plots

# (family, response) pairs that fit together; mixed with anything from the lists below
MATCHED = [
    ("gaussian", "y"),
    ("student", "y"),
    ("gaussian", "log(pos)"),
    ("bernoulli", "y01"),
    ("binomial", "cbind(s, n - s)"),
    ("binomial", "cbind(s, f2)"),
    ("binomial", "s | trials(n)"),
    ("binomial", "p(s, n)"),
    ("poisson", "cnt"),
    ("negbinomial", "cnt"),
    ("Gamma", "pos"),
    ("lognormal", "pos"),
    ("beta", "prop"),
    ("cumulative", "cnt"),
]
RESPONSES = [r for _, r in MATCHED] + ["lab", "nope", "cbind(s)", "y | weights(n)", "y | x"]
FAMILIES = [f for f, _ in MATCHED] + ["binomial(link = 'probit')", "bogus", "wald"]
GOOD_TERMS = [
    "x",
    "z",
    "f",
    "x:z",
    "x*z",
    "x * f",
    "log(pos)",
    "exp(z)",
    "C(f)",
    "factor(f)",
    "poly(x, 2)",
    "center(x)",
    "scale(z)",
    "I(x^2)",
    "offset(z)",
    "0",
    "1",
    "-1",
]
BAD_TERMS = ["nope", "mo(x)", "s(x)", "gr(g)", "lab", "(x | g) * z", "x |"]
GOOD_BARS = ["1", "x", "0 + x", "x + z", "f", "x - 1", "1 + x + z", "poly(x, 2)"]
BAD_BARS = ["", "1 | ID", "nope", "s(x)", "0"]
GOOD_FACTORS = ["g", "h", "g:h", "g/h"]
BAD_FACTORS = ["", "gr(g)", "zz", "f + h", "x"]
LINKS = [None, None, "log", "logit", "identity", "sqrt"]
BREAKERS = "()|~+-*:/,^ "


@st.composite
def models(draw) -> tuple[str, str, str | None]:
    """(formula, family, link): six in ten well formed, the others hostile."""
    valid = draw(st.integers(0, 9)) < 6
    family, response = draw(st.sampled_from(MATCHED))
    if valid:
        terms = draw(st.lists(st.sampled_from(GOOD_TERMS), max_size=3, unique=True))
        factors = draw(st.lists(st.sampled_from(GOOD_FACTORS[:2]), max_size=2, unique=True))
        bars = [
            f"({draw(st.sampled_from(GOOD_BARS))} {draw(st.sampled_from(['|', '||']))} {fac})"
            for fac in factors
        ]
        return f"{response} ~ " + " + ".join(terms + bars or ["1"]), family, None
    if draw(st.booleans()):
        response = draw(st.sampled_from(RESPONSES))
    if draw(st.booleans()):
        family = draw(st.sampled_from(FAMILIES))
    terms = draw(st.lists(st.sampled_from(GOOD_TERMS + BAD_TERMS), max_size=3))
    bars = [
        "({} {} {})".format(
            draw(st.sampled_from(GOOD_BARS + BAD_BARS)),
            draw(st.sampled_from(["|", "|", "||"])),
            draw(st.sampled_from(GOOD_FACTORS + BAD_FACTORS)),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    text = f"{response} ~ " + " + ".join(terms + bars or ["1"])
    # break some: delete, insert or replace characters
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "replace"]))
        ch = draw(st.sampled_from(BREAKERS))
        if op == "delete":
            text = text[:i] + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + ch + text[i:]
        else:
            text = text[:i] + ch + text[i + 1 :]
    return text, family, draw(st.sampled_from(LINKS))


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.sampled_from([30, 12, 0, 1, 3]) if draw(st.integers(0, 4)) == 0 else st.just(30))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 8, size=n)
    s = rng.integers(0, size + 1)
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "pos": rng.gamma(2.0, size=n),
            "prop": rng.uniform(0.05, 0.95, size=n),
            "cnt": rng.poisson(2.0, size=n),
            "y01": rng.integers(0, 2, size=n),
            "s": s,
            "n": size,
            "f2": size - s,
            "f": rng.choice(["lo", "mid", "hi"], size=n),
            "g": rng.choice(["a", "b", "c"], size=n) if draw(st.integers(0, 9)) else ["a"] * n,
            "h": rng.choice(["u", "v"], size=n),
            "lab": [f"l{i}" for i in range(n)],
        }
    )
    if n and draw(st.integers(0, 4)) == 0:  # some missing values
        col = draw(st.sampled_from(["y", "x", "g", "s"]))
        frame.loc[rng.integers(0, n), col] = None
    if n and draw(st.integers(0, 6)) == 0:  # values some families cannot take
        col = draw(st.sampled_from(["cnt", "s", "pos", "y01", "prop"]))
        frame[col] = frame[col].astype(float)
        frame.loc[rng.integers(0, n), col] = draw(st.sampled_from([-1.0, 0.0, 2.5, 99.0]))
    return frame


def check_builds_or_raises_ours(formula, data, family, link, correlated):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fh.model(formula, data, family=family, link=link, correlated=correlated)
        except fh.FormulahierError:
            pass


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run (CI); widen locally with --hypothesis-seed
)


@FUZZ
@given(model=models(), data=frames(), correlated=st.booleans())
def test_model_builds_or_raises_formulahier_error(model, data, correlated):
    formula, family, link = model
    check_builds_or_raises_ours(formula, data, family, link, correlated)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(text=st.text(alphabet="yxzg01 ()|~+-*:/^,.'\"", max_size=25), data=frames())
def test_random_text_raises_formulahier_error(text, data):
    check_builds_or_raises_ours(text, data, "gaussian", None, True)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    sigma=st.sampled_from(["~ x", "~ x + (1 | g)", "~ (x | g)", "~ (x || g)", "~ nope", "~", "x"]),
    data=frames(),
)
def test_bf_builds_or_raises_formulahier_error(sigma, data):
    check_builds_or_raises_ours(fh.bf("y ~ x + (1 | g)", sigma=sigma), data, "gaussian", None, True)


# ---------------------------------------------------------------------------------------------
# Every listed bad input is refused with our error; good ones are accepted; the data is never
# modified. A case knows whether it must be refused (``bad=True``), accepted (``False``) or
# either (``None``). Sampling never runs: ``Model.build`` (the first step after every check of
# ``Model.fit``) is replaced by a stop. ``scripts/fuzz_inputs.py`` runs the same cases by the
# ten thousand and prints counts.


class ReachedSampling(Exception):
    """Raised instead of building the PyMC model: every check before sampling passed."""


@contextmanager
def no_sampling():
    original = fh.Model.build

    def stop(self):
        raise ReachedSampling

    fh.Model.build = stop
    try:
        yield
    finally:
        fh.Model.build = original


@dataclass
class Case:
    """One call of the public API: ``call()``; ``data`` is checked to be unchanged after."""

    label: str
    call: Callable[[], object] = field(repr=False, compare=False)
    data: object = field(default=None, repr=False)
    bad: bool | None = None


def _snapshot(data):
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return data.copy(deep=True)
    if isinstance(data, dict):
        return {k: np.array(v, copy=True) for k, v in data.items()}
    if hasattr(data, "clone"):  # polars
        return data.clone()
    return None


def _unchanged(data, before) -> bool:
    if isinstance(data, pd.DataFrame):
        try:
            pd.testing.assert_frame_equal(data, before)
        except AssertionError:
            return False
        return True
    if isinstance(data, pd.Series):
        return data.equals(before) and data.dtype == before.dtype
    if isinstance(data, dict):
        return data.keys() == before.keys() and all(
            np.array_equal(data[k], before[k], equal_nan=data[k].dtype.kind == "f")
            for k in data
        )
    if hasattr(data, "clone") and hasattr(data, "equals"):
        return data.equals(before)
    return True


def run_case(case: Case) -> tuple[str, str]:
    """``(status, detail)``: status is ``accepted``, ``refused`` (detail: the error class),
    ``foreign`` (not a FormulahierError), ``bare`` (the root class itself), ``silent`` (a bad case accepted), ``mutated`` (the
    data changed) or ``overcautious`` (a good case refused)."""
    before = _snapshot(case.data)
    status, detail = "accepted", ""
    try:
        with warnings.catch_warnings(), no_sampling():
            warnings.simplefilter("ignore")
            case.call()
    except ReachedSampling:
        pass
    except fh.FormulahierError as exc:
        if type(exc) is fh.FormulahierError:  # the contract: a specific subclass
            return "bare", f"FormulahierError: {exc}"[:400]
        status, detail = "refused", type(exc).__name__
        if case.bad is False:
            status, detail = "overcautious", f"{type(exc).__name__}: {exc}"[:400]
    except Exception as exc:  # noqa: BLE001 - what this property looks for
        return "foreign", f"{type(exc).__name__}: {exc}"[:400]
    if not _unchanged(case.data, before):
        return "mutated", case.label
    if case.bad and status == "accepted":
        return "silent", case.label
    return status, detail


def clean_frame(seed: int, n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 8, size=n)
    s = rng.integers(0, size + 1)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "pos": rng.gamma(2.0, size=n),
            "prop": rng.uniform(0.05, 0.95, size=n),
            "cnt": rng.poisson(2.0, size=n),
            "y01": rng.integers(0, 2, size=n),
            "s": s,
            "n": size,
            "g": np.tile(["a", "b", "c"], n // 3 + 1)[:n],
            "lab": [f"l{i}" for i in range(n)],
        }
    )


FORMULA = "y ~ x + z + (1 | g)"

# ---- options


BAD_OPTIONS = {
    "draws": [0, -1, True, 2.5, "10", None],
    "tune": [-1, True, 1.5, None],
    "chains": [0, -2, False, 1.0],
    "cores": [0, True, -1, 2.0],
    "seed": [-1, 1.5, True, "1", [1]],
    "target_accept": [0, 1, 1.5, -0.1, float("nan"), True, "0.9"],
    "lkj_eta": [0, -1, float("inf"), float("nan"), True, "2"],
    "sampler": ["nutpi", "pymc3", "", None, 3],
    "max_treedepth": [0, -3, 2.5],
    "init": ["adapt-diag", "bogus"],
    "progressbar": [None, 3],
}
GOOD_OPTIONS = {
    "draws": [1, 10, np.int64(50)],
    "tune": [0, 5],
    "chains": [1, 2],
    "cores": [1],
    "seed": [None, 0, 123],
    "target_accept": [0.5, 0.95],
    "lkj_eta": [0.5, 2, 4.0],
    "sampler": ["pymc", "PyMC"],
    "max_treedepth": [5],
    "init": ["adapt_diag"],
    "progressbar": [False],
}
TYPO_KEYS = ["draw", "target_acept", "famly", "chain", "seeds", "Draws", "prior", "lkj"]
RESERVED_KEYS = ["random_seed", "nuts_sampler", "var_names", "model"]


@st.composite
def option_cases(draw) -> Case:
    names = draw(st.lists(st.sampled_from(sorted(BAD_OPTIONS)), min_size=1, max_size=3, unique=True))
    options, bad = {}, False
    for name in names:
        if draw(st.booleans()):
            options[name] = draw(st.sampled_from(BAD_OPTIONS[name]))
            bad = True
        else:
            options[name] = draw(st.sampled_from(GOOD_OPTIONS[name]))
    if draw(st.integers(0, 4)) == 0:
        options[draw(st.sampled_from(TYPO_KEYS + RESERVED_KEYS))] = 1
        bad = True
    data = clean_frame(draw(st.integers(0, 2**16)))
    where = draw(st.sampled_from(["fh.fit", "Model.fit", "fh.model"]))
    if where == "fh.fit":
        call = partial(fh.fit, "y ~ x + (x | g)", data, **options)
    elif where == "Model.fit":
        options.pop("lkj_eta", None)  # an option of the model, tried below
        bad = any(
            k not in GOOD_OPTIONS or not any(_same(v, g) for g in GOOD_OPTIONS[k])
            for k, v in options.items()
        )

        def call(options=options, data=data):
            return fh.model(FORMULA, data).fit(**options)

    else:  # fh.model takes model options only: sampling options are refused there
        model_options = {k: v for k, v in options.items() if k == "lkj_eta"}
        bad = bad or len(model_options) < len(options)
        call = partial(fh.model, "y ~ x + (x | g)", data, **options)
        bad = True if len(model_options) < len(options) else bad
    return Case(f"{where}({options!r})", call, data, bad)


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))


# ---- data


CONTINUOUS = [("gaussian", "y"), ("student", "y"), ("Gamma", "pos"), ("lognormal", "pos"),
              ("beta", "prop")]  # fmt: skip
DISCRETE = [("poisson", "cnt"), ("bernoulli", "y01"), ("negbinomial", "cnt")]
CORRUPTIONS = [
    "none", "inf", "-inf", "complex", "constant", "duplicate", "series", "polars_series",
    "polars", "dict", "collinear", "log_negative", "nan_unused", "list", "exponential_neg",
    "weibull_neg", "zip_ok", "zip_neg", "cumulative_float", "cumulative_int", "vonmises_far",
]  # fmt: skip


@st.composite
def data_cases(draw) -> Case:
    family, response = draw(st.sampled_from(CONTINUOUS + DISCRETE))
    corruption = draw(st.sampled_from(CORRUPTIONS))
    frame = clean_frame(draw(st.integers(0, 2**16)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    row = int(rng.integers(0, len(frame)))
    formula, data, bad = f"{response} ~ x + z + (1 | g)", frame, True
    if corruption in ("inf", "-inf"):
        col = draw(st.sampled_from(["x", "z", response]))
        frame[col] = frame[col].astype(float)
        frame.loc[row, col] = np.inf if corruption == "inf" else -np.inf
    elif corruption == "complex":
        frame["x"] = frame["x"] + 1j * draw(st.sampled_from([0.0, 1.0]))
    elif corruption == "constant":
        if (family, response) in CONTINUOUS:
            frame[response] = frame[response].iloc[0]
        else:
            bad = None
            frame[response] = frame[response].iloc[0]
    elif corruption == "duplicate":
        data = pd.concat([frame, frame[["x"]]], axis=1)
    elif corruption == "series":
        data = frame[response]
    elif corruption == "polars_series":
        pl = _polars()
        data = pl.Series(response, frame[response].to_numpy()) if pl else frame[response]
    elif corruption == "polars":
        pl = _polars()
        data, bad = (pl.from_pandas(frame) if pl else frame), False
    elif corruption == "dict":
        data, bad = {k: frame[k].to_numpy() for k in frame.columns}, False
    elif corruption == "collinear":
        frame["x2"] = draw(st.sampled_from([2.0, -0.5])) * frame["x"] + 1.0
        formula = f"{response} ~ x + x2 + (1 | g)"
    elif corruption == "log_negative":
        formula = f"{response} ~ log(x) + (1 | g)"
        frame.loc[row, "x"] = draw(st.sampled_from([0.0, -1.0]))
    elif corruption == "nan_unused":
        frame["lab"] = np.nan
        bad = False
    elif corruption == "list":
        data = frame[response].tolist()
    elif corruption in ("exponential_neg", "weibull_neg"):
        family, formula = corruption.split("_")[0], "y ~ x + (1 | g)"
    elif corruption in ("zip_ok", "zip_neg"):
        family = "zero_inflated_poisson"
        formula = "cnt ~ x + (1 | g)" if corruption == "zip_ok" else "y ~ x + (1 | g)"
        bad = corruption == "zip_neg"
    elif corruption in ("cumulative_float", "cumulative_int"):
        family = "cumulative"
        formula = "y ~ x + (1 | g)" if corruption == "cumulative_float" else "cnt ~ x + (1 | g)"
        bad = corruption == "cumulative_float"
    elif corruption == "vonmises_far":
        family, formula = "vonmises", "pos ~ x + (1 | g)"
        frame["pos"] = frame["pos"] + 4.0
    else:  # none
        bad = False
    call = partial(fh.model, formula, data, family=family)
    return Case(f"data[{corruption}] {formula} family={family}", call, data, bad)


def _polars():
    try:
        import polars
    except ImportError:  # pragma: no cover - polars is a test dependency
        return None
    return polars


# ---- formulas using a variable in two roles


ROLE_FORMULAS = [
    ("y ~ y + (1 | g)", "gaussian", True),
    ("y ~ x + y + (1 | g)", "gaussian", True),
    ("y ~ x + (y | g)", "gaussian", True),
    ("y ~ x + (1 + y || g)", "gaussian", True),
    ("y ~ x + (1 | y)", "gaussian", True),
    ("y ~ x + (g | g)", "gaussian", True),
    ("y ~ x + (x + g || g)", "gaussian", True),
    ("log(pos) ~ pos + (1 | g)", "gaussian", True),
    ("y ~ I(y**2) + (1 | g)", "gaussian", True),
    ("cbind(s, n - s) ~ s + (1 | g)", "binomial", True),
    ("cnt ~ x + (1 | cnt)", "poisson", True),
    ("cbind(s, n - s) ~ n + (1 | g)", "binomial", False),
    ("y ~ x + (x | g)", "gaussian", False),
    ("log(pos) ~ x + (1 | g)", "gaussian", False),
]


@st.composite
def role_cases(draw) -> Case:
    formula, family, bad = draw(st.sampled_from(ROLE_FORMULAS))
    data = clean_frame(draw(st.integers(0, 2**16)))
    return Case(f"roles {formula}", partial(fh.model, formula, data, family=family), data, bad)


# ---- Bambi-style priors dicts


GOOD_KEYS = ["x", "z", "Intercept", "common"]
BAD_KEYS = ["X", "zz", "days", "Sigma", "x|g", "1|G", "intercept", "mu2"]
GOOD_DISTS = ["Normal", "StudentT", "Laplace"]
BAD_DISTS = ["Nromal", "normal", "Gausian", "HalfNormel", "", "__class__"]


@st.composite
def prior_values(draw, positive: bool = False):
    """``(prior, bad)``: a bmb.Prior for a term (``positive``: for a scale parameter)."""
    import bambi as bmb

    bad = False
    if draw(st.integers(0, 3)) == 0:
        name, bad = draw(st.sampled_from(BAD_DISTS)), True
    else:
        name = draw(st.sampled_from(["HalfNormal", "Exponential"] if positive else GOOD_DISTS))
    scale = draw(st.sampled_from([1.0, 0.5, 2, 0.0, -1.0, float("nan"), float("inf")]))
    bad = bad or not (0 < scale < float("inf"))
    arg = {"Exponential": "lam", "Laplace": "b"}.get(name, "sigma")
    if draw(st.integers(0, 7)) == 0:
        arg, bad = draw(st.sampled_from(["sd", "scale_", "Sigma"])), True
    args = {arg: scale}
    if not positive:
        args["mu"] = draw(st.sampled_from([0.0, 1.5, -3]))
        if name == "StudentT":
            args["nu"] = 3
    return bmb.Prior(name, **args), bad


@st.composite
def prior_cases(draw) -> Case:
    import bambi as bmb

    priors, wrongs = {}, {}
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["term", "term", "sigma", "group", "badkey"]))
        if kind == "term":
            key = draw(st.sampled_from(GOOD_KEYS))
            value, wrong = draw(prior_values())
        elif kind == "sigma":
            key = "sigma"
            value, wrong = draw(prior_values(positive=True))
        elif kind == "group":
            key = draw(st.sampled_from(["1|g", "group_specific"]))
            hyper, wrong = draw(prior_values(positive=True))
            value = bmb.Prior("Normal", mu=0, sigma=hyper)
        else:
            key = draw(st.sampled_from(BAD_KEYS))
            value, wrong = draw(prior_values())
            wrong = True
        priors[key], wrongs[key] = value, wrong  # a key drawn twice: the last value counts
    bad = any(wrongs.values())
    data = clean_frame(draw(st.integers(0, 2**16)))
    return Case(f"priors {priors}", partial(fh.model, FORMULA, data, priors=priors), data, bad)


# ---- predictions (a fit with mocked sampling, built once)


_FIT: dict[str, object] = {}


def mocked_fit():
    if "fit" not in _FIT:
        from _support import mocked_sampling

        with warnings.catch_warnings(), mocked_sampling():
            warnings.simplefilter("ignore")
            _FIT["fit"] = fh.fit(FORMULA, clean_frame(0), draws=20, chains=1, progressbar=False)
    return _FIT["fit"]


PREDICT_OPTIONS = {
    "kind": (["mean", "response", "linpred"], ["means", "epred", 1, None]),
    "ci_prob": ([0.5, 0.9], [0, 1, 95, float("nan"), "0.9"]),
    "seed": ([None, 3], [-1, 2.5, True]),
    "allow_new_levels": ([True, False], ["yes", None]),
    "draws": ([False, True], [100, "no"]),
    "re_formula": ([None, "~0", "~ (1 | g)"], [0, "~ (1 | zz)", "~ (x | g)"]),
}
NEWDATA = ["none", "rows", "new_level", "missing_column", "nan", "polars", "dict", "empty", "list"]


@st.composite
def predict_cases(draw) -> Case:
    fitted = mocked_fit()  # here, not inside run_case (where sampling is stopped)
    options, bad = {}, False
    for name in draw(st.lists(st.sampled_from(sorted(PREDICT_OPTIONS)), max_size=3, unique=True)):
        good, wrong = PREDICT_OPTIONS[name]
        if draw(st.booleans()):
            options[name], bad = draw(st.sampled_from(wrong)), True
        else:
            options[name] = draw(st.sampled_from(good))
    which = draw(st.sampled_from(NEWDATA))
    frame = clean_frame(draw(st.integers(0, 2**16)), n=6)
    newdata = {"none": None, "rows": frame, "list": [1, 2]}.get(which, frame)
    if which == "new_level":
        frame["g"] = "zz"
        bad = bad or (options.get("allow_new_levels") is not True and options.get("re_formula")
                      not in ("~0",))  # fmt: skip
    elif which == "missing_column":
        newdata, bad = frame.drop(columns="x"), True
    elif which == "nan":
        frame.loc[2, "z"] = np.nan
        bad = True
    elif which == "polars":
        pl = _polars()
        newdata = pl.from_pandas(frame) if pl else frame
    elif which == "dict":
        newdata = {k: frame[k].to_numpy() for k in frame.columns}
    elif which == "empty":
        newdata, bad = frame.iloc[:0], True
    elif which == "list":
        bad = True

    def call(newdata=newdata, options=options):
        return fitted.predict(newdata, **options)

    return Case(f"predict[{which}]({options!r})", call, newdata, bad)


# ---- every kind of case, for the script


def all_cases():
    formula_cases = st.builds(
        lambda m, d, c: Case(
            f"formula {m!r}", partial(fh.model, m[0], d, family=m[1], link=m[2], correlated=c), d
        ),
        models(),
        frames(),
        st.booleans(),
    )
    return st.one_of(
        formula_cases, option_cases(), data_cases(), role_cases(), prior_cases(), predict_cases()
    )


def assert_ours(case: Case) -> None:
    status, detail = run_case(case)
    assert status in ("accepted", "refused"), f"{status}: {case.label}: {detail}"


CASES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@CASES
@given(case=option_cases())
def test_options_checked_before_sampling(case):
    assert_ours(case)


@CASES
@given(case=data_cases())
def test_bad_data_refused_good_data_accepted(case):
    assert_ours(case)


@CASES
@given(case=role_cases())
def test_variables_in_two_roles_refused(case):
    assert_ours(case)


@CASES
@given(case=prior_cases())
def test_prior_dicts_checked(case):
    assert_ours(case)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(case=predict_cases())
def test_predict_inputs_checked(case):
    assert_ours(case)


# ---- plots and raw estimates: the paths that raised the bare root before


def plot_cases() -> list[Case]:
    fitted = mocked_fit()
    return [
        Case("plot_forest(no groups)", partial(fh_plots.plot_forest, {}), None, True),
        Case("plot_forest(factor='zz')", partial(fitted.plot_forest, "zz"), None, True),
        Case("plot_ppc(no draws)", partial(fh_plots.plot_ppc, fitted.idata), None, True),
        Case(
            "raw_group_estimates(effect='zz')",
            partial(fh_plots.raw_group_estimates, fitted.fh_model, "g", ["Intercept", "zz"]),
            None,
            True,
        ),
    ]


def test_plot_inputs_refused_with_specific_errors():
    for case in plot_cases():
        assert_ours(case)
