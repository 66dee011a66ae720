"""One group-level block built into Bambi's PyMC model, from integer codes.

:class:`BlockTerm` adds a block's variables with Bambi's names and dims (through Bambi's own
term builder for plain independent terms) and returns its part of the linear predictor,
:func:`gather`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from bambi.backend.model_components import DistributionalComponent
from bambi.backend.terms import GroupSpecificTerm
from bambi.priors import Prior
from bambi.utils import get_aliased_name

from ...collapsed import Precision
from ...errors import PriorError
from ..collapsed_terms import add_whitened_block
from .population import population_design, sd_prior_dist

if TYPE_CHECKING:  # the model module imports this one
    from ..model import BlockInfo

__all__ = ["BlockTerm", "add_coords", "gather"]


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
            add_coords(model, term.coords)
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


def add_coords(model, coords: dict) -> None:
    """Add the coords the model does not have yet."""
    for name, values in coords.items():
        if name not in model.coords:
            model.add_coords({name: values})

