"""From ``fh.model``'s arguments to a model ready to sample, one stage after another.

Each stage finishes its product before the next starts, and nothing is patched afterwards:

1. :func:`resolve_spec`: formula text (or :func:`~formulahier.bf`) and options -> a
   :class:`~formulahier.spec.ModelSpec` (family and link in Bambi's names, distributional
   formulas, collapse), the roles of its variables checked;
2. :func:`complete_spec`: the data checked against the spec (:func:`formulahier.data.prepare_data`),
   ``noncentered="auto"`` decided from it, the group-level blocks planned on it
   (:func:`formulahier.backend.plan_blocks`) and the LKJ shapes of class-``cor`` priors put into
   the spec: the spec is complete;
3. :func:`build_backend`: the backend (:class:`~formulahier.backend.HierModel`) built from the
   complete spec, the planned blocks and the Bambi-style prior dict; Bambi's errors become ours;
4. :func:`brms_priors`: brms-style priors on Bambi's slots (``b``, ``Intercept``, ``sd``, family
   parameters), whose names only Bambi's description of the model knows, resolved and set
   through Bambi's own ``set_priors`` before the PyMC graph is built (``HierModel.build``).

:class:`formulahier.Model` runs these stages; a change to what a model *is* starts at stage 1
or 2, a change to how it is built at the backend.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from . import checks
from .backend import BlockInfo, HierModel, bambi_family_names, plan_blocks, split_group_priors
from .data import prepare_data
from .errors import FormulaError, FormulahierError, MemoryLimitError, OptionError, PriorError
from .families import resolve_family
from .formula import BrmsFormula, build_spec, dpar_formulas
from .parameterization import resolve_auto
from .priors import PriorSpec, Resolved, resolve_lkj, resolve_priors, split_priors
from .settings import ModelOptions
from .spec import ModelSpec

__all__ = [
    "Completed",
    "bambi_hint",
    "brms_priors",
    "build_backend",
    "complete_spec",
    "resolve_spec",
]


def resolve_spec(formula: str | BrmsFormula, options: ModelOptions | None = None) -> ModelSpec:
    """Stage 1: the spec from the formula and the options (no data yet; default options)."""
    options = ModelOptions() if options is None else options
    correlated, collapse = options.correlated, options.collapse
    bform = formula if isinstance(formula, BrmsFormula) else None  # fh.bf(...)
    text = formula.formula if isinstance(formula, BrmsFormula) else formula
    # R/brms names -> Bambi's; Bambi's other families passed through
    bambi_family, bambi_link = resolve_family(options.family, options.link, bambi_family_names())
    spec = build_spec(
        text,
        family=bambi_family,
        link=bambi_link,
        correlated=correlated,
        noncentered=options.noncentered,
        lkj_eta=options.lkj_eta,
    )
    dpars = dpar_formulas(bform, correlated) if bform is not None and bform.dpars else ()
    checks.check_formula_roles(spec)  # y ~ y, (y | g), (g | g)
    if not (collapse is True or collapse is False or collapse == "auto"):
        raise OptionError(f"collapse must be 'auto', True or False, got {collapse!r}.")
    return replace(spec, dpars=dpars, collapse=collapse)


@dataclass(frozen=True)
class Completed:
    """What stage 2 gives the backend: the complete spec and everything it was completed from.

    Attributes
    ----------
    spec : ModelSpec
        The complete spec (parameterization decided, LKJ shapes of class-``cor`` priors set).
    data : pandas.DataFrame
        The cleaned copy of the data; ``dropped`` rows were incomplete.
    parameterization : dict
        The decisions of :func:`formulahier.parameterization.resolve_auto`.
    blocks : list of BlockInfo
        The group-level blocks as planned on the data.
    priors : dict
        Bambi-style priors (checked values); ``prior_specs`` the brms-style ones.

    """

    spec: ModelSpec
    data: pd.DataFrame
    dropped: Any
    parameterization: Any
    blocks: list[BlockInfo]
    priors: dict[str, Any]
    prior_specs: list[PriorSpec]


def complete_spec(spec: ModelSpec, data: Any, priors: Any) -> Completed:
    """Stage 2: the data checked against the spec, and the spec completed from the data."""
    frame, dropped = prepare_data(data, spec)
    # noncentered="auto": centered or non-centered per grouping factor, from the data
    spec, parameterization = resolve_auto(spec, frame)
    dict_priors, prior_specs = split_priors(priors)  # Bambi dict, fh.prior list
    checks.check_prior_values(dict_priors)  # distribution names, scales > 0
    checks.check_prior_values({str(p): p.dist for p in prior_specs if not isinstance(p.dist, str)})
    blocks = _translated(lambda: plan_blocks(spec, frame), spec, frame)
    if prior_specs:
        every, per_factor = resolve_lkj(prior_specs, blocks)
        spec = replace(
            spec,
            lkj_eta=spec.lkj_eta if every is None else every,
            lkj_eta_groups=tuple(per_factor.items()),
        )
    return Completed(spec, frame, dropped, parameterization, blocks, dict_priors, prior_specs)


def build_backend(done: Completed) -> HierModel:
    """Stage 3: the backend from the complete spec, the planned blocks and the Bambi prior dict.

    Raises
    ------
    FormulaError, PriorError, MemoryLimitError
        What Bambi or formulae raise on a model they cannot build, with a hint where the cause
        is known.

    """
    spec, data, priors = done.spec, done.data, done.priors

    def build() -> HierModel:
        formula: Any = spec.population_formula
        if spec.dpars:
            import bambi as bmb

            formula = bmb.Formula(formula, *(f for _, f in spec.dpars))
        with warnings.catch_warnings():  # Bambi warns on unknown prior names; we refuse them
            warnings.filterwarnings("ignore", "Unused name", UserWarning)
            return HierModel(
                spec,
                data,
                formula,
                family=spec.family,
                link=spec.link,
                priors=dict(priors) or None,
                blocks=done.blocks,
            )

    backend = _translated(build, spec, data)
    checks.check_prior_names(priors, backend, backend.fh_terms)  # {"days": ...} for Days
    checks.check_design(backend, data, done.blocks)  # log(x <= 0), collinear predictors
    return backend


def _translated[T](step: Callable[[], T], spec: ModelSpec, data: pd.DataFrame) -> T:
    """Run a building step; Bambi's and formulae's exceptions become formulahier's."""
    try:
        return step()
    except FormulahierError:
        raise
    except MemoryError:  # not the formula's fault: say what needs the memory
        raise MemoryLimitError(
            f"Out of memory while building the model on {len(data):,} rows: the "
            "population-level design (rows x population columns) and the group columns "
            "(rows x effects) did not fit. Use fewer rows or population terms, or a machine "
            "with more memory."
        ) from None
    except Exception as exc:  # Bambi/formulae raise plain exceptions on bad models
        if "`priors`" in str(exc) or "Prior must be" in str(exc):
            raise PriorError(f"Bad prior dict: {exc}") from exc
        hint = bambi_hint(exc, spec.family)
        raise FormulaError(
            f"Bambi could not build this model: {exc}{hint}", spec.formula
        ) from exc


def brms_priors(
    backend: HierModel, blocks: Sequence[BlockInfo], prior_specs: Sequence[PriorSpec]
) -> Resolved:
    """Stage 4: brms-style priors matched against the model's slots and set on Bambi's terms.

    Bambi's defaults (already scaled to the data) stay where no prior names a slot. The LKJ
    shapes were put into the spec at stage 2 (:func:`resolve_lkj` gives the same values).
    """
    res = resolve_priors(prior_specs, backend, blocks)
    bambi_part, group_part = split_group_priors(res.bambi, set(backend.fh_terms))
    if bambi_part:
        backend.set_priors(priors=bambi_part)
    backend.set_group_priors(group_part)
    return res


def bambi_hint(exc: Exception, family: object) -> str:
    """Advice to append to a Bambi/formulae error message for known causes (or ``""``)."""
    text = str(exc)
    if isinstance(exc, KeyError):
        return (
            f" ({text} is not a function or column formulae knows: use C()/factor(), I(), "
            "log(), exp(), scale(), center(), poly(), offset() or a column name)"
        )
    if "setting an array element with a sequence" in text and family in ("bernoulli", "binomial"):
        return (
            " (Bambi 0.21 cannot auto-scale the default prior of a multi-column numeric term such "
            "as poly() in bernoulli/binomial models with a logit or probit link; give that term "
            "a prior, e.g. priors={'poly(x, 2)': bmb.Prior('Normal', mu=0, sigma=2.5)})"
        )
    return ""
