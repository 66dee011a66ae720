"""brms-style priors: parsing, which PyMC variable each class reaches, precedence, errors.

No MCMC: models are built and their PyMC distributions inspected; the prior predictive is drawn
forward (``pm.sample_prior_predictive``) on a small model.
"""

from __future__ import annotations

import json

import bambi as bmb
import numpy as np
import pandas as pd
import pytest

import formulahier as fh
from formulahier.priors import (
    PriorSpec,
    decode_priors,
    encode_priors,
    parse_dist,
)
from formulahier.priors.specs import _to_bambi


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 240
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(loc=2.0, size=n),
            "z": rng.normal(scale=3.0, size=n),
            "g": rng.choice([f"g{k}" for k in range(12)], size=n),
            "h": rng.choice([f"h{k}" for k in range(8)], size=n),
        }
    )


@pytest.fixture(scope="module")
def ozone():
    return fh.datasets.load("ozone")


OZONE = "log_ozone ~ TEMP + (TEMP | station)"
TWO = "y ~ x + z + (x | g) + (x | h)"


def op_args(pmm, name):
    """PyMC op name and evaluated parameters of a random variable."""
    rv = pmm[name]
    return type(rv.owner.op).__name__.lower(), [np.asarray(i.eval()) for i in rv.owner.inputs[2:]]


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "text, name, args",
    [
        ("normal(0, 0.1)", "normal", (0.0, 0.1)),
        ("  normal( -1.5 ,2e-1 ) ", "normal", (-1.5, 0.2)),
        ("student_t(3, 0, 2.5)", "student_t", (3.0, 0.0, 2.5)),
        ("cauchy(0, 1)", "cauchy", (0.0, 1.0)),
        ("double_exponential(0, 2)", "double_exponential", (0.0, 2.0)),
        ("laplace(0, 2)", "double_exponential", (0.0, 2.0)),
        ("logistic(0, 1)", "logistic", (0.0, 1.0)),
        ("exponential(1)", "exponential", (1.0,)),
        ("gamma(2, 0.1)", "gamma", (2.0, 0.1)),
        ("inv_gamma(3, 2)", "inv_gamma", (3.0, 2.0)),
        ("lognormal(0, 1)", "lognormal", (0.0, 1.0)),
        ("weibull(2, 1)", "weibull", (2.0, 1.0)),
        ("beta(2, 2)", "beta", (2.0, 2.0)),
        ("uniform(-1, 1)", "uniform", (-1.0, 1.0)),
        ("lkj(2)", "lkj", (2.0,)),
        ("lkj_corr_cholesky(1.5)", "lkj", (1.5,)),
        ("Normal(0, .5)", "normal", (0.0, 0.5)),
    ],
)
def test_parse_every_spelling(text, name, args):
    dist = parse_dist(text)
    assert dist.name == name
    assert dist.args == pytest.approx(args)


@pytest.mark.parametrize(
    "text, match",
    [
        ("normal(0,", "Malformed prior 'normal\\(0,'"),
        ("normal 0 1", "Malformed"),
        ("normal((0), 1)", "Malformed"),
        ("normal(0)", "normal takes 2 argument\\(s\\), normal\\(mu, sigma\\); got 1"),
        ("student_t(0, 1)", "student_t\\(nu, mu, sigma\\)"),
        ("normal(0, a)", "arguments must be numbers.*\\['a'\\]"),
        ("gauss(0, 1)", "Unknown distribution 'gauss'.*student_t"),
        ("normal(0, -1)", "sigma of normal\\(mu, sigma\\) must be positive"),
        ("exponential(0)", "rate of exponential\\(rate\\) must be positive"),
        ("uniform(2, 1)", "lower < upper"),
        ("lkj(0)", "eta of lkj\\(eta\\) must be positive"),
    ],
)
def test_malformed_strings(text, match):
    with pytest.raises(fh.PriorError, match=match):
        fh.prior(text, "b")


def test_prior_object():
    p = fh.prior("normal(0, 0.1)", "b", coef="TEMP")
    assert isinstance(p, PriorSpec)
    assert str(p) == "prior(normal(0, 0.1), class = b, coef = TEMP)"
    with pytest.raises(fh.PriorError, match="string in brms spelling"):
        fh.prior(3.0, "b")
    with pytest.raises(fh.PriorError, match="give the class"):
        fh.prior("normal(0, 1)", "")


# ------------------------------------------------------------------------------ translation


@pytest.mark.parametrize(
    "text, support, name, args",
    [
        ("normal(1, 2)", "real", "Normal", {"mu": 1, "sigma": 2}),
        ("student_t(3, 1, 2)", "real", "StudentT", {"nu": 3, "mu": 1, "sigma": 2}),
        ("cauchy(1, 2)", "real", "Cauchy", {"alpha": 1, "beta": 2}),
        ("normal(0, 2)", "positive", "HalfNormal", {"sigma": 2}),
        ("student_t(3, 0, 2.5)", "positive", "HalfStudentT", {"nu": 3, "sigma": 2.5}),
        ("cauchy(0, 1)", "positive", "HalfCauchy", {"beta": 1}),
        ("exponential(2)", "positive", "Exponential", {"lam": 2}),
        ("gamma(2, 0.1)", "positive", "Gamma", {"alpha": 2, "beta": 0.1}),
        ("lognormal(0, 1)", "positive", "LogNormal", {"mu": 0, "sigma": 1}),
        ("uniform(0, 10)", "positive", "Uniform", {"lower": 0, "upper": 10}),
        ("beta(2, 3)", "unit", "Beta", {"alpha": 2, "beta": 3}),
    ],
)
def test_translation_to_pymc(text, support, name, args):
    out = _to_bambi(fh.prior(text, "sd"), support)
    assert out.name == name
    assert {k: float(v) for k, v in out.args.items()} == pytest.approx(args)


@pytest.mark.parametrize(
    "text, support, match",
    [
        ("normal(1, 1)", "positive", "needs location 0; got 1"),
        ("student_t(3, -1, 1)", "positive", "needs location 0; got -1"),
        ("double_exponential(0, 1)", "positive", "negative support"),
        ("uniform(-1, 1)", "positive", "reaches outside"),
        ("normal(0, 1)", "unit", "negative support"),
        ("exponential(1)", "unit", "lies in \\(0, 1\\)"),
        ("lkj(2)", "real", "only serve class 'cor'"),
    ],
)
def test_translation_errors(text, support, match):
    with pytest.raises(fh.PriorError, match=match):
        _to_bambi(fh.prior(text, "sd"), support)


# ------------------------------------------------------------------------------ get_prior


def test_get_prior_ozone_lists_every_slot(ozone):
    table = fh.get_prior(OZONE, ozone)
    assert list(table.columns) == ["prior", "class", "coef", "group", "source", "pymc", "parameter"]
    slots = list(zip(table["class"], table["coef"], table["group"], strict=True))
    assert slots == [
        ("Intercept", "", ""),
        ("b", "", ""),
        ("b", "TEMP", ""),
        ("sd", "", ""),
        ("sd", "", "station"),
        ("sd", "Intercept", "station"),
        ("sd", "TEMP", "station"),
        ("cor", "", ""),
        ("cor", "", "station"),
        ("sigma", "", ""),
    ]
    assert set(table["source"]) == {"default"}
    rows = table.set_index(["class", "coef", "group"])
    # Bambi's auto-scaling, computed by hand: slope sd 2.5 sd(y)/sd(x), sigma scale sd(y)
    sy, sx = np.std(ozone["log_ozone"]), np.std(ozone["TEMP"])
    assert rows.loc[("b", "TEMP", ""), "prior"] == f"normal(0, {2.5 * sy / sx:.4g})"
    assert rows.loc[("sd", "TEMP", "station"), "prior"] == f"normal(0, {2.5 * sy / sx:.4g})"
    # intercept (and group-intercept sd): sqrt((2.5 sd(y))^2 + sum_k sigma_bk^2 mean(x_k)^2)
    s_int = np.sqrt((2.5 * sy) ** 2 + (2.5 * sy / sx) ** 2 * ozone["TEMP"].mean() ** 2)
    assert rows.loc[("sd", "Intercept", "station"), "pymc"] == f"HalfNormal(sigma={s_int:.4g})"
    my = ozone["log_ozone"].mean()
    assert rows.loc[("Intercept", "", ""), "pymc"] == f"Normal(mu={my:.4g}, sigma={s_int:.4g})"
    assert rows.loc[("sigma", "", ""), "prior"] == f"student_t(4, 0, {sy:.4g})"
    assert rows.loc[("cor", "", "station"), "prior"] == "lkj(2)"
    assert rows.loc[("sd", "TEMP", "station"), "parameter"] == "TEMP|station_sigma"


SLOT_PRIORS = [
    (fh.prior("normal(3, 1)", "Intercept"), ("Intercept", "", ""), "Normal(mu=3, sigma=1)"),
    (fh.prior("normal(0, 0.1)", "b"), ("b", "TEMP", ""), "Normal(mu=0, sigma=0.1)"),
    (fh.prior("normal(0, 0.1)", "b", coef="TEMP"), ("b", "TEMP", ""), "Normal(mu=0, sigma=0.1)"),
    (
        fh.prior("exponential(2)", "sd", group="station", coef="TEMP"),
        ("sd", "TEMP", "station"),
        "Exponential(lam=2)",
    ),
    (
        fh.prior("student_t(3, 0, 1)", "sd", group="station", coef="Intercept"),
        ("sd", "Intercept", "station"),
        "HalfStudentT(nu=3, sigma=1)",
    ),
    (fh.prior("lkj(4)", "cor", group="station"), ("cor", "", "station"), "LKJCorr(eta=4)"),
    (fh.prior("exponential(1)", "sigma"), ("sigma", "", ""), "Exponential(lam=1)"),
]


@pytest.mark.parametrize("spec, slot, pymc", SLOT_PRIORS, ids=lambda v: str(v)[:40])
def test_setting_a_slot_changes_exactly_that_slot(ozone, spec, slot, pymc):
    default = fh.get_prior(OZONE, ozone).set_index(["class", "coef", "group"])
    mine = fh.get_prior(OZONE, ozone, priors=[spec]).set_index(["class", "coef", "group"])
    assert mine.loc[slot, "pymc"] == pymc
    assert mine.loc[slot, "source"] in ("user", "(vectorized)")
    changed = [k for k in default.index if default.loc[k, "pymc"] != mine.loc[k, "pymc"]]
    assert changed == [slot]


# ------------------------------------------------------------------------------ built model


def test_each_class_reaches_its_pymc_variable(ozone):
    priors = [
        fh.prior("normal(3, 1)", "Intercept"),
        fh.prior("normal(0, 0.1)", "b", coef="TEMP"),
        fh.prior("exponential(4)", "sd", group="station", coef="TEMP"),
        fh.prior("cauchy(0, 2)", "sd", group="station", coef="Intercept"),
        fh.prior("lkj(4)", "cor", group="station"),
        fh.prior("student_t(3, 0, 1)", "sigma"),
    ]
    pmm = fh.model(OZONE, ozone, priors=priors).pymc_model
    op, (mu, sigma) = op_args(pmm, "Intercept")
    assert op.startswith("normal") and (mu, sigma) == (3, 1)
    op, (mu, sigma) = op_args(pmm, "TEMP")
    assert op.startswith("normal") and (mu, sigma) == pytest.approx((0, 0.1))
    op, (scale,) = op_args(pmm, "TEMP|station_sigma")
    assert op.startswith("exponential") and scale == pytest.approx(1 / 4)  # PyMC: scale = 1/rate
    op, (beta,) = op_args(pmm, "1|station_sigma")
    assert op.startswith("halfcauchy") and beta == 2
    op, (n, eta) = op_args(pmm, "station_corr_chol")
    assert op.startswith("lkjcorr") and (n, eta) == (2, 4)
    op, (nu, sigma) = op_args(pmm, "sigma")
    assert op.startswith("halfstudentt") and (nu, sigma) == (3, 1)


def test_precedence_coef_over_group_over_class(data):
    priors = [
        fh.prior("normal(0, 5)", "b"),
        fh.prior("normal(0, 0.5)", "b", coef="z"),
        fh.prior("exponential(1)", "sd"),
        fh.prior("exponential(2)", "sd", group="g"),
        fh.prior("exponential(3)", "sd", group="g", coef="x"),
    ]
    m = fh.model(TWO, data, priors=priors)
    pmm = m.pymc_model
    assert op_args(pmm, "x")[1][1] == 5  # class level
    assert op_args(pmm, "z")[1][1] == 0.5  # coef level
    assert op_args(pmm, "1|h_sigma")[1][0] == pytest.approx(1)  # class level
    assert op_args(pmm, "x|h_sigma")[1][0] == pytest.approx(1)
    assert op_args(pmm, "1|g_sigma")[1][0] == pytest.approx(1 / 2)  # group level
    assert op_args(pmm, "x|g_sigma")[1][0] == pytest.approx(1 / 3)  # group + coef
    src = m.prior_summary().set_index(["class", "coef", "group"])["source"]
    assert src[("b", "x", "")] == "(vectorized)" and src[("b", "z", "")] == "user"
    assert src[("sd", "x", "g")] == "user" and src[("sd", "Intercept", "g")] == "(vectorized)"
    assert src[("sd", "", "g")] == "user" and src[("sd", "", "h")] == "(vectorized)"


def test_lkj_per_group_and_class(data):
    m = fh.model(
        TWO, data, priors=[fh.prior("lkj(1)", "cor"), fh.prior("lkj(5)", "cor", group="h")]
    )
    pmm = m.pymc_model
    assert op_args(pmm, "g_corr_chol")[1][1] == 1
    assert op_args(pmm, "h_corr_chol")[1][1] == 5
    # lkj_eta= is the default the class-level and group priors override
    pmm = fh.model(TWO, data, lkj_eta=3.0, priors=[fh.prior("lkj(5)", "cor", group="h")]).pymc_model
    assert op_args(pmm, "g_corr_chol")[1][1] == 3
    assert op_args(pmm, "h_corr_chol")[1][1] == 5


def test_bambi_prior_objects_and_dicts(data):
    hyper = bmb.Prior("HalfNormal", sigma=0.3)
    pmm = fh.model(TWO, data, priors=[fh.prior(hyper, "sd", group="g", coef="x")]).pymc_model
    assert op_args(pmm, "x|g_sigma")[1][-1] == pytest.approx(0.3)  # halfnormal(loc=0, scale)
    # Bambi's dict form still works
    nested = bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=0.7))
    m = fh.model(TWO, data, priors={"z": bmb.Prior("Normal", mu=1, sigma=2), "x|h": nested})
    assert op_args(m.pymc_model, "z")[1] == [1, 2]
    assert op_args(m.pymc_model, "x|h_sigma")[1][-1] == pytest.approx(0.7)
    src = m.prior_summary().set_index(["class", "coef", "group"])["source"]
    assert src[("b", "z", "")] == "user" and src[("b", "x", "")] == "default"
    with pytest.raises(fh.PriorError, match="negative support"):
        fh.model(TWO, data, priors=[fh.prior(bmb.Prior("Normal", mu=0, sigma=1), "sd")])
    with pytest.raises(fh.PriorError, match="'zz'.*did you mean 'z'"):  # not Bambi's warning
        fh.model(TWO, data, priors={"zz": bmb.Prior("Normal", mu=0, sigma=1)})


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            fh.prior("normal(0, 1)", "bb"),
            "unknown prior class 'bb'.*'Intercept', 'b', 'sd', 'cor', 'sigma'",
        ),
        (fh.prior("normal(0, 1)", "b", coef="w"), "'w' is not a population-level term.*'x', 'z'"),
        (fh.prior("normal(0, 1)", "sd", group="k"), "'k' is not a grouping factor.*'g', 'h'"),
        (
            fh.prior("normal(0, 1)", "sd", group="g", coef="z"),
            "not a group-level effect of 'g'.*'Intercept', 'x'",
        ),
        (fh.prior("normal(0, 1)", "sd", coef="x"), "also needs group=.*'g', 'h'"),
        (fh.prior("lkj(2)", "cor", group="k"), "'k' has no correlated block.*'g', 'h'"),
        (fh.prior("lkj(2)", "cor", coef="x"), "class 'cor' takes no coef"),
        (fh.prior("normal(0, 1)", "cor"), "class 'cor' takes an LKJ prior"),
        (fh.prior("lkj(2)", "b"), "only serve class 'cor'"),
        (fh.prior("normal(0, 1)", "Intercept", coef="x"), "class 'Intercept' takes no coef"),
        (fh.prior("normal(0, 1)", "b", group="g"), "class 'b' takes no group"),
        (fh.prior("normal(1, 1)", "sd"), "needs location 0"),
        (fh.prior("normal(0, 1)", "sigma", coef="x"), "class 'sigma' takes no coef"),
    ],
)
def test_bad_priors_name_the_slot(data, spec, match):
    with pytest.raises(fh.PriorError, match=match) as info:
        fh.model(TWO, data, priors=[spec])
    assert str(spec) in str(info.value)


def test_other_errors(data):
    with pytest.raises(fh.PriorError, match="Two priors for the same slot"):
        fh.model(TWO, data, priors=[fh.prior("normal(0, 1)", "b"), fh.prior("normal(0, 2)", "b")])
    with pytest.raises(fh.PriorError, match="list of fh.prior"):
        fh.model(TWO, data, priors=["normal(0, 1)"])
    with pytest.raises(fh.PriorError, match="has no class 'cor'.*no correlated"):
        fh.model("y ~ x + (x || g)", data, priors=[fh.prior("lkj(2)", "cor", group="g")])
    with pytest.raises(fh.PriorError, match="no population-level intercept.*'b', 'sd', 'sigma'"):
        fh.model("y ~ 0 + x + (1 | g)", data, priors=[fh.prior("normal(0, 1)", "Intercept")])


def test_user_data_untouched(data):
    before = data.copy()
    fh.model(TWO, data, priors=[fh.prior("normal(0, 1)", "b")])
    pd.testing.assert_frame_equal(data, before)


# ------------------------------------------------------------------------------ encoding


def test_encode_round_trip(data):
    priors = [
        fh.prior("normal(0, 0.1)", "b", coef="x"),
        fh.prior(bmb.Prior("HalfNormal", sigma=0.3), "sd", group="g"),
        fh.prior("lkj(3)", "cor"),
    ]
    back = decode_priors(json.loads(json.dumps(encode_priors(priors))))
    assert back == priors
    a = fh.model(TWO, data, priors=priors).prior_summary()
    b = fh.model(TWO, data, priors=back).prior_summary()
    pd.testing.assert_frame_equal(a, b)
    bambi_dict = {"x": bmb.Prior("Normal", mu=0, sigma=1)}
    assert decode_priors(encode_priors(bambi_dict)) == bambi_dict


# ------------------------------------------------------------------------------ prior predictive


@pytest.fixture(scope="module")
def small_model(data):
    priors = [
        fh.prior("normal(0, 1)", "Intercept"),
        fh.prior("normal(0, 2)", "b"),
        fh.prior("exponential(1)", "sigma"),
    ]
    return fh.model("y ~ x", data, priors=priors)


def test_prior_predictive_matches_hand_variance(small_model):
    pp = small_model.prior_predictive(draws=4000, seed=11)
    assert {"prior", "prior_predictive", "observed_data"} <= set(pp.children)
    assert float(pp["prior"]["x"].std()) == pytest.approx(2.0, rel=0.06)
    # y_i = Intercept + b (x_i - mean x) + e: Var = 1 + 4 (x_i - xbar)^2 + E[sigma^2] (= 2)
    x = small_model.data["x"].to_numpy()
    i = int(np.argmax(np.abs(x - x.mean())))
    y = pp["prior_predictive"]["y"].values.reshape(-1, x.size)[:, i]
    expected = 1 + 4 * (x[i] - x.mean()) ** 2 + 2
    assert y.var() == pytest.approx(expected, rel=0.12)
    again = small_model.prior_predictive(draws=4000, seed=11)
    np.testing.assert_array_equal(pp["prior"]["x"].values, again["prior"]["x"].values)


def test_plot_prior_predictive(small_model):
    import matplotlib

    matplotlib.use("Agg")
    pp = small_model.prior_predictive(draws=200, seed=2)
    ax = small_model.plot_prior_predictive(idata=pp)
    assert ax.get_xlabel() == "y"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["prior predictive", "observed"]
    y, obs = pp["prior_predictive"]["y"].values, pp["observed_data"]["y"].values
    share = np.mean((y >= obs.min()) & (y <= obs.max()))
    assert f"{share:.0%} of draws" in ax.get_title()
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_fit_prior_summary(data, mock_sampling, tmp_path):
    priors = [fh.prior("normal(0, 0.5)", "b", coef="x")]
    f = fh.fit(
        "y ~ x + (1 | g)", data, priors=priors, draws=10, tune=0, chains=1, progressbar=False
    )
    table = f.prior_summary().set_index(["class", "coef", "group"])
    assert table.loc[("b", "x", ""), "prior"] == "normal(0, 0.5)"
    assert table.loc[("b", "x", ""), "source"] == "user"
    # saved fits keep their priors (encode_priors/decode_priors of fh.prior objects)
    f.save(tmp_path / "fit.nc")
    pd.testing.assert_frame_equal(fh.load(tmp_path / "fit.nc").prior_summary(), f.prior_summary())


def test_independent_blocks_and_categorical_terms(data):
    frame = data.assign(f=np.where(data["z"] > 0, "hi", np.where(data["z"] < -2, "lo", "mid")))
    priors = [
        fh.prior("normal(0, 0.3)", "b", coef="f"),
        fh.prior("gamma(2, 4)", "sd", group="g", coef="x"),
    ]
    pmm = fh.model("y ~ x + f + (x || g)", frame, priors=priors).pymc_model
    op, (mu, sigma) = op_args(pmm, "f")
    assert op.startswith("normal") and sigma == pytest.approx(0.3)
    assert pmm["f"].eval().shape == (2,)  # one prior serves both columns of f
    op, (alpha, scale) = op_args(pmm, "x|g_sigma")  # Bambi's own (independent) term
    assert op.startswith("gamma") and (alpha, scale) == pytest.approx((2, 1 / 4))
