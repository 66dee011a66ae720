"""The seam to Bambi's internals: the one module that knows Bambi's private structure.

A Bambi upgrade means checking this file (and its tests). What is here:

* :class:`PyMCBackend`: Bambi's ``PyMCModel.build`` (a few lines, copied) with one change: the
  parent parameter's component is :class:`_Component`, a subclass of Bambi's whose
  ``build_group_specific_terms`` hook has each block, a :class:`BlockTerm`, build itself from
  integer codes (:func:`gather`), or adds the blocks' collapsed likelihood
  (:mod:`formulahier.collapsed`);
* Bambi's term builder (``bambi.backend.terms.GroupSpecificTerm``) for plain independent terms,
  so their variables are exactly Bambi's (``x|g_offset``, ``x|g_sigma``, ``x|g``);
* the prior scaler, aliases, population-level predictions and family functions used elsewhere.

Block constructions (``L`` the Cholesky factor of the block's covariance):

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

from typing import TYPE_CHECKING, Any, NamedTuple

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
from bambi.backend.terms import CommonTerm, GroupSpecificTerm
from bambi.backend.utils import get_distribution
from bambi.families.multivariate import MultivariateFamily
from bambi.families.univariate import Categorical
from bambi.priors import Prior
from bambi.utils import get_aliased_name

from ..collapsed import (
    Precision,
    integrated_loglik,
    marginal_loglik,
    precision_from_chol,
)
from ..errors import PriorError
from .collapsed_terms import PopulationSlot, add_population, add_whitened_block

if TYPE_CHECKING:  # the model module imports this one
    from .model import BlockInfo

__all__ = [
    "BlockTerm",
    "PopulationDesign",
    "PyMCBackend",
    "aliased_name",
    "bambi_family_names",
    "bambi_posterior",
    "default_group_sd",
    "family_log_likelihood",
    "family_posterior_predictive",
    "gather",
    "has_response_dim",
    "inverse_link",
    "population_design",
    "population_linpred",
    "population_names",
    "population_priors",
    "sd_prior_dist",
]


class PopulationDesign(NamedTuple):
    """The population-level part of the parent parameter as Bambi builds it."""

    intercept: str | None  # posterior name of the intercept (None: no intercept)
    names: list[str]  # posterior names of the other terms, in column order
    X: np.ndarray  # (rows, columns) of those terms, uncentered
    xbar: np.ndarray | None  # the column means Bambi centers by (None: it does not center)


def population_names(component) -> list[str]:
    """Posterior names of a component's intercept and population terms, in Bambi's order."""
    names = [] if component.intercept_term is None else [get_aliased_name(component.intercept_term)]
    return names + [get_aliased_name(t) for t in component.common_terms.values()]


def population_design(bmb_model) -> PopulationDesign:
    """Bambi's population design of the parent parameter, and how it centers it.

    Bambi samples the intercept of predictors centered at ``xbar`` and reports the intercept of
    the uncentered ones (``Intercept - xbar . b``) in the posterior.
    """
    comp = bmb_model.parameters[bmb_model.family.likelihood.parent]
    n = len(np.asarray(bmb_model.response_term.data))
    cols = [np.asarray(t.data, dtype=float).reshape(n, -1) for t in comp.common_terms.values()]
    X = np.column_stack(cols) if cols else np.zeros((n, 0))
    intercept = None if comp.intercept_term is None else get_aliased_name(comp.intercept_term)
    centered = intercept is not None and cols and bmb_model.center_predictors
    names = [get_aliased_name(t) for t in comp.common_terms.values()]
    return PopulationDesign(intercept, names, X, X.mean(0) if centered else None)


def population_priors(bmb_model) -> tuple[list[PopulationSlot], np.ndarray, np.ndarray] | None:
    """The parent's population terms (in column order) and their normal priors' means and sds.

    None unless every prior is ``Normal`` with numeric arguments (what integrating the
    population effects out needs).
    """
    comp = bmb_model.parameters[bmb_model.family.likelihood.parent]
    terms = [] if comp.intercept_term is None else [comp.intercept_term]
    terms += list(comp.common_terms.values())
    slots: list[Any] = []
    means: list[Any] = []
    sds: list[Any] = []
    for k, term in enumerate(terms):
        prior = term.prior
        if not (isinstance(prior, Prior) and prior.name == "Normal" and prior.dist is None):
            return None
        if set(prior.args) != {"mu", "sigma"} or any(
            isinstance(v, Prior) for v in prior.args.values()
        ):
            return None
        if k == 0 and comp.intercept_term is not None:
            slot = PopulationSlot(get_aliased_name(term), 1, None)
        else:
            coords = CommonTerm(term).coords
            width = int(np.prod(np.shape(term.data)[1:], dtype=int))
            slot = PopulationSlot(get_aliased_name(term), width, tuple(coords) or None)
        slots.append(slot)
        for value, out in ((prior.args["mu"], means), (prior.args["sigma"], sds)):
            out.append(np.broadcast_to(np.asarray(value, dtype=float).ravel(), (slot.width,)))
    if not slots:
        return None
    return slots, np.concatenate(means), np.concatenate(sds)


_POSITIVE = {"HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential", "Gamma", "InverseGamma",
             "LogNormal", "Weibull"}  # fmt: skip


def sd_prior_dist(term):
    """The PyMC distribution of a one-column group term's sd prior, else None.

    Only priors with support (0, inf) and numeric arguments: what the whitened covariance of
    the collapsed construction needs.
    """
    prior = term.prior
    if not (isinstance(prior, Prior) and prior.name == "Normal") or term.width != 1:
        return None
    sd = prior.args.get("sigma")
    if not isinstance(sd, Prior) or sd.dist is not None or sd.name not in _POSITIVE:
        return None
    if any(isinstance(v, Prior) for v in sd.args.values()):
        return None
    return get_distribution(sd.name).dist(**sd.args)


def has_response_dim(bmb_model) -> bool:
    """Whether the family's linear predictor has a response dim (categorical, multinomial)."""
    return isinstance(bmb_model.family, (MultivariateFamily, Categorical))


def default_group_sd(bmb_model, intercept: bool, cols: np.ndarray):
    """Scale of Bambi's default ``HalfNormal`` prior on a group-level term's sd.

    Bambi's own rule (its ``PriorScaler``): the intercept's prior scale, or 2.5 sd(y) / sd(x)
    per column of a slope (1 where Bambi does not scale priors).
    """
    scaler = getattr(bmb_model, "scaler", None)
    if scaler is None:
        sigma = np.ones(cols.shape[1])
    elif intercept:
        sigma = scaler.get_intercept_stats()[1]
    else:
        sigma = np.array([scaler.get_slope_sigma(c) for c in cols.T])
    sigma = np.squeeze(np.atleast_1d(np.asarray(sigma, dtype=float)))
    return float(sigma) if sigma.ndim == 0 else sigma


class PyMCBackend(PyMCModel):
    """Bambi's PyMC backend, whose parent component also builds this layer's blocks."""

    def __init__(self, blocks: list[BlockInfo], lkj_eta: dict[str, float], plan=None):
        super().__init__()
        self.fh_blocks = blocks
        self.lkj_eta = lkj_eta
        self.fh_plan = plan

    def build(self, spec):
        """Bambi's ``PyMCModel.build``, with our component class for the parent parameter.

        The only place where the group-level terms of the main formula can join Bambi's linear
        predictor; with a collapsed plan, the response is a Potential (marginal likelihood).
        """
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
            name = aliased_name(spec.response_term)
            if self.fh_plan is None:
                self.response_component = ResponseComponent(spec.response_term)
                self.response_component.build(self, spec)
                self.fh_response = _shared_observed(self.model, name)
            else:  # the group effects integrated out: the likelihood of all rows at once
                marginal = self.components[parent].marginal
                pm.Potential(f"{name}_marginal", marginal)
                self.fh_response = self.components[parent].fh_response
            self.build_potentials(spec)
        self.spec = spec


def _shared_observed(model, name: str) -> dict:
    """Hold the observed response in a named shared variable: new data, same compiled graph.

    Bambi passes the response to PyMC as an array (a constant of the graph); as the value of
    the observed variable, a shared variable of the same values and type is equivalent, and a
    compiled model can then be given another response (``nutpie``'s ``with_data``).
    """
    rv = model.named_vars.get(name)
    if rv is None or rv not in model.observed_RVs:
        return {}
    old = model.rvs_to_values[rv]
    data = getattr(old, "data", None)
    if data is None:  # already a shared variable, or partly missing data
        return {}
    shared = pytensor.shared(np.asarray(data), name=f"{name}__data", shape=old.type.shape)
    del model.values_to_rvs[old]
    model.rvs_to_values[rv] = shared
    model.values_to_rvs[shared] = rv
    rv.tag.observations = shared
    return {shared.name: shared}


class _Component(DistributionalComponent):
    """Bambi's component of the parent parameter, plus this layer's blocks (or their marginal)."""

    def __init__(self, component, blocks: list[BlockInfo], lkj_eta: dict[str, float], plan=None):
        super().__init__(component)
        self.fh_terms = [BlockTerm(info, lkj_eta[info.block.factor]) for info in blocks]
        self.fh_plan = plan
        self.fh_layout = None
        self.marginal = None
        self.fh_response: dict = {}  # name -> shared variable of the response's cross-products

    def build(self, pymc_backend, bmb_model):
        # what is integrated out, from the priors as they are when the model is built
        plan = self.fh_plan
        self.fh_layout = None if plan is None else plan.layout(bmb_model)
        super().build(pymc_backend, bmb_model)

    @property
    def _integrated(self) -> bool:
        return self.fh_layout is not None and self.fh_layout[0] is not None

    def build_intercept(self, bmb_model):
        if not self._integrated:  # else a Deterministic, added with the marginal likelihood
            super().build_intercept(bmb_model)

    def build_common_terms(self, pymc_backend, bmb_model):
        if not self._integrated:
            return super().build_common_terms(pymc_backend, bmb_model)
        comp = self.component
        for term in comp.common_terms.values():
            _add_coords(pymc_backend.model, CommonTerm(term).coords)
        if comp.common_terms and self.has_intercept and bmb_model.center_predictors:
            # what Bambi un-centers the intercept with after sampling
            self.design_matrix_without_intercept = population_design(bmb_model).X
        return None

    def build_group_specific_terms(self, pymc_backend, bmb_model):
        super().build_group_specific_terms(pymc_backend, bmb_model)  # none in the main formula
        model = pymc_backend.model
        if self.fh_plan is not None:
            self.marginal = self._build_collapsed(model)
            return
        for term in self.fh_terms:
            self.output += term.build(model, self, bmb_model)

    def _build_collapsed(self, model):
        plan = self.fh_plan
        population, bases = self.fh_layout
        parts = []
        for term, R in zip(self.fh_terms, bases, strict=True):
            if R is not None:  # a correlated block, sampled in its whitened basis
                parts.append(term.whitened(model, R, plan.scale))
                continue
            sigma, chol = term.scale(model)
            if chol is None:
                parts.append(Precision(pt.diag(sigma**-2), 2 * pt.sum(pt.log(sigma))))
            else:
                parts.append(precision_from_chol(chol))
        prec, sigma = plan.precision(parts), model[plan.sigma]  # nested: (outer, inner)
        stats = plan.stats.shared(plan.response)  # yty, Xty, Zty: swappable for a new response
        self.fh_response = stats.response_vars()
        if population is None:
            beta = pt.concatenate([pt.atleast_1d(model[name]).flatten() for name in plan.names])
            return marginal_loglik(stats, beta, prec, sigma)
        slots, mean, sd = population
        integrated = integrated_loglik(stats, prec, sigma, mean, sd)
        add_population(model, slots, integrated, "population__z_offset")
        return integrated.loglik


class BlockTerm:
    """One group-level block that builds itself into the PyMC model.

    :meth:`build` adds the block's variables (Bambi's names and dims) and returns its part of
    the linear predictor, ``sum_k u[codes, k] * X[:, k]``; :meth:`scale` adds only the sds and
    the correlation (what the collapsed likelihood needs).
    """

    def __init__(self, info: BlockInfo, lkj_eta: float):
        self.info = info
        self.lkj_eta = lkj_eta

    def build(self, model, component: DistributionalComponent, bmb_model):
        """Add the block's variables; return its contribution to the linear predictor."""
        info = self.info
        for term in info.terms.values():
            _add_coords(model, term.coords)
        if info.custom:
            u = self._effects(model, component, bmb_model)
        else:  # Bambi's own term builder, one term at a time
            u = pt.concatenate(
                [
                    pt.reshape(GroupSpecificTerm(t, True).build(bmb_model), (-1, t.width))
                    for t in info.terms.values()
                ],
                axis=1,
            )
        return gather(u, info.data.codes, info.data.X)

    def scale(self, model):
        """The block's sds and, for a correlated block, ``diag(sd) L_R`` (else None)."""
        info = self.info
        sigma = self._sigmas()
        chol = None
        if info.corr:
            dim_a, dim_b = f"{info.corr}__effect", f"{info.corr}__effect_bis"
            model.add_coords({dim_a: info.labels, dim_b: info.labels})
            chol_corr = pm.LKJCorr(f"{info.corr}_chol", n=info.size, eta=self.lkj_eta)
            pm.Deterministic(info.corr, chol_corr @ chol_corr.T, dims=(dim_a, dim_b))
            chol = sigma[:, None] * chol_corr
        return sigma, chol

    def whitened(self, model, R: np.ndarray, scale: float) -> Precision:
        """The block's sds and correlation in its whitened basis (collapsed construction)."""
        info = self.info
        assert info.corr is not None  # only correlated blocks are whitened
        dims = (f"{info.corr}__effect", f"{info.corr}__effect_bis")
        model.add_coords({dims[0]: info.labels, dims[1]: info.labels})
        names = [f"{tname}_sigma" for tname in info.terms]
        dists = [sd_prior_dist(term) for term in info.terms.values()]
        return add_whitened_block(
            model, info.name, names, dists, info.corr, dims, R, self.lkj_eta, scale
        )

    def _sigmas(self):
        sigmas = []
        for tname, term in self.info.terms.items():
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
                bterm = GroupSpecificTerm(term, True)  # Bambi's builder, for the hyperprior
                sigma = bterm.build_distribution(sigma, f"{tname}_sigma", dims=hyper_dims)
            sigmas.append(pt.atleast_1d(pt.as_tensor_variable(sigma)) * np.ones(term.width))
        return pt.concatenate(sigmas)

    def _effects(self, model, component, bmb_model):
        info = self.info
        sigma, chol = self.scale(model)
        factor_dim = next(iter(info.terms.values())).factor_dim
        effect_dim = f"{info.name}__effect"
        model.add_coords({effect_dim: info.labels})
        if info.block.noncentered:
            z = pm.Normal(f"{info.name}_z_offset", 0.0, 1.0, dims=(effect_dim, factor_dim))
            u = (pt.dot(chol, z) if chol is not None else sigma[:, None] * z).T
        else:
            mean = self._population_means(model, component, bmb_model)
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

    def _population_means(self, model, component, bmb_model):
        """Population-level effects matching the block's columns (zero where none match)."""
        comp = component.component
        common = comp.common_terms
        intercept = pt.as_tensor_variable(0.0)
        if comp.intercept_term is not None:
            intercept = model[get_aliased_name(comp.intercept_term)]
            design = population_design(bmb_model)
            if design.xbar is not None:
                coefs = pt.concatenate([pt.atleast_1d(model[n]) for n in design.names])
                intercept = intercept - pt.dot(design.xbar, coefs)
        means = []
        for column in self.info.columns:
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


# ---------------------------------------------------------------- other internals


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


def link_function(bmb_model):
    """Name and function (numpy, response -> link scale) of the parent parameter's link."""
    link = bmb_model.family.link[bmb_model.family.likelihood.parent]
    return link.name, link.link


def family_log_likelihood(bmb_model, posterior, frame: pd.DataFrame | None = None):
    """Pointwise log-likelihood given the parent parameter's values in ``posterior``.

    Of the model's own response, or of the rows of ``frame`` (their response and trials).
    """
    return bmb_model.family.log_likelihood(model=bmb_model, posterior=posterior, data=frame)


def family_posterior_predictive(bmb_model, posterior, rng, frame: pd.DataFrame):
    """Draws of new responses given the parent parameter's values in ``posterior``."""
    return bmb_model.family.posterior_predictive(
        model=bmb_model, posterior=posterior, random_seed=rng, data=frame
    )




def bambi_posterior(bmb_model, posterior):
    """Draws of the built PyMC model as Bambi's ``fit`` returns them.

    The intercept uncentered, offsets dropped, Bambi's dim order: what an approximation's
    draws need to read like a sampled fit's.
    """
    import xarray as xr

    idata = xr.DataTree()
    idata["posterior"] = posterior
    idata = bmb_model.backend._clean_results(idata, True, False)  # omit offsets, no mu
    return idata["posterior"].to_dataset()
