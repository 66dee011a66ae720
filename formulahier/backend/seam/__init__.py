"""The seam to Bambi's internals: the one place that knows Bambi's private structure.

A Bambi upgrade means checking this subpackage (and its tests); no module outside it imports
a Bambi or formulae submodule (``tests/test_architecture.py`` checks that). What is here:

* :mod:`.build`: :class:`PyMCBackend`, Bambi's ``PyMCModel.build`` (a few lines, copied) with
  one change: the parent parameter's component is a subclass of Bambi's whose
  ``build_group_specific_terms`` hook has each block build itself from integer codes, or adds
  the blocks' collapsed likelihood (:mod:`formulahier.collapsed`);
* :mod:`.blocks`: :class:`BlockTerm`, one block built into the PyMC model, with Bambi's term
  builder (``bambi.backend.terms.GroupSpecificTerm``) for plain independent terms, so their
  variables are exactly Bambi's (``x|g_offset``, ``x|g_sigma``, ``x|g``), and :func:`gather`;
* :mod:`.population`: what is read from Bambi's built model: the population design and its
  centering, the terms' priors, the prior scaler;
* :mod:`.family`: aliases, population-level predictions, link and family functions, Bambi's
  cleaning of draws and the names a formula may call;
* :mod:`.deferred`: Bambi's plotting imports (``bambi.interpret``, arviz-plots) deferred until
  something uses them; it runs before this package first imports Bambi.

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

from .deferred import deferred_imports, is_deferred

with deferred_imports():  # Bambi's plotting imports: stand-ins while Bambi is imported
    from .blocks import BlockTerm, gather
    from .build import PyMCBackend
    from .family import (
        aliased_name,
        bambi_family_names,
        bambi_posterior,
        family_log_likelihood,
        family_posterior_predictive,
        formula_namespace,
        inverse_link,
        link_function,
        population_linpred,
    )
    from .population import (
        PopulationDesign,
        default_group_sd,
        has_response_dim,
        population_design,
        population_names,
        population_priors,
        sd_prior_dist,
    )

__all__ = [
    "BlockTerm",
    "PopulationDesign",
    "PyMCBackend",
    "aliased_name",
    "bambi_family_names",
    "bambi_posterior",
    "default_group_sd",
    "deferred_imports",
    "family_log_likelihood",
    "family_posterior_predictive",
    "formula_namespace",
    "gather",
    "has_response_dim",
    "inverse_link",
    "is_deferred",
    "link_function",
    "population_design",
    "population_linpred",
    "population_names",
    "population_priors",
    "sd_prior_dist",
]
