"""How a model is built: correlated and hierarchically centered blocks inside Bambi's PyMC model.

Bambi builds every group-specific term on its own (``u ~ Normal(0, sigma)``). We keep Bambi's
model, its priors, names and dims, and replace only the construction of the terms that belong to
a block needing more than that:

* a correlated block (lme4's ``(x | g)``) with two or more columns gets
  ``R = L_R L_R^T ~ LKJ(eta)``, ``L = diag(sigma) L_R`` and, non-centered, ``u = (L z)^T`` with
  ``z ~ Normal(0, 1)``; centered, ``beta_j ~ MvNormal(b, L L^T)`` and ``u = beta - b``;
* an independent block asked to be centered gets ``beta_j ~ Normal(b, sigma)``, ``u = beta - b``.

Here ``b`` holds the population-level effects of the same terms (the intercept un-centered for
Bambi's centering of common predictors, slopes whose population term matches, zero elsewhere),
so the sampler sees the group coefficients themselves, not deviations that trade off with ``b``.

The per-effect standard deviations keep Bambi's own hyperpriors and names (``1|g_sigma``); each
term's deviations stay a named variable (``TEMP|station``) with Bambi's dims, so Bambi's
``predict`` and ``interpret`` keep working. Correlations are stored as ``{factor}_corr`` with dims
``({factor}_corr__effect, {factor}_corr__effect_bis)``.
"""

from __future__ import annotations

from typing import NamedTuple

import bambi as bmb
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from bambi.backend import PyMCModel
from bambi.backend.model_components import (
    ConstantComponent,
    DistributionalComponent,
    ResponseComponent,
)
from bambi.backend.terms import GroupSpecificTerm
from bambi.backend.utils import noncentered_default_for
from bambi.families.multivariate import MultivariateFamily
from bambi.families.univariate import Categorical
from bambi.priors import Prior
from bambi.utils import get_aliased_name

from .errors import FormulahierError, PriorError
from .spec import GroupBlock, ModelSpec

__all__ = ["BlockInfo", "Column", "HierModel", "corr_name"]


def corr_name(factor: str, index: int = 0) -> str:
    """Name of the correlation variable of the ``index``-th correlated block of ``factor``."""
    return f"{factor}_corr" if index == 0 else f"{factor}_corr_{index + 1}"


class Column(NamedTuple):
    """One effect column of a block: its Bambi term, label, and level of a multi-column term."""

    term: str
    label: str
    level: str | None = None
    index: int | None = None  # position of ``level`` within the term's columns


class BlockInfo:
    """A block as built: its spec, its Bambi terms, column labels and variable names."""

    def __init__(self, block: GroupBlock, terms: dict, name: str, corr: str | None):
        self.block = block
        self.terms = terms  # Bambi term name -> bambi.terms.GroupSpecificTerm
        self.name = name  # unique label used for auxiliary variables
        self.corr = corr  # name of the correlation variable, or None
        self.columns: list[Column] = []
        for (tname, term), label in zip(terms.items(), block.labels, strict=True):
            levels = _expr_levels(term)
            if levels is None:
                self.columns.append(Column(tname, label))
            else:
                self.columns.extend(
                    Column(tname, f"{label}[{lv}]", lv, i) for i, lv in enumerate(levels)
                )

    @property
    def labels(self) -> list[str]:
        """One label per column, as in ``sd(...)`` and ``cor(...)`` rows."""
        return [c.label for c in self.columns]

    @property
    def size(self) -> int:
        """Number of columns (effects) in the block."""
        return len(self.columns)

    @property
    def custom(self) -> bool:
        """Whether this layer builds the block (else Bambi builds its terms unchanged)."""
        return self.corr is not None or not self.block.noncentered


def _expr_levels(term) -> list[str] | None:
    for key, values in term.coords.items():
        if key.endswith("__expr_dim"):
            return [str(v) for v in values]
    return None


def plan_blocks(spec: ModelSpec, bmb_model: bmb.Model) -> list[BlockInfo]:
    """Match each spec block with Bambi's terms and decide what this layer builds."""
    terms = bmb_model.parameters[bmb_model.family.likelihood.parent].group_specific_terms
    infos, per_factor = [], {}
    for k, block in enumerate(spec.blocks):
        missing = [n for n in block.bambi_terms if n not in terms]
        if missing:  # a disagreement between our parser and formulae: fail loudly
            raise FormulahierError(
                f"Internal error: Bambi did not create the terms {missing} for {block.source}; "
                f"it has {sorted(terms)}. Please report this formula."
            )
        block_terms = {n: terms[n] for n in block.bambi_terms}
        info = BlockInfo(block, block_terms, name=f"{block.factor}__block{k}", corr=None)
        if block.correlated and info.size >= 2:
            index = per_factor.get(block.factor, 0)
            per_factor[block.factor] = index + 1
            info.corr = corr_name(block.factor, index)
        infos.append(info)
    return infos


class HierModel(bmb.Model):
    """A Bambi model whose backend builds correlated / centered group-level blocks.

    Parameters
    ----------
    spec : ModelSpec
        What the model is.
    *args, **kwargs
        Passed to :class:`bambi.Model`.

    """

    def __init__(self, spec: ModelSpec, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fh_spec = spec
        self.fh_blocks = plan_blocks(spec, self)
        _release_dense_indicators(self)
        if any(b.custom for b in self.fh_blocks) and isinstance(
            self.family, (MultivariateFamily, Categorical)
        ):
            raise FormulahierError(
                f"Correlated or centered group-level blocks are not available for the "
                f"'{self.family.name}' family; pass correlated=False, noncentered=True."
            )

    def build(self):
        """Build the PyMC model (Bambi's, with this layer's blocks)."""
        etas = {f: self.fh_spec.eta_for(f) for f in self.fh_spec.factors}  # LKJ eta per factor
        self.backend = _Backend(self.fh_blocks, etas)
        self.backend.build(self)
        self.built = True


class _Backend(PyMCModel):
    def __init__(self, blocks: list[BlockInfo], lkj_eta: dict[str, float]):
        super().__init__()
        self.fh_blocks = blocks
        self.lkj_eta = lkj_eta

    def build(self, spec):
        # Bambi's PyMCModel.build, with our component class for the parent parameter.
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
                    self.components[name] = _Component(component, self.fh_blocks, self.lkj_eta)
                else:
                    self.components[name] = DistributionalComponent(component)
                self.components[name].build(self, spec)
            self.response_component = ResponseComponent(spec.response_term)
            self.response_component.build(self, spec)
            self.build_potentials(spec)
        self.spec = spec


class _Component(DistributionalComponent):
    def __init__(self, component, blocks: list[BlockInfo], lkj_eta: dict[str, float]):
        super().__init__(component)
        self.fh_blocks = [b for b in blocks if b.custom]
        self.lkj_eta = lkj_eta

    def build_group_specific_terms(self, pymc_backend, bmb_model):
        if not self.fh_blocks:
            return super().build_group_specific_terms(pymc_backend, bmb_model)
        model = pymc_backend.model
        coefs = {}
        for info in self.fh_blocks:
            coefs.update(self._build_block(info, model, bmb_model))
        noncentered = noncentered_default_for(bmb_model, self.component.name)
        contribution = 0
        for name, term in self.component.group_specific_terms.items():
            if name in coefs:
                coef = coefs[name]
            else:
                bterm = GroupSpecificTerm(term, noncentered)
                _add_coords(model, bterm.coords)
                coef = bterm.build(bmb_model)
            value = coef[term.group_index] * term.predictor
            contribution += value.sum(axis=1) if term.predictor.ndim > 1 else value
        self.output += contribution

    def _build_block(self, info: BlockInfo, model, bmb_model) -> dict:
        sigmas, factor_dim = [], None
        for tname, term in info.terms.items():
            bterm = GroupSpecificTerm(term, True)
            _add_coords(model, bterm.coords)
            dims = list(bterm.coords)
            factor_dim = dims[0]
            prior = term.prior
            if not (isinstance(prior, Prior) and prior.name == "Normal" and "sigma" in prior.args):
                raise PriorError(
                    f"The group-level term '{tname}' has the prior {prior}; a correlated or "
                    "centered block needs Normal(0, sigma) group effects. Set a prior on its "
                    "sd instead, or pass correlated=False for this factor."
                )
            sigma = prior.args["sigma"]
            hyper_dims = [d for d in dims if not d.endswith("__factor_dim")] or None
            if isinstance(sigma, Prior):
                sigma = bterm.build_distribution(sigma, f"{bterm.name}_sigma", dims=hyper_dims)
            sigmas.append(
                pt.atleast_1d(pt.as_tensor_variable(sigma))
                * np.ones(1 if hyper_dims is None else len(model.coords[hyper_dims[0]]))
            )
        sigma = pt.concatenate(sigmas)
        effect_dim = f"{info.name}__effect"
        model.add_coords({effect_dim: info.labels})
        if info.corr:
            dim_a, dim_b = f"{info.corr}__effect", f"{info.corr}__effect_bis"
            model.add_coords({dim_a: info.labels, dim_b: info.labels})
            eta = self.lkj_eta[info.block.factor]
            chol_corr = pm.LKJCorr(f"{info.corr}_chol", n=info.size, eta=eta)
            pm.Deterministic(info.corr, chol_corr @ chol_corr.T, dims=(dim_a, dim_b))
            chol = sigma[:, None] * chol_corr
        else:
            chol = None
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
        out, start = {}, 0
        for tname, term in info.terms.items():
            dims = list(GroupSpecificTerm(term, True).coords)
            width = 1 if term.predictor.ndim == 1 else term.predictor.shape[1]
            value = u[:, start] if term.predictor.ndim == 1 else u[:, start : start + width]
            out[tname] = pm.Deterministic(tname, value, dims=dims)
            start += width
        return out

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
        for tname, _, level, _ in info.columns:
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


def _release_dense_indicators(bmb_model) -> None:
    """Free formulae's dense level-indicator matrices (rows x levels) of group-specific terms.

    Bambi keeps only ``group_index`` from them; with 70,000 rows and 3,000 levels one of them
    holds 1.7 GB for the life of the model. New data re-evaluates the factor, not this array.
    """
    for component in bmb_model.distributional_components.values():
        for term in getattr(component, "group_specific_terms", {}).values():
            factor = term.term.factor
            if isinstance(getattr(factor, "data", None), np.ndarray):
                factor.data = None
            for part in getattr(factor, "components", []):  # categorical variables' dummies
                if isinstance(getattr(part, "value", None), np.ndarray) and part.value.ndim == 2:
                    part.value = None


def _add_coords(model, coords: dict) -> None:
    for name, values in coords.items():
        if name not in model.coords:
            model.add_coords({name: values})
