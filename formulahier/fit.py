"""The one-line entry points: :func:`model` builds, :func:`fit` builds and samples."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from . import results
from .backend import HierModel
from .data import prepare_data
from .errors import FormulaError, FormulahierError, SamplerError
from .formula import build_spec
from .spec import ModelSpec

__all__ = ["Fit", "Model", "fit", "model"]

SAMPLERS: dict[str, tuple[str, ...]] = {
    "pymc": (),
    "nutpie": ("nutpie",),
    "numpyro": ("numpyro", "jax"),
    "blackjax": ("blackjax", "jax"),
}
_EXTRA = {"nutpie": "nutpie", "numpyro": "jax", "blackjax": "jax"}


def check_sampler(sampler: str) -> str:
    """Validate a sampler name and that its optional packages are importable."""
    key = str(sampler).lower()
    if key not in SAMPLERS:
        raise SamplerError(f"Unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}.")
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
        formula: str,
        data,
        *,
        family: str = "gaussian",
        link: str | None = None,
        priors: Mapping[str, Any] | None = None,
        correlated: bool | Mapping[str, bool] = True,
        noncentered: bool | Mapping[str, bool] = True,
        lkj_eta: float = 2.0,
    ):
        self.spec: ModelSpec = build_spec(
            formula,
            family=family,
            link=link,
            correlated=correlated,
            noncentered=noncentered,
            lkj_eta=lkj_eta,
        )
        self.data, self.dropped = prepare_data(data, self.spec)
        self.priors = dict(priors or {})
        # constructor options, as given: enough (with the data) to rebuild this model
        self.options = {
            "family": family,
            "link": link,
            "priors": priors,
            "correlated": correlated,
            "noncentered": noncentered,
            "lkj_eta": lkj_eta,
        }
        try:
            self.bambi = HierModel(
                self.spec,
                self.spec.bambi_formula,
                self.data,
                family=family,
                link=link,
                priors=self.priors or None,
            )
        except FormulahierError:
            raise
        except Exception as exc:  # Bambi/formulae raise plain exceptions on bad models
            raise FormulaError(f"Bambi could not build this model: {exc}", formula) from exc

    @property
    def formula(self) -> str:
        """The formula as written."""
        return self.spec.formula

    @property
    def nobs(self) -> int:
        """Number of observations used (after dropping incomplete rows)."""
        return len(self.data)

    @property
    def blocks(self):
        """The group-level blocks as built (:class:`~formulahier.backend.BlockInfo`)."""
        return self.bambi.fh_blocks

    def build(self):
        """Build (once) and return the PyMC model."""
        if not self.bambi.built:
            self.bambi.build()
        return self.bambi.backend.model

    @property
    def pymc_model(self):
        """The PyMC model, built on first access."""
        return self.build()

    def fit(
        self,
        *,
        sampler: str = "pymc",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        seed: int | None = None,
        progressbar: bool = True,
        **sampler_kwargs,
    ) -> Fit:
        """Sample the posterior and return a :class:`Fit`.

        Parameters
        ----------
        sampler : {"pymc", "nutpie", "numpyro", "blackjax"}
            NUTS implementation (through Bambi).
        draws, tune, chains : int
            Kept draws, warm-up draws and chains.
        seed : int, optional
            Same seed, same draws.
        progressbar : bool
            Show PyMC's progress bar.
        **sampler_kwargs
            Passed to :func:`pymc.sample` (``target_accept=0.95``, ``cores=...``).

        """
        key = check_sampler(sampler)
        if key == "pymc":
            sampler_kwargs.setdefault("cores", min(chains, os.cpu_count() or 1))
        self.build()
        start = time.perf_counter()
        idata = self.bambi.fit(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            inference_method=key,
            progressbar=progressbar,
            **sampler_kwargs,
        )
        seconds = time.perf_counter() - start
        drop = [b.corr + "_chol" for b in self.blocks if b.corr]
        posterior = idata["posterior"].to_dataset()
        idata["posterior"] = posterior.drop_vars([v for v in drop if v in posterior])
        settings = {"sampler": key, "draws": draws, "tune": tune, "chains": chains, "seed": seed}
        return Fit(self, idata, settings, seconds)

    def __repr__(self) -> str:
        return f"<formulahier.Model {self.formula!r}, family={self.spec.family}, nobs={self.nobs}>"


class Fit:
    """A fitted multilevel model: posterior draws plus lme4/brms-style results.

    Attributes
    ----------
    idata : xarray.DataTree
        ArviZ DataTree with ``posterior``, ``sample_stats`` and ``observed_data``.
    model : bambi.Model
        The Bambi model (so Bambi's ``predict`` and ``interpret`` work).
    spec : ModelSpec
        What the model is.
    settings : dict
        Sampler, draws, tune, chains, seed.
    seconds : float
        Wall time spent sampling.

    """

    def __init__(self, fh_model: Model, idata, settings: dict, seconds: float):
        self.fh_model = fh_model
        self.idata = idata
        self.settings = settings
        self.seconds = seconds
        self._view = results.PosteriorView(idata, fh_model.bambi, fh_model.blocks)

    @property
    def model(self):
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

    def summary(self, ci_prob: float = 0.95) -> results.Summary:
        """All tables of the printed summary, with diagnostics."""
        return results.Summary.from_view(self._view, self._header(), ci_prob)

    def _header(self) -> dict:
        return {
            "formula": self.spec.formula,
            "family": self.model.family.name,
            "link": {k: v.name for k, v in self.model.family.link.items()},
            "nobs": self.nobs,
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


def model(formula: str, data, **options) -> Model:
    """Build a multilevel model from an lme4/brms formula without sampling.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        Never modified.
    **options
        ``family``, ``link``, ``priors``, ``correlated``, ``noncentered``, ``lkj_eta``; see
        :func:`fit`.

    Returns
    -------
    Model
        Call ``.fit(...)`` to sample.

    """
    return Model(formula, data, **options)


def fit(
    formula: str,
    data,
    *,
    family: str = "gaussian",
    link: str | None = None,
    priors: Mapping[str, Any] | None = None,
    correlated: bool | Mapping[str, bool] = True,
    noncentered: bool | Mapping[str, bool] = True,
    lkj_eta: float = 2.0,
    sampler: str = "pymc",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
    **sampler_kwargs,
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
    priors : dict, optional
        Bambi-style priors keyed by term name.
    correlated : bool or dict
        ``True`` (lme4's meaning): effects in one ``|`` bar share an LKJ correlation matrix.
        ``False``: independent (Bambi's behaviour). A dict sets it per grouping factor.
    noncentered : bool or dict
        ``True``: ``u = (L z)^T``, best with few observations per group. ``False``:
        hierarchically centered ``beta_j ~ MvNormal(b, S)``, best with many. Per factor if a
        dict.
    lkj_eta : float
        LKJ shape of the correlation prior (default 2: mildly favours small correlations).
    sampler : {"pymc", "nutpie", "numpyro", "blackjax"}
        NUTS implementation.
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
    built = Model(
        formula,
        data,
        family=family,
        link=link,
        priors=priors,
        correlated=correlated,
        noncentered=noncentered,
        lkj_eta=lkj_eta,
    )
    return built.fit(
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progressbar=progressbar,
        **sampler_kwargs,
    )
