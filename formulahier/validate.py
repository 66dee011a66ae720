"""Checks of every argument before anything is sampled: options, keywords, sampler options.

One validator per kind of argument (positive integer, probability, seed, a choice among
names, ...), each raising a :class:`~formulahier.errors.FormulahierError` subclass whose message
names the argument and its valid values. Checks of the data, the design and the priors are in
:mod:`formulahier.checks`. The entry points (:func:`formulahier.fit`, :func:`formulahier.model`,
:meth:`formulahier.Model.fit`, :meth:`formulahier.Fit.predict`, the result tables) call these,
so a bad input fails in milliseconds, not after compiling a model.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .errors import OptionError
from .settings import MODEL_OPTIONS, SAMPLER_SETTINGS

__all__ = [
    "boolean",
    "check_keywords",
    "choice",
    "did_you_mean",
    "is_real",
    "nonneg_int",
    "params_of",
    "positive_int",
    "positive_real",
    "probability",
    "progressbar",
    "sampler_options",
    "seed",
]

# --------------------------------------------------------------------------------------------
# single values


def did_you_mean(name: object, candidates: Iterable[str]) -> str:
    """``" (did you mean 'Days'?)"`` for the closest candidates to ``name``, or ``""``."""
    candidates = [str(c) for c in candidates]
    text = str(name)
    close = [c for c in candidates if c.lower() == text.lower() and c != text]
    close += [c for c in difflib.get_close_matches(text, candidates, 3, 0.6) if c not in close]
    close = list(dict.fromkeys(close))
    return f" (did you mean {' or '.join(map(repr, close[:3]))}?)" if close else ""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """Whether ``value`` is a real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def positive_int(value, name: str, *, error: type[Exception] = OptionError) -> int:
    """``value`` as an int >= 1 (``True`` is not an int here)."""
    if not _is_int(value) or value < 1:
        raise error(f"`{name}` must be an integer >= 1; got {value!r}.")
    return int(value)


def nonneg_int(value, name: str, *, error: type[Exception] = OptionError) -> int:
    """``value`` as an int >= 0."""
    if not _is_int(value) or value < 0:
        raise error(f"`{name}` must be an integer >= 0; got {value!r}.")
    return int(value)


def probability(value, name: str, *, error: type[Exception] = OptionError) -> float:
    """``value`` as a float strictly between 0 and 1 (``ci_prob``, ``target_accept``)."""
    if not is_real(value) or not 0 < value < 1:
        example = "0.95" if "prob" in name else "0.9"
        raise error(
            f"`{name}` must be a number strictly between 0 and 1 (e.g. {example}); got {value!r}."
        )
    return float(value)


def positive_real(value, name: str, *, error: type[Exception] = OptionError) -> float:
    """``value`` as a finite float > 0 (``lkj_eta``)."""
    if not is_real(value) or not (math.isfinite(value) and value > 0):
        raise error(f"`{name}` must be a finite number > 0; got {value!r}.")
    return float(value)


def seed(value, name: str = "seed"):
    """``None`` or an int >= 0 (what makes draws reproducible)."""
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise OptionError(f"`{name}` must be None or an integer >= 0; got {value!r}.")
    return int(value)


def boolean(value, name: str) -> bool:
    """``True`` or ``False`` (numpy booleans too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise OptionError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def progressbar(value) -> None:
    """``True``/``False`` (or one of PyMC's progress bar styles, a string)."""
    if not isinstance(value, (bool, np.bool_, str)):
        raise OptionError(f"`progressbar` must be True or False; got {value!r}.")


def choice(value, name: str, choices: Iterable[str], *, error: type[Exception] = OptionError):
    """``value`` if it is one of ``choices``; else the error, with the closest choices."""
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    raise error(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}{hint}.")


def check_keywords(
    given: Iterable[str],
    allowed: Iterable[str],
    where: str,
    elsewhere: Mapping[str, str] | None = None,
    valid: str | None = None,
) -> None:
    """Refuse keyword names not in ``allowed``, suggesting the closest ones.

    ``elsewhere`` maps names that belong to another function to a hint (``"draws"`` given to
    :func:`formulahier.model`: "pass it to .fit()"). ``valid`` describes the valid names
    (default: their list).
    """
    allowed = list(dict.fromkeys(allowed))
    elsewhere = dict(elsewhere or {})
    for key in given:
        if key in allowed:
            continue
        if key in elsewhere:
            raise OptionError(f"{where} takes no `{key}`: {elsewhere[key]}")
        hint = did_you_mean(key, [*allowed, *elsewhere])
        raise OptionError(
            f"{where} got an unknown keyword argument `{key}`{hint}. "
            f"Valid: {valid or ', '.join(sorted(allowed))}."
        )


# --------------------------------------------------------------------------------------------
# sampler keyword arguments (passed on to pymc.sample)

# set by formulahier itself: the user sets them another way, or not at all
_RESERVED = {
    "random_seed": "pass seed= instead.",
    "nuts_sampler": "pass sampler= instead.",
    "inference_method": "pass sampler= instead.",
    "model": "formulahier samples its own model.",
    "var_names": "formulahier chooses the variables to keep.",
    "return_inferencedata": "formulahier needs the InferenceData that pymc.sample returns.",
}
_INIT = (
    "auto",
    "adapt_diag",
    "jitter+adapt_diag",
    "jitter+adapt_diag_grad",
    "adapt_full",
    "jitter+adapt_full",
    "advi",
    "advi+adapt_diag",
    "advi_map",
    "map",
)


def params_of(func, skip: Iterable[str] = ()) -> set[str]:
    """Names of the keyword parameters of ``func`` (empty if it has no signature)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n for n, p in sig.parameters.items() if p.kind in kinds} - {"self", *skip}


@functools.cache
def _top_level_names() -> frozenset[str]:
    """Keywords pymc.sample (through Bambi's fit) takes for every sampler."""
    import bambi as bmb
    import pymc as pm

    names = params_of(pm.sample) | params_of(bmb.Model.fit)
    names -= {"draws", "tune", "chains", "progressbar", "kwargs", *_RESERVED}
    return frozenset(names | {"target_accept", "nuts"})


@functools.cache
def _step_names(sampler: str) -> frozenset[str]:
    """Keywords of the NUTS implementation of ``sampler`` (pymc: passed to ``pymc.NUTS``)."""
    names: set[str] = {"target_accept", "max_treedepth"}
    if sampler == "pymc":
        import pymc as pm
        from pymc.step_methods.hmc.base_hmc import BaseHMC

        skip = {"vars", "model", "initial_point", "potential", "blocked", "dtype", "rng"}
        names |= params_of(pm.NUTS.__init__, skip) | params_of(BaseHMC.__init__, skip)
    elif sampler == "nutpie":
        try:
            import nutpie
            from nutpie import _lib

            names |= params_of(nutpie.sample) - {
                "compiled_model", "draws", "tune", "chains", "cores", "seed", "save_warmup",
                "progress_bar", "progress_callback", "store_unconstrained",
            }  # fmt: skip
            for kind in ("Diag", "LowRank"):
                names |= _leaf_keys(getattr(_lib.PyNutsSettings, kind)(0).as_dict())
        except Exception:  # noqa: BLE001 - nutpie missing or changed: no extra names
            pass
    else:  # numpyro, blackjax
        try:
            from pymc.sampling import jax as pymc_jax

            names |= params_of(pymc_jax.sample_jax_nuts) - {
                "draws", "tune", "chains", "random_seed", "initvals", "model", "var_names",
                "progressbar", "nuts_sampler", "nuts_kwargs", "idata_kwargs",
            }  # fmt: skip
            if sampler == "numpyro":
                from numpyro.infer import NUTS

                names |= params_of(NUTS.__init__, {"model", "potential_fn"})
        except Exception:  # noqa: BLE001 - jax stack missing: the sampler check said so
            pass
    return frozenset(names)


def _leaf_keys(tree) -> set[str]:
    out = set()
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            out.add(str(key))
            out |= _leaf_keys(value)
    return out


def sampler_options(kwargs: Mapping[str, Any], sampler: str, where: str) -> dict[str, Any]:
    """Check the keyword arguments meant for ``pymc.sample``; return them as pymc wants them.

    Valid names are ``pymc.sample``'s and Bambi's ``fit`` parameters, plus the options of the
    NUTS implementation of ``sampler`` (``pymc.NUTS``'s, nutpie's, numpyro's). For a sampler other
    than PyMC's, its own options are moved into ``nuts={...}`` (how pymc passes them on).
    """
    top, step = _top_level_names(), _step_names(sampler)
    model_options = {
        k: "it is an option of the model: pass it to fh.model() or fh.fit()."
        for k in (*MODEL_OPTIONS, "data")
    }
    elsewhere = {**_RESERVED, **(model_options if where.endswith(".fit()") else {})}
    check_keywords(
        kwargs,
        [*top, *step, *SAMPLER_SETTINGS],
        where,
        elsewhere,
        valid=f"{', '.join(SAMPLER_SETTINGS)}, target_accept, cores, and the "
        f"options of pymc.sample and of the {sampler} NUTS sampler",
    )
    out = dict(kwargs)
    for key, value in kwargs.items():
        if key in ("cores", "n_init", "max_treedepth", "maxdepth"):
            positive_int(value, key)
        elif key == "target_accept":
            probability(value, key)
        elif key == "init":
            choice(value, key, _INIT)
        elif key in ("nuts", "idata_kwargs", "compile_kwargs") and value is not None:
            if not isinstance(value, Mapping):
                raise OptionError(f"`{key}` must be a dict of options; got {value!r}.")
        elif key in ("discard_tuned_samples", "compute_convergence_checks", "quiet"):
            boolean(value, key)
    if sampler != "pymc":
        moved = {k: out.pop(k) for k in list(out) if k not in top}
        if moved:
            nuts = dict(out.get("nuts") or {})
            twice = sorted(set(nuts) & set(moved))
            if twice:
                raise OptionError(f"{where}: {twice} given both directly and in nuts={{...}}.")
            out["nuts"] = {**nuts, **moved}
    return out


def sampling(draws, tune, chains, seed_value) -> None:
    """Check the sampling options shared by :func:`~formulahier.fit` and ``Model.fit``."""
    positive_int(draws, "draws")
    nonneg_int(tune, "tune")
    positive_int(chains, "chains")
    seed(seed_value)
