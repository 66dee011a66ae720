"""Bambi's PyMC backend with this layer's component for the parent parameter.

:class:`PyMCBackend` is Bambi's ``PyMCModel.build`` (a few lines, copied) with one change: the
parent parameter's component is :class:`_Component`, a subclass of Bambi's whose
``build_group_specific_terms`` hook has each block build itself from integer codes, or adds the
blocks' collapsed likelihood (:mod:`formulahier.collapsed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from bambi.backend import PyMCModel
from bambi.backend.model_components import (
    ConstantComponent,
    DistributionalComponent,
    ResponseComponent,
)
from bambi.backend.terms import CommonTerm
from bambi.utils import get_aliased_name

from ...collapsed import (
    Precision,
    integrated_loglik,
    marginal_loglik,
    precision_from_chol,
)
from ..collapsed_terms import add_population
from .blocks import BlockTerm, add_coords
from .population import population_design

if TYPE_CHECKING:  # the model module imports this one
    from ..model import BlockInfo

__all__ = ["PyMCBackend"]


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
            name = get_aliased_name(spec.response_term)
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
            add_coords(pymc_backend.model, CommonTerm(term).coords)
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
            for group_term in term.info.terms.values():  # (f | g): the sds' dims
                add_coords(model, group_term.coords)
            if R is not None:  # a correlated block, sampled in its whitened basis
                parts.append(term.whitened(model, R, plan.scale))
                continue
            sigma, chol = term.scale(model)
            if chol is None:
                parts.append(Precision(pt.diag(sigma**-2), 2 * pt.sum(pt.log(sigma))))
            else:
                parts.append(precision_from_chol(chol))
        prec, sigma = plan.precision(parts), model[plan.sigma]  # nested: (outer, inner)
        # every cross-product shared: a new response (SBC) or a subset of rows (k-fold)
        stats = plan.stats.shared(plan.response)
        self.fh_response = stats.response_vars()
        if population is None:
            beta = pt.concatenate([pt.atleast_1d(model[name]).flatten() for name in plan.names])
            return marginal_loglik(stats, beta, prec, sigma)
        slots, mean, sd = population
        integrated = integrated_loglik(stats, prec, sigma, mean, sd)
        add_population(model, slots, integrated, "population__z_offset")
        return integrated.loglik

