"""Benchmark models: data, the formulahier formula, and the equivalent hand-written PyMC model.

The hand-written models are what an experienced PyMC user would write ("seed style"): population
predictors centered, ``pm.LKJCholeskyCov`` for correlated blocks, non-centered ``u = (L z)^T`` or
hierarchically centered ``beta_j ~ MvNormal(b, S)`` (the group coefficients centered on the
population effects). Priors copy Bambi's defaults so both sides sample the same posterior, and
variable names follow formulahier's (``Intercept``, ``TEMP``, ``1|station_sigma``,
``station_corr``) so one ESS routine serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import formulahier as fh


@dataclass(frozen=True)
class Case:
    """One benchmark model."""

    name: str
    formula: str
    dataset: str  # fh.datasets name; simulated: "crossed", "bernoulli_<rows>", "gaussian_<levels>"
    response: str
    fixed: tuple[str, ...]  # numeric population predictors (besides the intercept)
    blocks: tuple[tuple[str, tuple[str, ...]], ...]  # (factor, slopes) with a group intercept
    family: str = "gaussian"
    categorical: str | None = None  # one categorical population predictor (treatment coding)
    trials: str | None = None  # binomial trials column
    reference: str | None = None  # /work/shared/reference/<name>.json
    options: dict = field(default_factory=dict)

    def data(self) -> pd.DataFrame:
        if self.dataset == "crossed":
            return simulate_crossed()
        if self.dataset.startswith("bernoulli_"):  # bernoulli_<rows>
            return simulate_bernoulli(int(self.dataset.split("_")[1]))
        if self.dataset.startswith("gaussian_"):  # gaussian_<levels>
            return simulate_gaussian(int(self.dataset.split("_")[1]))
        return fh.datasets.load(self.dataset)


def simulate_bernoulli(n: int, n_g: int = 1_000, seed: int = 20240602) -> pd.DataFrame:
    """logit P(y = 1) = -0.5 + 0.8 x + u_g, sd(u) = 0.6: a model that is never collapsed."""
    rng = np.random.default_rng(seed)
    g = rng.integers(n_g, size=n)
    x = rng.normal(size=n)
    eta = -0.5 + 0.8 * x + rng.normal(scale=0.6, size=n_g)[g]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def simulate_gaussian(n_g: int, per_level: int = 20, seed: int = 20240603) -> pd.DataFrame:
    """y = 0.5 + x + u_g + v_g x + e, sds 1 and 0.5, correlation -0.3, sigma 1 (as the scale
    benchmark's gaussian model): ``y ~ x + (x | g)``, collapsed by default; ``per_level`` rows
    per level, every level with that many rows."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), per_level)
    x = rng.normal(size=g.size)
    sd, rho = np.array([1.0, 0.5]), -0.3
    u = rng.multivariate_normal([0.0, 0.0], np.outer(sd, sd) * [[1, rho], [rho, 1]], size=n_g)
    y = 0.5 + x + u[g, 0] + u[g, 1] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def simulate_crossed(
    n: int = 70_000, n_a: int = 3_000, n_b: int = 1_000, seed: int = 20240601
) -> pd.DataFrame:
    """y = 1 + 0.5 x + a_i + b_k + e with sd(a) = 0.5, sd(b) = 0.3, sd(e) = 1."""
    rng = np.random.default_rng(seed)
    a = rng.integers(n_a, size=n)
    b = rng.integers(n_b, size=n)
    x = rng.normal(size=n)
    ua = rng.normal(scale=0.5, size=n_a)
    ub = rng.normal(scale=0.3, size=n_b)
    y = 1 + 0.5 * x + ua[a] + ub[b] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case(
            "sleepstudy",
            "Reaction ~ Days + (Days | Subject)",
            "sleepstudy",
            "Reaction",
            ("Days",),
            (("Subject", ("Days",)),),
            reference="sleepstudy",
        ),
        Case(
            "ozone_slopes",
            "log_ozone ~ TEMP + (TEMP | station)",
            "ozone",
            "log_ozone",
            ("TEMP",),
            (("station", ("TEMP",)),),
            reference="ozone_slopes",
        ),
        Case(
            "radon_intercepts",
            "log_radon ~ floor + (1 | county)",
            "radon",
            "log_radon",
            ("floor",),
            (("county", ()),),
            reference="radon_intercepts",
        ),
        Case(
            "radon_slopes",
            "log_radon ~ floor + (floor | county)",
            "radon",
            "log_radon",
            ("floor",),
            (("county", ("floor",)),),
            reference="radon_slopes",
        ),
        Case(
            "cbpp",
            "p(incidence, size) ~ period + (1 | herd)",
            "cbpp",
            "incidence",
            (),
            (("herd", ()),),
            family="binomial",
            categorical="period",
            trials="size",
            reference="cbpp",
        ),
        Case(
            "crossed",
            "y ~ x + (1 | a) + (1 | b)",
            "crossed",
            "y",
            ("x",),
            (("a", ()), ("b", ())),
        ),
        # either side of the rows x group columns where nutpie's route changes (200,000)
        *[
            Case(f"bernoulli_{n // 1000}k", "y ~ x + (1 | g)", f"bernoulli_{n}", "y", ("x",),
                 (("g", ()),), family="bernoulli")  # fmt: skip
            for n in (100_000, 400_000)
        ],
        # collapsed, either side of levels x group columns where nutpie's callbacks stop (20,000)
        *[
            Case(f"gaussian_{n // 1000}k", "y ~ x + (x | g)", f"gaussian_{n}", "y", ("x",),
                 (("g", ("x",)),))  # fmt: skip
            for n in (5_000, 20_000)
        ],
    ]
}


def handwritten(case: Case, data: pd.DataFrame, centered: dict[str, bool]):
    """Hand-written PyMC model of ``case``; ``centered``: factor -> hierarchically centered."""
    import pymc as pm
    import pytensor.tensor as pt

    y = data[case.response].to_numpy(dtype=float)
    X = data[list(case.fixed)].to_numpy(dtype=float) if case.fixed else np.zeros((len(y), 0))
    names = list(case.fixed)
    if case.categorical:
        levels = sorted(data[case.categorical].astype(str).unique())
        col = data[case.categorical].astype(str).to_numpy()
        X = np.column_stack([X] + [(col == lv).astype(float) for lv in levels[1:]])
        names += [f"{case.categorical}[{lv}]" for lv in levels[1:]]
    xbar = X.mean(0)
    Xc = X - xbar
    coords = {"fixed": names}
    if case.family == "gaussian":
        sy = y.std()
        int_mu, int_sd = y.mean(), 2.5 * sy
        slope_sd = 2.5 * sy / X.std(0)
        group_sd = {"1": 2.5 * sy, **{n: 2.5 * sy / data[n].std(ddof=0) for n in case.fixed}}
    else:  # binomial (cbpp): Bambi's defaults for this model
        int_mu, int_sd = 0.0, 1.5
        slope_sd = np.ones(X.shape[1])
        group_sd = {"1": 2.5355}
    with pm.Model(coords=coords) as model:
        a_c = pm.Normal("Intercept_c", int_mu, int_sd)
        b = pm.Normal("b", 0.0, slope_sd, dims="fixed")
        eta = a_c + pt.dot(Xc, b) if names else a_c + pt.zeros(len(y))
        intercept = a_c - pt.dot(xbar, b) if names else a_c
        pm.Deterministic("Intercept", intercept)
        for k, n in enumerate(names):
            pm.Deterministic(n.replace("[", "_").replace("]", ""), b[k])
        for factor, slopes in case.blocks:
            codes, uniques = pd.factorize(data[factor].astype(str), sort=True)
            model.add_coord(f"{factor}_level", list(uniques))
            effects = ["1", *slopes]
            Z = np.column_stack([np.ones(len(y))] + [data[s].to_numpy(float) for s in slopes])
            sds = np.array([group_sd[e] for e in effects])
            mean = pt.stack([intercept] + [b[names.index(s)] for s in slopes])
            if len(effects) > 1:
                chol, _, sd = pm.LKJCholeskyCov(
                    f"{factor}_chol",
                    n=len(effects),
                    eta=2.0,
                    sd_dist=pm.HalfNormal.dist(sds, shape=len(effects)),
                    compute_corr=True,
                    store_in_trace=False,
                )
                corr_chol = chol / sd[:, None]
                pm.Deterministic(f"{factor}_corr", corr_chol @ corr_chol.T)
                if centered[factor]:
                    beta = pm.MvNormal(
                        f"{factor}_beta", mu=mean, chol=chol, shape=(len(uniques), len(effects))
                    )
                    u = beta - mean
                else:
                    z = pm.Normal(f"{factor}_z", 0.0, 1.0, shape=(len(effects), len(uniques)))
                    u = pt.dot(chol, z).T
            else:
                sd = pt.atleast_1d(pm.HalfNormal(f"{factor}_sd", sds[0]))
                if centered[factor]:
                    beta = pm.Normal(f"{factor}_beta", mean[0], sd[0], dims=f"{factor}_level")
                    u = (beta - mean[0])[:, None]
                else:
                    z = pm.Normal(f"{factor}_z", 0.0, 1.0, dims=f"{factor}_level")
                    u = (sd[0] * z)[:, None]
            for k, e in enumerate(effects):
                pm.Deterministic(f"{e}|{factor}_sigma", sd[k])
            for k, e in enumerate(effects):  # index the level's coefficient, times the column
                eta = eta + (u[:, k][codes] if e == "1" else u[:, k][codes] * Z[:, k])
        if case.family == "gaussian":
            sigma = pm.HalfStudentT("sigma", nu=4, sigma=y.std())
            pm.Normal("y", eta, sigma, observed=y)
        else:
            pm.Binomial("y", n=data[case.trials].to_numpy(int), logit_p=eta, observed=y.astype(int))
    return model
