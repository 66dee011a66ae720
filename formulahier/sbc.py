"""Simulation-based calibration (Talts et al. 2018): does a fitted model recover its prior.

:func:`sbc` draws ``n_sims`` parameter sets and responses from the model's prior on the user's
design (predictors and groups kept; :meth:`Model.prior_predictive`), fits the model to each
response, and records the rank of every true value among the (thinned) posterior draws. If the
model, its priors and the sampler are right, every parameter's ranks are uniform.

One compiled model serves many simulations: the response (and, for a collapsed gaussian model,
its cross-products) is shared data in the graph (``HierModel.response_data``), so each worker
process compiles the model once (nutpie's ``with_data``) and samples every simulation it is
given with new data, same graph. ``SBCResult.compilations`` counts the compilations.

Ranks are tested two ways: a chi-square test of the ranks in equal-probability bins, and
ArviZ's ``pot_c`` uniformity test of the (randomised) PIT values ``(rank + u) / (L + 1)``
(``arviz_stats``' ``uniformity_test``); plots by ``arviz_plots.plot_ecdf_pit`` (ECDF difference)
or a rank histogram with a 99% band.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from . import validate as check
from .api import model as build_model
from .errors import OptionError, SamplerError
from .many import (
    check_client,
    compile_for_data,
    dask_workers,
    local_workers,
    quiet_pymc,
    run_jobs,
    sample_with_data,
)
from .samplers import sampler_options as check_sampler_options
from .spec import MODEL_OPTIONS

__all__ = ["SBCResult", "sbc"]

_COMPILED: dict[str, tuple] = {}  # per worker process: key -> (model, compiled, names)


def _scalar_params(fh_model, dataset) -> dict[str, np.ndarray]:
    """brms-named draws of every scalar parameter, flattened to ``(sample,)`` arrays."""
    from .brms_names import scalar_draws
    from .results import PosteriorView

    tree = xr.DataTree.from_dict({"posterior": dataset})
    view = PosteriorView(tree, fh_model.bambi, fh_model.blocks)
    return {k: v.to_numpy().reshape(-1) for k, v in scalar_draws(view).items()}


def _build(job: Mapping) -> tuple:
    """The fit model of a job, built and compiled once per process (cached by ``job["key"]``)."""
    cached = _COMPILED.get(job["key"])
    if cached is not None:
        return cached, 0.0, 0
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(job["formula"], job["data"], **job["model_options"])
        pymc_model = model.pymc_model
        compiled = compile_for_data(pymc_model, job["sampler"])
    _COMPILED.clear()  # one model per process at a time
    _COMPILED[job["key"]] = (model, pymc_model, compiled)
    return _COMPILED[job["key"]], time.perf_counter() - start, 1


def _sample(model, pymc_model, compiled, job: Mapping, y: np.ndarray, seed: int):
    """Posterior draws given response ``y`` (new data, same graph) and the divergences."""
    return sample_with_data(model.bambi, pymc_model, compiled, model.bambi.response_data(y),
                            draws=job["draws"], tune=job["tune"], chains=job["chains"],
                            seed=seed, options=job["sampler_options"])  # fmt: skip


def _run_chunk(job: Mapping) -> dict:
    """Fit one chunk of simulations with one compiled model; per-simulation errors kept."""
    (model, pymc_model, compiled), compile_s, compiles = _build(job)
    import arviz_stats

    rows, errors, seconds, divergences, ess = [], [], [], [], []
    for sim, y, truth, seed in zip(job["sims"], job["ys"], job["truths"], job["seeds"],
                                   strict=True):  # fmt: skip
        start = time.perf_counter()
        try:
            posterior, div = _sample(model, pymc_model, compiled, job, y, int(seed))
            draws = _scalar_params(model, posterior)
            ranks = {k: int((v[:: job["thin"]] < truth[k]).sum()) for k, v in draws.items()
                     if k in truth}  # fmt: skip
            rows.append((sim, ranks))
            divergences.append((sim, div))
            ess.append((sim, {k: float(arviz_stats.ess(v.reshape(job["chains"], -1)))
                              for k, v in draws.items() if k in truth}))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one simulation failing is reported
            errors.append((sim, f"{type(exc).__name__}: {exc}"))
        seconds.append(time.perf_counter() - start)
    # a sampler the pymc path compiles per call: every simulation compiles
    n_compiles = compiles if compiled is not None else len(job["sims"])
    return {"rows": rows, "errors": errors, "seconds": seconds, "divergences": divergences,
            "ess": ess,
            "compile_seconds": compile_s, "compilations": n_compiles,
            "pid": os.getpid()}  # fmt: skip


class SBCResult:
    """Ranks of the true values among the posterior draws, one row per simulation.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per (successful) simulation, one column per parameter (brms names:
        ``b_Intercept``, ``sd_g__x``, ``cor_g__Intercept__x``, ``sigma``); values 0..L.
    n_draws : int
        L: posterior draws each rank is taken over (after thinning); ranks run 0..L.
    failed : pandas.DataFrame
        ``simulation, error`` of simulations that did not fit.
    divergences : pandas.Series
        Divergent transitions per simulation.
    ess : pandas.DataFrame
        Bulk ESS of each parameter's draws (before thinning), one row per simulation: ranks are
        over ``n_draws`` thinned draws; where the ESS is much below ``n_draws`` those draws are
        autocorrelated and the ranks clump (``None`` for a result read back without it).
    compilations : int
        How many times a model was compiled (once per worker process with nutpie).
    seconds : float
        Wall time of the whole run; ``sim_seconds`` per simulation (sampling, no compile).

    """

    def __init__(self, ranks, n_draws, failed, divergences, compilations, seconds,
                 sim_seconds, compile_seconds, settings, ess=None):  # fmt: skip
        self.ranks, self.n_draws, self.failed, self.ess = ranks, n_draws, failed, ess
        self.divergences, self.compilations, self.seconds = divergences, compilations, seconds
        self.sim_seconds, self.compile_seconds = sim_seconds, compile_seconds
        self.settings = settings

    def pit(self, seed: int = 0) -> pd.DataFrame:
        """Randomised PIT values ``(rank + u) / (L + 1)``: exactly uniform when calibrated."""
        u = np.random.default_rng(seed).uniform(size=self.ranks.shape)
        return (self.ranks + u) / (self.n_draws + 1)

    def test(self, bins: int | None = None) -> pd.DataFrame:
        """Uniformity of each parameter's ranks: chi-square on binned ranks and ArviZ's pot_c.

        ``bins`` defaults to ``min(20, n_sims // 5)`` (at least 5 expected per bin), with the
        exact probability of each bin under uniform ranks on 0..L. Returns one row per parameter:
        ``chi2``, ``df``, ``p_chi2``, ``p_pot_c``.
        """
        import arviz_stats  # noqa: F401 - registers the .azstats accessor

        n = len(self.ranks)
        if n < 2:
            raise OptionError("The uniformity test needs at least 2 successful simulations.")
        bins = max(2, min(20, n // 5)) if bins is None else check.positive_int(bins, "bins")
        edges = np.linspace(0, self.n_draws + 1, bins + 1)
        values = np.arange(self.n_draws + 1)
        expected = np.histogram(values, bins=edges)[0] / (self.n_draws + 1) * n
        pit = self.pit()
        ds = xr.Dataset({k: (("draw",), pit[k].to_numpy()) for k in pit})
        p_pot = ds.azstats.uniformity_test(dim="draw", method="pot_c")[0]  # p-values
        rows = {}
        for name in self.ranks:
            counts = np.histogram(self.ranks[name], bins=edges)[0]
            chi2, p = stats.chisquare(counts, expected)
            pv = p_pot[name]
            rows[name] = {"chi2": float(chi2), "df": bins - 1, "p_chi2": float(p),
                          "p_pot_c": float(np.asarray(pv))}  # fmt: skip
        return pd.DataFrame(rows).T.astype({"df": int})

    def plot(self, kind: str = "ecdf", var_names: Sequence[str] | None = None, bins=None,
             envelope_prob: float = 0.95):  # fmt: skip
        """Plot the ranks: ``"ecdf"`` or ``"hist"``; both results have ``.savefig(path)``.

        ``"ecdf"``: ArviZ's ECDF-difference plot of the PIT values (``arviz_plots.plot_ecdf_pit``
        with its pot_c test: p-value per panel, suspicious points marked), a PlotCollection,
        with the simultaneous ``envelope_prob`` band of an ECDF of uniform values (grey; from
        ``arviz_stats.ecdf_utils.ecdf_pit``, as ArviZ's ``method="envelope"`` draws it);
        ``"hist"``: rank histograms with the 99% band of counts under uniform ranks, a Figure.
        """
        names = list(var_names or self.ranks.columns)
        check.choice(kind, "kind", ("ecdf", "hist"))
        if kind == "ecdf":
            from arviz_plots import plot_ecdf_pit

            pit = self.pit()[names]
            prior_sbc = xr.Dataset(
                {k: (("chain", "draw"), pit[k].to_numpy()[None]) for k in names}
            )
            tree = xr.DataTree.from_dict({"prior_sbc": prior_sbc})
            cols = min(3, len(names))
            size = (4.2 * cols, 2.9 * -(-len(names) // cols))
            pc = plot_ecdf_pit(tree, method="pot_c", col_wrap=cols,
                               figure_kwargs={"figsize": size, "layout": "constrained"})
            _add_envelopes(pc, pit, envelope_prob)
            return pc
        return _rank_histograms(self, names, bins)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data (for a JSON file)."""
        return {"settings": self.settings, "n_sims": len(self.ranks), "n_draws": self.n_draws,
                "failed": self.failed.to_dict("records"), "compilations": self.compilations,
                "seconds": self.seconds, "compile_seconds": self.compile_seconds,
                "median_sim_seconds": float(np.median(self.sim_seconds)) if self.sim_seconds
                else None, "divergent_sims": int((self.divergences > 0).sum()),
                "divergences": self.divergences.to_dict(),
                "test": self.test().to_dict("index"),
                "ranks": self.ranks.to_dict("list"),
                "ess": None if self.ess is None else self.ess.to_dict("list")}  # fmt: skip

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> SBCResult:
        """Rebuild a result from :meth:`to_dict` (e.g. read back from a JSON file)."""
        ranks = pd.DataFrame(saved["ranks"])
        ranks.index.name = "simulation"
        ess = pd.DataFrame(saved["ess"], index=ranks.index) if saved.get("ess") else None
        divergences = pd.Series({int(k): v for k, v in saved.get("divergences", {}).items()},
                                name="divergences", dtype=int)  # fmt: skip
        return cls(ranks, int(saved["n_draws"]), pd.DataFrame(saved["failed"]), divergences,
                   saved["compilations"], saved["seconds"], [], saved["compile_seconds"],
                   saved["settings"], ess)  # fmt: skip

    def __repr__(self) -> str:
        table = self.test().to_string(float_format=lambda v: f"{v:.3f}")
        return (f"<SBC of {self.settings.get('formula')!r}: {len(self.ranks)} simulations "
                f"({len(self.failed)} failed), ranks over {self.n_draws} draws, "
                f"{self.compilations} compilation(s), {self.seconds:.0f} s>\n{table}")  # fmt: skip


def _add_envelopes(pc, pit: pd.DataFrame, prob: float) -> None:
    """The simultaneous band of a uniform ECDF behind each panel's ECDF difference.

    ``arviz_plots.plot_ecdf_pit(method="envelope")`` would draw it, but fails in arviz-plots
    1.3 (``np.linspace`` given a DataArray); the band is ArviZ's own computation.
    """
    from arviz_stats.ecdf_utils import ecdf_pit

    rng = np.random.default_rng(214)
    for name in pit:
        ax = pc.viz["plot"][name].item()
        x, _, lower, upper = ecdf_pit(pit[name].to_numpy(), prob, 1000, rng=rng)
        ax.fill_between(x, lower - x, upper - x, color="0.88", zorder=0, lw=0,
                        label=f"{prob:.0%} simultaneous band")  # fmt: skip
    first = pc.viz["plot"][pit.columns[0]].item()
    first.legend(fontsize=7, loc="lower left", frameon=False)


def _rank_histograms(result: SBCResult, names: list[str], bins):
    import matplotlib.pyplot as plt

    n = len(result.ranks)
    bins = max(2, min(20, n // 5)) if bins is None else bins
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    edges = np.linspace(0, result.n_draws + 1, bins + 1)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
    for ax, name in zip(axes.flat, names, strict=False):
        ax.axhspan(lo, hi, color="0.85", label="99% band (uniform)")
        ax.axhline(n / bins, color="0.5", lw=1)
        ax.hist(result.ranks[name], bins=edges, color="C0", edgecolor="white")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("rank")
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def _split_options(options: Mapping[str, Any]) -> tuple[dict, dict]:
    model = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    return model, {k: v for k, v in options.items() if k not in MODEL_OPTIONS}


def sbc(formula, data, n_sims: int = 100, *, family: str = "gaussian",
        priors=None, fit_priors=None, client=None, seed: int | None = None,
        sampler: str | None = None, draws: int = 300, tune: int = 300, chains: int = 2,
        thin: int = 3, chunk_size: int | None = None, workers: int | None = None,
        progressbar: bool = True, **options) -> SBCResult:  # fmt: skip
    """Simulation-based calibration of a multilevel model on the user's design.

    Parameters
    ----------
    formula, data, family, priors
        As for :func:`formulahier.fit`. ``data`` gives the design (predictors, groups, trials)
        and, through its response, the scale of the default priors; the response itself is
        replaced by simulated ones.
    n_sims : int
        Number of simulations (>= 200 for calibration evidence; a few for a smoke test).
    fit_priors : optional
        Fit with these priors instead of ``priors`` (a planted mismatch, or a sensitivity check:
        SBC should then fail).
    client : dask.distributed.Client, optional
        Run the simulations on this Dask cluster; ``None``: on this machine
        (``os.cpu_count() // chains`` worker processes, or this process).
    seed : int, optional
        Seeds the prior draws and every fit.
    sampler : {"nutpie", "pymc"}, optional
        ``"nutpie"`` (default where installed) compiles once per worker process; ``"pymc"``
        compiles per simulation (PyTensor's cache makes later compilations quicker).
    draws, tune, chains, thin : int
        Per fit; ranks are over ``chains * draws / thin`` draws.
    chunk_size : int, optional
        Simulations per job (each job reuses its process's compiled model); default: the
        simulations spread over about four jobs per worker.
    workers : int, optional
        Local worker processes (at most ``os.cpu_count() // chains``).
    progressbar : bool
        One progress line on stderr for the jobs.
    **options
        Model options (``correlated``, ``noncentered``, ``collapse``, ``lkj_eta``, ``link``)
        and sampler options (``target_accept``, 0.9 by default as in :func:`fit`).

    Returns
    -------
    SBCResult
        ``.ranks``, ``.test()``, ``.plot()``, ``.compilations``.

    """
    n_sims = check.positive_int(n_sims, "n_sims")
    thin = check.positive_int(thin, "thin")
    check.sampling(draws, tune, chains, seed)
    if sampler is None:
        sampler = "nutpie" if importlib.util.find_spec("nutpie") else "pymc"
    if sampler not in ("nutpie", "pymc"):
        raise SamplerError(f"fh.sbc() runs with sampler 'nutpie' or 'pymc', got {sampler!r}.")
    if sampler == "nutpie" and importlib.util.find_spec("nutpie") is None:
        raise SamplerError("sampler='nutpie' needs nutpie: `pip install 'formulahier[nutpie]'`.")
    client = check_client(client)
    model_options, sampler_options = _split_options(options)
    check_sampler_options(sampler_options, sampler, "fh.sbc()")  # names and values
    sampler_options.setdefault("target_accept", 0.9)  # as fh.fit
    model_options.update(family=family, priors=priors)
    sim_model = build_model(formula, data, **model_options)
    base = np.random.SeedSequence(seed)
    prior_seed = int(base.generate_state(1)[0] % (2**31 - 1))
    fit_seeds = np.random.default_rng(base.spawn(1)[0]).integers(0, 2**31 - 1, n_sims)
    with warnings.catch_warnings(), quiet_pymc():
        warnings.simplefilter("ignore")
        pp = sim_model.prior_predictive(draws=n_sims, seed=prior_seed)
    prior = pp["prior"].to_dataset()
    truths_all = _scalar_params(sim_model, prior)
    response = next(iter(pp["prior_predictive"].data_vars))
    ys = np.asarray(pp["prior_predictive"][response]).reshape(n_sims, -1)
    truths = [{k: float(v[s]) for k, v in truths_all.items()} for s in range(n_sims)]
    fit_options = dict(model_options, priors=priors if fit_priors is None else fit_priors)
    key = hashlib.sha1(pickle.dumps((formula, fit_options, sampler, sim_model.data))).hexdigest()
    n_workers = dask_workers(client) if client is not None else local_workers(chains, workers)
    size = chunk_size or max(1, min(10, -(-n_sims // (4 * n_workers))))
    job = {"key": key, "formula": formula, "data": sim_model.data, "model_options": fit_options,
           "sampler": sampler, "draws": draws, "tune": tune, "chains": chains, "thin": thin,
           "sampler_options": sampler_options}  # fmt: skip
    jobs = [dict(job, sims=list(range(a, min(n_sims, a + size))), ys=ys[a: a + size],
                 truths=truths[a: a + size], seeds=fit_seeds[a: a + size])
            for a in range(0, n_sims, size)]  # fmt: skip
    start = time.perf_counter()
    results = run_jobs(_run_chunk, jobs, client=client, chains=chains, workers=workers,
                       progress=progressbar, label=f"SBC ({n_sims} simulations)")  # fmt: skip
    rows, errors, secs, divs, ess, compiles, compile_s = [], [], [], [], [], 0, 0.0
    for res, chunk in zip(results, jobs, strict=True):
        if not res.ok:
            errors += [(s, res.error) for s in chunk["sims"]]
            continue
        out = res.value
        rows += out["rows"]
        errors += out["errors"]
        secs += out["seconds"]
        divs += out["divergences"]
        ess += out["ess"]
        compiles += out["compilations"]
        compile_s += out["compile_seconds"]
    ranks = pd.DataFrame({s: r for s, r in rows}).T.sort_index()
    ranks.index.name = "simulation"
    ess_frame = pd.DataFrame({s: e for s, e in ess}).T.reindex(ranks.index)
    n_draws = len(range(0, chains * draws, thin))
    failed = pd.DataFrame(errors, columns=["simulation", "error"])
    divergences = pd.Series(dict(divs), name="divergences", dtype=int).sort_index()
    settings = {"formula": formula, "family": family, "sampler": sampler, "draws": draws,
                "tune": tune, "chains": chains, "thin": thin, "seed": seed,
                "options": {k: v for k, v in options.items() if isinstance(v, (str, bool, int,
                                                                              float))}}  # fmt: skip
    return SBCResult(ranks.astype(int) if len(ranks) else ranks, n_draws, failed, divergences,
                     compiles, time.perf_counter() - start, secs, compile_s, settings,
                     ess_frame)  # fmt: skip
