"""brms's verbs from posterior draws: epred, fitted, residuals, R², WAIC, hypothesis.

Every function takes a :class:`formulahier.Fit` (``fitted``) and computes with formulahier's
own prediction engine (:mod:`formulahier.predict`), so group-level effects and new levels are
included as in brms. This module does not import :mod:`formulahier.fitted`.

Draw arrays are ``(draws, rows)`` with the draws of chain 1 first, then chain 2, ...: the order
of the rows of :meth:`formulahier.Fit.as_draws_df`.
"""

from __future__ import annotations

import ast
import math
import re
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from . import predict as _predict
from .errors import DataError, FormulaError
from .validate import probability

__all__ = [
    "bayes_r2",
    "epred_draws",
    "hypothesis",
    "loo_r2",
    "observed_response",
    "summarise_draws",
    "uncenter_intercept",
    "waic",
]


def _check_prob(ci_prob: float) -> float:
    return probability(ci_prob, "ci_prob", error=DataError)


def _q_names(ci_prob: float) -> tuple[str, str]:
    tail = 100 * (1 - ci_prob) / 2
    return f"Q{tail:g}", f"Q{100 - tail:g}"


def summarise_draws(values: np.ndarray, ci_prob: float = 0.95, index=None) -> pd.DataFrame:
    """Summarise draws ``(draws, rows)`` as brms: ``Estimate, Est.Error, Q2.5, Q97.5``.

    ``Estimate`` is the mean over draws, ``Est.Error`` the sd, the ``Q`` columns the
    equal-tailed interval at ``ci_prob`` (named after the quantiles, as brms names them).
    """
    ci_prob = _check_prob(ci_prob)
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    tail = (1 - ci_prob) / 2
    low, high = np.quantile(values, [tail, 1 - tail], axis=0)
    qlow, qhigh = _q_names(ci_prob)
    return pd.DataFrame(
        {
            "Estimate": values.mean(axis=0),
            "Est.Error": values.std(axis=0, ddof=1),
            qlow: low,
            qhigh: high,
        },
        index=index,
    )


def _flat(da: xr.DataArray) -> np.ndarray:
    values = da.transpose("chain", "draw", ...).to_numpy()
    return values.reshape(-1, *values.shape[2:])


def _response_data(fitted) -> np.ndarray:
    return np.asarray(fitted.model.response_term.data)


def _is_binomial_counts(fitted) -> bool:
    return _response_data(fitted).ndim == 2


def _trials(fitted, newdata) -> np.ndarray:
    """Trials of a binomial ``y | trials(n)`` / ``cbind(s, f)`` response, per row."""
    if newdata is None:
        return _response_data(fitted)[:, 1].astype(float)
    comp = fitted.model.parameters[fitted.model.family.likelihood.parent]
    frame = _predict.prepare_newdata(newdata, fitted.fh_model, [])
    try:
        trials = comp.design.response.term.term.eval_new_data(frame)
    except Exception as exc:  # formulae raises plain errors for missing columns
        raise DataError(
            f"`newdata` needs the number of trials of the binomial response "
            f"'{fitted.spec.response}': {exc}"
        ) from None
    return np.asarray(trials, dtype=float).reshape(-1)


def epred_draws(fitted, newdata=None, re_formula=None, kind: str = "mean", **kwargs) -> np.ndarray:
    """Draws ``(draws, rows)`` of the expected response (``kind="mean"``) or linear predictor.

    As in brms's ``posterior_epred``, a binomial response with trials gives expected counts
    (trials x probability); ``kind="linpred"`` is the linear predictor (brms
    ``posterior_linpred``).
    """
    draws = _predict.predict(
        fitted.fh_model,
        fitted.idata,
        newdata,
        kind=kind,
        re_formula=re_formula,
        draws=True,
        **kwargs,
    )
    values = _flat(draws)
    if kind == "mean" and _is_binomial_counts(fitted):
        values = values * _trials(fitted, newdata)[None, :]
    return values


def observed_response(fitted) -> np.ndarray:
    """The response the model was fitted to, one value per row (successes for binomial)."""
    y = _response_data(fitted)
    return (y[:, 0] if y.ndim == 2 else y).astype(float)


def bayes_r2(fitted, re_formula=None) -> np.ndarray:
    """Draws of brms's ``bayes_R2`` (Gelman, Goodrich, Gabry and Vehtari 2019).

    Per draw ``s``: ``var(mu_s) / (var(mu_s) + var(y - mu_s))`` with ``mu_s`` the expected
    response of every observation in that draw (variances over observations), as brms's
    ``.bayes_R2`` computes it.
    """
    mu = epred_draws(fitted, re_formula=re_formula)
    resid = observed_response(fitted)[None, :] - mu
    var_mu = mu.var(axis=1, ddof=1)
    var_e = resid.var(axis=1, ddof=1)
    return var_mu / (var_mu + var_e)


def loo_r2(fitted) -> np.ndarray:
    """Draws of the LOO-adjusted R² (brms ``loo_R2``) by ``arviz_stats.loo_r2``.

    The leave-one-out expected responses are PSIS-weighted means of the epred draws (the
    weights from the pointwise log-likelihood, as for :meth:`formulahier.Fit.loo`); the
    uncertainty comes from Bayesian-bootstrap (Dirichlet) weights over observations, as in brms.
    """
    import arviz_stats as azs

    from .comparison import ensure_log_likelihood

    name = ensure_log_likelihood(fitted)
    posterior = fitted.idata["posterior"]
    mu = epred_draws(fitted).reshape(posterior.sizes["chain"], posterior.sizes["draw"], -1)
    obs = np.arange(mu.shape[-1])
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values, "__obs__": obs}
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior.to_dataset(),
            "posterior_predictive": xr.Dataset(
                {name: (("chain", "draw", "__obs__"), mu)}, coords=coords
            ),
            "observed_data": xr.Dataset(
                {name: ("__obs__", observed_response(fitted))}, coords={"__obs__": obs}
            ),
            "log_likelihood": fitted.idata["log_likelihood"].to_dataset(),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's Pareto k note; fit.loo() says more
        values = azs.loo_r2(tree, var_name=name, summary=False)
    return np.asarray(values).reshape(-1)


def waic(fitted) -> pd.DataFrame:
    """WAIC from the pointwise log-likelihood, laid out like brms's ``waic()`` printout.

    ``elpd_waic = sum_i (log mean_s p(y_i | s) - var_s log p(y_i | s))``, ``p_waic`` the sum of
    the variances, ``waic = -2 elpd_waic``; ``SE`` is ``sqrt(n var_i(.))`` of the pointwise
    values (Vehtari, Gelman and Gabry 2017).
    """
    from .comparison import ensure_log_likelihood

    name = ensure_log_likelihood(fitted)
    ll = _flat(fitted.idata["log_likelihood"][name])  # (S, n)
    n_draws = ll.shape[0]
    top = ll.max(axis=0)
    lppd = top + np.log(np.exp(ll - top).sum(axis=0)) - math.log(n_draws)
    p_waic = ll.var(axis=0, ddof=1)
    elpd = lppd - p_waic
    n = ll.shape[1]
    pointwise = {"elpd_waic": elpd, "p_waic": p_waic, "waic": -2 * elpd}
    return pd.DataFrame(
        {
            "Estimate": [v.sum() for v in pointwise.values()],
            "SE": [math.sqrt(n * v.var(ddof=1)) for v in pointwise.values()],
        },
        index=list(pointwise),
    )


def uncenter_intercept(bmodel, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Prior draws of the intercept on the data's scale, as Bambi reports the posterior one.

    Bambi samples the intercept of centred predictors and subtracts ``mean(X) . b`` from the
    posterior afterwards; a prior drawn from the PyMC model needs the same step.
    """
    from .backend import population_design

    design = population_design(bmodel)
    if design.xbar is None or design.intercept is None:
        return draws
    columns = [v for n in design.names for k, v in draws.items() if k == n or k.startswith(n + "[")]
    if not columns or len(columns) != design.X.shape[1]:
        return draws
    coefs = np.column_stack(columns)  # (S, p), in the design's column order
    out = dict(draws)
    out[design.intercept] = draws[design.intercept] - coefs @ design.xbar
    return out


# ---- hypothesis ------------------------------------------------------------------------------
_SIGNS = ("=", "<", ">")
_BINOPS = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}


def _split_hypothesis(text: str) -> tuple[str, str, str]:
    """``"a + b*5 = 300"`` -> (left, sign, right); exactly one of ``= < >``."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(f"A hypothesis is a string like 'Days > 5', got {text!r}.")
    compact = re.sub(r"\s+", "", text)
    if re.search(r"<=|>=|==|!=", compact):
        raise FormulaError(
            f"Hypothesis {text!r}: write one of '=', '<' or '>' (as brms), e.g. 'Days > 5'."
        )
    found = [(i, ch) for i, ch in enumerate(compact) if ch in _SIGNS]
    if len(found) != 1:
        raise FormulaError(
            f"Hypothesis {text!r} needs exactly one '=', '<' or '>', e.g. 'Days > 5' or "
            "'Intercept + Days*5 = 300'."
        )
    i, sign = found[0]
    left, right = compact[:i], compact[i + 1 :]
    if not left or not right:
        raise FormulaError(f"Hypothesis {text!r} needs an expression on both sides.")
    return left, sign, right


def _substitute(expr: str, names: list[str]) -> tuple[str, dict[str, str]]:
    """Replace parameter names (longest first; ``f[b]`` and ``x:z`` too) by identifiers."""
    table = {}
    for k, name in enumerate(sorted(names, key=len, reverse=True)):
        token = f"__p{k}__"
        pattern = r"(?<![\w.\[])" + re.escape(name) + r"(?![\w.\[])"
        expr, count = re.subn(pattern, token, expr)
        if count:
            table[token] = name
    return expr, table


def _evaluate(node, values: dict[str, np.ndarray], text: str, names: list[str]):
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values, text, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if not isinstance(node.value, bool):
            return float(node.value)
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _evaluate(node.left, values, text, names)
        right = _evaluate(node.right, values, text, names)
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _evaluate(node.operand, values, text, names)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Name):
        raise FormulaError(
            f"Hypothesis {text!r} names '{node.id}', which is not a population-level effect; "
            f"use the names of fit.fixef(): {names}."
        )
    raise FormulaError(
        f"Hypothesis {text!r}: only numbers, population-level effects, + - * / ** and "
        "parentheses are allowed."
    )


def _hypothesis_draws(expr: str, draws: dict[str, np.ndarray], text: str) -> np.ndarray:
    names = list(draws)
    for name in names:  # brms's b_ prefix is accepted too: b_Days means Days
        expr = re.sub(r"(?<![\w.])b_" + re.escape(name) + r"(?![\w.\[])", name, expr)
    replaced, table = _substitute(expr, names)
    try:
        tree = ast.parse(replaced, mode="eval")
    except SyntaxError:
        raise FormulaError(f"Hypothesis {text!r} is not a valid expression.") from None
    values = {token: draws[name] for token, name in table.items()}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        result = _evaluate(tree, values, text, names)
    n = len(next(iter(draws.values())))
    return np.broadcast_to(np.asarray(result, dtype=float), (n,)).copy()


def _density_at(x: np.ndarray, point: float = 0.0) -> float:
    """Gaussian kernel density at ``point`` with R's default bandwidth (``bw.nrd0``)."""
    x = np.asarray(x, dtype=float)
    sd = x.std(ddof=1)
    iqr = np.subtract(*np.quantile(x, [0.75, 0.25])) / 1.34
    spread = min(sd, iqr) if iqr > 0 else sd
    bw = 0.9 * spread * len(x) ** -0.2
    if not bw > 0:
        return float("nan")
    z = (point - x) / bw
    return float(np.exp(-0.5 * z**2).sum() / (len(x) * bw * math.sqrt(2 * math.pi)))


def hypothesis(
    post: dict[str, np.ndarray],
    hypotheses,
    ci_prob: float = 0.95,
    prior: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The table of brms's ``hypothesis()`` for population-level effects.

    Parameters
    ----------
    post : dict of str to array
        Flat posterior draws per population-effect name (``fit.fixef()`` index).
    hypotheses : str or list of str
        ``"Days > 5"``, ``"Intercept + Days*5 = 300"``: one of ``= < >`` between two
        expressions of numbers, effect names and ``+ - * / **``.
    ci_prob : float
        brms's ``1 - alpha``: two-sided interval for ``=``, one-sided for ``<`` and ``>``.
    prior : dict of str to array, optional
        Prior draws of the same effects; with them ``Evid.Ratio`` of a point hypothesis is the
        Savage-Dickey density ratio, without them ``NaN`` (brms without ``sample_prior``).

    Returns
    -------
    pandas.DataFrame
        ``Hypothesis, Estimate, Est.Error, CI.Lower, CI.Upper, Evid.Ratio, Post.Prob, Star``.

    """
    alpha = 1 - _check_prob(ci_prob)
    items = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    rows = []
    for text in items:
        left, sign, right = _split_hypothesis(text)
        expr = f"({left})" + (f"-({right})" if right != "0" else "")
        x = _hypothesis_draws(expr, post, text)
        if sign == "=":
            low, high = np.quantile(x, [alpha / 2, 1 - alpha / 2])
            ratio = float("nan")
            if prior is not None:
                prior_x = _hypothesis_draws(expr, prior, text)
                ratio = _density_at(x) / _density_at(prior_x)
        else:
            low, high = np.quantile(x, [alpha, 1 - alpha])
            hits = int((x < 0).sum() if sign == "<" else (x > 0).sum())
            ratio = hits / (len(x) - hits) if hits < len(x) else float("inf")
            low, high = (-np.inf, high) if sign == "<" else (low, np.inf)
        post_prob = 1.0 if math.isinf(ratio) else ratio / (1 + ratio)
        rows.append(
            {
                "Hypothesis": f"{expr} {sign} 0",
                "Estimate": float(x.mean()),
                "Est.Error": float(x.std(ddof=1)),
                "CI.Lower": float(low),
                "CI.Upper": float(high),
                "Evid.Ratio": ratio,
                "Post.Prob": post_prob,
                "Star": "" if low <= 0 <= high else "*",
            }
        )
    return pd.DataFrame(rows)
