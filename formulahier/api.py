"""The one-line entry points: :func:`model` builds, :func:`fit` builds and samples; :func:`load`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import validate as check
from .comparison import compare
from .errors import (
    FitFileError,
)
from .fitted import Fit
from .formula import BrmsFormula
from .modeling import Model
from .priors import PriorSpec
from .samplers import check_method, check_options, check_sampler
from .spec import MODEL_OPTIONS

if TYPE_CHECKING:
    pass


__all__ = ["compare", "fit", "get_prior", "load", "model"]


def get_prior(formula: str | BrmsFormula, data: Any, **options: Any) -> pd.DataFrame:
    """The prior slots of a model and their priors, like brms's ``get_prior``.

    Parameters
    ----------
    formula : str
        lme4/brms formula.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        The data (default priors are scaled to it).
    **options
        ``family``, ``link``, ``priors``, ``correlated``, ... as for :func:`model`.

    Returns
    -------
    pandas.DataFrame
        One row per slot: ``prior`` (brms spelling), ``class``, ``coef``, ``group``, ``source``
        (``"default"``, ``"user"``, ``"(vectorized)"``), ``pymc`` and ``parameter`` (the PyMC
        variable it reaches). Set any slot with ``fh.prior(prior, class, coef, group)``.

    """
    _check_model_options(options, "fh.get_prior()")
    return Model(formula, data, **options).prior_summary()


_SAMPLING_HINT = "it is a sampling option: pass it to .fit() (or use fh.fit())."


def _check_model_options(options: Mapping[str, Any], where: str) -> None:
    allowed = MODEL_OPTIONS
    sampling = (
        "sampler", "method", "draws", "tune", "chains", "seed", "progressbar", "target_accept"
    )
    check.check_keywords(options, allowed, where, dict.fromkeys(sampling, _SAMPLING_HINT))


def model(formula: str | BrmsFormula, data: Any, **options: Any) -> Model:
    """Build a multilevel model from an lme4/brms formula without sampling.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        Never modified.
    **options
        ``family``, ``link``, ``priors``, ``correlated``, ``noncentered``, ``lkj_eta``,
        ``collapse``; see
        :func:`fit`.

    Returns
    -------
    Model
        Call ``.fit(...)`` to sample.

    """
    _check_model_options(options, "fh.model()")
    return Model(formula, data, **options)


def fit(
    formula: str | BrmsFormula,
    data: Any,
    *,
    family: str = "gaussian",
    link: str | None = None,
    priors: Mapping[str, Any] | Sequence[PriorSpec] | None = None,
    correlated: bool | Mapping[str, bool] = True,
    noncentered: bool | str | Mapping[str, bool | str] = "auto",
    lkj_eta: float = 2.0,
    collapse: bool | str = "auto",
    sampler: str = "auto",
    method: str = "nuts",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
    **sampler_kwargs: Any,
) -> Fit:
    """Fit a Bayesian multilevel model written as an lme4/brms formula.

    Parameters
    ----------
    formula : str
        lme4/brms formula: ``(x | g)`` correlated intercept and slope per level of ``g``,
        ``(x || g)`` independent ones, ``(1 | a/b)`` nested, ``(1 | a) + (1 | b)`` crossed.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        Never modified. Rows with missing values in used columns are dropped with a warning.
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
    sampler : {"auto", "pymc", "nutpie", "numpyro", "blackjax"}
        NUTS implementation. ``"auto"`` (default): PyMC's sampler, or nutpie where it is
        installed and one gradient is costly (rule and measurements in docs/performance.md).
        The summary header names the one that ran.
    method : {"nuts", "laplace", "pathfinder", "advi"}
        ``"nuts"`` (default): MCMC. ``"laplace"`` / ``"pathfinder"`` (pymc-extras) and
        ``"advi"`` (PyMC) are fast approximations: same :class:`Fit` and summary, whose header
        names the method and whose diagnostics give the Pareto k-hat of the importance ratios
        and say plainly when not to trust it (docs/performance.md).
    draws, tune, chains : int
        Draws kept per chain, warm-up draws per chain, number of chains.
    seed : int, optional
        Random seed; the same seed gives the same draws.
    progressbar : bool
        Show PyMC's progress bar.
    **sampler_kwargs
        Passed to :func:`pymc.sample`, e.g. ``target_accept=0.95``.

    Returns
    -------
    Fit
        ``print(fit)`` shows the lme4/brms-style summary.

    Examples
    --------
    >>> import formulahier as fh
    >>> ozone = fh.datasets.load("ozone")
    >>> fit = fh.fit("log_ozone ~ TEMP + (TEMP | station)", ozone)  # doctest: +SKIP
    >>> print(fit)  # doctest: +SKIP

    """
    # every sampling option checked before the model is built
    check_method(method)
    key = check_sampler(sampler)
    check.sampling(draws, tune, chains, seed)
    check.progressbar(progressbar)
    check_options(sampler_kwargs, key, "fh.fit()")
    built = Model(
        formula,
        data,
        family=family,
        link=link,
        priors=priors,
        correlated=correlated,
        noncentered=noncentered,
        lkj_eta=lkj_eta,
        collapse=collapse,
    )
    return built.fit(
        sampler=sampler,
        method=method,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progressbar=progressbar,
        **sampler_kwargs,
    )


def load(path: str | os.PathLike[str]) -> Fit:
    """Read a fit written by :meth:`Fit.save`: a working :class:`Fit`, without sampling.

    The model is rebuilt from the stored formula, options and data; the posterior is read back.
    A file from another formulahier version loads if its format is known, else the error says
    which version wrote it. No code from the file is run: its formulas are checked against the
    safe grammar of :func:`formulahier.safety.check_formula_safe` before anything reads them,
    and a file changed after it was saved (checksum mismatch) is refused.

    Raises
    ------
    FitFileError
        Missing, damaged, changed or too new a file (see :func:`formulahier.io.read_fit`).
    FormulaError
        A stored formula outside the safe grammar.

    """
    from . import io
    from .formula import bf

    saved = io.read_fit(path)
    formula = bf(saved.formula, **dict(saved.dpars)) if saved.dpars else saved.formula
    rebuilt = Model(formula, saved.data, **saved.options)
    posterior = saved.idata["posterior"]
    expected = [t for b in rebuilt.blocks for t in b.block.bambi_terms]
    expected += [b.corr for b in rebuilt.blocks if b.corr]
    missing = [v for v in expected if v not in posterior.data_vars]
    if missing:
        raise FitFileError(
            f"{path} (written by formulahier {saved.version}) lacks the variables {missing} "
            "that this version builds for the model; refit it with fit.update() or the "
            "formulahier version that wrote it."
        )
    return Fit(rebuilt, saved.idata, saved.settings, saved.seconds)
