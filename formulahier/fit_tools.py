"""What a fit can do after sampling: predict, check, compare, plot, save, update.

:class:`FitTools` is a mixin of :class:`formulahier.Fit`; its methods delegate to
:mod:`formulahier.predict`, :mod:`formulahier.compare`, :mod:`formulahier.plots` and
:mod:`formulahier.io`. It relies only on the attributes of ``Fit`` (``fh_model``, ``idata``,
``settings``, ``seconds``) and does not import :mod:`formulahier.fitted`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import comparison as _compare
from . import io as _io
from . import plots as _plots
from . import predict as _predict
from . import teaching_plots as _teach
from .errors import DataError, FormulaError, OptionError
from .fit_base import FitBase
from .formula.update import update_formula
from .settings import MODEL_OPTIONS, SamplerSettings

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = ["FitTools", "update_formula"]


class FitTools(FitBase):
    """Predictions, checks, comparison, plots, saving and refitting of a :class:`Fit`."""

    # -- predictions -------------------------------------------------------------------------
    def predict(
        self,
        newdata: Any = None,
        kind: str = "mean",
        re_formula: str | None = None,
        allow_new_levels: bool = False,
        ci_prob: float = 0.95,
        seed: int | None = None,
        draws: bool = False,
    ) -> pd.DataFrame | xr.DataArray:
        """Posterior predictions, like brms's ``posterior_epred`` / ``posterior_predict``.

        Parameters
        ----------
        newdata : DataFrame or dict of arrays, optional
            Rows to predict (never modified); ``None``: the data the model was fitted on.
        kind : {"mean", "response", "linpred"}
            ``"mean"``: expected response (the inverse link of the linear predictor, brms
            ``posterior_epred``); ``"response"``: draws of new observations (``posterior_predict``);
            ``"linpred"``: the linear predictor.
        re_formula : str, optional
            ``None``: all group-level effects; ``"~0"``: none (population-level prediction);
            ``"~ (1 | g)"``: only those bar terms.
        allow_new_levels : bool
            ``False``: a level not seen in fitting raises :class:`~formulahier.DataError`.
            ``True``: per draw, its effects are drawn from ``MvNormal(0, S)`` with the draw's
            standard deviations and correlations (brms ``sample_new_levels = "gaussian"``).
        ci_prob : float
            Probability of the equal-tailed interval.
        seed : int, optional
            Makes new-level and ``"response"`` draws reproducible.
        draws : bool
            Return the draws as an ``xarray.DataArray`` ``(chain, draw, __obs__)`` instead of a
            summary table.

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            A table with ``estimate, std_error, lower, upper`` per row of ``newdata`` (same
            index), or the draws.

        """
        return _predict.predict(
            self.fh_model,
            self.idata,
            newdata,
            kind=kind,
            re_formula=re_formula,
            allow_new_levels=allow_new_levels,
            ci_prob=ci_prob,
            seed=seed,
            draws=draws,
        )

    def posterior_predictive(
        self, num_draws: int | None = None, seed: int | None = None
    ) -> xr.DataArray:
        """Draw replicated data sets for the observed rows (stored in ``idata``).

        Parameters
        ----------
        num_draws : int, optional
            Use this many posterior draws, chosen at random (all by default); the result then
            has a single chain.
        seed : int, optional
            Reproducible draws.

        Returns
        -------
        xarray.DataArray
            ``(chain, draw, __obs__)``; also stored as ``fit.idata["posterior_predictive"]``.

        """
        from . import validate

        seed = validate.seed(seed)
        if num_draws is not None:
            num_draws = validate.positive_int(num_draws, "num_draws")
        total = self.idata["posterior"].sizes["chain"] * self.idata["posterior"].sizes["draw"]
        samples = None
        if num_draws is not None and num_draws < total:
            samples = np.sort(np.random.default_rng(seed).choice(total, num_draws, replace=False))
        pp = _predict.predict(
            self.fh_model,
            self.idata,
            None,
            kind="response",
            seed=seed,
            draws=True,
            samples=samples,
        )
        name = self.model.response_term.name
        self.idata["posterior_predictive"] = pp.rename(name).to_dataset()
        return pp

    # -- model checking and comparison -------------------------------------------------------
    def loo(self, pointwise: bool = True, thin: int = 1) -> Any:
        """PSIS-LOO cross-validation (``arviz.loo``); log-likelihood computed on demand.

        Pareto k above ArviZ's threshold (about 0.7) raises a
        :class:`~formulahier.FormulahierWarning` with advice. ``thin=k`` uses every k-th
        posterior draw: when ``draws x observations`` doubles would not fit in memory, a
        :class:`~formulahier.MemoryLimitError` says so and which ``thin`` to pass.
        """
        return _compare.loo(self, pointwise=pointwise, thin=thin)

    # -- plots ---------------------------------------------------------------------------------
    def plot_trace(self, var_names: Sequence[str] | None = None, **kwargs: Any) -> Any:
        """Trace and density per parameter, brms's ``plot(m)`` (ArviZ ``PlotCollection``).

        By default the population effects, sds, correlations and family parameters under
        brms's names (``b_Days``, ``sd_Subject__Days``, ``cor_Subject__Intercept__Days``,
        ``sigma``); ``var_names`` picks some of those, or names posterior variables.
        Save with ``.savefig("trace.png")``.
        """
        from .brms_names import scalar_draws

        draws = scalar_draws(self._view)
        return _plots.plot_trace(self.idata, var_names=var_names, draws=draws, **kwargs)

    def plot_ppc(self, num_samples: int = 50, seed: int | None = None, **kwargs: Any) -> Any:
        """Posterior predictive check (brms ``pp_check``): observed vs replicated, with a legend.

        Draws ``num_samples`` replicated data sets first if there are none. Returns ArviZ's
        ``PlotCollection`` (save with ``.savefig("ppc.png")``).
        """
        if "posterior_predictive" not in self.idata.children:
            self.posterior_predictive(num_draws=num_samples, seed=seed)
        return _plots.plot_ppc(self.idata, num_samples=num_samples, **kwargs)

    def plot_forest(
        self,
        factor: str | None = None,
        effects: Sequence[str] | None = None,
        ci_prob: float = 0.95,
    ) -> Figure:
        """Caterpillar plot of the group-level effects of ``factor`` (matplotlib Figure)."""
        return _plots.plot_forest(self.ranef(ci_prob), factor, effects)

    def _factor(self, factor: str | None) -> str:
        blocks = self.fh_model.blocks
        if not blocks:
            raise FormulaError(
                "The model has no group-level effects; add a term such as (1 | group)."
            )
        factor = factor or blocks[0].block.factor
        if factor not in {b.block.factor for b in blocks}:
            raise DataError(
                f"No grouping factor '{factor}'; the model has "
                f"{sorted({b.block.factor for b in blocks})}."
            )
        return factor

    def plot_shrinkage(
        self,
        factor: str | None = None,
        effects: Sequence[str] | None = None,
        scale: str | None = None,
    ) -> Figure:
        """Per-group no-pooling vs partial-pooling estimates, with the population level.

        Parameters
        ----------
        factor : str, optional
            The grouping factor (default: the first).
        effects : list of str, optional
            ``scale="coef"`` only: one or two effects of the factor (default: the first two
            of its first block). One effect gives a dot plot, two a plane with arrows from
            the per-group least-squares fit to the model's estimate.
        scale : {"coef", "response", "link"}, optional
            ``"coef"``: coefficients (gaussian, identity link). ``"response"``: every family:
            the level's observed mean response (a proportion for binomial) against the
            model's fitted mean of its rows, with the population-level value of those rows.
            ``"link"``: the same through the link function (logit for binomial). Default:
            ``"coef"`` for a gaussian identity model whose response is a column, else
            ``"response"``.

        Returns
        -------
        matplotlib.figure.Figure

        """
        factor = self._factor(factor)
        if scale is None:
            from .backend import link_function

            identity = self.model.family.name == "gaussian"
            identity = identity and link_function(self.model)[0] == "identity"
            simple = self.spec.response in self.fh_model.data.columns
            scale = "coef" if identity and simple else "response"
        if scale == "coef":
            mine = [b for b in self.fh_model.blocks if b.block.factor == factor]
            effects = list(effects or mine[0].labels[:2])
            return _plots.plot_shrinkage(
                self.fh_model, self.coef()[factor], self.fixef(), factor, effects
            )
        if effects is not None:
            raise OptionError("effects= goes with scale='coef'; group means have one value.")
        means, label, _ = _teach.group_means(self, factor, scale)
        return _teach.plot_shrinkage_means(means, factor, scale, label)

    def plot_shrinkage_size(self, factor: str | None = None, scale: str = "response") -> Figure:
        """Distance of each group mean from the population level against group size.

        Observed (no pooling) and fitted (partial pooling) group means, as differences from
        the level's population-level value, at the level's number of rows (trials for a
        binomial response): small groups are pulled in most. Any family; ``scale`` as in
        :meth:`plot_shrinkage` (``"response"`` or ``"link"``). Returns a Figure.
        """
        factor = self._factor(factor)
        means, label, size_name = _teach.group_means(self, factor, scale)
        return _teach.plot_shrinkage_size(means, factor, scale, label, size_name)

    def _diverging(self):
        if "sample_stats" in self.idata.children and "diverging" in self.idata["sample_stats"]:
            return self.idata["sample_stats"]["diverging"].reset_coords(drop=True)
        return None

    def plot_pairs(self, var_names: Sequence[str] | None = None) -> Figure:
        """Pair plot of the parameters under brms's names, divergences in red (brms ``pairs``).

        ``var_names``: brms names (``["b_Days", "sd_Subject__Days"]``); default the first six
        of ``b_``, ``sd_``, ``cor_`` and family parameters. Returns a Figure.
        """
        from .brms_names import scalar_draws

        names = [var_names] if isinstance(var_names, str) else var_names
        return _teach.plot_pairs(scalar_draws(self._view), self._diverging(), names)

    def plot_funnel(
        self, factor: str | None = None, effect: str = "Intercept", levels: int = 4
    ) -> Figure:
        """The funnel: ``log(sd)`` of a group effect against that effect in a few levels.

        The ``levels`` levels with the fewest rows are shown (their effects depend most on
        the sd); divergent transitions are marked in red. Returns a Figure.
        """
        from .brms_names import _sd_cor_name, brms_label

        factor = self._factor(factor)
        sds = self._view.group_draws(factor)
        if f"sd({effect})" not in sds:
            choices = [k[3:-1] for k in sds if k.startswith("sd(")]
            raise DataError(f"No group-level effect '{effect}' on '{factor}'; choose {choices}.")
        name = f"log({_sd_cor_name(f'sd({effect})', factor)})"
        focus = (name, np.log(sds[f"sd({effect})"]).reset_coords(drop=True))
        u = next(u for label, u, _ in self._view._effect_draws(factor) if label == effect)
        info = next(b for b in self.fh_model.blocks if b.block.factor == factor)
        sizes = np.bincount(info.data.codes, minlength=len(info.data.groups))
        level_dim = next(d for d in u.dims if d.endswith("__factor_dim"))
        chosen = np.argsort(sizes, kind="stable")[: max(1, levels)]
        effects = {
            f"r_{factor}[{u[level_dim].values[j]},{brms_label(effect)}]": u.isel(
                {level_dim: int(j)}
            ).reset_coords(drop=True)
            for j in chosen
        }
        return _teach.plot_funnel(focus, effects, self._diverging())

    def plot_correlations(self, factor: str | None = None, ci_prob: float = 0.95) -> Figure:
        """Posterior of every group-level correlation, over its LKJ prior, per block.

        ``factor``: only that factor's blocks (default: all). Each panel shows the posterior
        histogram, the prior's marginal density and the equal-tailed interval. Returns a Figure.
        """
        from .brms_names import _sd_cor_name
        from .results import _check_prob

        ci_prob = _check_prob(ci_prob)
        factors = [self._factor(factor)] if factor else self._view.factors()
        blocks = []
        for info in self.fh_model.blocks:
            if info.corr is None or info.block.factor not in factors:
                continue
            draws = {
                _sd_cor_name(k, info.block.factor): v
                for k, v in self._view.group_draws(info.block.factor).items()
                if k.startswith("cor(") and set(k[4:-1].split(",")) <= set(info.labels)
            }
            eta = self.spec.eta_for(info.block.factor)
            blocks.append((info.block.factor, draws, eta, info.size))
        return _teach.plot_correlations(blocks, ci_prob)

    # -- saving and refitting ------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fit to one netCDF file (posterior, data, formula, options; no pickle).

        Read it back with :func:`formulahier.load`.
        """
        spec = self.spec
        return _io.write_fit(
            path,
            required=set(spec.variables()),
            formula=self.spec.formula,
            options=self.fh_model.options,
            data=self.fh_model.data,
            idata=self.idata,
            settings=self.settings,
            seconds=self.seconds,
            dpars=spec.dpars,
        )

    def update(self, formula: str | None = None, data: Any = None, **options: Any) -> Any:
        """Refit with changes, like R's ``update()``.

        Parameters
        ----------
        formula : str, optional
            A new formula; ``.`` stands for the old side: ``". ~ . + x"``, ``". ~ . - x"``.
        data : DataFrame, optional
            New data (default: the data of this fit).
        **options
            Model options (``family``, ``priors``, ``correlated``, ...) and sampler settings
            (``draws``, ``chains``, ``seed``, ...); the rest are kept from this fit.

        Returns
        -------
        Fit

        """
        new_formula = self.spec.formula
        if formula is not None:
            new_formula = update_formula(self.spec.formula, formula)
        model_options = dict(self.fh_model.options)
        model_options.update({k: v for k, v in options.items() if k in MODEL_OPTIONS})
        # as this fit was sampled (target_accept=..., kept), with the changes asked for
        settings = SamplerSettings.of_fit(self.settings).replace(
            **{k: v for k, v in options.items() if k not in MODEL_OPTIONS}
        )
        source = self.fh_model.data if data is None else data
        built = type(self.fh_model)(new_formula, source, **model_options)
        return built.fit(**settings.keywords())
