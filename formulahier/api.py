"""The one-line entry points: :func:`model` builds, :func:`fit` builds and samples; :func:`load`."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from .comparison import compare
from .errors import FitFileError
from .fitted import Fit
from .formula import BrmsFormula
from .modeling import Model, check_settings, model_options
from .settings import MODEL_OPTIONS, ModelOptions, SamplerSettings, takes_keywords

__all__ = ["compare", "fit", "get_prior", "load", "model"]


@takes_keywords(ModelOptions)
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
    model_options(options, "fh.get_prior()")
    return Model(formula, data, **options).prior_summary()


@takes_keywords(ModelOptions)
def model(formula: str | BrmsFormula, data: Any, **options: Any) -> Model:
    """Build a multilevel model from an lme4/brms formula without sampling.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        Never modified.
    **options
        The model options of :func:`fit` (:class:`~formulahier.settings.ModelOptions`):
        ``family``, ``link``, ``priors``, ``correlated``, ``noncentered``, ``lkj_eta``,
        ``collapse``.

    Returns
    -------
    Model
        Call ``.fit(...)`` to sample.

    """
    model_options(options, "fh.model()")
    return Model(formula, data, **options)


@takes_keywords(ModelOptions, SamplerSettings)
def fit(formula: str | BrmsFormula, data: Any, **keywords: Any) -> Fit:
    """Fit a Bayesian multilevel model written as an lme4/brms formula.

    Parameters
    ----------
    formula : str
        lme4/brms formula: ``(x | g)`` correlated intercept and slope per level of ``g``,
        ``(x || g)`` independent ones, ``(1 | a/b)`` nested, ``(1 | a) + (1 | b)`` crossed.
    data : pandas.DataFrame, polars.DataFrame or dict of arrays
        Never modified. Rows with missing values in used columns are dropped with a warning.
    **keywords
        The model options of :class:`~formulahier.settings.ModelOptions` (``family``,
        ``link``, ``priors``, ``correlated``, ``noncentered``, ``lkj_eta``, ``collapse``) and
        the sampler settings of :class:`~formulahier.settings.SamplerSettings` (``sampler``,
        ``method``, ``draws``, ``tune``, ``chains``, ``seed``, ``progressbar``); any other
        keyword is passed to :func:`pymc.sample`, e.g. ``target_accept=0.95``. Each is
        described below (and in the API reference of the two dataclasses).

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
    options = {k: v for k, v in keywords.items() if k in MODEL_OPTIONS}
    settings = SamplerSettings.from_keywords(
        {k: v for k, v in keywords.items() if k not in MODEL_OPTIONS}
    )
    check_settings(settings, "fh.fit()")  # every sampling option checked before the model is built
    return Model(formula, data, **options).sample(settings)


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
