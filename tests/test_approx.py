"""Fast approximations (method=...), sampler="auto", the lazy package import and the BLAS set-up.

No long MCMC: the approximations run on the collapsed sleepstudy model (a few seconds once
compiled); their accuracy against NUTS is measured by the benchmark (docs/performance.md).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import formulahier as fh
from formulahier.approx import KHAT_OK, _gaussian_khat, khat_verdict
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
    with pytest.raises(SamplerError, match=r"formulahier\[approx\]"):
        fh.model(FORMULA, sleepstudy).fit(method="laplace", draws=10, chains=1)


def test_khat_of_an_exact_gaussian_is_small():
    import pymc as pm

    with pm.Model() as model:
        pm.Normal("a", 1.0, 2.0, shape=2)
    k = _gaussian_khat(model, ["a[0]", "a[1]"], np.array([1.0, 1.2]), np.eye(2) * 5.0, seed=1)
    assert k < 0.3
    # a misplaced, too narrow approximation: the ratios have heavy tails
    k_bad = _gaussian_khat(model, ["a[0]", "a[1]"], np.array([5.0, 5.0]), np.eye(2) * 0.5, 1)
    assert k_bad > KHAT_OK
    assert "NOT reliable" in khat_verdict("laplace", k_bad)
    assert "method='nuts'" in khat_verdict("laplace", k_bad)


@pytest.fixture(scope="module")
def laplace_fit(sleepstudy):
    pytest.importorskip("pymc_extras")
    return fh.fit(FORMULA, sleepstudy, method="laplace", draws=250, chains=4, seed=1,
                  progressbar=False)


def test_laplace_fit_reads_like_a_fit(laplace_fit, sleepstudy):
    fit = laplace_fit
    assert fit.settings["method"] == "laplace" and fit.settings["construction"] == "collapsed"
    text = str(fit)
    assert "method laplace (approximate)" in text and "1000 independent draws" in text
    assert "Pareto k-hat" in text and "r_hat <= 1.01" not in text
    fixef = fit.fixef()
    # lme4's estimates (REML): 251.4 and 10.47; the approximation's means are close
    assert abs(fixef.loc["Intercept", "estimate"] - 251.4) < 5
    assert abs(fixef.loc["Days", "estimate"] - 10.47) < 1
    # the group effects were drawn exactly afterwards, as after NUTS
    ranef = fit.ranef()["Subject"]
    assert ranef.shape[0] == 18 and np.isfinite(ranef.to_numpy()).all()
    assert np.isfinite(fit.settings["khat"])


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
