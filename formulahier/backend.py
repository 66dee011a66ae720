"""The seam to Bambi's internals: build the PyMC model with group-level blocks from integer codes.

This is the one module that knows Bambi's private structure (its PyMC backend, components,
prior scaler and term builder); a Bambi upgrade means checking this file.

Bambi is given the *population-level* part of the model only (response, family, population
terms, distributional ``bf()`` formulas): it never sees the bar terms of the main formula, so
formulae never builds its rows x levels indicator matrices. Every group-level block of the main
formula is built here from :class:`formulahier.groups.BlockData` (integer level codes and the
block's columns), and the linear predictor gets ``sum_k u[codes, k] * X[:, k]``:

* an independent, non-centered block is built by Bambi's own term builder (its
  ``x|g_offset``, ``x|g_sigma``, ``x|g`` variables), one term at a time;
* a correlated block (lme4's ``(x | g)``) with two or more columns gets
  ``R = L_R L_R^T ~ LKJ(eta)``, ``L = diag(sigma) L_R`` and, non-centered, ``u = (L z)^T`` with
  ``z ~ Normal(0, 1)``; centered, ``beta_j ~ MvNormal(b, L L^T)`` and ``u = beta - b``;
* an independent block asked to be centered gets ``beta_j ~ Normal(b, sigma)``, ``u = beta - b``.

``b`` holds the population-level effects of the same terms (the intercept un-centered for
Bambi's centering of common predictors), so the sampler sees the group coefficients
themselves. Names and dims are Bambi's: ``TEMP|station`` over ``station__factor_dim``, its sd
``TEMP|station_sigma``; correlations are ``{factor}_corr`` with dims
``({factor}_corr__effect, {factor}_corr__effect_bis)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bambi as bmb
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
from bambi.backend import PyMCModel
from bambi.backend.model_components import (
    ConstantComponent,
    DistributionalComponent,
    ResponseComponent,
)
from bambi.backend.terms import GroupSpecificTerm
from bambi.families.multivariate import MultivariateFamily
from bambi.families.univariate import Categorical
from bambi.priors import Prior
from bambi.utils import get_aliased_name

from .collapsed import marginal_loglik, sufficient_stats
from .errors import FormulaError, PriorError
from .groups import BlockData, Column, GroupTerm, block_data
from .spec import ModelSpec

__all__ = [
    "BlockInfo",
    "Column",
    "HierModel",
    "add_exact_effects",
    "aliased_name",
    "block_sds",
    "bambi_family_names",
    "corr_name",
    "family_log_likelihood",
    "family_posterior_predictive",
    "inverse_link",
    "observed_data",
    "population_linpred",
    "split_group_priors",
    "stacked_draws",
]

_VECTOR_FAMILIES = (MultivariateFamily, Categorical)  # group effects with a response dim


def corr_name(factor: str, index: int = 0) -> str:
    """Name of the correlation variable of the ``index``-th correlated block of ``factor``."""
    return f"{factor}_corr" if index == 0 else f"{factor}_corr_{index + 1}"


class BlockInfo:
    """A block as built: its data (codes, columns, terms) and its variable names."""

    def __init__(self, data: BlockData, name: str, corr: str | None):
        self.data = data
        self.block = data.block
        self.terms: dict[str, GroupTerm] = data.terms
        self.columns: list[Column] = data.columns
        self.name = name  # unique label used for auxiliary variables
        self.corr = corr  # name of the correlation variable, or None

    @property
    def labels(self) -> list[str]:
        """One label per column, as in ``sd(...)`` and ``cor(...)`` rows."""
        return self.data.labels

    @property
    def size(self) -> int:
        """Number of columns (effects) in the block."""
        return self.data.size

    @property
    def custom(self) -> bool:
        """Whether the block needs more than Bambi's independent non-centered terms."""
        return self.corr is not None or not self.block.noncentered


def plan_blocks(spec: ModelSpec, frame: pd.DataFrame) -> list[BlockInfo]:
    """Evaluate each block on the data and name its variables."""
    infos, per_factor = [], {}
    for k, block in enumerate(spec.blocks):
        info = BlockInfo(block_data(block, frame), name=f"{block.factor}__block{k}", corr=None)
        if block.correlated and info.size >= 2:
            index = per_factor.get(block.factor, 0)
            per_factor[block.factor] = index + 1
            info.corr = corr_name(block.factor, index)
        infos.append(info)
    return infos


def split_group_priors(
    priors: Mapping[str, Any] | None, group_terms: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a Bambi-style priors dict into (Bambi's part, group-level part)."""
    bambi_part, group_part = {}, {}
    for key, value in dict(priors or {}).items():
        if key in group_terms or key == "group_specific":
            group_part[key] = value
        else:
            bambi_part[key] = value
    return bambi_part, group_part


class HierModel(bmb.Model):
    """A Bambi model of the population part, plus this layer's group-level blocks.

    Parameters
    ----------
    spec : ModelSpec
        What the model is.
    data : pandas.DataFrame
        The cleaned data (grouping columns as ordered categoricals).
    formula : str or bambi.Formula
        What Bambi is given: the population formula (and ``bf()`` formulas).
    priors : dict, optional
        Bambi-style priors; keys naming group-level terms (``"1|g"``) or ``"group_specific"``
        set those terms' priors here, the rest go to Bambi.
    **kwargs
        Passed to :class:`bambi.Model`.

    """

    def __init__(self, spec: ModelSpec, data: pd.DataFrame, formula, *, priors=None, **kwargs):
        self.fh_spec = spec
        self.fh_blocks = plan_blocks(spec, data)
        names = {n for info in self.fh_blocks for n in info.terms}
        bambi_priors, group_priors = split_group_priors(priors, names)
        super().__init__(formula, data, priors=bambi_priors or None, **kwargs)
        if self.fh_blocks and isinstance(self.family, _VECTOR_FAMILIES):
            raise FormulaError(
                f"Group-level terms of the main formula are not available for the "
                f"'{self.family.name}' family; fit it with Bambi directly."
            )
        self._set_default_group_priors()
        self.set_group_priors(group_priors)
        self.fh_collapse_reason = _collapse_reason(self, spec)
        if spec.collapse is True and self.fh_collapse_reason:
            raise FormulaError(
                f"collapse=True is not possible for this model: {self.fh_collapse_reason}. "
                "Use collapse='auto' (the default) or False."
            )
        self.fh_collapsed = spec.collapse is not False and not self.fh_collapse_reason
        self.fh_plan = _CollapsedPlan(self) if self.fh_collapsed else None

    @property
    def fh_terms(self) -> dict[str, GroupTerm]:
        """Every group-level term of the main formula, by Bambi name."""
        return {n: t for info in self.fh_blocks for n, t in info.terms.items()}

    def _set_default_group_priors(self) -> None:
        """Bambi's default ``Normal(0, HalfNormal(s))``, ``s`` scaled to the data as Bambi does."""
        scaler = getattr(self, "scaler", None)
        for info in self.fh_blocks:
            start = 0
            for term in info.terms.values():
                cols = info.data.X[:, start : start + term.width]
                start += term.width
                if term.expr == "1":
                    sigma = scaler.get_intercept_stats()[1] if scaler else 1.0
                elif scaler is not None:
                    sigma = np.array([scaler.get_slope_sigma(c) for c in cols.T])
                else:
                    sigma = np.ones(term.width)
                sigma = np.squeeze(np.atleast_1d(np.asarray(sigma, dtype=float)))
                sigma = float(sigma) if sigma.ndim == 0 else sigma
                term.prior = Prior("Normal", mu=0, sigma=Prior("HalfNormal", sigma=sigma))

    def set_group_priors(self, priors: Mapping[str, Any]) -> None:
        """Set priors of group-level terms (by Bambi name, or ``"group_specific"`` for all)."""
        terms = self.fh_terms
        common = priors.get("group_specific")
        for name, term in terms.items():
            value = priors.get(name, common)
            if value is None:
                continue
            if not isinstance(value, Prior) or not any(
                isinstance(a, Prior) for a in value.args.values()
            ):
                raise PriorError(
                    f"The prior of the group-level term '{name}' must be a bmb.Prior with a "
                    f"hyperprior, e.g. bmb.Prior('Normal', mu=0, sigma=bmb.Prior('HalfNormal', "
                    f"sigma=1)); got {value!r}."
                )
            term.prior = value
        self.built = False

    def build(self, collapsed: bool | None = None):
        """Build the PyMC model (Bambi's, with this layer's blocks).

        ``collapsed`` (default: what the model chose) integrates the group effects out; the
        full model (``False``) is what prior predictive draws need.
        """
        collapsed = self.fh_collapsed if collapsed is None else collapsed
        etas = {f: self.fh_spec.eta_for(f) for f in self.fh_spec.factors}  # LKJ eta per factor
        plan = self.fh_plan if collapsed else None
        self.backend = _Backend(self.fh_blocks, etas, plan)
        self.backend.build(self)
        self.built = True
        self.fh_built_collapsed = bool(collapsed)


class _Backend(PyMCModel):
    def __init__(self, blocks: list[BlockInfo], lkj_eta: dict[str, float], plan=None):
        super().__init__()
        self.fh_blocks = blocks
        self.lkj_eta = lkj_eta
        self.fh_plan = plan

    def build(self, spec):
        # Bambi's PyMCModel.build, with our component class for the parent parameter: the only
        # place where the group-level terms of the main formula can join Bambi's linear predictor.
        self.model = pm.Model()
        self.components = {}
        for name, values in spec.response_term.coords.items():
            if name not in self.model.coords:
                self.model.add_coords({name: values})
        parent = spec.family.likelihood.parent
        with self.model:
            for name, component in spec.marginal_parameters.items():
                self.components[name] = ConstantComponent(component)
                self.components[name].build(self, spec)
            for name, component in spec.conditional_parameters.items():
                if name == parent:
                    self.components[name] = _Component(
                        component, self.fh_blocks, self.lkj_eta, self.fh_plan
                    )
                else:
                    self.components[name] = DistributionalComponent(component)
                self.components[name].build(self, spec)
            if self.fh_plan is None:
                self.response_component = ResponseComponent(spec.response_term)
                self.response_component.build(self, spec)
            else:  # the group effects integrated out: the likelihood of all rows at once
                marginal = self.components[parent].marginal
                pm.Potential(f"{aliased_name(spec.response_term)}_marginal", marginal)
            self.build_potentials(spec)
        self.spec = spec


class _Component(DistributionalComponent):
    def __init__(self, component, blocks: list[BlockInfo], lkj_eta: dict[str, float], plan=None):
        super().__init__(component)
        self.fh_blocks = blocks
        self.lkj_eta = lkj_eta
        self.fh_plan = plan
        self.marginal = None

    def build_group_specific_terms(self, pymc_backend, bmb_model):
        super().build_group_specific_terms(pymc_backend, bmb_model)  # none in the main formula
        model = pymc_backend.model
        if self.fh_plan is not None:
            self.marginal = self._build_collapsed(model, bmb_model)
            return
        for info in self.fh_blocks:
            for term in info.terms.values():
                _add_coords(model, term.coords)
            if info.custom:
                u = self._build_block(info, model, bmb_model)
            else:  # Bambi's own term builder, one term at a time
                u = pt.concatenate(
                    [
                        pt.reshape(GroupSpecificTerm(t, True).build(bmb_model), (-1, t.width))
                        for t in info.terms.values()
                    ],
                    axis=1,
                )
            self.output += gather(u, info.data.codes, info.data.X)

    def _sigmas(self, info: BlockInfo, model):
        sigmas = []
        for tname, term in info.terms.items():
            bterm = GroupSpecificTerm(term, True)
            prior = term.prior
            if not (isinstance(prior, Prior) and prior.name == "Normal" and "sigma" in prior.args):
                raise PriorError(
                    f"The group-level term '{tname}' has the prior {prior}; a correlated or "
                    "centered block needs Normal(0, sigma) group effects. Set a prior on its "
                    "sd instead, or pass correlated=False for this factor."
                )
            sigma = prior.args["sigma"]
            hyper_dims = [term.expr_dim] if term.expr_dim else None
            if isinstance(sigma, Prior):
                sigma = bterm.build_distribution(sigma, f"{tname}_sigma", dims=hyper_dims)
            sigmas.append(pt.atleast_1d(pt.as_tensor_variable(sigma)) * np.ones(term.width))
        return pt.concatenate(sigmas)

    def _block_scale(self, info: BlockInfo, model):
        """The block's sds and, for a correlated block, ``diag(sd) L_R`` (else None)."""
        sigma = self._sigmas(info, model)
        chol = None
        if info.corr:
            dim_a, dim_b = f"{info.corr}__effect", f"{info.corr}__effect_bis"
            model.add_coords({dim_a: info.labels, dim_b: info.labels})
            eta = self.lkj_eta[info.block.factor]
            chol_corr = pm.LKJCorr(f"{info.corr}_chol", n=info.size, eta=eta)
            pm.Deterministic(info.corr, chol_corr @ chol_corr.T, dims=(dim_a, dim_b))
            chol = sigma[:, None] * chol_corr
        return sigma, chol

    def _build_collapsed(self, model, bmb_model):
        plan = self.fh_plan
        chols = []
        for info in self.fh_blocks:
            sigma, chol = self._block_scale(info, model)
            chols.append(chol if chol is not None else pt.diag(sigma))
        chol_S = chols[0] if len(chols) == 1 else pt.linalg.block_diag(*chols)
        beta = pt.concatenate([pt.atleast_1d(model[name]).flatten() for name in plan.names])
        sigma = model[plan.sigma]
        return marginal_loglik(plan.stats, beta, chol_S, sigma)

    def _build_block(self, info: BlockInfo, model, bmb_model):
        sigma, chol = self._block_scale(info, model)
        factor_dim = next(iter(info.terms.values())).factor_dim
        effect_dim = f"{info.name}__effect"
        model.add_coords({effect_dim: info.labels})
        if info.block.noncentered:
            z = pm.Normal(f"{info.name}_z_offset", 0.0, 1.0, dims=(effect_dim, factor_dim))
            u = (pt.dot(chol, z) if chol is not None else sigma[:, None] * z).T
        else:
            mean = self._population_means(info, model, bmb_model)
            beta_name = f"{info.name}_beta_offset"  # "_offset": dropped from the posterior
            if chol is not None:
                beta = pm.MvNormal(beta_name, mu=mean, chol=chol, dims=(factor_dim, effect_dim))
            else:
                beta = pm.Normal(beta_name, mu=mean, sigma=sigma, dims=(factor_dim, effect_dim))
            u = beta - mean
        start = 0
        for tname, term in info.terms.items():
            value = u[:, start] if term.levels is None else u[:, start : start + term.width]
            pm.Deterministic(tname, value, dims=tuple(term.coords))
            start += term.width
        return u

    def _population_means(self, info: BlockInfo, model, bmb_model):
        """Population-level effects matching the block's columns (zero where none match)."""
        comp = self.component
        common = comp.common_terms
        intercept = pt.as_tensor_variable(0.0)
        if comp.intercept_term is not None:
            intercept = model[get_aliased_name(comp.intercept_term)]
            if common and bmb_model.center_predictors:
                xbar = self.design_matrix_without_intercept.mean(0)
                coefs = pt.concatenate(
                    [pt.atleast_1d(model[get_aliased_name(t)]) for t in common.values()]
                )
                intercept = intercept - pt.dot(xbar, coefs)
        means = []
        for column in info.columns:
            tname, level = column.term, column.level
            expr = tname.split("|")[0]
            if expr == "1":
                means.append(intercept)
                continue
            term = common.get(expr)
            value = pt.as_tensor_variable(0.0)
            if term is not None:
                var = model[get_aliased_name(term)]
                levels = [str(v) for vs in term.coords.values() for v in vs]
                if level is None and not levels:
                    value = var
                elif level is not None and level in levels:
                    value = pt.atleast_1d(var)[levels.index(level)]
            means.append(value)
        return pt.stack(means)


def _collapse_reason(bmb_model, spec: ModelSpec) -> str:
    """Why the group effects cannot be integrated out exactly ("" when they can)."""
    family = bmb_model.family
    parent = family.likelihood.parent
    comp = bmb_model.parameters[parent]
    if not spec.blocks:
        return "the model has no group-level terms"
    if family.name != "gaussian" or family.link[parent].name != "identity":
        return f"the {family.name} family with the {family.link[parent].name} link is not gaussian"
    if spec.dpars or set(bmb_model.distributional_components) != {parent}:
        return "a distributional (bf()) sub-model varies the residual sd"
    if len(spec.factors) > 1:
        return f"the group effects vary over several factors ({', '.join(spec.factors)})"
    if comp.offset_terms or comp.hsgp_terms:
        return "the formula has offset() or hsgp() terms"
    if "sigma" not in bmb_model.marginal_parameters:
        return "the residual sd has no prior of its own"
    for name, term in bmb_model.fh_terms.items():
        prior = term.prior
        if not (isinstance(prior, Prior) and prior.name == "Normal" and "sigma" in prior.args):
            return f"the group-level term '{name}' has a non-normal prior"
    return ""


class _CollapsedPlan:
    """What the collapsed likelihood needs: cross-products and the population coefficients."""

    def __init__(self, bmb_model):
        comp = bmb_model.parameters[bmb_model.family.likelihood.parent]
        y = np.asarray(bmb_model.response_term.data, dtype=float).ravel()
        n = len(y)
        cols = [np.asarray(t.data, dtype=float).reshape(n, -1) for t in comp.common_terms.values()]
        data = np.column_stack(cols) if cols else np.zeros((n, 0))
        has_intercept = comp.intercept_term is not None
        centered = data - data.mean(0) if has_intercept and bmb_model.center_predictors else data
        ones = [np.ones((n, 1))] if has_intercept else []
        graph_X = np.column_stack([*ones, centered])  # as Bambi samples the intercept
        raw_X = np.column_stack([*ones, data])  # as Bambi stores it in the posterior
        self.names = [aliased_name(comp.intercept_term)] if has_intercept else []
        self.names += [aliased_name(t) for t in comp.common_terms.values()]
        self.sigma = "sigma"
        blocks = bmb_model.fh_blocks
        codes = blocks[0].data.codes
        Z = np.column_stack([info.data.X for info in blocks])
        n_levels = len(blocks[0].data.groups)
        self.stats = sufficient_stats(y, graph_X, codes, Z, n_levels)
        self.stats_raw = sufficient_stats(y, raw_X, codes, Z, n_levels)


def gather(u, codes: np.ndarray, X: np.ndarray):
    """``sum_k u[codes, k] * X[:, k]``: the group-level part of the linear predictor.

    One gather per column (``u[:, k][codes]``): gathering whole rows of ``u`` and slicing
    afterwards costs about 4x more per gradient (measured by ``python -m benchmarks --scale``).
    An intercept column of ones is not multiplied.
    """
    # shared variables, not constants: PyTensor's rewrites hash and copy big constants
    codes_t = pytensor.shared(codes, borrow=True)
    out = 0
    for k in range(X.shape[1]):
        column = u[:, k][codes_t]
        if not np.all(X[:, k] == 1.0):
            column = column * pytensor.shared(np.ascontiguousarray(X[:, k]), borrow=True)
        out = out + column
    return out


def _add_coords(model, coords: dict) -> None:
    for name, values in coords.items():
        if name not in model.coords:
            model.add_coords({name: values})


# ---------------------------------------------------------------- Bambi's other internals
# What the rest of the package needs from Bambi beyond its public API, in one place.


def aliased_name(term) -> str:
    """The posterior name Bambi gives a term (its alias if it has one)."""
    return get_aliased_name(term)


def bambi_family_names() -> set[str]:
    """Names of Bambi's built-in families."""
    import bambi.defaults.families as bambi_families

    return set(getattr(bambi_families, "BUILTIN_FAMILIES", {}))


def population_linpred(bmb_model, posterior, frame: pd.DataFrame) -> np.ndarray:
    """Population-level linear predictor of the parent parameter, ``(draws, rows)``."""
    comp = bmb_model.parameters[bmb_model.family.likelihood.parent]
    n = len(frame)
    if not comp.design.common:
        return np.zeros((posterior.sizes["chain"] * posterior.sizes["draw"], n))
    common = comp.predict_common(
        posterior, frame, False, ("chain", "draw"), ("__obs__", "__variables__"), {}
    )
    return common.transpose("chain", "draw", "__obs__").to_numpy().reshape(-1, n)


def inverse_link(bmb_model):
    """The inverse link function of the parent parameter (numpy)."""
    return bmb_model.family.link[bmb_model.family.likelihood.parent].linkinv


def family_log_likelihood(bmb_model, posterior):
    """Pointwise log-likelihood given the parent parameter's values in ``posterior``."""
    return bmb_model.family.log_likelihood(model=bmb_model, posterior=posterior, data=None)


def family_posterior_predictive(bmb_model, posterior, rng, frame: pd.DataFrame):
    """Draws of new responses given the parent parameter's values in ``posterior``."""
    return bmb_model.family.posterior_predictive(
        model=bmb_model, posterior=posterior, random_seed=rng, data=frame
    )


# ---------------------------------------------------------------- draws of a fitted model


def stacked_draws(posterior, name: str) -> np.ndarray:
    """Draws of a posterior variable as ``(sample, ...)`` (chains and draws flattened)."""
    values = posterior[name].to_numpy()
    return values.reshape(-1, *values.shape[2:])


def block_sds(posterior, info: BlockInfo) -> np.ndarray:
    """Per-column standard deviations of a block as ``(sample, column)``.

    From the posterior (``{term}_sigma``), or the prior's number where the sd is fixed.
    """
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    out = []
    for column in info.columns:
        name = f"{column.term}_sigma"
        if name in posterior:
            sd = stacked_draws(posterior, name)
            out.append(sd if column.index is None else sd[:, column.index])
            continue
        sigma = getattr(info.terms[column.term].prior, "args", {}).get("sigma")
        if not isinstance(sigma, (int, float, np.ndarray)):
            raise PriorError(
                f"The standard deviation of '{column.term}' is neither in the posterior "
                f"('{name}') nor a fixed number in its prior."
            )
        value = np.asarray(sigma, dtype=float)
        value = value if value.ndim == 0 or column.index is None else value[column.index]
        out.append(np.broadcast_to(value, (n,)))
    return np.stack(out, axis=-1)


def observed_data(bmb_model):
    """The ``observed_data`` group of a fit whose likelihood is a Potential (collapsed)."""
    import xarray as xr

    name = aliased_name(bmb_model.response_term)
    y = np.asarray(bmb_model.response_term.data, dtype=float).ravel()
    return xr.Dataset({name: (("__obs__",), y)}, coords={"__obs__": np.arange(len(y))})


def add_exact_effects(bmb_model, posterior, seed=None):
    """Add every group effect of a collapsed fit, drawn from its exact conditional posterior.

    Stored as a full fit stores them: Bambi's names, dims ``(chain, draw[, expr], level)``.
    """
    import xarray as xr

    from .collapsed import draw_effects

    plan, blocks = bmb_model.fh_plan, bmb_model.fh_blocks
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    n = n_chain * n_draw
    beta = np.concatenate([stacked_draws(posterior, v).reshape(n, -1) for v in plan.names], 1)
    q = sum(info.size for info in blocks)
    cov, start = np.zeros((n, q, q)), 0
    for info in blocks:
        sd = block_sds(posterior, info)  # (n, k)
        corr = stacked_draws(posterior, info.corr) if info.corr else np.eye(info.size)[None]
        sl = slice(start, start + info.size)
        cov[:, sl, sl] = sd[:, :, None] * corr * sd[:, None, :]
        start += info.size
    sigma = stacked_draws(posterior, plan.sigma).reshape(n)
    rng = np.random.default_rng(None if seed is None else [int(seed), 17])
    u = draw_effects(plan.stats_raw, beta, cov, sigma, rng)  # (n, J, q)
    start, new = 0, {}
    for info in blocks:
        for name, term in info.terms.items():
            values = u[:, :, start : start + term.width]
            start += term.width
            if term.levels is None:
                data = values[..., 0].reshape(n_chain, n_draw, -1)
                dims = ("chain", "draw", term.factor_dim)
            else:  # (chain, draw, expr, level), as Bambi orders a full fit's dims
                data = np.swapaxes(values, 1, 2).reshape(n_chain, n_draw, term.width, -1)
                dims = ("chain", "draw", term.expr_dim, term.factor_dim)
            coords = {d: v for d, v in term.coords.items()}
            new[name] = xr.DataArray(data, dims=dims, coords=coords)
    return posterior.assign(new)
