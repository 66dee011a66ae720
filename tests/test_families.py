"""Families (R/brms names, links), binomial responses, in-formula functions, bf().

Most tests build models only or sample the prior in place of MCMC (``mock_sampling``). Two slow
tests fit cbpp (against brms) and the NWO grants model (against a simulation with known truth).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import bambi as bmb
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from _support import load_reference

import formulahier as fh
from formulahier.backend import bambi_family_names
from formulahier.families import FAMILIES, resolve_family

# ---------------------------------------------------------------------------------------------
# data for every family: one column per kind of response


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 120
    g = np.repeat([f"g{k}" for k in range(1, 9)], n // 8)
    x = rng.normal(size=n)
    eta = 0.3 * x + rng.normal(scale=0.3, size=8)[np.arange(n) // (n // 8)]
    size = rng.integers(5, 15, size=n)
    s = rng.binomial(size, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame(
        {
            "y": eta + rng.normal(size=n),
            "x": x,
            "z": rng.normal(size=n),
            "g": g,
            "y01": rng.binomial(1, 1 / (1 + np.exp(-eta))),
            "s": s,
            "n": size,
            "count": rng.poisson(np.exp(1 + eta)),
            "pos": rng.gamma(2.0, np.exp(eta) / 2.0),
            "prop": np.clip(1 / (1 + np.exp(-eta - rng.normal(scale=0.5, size=n))), 0.01, 0.99),
            "rating": np.digitize(eta + rng.logistic(size=n), [-1, 0, 1]),
        }
    )


# ---------------------------------------------------------------------------------------------
# names and links


@pytest.mark.parametrize(
    ("given", "link", "expected"),
    [
        ("gaussian", None, ("gaussian", "identity")),
        ("normal", None, ("gaussian", "identity")),
        ("student", None, ("t", "identity")),
        ("student_t", "log", ("t", "log")),
        ("binomial", "probit", ("binomial", "probit")),
        ("binomial(link = 'probit')", None, ("binomial", "probit")),
        ('binomial(link="cloglog")', None, ("binomial", "cloglog")),
        ("negbinomial", None, ("negativebinomial", "log")),
        ("Gamma", None, ("gamma", "log")),
        ("Gamma(link = 'inverse')", None, ("gamma", "inverse")),
        ("gamma", "1/mu^2", None),
        ("Poisson", "identity", ("poisson", "identity")),
        ("lognormal", None, ("lognormal", "identity")),
        ("Beta", None, ("beta", "logit")),
        ("ordinal", "probit", ("cumulative", "probit")),
        ("wald", None, ("wald", None)),  # another Bambi family: passed through
    ],
)
def test_resolve_family(given, link, expected):
    others = bambi_family_names()  # Bambi's other families, as construct.resolve_spec passes
    if expected is None:
        with pytest.raises(fh.FormulaError, match="does not support"):
            resolve_family(given, link, others)
    else:
        assert resolve_family(given, link, others) == expected


def test_default_links_are_bambis_except_gamma():
    from bambi.defaults.families import BUILTIN_FAMILIES

    for key, info in FAMILIES.items():
        parent = BUILTIN_FAMILIES[key]["likelihood"]["parent"]
        bambi_default = BUILTIN_FAMILIES[key]["link"][parent]
        assert (info.links[0] == bambi_default) == (key != "gamma"), key


@pytest.mark.parametrize(
    ("family", "link", "needle"),
    [
        ("gaussian", "logit", "does not support link='logit'"),
        ("poisson", "sqrt", "does not support link='sqrt'"),
        ("binomail", None, "Unknown family 'binomail'"),
        ("binomial(link = 'probit')", "logit", "Two links given"),
        ("binomial(trials = 3)", None, "only the link can be set"),
        (3, None, "must be a name"),
    ],
)
def test_bad_family_or_link(data, family, link, needle):
    with pytest.raises(fh.FormulaError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        fh.model("y ~ x + (1 | g)", data, family=family, link=link)


def test_link_reaches_bambi(data):
    m = fh.model("cbind(s, n - s) ~ x + (x | g)", data, family="binomial(link = 'probit')")
    assert m.bambi.family.link["p"].name == "probit"
    m = fh.model("pos ~ x + (1 | g)", data, family="Gamma")  # log here; R: inverse
    assert m.bambi.family.link["mu"].name == "log"
    m = fh.model("pos ~ x + (1 | g)", data, family="Gamma", link="inverse")
    assert m.bambi.family.link["mu"].name == "inverse"


# ---------------------------------------------------------------------------------------------
# every family with a correlated (x | g) block

FAMILY_RESPONSES = {
    "gaussian": "y",
    "student": "y",
    "bernoulli": "y01",
    "binomial": "cbind(s, n - s)",
    "poisson": "count",
    "negbinomial": "count",
    "gamma": "pos",
    "lognormal": "pos",
    "beta": "prop",
    "cumulative": "rating",
}


def test_table_covers_the_issue():
    assert {resolve_family(f)[0] for f in FAMILY_RESPONSES} == set(FAMILIES)


@pytest.mark.parametrize("noncentered", [True, False])
@pytest.mark.parametrize("family", sorted(FAMILY_RESPONSES))
def test_family_builds_correlated_block(data, family, noncentered):
    m = fh.model(
        f"{FAMILY_RESPONSES[family]} ~ x + (x | g)",
        data,
        family=family,
        noncentered=noncentered,
        collapse=False,  # the full construction, as for every other family
    )
    pmm = m.build()
    assert {"1|g", "x|g", "1|g_sigma", "x|g_sigma", "g_corr"} <= set(pmm.named_vars)
    assert list(pmm.coords["g_corr__effect"]) == ["Intercept", "x"]
    # the likelihood's parent parameter receives the block (not an independent copy)
    assert "g__block0_z_offset" in pmm.named_vars or "g__block0_beta_offset" in pmm.named_vars


@pytest.mark.parametrize(("family", "link"), [("gamma", None), ("negbinomial", None)])
def test_default_link_starts_finite(data, family, link):
    # compiling costs ~10 s per model: only the families whose default link could fail
    pmm = fh.model(f"{FAMILY_RESPONSES[family]} ~ x + (x | g)", data, family=family).build()
    logp = pmm.point_logps()
    assert all(np.isfinite(v) for v in logp.values()), logp


def test_cumulative_centered_uses_zero_intercept_mean(data):
    # Bambi drops the common intercept for ordinal families: the group intercepts are then
    # centered at zero, so the deviation equals the coefficient itself.
    m = fh.model("rating ~ x + (x | g)", data, family="cumulative", noncentered=False)
    pmm = m.build()
    beta, u = pm.draw([pmm["g__block0_beta_offset"], pmm["1|g"]], random_seed=1)
    np.testing.assert_allclose(u, beta[:, 0])
    # control: with an intercept (gaussian) the mean is not zero, the same check fails
    m = fh.model("y ~ x + (x | g)", data, noncentered=False, collapse=False)
    pmm = m.build()
    beta, u = pm.draw([pmm["g__block0_beta_offset"], pmm["1|g"]], random_seed=1)
    assert not np.allclose(u, beta[:, 0])


def test_cumulative_integer_response_becomes_ordered(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note from Bambi on the intercept it leaves out
        m = fh.model("rating ~ x + (1 | g)", data, family="cumulative")
    assert m.data["rating"].cat.ordered
    assert list(m.data["rating"].cat.categories) == sorted(data["rating"].unique())
    assert data["rating"].dtype.kind == "i"  # the user's column is untouched


@pytest.mark.usefixtures("mock_sampling")
@pytest.mark.parametrize("family", ["binomial", "cumulative"])
def test_family_fit_with_mocked_sampler(data, family):
    frame = data.copy()
    frame.loc[[3, 50], "x"] = np.nan  # dropped as lme4's na.omit; fit.nobs says so
    with pytest.warns(fh.FormulahierWarning, match="Dropped 2 of 120"):
        f = fh.fit(
            f"{FAMILY_RESPONSES[family]} ~ x + (x | g)",
            frame,
            family=family,
            draws=20,
            chains=1,
            progressbar=False,
        )
    assert f.nobs == 118
    assert f.idata["posterior"]["g_corr"].shape[-2:] == (2, 2)
    vc = f.varcorr()
    assert ((vc["group"] == "g") & (vc["var1"] == "Intercept") & (vc["var2"] == "x")).sum() == 1


# ---------------------------------------------------------------------------------------------
# binomial responses


@pytest.mark.parametrize(
    ("lhs", "expected"),
    [
        ("cbind(s, n - s)", "p(s, n)"),
        ("cbind(s,n-s)", "p(s, n)"),
        ("s | trials(n)", "p(s, n)"),
        ("s | trials(12)", "p(s, 12)"),
        ("p(s, n)", "p(s, n)"),
        ("cbind(s, f)", "p(s, s + f)"),
        ("cbind(s, 2 * n - s - n)", "p(s, s + (2 * n - s - n))"),
    ],
)
def test_binomial_response_translation(lhs, expected):
    assert fh.build_spec(f"{lhs} ~ x + (1 | g)").response == expected


@pytest.mark.parametrize("lhs", ["cbind(s, n - s)", "s | trials(n)", "p(s, n)", "cbind(s, f)"])
def test_binomial_responses_give_successes_and_trials(data, lhs):
    frame = data.assign(f=data["n"] - data["s"])
    m = fh.model(f"{lhs} ~ x + (1 | g)", frame, family="binomial")
    resp = np.asarray(m.bambi.response_component.term.data)
    np.testing.assert_array_equal(resp[:, 0], frame["s"])
    np.testing.assert_array_equal(resp[:, 1], frame["n"])


def test_cbpp_formula_as_lme4_writes_it():
    cbpp = fh.datasets.load("cbpp")
    m = fh.model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
    )
    resp = np.asarray(m.bambi.response_component.term.data)
    np.testing.assert_array_equal(resp[:, 1], cbpp["size"])


# ---------------------------------------------------------------------------------------------
# in-formula functions: columns checked against hand computations


def common_columns(m):
    comp = m.bambi.components[m.bambi.family.likelihood.parent]
    return {name: np.asarray(t.data) for name, t in comp.common_terms.items()}


def test_transformations_match_hand_computation(data):
    frame = data.assign(w=data["pos"] + 1.0)
    m = fh.model("y ~ log(w) + center(z) + scale(x) + (1 | g)", frame)
    cols = common_columns(m)
    np.testing.assert_allclose(cols["log(w)"].ravel(), np.log(frame["w"]))
    np.testing.assert_allclose(cols["center(z)"].ravel(), frame["z"] - frame["z"].mean())
    sx = (frame["x"] - frame["x"].mean()) / frame["x"].std(ddof=0)
    np.testing.assert_allclose(cols["scale(x)"].ravel(), sx, rtol=1e-6)


def test_r_spellings(data):
    m = fh.model("y ~ I(x^2) + factor(rating) + (1 | g)", data)
    cols = common_columns(m)
    np.testing.assert_allclose(cols["I(x ** 2)"].ravel(), data["x"] ** 2)  # power, not XOR
    assert cols["C(rating)"].shape[1] == data["rating"].nunique() - 1
    assert fh.build_spec("y ~ as.factor(a) + (factor(b) | g)").population == "C(a)"


def test_poly_is_orthogonal(data):
    cols = common_columns(fh.model("y ~ poly(x, 2) + (1 | g)", data))
    p = cols["poly(x, 2)"]
    assert p.shape == (len(data), 2)
    np.testing.assert_allclose(p.T @ p, np.eye(2), atol=1e-8)
    np.testing.assert_allclose(p.sum(0), 0, atol=1e-8)


def test_offset_enters_linear_predictor(data):
    m = fh.model("count ~ x + offset(log(n)) + (1 | g)", data, family="poisson")
    comp = m.bambi.components["mu"]
    assert "offset(log(n))" in comp.offset_terms
    np.testing.assert_allclose(
        np.asarray(comp.offset_terms["offset(log(n))"].data).ravel(), np.log(data["n"])
    )


@pytest.mark.parametrize(
    ("rhs", "names"),
    [
        ("0 + x", {"x"}),
        ("x - 1", {"x"}),
        ("x * z", {"Intercept", "x", "z", "x:z"}),
        ("x:z", {"Intercept", "x:z"}),
    ],
)
def test_intercept_and_interactions(data, rhs, names):
    m = fh.model(f"y ~ {rhs} + (1 | g)", data)
    comp = m.bambi.components["mu"]
    got = set(comp.common_terms) | ({"Intercept"} if comp.intercept_term is not None else set())
    assert got == names


# ---------------------------------------------------------------------------------------------
# bf(): one auxiliary parameter


def test_bf_sigma_formula(data):
    m = fh.model(fh.bf("y ~ x + (x | g)", sigma="~ z + (1 | g)"), data)
    sigma = m.bambi.components["sigma"]
    assert set(sigma.common_terms) == {"z"} and set(sigma.group_specific_terms) == {"1|g"}
    pmm = m.build()
    assert {"g_corr", "sigma_z", "sigma_1|g"} <= set(pmm.named_vars)
    assert m.spec.dpars == (("sigma", "sigma ~ z + (1 | g)"),)


def test_bf_results_show_the_auxiliary_formula(data, mock_sampling):
    """As brms: sigma_Intercept, sigma_z among population effects, sd(sigma_Intercept) under ~g,
    the sigma formula under the main one; numbers are those of Bambi's variables."""
    f = fh.fit(
        fh.bf("y ~ x + (x | g)", sigma="~ z + (1 | g)"),
        data,
        draws=20,
        chains=2,
        seed=1,
        progressbar=False,
    )
    fe = f.fixef()
    assert list(fe.index) == ["Intercept", "x", "sigma_Intercept", "sigma_z"]
    post = f.idata["posterior"]
    assert fe.loc["sigma_z", "estimate"] == pytest.approx(float(post["sigma_z"].mean()))
    group = f.summary().group["g"]
    assert "sd(sigma_Intercept)" in group.index and "cor(Intercept,x)" in group.index
    sd = float(post["sigma_1|g_sigma"].mean())
    assert group.loc["sd(sigma_Intercept)", "estimate"] == pytest.approx(sd)
    assert "         sigma ~ z + (1 | g)" in str(f)
    assert "sigma_Intercept" in f.varcorr()["var1"].tolist()


def test_bf_with_named_lhs_and_double_bar(data):
    m = fh.model(fh.bf("y ~ x + (1 | g)", sigma="sigma ~ x + (x || g)"), data)
    assert set(m.bambi.components["sigma"].group_specific_terms) == {"1|g", "x|g"}


def test_bf_correlated_aux_block_is_refused(data):
    with pytest.raises(fh.FormulaError, match="independent effects"):
        fh.model(fh.bf("y ~ x + (1 | g)", sigma="~ x + (x | g)"), data)
    m = fh.model(fh.bf("y ~ x + (1 | g)", sigma="~ x + (x | g)"), data, correlated=False)
    assert set(m.bambi.components["sigma"].group_specific_terms) == {"1|g", "x|g"}


def test_bf_errors(data):
    with pytest.raises(fh.FormulaError, match="'zz'"):
        fh.model(fh.bf("y ~ x + (1 | g)", sigma="~ zz"), data)
    with pytest.raises(fh.FormulaError, match="not a parameter"):
        fh.model(fh.bf("y ~ x + (1 | g)", nu="~ x"), data)
    with pytest.raises(fh.FormulaError, match="left of '~'"):
        fh.bf("y ~ x", sigma="nu ~ x")


# ---------------------------------------------------------------------------------------------
# real fits


@pytest.fixture(scope="module")
def cbpp_fit():
    cbpp = fh.datasets.load("cbpp")
    return fh.fit(
        "incidence | trials(size) ~ period + (1 | herd)",
        cbpp,
        family="binomial",
        # brms puts flat priors on b. Bambi's default for a categorical predictor in a logit
        # model is Normal(0, 1), which pulls period3 (-1.13) towards 0 by ~0.5 brms sd; a wide
        # prior makes the models the same up to the sd prior.
        priors={"period": bmb.Prior("Normal", mu=0, sigma=10)},
        draws=500,
        tune=500,
        chains=2,
        seed=11,
        progressbar=False,
    )


@pytest.mark.slow
def test_cbpp_agrees_with_brms(cbpp_fit):
    ref = load_reference("cbpp")
    fixef = cbpp_fit.fixef()
    fixef.index = [name.replace("[", "").replace("]", "") for name in fixef.index]  # period2
    for row in ref["brms_fixed"]:
        # same priors on b up to the intercept's and the sd's: 0.3 brms sd (Monte Carlo error
        # of a mean from ~1000 draws is ~0.04 sd here, of brms's ~0.02 sd)
        est, se = fixef.loc[row["param"], ["estimate", "std_error"]]
        print(
            f"cbpp {row['param']}: {est:.3f} ({se:.3f}) brms {row['Estimate']:.3f} "
            f"({row['Est.Error']:.3f}) -> {(est - row['Estimate']) / row['Est.Error']:+.2f} sd"
        )
        assert abs(est - row["Estimate"]) < 0.3 * row["Est.Error"], (row["param"], est)
        assert se == pytest.approx(row["Est.Error"], rel=0.3)
    sd = ref["brms_random"]["herd"][0]
    vc = cbpp_fit.varcorr()
    got = vc.loc[(vc["group"] == "herd") & (vc["var1"] == "Intercept"), "estimate"].iloc[0]
    # half-normal vs brms's student_t(3, 0, 2.5) prior on the sd: within 1 brms sd
    print(f"cbpp sd(Intercept): {got:.3f} brms {sd['Estimate']:.3f} ({sd['Est.Error']:.3f})")
    assert abs(got - sd["Estimate"]) < sd["Est.Error"], got


def logistic_glm(X, successes, trials, iters=50):
    """Maximum likelihood binomial GLM by Newton's method: (estimates, standard errors)."""
    beta = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X @ beta))
        w = trials * p * (1 - p)
        info = X.T @ (X * w[:, None])
        beta = beta + np.linalg.solve(info, X.T @ (successes - trials * p))
    return beta, np.sqrt(np.diag(np.linalg.inv(info)))


NWO_FORMULA = "cbind(awards, applications - awards) ~ gender + (1 | discipline)"


@pytest.fixture(scope="module")
def nwo_fit():
    return fh.fit(
        NWO_FORMULA,
        fh.datasets.load("nwo_grants"),
        family="binomial",
        draws=500,
        tune=500,
        chains=2,
        seed=3,
        progressbar=False,
    )


@pytest.mark.slow
def test_nwo_grants_gender_effect_matches_glm(nwo_fit):
    # With ~300 applications per discipline the discipline intercepts are barely pooled, so the
    # gender effect of the multilevel model is the one of the binomial GLM with discipline as
    # fixed effects (what lme4's estimate is close to). Tolerance: 0.5 GLM standard errors.
    nwo = fh.datasets.load("nwo_grants")
    X = np.column_stack(
        [(nwo["gender"] == "m").astype(float), pd.get_dummies(nwo["discipline"]).to_numpy(float)]
    )
    est, se = logistic_glm(X, nwo["awards"].to_numpy(float), nwo["applications"].to_numpy(float))
    row = nwo_fit.fixef().loc["gender[m]"]
    print(
        f"nwo gender[m]: {row['estimate']:.3f} ({row['std_error']:.3f}) glm {est[0]:.3f} "
        f"({se[0]:.3f})"
    )
    assert abs(row["estimate"] - est[0]) < 0.5 * se[0], (row["estimate"], est[0], se[0])
    assert row["std_error"] == pytest.approx(se[0], rel=0.25)
    assert nwo_fit.nobs == 18


def simulate_nwo(seed=5):
    """NWO-shaped data (9 disciplines, two genders) with known truth on the logit scale."""
    nwo = fh.datasets.load("nwo_grants")
    rng = np.random.default_rng(seed)
    codes = pd.Categorical(nwo["discipline"]).codes
    u = rng.normal(scale=0.4, size=codes.max() + 1)
    truth = {"Intercept": -1.6, "gender[m]": 0.2}
    eta = truth["Intercept"] + truth["gender[m]"] * (nwo["gender"] == "m") + u[codes]
    apps = nwo["applications"] * 10  # ten times the real data: sharp enough to test
    sim = nwo.assign(applications=apps, awards=rng.binomial(apps, 1 / (1 + np.exp(-eta))))
    return sim, truth


@pytest.mark.slow
def test_nwo_grants_model_recovers_simulated_truth(nwo_fit):
    sim, truth = simulate_nwo()
    f = fh.model(NWO_FORMULA, sim, family="binomial").fit(
        draws=500, tune=500, chains=2, seed=3, progressbar=False
    )
    fixef = f.fixef()
    for name, value in truth.items():
        est, sd = fixef.loc[name, ["estimate", "std_error"]]
        assert abs(est - value) < 3 * sd, (name, est, sd)


# ---------------------------------------------------------------------------------------------
# the examples of docs/families.md run (built, not sampled)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "families.md"


def docs_examples():
    text = DOCS.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    rows = re.findall(r"^\| `(\w+)`.*\| `(fh\.fit\(.*\))` \|$", text, re.M)
    return blocks, [(name, code.replace("\\|", "|")) for name, code in rows]


def test_docs_families_table_examples_build(monkeypatch):
    blocks, rows = docs_examples()
    assert {resolve_family(name)[0] for name, _ in rows} == set(FAMILIES)
    monkeypatch.setattr(fh, "fit", fh.model)  # build only
    namespace: dict = {}
    exec(blocks[0], namespace)
    for name, code in rows:
        m = eval(code, namespace)
        assert "g_corr" in m.build().named_vars, name
    for block in blocks[1:]:
        exec(block, namespace)
