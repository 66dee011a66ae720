"""brms's verbs on a fit: ``fitted``, ``posterior_epred``, ``residuals``, ``bayes_R2``, ...

:class:`FitVerbs` is a mixin of :class:`formulahier.Fit`; its methods are thin and delegate to
:mod:`formulahier.verbs`, :mod:`formulahier.effects` and :mod:`formulahier.brms_names`. It
relies only on the attributes of ``Fit`` (``fh_model``, ``idata``, ``model``, ``spec``,
``_view``, ``predict``) and does not import :mod:`formulahier.fitted`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from . import brms_names as _names
from . import effects as _effects
from . import marginal as _marginal
from . import verbs as _verbs
from .data import to_pandas
from .fit_base import FitBase

__all__ = ["FitVerbs"]


class FitVerbs(FitBase):
    """brms-style verbs, conditional effects and draws of a :class:`Fit`."""

    # -- what the fit is -----------------------------------------------------------------------
    @property
    def ndraws(self) -> int:
        """Number of posterior draws, all chains together (brms ``ndraws``)."""
        posterior = self.idata["posterior"]
        return int(posterior.sizes["chain"] * posterior.sizes["draw"])

    @property
    def formula(self) -> str:
        """The model formula as written (brms ``formula``)."""
        return self.spec.formula

    @property
    def family(self) -> str:
        """The response family, Bambi's name: ``"gaussian"``, ``"bernoulli"``, ... (``family``)."""
        return self.model.family.name

    def ngrps(self) -> dict[str, int]:
        """Number of levels per grouping factor (lme4/brms ``ngrps``)."""
        return self._view.levels()

    # -- draws ---------------------------------------------------------------------------------
    def as_draws_df(self, group_effects: bool | None = None) -> pd.DataFrame:
        """Posterior draws as one row per draw, with brms's names (brms ``as_draws_df``).

        Columns ``b_Intercept``, ``b_Days``, ``sd_Subject__Intercept``,
        ``cor_Subject__Intercept__Days``, ``sigma``, ``r_Subject[308,Intercept]``, ... and
        ``.chain``, ``.iteration``, ``.draw`` (1-based, as in R).

        Parameters
        ----------
        group_effects : bool, optional
            Include the ``r_`` columns (one per level and effect): by default when there are at
            most 5000 of them; ``True`` always, ``False`` never.

        Returns
        -------
        pandas.DataFrame

        """
        return _names.draws_frame(self._view, group_effects)

    # -- predictions ---------------------------------------------------------------------------
    def posterior_epred(
        self,
        newdata: Any = None,
        re_formula: str | None = None,
        allow_new_levels: bool = False,
        seed: int | None = None,
    ) -> np.ndarray:
        """Draws of the expected response, an array ``(draws, rows)`` (brms ``posterior_epred``).

        ``re_formula`` as for :meth:`predict` (``None``: all group effects, ``"~0"``: none).
        For a binomial response with trials the values are expected counts (trials x
        probability), as in brms; :meth:`predict` gives the probability.
        """
        return _verbs.epred_draws(
            self, newdata, re_formula, allow_new_levels=allow_new_levels, seed=seed
        )

    def posterior_linpred(
        self,
        newdata: Any = None,
        re_formula: str | None = None,
        allow_new_levels: bool = False,
        seed: int | None = None,
    ) -> np.ndarray:
        """Draws of the linear predictor ``(draws, rows)`` (brms ``posterior_linpred``)."""
        return _verbs.epred_draws(
            self, newdata, re_formula, "linpred", allow_new_levels=allow_new_levels, seed=seed
        )

    def fitted(
        self,
        newdata: Any = None,
        re_formula: str | None = None,
        summary: bool = True,
        ci_prob: float = 0.95,
        allow_new_levels: bool = False,
        seed: int | None = None,
    ) -> pd.DataFrame | np.ndarray:
        """Posterior mean of the expected response per row (brms ``fitted``).

        Parameters
        ----------
        newdata : DataFrame or dict of arrays, optional
            Rows to predict; ``None``: the data the model was fitted on.
        re_formula : str, optional
            ``None``: all group-level effects; ``"~0"``: none (brms ``re_formula = NA``).
        summary : bool
            ``False``: the draws ``(draws, rows)`` (:meth:`posterior_epred`).
        ci_prob : float
            Probability of the equal-tailed interval.
        allow_new_levels, seed
            As for :meth:`predict`.

        Returns
        -------
        pandas.DataFrame or numpy.ndarray
            brms's columns ``Estimate, Est.Error, Q2.5, Q97.5`` (named after ``ci_prob``), one
            row per row of the data, or the draws.

        """
        values = self.posterior_epred(newdata, re_formula, allow_new_levels, seed)
        if not summary:
            return values
        index = self.fh_model.data.index if newdata is None else to_pandas(newdata).index
        return _verbs.summarise_draws(values, ci_prob, index=index)

    def residuals(
        self, summary: bool = True, ci_prob: float = 0.95, re_formula: str | None = None
    ) -> pd.DataFrame | np.ndarray:
        """Residuals ``y - E[y]`` of the fitted rows, per draw (brms ``residuals``).

        Returns brms's ``Estimate, Est.Error, Q2.5, Q97.5`` per observation, or with
        ``summary=False`` the draws ``(draws, rows)``. Binomial responses: successes minus
        expected successes.
        """
        values = _verbs.observed_response(self)[None, :] - self.posterior_epred(None, re_formula)
        if not summary:
            return values
        return _verbs.summarise_draws(values, ci_prob, index=self.fh_model.data.index)

    # -- fit measures --------------------------------------------------------------------------
    def bayes_R2(
        self, summary: bool = True, ci_prob: float = 0.95, re_formula: str | None = None
    ) -> pd.DataFrame | np.ndarray:
        """Bayesian R² (Gelman et al. 2019), per draw, as brms's ``bayes_R2``.

        Per draw ``var(mu) / (var(mu) + var(y - mu))`` over the observations, ``mu`` the expected
        response. Returns a one-row table ``Estimate, Est.Error, Q2.5, Q97.5`` (row ``R2``), or
        the draws with ``summary=False``.
        """
        values = _verbs.bayes_r2(self, re_formula)
        return _verbs.summarise_draws(values, ci_prob, ["R2"]) if summary else values

    def loo_R2(self, summary: bool = True, ci_prob: float = 0.95) -> pd.DataFrame | np.ndarray:
        """LOO-adjusted R² (brms ``loo_R2``), through ``arviz_stats.loo_r2``.

        ``1 - var(y - E_loo[mu]) / var(y)``, with PSIS-LOO expectations of the expected
        response and Bayesian-bootstrap draws for the uncertainty. Same layout as
        :meth:`bayes_R2`.
        """
        values = _verbs.loo_r2(self)
        return _verbs.summarise_draws(values, ci_prob, ["R2"]) if summary else values

    def waic(self) -> pd.DataFrame:
        """WAIC (brms ``waic``): rows ``elpd_waic``, ``p_waic``, ``waic``; ``Estimate``, ``SE``.

        Prefer :meth:`loo` (PSIS-LOO), which says when it is unreliable; WAIC is here to compare
        with R output.
        """
        return _verbs.waic(self)

    def hypothesis(
        self,
        hypotheses: str | list[str],
        ci_prob: float = 0.95,
        prior_draws: int = 4000,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Test hypotheses about population-level effects, as brms's ``hypothesis``.

        Parameters
        ----------
        hypotheses : str or list of str
            ``"Days > 5"``, ``"Intercept + Days*5 = 300"``: numbers, the names of
            :meth:`fixef` (``b_`` prefix allowed), ``+ - * / **``, parentheses, and one of
            ``= < >``. Read with :mod:`ast`, never evaluated as code.
        ci_prob : float
            ``1 - alpha`` of brms: a two-sided interval for ``=``, a one-sided one for ``<``
            and ``>`` (the other end is infinite).
        prior_draws : int
            Prior draws for the evidence ratio of a point hypothesis (``=``), the
            Savage-Dickey ratio of posterior to prior density at the hypothesis; ``0``: none,
            ``Evid.Ratio`` is NaN (brms without ``sample_prior``).
        seed : int, optional
            Seed of the prior draws.

        Returns
        -------
        pandas.DataFrame
            ``Hypothesis, Estimate, Est.Error, CI.Lower, CI.Upper, Evid.Ratio, Post.Prob, Star``
            as brms. For ``<``/``>``, ``Evid.Ratio`` is ``P(H) / P(not H)`` over the draws and
            ``Post.Prob`` is ``P(H)``.

        """
        items = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
        post = {k: v.to_numpy().reshape(-1) for k, v in self._view.population_draws().items()}
        prior = None
        if prior_draws and any(_verbs._split_hypothesis(h)[1] == "=" for h in items):
            prior = self._prior_population(int(prior_draws), seed)
        return _verbs.hypothesis(post, items, ci_prob, prior)

    def _prior_population(self, n: int, seed: int | None) -> dict[str, np.ndarray]:
        """Prior draws of the population effects, the intercept on the data's scale."""
        from .results import PosteriorView

        key = (n, seed)
        cache = self.__dict__.setdefault("_prior_cache", {})
        if key not in cache:
            import pymc as pm
            import xarray as xr

            bambi = self.fh_model.bambi
            if not bambi.built or bambi.fh_built_collapsed:
                # the full model: a collapsed graph's free variables are not the priors'
                bambi.build(collapsed=False)
            model = bambi.backend.model
            names = [v for v in self._view.posterior.data_vars if v in self._population_vars()]
            with model, warnings.catch_warnings():  # population effects only: no draws x rows
                # the Potential is the collapsed likelihood: leaving it out is what a prior
                # draw means (population effects have plain Bambi priors, no Potential)
                warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
                drawn = pm.sample_prior_predictive(draws=n, var_names=names, random_seed=seed)
            prior = drawn["prior"].to_dataset()
            tree = xr.DataTree.from_dict({"posterior": prior})
            view = PosteriorView(tree, self.model, self.fh_model.blocks)
            draws = {k: v.to_numpy().reshape(-1) for k, v in view.population_draws().items()}
            cache[key] = _verbs.uncenter_intercept(self.model, draws)
        return cache[key]

    def _population_vars(self) -> set[str]:
        from .backend import population_names

        return {n for c in self.model.conditional_parameters.values() for n in population_names(c)}

    # -- conditional effects -------------------------------------------------------------------
    def conditional_effects(
        self,
        effects: str | list[str] | None = None,
        re_formula: str | None = "~0",
        ci_prob: float = 0.95,
        conditions: dict[str, Any] | None = None,
        points: bool = False,
    ) -> _effects.ConditionalEffects:
        """The expected response against one predictor, others held fixed (brms).

        Parameters
        ----------
        effects : str or list of str, optional
            ``"Days"`` (numeric: a line with a ribbon; categorical: points with interval
            bars), ``"x:f"`` (one line or set of points per level of ``f``; per value
            mean - sd, mean, mean + sd if ``f`` is numeric). Default: every population-level
            predictor and two-way interaction.
        re_formula : str, optional
            ``"~0"`` (default, brms's ``re_formula = NA``): population-level line. ``None``:
            with all group effects; then give the level in ``conditions`` or the factor as the
            second effect (``"Days:Subject"``: one line per subject).
        ci_prob : float
            Probability of the equal-tailed interval (ribbons and bars).
        conditions : dict, optional
            Values of the other predictors (default: mean if numeric, reference level if
            categorical), e.g. ``{"Subject": "308"}``.
        points : bool
            Add the observed data.

        Returns
        -------
        formulahier.effects.ConditionalEffects
            ``.data`` (grid, ``estimate``, ``std_error``, ``lower``, ``upper``) and ``.figure``
            (matplotlib; ``.figure.savefig("ce.png")``).

        """
        return _effects.conditional_effects(self, effects, re_formula, ci_prob, conditions, points)

    def plot_conditional_effects(
        self, effects: str | list[str] | None = None, **kwargs: Any
    ) -> Any:
        """The figure of :meth:`conditional_effects` (same arguments): a matplotlib Figure."""
        return self.conditional_effects(effects, **kwargs).figure

    # -- marginaleffects-style, through Bambi's interpret (population level) ----------------
    def comparisons(
        self,
        contrast: _marginal.Contrast,
        conditional: _marginal.Conditional = None,
        average_by: _marginal.AverageBy = None,
        comparison: str = "diff",
        ci_prob: float = 0.95,
    ) -> pd.DataFrame:
        """Contrasts of the expected response, population level (Bambi ``interpret``).

        As marginaleffects' ``comparisons`` / ``avg_comparisons`` with brms's
        ``re_formula = NA``: ``fit.comparisons({"Days": [0, 5]})``,
        ``fit.comparisons("period")``. See :func:`formulahier.marginal.comparisons`.
        """
        return _marginal.comparisons(self, contrast, conditional, average_by, comparison, ci_prob)

    def slopes(
        self,
        wrt: _marginal.Contrast,
        conditional: _marginal.Conditional = None,
        average_by: _marginal.AverageBy = None,
        slope: str = "dydx",
        ci_prob: float = 0.95,
    ) -> pd.DataFrame:
        """Slopes of the expected response, population level (marginaleffects ``slopes``).

        ``fit.slopes("Days")``; on the response scale, so a logit model's slope varies with
        the predictors. See :func:`formulahier.marginal.slopes`.
        """
        return _marginal.slopes(self, wrt, conditional, average_by, slope, ci_prob)

    def predictions(
        self,
        conditional: _marginal.Conditional = None,
        average_by: _marginal.AverageBy = None,
        ci_prob: float = 0.95,
    ) -> pd.DataFrame:
        """Expected response on a grid, population level (marginaleffects ``predictions``).

        ``fit.predictions({"Days": [0, 9]})``. See :func:`formulahier.marginal.predictions`.
        """
        return _marginal.predictions(self, conditional, average_by, ci_prob)
