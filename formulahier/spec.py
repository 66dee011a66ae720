"""What a model is: small frozen descriptions, free of Bambi and PyMC objects.

The formula layer (:mod:`formulahier.formula`) turns lme4/brms text into a :class:`ModelSpec`;
the backend (:mod:`formulahier.backend`) decides how to build it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import MODEL_OPTIONS  # the names of ModelOptions' fields, here for old imports

__all__ = ["MODEL_OPTIONS", "GroupBlock", "ModelSpec", "effect_label"]


def effect_label(term: str) -> str:
    """Return the lme4/brms label of a group-level term expression (``"1"`` is the intercept)."""
    return "Intercept" if term == "1" else term


@dataclass(frozen=True)
class GroupBlock:
    """One block of group-level effects: the terms that vary over one grouping factor.

    Parameters
    ----------
    factor : str
        Grouping factor as Bambi names it: a column (``"station"``) or an interaction of
        columns (``"a:b"``) for nested or crossed-within designs.
    terms : tuple of str
        Effect expressions in Bambi's spelling; ``"1"`` is the group intercept.
    correlated : bool
        Whether the effects of the block share an LKJ correlation matrix (lme4's ``|``).
    noncentered : bool or "auto"
        ``True``: ``u = (L z)^T`` with standard normal ``z``. ``False``: hierarchical centering,
        ``beta_j ~ MvNormal(b, S)`` with ``u = beta - b``. ``"auto"``: decided from the data
        before the model is built (:mod:`formulahier.parameterization`).
    source : str
        The bar term as the user wrote it, for messages.

    """

    factor: str
    terms: tuple[str, ...]
    correlated: bool = True
    noncentered: bool | str = True
    source: str = ""

    @property
    def has_intercept(self) -> bool:
        """Whether the block contains the group intercept."""
        return "1" in self.terms

    @property
    def bambi_terms(self) -> tuple[str, ...]:
        """Names Bambi gives the block's group-specific terms (``"TEMP|station"``)."""
        return tuple(f"{t}|{self.factor}" for t in self.terms)

    @property
    def labels(self) -> tuple[str, ...]:
        """lme4/brms labels of the block's effects (``"Intercept"``, ``"TEMP"``)."""
        return tuple(effect_label(t) for t in self.terms)

    @property
    def bambi_formula(self) -> str:
        """The block as a Bambi formula term, e.g. ``"(1 + TEMP | station)"``."""
        slopes = [t for t in self.terms if t != "1"]
        head = "1" if self.has_intercept else "0"
        return "(" + " + ".join([head, *slopes]) + f" | {self.factor})"


@dataclass(frozen=True)
class ModelSpec:
    """A multilevel model as lme4/brms means it.

    Parameters
    ----------
    formula : str
        The formula as written by the user.
    response : str
        Left-hand side text.
    population : str
        Population-level (fixed-effects) right-hand side, without bar terms.
    blocks : tuple of GroupBlock
        Group-level blocks in formula order.
    family : str
        Family name as given.
    link : str or None
        Link name, ``None`` for the family's default.
    lkj_eta : float
        Shape of the LKJ prior on every correlation matrix (brms ``lkj(eta)``).
    dpars : tuple of (str, str)
        Distributional formulas for auxiliary parameters (brms ``bf(y ~ x, sigma ~ z)``) as
        ``(parameter, Bambi formula)`` pairs, e.g. ``("sigma", "sigma ~ z + (1 | g)")``; their
        group-level effects are independent (Bambi's).
    lkj_eta_groups : tuple of (str, float)
        LKJ shape per grouping factor (brms ``prior(lkj(4), class = cor, group = g)``),
        overriding ``lkj_eta`` for that factor.
    collapse : bool or "auto"
        Integrate the group effects out of a gaussian model and draw them exactly after
        sampling (:mod:`formulahier.collapsed`): ``"auto"`` where that is exact, ``True`` to
        insist, ``False`` never.

    """

    formula: str
    response: str
    population: str
    blocks: tuple[GroupBlock, ...] = ()
    family: str = "gaussian"
    link: str | None = None
    lkj_eta: float = 2.0
    dpars: tuple[tuple[str, str], ...] = ()
    lkj_eta_groups: tuple[tuple[str, float], ...] = ()
    collapse: bool | str = "auto"

    def eta_for(self, factor: str) -> float:
        """LKJ shape for ``factor``: its ``lkj_eta_groups`` entry, else ``lkj_eta``."""
        return dict(self.lkj_eta_groups).get(factor, self.lkj_eta)

    @property
    def factors(self) -> tuple[str, ...]:
        """Grouping factors in order of first appearance."""
        return tuple(dict.fromkeys(b.factor for b in self.blocks))

    @property
    def bambi_formula(self) -> str:
        """The whole model in formulae's spelling: population terms plus one bar per block.

        Used to know which columns the model reads; Bambi itself is given only
        :attr:`population_formula` (the blocks are built from integer codes by the backend).
        """
        rhs = " + ".join([self.population, *(b.bambi_formula for b in self.blocks)])
        return f"{self.response} ~ {rhs}"

    @property
    def population_formula(self) -> str:
        """The formula Bambi is given: the response and the population-level terms."""
        return f"{self.response} ~ {self.population}"

    def variables(self) -> frozenset[str]:
        """The columns the model reads (formulae's ``var_names``, formulaic's required variables).

        The main formula's and those of the distributional formulas, whose response is a
        parameter, not a column. Raises whatever formulae raises on a formula it cannot read
        (callers translate it).
        """
        import formulae as fm  # the formula parser Bambi uses; imported when asked

        needed = set(fm.model_description(self.bambi_formula).var_names)
        for name, text in self.dpars:
            needed |= set(fm.model_description(text).var_names) - {name}
        return frozenset(needed - {""})

    def blocks_of(self, factor: str) -> tuple[GroupBlock, ...]:
        """Blocks whose grouping factor is ``factor``."""
        return tuple(b for b in self.blocks if b.factor == factor)
