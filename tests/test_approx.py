"""Fast approximations (method=...), sampler="auto", the lazy package import and the BLAS set-up.

No long MCMC: the approximations run on the collapsed sleepstudy model (a few seconds once
compiled); their accuracy against NUTS is measured by the benchmark (docs/performance.md).
"""

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import formulahier as fh
from formulahier.approx import _gaussian_check
from formulahier.approx_check import KHAT_OK, Check, check_draws, khat_verdict, psis_khat
from formulahier.errors import OptionError, SamplerError
from formulahier.samplers import AUTO_NUTPIE_CELLS, CALLBACK_MAX_CELLS, auto_sampler

FORMULA = "Reaction ~ Days + (Days | Subject)"


def test_import_is_light():
    code = (
        "import sys, formulahier as fh; "
        "heavy = [m for m in ('bambi', 'pymc', 'matplotlib', 'pandas', 'arviz') if m in sys.modules]; "
        "print(heavy); assert fh.FormulaError and fh.__version__"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_names_are_the_public_surface():
    for name in fh.__all__:
        assert getattr(fh, name) is not None
    assert callable(fh.fit) and callable(fh.model) and fh.datasets.load
    import formulahier.api  # noqa: F401  (no submodule is called fit: fh.fit stays the function)

    assert callable(fh.fit) and fh.fit.__name__ == "fit"
    assert not (Path(fh.__file__).parent / "fit.py").exists()
    with pytest.raises(AttributeError):
        fh.not_a_name  # noqa: B018


def test_blas_flags_link_scipy_openblas():
    from formulahier.blas import blas_flags

    flags = blas_flags()
    pytest.importorskip("scipy_openblas32")
    assert flags is not None and "-lscipy_openblas" in flags and "-Ddgemm_=scipy_dgemm_" in flags


def test_pytensor_uses_the_flags_without_warning():
    code = (
        "import warnings; warnings.filterwarnings('error', message='PyTensor could not link'); "
        "import formulahier.backend; "
        "import pytensor; print(pytensor.config.blas__ldflags)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    pytest.importorskip("scipy_openblas32")
    assert "scipy_openblas" in out.stdout


def test_auto_sampler_rule(monkeypatch):
    import importlib.util

    have_nutpie = importlib.util.find_spec("nutpie") is not None
    nutpie = "nutpie" if have_nutpie else "pymc"
    assert auto_sampler(36) == nutpie  # a cheap gradient: nutpie's callbacks
    assert auto_sampler(36, collapsed=False) == "pymc"  # group effects sampled: PyMC's warm-up
    assert auto_sampler(AUTO_NUTPIE_CELLS, collapsed=False) == nutpie
    assert auto_sampler(AUTO_NUTPIE_CELLS - 1, collapsed=False) == "pymc"
    assert auto_sampler(CALLBACK_MAX_CELLS - 1) == nutpie  # collapsed: callbacks up to here
    assert auto_sampler(AUTO_NUTPIE_CELLS) == nutpie  # a costly one: nutpie compiled
    # measured (docs/performance.md): PyMC's sampler was the slowest on every collapsed model,
    # so a collapsed model goes from the callbacks straight to nutpie's compiled route
    assert CALLBACK_MAX_CELLS == AUTO_NUTPIE_CELLS
    assert auto_sampler(40_000) == nutpie
    assert auto_sampler(20_000) == nutpie  # the 10^6 x 10^4 (x | g) model (docs/performance.md)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert auto_sampler(36) == "pymc"  # without nutpie


def test_unknown_method_and_options(sleepstudy):
    with pytest.raises(SamplerError, match="Unknown method 'laplce'.*laplace"):
        fh.fit(FORMULA, sleepstudy, method="laplce")
    m = fh.model(FORMULA, sleepstudy)
    with pytest.raises(OptionError, match="takes no sampler options"):
        m.fit(method="laplace", target_accept=0.9)


def test_missing_pymc_extras(sleepstudy, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymc_extras", None)
    # a model whose group effects are sampled takes pymc-extras' route
    with pytest.raises(SamplerError, match=r"formulahier\[approx\]"):
        fh.model(FORMULA, sleepstudy, collapse=False).fit(method="laplace", draws=10, chains=1)


def test_collapsed_laplace_is_exact_on_a_gaussian_posterior():
    import pymc as pm

    from formulahier.laplace import collapsed_laplace

    with pm.Model(coords={"k": ["a", "b"]}) as model:
        x = pm.Normal("x", [1.0, -2.0], [2.0, 0.5], dims="k")
        pm.Deterministic("twice", 2 * x, dims="k")
    pool, log_p, log_q, phases = collapsed_laplace(model, draws=2000, chains=2, seed=3)
    assert dict(pool["x"].sizes) == {"chain": 1, "draw": 4000, "k": 2}
    draws = pool["x"].to_numpy().reshape(-1, 2)
    np.testing.assert_allclose(draws.mean(0), [1.0, -2.0], atol=0.1)
    np.testing.assert_allclose(draws.std(0), [2.0, 0.5], rtol=0.05)
    np.testing.assert_allclose(pool["twice"].to_numpy(), 2 * pool["x"].to_numpy())
    # q is p up to a constant: equal weights, k-hat far below 0.5
    assert log_p.size == 4000 and np.ptp(log_p - log_q) < 1e-6
    assert psis_khat(log_p, log_q) < 0.3
    assert set(phases) == {"compile", "mode", "curvature", "khat", "expand"}


def test_laplace_refuses_a_mode_the_optimiser_did_not_reach():
    import pymc as pm

    from formulahier.laplace import _optimised, _polished, collapsed_laplace

    # a Cauchy far from its start: one L-BFGS-B iteration stops in its convex tail
    with pm.Model() as model:
        pm.StudentT("x", nu=1, mu=50.0, sigma=0.1, initval=0.0)
    with pytest.raises(SamplerError, match=r"L-BFGS-B\) stopped after 1 iter.*method='nuts'"):
        collapsed_laplace(model, draws=10, chains=1, seed=1, maxiter=1)
    # the same with its iterations: found, no error
    pool, *_ = collapsed_laplace(model, draws=10, chains=1, seed=1)
    assert abs(float(np.median(pool["x"])) - 50) < 1

    from scipy.optimize import OptimizeResult

    def cosh(x):  # log p = -cosh(x): concave, mode 0, Newton's steps on a fixed curvature crawl
        return -np.cosh(x).sum(), -np.sinh(x)

    stopped = OptimizeResult(x=np.array([5.0]), success=False, nit=1, message="ABNORMAL")
    with pytest.raises(SamplerError, match=r"after 1 iter.*sds \(a Newton step\) from the mode"):
        _polished(cosh, stopped)
    mode, chol = _polished(cosh, _optimised(cosh, np.array([5.0]), maxiter=10_000))
    np.testing.assert_allclose(mode, [0.0], atol=1e-6)
    np.testing.assert_allclose(chol @ chol.T, [[1.0]], rtol=1e-6)


def test_psis_resampling_corrects_a_too_wide_q(monkeypatch):
    import pymc as pm

    import formulahier.laplace as laplace
    from formulahier.approx import approximate

    with pm.Model() as model:
        pm.Normal("b", 0.0, 1.0)
    rng = np.random.default_rng(5)

    def fake(model, draws, chains, seed):  # q = N(0, 1.5^2) for p = N(0, 1)
        x = rng.normal(0, scale, draws * chains)
        pool = laplace.draws_dataset(model, {"b": x}, 1)
        return pool, -0.5 * x**2, -0.5 * (x / scale) ** 2, {}

    monkeypatch.setattr(laplace, "collapsed_laplace", fake)
    scale = 1.5
    wide = approximate(model, "laplace", 2000, 2, 1, False, collapsed=True)
    assert wide.check.resampled and wide.check.khat < KHAT_OK
    assert dict(wide.posterior["b"].sizes) == {"chain": 2, "draw": 2000}
    assert abs(float(wide.posterior["b"].std()) - 1.0) < 0.06  # q's own: 1.5
    verdict = khat_verdict("laplace", wide.check.khat, wide.check)
    assert "PSIS-resampled" in verdict and "effective draws" in verdict
    assert "only roughly right: resampling changed the sd of b by" in verdict
    # q far too narrow: heavy-tailed weights, q's own draws kept, NOT reliable
    scale = 0.3
    narrow = approximate(model, "laplace", 2000, 2, 1, False, collapsed=True)
    assert not narrow.check.resampled and narrow.check.khat >= KHAT_OK
    assert float(narrow.posterior["b"].std()) < 0.35
    assert "NOT reliable" in khat_verdict("laplace", narrow.check.khat, narrow.check)
    # few draws carry the weight: not reliable, however small the k-hat
    few = Check(0.3, resampled=True, ess=40.0, pool=4000)
    assert "NOT reliable" in khat_verdict("laplace", 0.3, few)


def test_laplace_curvature_is_the_exact_hessian_or_refused():
    from formulahier.laplace import _precision_cholesky

    precision = np.array([[2.0, 0.6], [0.6, 1.0]])

    def gaussian(x):  # log p = -x' P x / 2
        return -0.5 * x @ precision @ x, -precision @ x

    chol = _precision_cholesky(gaussian, np.array([0.3, -0.2]))
    np.testing.assert_allclose(chol @ chol.T, precision, rtol=1e-6)

    def saddle(x):  # log p = -x0^2 / 2 + x1^2 / 2: no maximum
        return -0.5 * x[0] ** 2 + 0.5 * x[1] ** 2, np.array([-x[0], x[1]])

    with pytest.raises(SamplerError, match="not curved downwards.*method='nuts'"):
        _precision_cholesky(saddle, np.zeros(2))


def test_khat_of_an_exact_gaussian_is_small():
    import pymc as pm

    with pm.Model() as model:
        pm.Normal("a", 1.0, 2.0, shape=2)
    rows = ["a[0]", "a[1]"]
    good = _gaussian_check(model, rows, np.array([1.0, 1.2]), np.eye(2) * 4.0, seed=1)
    assert good.khat < 0.3 and not good.too_far
    # a misplaced, too narrow approximation: the ratios have heavy tails
    bad = _gaussian_check(model, rows, np.array([5.0, 5.0]), np.eye(2) * 0.5, 1)
    assert bad.khat > KHAT_OK
    assert "NOT reliable" in khat_verdict("laplace", bad.khat, bad)
    assert "method='nuts'" in khat_verdict("laplace", bad.khat, bad)


def test_what_the_khat_cannot_see_is_caught_by_reweighting():
    rng = np.random.default_rng(4)
    # q = N(0, 1.5^2) for p = N(0, 1): bounded weights, small k-hat, but the sd is 50% too big
    x = rng.normal(0, 1.5, 4000)
    wide = check_draws(-0.5 * x**2, -0.5 * (x / 1.5) ** 2, {"b": x})
    assert wide.khat < 0.5 and not wide.too_far and wide.width_percent < -25
    verdict = khat_verdict("advi", wide.khat, wide)
    assert "roughly right" in verdict and "interval widths are off" in verdict
    assert "the sd of b by" in verdict and "method='nuts'" in verdict
    # q = N(0.5, 1) for p = N(0, 1): the mean is 0.5 sd off, with a small k-hat
    x = rng.normal(0.5, 1, 4000)
    shifted = check_draws(-0.5 * x**2, -0.5 * (x - 0.5) ** 2, {"b": x, "r": np.tanh(x)}, {"r"})
    assert (
        shifted.khat < 0.5 and shifted.too_far and shifted.moved.startswith("the mean of b by -0.")
    )
    verdict = khat_verdict("advi", shifted.khat, shifted)
    assert "NOT reliable: reweighting its draws by p/q" in verdict and "method='nuts'" in verdict
    # q = p: nothing moves, and the verdict says by how little
    y = rng.normal(size=4000)
    same = check_draws(-0.5 * y**2, -0.5 * y**2, {"b": y, "sd": np.exp(y / 4)})
    assert not same.too_far and same.khat == 0.0 and same.width_percent == 0.0
    assert "close enough" in khat_verdict("laplace", same.khat, same)
    assert "at most" in khat_verdict("laplace", same.khat, same)
    assert "could not be computed" in khat_verdict("laplace", float("nan"), Check(float("nan")))
    # an intercept far from zero, p one sd above q: 2.8% of its mean, but 1 sd: NOT reliable
    b = rng.normal(251, 7, 4000)
    off = check_draws(-0.5 * ((b - 258) / 7) ** 2, -0.5 * ((b - 251) / 7) ** 2, {"Intercept": b})
    assert off.too_far and "NOT reliable" in khat_verdict("laplace", off.khat, off)
    # ... while a scale parameter is judged by its relative move (10%)
    sd = np.exp(rng.normal(np.log(5), 0.1, 4000))
    ok = check_draws(
        np.zeros(4000), np.zeros(4000), {"Days|Subject_sigma": sd}, (), {"Days|Subject_sigma"}
    )
    assert not ok.too_far
    # q's sd 2.5 times p's: intervals far too wide, whatever the k-hat
    x = rng.normal(0, 2.5, 4000)
    too_wide = check_draws(-0.5 * x**2, -0.5 * (x / 2.5) ** 2, {"b": x})
    assert too_wide.width_percent < -50
    assert "NOT reliable" in khat_verdict("advi", too_wide.khat, too_wide)
    # log ratios spanning 10^4: PSIS's tail fit fails, one draw holds the weight: unreliable
    z = np.random.default_rng(1).normal(size=1000)
    far = check_draws(-1e6 * np.abs(z), np.zeros_like(z), {"b": z})
    assert far.khat == np.inf and "NOT reliable" in khat_verdict("advi", far.khat, far)


@pytest.fixture(scope="module")
def laplace_fit(sleepstudy):  # collapsed: the compiled-gradient route, no pymc-extras needed
    return fh.fit(
        FORMULA, sleepstudy, method="laplace", draws=250, chains=4, seed=1, progressbar=False
    )


def test_laplace_fit_reads_like_a_fit(laplace_fit, sleepstudy):
    fit = laplace_fit
    assert fit.settings["method"] == "laplace" and fit.settings["construction"] == "collapsed"
    text = str(fit)
    assert "method laplace (approximate)" in text and "Pareto k-hat" in text
    assert "r_hat <= 1.01" not in text
    # a k-hat below 0.7: the draws are PSIS-resampled, and the header says so
    assert fit.settings["khat"] < KHAT_OK and fit.settings["resampled"] == "PSIS"
    assert "1000 draws of the approximation PSIS-resampled by p/q" in text
    # the verdict names what the summary shows, not Bambi's variables
    verdict = fit.settings["verdict"]
    assert "PSIS-resampled" in verdict and re.search(r"(sd|cor)\(|b_|sigma", verdict)
    assert "Subject_sigma" not in verdict and "_corr" not in verdict
    # no chains to compare: R-hat and ESS are NA (as brms shows them for its approximations)
    summary = fit.summary()
    for table in summary.tables().values():
        assert table[["r_hat", "ess_bulk", "ess_tail"]].isna().all().all(), table
    assert re.search(r"NA +NA +NA\n", text), text
    fixef = fit.fixef()
    # lme4's estimates (REML): 251.4 and 10.47; the approximation's means are close
    assert abs(fixef.loc["Intercept", "estimate"] - 251.4) < 5
    assert abs(fixef.loc["Days", "estimate"] - 10.47) < 1
    # the group effects were drawn exactly afterwards, as after NUTS
    ranef = fit.ranef()["Subject"]
    assert ranef.shape[0] == 18 and np.isfinite(ranef.to_numpy()).all()
    assert np.isfinite(fit.settings["khat"])
    # the collapsed model's hyperparameters went through the compiled gradient, not pymc-extras
    assert {"compile", "mode", "curvature", "khat", "expand", "finish"} <= set(
        fit.settings["phases"]
    )


def test_laplace_fit_verbs(laplace_fit, sleepstudy):
    fit = laplace_fit
    coef = fit.coef()["Subject"]
    assert coef.shape[0] == 18 and np.isfinite(coef.to_numpy()).all()
    new = sleepstudy.head(5)
    pred = fit.predict(new)
    assert len(pred) == 5 and np.isfinite(pred.select_dtypes("number").to_numpy()).all()
    # the observed rows' log-likelihood comes from the exactly drawn group effects
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loo = fit.loo()
    assert np.isfinite(float(loo.elpd))
    # a few influential rows: PSIS's own warning, as after NUTS; nothing else (numba's note
    # that the one-off log-likelihood graph cannot be cached was shown here)
    others = [w for w in caught if not issubclass(w.category, fh.FormulahierWarning)]
    assert not others, [str(w.message) for w in others]


def test_collapsed_laplace_needs_no_pymc_extras(sleepstudy, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymc_extras", None)
    fit = fh.model(FORMULA, sleepstudy).fit(method="laplace", draws=50, chains=1, seed=2)
    assert fit.settings["construction"] == "collapsed" and "compile" in fit.settings["phases"]


def test_laplace_fit_saves_and_loads(laplace_fit, tmp_path):
    path = tmp_path / "laplace.nc"
    laplace_fit.save(path)
    again = fh.load(path)
    assert again.settings["method"] == "laplace"
    assert "method laplace (approximate)" in str(again)


def test_auto_checks_options_against_the_sampler_it_may_pick(sleepstudy, monkeypatch):
    import importlib.util

    from formulahier.samplers import check_options

    check_options({"max_treedepth": 12}, "auto", "fh.fit()")  # both samplers' option
    check_options({"step_scale": 0.3}, "auto", "fh.fit()")  # PyMC's NUTS only
    with pytest.raises(OptionError, match="nuts_steps"):
        check_options({"nuts_steps": 3}, "auto", "fh.fit()")  # nobody's
    if importlib.util.find_spec("nutpie") is None:
        return
    check_options({"maxdepth": 8}, "auto", "fh.fit()")  # nutpie's: valid where auto picks it
    m = fh.model(FORMULA, sleepstudy)  # collapsed, 18 levels: auto picks nutpie
    with pytest.raises(OptionError, match="auto' picked 'nutpie'.*sampler='pymc'"):
        m.fit(step_scale=0.3, draws=5, tune=5, chains=1)


def test_pathfinder_khat_is_pymc_extras_own_from_0_15_1():
    from importlib.metadata import version

    import xarray as xr

    from formulahier.approx import _pathfinder_khat

    pytest.importorskip("pymc_extras")
    tree = xr.DataTree()
    assert np.isnan(_pathfinder_khat(tree))  # no pathfinder group: unknown
    tree["pathfinder"] = xr.Dataset({"pareto_k": 0.42})
    fixed = tuple(int(p) for p in version("pymc-extras").split(".")[:3]) >= (0, 15, 1)
    assert (_pathfinder_khat(tree) == 0.42) if fixed else np.isnan(_pathfinder_khat(tree))


def test_gaussian_check_leaves_out_per_observation_values(monkeypatch):
    import pandas as pd

    rng = np.random.default_rng(2)
    g = rng.integers(5, size=200)
    x = rng.normal(size=200)
    y = (rng.random(200) < 1 / (1 + np.exp(-(x + 0.5 * rng.normal(size=5)[g])))).astype(int)
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})
    m = fh.model("y ~ x + (1 | g)", data, family="bernoulli")
    model = m.pymc_model
    start = model.initial_point()
    rows = [
        name if np.ndim(value) == 0 else f"{name}[{i}]"
        for name, value in start.items()
        for i in range(np.size(value))
    ]
    compiled = []
    compile_fn = model.compile_fn

    def spy(outs, *args, **kwargs):
        compiled.extend(o.name for o in (outs if isinstance(outs, list | tuple) else [outs]))
        return compile_fn(outs, *args, **kwargs)

    monkeypatch.setattr(model, "compile_fn", spy)
    mean = np.concatenate([np.ravel(v) for v in start.values()])
    check = _gaussian_check(model, rows, mean, np.eye(mean.size) * 0.01, seed=1)
    # Bambi's per-row mean (p: 200 values per draw; 10^5 rows gave 763 MB over 1,000 draws)
    assert "p" not in compiled and {"Intercept", "x", "1|g_sigma"} <= set(compiled)
    assert np.isfinite(check.khat)
