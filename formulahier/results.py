"""Results like lme4 and brms, computed from the ArviZ DataTree of a fit.

Every table has the columns ``estimate`` (posterior mean), ``std_error`` (posterior sd),
``lower`` and ``upper`` (equal-tailed interval, 95% by default, as brms's ``l-95% CI``) and,
where it makes sense, ``r_hat``, ``ess_bulk`` and ``ess_tail``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from .backend import aliased_name, population_names
from .brms_names import brms_links
from .table_format import format_table, shown_table

__all__ = ["PosteriorView", "Summary"]

SAMPLE_DIMS = ("chain", "draw")
STAT_COLUMNS = ["estimate", "std_error", "lower", "upper"]
DIAG_COLUMNS = ["r_hat", "ess_bulk", "ess_tail"]


def _check_prob(ci_prob: float) -> float:
    from .validate import probability

    return probability(ci_prob, "ci_prob")


def _stats(draws: xr.DataArray, ci_prob: float) -> dict[str, np.ndarray]:
    """Mean, sd and equal-tailed interval over chain and draw (other dims kept)."""
    tail = (1 - ci_prob) / 2
    q = draws.quantile([tail, 1 - tail], dim=list(SAMPLE_DIMS))
    return {
        "estimate": draws.mean(SAMPLE_DIMS).values,
        "std_error": draws.std(SAMPLE_DIMS, ddof=1).values,
        "lower": q.isel(quantile=0).values,
        "upper": q.isel(quantile=1).values,
    }


def _table(rows: dict[str, xr.DataArray], ci_prob: float, diagnostics: bool = True):
    """One row per scalar draw array: stats and (optionally) convergence diagnostics."""
    if not rows:
        return pd.DataFrame(columns=STAT_COLUMNS + (DIAG_COLUMNS if diagnostics else []))
    return _computed(rows.values(), list(rows), ci_prob, diagnostics)


def _tables(parts: dict, ci_prob: float) -> dict:
    """:func:`_table` of every part (name -> rows), with diagnostics, in one computation.

    A row's figures depend on its own draws only, so the rows of all tables are stacked and
    computed once (one ``rhat`` and two ``ess`` calls instead of three per table: the
    summary's xarray and ArviZ overheads are per call) and cut into the tables again: the
    same numbers as table by table. Parts of different dtypes are computed apart (stacking
    would cast them to one).
    """
    rows = [(name, label, da) for name, part in parts.items() for label, da in part.items()]
    if len({da.dtype for _, _, da in rows}) > 1:
        return {name: _table(part, ci_prob) for name, part in parts.items()}
    out = {name: _table({}, ci_prob) for name, part in parts.items() if not part}
    if rows:
        frame = _computed([da for _, _, da in rows], list(range(len(rows))), ci_prob, True)
        for name, part in parts.items():
            if part:
                picked = [i for i, (owner, _, _) in enumerate(rows) if owner == name]
                out[name] = frame.iloc[picked].set_axis(pd.Index(list(part)), axis=0).copy()
    return {name: out[name] for name in parts}


def _computed(arrays, index: list, ci_prob: float, diagnostics: bool) -> pd.DataFrame:
    """The rows of :func:`_table` for ``arrays`` (scalar draw arrays), indexed by ``index``."""
    stacked = xr.concat(
        [da.reset_coords(drop=True) for da in arrays], dim=pd.Index(index, name="row")
    ).transpose(*SAMPLE_DIMS, "row")
    frame = pd.DataFrame(_stats(stacked, ci_prob), index=pd.Index(index))
    if diagnostics:
        ds = xr.Dataset({"x": stacked})
        nchains = stacked.sizes["chain"]
        if nchains * stacked.sizes["draw"] >= 8:
            frame["r_hat"] = azs.rhat(ds)["x"].values if nchains > 1 else np.nan
            frame["ess_bulk"] = azs.ess(ds, method="bulk")["x"].values
            frame["ess_tail"] = azs.ess(ds, method="tail")["x"].values
        else:
            frame[DIAG_COLUMNS] = np.nan
    return frame


class PosteriorView:
    """Reads population effects, group effects, sds and correlations off a posterior.

    Parameters
    ----------
    idata : xarray.DataTree
        With a ``posterior`` group.
    bmb_model : bambi.Model
        The model that produced it (term names and family).
    blocks : list of BlockInfo
        Group-level blocks as built.

    """

    def __init__(self, idata, bmb_model, blocks):
        self.posterior = idata["posterior"].to_dataset()
        self.idata = idata
        self.bmb_model = bmb_model
        self.blocks = blocks
        self.parent = bmb_model.parameters[bmb_model.family.likelihood.parent]

    # ---- draws of each row -------------------------------------------------------------
    def _dpars(self) -> list:
        """Components with their own formula besides the parent (brms ``bf(..., sigma ~ x)``)."""
        parent = self.bmb_model.family.likelihood.parent
        return [c for n, c in self.bmb_model.conditional_parameters.items() if n != parent]

    def population_draws(self) -> dict[str, xr.DataArray]:
        """Population-level effects, keyed ``Intercept``, ``TEMP``, ``f[b]``.

        Those of distributional formulas follow under Bambi's (and brms's) names,
        ``sigma_Intercept``.
        """
        rows = {}
        for comp in [self.parent, *self._dpars()]:
            for name in population_names(comp):
                if name in self.posterior:
                    rows.update(self._expand(name, self.posterior[name]))
        return rows

    def _dpar_group_terms(self, factor: str) -> dict:
        """Group terms of distributional formulas on ``factor``: label -> posterior name."""
        out = {}
        for comp in self._dpars():
            prefix = comp.prefix if getattr(comp, "prefix", None) else comp.name
            for key, term in comp.group_specific_terms.items():
                expr, _, fac = key.partition("|")
                if fac == factor:
                    label = f"{prefix}_{'Intercept' if expr == '1' else expr}"
                    out[label] = f"{aliased_name(term)}_sigma"
        return out

    def _expand(self, name: str, da: xr.DataArray) -> dict[str, xr.DataArray]:
        extra = [d for d in da.dims if d not in SAMPLE_DIMS]
        if not extra:
            return {name: da}
        stacked = da.stack(_k=extra)
        out = {}
        for i in range(stacked.sizes["_k"]):
            key = stacked["_k"].values[i]
            key = key if isinstance(key, tuple) else (key,)
            out[f"{name}[{', '.join(map(str, key))}]"] = stacked.isel(_k=i)
        return out

    def factors(self) -> list[str]:
        """Grouping factors in formula order (those of distributional formulas last)."""
        names = [b.block.factor for b in self.blocks]
        for comp in self._dpars():
            names += [k.partition("|")[2] for k in comp.group_specific_terms]
        return list(dict.fromkeys(names))

    def levels(self) -> dict[str, int]:
        """Number of levels per grouping factor."""
        out = {}
        for info in self.blocks:
            term = next(iter(info.terms.values()))
            out[info.block.factor] = len(term.groups)
        for comp in self._dpars():
            for key, term in comp.group_specific_terms.items():
                out.setdefault(key.partition("|")[2], len(term.groups))
        return out

    def group_draws(self, factor: str) -> dict[str, xr.DataArray]:
        """``sd(...)`` and ``cor(...,...)`` draws of one grouping factor."""
        sds, cors = {}, {}
        for info in self.blocks:
            if info.block.factor != factor:
                continue
            for col in info.columns:
                var = self.posterior.get(f"{col.term}_sigma")
                if var is None:  # a fixed sd: nothing to summarise
                    continue
                if col.index is not None:
                    extra = [d for d in var.dims if d not in SAMPLE_DIMS]
                    var = var.isel({extra[0]: col.index})
                sds[f"sd({col.label})"] = var
            if info.corr:
                corr = self.posterior[info.corr]
                dim_a, dim_b = [d for d in corr.dims if d not in SAMPLE_DIMS]
                labels = info.labels
                for i in range(len(labels)):
                    for j in range(i + 1, len(labels)):
                        cors[f"cor({labels[i]},{labels[j]})"] = corr.isel({dim_a: j, dim_b: i})
        for label, name in self._dpar_group_terms(factor).items():
            if name in self.posterior and self.posterior[name].ndim == 2:
                sds[f"sd({label})"] = self.posterior[name]
        return {**sds, **cors}

    def family_draws(self) -> dict[str, xr.DataArray]:
        """Draws of the family's own parameters (``sigma``, ``alpha``, ...)."""
        rows = {}
        for name in self.bmb_model.family.auxiliary_parameters:
            if name in self.bmb_model.marginal_parameters and name in self.posterior:
                rows.update(self._expand(name, self.posterior[name]))
        return rows

    def _effect_draws(self, factor: str):
        """Yield (label, level-wise deviations u, population draws or None) for each effect."""
        pop = self.population_draws()
        for info in self.blocks:
            if info.block.factor != factor:
                continue
            for col in info.columns:
                u = self.posterior[col.term]
                if col.index is not None:
                    extra = [d for d in u.dims if d.endswith("__expr_dim")]
                    u = u.isel({extra[0]: col.index})
                yield col.label, u, pop.get(col.label)

    # ---- tables ------------------------------------------------------------------------
    def fixef(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Population-level effects: ``estimate, std_error, lower, upper``."""
        return _table(self.population_draws(), _check_prob(ci_prob), diagnostics=False)

    def _per_level(self, factor: str, ci_prob: float, add_population: bool) -> pd.DataFrame:
        parts = {}
        for label, u, pop in self._effect_draws(factor):
            draws = u + pop if (add_population and pop is not None) else u
            level_dim = [d for d in draws.dims if d.endswith("__factor_dim")][0]
            stats = _stats(draws.transpose(*SAMPLE_DIMS, level_dim), ci_prob)
            parts[label] = pd.DataFrame(stats, index=pd.Index(draws[level_dim].values, name=factor))
        return pd.concat(parts, axis=1, names=["effect", "statistic"])

    def ranef(self, ci_prob: float = 0.95) -> dict[str, pd.DataFrame]:
        """Group-level deviations from the population effects, per factor."""
        ci_prob = _check_prob(ci_prob)
        return {f: self._per_level(f, ci_prob, add_population=False) for f in self.factors()}

    def coef(self, ci_prob: float = 0.95) -> dict[str, pd.DataFrame]:
        """Population plus group-level effects per level, per factor (lme4's ``coef``)."""
        ci_prob = _check_prob(ci_prob)
        return {f: self._per_level(f, ci_prob, add_population=True) for f in self.factors()}

    def varcorr(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Long table like R's ``as.data.frame(VarCorr(m))`` with posterior summaries."""
        ci_prob = _check_prob(ci_prob)
        records = []
        for factor in self.factors():
            table = _table(self.group_draws(factor), ci_prob, diagnostics=False)
            for row, values in table.iterrows():
                inner = row[row.index("(") + 1 : -1]
                var1, _, var2 = inner.partition(",") if row.startswith("cor(") else (inner, "", "")
                records.append({"group": factor, "var1": var1, "var2": var2 or None, **values})
        fam = self.family_draws()
        if self.bmb_model.family.name == "gaussian" and "sigma" in fam:
            values = _table({"sigma": fam["sigma"]}, ci_prob, diagnostics=False).iloc[0]
            records.append({"group": "Residual", "var1": None, "var2": None, **values})
        columns = ["group", "var1", "var2", *STAT_COLUMNS]
        return pd.DataFrame.from_records(records, columns=columns)


# ---- the printed summary ---------------------------------------------------------------


def _approx_draws(settings: dict) -> str:
    """What an approximation's draws are, for the header's ``Draws:`` line."""
    if settings.get("resampled") == "PSIS":
        return "draws of the approximation PSIS-resampled by p/q (importance resampling)"
    return "independent draws"


@dataclass
class Summary:
    """The tables and diagnostics of a fit; ``str()`` renders the lme4/brms-style printout."""

    header: dict
    population: pd.DataFrame
    group: dict[str, pd.DataFrame]
    family: pd.DataFrame
    ci_prob: float = 0.95
    diagnostics: list[str] = field(default_factory=list)

    @classmethod
    def from_view(cls, view: PosteriorView, header: dict, ci_prob: float = 0.95) -> Summary:
        """Compute every table from a :class:`PosteriorView`."""
        ci_prob = _check_prob(ci_prob)
        parts: dict[object, dict[str, xr.DataArray]] = {
            ("group", f): view.group_draws(f) for f in view.factors()
        }
        parts.update(population=view.population_draws(), family=view.family_draws())
        tables = _tables(parts, ci_prob)
        population, family = tables["population"], tables["family"]
        group = {f: tables["group", f] for f in view.factors()}
        header = {**header, "links": brms_links(view.bmb_model)}  # brms's Links: line
        summary = cls(header, population, group, family, ci_prob)
        if header["settings"].get("method", "nuts") != "nuts":  # MCMC diagnostics do not apply
            # (brms shows NA there for its approximate algorithms): independent draws of an
            # approximation have no chains to compare, and Pathfinder's resampled ones repeat
            for table in (population, family, *group.values()):
                table[[c for c in DIAG_COLUMNS if c in table]] = np.nan
            summary.diagnostics = [header["settings"]["verdict"]]
            return summary
        summary.diagnostics = _diagnose(
            summary,
            view.idata,
            header["settings"]["chains"],
            collapsed=header["settings"].get("construction") == "collapsed",
        )
        return summary

    def tables(self) -> dict[str, pd.DataFrame]:
        """All tables by title."""
        out = {f"~{f}": t for f, t in self.group.items()}
        out["Population-level effects"] = self.population
        out["Family specific parameters"] = self.family
        return out

    def _head_lines(self) -> list[str]:
        h = self.header
        s = h["settings"]
        links = h.get("links") or "; ".join(f"{k} = {v}" for k, v in h["link"].items())
        name, n = h.get("data_name"), h["nobs"]
        data = f"{name} (Number of observations: {n})" if name else f"{n} observations"
        return [
            f" Family: {h['family']}",
            f"  Links: {links}",
            f"Formula: {h['formula']}",
            *(f"         {text}" for text in h.get("dpars", [])),
            f"   Data: {data}",
            f"  Draws: {s['chains']} chains x {s['draws']} draws (warm-up {s['tune']}); "
            f"sampler {s['sampler']}, {h['seconds']:.1f} s"
            if s.get("method", "nuts") == "nuts"
            else f"  Draws: {s['chains'] * s['draws']} {_approx_draws(s)}; method {s['method']} "
            f"(approximate), {h['seconds']:.1f} s",
            *(
                ["  Group: effects integrated out while sampling, drawn exactly afterwards "
                 f"(collapsed gaussian{_levels_note(s)})"]
                if s.get("construction") == "collapsed"
                else []
            ),
        ]

    def __str__(self) -> str:
        lines = self._head_lines()
        if self.group:
            lines += ["", "Group-level effects:"]
            for factor, table in self.group.items():
                lines.append(f"~{factor} (Number of levels: {self.header['levels'][factor]})")
                lines.append(format_table(table, self.ci_prob))
                lines.append("")
        else:
            lines.append("")
        lines += ["Population-level effects:", format_table(self.population, self.ci_prob), ""]
        if len(self.family):
            lines += ["Family specific parameters:", format_table(self.family, self.ci_prob), ""]
        lines += ["Diagnostics:"] + [f"  {d}" for d in self.diagnostics]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = ["<pre>" + html.escape("\n".join(self._head_lines())) + "</pre>"]
        levels = self.header.get("levels", {})
        for title, table in self.tables().items():
            if len(table):
                if title[1:] in levels and title.startswith("~"):
                    title = f"{title} (Number of levels: {levels[title[1:]]})"
                parts.append(f"<h4>{html.escape(title)}</h4>")
                parts.append(shown_table(table, self.ci_prob).to_html())
        items = "".join(f"<li>{html.escape(d)}</li>" for d in self.diagnostics)
        parts.append(f"<h4>Diagnostics</h4><ul>{items}</ul>")
        return "\n".join(parts)


def _levels_note(settings: dict) -> str:
    """``; a:b nested in a, two-stage`` for a fit whose nested factors were collapsed."""
    how = settings.get("collapsed_levels")
    return f"; {how}" if how else ""


def _diagnose(summary: Summary, idata, chains: int, collapsed: bool = False) -> list[str]:
    notes = []
    # a collapsed model has no group effects in the sampler: its parameterization is moot
    other = "" if collapsed else " or try the other parameterization"
    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata else None
    ndiv = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    if ndiv:
        notes.append(
            f"{ndiv} divergent transitions after warm-up: the estimates may be biased. Try "
            + (
                "target_accept=0.95."
                if collapsed
                else "target_accept=0.95; if they persist, switch the parameterization of the "
                "factor (noncentered=True for few observations per level, False for many)."
            )
        )
    tables = pd.concat([t for t in summary.tables().values() if len(t)])
    high = tables.index[tables["r_hat"] > 1.01].tolist()
    if high:
        notes.append(
            f"r_hat > 1.01 for {', '.join(high)}: chains disagree; run longer (draws=, tune=)"
            f"{other}."
        )
    threshold = 100 * chains
    low = tables.index[(tables[["ess_bulk", "ess_tail"]].min(axis=1) < threshold)].tolist()
    if low:
        notes.append(
            f"ESS below {threshold} for {', '.join(low)}: intervals are imprecise; increase "
            f"draws={other}."
        )
    if not notes:
        notes.append(f"No divergences; all r_hat <= 1.01; all bulk and tail ESS >= {threshold}.")
    return notes
