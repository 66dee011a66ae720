""":class:`Model`: a multilevel model built from an lme4/brms formula, ready to sample."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import construct
from . import validate as check
from .approx import approximate
from .approx_check import khat_verdict
from .backend import BlockInfo, add_exact_effects, bambi_posterior, observed_data
from .callback_nuts import sample_callbacks
from .errors import (
    MemoryLimitError,
    OptionError,
)
from .fitted import Fit
from .formula import BrmsFormula
from .priors import Resolved
from .progress import progress_on_stderr, quiet_logger
from .samplers import (
    auto_sampler,
    check_method,
    check_options,
    check_sampler,
    gradient_cells,
    nutpie_route,
    sampler_options,
)
from .settings import (
    MODEL_OPTIONS,
    SAMPLER_SETTINGS,
    ModelOptions,
    SamplerSettings,
    takes_keywords,
)
from .spec import ModelSpec

if TYPE_CHECKING:
    import pymc
    import xarray as xr
    from matplotlib.axes import Axes


__all__ = ["Model", "check_settings", "model_options"]


class Model:
    """A multilevel model built from an lme4/brms formula, ready to sample.

    Create it with :func:`formulahier.model`. Attributes: ``spec`` (what the model is),
    ``data`` (the cleaned copy used), ``bambi`` (the :class:`bambi.Model`), ``nobs``.
    """

    @takes_keywords(ModelOptions)
    def __init__(self, formula: str | BrmsFormula, data: Any, **options: Any) -> None:
        """Build the model from ``formula`` and ``data`` (never modified) with these options."""
        # one way: options -> spec -> data and the complete spec -> backend -> brms priors
        # (formulahier.construct); nothing is written back into what a stage has built
        self.model_options = model_options(options, "Model()")
        spec = construct.resolve_spec(formula, self.model_options)
        done = construct.complete_spec(spec, data, self.model_options.priors)
        self.spec: ModelSpec = done.spec
        self.data, self.dropped = done.data, done.dropped
        self.parameterization = done.parameterization
        self.priors, self.prior_specs = done.priors, done.prior_specs
        self.bambi = construct.build_backend(done)
        self.prior_resolution: Resolved | None = None
        if self.prior_specs:  # brms-style priors, matched against Bambi's terms
            self.prior_resolution = construct.brms_priors(
                self.bambi, done.blocks, self.prior_specs
            )

    @property
    def options(self) -> dict[str, Any]:
        """The constructor options, as given: enough (with the data) to rebuild this model."""
        return self.model_options.keywords()

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

    @takes_keywords(SamplerSettings)
    def fit(self, **settings: Any) -> Fit:
        """Sample the posterior (or approximate it) and return a :class:`Fit`.

        The keywords are those of :class:`~formulahier.settings.SamplerSettings` (listed
        below): ``sampler``, ``method``, ``draws``, ``tune``, ``chains``, ``seed``,
        ``progressbar``; any other keyword goes to :func:`pymc.sample` (``target_accept``
        defaults to 0.9 here; raise it to 0.95 if divergences remain; ``cores=...``).
        """
        return self.sample(SamplerSettings.from_keywords(settings))

    def sample(self, settings: SamplerSettings) -> Fit:
        """:meth:`fit` with its keywords already made into :class:`SamplerSettings`."""
        how, key = _check_named(settings)
        sampler_kwargs = dict(settings.sampler_kwargs)
        draws, tune, chains, seed = settings.draws, settings.tune, settings.chains, settings.seed
        progressbar = settings.progressbar
        if how != "nuts" and sampler_kwargs:
            raise OptionError(
                f"method={how!r} takes no sampler options; got {sorted(sampler_kwargs)}. "
                "They belong to method='nuts'."
            )
        n_values = sum(info.size * len(info.data.groups) for info in self.blocks)
        n_effects = sum(info.size for info in self.blocks)
        cells = gradient_cells(self.collapsed, self.nobs, n_effects, n_values)
        asked = key
        if key == "auto":
            key = auto_sampler(cells, self.collapsed)
        try:
            pass_on = sampler_options(sampler_kwargs, key, "Model.fit()")
        except OptionError as err:
            if asked != "auto":
                raise
            raise OptionError(
                f"{err} (sampler='auto' picked {key!r} for this model: name the sampler, "
                "e.g. sampler='pymc', to use another sampler's options)"
            ) from None
        if how != "nuts":
            return self._approximate(how, settings)
        if key == "pymc":
            pass_on.setdefault("cores", min(chains, os.cpu_count() or 1))
        # 0.9 instead of PyMC's 0.8: removes most divergences at ~10-30% more gradient
        # evaluations; a collapsed model has no funnel: 0.8, ~1.5x fewer leapfrog steps, same
        # ESS (measurements in docs/performance.md)
        if "target_accept" not in (pass_on.get("nuts") or {}):
            default = 0.8 if self.collapsed else 0.9
            sampler_kwargs.setdefault("target_accept", default)
            pass_on.setdefault("target_accept", default)
        self.build()
        start, idata = time.perf_counter(), None
        try:
            # the progress bar never into stdout (full width in logs); PyMC's info lines
            # ("Initializing NUTS", "Sampling 4 chains ... took") left out: the summary's
            # header and diagnostics say the same; its warnings still show
            with progress_on_stderr(progressbar), quiet_logger("pymc", logging.WARNING):
                if key == "nutpie" and nutpie_route(cells, self.collapsed) == "callbacks":
                    idata = self._nutpie_callbacks(draws, tune, chains, seed, progressbar, pass_on)
                if idata is None:
                    idata = self.bambi.fit(
                        draws=draws,
                        tune=tune,
                        chains=chains,
                        random_seed=seed,
                        inference_method=key,
                        progressbar=progressbar,
                        # our summary's diagnostics replace PyMC's own lines (which also warn
                        # on the constant diagonal of a correlation matrix)
                        **{"compute_convergence_checks": False, **pass_on},
                    )
        except MemoryError:
            raise MemoryLimitError(self._draws_memory_advice(draws, chains)) from None
        posterior = self._finish_posterior(idata["posterior"].to_dataset(), idata, seed)
        idata["posterior"] = posterior
        seconds = time.perf_counter() - start
        # plain-valued sampler options (target_accept, max_treedepth, ...): kept by update()
        # and saved with the fit; "cores" depends on the machine and is not kept
        kept = {
            k: v
            for k, v in sampler_kwargs.items()
            if k != "cores" and isinstance(v, (bool, int, float, str))
        }
        record = self._record(settings, key, {"method": "nuts"}, kept)
        return Fit(self, idata, record, seconds)

    def _nutpie_callbacks(self, draws, tune, chains, seed, progressbar, pass_on):
        """Nutpie with a cheap gradient: the log-density as Python callbacks (no numba cfunc).

        ``None`` (nutpie's own route instead) when ``pass_on`` holds options of ``pm.sample``
        other than nutpie's settings.
        """
        if not set(pass_on) <= {"nuts", "target_accept"}:
            return None
        nuts = dict(pass_on.get("nuts") or {})
        if "target_accept" in pass_on:
            nuts.setdefault("target_accept", pass_on["target_accept"])
        idata = sample_callbacks(
            self.pymc_model, draws=draws, tune=tune, chains=chains, seed=seed,
            progressbar=progressbar, **nuts,
        )  # fmt: skip
        idata["posterior"] = bambi_posterior(self.bambi, idata["posterior"].to_dataset())
        if not self.collapsed:
            idata["observed_data"] = observed_data(self.bambi)
        return idata

    def _construction(self) -> dict[str, str]:
        """``construction`` (collapsed or full) and, for nested factors, how they collapsed."""
        if not self.collapsed:
            return {"construction": "full"}
        plan = self.bambi.fh_plan
        how = "" if plan is None else plan.description
        return {"construction": "collapsed", **({"collapsed_levels": how} if how else {})}

    def _finish_posterior(self, posterior, idata, seed):
        """Drop the Cholesky factors; a collapsed fit gets its group effects drawn exactly."""
        drop = [b.corr + "_chol" for b in self.blocks if b.corr]
        posterior = posterior.drop_vars([v for v in drop if v in posterior])
        if self.collapsed:  # the group effects, drawn exactly given each posterior draw
            posterior = add_exact_effects(self.bambi, posterior, seed)
            idata["observed_data"] = observed_data(self.bambi)
        return posterior

    def _approximate(self, how: str, settings: SamplerSettings) -> Fit:
        """A :class:`Fit` from an approximate posterior (:mod:`.approx`)."""
        import xarray as xr

        self.build()
        start = time.perf_counter()
        seed = settings.seed
        result = approximate(
            self.pymc_model, how, settings.draws, settings.chains, seed, settings.progressbar,
            collapsed=self.collapsed, columns=self._reported,
        )  # fmt: skip
        idata = xr.DataTree()
        if not self.collapsed:
            idata["observed_data"] = observed_data(self.bambi)
        posterior = result.posterior
        posterior = posterior[[v for v in posterior.data_vars if not v.endswith("__")]]
        drawn = time.perf_counter()
        posterior = self._finish_posterior(bambi_posterior(self.bambi, posterior), idata, seed)
        idata["posterior"] = posterior
        seconds = time.perf_counter() - start
        phases = {**result.phases, "finish": time.perf_counter() - drawn}
        # tune is unused here but kept, so that update(method="nuts") warms up as asked;
        # sampler_kwargs holds the method: update() refits with the same method
        check = result.check
        run = {"method": how, "khat": check.khat, "verdict": khat_verdict(how, check.khat, check)}
        if check.resampled:
            run["resampled"] = "PSIS"
        run["phases"] = {k: round(v, 4) for k, v in phases.items()}
        return Fit(self, idata, self._record(settings, "auto", run, {"method": how}), seconds)

    def _reported(self, posterior) -> dict:
        """``name -> (draws,)`` of what the summary reports, at draws of the PyMC model.

        For the approximations' verdict, under the names the summary shows (``b_Days``,
        ``sd(Days)``, ``cor(Intercept,Days)``, ``sigma``; ``sd(Intercept) (~a)`` where there
        are several grouping factors), read off the draws by :class:`~.results.PosteriorView`.
        """
        import xarray as xr

        from .brms_names import brms_label
        from .results import PosteriorView

        idata = xr.DataTree()
        idata["posterior"] = bambi_posterior(self.bambi, posterior)
        view = PosteriorView(idata, self.bambi, self.blocks)
        named = {f"b_{brms_label(k)}": v for k, v in view.population_draws().items()}
        factors = view.factors()
        for factor in factors:
            for label, da in view.group_draws(factor).items():
                named[label if len(factors) == 1 else f"{label} (~{factor})"] = da
        named.update(view.family_draws())
        return {k: v.transpose("chain", "draw").to_numpy().reshape(-1) for k, v in named.items()}

    def _record(
        self, settings: SamplerSettings, sampler: str, run: dict[str, Any], kept: dict[str, Any]
    ) -> dict[str, Any]:
        """What a :class:`Fit` keeps of how it was sampled (``fit.settings``, saved with it)."""
        record: dict[str, Any] = {"sampler": sampler}
        record.update({k: getattr(settings, k) for k in ("draws", "tune", "chains", "seed")})
        record.update(run)
        record.update(self._construction())
        record["sampler_kwargs"] = kept
        return record

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


_SAMPLING_HINT = "it is a sampling option: pass it to .fit() (or use fh.fit())."


def model_options(keywords: Mapping[str, Any], where: str) -> ModelOptions:
    """The keywords as :class:`ModelOptions`; a sampling keyword or an unknown one refused."""
    sampling = dict.fromkeys((*SAMPLER_SETTINGS, "target_accept"), _SAMPLING_HINT)
    check.check_keywords(keywords, MODEL_OPTIONS, where, sampling)
    return ModelOptions(**keywords)


def _check_named(settings: SamplerSettings) -> tuple[str, str]:
    """Check the named settings; return the method and the sampler as checked."""
    how = check_method(settings.method)
    key = check_sampler(settings.sampler)
    check.sampling(settings.draws, settings.tune, settings.chains, settings.seed)
    check.progressbar(settings.progressbar)
    return how, key


def check_settings(settings: SamplerSettings, where: str) -> None:
    """Check every sampler setting before a model is built.

    ``sampler="auto"``: against every sampler it may pick (:meth:`Model.sample` checks its pick).
    """
    _, key = _check_named(settings)
    check_options(settings.sampler_kwargs, key, where)
