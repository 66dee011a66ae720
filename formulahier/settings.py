"""What a model is built with and how it is sampled: two frozen dataclasses, spelled once.

:class:`ModelOptions` holds the keyword options that define the model (``family``, ``priors``,
``correlated``, ...; what a saved fit stores to rebuild it), :class:`SamplerSettings` those that
say how it is sampled (``sampler``, ``method``, ``draws``, ``tune``, ``chains``, ``seed``,
``progressbar``, and every other keyword for ``pymc.sample``: ``target_accept``, ``cores``...).
Users type keywords (``fh.fit(..., draws=500)``); :func:`formulahier.fit`,
:func:`formulahier.model`, :class:`formulahier.Model` and :meth:`formulahier.Model.fit` turn
them into these once (their signatures are made from the fields by :func:`takes_keywords`),
and the command line takes its defaults from them.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .priors import PriorSpec

__all__ = [
    "MODEL_OPTIONS",
    "SAMPLER_SETTINGS",
    "ModelOptions",
    "SamplerSettings",
    "takes_keywords",
]


@dataclass(frozen=True)
class ModelOptions:
    """The keyword options that define a model (not how it is sampled).

    Parameters
    ----------
    family, link : str
        Response family (Bambi names) and link (``None``: the family's default).
    priors : list of fh.prior(...) or dict, optional
        brms-style priors by class, ``[fh.prior("normal(0, 0.1)", "b", coef="TEMP"),
        fh.prior("exponential(1)", "sd", group="station"), fh.prior("lkj(4)", "cor")]``
        (docs/priors.md; ``fh.get_prior`` lists the slots), or Bambi's dict keyed by term name.
    correlated : bool or dict
        ``True`` (lme4's meaning): effects in one ``|`` bar share an LKJ correlation matrix.
        ``False``: independent (Bambi's behaviour). A dict sets it per grouping factor.
    noncentered : bool, "auto" or dict
        ``True``: ``u = (L z)^T``, best with few observations per group. ``False``:
        hierarchically centered ``beta_j ~ MvNormal(b, S)``, best with many. ``"auto"``
        (default): chosen per grouping factor from the data (docs/performance.md); the choice
        is in ``fit.fh_model.parameterization``. Per factor if a dict.
    lkj_eta : float
        LKJ shape of the correlation prior (default 2: mildly favours small correlations).
    collapse : "auto", bool
        Gaussian models with one grouping factor: integrate the group effects out while
        sampling (exact; the sampler sees only the hyperparameters) and draw them exactly
        afterwards. ``"auto"`` (default) wherever that is exact, ``False`` never, ``True``
        raises if the model does not allow it. The summary header says when it ran.
    """

    family: str = "gaussian"
    link: str | None = None
    priors: Mapping[str, Any] | Sequence[PriorSpec] | None = None
    correlated: bool | Mapping[str, bool] = True
    noncentered: bool | str | Mapping[str, bool | str] = "auto"
    lkj_eta: float = 2.0
    collapse: bool | str = "auto"

    def keywords(self) -> dict[str, Any]:
        """The options as keywords, as given (enough, with the data, to rebuild the model)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SamplerSettings:
    """How a model is sampled (or approximated).

    Parameters
    ----------
    sampler : {"auto", "pymc", "nutpie", "numpyro", "blackjax"}
        NUTS implementation. ``"auto"`` (default): PyMC's sampler, or nutpie where it is
        installed and one gradient is costly (rule and measurements in docs/performance.md).
        The summary header names the one that ran.
    method : {"nuts", "laplace", "pathfinder", "advi"}
        ``"nuts"`` (default): MCMC. ``"laplace"`` / ``"pathfinder"`` (pymc-extras) and
        ``"advi"`` (PyMC) are fast approximations: same :class:`~formulahier.Fit` and summary,
        whose header names the method and whose diagnostics give the Pareto k-hat of the
        importance ratios and say plainly when not to trust it (docs/performance.md);
        ``draws x chains`` draws are kept.
    draws, tune, chains : int
        Draws kept per chain, warm-up draws per chain (unused by the approximations), number
        of chains.
    seed : int, optional
        Random seed; the same seed gives the same draws.
    progressbar : bool
        Show PyMC's progress bar (on standard error).
    sampler_kwargs : dict
        Every other keyword, passed to :func:`pymc.sample`: ``target_accept`` (0.9 by default
        here; raise it to 0.95 if divergences remain), ``cores``, ``max_treedepth``, ...
    """

    sampler: str = "auto"
    method: str = "nuts"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int | None = None
    progressbar: bool = True
    sampler_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> SamplerSettings:
        """The named settings from ``keywords``; the rest go to ``sampler_kwargs``."""
        named = {k: v for k, v in keywords.items() if k in SAMPLER_SETTINGS}
        rest = {k: v for k, v in keywords.items() if k not in SAMPLER_SETTINGS}
        return cls(**named, sampler_kwargs=rest)

    def keywords(self) -> dict[str, Any]:
        """The settings as the keywords of :meth:`formulahier.Model.fit`."""
        named = {name: getattr(self, name) for name in SAMPLER_SETTINGS}
        return {**named, **self.sampler_kwargs}

    @classmethod
    def of_fit(cls, record: Mapping[str, Any]) -> SamplerSettings:
        """The settings a fit was sampled with, from its record (``fit.settings``), to refit.

        The progress bar is off unless asked for again.
        """
        named = {k: v for k, v in record.items() if k in SAMPLER_SETTINGS}
        kept = record.get("sampler_kwargs", {})
        return cls.from_keywords({"progressbar": False, **named, **kept})

    def replace(self, **changes: Any) -> SamplerSettings:
        """A copy with ``changes`` (named settings, or keywords for ``pymc.sample``)."""
        named = {k: v for k, v in changes.items() if k in SAMPLER_SETTINGS}
        rest = {k: v for k, v in changes.items() if k not in SAMPLER_SETTINGS}
        return dataclasses.replace(self, **named, sampler_kwargs={**self.sampler_kwargs, **rest})


#: Keyword options of ``fh.model`` / ``fh.fit`` that define the model (not the sampling); what a
#: saved fit stores to rebuild it.
MODEL_OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(ModelOptions))
#: The named sampler settings (every other keyword of ``Model.fit`` is for ``pymc.sample``).
SAMPLER_SETTINGS: tuple[str, ...] = tuple(
    f.name for f in fields(SamplerSettings) if f.name != "sampler_kwargs"
)

F = TypeVar("F", bound=Callable[..., Any])


def takes_keywords(*kinds: type) -> Callable[[F], F]:
    """Give a function that takes ``**keywords`` the signature of these dataclasses' fields.

    The function keeps its own positional parameters; each field becomes a keyword-only
    parameter with its default (``SamplerSettings.sampler_kwargs`` the ``**sampler_kwargs``),
    so ``help(fh.fit)`` and ``inspect.signature`` show every keyword, from one spelling.
    """

    def decorate(func: F) -> F:
        own = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        params = list(own)
        var_keyword = None
        for kind in kinds:
            for f in fields(kind):
                if f.name == "sampler_kwargs":
                    var_keyword = inspect.Parameter(f.name, inspect.Parameter.VAR_KEYWORD)
                    continue
                default = f.default if f.default is not dataclasses.MISSING else None
                params.append(
                    inspect.Parameter(
                        f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=f.type
                    )
                )
        if var_keyword is not None:
            params.append(var_keyword)
        signature = inspect.signature(func)
        func.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        # help(func): its own docstring, then the keywords' (one spelling: the dataclasses')
        docs = [inspect.cleandoc(func.__doc__ or "")]
        docs += [f"Keywords of {k.__name__}: {inspect.cleandoc(k.__doc__ or '')}" for k in kinds]
        func.__doc__ = "\n\n".join(docs)
        return func

    return decorate
