"""Every bad input gets a FormulahierError subclass naming the problem, before anything samples.

One case per test; nothing here compiles or samples a model (sampling options are checked
before the model is built, so ``fh.fit`` with a bad option returns in milliseconds).
"""

from __future__ import annotations

import warnings

import bambi as bmb
import numpy as np
import pandas as pd
import pytest

import formulahier as fh
from formulahier import predict as predict_module
from formulahier import results, validate


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 40
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "Days": rng.normal(size=n),
            "x": rng.normal(size=n),
            "pos": rng.gamma(2.0, size=n),
            "cnt": rng.poisson(2.0, size=n),
            "g": np.repeat(["a", "b", "c", "d"], n // 4),
            "f": rng.choice(["lo", "mid", "hi"], size=n),
        },
        index=[f"r{i}" for i in range(n)],
    )


@pytest.fixture(scope="module")
def built(data) -> fh.Model:
    return fh.model("y ~ Days + (1 | g)", data)


FORMULA = "y ~ Days + (1 | g)"


def refused(error, call, match: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match):
            call()


# ---------------------------------------------------------------------------------------------
# sampling options: fh.fit checks them before building the model, Model.fit before building


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("draws", 0, r"`draws` must be an integer >= 1"),
        ("draws", True, r"`draws` must be an integer >= 1; got True"),
        ("draws", 10.0, r"`draws` must be an integer"),
        ("tune", -1, r"`tune` must be an integer >= 0"),
        ("tune", False, r"`tune` must be an integer >= 0"),
        ("chains", 0, r"`chains` must be an integer >= 1"),
        ("cores", 0, r"`cores` must be an integer >= 1"),
        ("cores", True, r"`cores` must be an integer >= 1"),
        ("seed", -1, r"`seed` must be None or an integer >= 0"),
        ("seed", 1.5, r"`seed` must be None or an integer >= 0"),
        ("seed", True, r"`seed` must be None or an integer >= 0"),
        ("target_accept", 1.0, r"`target_accept` must be a number strictly between 0 and 1"),
        ("target_accept", 0, r"`target_accept` must be a number strictly between 0 and 1"),
        ("target_accept", float("nan"), r"`target_accept`"),
        ("max_treedepth", 0, r"`max_treedepth` must be an integer >= 1"),
        ("init", "adapt-diag", r"`init` must be one of .*did you mean 'adapt_diag'"),
        ("progressbar", None, r"`progressbar` must be True or False"),
    ],
)
def test_fit_option_refused_before_building(data, option, value, match):
    refused(fh.OptionError, lambda: fh.fit(FORMULA, data, **{option: value}), match)


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("draws", -5, r"`draws` must be an integer >= 1"),
        ("tune", 1.5, r"`tune` must be an integer >= 0"),
        ("chains", np.int64(0), r"`chains` must be an integer >= 1"),
        ("seed", "1", r"`seed` must be None or an integer"),
        ("target_accept", 95, r"`target_accept`"),
    ],
)
def test_model_fit_option_refused(built, option, value, match):
    refused(fh.OptionError, lambda: built.fit(**{option: value}), match)


def test_numpy_integers_are_integers():
    assert validate.positive_int(np.int32(3), "draws") == 3 and validate.seed(np.int64(7)) == 7


def test_unknown_sampler_did_you_mean(data):
    refused(
        fh.SamplerError, lambda: fh.fit(FORMULA, data, sampler="nutpi"), "did you mean 'nutpie'"
    )


def test_sampler_not_a_string(data):
    refused(fh.SamplerError, lambda: fh.fit(FORMULA, data, sampler=None), "`sampler` is one of")


def test_misspelled_sampler_keyword(data):
    refused(fh.OptionError, lambda: fh.fit(FORMULA, data, target_acept=0.9), "'target_accept'")


def test_misspelled_model_option_to_fit(data):
    refused(fh.OptionError, lambda: fh.fit(FORMULA, data, famly="poisson"), "did you mean 'family'")


def test_model_option_given_to_model_fit(built):
    refused(fh.OptionError, lambda: built.fit(family="poisson"), "option of the model")


def test_reserved_sampler_keyword(data):
    refused(fh.OptionError, lambda: fh.fit(FORMULA, data, random_seed=1), "pass seed= instead")


def test_misspelled_keyword_to_model_is_ours_not_typeerror(data):
    refused(fh.OptionError, lambda: fh.model(FORMULA, data, famliy="poisson"), "'family'")


def test_sampling_option_given_to_model(data):
    refused(fh.OptionError, lambda: fh.model(FORMULA, data, draws=10), "pass it to .fit()")


def test_misspelled_keyword_to_get_prior(data):
    refused(fh.OptionError, lambda: fh.get_prior(FORMULA, data, prior=[]), "'priors'")


def test_pymc_and_nuts_keywords_accepted():
    out = validate.sampler_options({"max_treedepth": 12, "init": "adapt_diag"}, "pymc", "f()")
    assert out == {"max_treedepth": 12, "init": "adapt_diag"}


def test_nutpie_options_moved_into_nuts():
    pytest.importorskip("nutpie")
    out = validate.sampler_options({"maxdepth": 8, "target_accept": 0.9}, "nutpie", "f()")
    assert out == {"target_accept": 0.9, "nuts": {"maxdepth": 8}}


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), True, "2"])
def test_lkj_eta_refused(data, value):
    refused(
        fh.PriorError, lambda: fh.model("y ~ Days + (Days | g)", data, lkj_eta=value), "lkj_eta"
    )


def test_prior_predictive_draws(built):
    refused(fh.OptionError, lambda: built.prior_predictive(draws=0), "`draws`")


# ---------------------------------------------------------------------------------------------
# ci_prob, kind and friends: one validator, our error (still a ValueError)


@pytest.mark.parametrize("value", [0, 1, 95, -0.5, float("nan"), True, "0.9", None])
def test_ci_prob_refused_in_results(value):
    refused(fh.OptionError, lambda: results._check_prob(value), "`ci_prob` must be a number")


def test_ci_prob_error_is_a_valueerror():
    assert issubclass(fh.OptionError, ValueError) and issubclass(
        fh.OptionError, fh.FormulahierError
    )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"kind": "means"}, r"`kind` must be one of .*did you mean 'mean'"),
        ({"kind": 1}, r"`kind` must be one of"),
        ({"ci_prob": 1.5}, r"`ci_prob`"),
        ({"seed": -3}, r"`seed`"),
        ({"allow_new_levels": "yes"}, r"`allow_new_levels` must be True or False"),
        ({"draws": 100}, r"`draws` must be True or False"),
        ({"re_formula": 0}, r"`re_formula` must be None or a formula"),
    ],
)
def test_predict_options_refused_first(options, match):
    refused(fh.OptionError, lambda: predict_module.predict(None, None, **options), match)


# ---------------------------------------------------------------------------------------------
# data


def test_infinite_value_names_column_and_row(data):
    frame = data.copy()
    frame.loc["r7", "Days"] = np.inf
    refused(fh.DataError, lambda: fh.model(FORMULA, frame), r"'Days' is infinite in .*r7")


def test_infinite_value_in_unused_column_is_fine(data):
    assert fh.model(FORMULA, data.assign(other=np.inf)).nobs == len(data)


def test_complex_column(data):
    refused(fh.DataError, lambda: fh.model(FORMULA, data.assign(Days=data["Days"] + 1j)), "complex")


def test_constant_response_gaussian(data):
    refused(fh.DataError, lambda: fh.model(FORMULA, data.assign(y=2.5)), "same value")


def test_constant_response_gamma(data):
    refused(
        fh.DataError,
        lambda: fh.model("pos ~ Days", data.assign(pos=1.0), family="gamma"),
        "same value",
    )


def test_log_of_negative_predictor(data):
    refused(
        fh.DataError,
        lambda: fh.model("y ~ log(x) + (1 | g)", data),
        r"'log\(x\)' is infinite or NaN",
    )


def test_log_of_zero_in_group_effect(data):
    frame = data.assign(z=np.where(data["x"] > 0, data["pos"], 0.0))
    refused(fh.DataError, lambda: fh.model("y ~ 1 + (log(z) | g)", frame), "group-level effect")


@pytest.mark.parametrize(
    ("family", "column", "match"),
    [
        ("exponential", "y", "needs a response > 0"),
        ("weibull", "y", "needs a response > 0"),
        ("wald", "y", "needs a response > 0"),
        ("zero_inflated_poisson", "y", "must be a count >= 0"),
        ("hurdle_poisson", "pos", "whole numbers"),
        ("hurdle_gamma", "y", "response >= 0"),
        ("vonmises", "cnt", "between -pi and pi"),
    ],
)
def test_bambi_only_family_response_support(data, family, column, match):
    frame = data.assign(cnt=data["cnt"] + 4.0)
    refused(
        fh.DataError, lambda: fh.model(f"{column} ~ Days + (1 | g)", frame, family=family), match
    )


def test_bambi_only_family_valid_response_builds(data):
    assert fh.model("pos ~ Days + (1 | g)", data, family="exponential").nobs == len(data)


def test_self_referencing_formula(data):
    refused(fh.FormulaError, lambda: fh.model("y ~ y + (1 | g)", data), "cannot explain itself")


def test_self_reference_through_transform(data):
    refused(fh.FormulaError, lambda: fh.model("log(pos) ~ pos + (1 | g)", data), "explain itself")


def test_response_inside_bar(data):
    refused(fh.FormulaError, lambda: fh.model("y ~ Days + (y | g)", data), "group-level effect")


def test_response_as_grouping_factor(data):
    refused(
        fh.FormulaError,
        lambda: fh.model("cnt ~ Days + (1 | cnt)", data, family="poisson"),
        "grouping factor",
    )


def test_grouping_factor_as_its_own_slope(data):
    refused(fh.FormulaError, lambda: fh.model("y ~ Days + (g | g)", data), "its own levels")


def test_binomial_trials_as_predictor_allowed(data):
    frame = data.assign(n=data["cnt"] + 5, s=data["cnt"])
    assert fh.model("cbind(s, n - s) ~ n + (1 | g)", frame, family="binomial").nobs == len(data)


def test_collinear_predictors_named(data):
    frame = data.assign(d2=2 * data["Days"] + 1)
    refused(
        fh.DataError,
        lambda: fh.model("y ~ Days + d2 + (1 | g)", frame),
        r"'d2' is a linear combination of .*'Days'",
    )


def test_empty_interaction_cell_is_rank_deficient(data):
    frame = data.assign(a=np.where(data["x"] > 0, "p", "q"), b=np.where(data["x"] > 0, "u", "v"))
    refused(fh.DataError, lambda: fh.model("y ~ a * b + (1 | g)", frame), "collinear")


def test_poorly_scaled_but_full_rank_predictors_build(data):
    frame = data.assign(big=1e6 + data["x"], tiny=1e-9 * data["Days"])
    assert fh.model("y ~ big + tiny + (1 | g)", frame).nobs == len(data)


def test_continuous_response_with_cumulative(data):
    refused(
        fh.DataError,
        lambda: fh.model("y ~ Days + (1 | g)", data, family="cumulative"),
        "ordered categor",
    )


def test_integer_response_with_cumulative_builds(data):
    assert fh.model("cnt ~ Days + (1 | g)", data, family="cumulative").nobs == len(data)


def test_duplicate_column_names(data):
    frame = pd.concat([data, data[["Days"]]], axis=1)
    refused(fh.DataError, lambda: fh.model(FORMULA, frame), "more than one column named 'Days'")


def test_polars_series_is_not_a_table(data):
    pl = pytest.importorskip("polars")
    refused(fh.DataError, lambda: fh.model(FORMULA, pl.Series("y", [1.0, 2.0])), "pandas or polars")


# ---------------------------------------------------------------------------------------------
# priors dicts


def test_prior_key_not_a_term_did_you_mean(data):
    priors = {"days": bmb.Prior("Normal", mu=0, sigma=1)}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "did you mean 'Days'")


def test_prior_keys_of_every_kind_accepted(data):
    hyper = bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=1))
    priors = {
        "Days": bmb.Prior("Normal", mu=0, sigma=1),
        "Intercept": bmb.Prior("Normal", mu=0, sigma=5),
        "sigma": bmb.Prior("HalfNormal", sigma=2),
        "1|g": hyper,
        "common": bmb.Prior("Normal", mu=0, sigma=3),
    }
    assert fh.model(FORMULA, data, priors=priors).priors == priors


def test_prior_unknown_distribution(data):
    priors = {"Days": bmb.Prior("Nromal", mu=0, sigma=1)}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "did you mean 'Normal'")


def test_prior_nested_unknown_distribution(data):
    priors = {"1|g": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNorml", sigma=1))}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "'HalfNorml'")


def test_prior_negative_scale(data):
    priors = {"Days": bmb.Prior("Normal", mu=0, sigma=-1)}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "sigma is a scale")


def test_prior_zero_scale_of_family_parameter(data):
    priors = {"sigma": bmb.Prior("HalfNormal", sigma=0)}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "must be > 0")


def test_prior_negative_gamma_rate(data):
    priors = {"sigma": bmb.Prior("Gamma", alpha=2, beta=-1)}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "beta is a scale")


def test_prior_unknown_parameter(data):
    priors = {"Days": bmb.Prior("Normal", mu=0, sd=1)}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "did you mean 'sigma'")


def test_prior_not_a_prior(data):
    refused(
        fh.PriorError, lambda: fh.model(FORMULA, data, priors={"Days": "normal(0, 1)"}), "bmb.Prior"
    )


def test_prior_dict_on_a_term(data):
    priors = {"Days": {"x": bmb.Prior("Normal", mu=0, sigma=1)}}
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "Prior must be")


def test_brms_prior_with_bad_bambi_prior(data):
    priors = [fh.prior(bmb.Prior("Exponental", lam=1), "sd")]
    refused(fh.PriorError, lambda: fh.model(FORMULA, data, priors=priors), "'Exponential'")


# ---------------------------------------------------------------------------------------------
# families


def test_unknown_family_did_you_mean(data):
    refused(
        fh.FormulaError,
        lambda: fh.model(FORMULA, data, family="gausian"),
        "did you mean 'gaussian'",
    )


def test_posterior_predictive_arguments_are_checked(small_fit):
    with pytest.raises(fh.OptionError, match="num_draws"):
        small_fit.posterior_predictive(num_draws=0)
    with pytest.raises(fh.OptionError, match="seed"):
        small_fit.posterior_predictive(num_draws=5, seed="abc")
