"""The model: Bambi's model of the population part plus this layer's group-level blocks.

Bambi is given the *population-level* part of the model only (response, family, population
terms, distributional ``bf()`` formulas): it never sees the bar terms of the main formula, so
formulae never builds its rows x levels indicator matrices. The blocks are evaluated on the data
(:mod:`formulahier.groups`: integer level codes and the block's columns), get Bambi's default
priors (scaled as Bambi scales them) or the user's, and are built into Bambi's PyMC model by
:mod:`formulahier.backend.seam`. A gaussian model whose blocks share one factor is collapsed
(:mod:`formulahier.collapsed`) unless asked not to be.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import bambi as bmb
import numpy as np
import pandas as pd
from bambi import Prior

from ..collapsed import (
    RESPONSE_PARTS,
    Precision,
    Stats,
    block_precision,
    integrated_cost,
    nesting_parent,
    sufficient_stats,
    whitening,
)
from ..errors import FormulaError, PriorError
from ..groups import BlockData, Column, GroupTerm, block_data
from ..spec import ModelSpec
from .seam import (
    PyMCBackend,
    aliased_name,
    default_group_sd,
    formula_namespace,
    has_response_dim,
    population_design,
    population_priors,
    sd_prior_dist,
)

__all__ = ["BlockInfo", "HierModel", "Nesting", "corr_name", "find_nesting", "plan_blocks",
           "split_group_priors"]  # fmt: skip


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
    infos: list[BlockInfo] = []
    per_factor: dict[str, int] = {}
    namespace = formula_namespace()
    for k, block in enumerate(spec.blocks):
        data = block_data(block, frame, namespace)
        info = BlockInfo(data, name=f"{block.factor}__block{k}", corr=None)
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
    blocks : list of BlockInfo, optional
        The blocks as planned on ``data`` (:func:`plan_blocks`; planned here if not given).
    **kwargs
        Passed to :class:`bambi.Model`.

    """

    def __init__(
        self, spec: ModelSpec, data: pd.DataFrame, formula, *, priors=None, blocks=None, **kwargs
    ):
        self.fh_spec = spec
        self.fh_blocks = plan_blocks(spec, data) if blocks is None else blocks
        names = {n for info in self.fh_blocks for n in info.terms}
        bambi_priors, group_priors = split_group_priors(priors, names)
        with warnings.catch_warnings():
            # ordinal families have thresholds in place of an intercept (as in brms); the
            # summary shows them, so Bambi's note that it dropped the intercept is noise
            warnings.filterwarnings("ignore", "The intercept is omitted in ordinal families")
            super().__init__(formula, data, priors=bambi_priors or None, **kwargs)
        if self.fh_blocks and has_response_dim(self):
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
        for info in self.fh_blocks:
            start = 0
            for term in info.terms.values():
                cols = info.data.X[:, start : start + term.width]
                start += term.width
                sigma = default_group_sd(self, term.expr == "1", cols)
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
        full model (``False``) is what prior predictive draws need. Each is built once and
        kept until the priors change.
        """
        collapsed = bool(self.fh_collapsed if collapsed is None else collapsed)
        built = self.__dict__.setdefault("_fh_backends", {})  # per construction, until changed
        if not self.built:  # priors or aliases changed since (Bambi sets built = False)
            built.clear()
        if collapsed not in built:
            etas = {f: self.fh_spec.eta_for(f) for f in self.fh_spec.factors}  # LKJ eta
            backend = PyMCBackend(self.fh_blocks, etas, self.fh_plan if collapsed else None)
            backend.build(self)
            built[collapsed] = backend
        self.backend = built[collapsed]  # alternating fit / prior_predictive: no rebuild
        self.built = True
        self.fh_built_collapsed = bool(collapsed)

    def response_data(self, y) -> dict[str, np.ndarray]:
        """New values of the built graph's shared response data, for a response ``y``.

        Same rows, same design: the compiled model samples the posterior given ``y`` once these
        replace the current values (nutpie's ``compiled.with_data(**values)``, or
        ``shared.set_value``; :attr:`backend.fh_response` holds the shared variables).
        """
        shared = self.backend.fh_response
        if self.fh_built_collapsed and self.fh_plan is not None:
            return self.fh_plan.response_data(self, y)
        return {k: np.asarray(y).astype(v.dtype).reshape(v.get_value().shape)
                for k, v in shared.items()}  # fmt: skip


def _collapse_reason(bmb_model, spec: ModelSpec) -> str:
    """Why the group effects cannot be integrated out exactly ("" when they can)."""
    family = bmb_model.family
    parent = family.likelihood.parent
    comp = bmb_model.parameters[parent]
    if not spec.blocks:
        return "the model has no group-level terms"
    if family.name != "gaussian" or family.link[parent].name != "identity":
        return f"the {family.name} family with the {family.link[parent].name} link is not gaussian"
    if spec.dpars or set(bmb_model.conditional_parameters) != {parent}:
        return "a distributional (bf()) sub-model varies the residual sd"
    if len(spec.factors) > 1 and find_nesting(bmb_model.fh_blocks, spec.factors) is None:
        factors = ", ".join(spec.factors)
        if len(spec.factors) > 2:
            return (
                f"the group effects vary over {len(spec.factors)} factors ({factors}); one "
                "factor, or one nested in another, is integrated out"
            )
        return (
            f"the group effects vary over several factors ({factors}) that are not nested: a "
            "level of one lies in several levels of the other (crossed factors)"
        )
    if comp.offset_terms or comp.hsgp_terms:
        return "the formula has offset() or hsgp() terms"
    if "sigma" not in bmb_model.marginal_parameters:
        return "the residual sd has no prior of its own"
    for name, term in bmb_model.fh_terms.items():
        prior = term.prior
        if not (isinstance(prior, Prior) and prior.name == "Normal" and "sigma" in prior.args):
            return f"the group-level term '{name}' has a non-normal prior"
    return ""


class Nesting(NamedTuple):
    """Two grouping factors, one nested in the other (as the data show)."""

    outer: str
    inner: str
    parent: np.ndarray  # (inner levels,) the outer level of each inner level


def find_nesting(blocks: list[BlockInfo], factors: tuple[str, ...]) -> Nesting | None:
    """The nesting of two factors' levels (``(1 | a/b)``: ``a:b`` in ``a``), else None.

    From the data: every level of the inner factor has all its rows in one level of the
    outer factor. None for one factor, more than two, or crossed factors.
    """
    if len(factors) != 2:
        return None
    first: dict[str, Any] = {}
    for info in blocks:
        first.setdefault(info.block.factor, info.data)
    a, b = (first[f] for f in factors)
    pairs = [(factors[0], a, factors[1], b), (factors[1], b, factors[0], a)]
    pairs.sort(key=lambda t: len(t[3].groups), reverse=True)  # the inner one has more levels
    for outer, o_data, inner, i_data in pairs:
        parent = nesting_parent(i_data.codes, o_data.codes, len(i_data.groups))
        if parent is not None:
            return Nesting(outer, inner, parent)
    return None


# integrate the population effects out too while that adds at most this many cells
# (levels x q x (p + 1)^2) of algebra per gradient; else they are sampled
_MAX_INTEGRATED_CELLS = 4_000_000


class _CollapsedPlan:
    """What the collapsed likelihood needs and how the sampler sees it.

    ``stats`` (centered as Bambi samples) and ``stats_raw`` (as Bambi stores the posterior):
    the cross-products; ``levels``: the blocks of the one factor, or of the outer then the
    inner factor (``nesting``); ``scale``: the response's sd (where the whitened Cholesky
    factor starts); :meth:`layout`: what is integrated out and in which basis.
    """

    def __init__(self, bmb_model):
        design = population_design(bmb_model)
        y = np.asarray(bmb_model.response_term.data, dtype=float).ravel()
        self.names = ([] if design.intercept is None else [design.intercept]) + design.names
        self.sigma = "sigma"
        blocks = self.blocks = bmb_model.fh_blocks
        self.nesting = find_nesting(blocks, bmb_model.fh_spec.factors)
        factors = [blocks[0].block.factor] if self.nesting is None else list(self.nesting[:2])
        self.levels = [[b for b in blocks if b.block.factor == f] for f in factors]
        self.stats_raw = self._raw_stats(bmb_model)
        # as Bambi samples the intercept: X_c = raw_X @ T centers the predictors
        T = np.eye(int(design.intercept is not None) + np.shape(design.X)[1])
        if design.xbar is not None:
            T[0, 1:] = -design.xbar
        self.stats = self.stats_raw.transformed(T)
        self.scale = float(np.std(y)) or 1.0
        self.response = aliased_name(bmb_model.response_term)  # prefix of the shared parts
        self._T = T

    @property
    def description(self) -> str:
        """How the levels are integrated out, for the summary (``""``: one factor)."""
        if self.nesting is None:
            return ""
        return f"{self.nesting.inner} nested in {self.nesting.outer}, two-stage"

    def precision(self, parts: list[Precision]):
        """The blocks' precisions (in block order) as the likelihood takes them.

        One factor: one block-diagonal :class:`Precision`; nested: (outer, inner).
        """
        by_block = dict(zip((id(b) for b in self.blocks), parts, strict=True))
        per_level = [block_precision([by_block[id(b)] for b in lv]) for lv in self.levels]
        return per_level[0] if len(per_level) == 1 else tuple(per_level)

    def layout(self, bmb_model) -> tuple[tuple | None, list[np.ndarray | None]]:
        """How the sampler sees the model, from the priors as set now: ``(population, bases)``.

        ``population``: the population terms and their normal priors when they are integrated
        out (else None: sampled). ``bases``: per block, the whitening ``R`` of a correlated
        block whose sd priors allow it (else None: sds and LKJ as in the full construction).
        """
        population = population_priors(bmb_model)
        if population is not None and integrated_cost(self.stats) > _MAX_INTEGRATED_CELLS:
            population = None
        bases = []
        for info in self.blocks:
            eligible = info.corr is not None and all(
                sd_prior_dist(term) is not None for term in info.terms.values()
            )
            X = info.data.X
            bases.append(whitening(X.T @ X, self.stats.n) if eligible else None)
        return population, bases

    def response_data(self, bmb_model, y: np.ndarray) -> dict[str, np.ndarray]:
        """New values of the shared cross-products (``{response}__yty`` ...) for response ``y``.

        Those of the response only (``yty, Xty, Zty``, the inner ``W_Wty``): same rows, same
        design, so the design's shared values stay as they are.
        """
        values = self._raw_stats(bmb_model, y=y).transformed(self._T).values()
        return {f"{self.response}__{k}": values[k] for k in RESPONSE_PARTS if k in values}

    def _raw_stats(self, bmb_model, keep: np.ndarray | None = None, y=None) -> Stats:
        """The cross-products of the rows ``keep`` (all rows: None) as Bambi stores the posterior.

        ``y``: another response on the same rows (default: the model's). From Bambi's arrays
        each time (the plan keeps no copy of the design).
        """
        design = population_design(bmb_model)
        y = np.asarray(bmb_model.response_term.data if y is None else y, dtype=float).ravel()
        rows = slice(None) if keep is None else np.asarray(keep, dtype=bool)
        ones = [] if design.intercept is None else [np.ones((len(y), 1))]
        raw_X = np.column_stack([*ones, design.X])[rows]
        cols = [np.column_stack([b.data.X for b in level])[rows] for level in self.levels]
        codes = [level[0].data.codes[rows] for level in self.levels]
        inner = None if self.nesting is None else (codes[1], cols[1], self.nesting.parent)
        n_levels = len(self.levels[0][0].data.groups)
        return sufficient_stats(y[rows], raw_X, codes[0], cols[0], n_levels, inner)

    def fold_data(self, bmb_model, keep: np.ndarray) -> tuple[dict[str, np.ndarray], Stats]:
        """Every shared cross-product for the rows ``keep`` only (k-fold), and their raw form.

        The values replace the built graph's (``{response}__n``, ``__XtX`` ...): the same
        compiled model then samples the posterior given those rows; a level with no row kept
        drops out of the likelihood (its effects are new-level draws; a nested inner level with
        no row kept likewise). The raw cross-products are what
        :func:`~formulahier.backend.add_exact_effects` draws the effects from.
        """
        raw = self._raw_stats(bmb_model, keep)
        values = raw.transformed(self._T).values()
        return {f"{self.response}__{k}": v for k, v in values.items()}, raw
