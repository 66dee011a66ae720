"""What the mixins of :class:`formulahier.Fit` may use of it, declared for the type checker.

:class:`~formulahier.fit_tools.FitTools` and :class:`~formulahier.fit_verbs.FitVerbs` sit below
``fitted.py`` and never import it; :class:`FitBase` names the attributes ``Fit.__init__`` sets and
the methods ``Fit`` defines, and :class:`BuiltModel` what they use of :class:`formulahier.Model`.
Nothing here runs: the declarations only have annotations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import bambi
    import pandas as pd
    import pymc
    import xarray as xr

    from .backend import BlockInfo
    from .results import PosteriorView
    from .spec import ModelSpec

__all__ = ["BuiltModel", "FitBase"]


class BuiltModel(Protocol):
    """The parts of :class:`formulahier.Model` a fit's methods read."""

    data: pd.DataFrame

    @property
    def options(self) -> dict[str, Any]:
        """The model options, as given (:class:`~formulahier.settings.ModelOptions`)."""

    def __init__(self, formula: Any, data: Any, **options: Any) -> None: ...

    def fit(self, **settings: Any) -> Any:
        """Sample the model: a :class:`formulahier.Fit`."""

    def prior_summary(self) -> pd.DataFrame:
        """The priors, one row per slot."""

    @property
    def nobs(self) -> int:
        """Number of observations used."""

    @property
    def spec(self) -> ModelSpec:
        """What the model is."""

    @property
    def blocks(self) -> list[BlockInfo]:
        """The group-level blocks as built."""

    @property
    def pymc_model(self) -> pymc.Model:
        """The PyMC model, built on first access."""

    @property
    def bambi(self) -> Any:
        """Bambi's model of the population part plus the blocks."""


class FitBase:
    """Base of the mixins of :class:`formulahier.Fit`: what ``Fit`` sets and defines."""

    fh_model: BuiltModel
    idata: xr.DataTree
    settings: dict
    seconds: float
    _view: PosteriorView

    if TYPE_CHECKING:

        @property
        def model(self) -> bambi.Model:
            """The :class:`bambi.Model` behind the fit."""

        @property
        def spec(self) -> ModelSpec:
            """What the model is."""

        def fixef(self, ci_prob: float = 0.95) -> pd.DataFrame:
            """Population-level effects."""

        def ranef(self, ci_prob: float = 0.95) -> dict[str, pd.DataFrame]:
            """Group-level deviations per grouping factor."""

        def coef(self, ci_prob: float = 0.95) -> dict[str, pd.DataFrame]:
            """Population plus group-level effects per level."""
