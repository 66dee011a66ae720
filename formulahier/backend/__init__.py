"""How a model is built: group-level blocks from integer codes inside Bambi's PyMC model.

* :mod:`.model`: :class:`HierModel`, Bambi's model of the population part plus the blocks
  (their data, priors, and whether the gaussian likelihood is collapsed);
* :mod:`.seam`: the one module that knows Bambi's internals (its PyMC backend, component and
  term builder, prior scaler, family functions): a Bambi upgrade means checking that file;
* :mod:`.draws`: what the other stages read from a fit's draws (sds per block, exact draws of
  the group effects of a collapsed fit).
"""

from ..blas import configure_blas

configure_blas()  # before PyTensor first looks for a BLAS (formulahier/blas.py)

from ..groups import Column  # noqa: E402
from . import seam  # noqa: E402, F401  (first of the backend: it defers Bambi's plotting imports)
from .draws import add_exact_effects, block_sds, observed_data, stacked_draws  # noqa: E402
from .model import BlockInfo, HierModel, corr_name, plan_blocks, split_group_priors  # noqa: E402
from .seam import (  # noqa: E402
    aliased_name,
    bambi_family_names,
    bambi_posterior,
    family_log_likelihood,
    family_posterior_predictive,
    gather,
    inverse_link,
    link_function,
    population_design,
    population_linpred,
    population_names,
)

__all__ = [
    "BlockInfo",
    "Column",
    "HierModel",
    "add_exact_effects",
    "aliased_name",
    "bambi_family_names",
    "bambi_posterior",
    "block_sds",
    "corr_name",
    "family_log_likelihood",
    "family_posterior_predictive",
    "gather",
    "inverse_link",
    "link_function",
    "observed_data",
    "plan_blocks",
    "population_design",
    "population_linpred",
    "population_names",
    "split_group_priors",
    "stacked_draws",
]
