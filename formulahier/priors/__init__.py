"""Priors: brms-style priors by class, their translation into Bambi's form, and their encoding.

Users set priors the way brms does, by *class*::

    fh.prior("normal(0, 0.1)", "b", coef="TEMP")     # one slope
    fh.prior("exponential(1)", "sd", group="station")  # every sd of one grouping factor
    fh.prior("lkj(4)", "cor")                        # every correlation matrix

* :mod:`.dists`: the distributions in brms/Stan spelling and their PyMC names (one table);
* :mod:`.specs`: :func:`prior` / :class:`PriorSpec` and the translation of one into a Bambi prior;
* :mod:`.resolve`: the slots of a model; :func:`resolve_lkj` (from the planned blocks, before the
  backend is built) and :func:`resolve_priors` (the Bambi prior dict keyed by term name);
  :mod:`formulahier.prior_check` lists the slots, like brms's ``get_prior``;
* :mod:`.encoding`: a prior specification as JSON-able data (saved fits) and back.

Bambi's own dict form still works.
"""

from .dists import DISTRIBUTIONS, TO_BRMS, Dist, fmt_number, parse_dist
from .encoding import decode_priors, encode_priors
from .resolve import Resolved, group_slots, resolve_lkj, resolve_priors, slots
from .specs import PriorSpec, lkj_eta_of, prior, split_priors

__all__ = [
    "DISTRIBUTIONS",
    "TO_BRMS",
    "Dist",
    "PriorSpec",
    "Resolved",
    "decode_priors",
    "encode_priors",
    "fmt_number",
    "group_slots",
    "lkj_eta_of",
    "parse_dist",
    "prior",
    "resolve_lkj",
    "resolve_priors",
    "slots",
    "split_priors",
]
