"""Predictions from a fitted model: existing and new levels, like brms's ``posterior_epred``.

The linear predictor is computed here from the posterior draws: the population part with
Bambi's own design (``predict_common``), the group part per block of :mod:`formulahier.backend`.
A level of a grouping factor that the model has not seen gets, in every posterior draw, effects
drawn from the fitted population distribution ``MvNormal(0, S)``, with ``S`` built from the
block's standard deviations and its correlation matrix (brms's ``sample_new_levels =
"gaussian"``). Rows are processed in chunks so that no ``draws x rows x effects`` array is built.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from . import validate
from .backend import (
    block_sds,
    family_posterior_predictive,
    inverse_link,
    population_linpred,
    stacked_draws,
)
from .data import to_table
from .errors import DataError, FormulaError, OptionError
from .groups import factor_labels as level_labels

__all__ = ["KINDS", "level_labels", "new_level_effects", "predict"]

KINDS = ("mean", "response", "linpred")
_CELLS_PER_CHUNK = 4_000_000  # draws x rows per chunk


def _component(bmodel):
    return bmodel.parameters[bmodel.family.likelihood.parent]


def _block_draws(posterior: xr.Dataset, info, bmodel) -> tuple[np.ndarray, list[str]]:
    """Group effects of one block as ``(sample, level, column)`` and the level labels."""
    cols, levels = [], None
    for column in info.columns:
        var = posterior[column.term]
        dim = next(d for d in var.dims if d.endswith("__factor_dim"))
        var = var.transpose("chain", "draw", dim, ...)  # (chain, draw, level[, expr])
        values = var.to_numpy()
        draws = values.reshape(-1, *values.shape[2:])
        if levels is None:
            levels = [str(v) for v in var.coords[dim].values]
        cols.append(draws if column.index is None else draws[..., column.index])
    assert levels is not None  # a block has at least one column
    return np.stack(cols, axis=-1), levels


def new_level_effects(posterior: xr.Dataset, info, bmodel, n_new: int, rng) -> np.ndarray:
    """Draw effects of ``n_new`` unseen levels of a block, one set per posterior draw.

    Returns
    -------
    numpy.ndarray
        ``(sample, n_new, column)``; in each draw ``MvNormal(0, diag(sd) R diag(sd))`` with the
        draw's standard deviations ``sd`` and correlation matrix ``R`` (identity for an
        independent block).
    """
    sds = block_sds(posterior, info)  # (S, k)
    z = rng.standard_normal((sds.shape[0], n_new, sds.shape[1]))
    if info.corr:
        corr = stacked_draws(posterior, info.corr)  # (S, k, k)
        k = corr.shape[-1]
        chol = np.linalg.cholesky(corr + 1e-12 * np.eye(k))
        z = np.einsum("sij,snj->sni", chol, z)
    return z * sds[:, None, :]


def _select_blocks(fh_model, re_formula: str | None) -> list:
    blocks = list(fh_model.blocks)
    if re_formula is None:
        return blocks
    text = str(re_formula).strip()
    rhs = text[1:].strip() if text.startswith("~") else text
    if rhs in ("0", "1", "-1", "NA", ""):
        return []
    from .formula import build_spec

    try:
        spec = build_spec(f"{fh_model.spec.response} ~ {rhs}")
    except FormulaError as exc:
        raise FormulaError(
            f"Could not read re_formula={re_formula!r}: {exc.reason} Write it like "
            "'~ (1 | g)', or '~0' for population-level predictions only."
        ) from None
    wanted = {t for b in spec.blocks for t in b.bambi_terms}
    known = {t for b in blocks for t in b.block.bambi_terms}
    unknown = sorted(wanted - known)
    if unknown:
        raise FormulaError(
            f"re_formula={re_formula!r} names group-level terms {unknown} that the model does "
            f"not have; it has {sorted(known)}."
        )
    chosen = []
    for info in blocks:
        terms = set(info.block.bambi_terms)
        if terms <= wanted:
            chosen.append(info)
        elif terms & wanted:
            raise FormulaError(
                f"re_formula={re_formula!r} keeps only part of the block {info.block.source}; "
                "keep or drop whole bar terms."
            )
    return chosen


def prepare_newdata(newdata, fh_model, blocks=None) -> pd.DataFrame:
    """Copy ``newdata`` and check it has the predictor columns, without missing values.

    Only the columns of the population-level terms and of the group-level ``blocks`` used for
    the prediction are needed (all blocks when ``blocks`` is None).
    """
    frame = to_table(newdata, "`newdata`")
    needed = sorted(_var_names(fh_model, blocks) & set(fh_model.data.columns))
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"`newdata` lacks the column(s) {missing} used by the model; add them "
            f"(the model uses {needed})."
        )
    bad = [c for c in needed if frame[c].isna().any()]
    if bad:
        raise DataError(
            f"`newdata` has missing values in {bad}; drop or fill those rows before predicting."
        )
    return frame


def _var_names(fh_model, blocks=None) -> set[str]:
    import formulae as fm

    spec = fh_model.spec
    if blocks is None:
        rhs = spec.bambi_formula.split("~", 1)[1]
    else:
        rhs = " + ".join([spec.population, *(b.block.bambi_formula for b in blocks)])
    return set(fm.model_description(rhs).var_names) - {""}


def _check_supported(bmodel, kind: str) -> None:
    family = bmodel.family
    if hasattr(family, "transform_linear_predictor") or hasattr(family, "transform_mean"):
        raise FormulaError(
            f"fit.predict does not support the '{family.name}' family yet; use Bambi's "
            "fit.model.predict(fit.idata, data=...) (existing levels only)."
        )
    extra = [n for n in bmodel.conditional_parameters if n != family.likelihood.parent]
    if extra:
        raise FormulaError(
            f"fit.predict does not support models with predictors on {extra}; use "
            "fit.model.predict(fit.idata, data=...)."
        )


def select_draws(posterior: xr.Dataset, samples=None) -> xr.Dataset:
    """The draws ``samples`` (indices into the flattened ``chain x draw``) as one chain."""
    if samples is None:
        return posterior
    stacked = posterior.stack(__sample__=("chain", "draw"))
    stacked = stacked.isel(__sample__=np.asarray(samples)).drop_vars(
        ["chain", "draw", "__sample__"]
    )
    posterior = stacked.rename({"__sample__": "draw"}).expand_dims(chain=[0])
    posterior = posterior.assign_coords(draw=np.arange(len(samples)))
    return posterior.transpose("chain", "draw", ...)


def predict(
    fh_model,
    idata,
    newdata=None,
    *,
    kind: str = "mean",
    re_formula: str | None = None,
    allow_new_levels: bool = False,
    ci_prob: float = 0.95,
    seed=None,
    draws: bool = False,
    samples: np.ndarray | None = None,
):
    """Posterior predictions for ``newdata`` (see :meth:`formulahier.Fit.predict`).

    ``samples`` optionally selects posterior draws (indices into the flattened
    ``chain x draw``); the result then has a single chain.
    """
    validate.choice(kind, "kind", KINDS)
    ci_prob = validate.probability(ci_prob, "ci_prob")
    seed = validate.seed(seed)
    validate.boolean(allow_new_levels, "allow_new_levels")
    validate.boolean(draws, "draws")
    if re_formula is not None and not isinstance(re_formula, str):
        raise OptionError(
            f"`re_formula` must be None or a formula such as '~ (1 | g)' or '~0'; got "
            f"{re_formula!r}."
        )
    bmodel = fh_model.bambi
    _check_supported(bmodel, kind)
    blocks = _select_blocks(fh_model, re_formula)
    frame = fh_model.data if newdata is None else prepare_newdata(newdata, fh_model, blocks)
    posterior = select_draws(idata["posterior"].to_dataset(), samples)
    rng = np.random.default_rng(seed)

    # group effects per block: (sample, level, column), existing then new levels
    group = []
    for info in blocks:
        u, levels = _block_draws(posterior, info, bmodel)
        if newdata is None:  # the model's own rows: their level codes are known
            group.append((info, u, info.data.codes))
            continue
        labels = level_labels(frame, info.block.factor)
        seen = set(levels)
        new = list(dict.fromkeys(lv for lv in labels if lv not in seen))
        if new and not allow_new_levels:
            shown = ", ".join(map(str, new[:10])) + (" ..." if len(new) > 10 else "")
            raise DataError(
                f"`newdata` has {len(new)} level(s) of '{info.block.factor}' that the model has "
                f"not seen: {shown}. Pass allow_new_levels=True to draw their effects from the "
                "fitted population distribution, or re_formula='~0' for population-level "
                "predictions."
            )
        if new:
            u = np.concatenate([u, new_level_effects(posterior, info, bmodel, len(new), rng)], 1)
        index = {lv: i for i, lv in enumerate([*levels, *new])}
        rows = np.array([index[lv] for lv in labels], dtype=int)
        group.append((info, u, rows))

    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    chunk = max(1, _CELLS_PER_CHUNK // n_samples)
    pieces, tables = [], []
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start : start + chunk]
        values = _chunk(bmodel, posterior, part, group, start, kind, rng)  # (S, n)
        if draws:
            pieces.append(values)
        else:
            tables.append(_summarise(values, ci_prob))
    if draws:
        values = np.concatenate(pieces, axis=1)
        shape = (posterior.sizes["chain"], posterior.sizes["draw"], values.shape[1])
        return xr.DataArray(
            values.reshape(shape),
            dims=("chain", "draw", "__obs__"),
            coords={
                "chain": posterior["chain"].values,
                "draw": posterior["draw"].values,
                "__obs__": np.arange(values.shape[1]),
            },
            name=kind,
        )
    table = pd.concat(tables, ignore_index=True)
    table.index = frame.index
    return table


def _summarise(values: np.ndarray, ci_prob: float) -> pd.DataFrame:
    alpha = (1 - ci_prob) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha], axis=0)
    return pd.DataFrame(
        {
            "estimate": values.mean(axis=0),
            "std_error": values.std(axis=0, ddof=1),
            "lower": low,
            "upper": high,
        }
    )


def _chunk(bmodel, posterior, part, group, start, kind, rng) -> np.ndarray:
    n = len(part)
    try:
        eta = population_linpred(bmodel, posterior, part)
    except Exception as exc:  # formulae/Bambi raise plain errors on bad new data
        raise DataError(f"Could not evaluate the population-level terms: {exc}") from exc
    for info, u, rows in group:
        idx = rows[start : start + n]
        X = info.data.columns_for(part)  # (n, effects)
        for k in range(X.shape[1]):
            eta += u[:, idx, k] * X[None, :, k]
    if kind == "linpred":
        return eta
    mean = inverse_link(bmodel)(eta)
    if kind == "mean":
        return np.asarray(mean)
    parent = bmodel.family.likelihood.parent
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], n)
    post = posterior.drop_vars([v for v in posterior.data_vars if "__obs__" in posterior[v].dims])
    post = post.assign({parent: (("chain", "draw", "__obs__"), np.asarray(mean).reshape(shape))})
    post = post.assign_coords(__obs__=np.arange(n))
    out = family_posterior_predictive(bmodel, post, rng, part)
    return out.to_numpy().reshape(-1, n)
