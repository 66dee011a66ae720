"""Many fits: the execution layer, k-fold CV, SBC and fit_many (formulahier.many and users)."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

import formulahier as fh
from formulahier.kfold import kfold_split
from formulahier.many import local_workers, run_jobs


# ---------------------------------------------------------------- execution layer
def test_run_jobs_reports_a_failing_job_and_keeps_the_others(capsys):
    results = run_jobs(math.sqrt, [4.0, -1.0, 9.0], workers=1, label="roots")
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].value == 2.0 and results[2].value == 3.0
    assert not results[1].ok and results[1].value is None
    assert results[1].error.startswith("ValueError: math domain error")
    err = capsys.readouterr().err
    assert "roots [" in err and "3/3, 1 failed" in err  # one progress line on stderr


def test_run_jobs_in_worker_processes():
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores")
    results = run_jobs(math.sqrt, [1.0, 16.0, -4.0], workers=2, progress=False)
    assert [r.value for r in results[:2]] == [1.0, 4.0] and not results[2].ok


def test_local_workers_never_oversubscribe():
    cores = os.cpu_count() or 1
    assert local_workers(chains=1) == cores
    assert local_workers(chains=4 * cores) == 1
    assert local_workers(chains=1) * 1 <= cores
    with pytest.raises(fh.OptionError, match="chains"):
        local_workers(chains=2, workers=cores)  # 2 x cores chains on cores cores
    with pytest.raises(fh.OptionError, match="workers"):
        local_workers(workers=0)


def test_client_must_be_a_dask_client():
    with pytest.raises(fh.OptionError, match="dask.distributed.Client"):
        run_jobs(math.sqrt, [1.0], client="tcp://localhost:8786")


def test_missing_dask_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(fh.OptionError, match=r"formulahier\[dask\]"):
        run_jobs(math.sqrt, [1.0], client=object())


def test_run_jobs_on_a_local_dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:  # fmt: skip
        with distributed.Client(cluster) as client:
            results = run_jobs(math.sqrt, [1.0, -1.0, 25.0, 36.0], client=client, progress=False)
            pids = run_jobs(_pid, [0] * 4, client=client, progress=False)
    assert [r.value for r in results] == [1.0, None, 5.0, 6.0]
    assert "ValueError" in results[1].error and results[1].index == 1
    assert all(r.ok for r in pids) and os.getpid() not in {r.value for r in pids}


def _pid(_):
    return os.getpid()


# ---------------------------------------------------------------- folds
def test_kfold_split_random_stratified_grouped():
    folds = kfold_split(23, K=5, seed=1)
    assert sorted(set(folds)) == [1, 2, 3, 4, 5] and np.bincount(folds)[1:].max() <= 5
    strata = np.repeat(["a", "b"], [10, 20])
    folds = kfold_split(30, K=5, folds="stratified", group=strata, seed=1)
    for s in ("a", "b"):  # each stratum spread evenly over the folds
        counts = np.bincount(folds[strata == s], minlength=6)[1:]
        assert counts.max() - counts.min() <= 1
    groups = np.repeat(list("abcdefg"), 3)
    folds = kfold_split(21, K=3, folds="grouped", group=groups, seed=2)
    for g in set(groups):  # every row of a group in one fold
        assert len(set(folds[groups == g])) == 1
    assert np.array_equal(kfold_split(4, folds=[3, 3, 7, 7]), [1, 1, 2, 2])


def test_kfold_split_errors_name_the_fix():
    with pytest.raises(fh.OptionError, match="group="):
        kfold_split(10, K=2, folds="grouped")
    with pytest.raises(fh.OptionError, match="leave-one-group-out"):
        kfold_split(6, K=4, folds="grouped", group=np.repeat(list("abc"), 2))
    with pytest.raises(fh.OptionError, match="one per row"):
        kfold_split(5, folds=[1, 2])
    with pytest.raises(fh.OptionError, match="folds"):
        kfold_split(5, folds="blocked")
    with pytest.raises(fh.OptionError, match="at least 2"):
        kfold_split(4, folds=[1, 1, 1, 1])
    with pytest.raises(fh.OptionError, match="missing"):
        kfold_split(4, folds=[1, np.nan, 2, 2])


def test_worker_processes_say_when_a_script_lacks_the_main_guard(tmp_path):
    """A script calling run_jobs at top level: spawned workers re-run it; the error says why."""
    import subprocess
    import sys

    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores")
    script = tmp_path / "unguarded.py"
    script.write_text("import math\nfrom formulahier.many import run_jobs\n"
                      "print(run_jobs(math.sqrt, [1.0, 4.0], workers=2, progress=False))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)  # fmt: skip
    assert '__name__ == "__main__"' in out.stdout  # the jobs' error, in the parent
    assert "__main__" in out.stderr  # the worker's own error names the guard too


# ---------------------------------------------------------------- kfold / fit_many (mocked)
@pytest.fixture
def tiny():
    rng = np.random.default_rng(3)
    g = np.repeat(["a", "b", "c", "d", "e", "f"], 5)
    u = dict(zip("abcdef", rng.normal(0, 1, 6), strict=True))
    x = rng.normal(size=g.size)
    return pd.DataFrame({"g": g, "x": x, "y": 1 + 0.5 * x + np.array([u[v] for v in g])
                         + rng.normal(0, 0.5, g.size), "seg": np.tile(["s1", "s2"], 15)})


def test_kfold_grouped_is_an_elpd_that_compare_takes(tiny, mock_sampling):
    fit = fh.fit("y ~ x + (1 | g)", tiny, draws=20, tune=10, chains=2, progressbar=False,
                 seed=1)  # fmt: skip
    assert fit.settings["construction"] == "collapsed"  # the folds share one graph
    # sampler="pymc": through pm.sample, which the mock replaces (nutpie would compile)
    kf = fit.kfold(K=3, folds="grouped", seed=4, progressbar=False, workers=1,
                   sampler="pymc")  # group: the one factor  # fmt: skip
    assert kf.kind == "loo_kfold" and kf.n_folds == 3 and kf.n_data_points == len(tiny)
    assert kf.elpd_i.shape == (len(tiny),) and np.isfinite(kf.elpd_i).all()
    assert kf.elpd == pytest.approx(float(kf.elpd_i.sum()))
    assert kf.se == pytest.approx(math.sqrt(len(tiny) * np.var(kf.elpd_i.values)))
    table = fh.compare({"kfold": kf, "pooled": fh.fit("y ~ x", tiny, draws=20, tune=10, chains=2,
                                                       progressbar=False, seed=1)})  # fmt: skip
    assert set(table.index) == {"kfold", "pooled"}
    with pytest.raises(fh.OptionError, match="unknown"):
        fit.kfold(K=3, thin=2, workers=1)
    with pytest.raises(fh.OptionError, match="folds='grouped'"):  # group= is not ignored
        fit.kfold(K=3, group="g", workers=1)


def test_kfold_refits_a_model_that_is_not_collapsed(tiny, mock_sampling):
    fit = fh.fit("y ~ x + (1 | g)", tiny, draws=20, tune=10, chains=2, progressbar=False,
                 seed=1, collapse=False)  # fmt: skip
    kf = fit.kfold(K=3, seed=4, progressbar=False, workers=1)
    assert kf.n_folds == 3 and np.isfinite(kf.elpd_i).all()
    assert kf.compilations == 3  # one refit, so one compilation, per fold


@pytest.mark.parametrize("formula", ["y ~ 1 + (1 | g)", "y ~ 1 + (1 | g/h)"])
def test_kfold_fold_data_is_the_model_of_the_training_rows(tiny, formula):
    """One graph, the training rows' cross-products swapped in = the model built on those rows.

    The log density of the collapsed model built on all rows, with ``fold_data(keep)`` as its
    shared values, equals that of the model built on the kept rows alone, at several points;
    also for a nested factor (collapsed in two stages).
    """
    priors = [fh.prior("normal(0, 1)", "Intercept"), fh.prior("normal(0, 1)", "sd"),
              fh.prior("normal(0, 1)", "sigma")]  # fixed: Bambi's defaults rescale to the rows
    keep = np.ones(len(tiny), dtype=bool)
    keep[[0, 6, 7, 13, 20, 29]] = False  # every level (and every inner level) keeps rows
    data = tiny.assign(h=tiny["g"] + np.tile(["1", "1", "2", "2", "2"], 6))  # nested in g
    full = fh.model(formula, data, priors=priors)
    train = fh.model(formula, data[keep].reset_index(drop=True), priors=priors)
    assert full.collapsed and train.collapsed
    assert (full.bambi.fh_plan.nesting is None) == ("/" not in formula)
    values, raw = full.bambi.fh_plan.fold_data(full.bambi, keep)
    assert raw.n == keep.sum()
    model = full.pymc_model
    shared = full.bambi.backend.fh_response
    assert set(values) == set(shared)  # every cross-product is shared, the design's too
    for name, value in values.items():
        shared[name].set_value(value)
    logp_full, logp_train = model.compile_logp(), train.pymc_model.compile_logp()
    rng = np.random.default_rng(1)
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
        assert logp_full(point) == pytest.approx(logp_train(point), rel=1e-10)


def test_fit_many_stacks_fixef_and_varcorr(tiny, mock_sampling):
    fits = fh.fit_many("y ~ x + (1 | g)", tiny, by="seg", draws=20, tune=10, chains=2, seed=1,
                       progressbar=False, workers=1)  # fmt: skip
    assert list(fits) == ["s1", "s2"] and not fits.failed
    assert isinstance(fits["s1"], fh.Fit) and fits["s1"].nobs == 15
    fixef = fits.fixef()
    assert fixef.index.names == ["seg", "term"] and set(fixef.index.get_level_values(0)) == {
        "s1", "s2"}
    assert list(fits.varcorr().columns[:2]) == ["seg", "group"]
    with pytest.raises(fh.DataError, match="segment"):
        fh.fit_many("y ~ x", tiny, by="segment")
    with pytest.raises(fh.DataError, match="no value of by"):  # not dropped in silence
        fh.fit_many("y ~ x", tiny.assign(seg=tiny["seg"].where(tiny.index > 0)), by="seg")


def test_fit_many_reports_a_failing_segment(tiny, mock_sampling):
    bad = tiny.assign(x=np.where(tiny["seg"] == "s2", 1.0, tiny["x"]))  # s2: x constant
    fits = fh.fit_many("y ~ x + (1 | g)", bad, by="seg", draws=20, tune=10, chains=2, seed=1,
                       progressbar=False, workers=1)  # fmt: skip
    assert list(fits) == ["s1"] and "s2" in fits.failed and "job 1" in fits.failed["s2"]


# ---------------------------------------------------------------- SBC (real sampling, small)
@pytest.mark.slow
def test_sbc_detects_a_planted_prior_mismatch():
    """Simulated with Intercept ~ normal(0, 2), fitted with normal(0, 0.1): SBC must say so."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(8)], 5),
                         "y": rng.normal(size=40)})  # fmt: skip
    common = [fh.prior("normal(0, 1)", "sd"), fh.prior("normal(0, 1)", "sigma")]
    sim = [fh.prior("normal(0, 2)", "Intercept"), *common]
    wrong = [fh.prior("normal(0, 0.1)", "Intercept"), *common]
    res = fh.sbc("y ~ 1 + (1 | g)", data, n_sims=30, priors=sim, fit_priors=wrong, seed=5,
                 draws=100, tune=150, chains=1, thin=2, workers=1, progressbar=False)  # fmt: skip
    assert list(res.ranks.columns) == ["b_Intercept", "sd_g__Intercept", "sigma"]
    assert len(res.ranks) == 30 and res.n_draws == 50 and res.ranks.values.max() <= 50
    assert res.compilations == 1  # one compiled model for all 30 simulations (nutpie)
    test = res.test(bins=5)
    assert test.loc["b_Intercept", "p_chi2"] < 1e-4 and test.loc["b_Intercept", "p_pot_c"] < 1e-3
    fig = res.plot("hist")
    assert len([a for a in fig.axes if a.get_visible()]) == 3
    assert res.ess.shape == res.ranks.shape and (res.ess > 0).all().all()  # ESS per fit


def test_sbc_ecdf_plot_draws_the_simultaneous_band():
    """The ECDF-difference panels get the 95% band of a uniform ECDF (ArviZ's computation)."""
    from matplotlib.collections import PolyCollection

    ranks = pd.DataFrame({"b_x": np.random.default_rng(1).integers(0, 51, 80),
                          "sigma": np.arange(80) % 51})  # fmt: skip
    res = fh.SBCResult(ranks, 50, pd.DataFrame(), pd.Series(dtype=int), 1, 0.0, [], 0.0, {})
    pc = res.plot("ecdf")
    for name in ranks:
        ax = pc.viz["plot"][name].item()
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 1 and "simultaneous" in bands[0].get_label()
        heights = bands[0].get_paths()[0].vertices[:, 1]
        assert heights.min() < -0.05 and heights.max() > 0.05  # around zero, wide for 80 sims


@pytest.mark.slow  # no MCMC, but three models compiled (about 40 s)
def test_sbc_fits_with_the_priors_it_simulated_from():
    """Bambi's default priors scale with sd(y); SBC's fit must keep the simulation's priors.

    ``fh.sbc`` builds its fit model on the user's design *and response* (``sim_model.data``),
    then swaps each simulated response into the shared data: the prior density is the
    simulation's on every simulation. A model built on a simulated response (the planted bug)
    has other default priors, and the same check sees it.
    """
    import importlib

    sbc_module = importlib.import_module("formulahier.sbc")
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(6)], 4), "x": rng.normal(size=24),
                         "y": rng.normal(50, 20, size=24)})  # fmt: skip
    formula = "y ~ x + (x | g)"
    options = {"collapse": False, "noncentered": True, "family": "gaussian", "priors": None}
    sim = fh.model(formula, data, **options)  # default priors: scaled to sd(y) = 20
    y_sim = np.asarray(sim.prior_predictive(draws=1, seed=3)["prior_predictive"]["y"]).ravel()
    job = {"key": "priors-test", "formula": formula, "data": sim.data, "model_options": options,
           "sampler": "pymc"}  # fmt: skip
    (fit_model, pymc_fit, _), _, _ = sbc_module._build(job)
    for name, value in fit_model.bambi.response_data(y_sim).items():
        fit_model.bambi.backend.fh_response[name].set_value(value)
    naive = fh.model(formula, data.assign(y=y_sim), **options)  # priors rescaled to y_sim

    def prior_logp(model):
        return model.compile_logp(vars=model.free_RVs)

    point = sim.pymc_model.initial_point()
    simulated = prior_logp(sim.pymc_model)(point)
    assert prior_logp(pymc_fit)(point) == pytest.approx(simulated, rel=1e-12)
    assert abs(prior_logp(naive.pymc_model)(point) - simulated) > 1.0  # the planted bug shows
