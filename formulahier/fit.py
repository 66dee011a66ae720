"""The one-line entry points: :func:`model` builds, :func:`fit` builds and samples."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import construct, results
from . import validate as check
from .approx import METHODS, approximate, khat_verdict
from .backend import BlockInfo, add_exact_effects, bambi_posterior, observed_data
from .comparison import compare
from .errors import (
    FitFileError,
    MemoryLimitError,
    OptionError,
    SamplerError,
)
from .fit_tools import FitTools
from .fit_verbs import FitVerbs
from .formula import BrmsFormula
from .priors import PriorSpec, Resolved
from .progress import progress_on_stderr
from .spec import MODEL_OPTIONS, ModelSpec

if TYPE_CHECKING:
    import bambi
    import pymc
    import xarray as xr
    from matplotlib.axes import Axes

__all__ = ["Fit", "Model", "compare", "fit", "get_prior", "load", "model"]

SAMPLERS: dict[str, tuple[str, ...]] = {
    "auto": (),
    "pymc": (),
    "nutpie": ("nutpie",),
    "numpyro": ("numpyro", "jax"),
    "blackjax": ("blackjax", "jax"),
}
_EXTRA = {"nutpie": "nutpie", "numpyro": "jax", "blackjax": "jax"}


def check_method(method: str) -> str:
    """Validate ``method``: ``"nuts"`` (MCMC) or one of the approximations of :mod:`.approx`."""
    key = method.lower() if isinstance(method, str) else method
    if key not in METHODS:
        hint = check.did_you_mean(key, METHODS) if isinstance(key, str) else ""
        raise SamplerError(f"Unknown method {method!r}{hint}; `method` is one of {list(METHODS)}.")
    return key


def auto_sampler(collapsed: bool, nobs: int, n_effects: int) -> str:
    """The NUTS implementation ``sampler="auto"`` picks (rule measured in docs/performance.md).

    nutpie's NUTS loop is 2-3x faster than PyMC's, but it compiles the model with numba in every
    new process (10-40 s even with a warm cache), which PyMC's sampler does not pay. So nutpie
    is chosen only where one gradient is costly: a model that is not collapsed, with at least
    ``AUTO_NUTPIE_CELLS`` rows x group-level columns; PyMC's sampler otherwise.
    """
    if importlib.util.find_spec("nutpie") is None or collapsed:
        return "pymc"
    return "nutpie" if nobs * max(n_effects, 1) >= AUTO_NUTPIE_CELLS else "pymc"


AUTO_NUTPIE_CELLS = 200_000


def check_sampler(sampler: str) -> str:
    """Validate a sampler name and that its optional packages are importable."""
    key = sampler.lower() if isinstance(sampler, str) else sampler
    if key not in SAMPLERS:
        hint = check.did_you_mean(key, SAMPLERS) if isinstance(key, str) else ""
        raise SamplerError(
            f"Unknown sampler {sampler!r}{hint}; `sampler` is one of {sorted(SAMPLERS)}."
        )
    missing = [p for p in SAMPLERS[key] if importlib.util.find_spec(p) is None]
    if missing:
        raise SamplerError(
            f"sampler={key!r} needs {', '.join(missing)}, which is not installed. Install it with "
            f"`pip install 'formulahier[{_EXTRA[key]}]'`, or use sampler='pymc'."
        )
    return key


class Model:
    """A multilevel model built from an lme4/brms formula, ready to sample.

    Create it with :func:`formulahier.model`. Attributes: ``spec`` (what the model is),
    ``data`` (the cleaned copy used), ``bambi`` (the :class:`bambi.Model`), ``nobs``.
    """

    def __init__(
        self,
        formula: str | BrmsFormula,
        data: Any,
        *,
        family: str = "gaussian",
        link: str | None = None,
        priors: Mapping[str, Any] | Sequence[PriorSpec] | None = None,
        correlated: bool | Mapping[str, bool] = True,
        noncentered: bool | str | Mapping[str, bool | str] = "auto",
        lkj_eta: float = 2.0,
        collapse: bool | str = "auto",
    ) -> None:
        # one way: options -> spec -> data and the complete spec -> backend -> brms priors
        # (formulahier.construct); nothing is written back into what a stage has built
        spec = construct.resolve_spec(
            formula,
            family=family,
            link=link,
            correlated=correlated,
            noncentered=noncentered,
            lkj_eta=lkj_eta,
            collapse=collapse,
        )
        done = construct.complete_spec(spec, data, priors)
        self.spec: ModelSpec = done.spec
        self.data, self.dropped = done.data, done.dropped
        self.parameterization = done.parameterization
        self.priors, self.prior_specs = done.priors, done.prior_specs
        # constructor options, as given: enough (with the data) to rebuild this model
        self.options = {
            "family": family,
            "link": link,
            "priors": priors,
            "correlated": correlated,
            "noncentered": noncentered,
            "lkj_eta": lkj_eta,
            "collapse": collapse,
        }
        self.bambi = construct.build_backend(done)
        self.prior_resolution: Resolved | None = None
        if self.prior_specs:  # brms-style priors, matched against Bambi's terms
            self.prior_resolution = construct.brms_priors(
                self.bambi, done.blocks, self.prior_specs
            )

    @property
    def formula(self) -> str:
        """The formula as written."""
        return self.spec.formula

    @property
    def nobs(self) -> int:
        """Number of observations used (after dropping incomplete rows)."""
        return len(self.data)

    @property
    def blocks(self) -> list[BlockInfo]:
        """The group-level blocks as built (:class:`~formulahier.backend.BlockInfo`)."""
        return self.bambi.fh_blocks

    def build(self) -> pymc.Model:
        """Build (once) and return the PyMC model that is sampled.

        For a collapsed gaussian model (``collapse``) that is the model with the group effects
        integrated out; :attr:`collapsed` says whether it is.
        """
        if not self.bambi.built or self.bambi.fh_built_collapsed != self.bambi.fh_collapsed:
            self.bambi.build()
        return self.bambi.backend.model

    @property
    def collapsed(self) -> bool:
        """Whether the group effects are integrated out while sampling (gaussian models)."""
        return self.bambi.fh_collapsed

    @property
    def pymc_model(self) -> pymc.Model:
        """The PyMC model, built on first access."""
        return self.build()

    def prior_summary(self) -> pd.DataFrame:
        """Every prior slot and its prior, like brms's ``prior_summary`` (see :func:`get_prior`)."""
        from .prior_check import prior_table

        eta_groups = dict(self.spec.lkj_eta_groups)
        return prior_table(
            self.bambi, self.spec.lkj_eta, eta_groups, self.prior_resolution, self.priors
        )

    def prior_predictive(self, draws: int = 500, seed: int | None = None) -> xr.DataTree:
        """Draws from the prior and the prior predictive (no MCMC), as an ArviZ DataTree.

        Groups ``prior`` (parameters), ``prior_predictive`` (the response per observation)
        and ``observed_data``.
        """
        from .prior_check import prior_predictive

        draws, seed = check.positive_int(draws, "draws"), check.seed(seed)
        if not self.bambi.built or self.bambi.fh_built_collapsed:
            self.bambi.build(collapsed=False)  # the full model: it draws the group effects
        return prior_predictive(self.bambi, draws=draws, seed=seed)

    def plot_prior_predictive(
        self,
        draws: int = 500,
        seed: int | None = None,
        idata: xr.DataTree | None = None,
        ax: Axes | None = None,
    ) -> Axes:
        """Plot the prior predictive response against the observed one; returns the Axes.

        Pass ``idata`` from :meth:`prior_predictive` to reuse draws; ``ax`` to draw on it.
        """
        from .prior_check import plot_prior_predictive

        idata = self.prior_predictive(draws, seed) if idata is None else idata
        return plot_prior_predictive(idata, self.bambi, ax=ax)

    def fit(
        self,
        *,
        sampler: str = "auto",
        method: str = "nuts",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        seed: int | None = None,
        progressbar: bool = True,
        **sampler_kwargs: Any,
    ) -> Fit:
        """Sample the posterior (or approximate it) and return a :class:`Fit`.

        Parameters
        ----------
        sampler : {"auto", "pymc", "nutpie", "numpyro", "blackjax"}
            NUTS implementation (through Bambi). ``"auto"`` (default): PyMC's sampler, or nutpie
            where it is installed and one gradient is costly (:func:`auto_sampler`).
        method : {"nuts", "laplace", "pathfinder", "advi"}
            ``"nuts"`` (default): MCMC. The others are fast approximations (:mod:`.approx`)
            with a Pareto k-hat check stated in the summary; ``draws x chains`` draws are kept.
        draws, tune, chains : int
            Kept draws, warm-up draws and chains (``tune`` is unused by the approximations).
        seed : int, optional
            Same seed, same draws.
        progressbar : bool
            Show PyMC's progress bar.
        **sampler_kwargs
            Passed to :func:`pymc.sample` (``target_accept`` defaults to 0.9 here; raise it to
            0.95 if divergences remain; ``cores=...``).

        """
        how = check_method(method)
        key = check_sampler(sampler)
        check.sampling(draws, tune, chains, seed)
        check.progressbar(progressbar)
        if how != "nuts" and sampler_kwargs:
            raise OptionError(
                f"method={how!r} takes no sampler options; got {sorted(sampler_kwargs)}. "
                "They belong to method='nuts'."
            )
        if key == "auto":
            n_effects = sum(info.size for info in self.blocks)
            key = auto_sampler(self.collapsed, self.nobs, n_effects)
        pass_on = check.sampler_options(sampler_kwargs, key, "Model.fit()")
        if how != "nuts":
            return self._approximate(how, draws, tune, chains, seed, progressbar)
        if key == "pymc":
            pass_on.setdefault("cores", min(chains, os.cpu_count() or 1))
        # 0.9 instead of PyMC's 0.8: removes most divergences at ~10-30% more gradient
        # evaluations (measurements in docs/performance.md)
        if "target_accept" not in (pass_on.get("nuts") or {}):
            sampler_kwargs.setdefault("target_accept", 0.9)
            pass_on.setdefault("target_accept", 0.9)
        self.build()
        start = time.perf_counter()
        try:
            with progress_on_stderr(progressbar):  # never into stdout; full width in logs
                idata = self.bambi.fit(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    random_seed=seed,
                    inference_method=key,
                    progressbar=progressbar,
                    # our summary's diagnostics replace PyMC's own lines (which also warn on
                    # the constant diagonal of a correlation matrix)
                    **{"compute_convergence_checks": False, **pass_on},
                )
        except MemoryError:
            raise MemoryLimitError(self._draws_memory_advice(draws, chains)) from None
        posterior = self._finish_posterior(idata["posterior"].to_dataset(), idata, seed)
        idata["posterior"] = posterior
        seconds = time.perf_counter() - start
        settings = {"sampler": key, "draws": draws, "tune": tune, "chains": chains, "seed": seed}
        settings["method"] = "nuts"
        settings["construction"] = "collapsed" if self.collapsed else "full"
        # plain-valued sampler options (target_accept, max_treedepth, ...): kept by update()
        # and saved with the fit; "cores" depends on the machine and is not kept
        settings["sampler_kwargs"] = {
            k: v
            for k, v in sampler_kwargs.items()
            if k != "cores" and isinstance(v, (bool, int, float, str))
        }
        return Fit(self, idata, settings, seconds)

    def _finish_posterior(self, posterior, idata, seed):
        """Drop the Cholesky factors; a collapsed fit gets its group effects drawn exactly."""
        drop = [b.corr + "_chol" for b in self.blocks if b.corr]
        posterior = posterior.drop_vars([v for v in drop if v in posterior])
        if self.collapsed:  # the group effects, drawn exactly given each posterior draw
            posterior = add_exact_effects(self.bambi, posterior, seed)
            idata["observed_data"] = observed_data(self.bambi)
        return posterior

    def _approximate(self, how: str, draws: int, tune: int, chains: int, seed, progressbar) -> Fit:
        """A :class:`Fit` from an approximate posterior (:mod:`.approx`)."""
        import xarray as xr

        self.build()
        start = time.perf_counter()
        result = approximate(self.pymc_model, how, draws, chains, seed, progressbar)
        idata = xr.DataTree()
        if not self.collapsed:
            idata["observed_data"] = observed_data(self.bambi)
        posterior = result.posterior
        posterior = posterior[[v for v in posterior.data_vars if not v.endswith("__")]]
        posterior = self._finish_posterior(bambi_posterior(self.bambi, posterior), idata, seed)
        idata["posterior"] = posterior
        seconds = time.perf_counter() - start
        # tune is unused here but kept, so that update(method="nuts") warms up as asked
        settings = {"sampler": "auto", "draws": draws, "tune": tune, "chains": chains, "seed": seed}
        settings.update(method=how, khat=result.khat, verdict=khat_verdict(how, result.khat))
        settings["construction"] = "collapsed" if self.collapsed else "full"
        settings["sampler_kwargs"] = {"method": how}  # update() refits with the same method
        return Fit(self, idata, settings, seconds)

    def _draws_memory_advice(self, draws: int, chains: int) -> str:
        n_values = sum(info.size * len(info.data.groups) for info in self.blocks)
        gb = 2 * n_values * draws * chains * 8 / 1e9  # the effects and their offsets
        return (
            f"Out of memory while sampling: keeping {chains} chains x {draws} draws of "
            f"{n_values:,} group-level values needs about {gb:.1f} GB. Keep fewer draws "
            "(draws=..., chains=...), or use a machine with more memory."
        )

    def __repr__(self) -> str:
        return f"<formulahier.Model {self.formula!r}, family={self.spec.family}, nobs={self.nobs}>"


class Fit(FitVerbs, FitTools):
    """A fitted multilevel model: posterior draws plus lme4/brms-style results.

    Attributes
    ----------
    idata : xarray.DataTree
        ArviZ DataTree with ``posterior``, ``sample_stats`` and ``observed_data``.
    model : bambi.Model
        The Bambi model. Its ``predict`` and ``interpret`` know only the population-level part;
        use :meth:`predict` and :meth:`conditional_effects` for the whole model.
    spec : ModelSpec
        What the model is.
    settings : dict
        Sampler, draws, tune, chains, seed.
    seconds : float
        Wall time spent sampling.

    """

    def __init__(
        self, fh_model: Model, idata: xr.DataTree, settings: dict, seconds: float
    ) -> None:
        self.fh_model = fh_model
        self.idata = idata
        self.settings = settings
        self.seconds = seconds
        self._view = results.PosteriorView(idata, fh_model.bambi, fh_model.blocks)

    @property
    def model(self) -> bambi.Model:
        """The :class:`bambi.Model` behind the fit."""
        return self.fh_model.bambi

    @property
    def spec(self) -> ModelSpec:
        """What the model is."""
        return self.fh_model.spec

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.fh_model.nobs

    def fixef(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Population-level effects (lme4 ``fixef``, brms ``fixef``), one row per term."""
        return self._view.fixef(ci_prob)

    def ranef(self, ci_prob: float = 0.95) -> dict[str, pd.DataFrame]:
        """Group-level deviations per grouping factor: rows are levels, columns (effect, stat)."""
        return self._view.ranef(ci_prob)

    def coef(self, ci_prob: float = 0.95) -> dict[str, pd.DataFrame]:
        """Population plus group-level effects per level (lme4 ``coef``), like :meth:`ranef`."""
        return self._view.coef(ci_prob)

    def varcorr(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Standard deviations and correlations, like R's ``as.data.frame(VarCorr(m))``."""
        return self._view.varcorr(ci_prob)

    def prior_summary(self) -> pd.DataFrame:
        """The priors the model was fitted with, one row per slot (brms ``prior_summary``)."""
        return self.fh_model.prior_summary()

    def kfold(self, K: int = 10, *, folds=None, group=None, seed=None, client=None, **options):
        """K-fold cross-validation (brms ``kfold``): held-out elpd from K refits.

        ``folds``: ``None`` (random), ``"stratified"`` or ``"grouped"`` by the column ``group``
        (held-out levels get new-level draws), or one fold id per row; ``client``: a Dask
        ``Client`` (``None``: here); ``options``: sampler settings for the refits.
        """
        from .kfold import kfold

        return kfold(self, K, folds=folds, group=group, seed=seed, client=client, **options)

    def summary(self, ci_prob: float = 0.95) -> results.Summary:
        """All tables of the printed summary, with diagnostics."""
        return results.Summary.from_view(self._view, self._header(), ci_prob)

    def _header(self) -> dict:
        return {
            "formula": self.spec.formula,
            "dpars": [text for _, text in self.spec.dpars],
            "family": self.model.family.name,
            "link": {k: v.name for k, v in self.model.family.link.items()},
            "nobs": self.nobs,
            "data_name": self.fh_model.data.attrs.get("name"),  # pandas attrs, if named
            "levels": self._view.levels(),
            "settings": self.settings,
            "seconds": self.seconds,
        }

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def get_prior(formula: str | BrmsFormula, data: Any, **options: Any) -> pd.DataFrame:
    """The prior slots of a model and their priors, like brms's ``get_prior``.

    Parameters
    ----------
    formula : str
        lme4/brms formula.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        The data (default priors are scaled to it).
    **options
        ``family``, ``link``, ``priors``, ``correlated``, ... as for :func:`model`.

    Returns
    -------
    pandas.DataFrame
        One row per slot: ``prior`` (brms spelling), ``class``, ``coef``, ``group``, ``source``
        (``"default"``, ``"user"``, ``"(vectorized)"``), ``pymc`` and ``parameter`` (the PyMC
        variable it reaches). Set any slot with ``fh.prior(prior, class, coef, group)``.

    """
    _check_model_options(options, "fh.get_prior()")
    return Model(formula, data, **options).prior_summary()


_SAMPLING_HINT = "it is a sampling option: pass it to .fit() (or use fh.fit())."


def _check_model_options(options: Mapping[str, Any], where: str) -> None:
    allowed = MODEL_OPTIONS
    sampling = (
        "sampler", "method", "draws", "tune", "chains", "seed", "progressbar", "target_accept"
    )
    check.check_keywords(options, allowed, where, dict.fromkeys(sampling, _SAMPLING_HINT))


def model(formula: str | BrmsFormula, data: Any, **options: Any) -> Model:
    """Build a multilevel model from an lme4/brms formula without sampling.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        Never modified.
    **options
        ``family``, ``link``, ``priors``, ``correlated``, ``noncentered``, ``lkj_eta``,
        ``collapse``; see
        :func:`fit`.

    Returns
    -------
    Model
        Call ``.fit(...)`` to sample.

    """
    _check_model_options(options, "fh.model()")
    return Model(formula, data, **options)


def fit(
    formula: str | BrmsFormula,
    data: Any,
    *,
    family: str = "gaussian",
    link: str | None = None,
    priors: Mapping[str, Any] | Sequence[PriorSpec] | None = None,
    correlated: bool | Mapping[str, bool] = True,
    noncentered: bool | str | Mapping[str, bool | str] = "auto",
    lkj_eta: float = 2.0,
    collapse: bool | str = "auto",
    sampler: str = "auto",
    method: str = "nuts",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
    **sampler_kwargs: Any,
) -> Fit:
    """Fit a Bayesian multilevel model written as an lme4/brms formula.

    Parameters
    ----------
    formula : str
        lme4/brms formula: ``(x | g)`` correlated intercept and slope per level of ``g``,
        ``(x || g)`` independent ones, ``(1 | a/b)`` nested, ``(1 | a) + (1 | b)`` crossed.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        Never modified. Rows with missing values in used columns are dropped with a warning.
    family, link : str
        Response family (Bambi names) and link (``None``: the family's default).
    priors : list of fh.prior(...) or dict, optional
        brms-style priors by class, ``[fh.prior("normal(0, 0.1)", "b", coef="TEMP"),
        fh.prior("exponential(1)", "sd", group="station"), fh.prior("lkj(4)", "cor")]``
        (docs/priors.md; ``fh.get_prior`` lists the slots), or Bambi's dict keyed by term name.
    correlated : bool or dict
        ``True`` (lme4's meaning): effects in one ``|`` bar share an LKJ correlation matrix.
        ``False``: independent (Bambi's behaviour). A dict sets it per grouping factor.
    noncentered : bool, "auto" or dict
        ``True``: ``u = (L z)^T``, best with few observations per group. ``False``:
        hierarchically centered ``beta_j ~ MvNormal(b, S)``, best with many. ``"auto"``
        (default): chosen per grouping factor from the data (docs/performance.md); the choice
        is in ``fit.fh_model.parameterization``. Per factor if a dict.
    lkj_eta : float
        LKJ shape of the correlation prior (default 2: mildly favours small correlations).
    collapse : "auto", bool
        Gaussian models with one grouping factor: integrate the group effects out while
        sampling (exact; the sampler sees only the hyperparameters) and draw them exactly
        afterwards. ``"auto"`` (default) wherever that is exact, ``False`` never, ``True``
        raises if the model does not allow it. The summary header says when it ran.
    sampler : {"auto", "pymc", "nutpie", "numpyro", "blackjax"}
        NUTS implementation. ``"auto"`` (default): PyMC's sampler, or nutpie where it is
        installed and one gradient is costly (rule and measurements in docs/performance.md).
        The summary header names the one that ran.
    method : {"nuts", "laplace", "pathfinder", "advi"}
        ``"nuts"`` (default): MCMC. ``"laplace"`` / ``"pathfinder"`` (pymc-extras) and
        ``"advi"`` (PyMC) are fast approximations: same :class:`Fit` and summary, whose header
        names the method and whose diagnostics give the Pareto k-hat of the importance ratios
        and say plainly when not to trust it (docs/performance.md).
    draws, tune, chains : int
        Draws kept per chain, warm-up draws per chain, number of chains.
    seed : int, optional
        Random seed; the same seed gives the same draws.
    progressbar : bool
        Show PyMC's progress bar.
    **sampler_kwargs
        Passed to :func:`pymc.sample`, e.g. ``target_accept=0.95``.

    Returns
    -------
    Fit
        ``print(fit)`` shows the lme4/brms-style summary.

    Examples
    --------
    >>> import formulahier as fh
    >>> ozone = fh.datasets.load("ozone")
    >>> fit = fh.fit("log_ozone ~ TEMP + (TEMP | station)", ozone)  # doctest: +SKIP
    >>> print(fit)  # doctest: +SKIP

    """
    # every sampling option checked before the model is built
    check_method(method)
    key = check_sampler(sampler)
    check.sampling(draws, tune, chains, seed)
    check.progressbar(progressbar)
    check.sampler_options(sampler_kwargs, "pymc" if key == "auto" else key, "fh.fit()")
    built = Model(
        formula,
        data,
        family=family,
        link=link,
        priors=priors,
        correlated=correlated,
        noncentered=noncentered,
        lkj_eta=lkj_eta,
        collapse=collapse,
    )
    return built.fit(
        sampler=sampler,
        method=method,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progressbar=progressbar,
        **sampler_kwargs,
    )


def load(path: str | os.PathLike[str]) -> Fit:
    """Read a fit written by :meth:`Fit.save`: a working :class:`Fit`, without sampling.

    The model is rebuilt from the stored formula, options and data; the posterior is read back.
    A file from another formulahier version loads if its format is known, else the error says
    which version wrote it. No code from the file is run: its formulas are checked against the
    safe grammar of :func:`formulahier.safety.check_formula_safe` before anything reads them,
    and a file changed after it was saved (checksum mismatch) is refused.

    Raises
    ------
    FitFileError
        Missing, damaged, changed or too new a file (see :func:`formulahier.io.read_fit`).
    FormulaError
        A stored formula outside the safe grammar.

    """
    from . import io
    from .formula import bf

    saved = io.read_fit(path)
    formula = bf(saved.formula, **dict(saved.dpars)) if saved.dpars else saved.formula
    rebuilt = Model(formula, saved.data, **saved.options)
    posterior = saved.idata["posterior"]
    expected = [t for b in rebuilt.blocks for t in b.block.bambi_terms]
    expected += [b.corr for b in rebuilt.blocks if b.corr]
    missing = [v for v in expected if v not in posterior.data_vars]
    if missing:
        raise FitFileError(
            f"{path} (written by formulahier {saved.version}) lacks the variables {missing} "
            "that this version builds for the model; refit it with fit.update() or the "
            "formulahier version that wrote it."
        )
    return Fit(rebuilt, saved.idata, saved.settings, saved.seconds)
