""":class:`Fit`: a fitted model's posterior draws with lme4/brms-style results.

Created by :meth:`formulahier.Model.fit`; its verbs and plots come from the mixins
:class:`~formulahier.fit_verbs.FitVerbs` and :class:`~formulahier.fit_tools.FitTools`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from . import results
from .fit_tools import FitTools
from .fit_verbs import FitVerbs
from .spec import ModelSpec

if TYPE_CHECKING:
    import bambi
    import xarray as xr

    from .modeling import Model


__all__ = ["Fit"]


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
