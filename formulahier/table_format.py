"""Tables of a summary as printed: brms's column names, a common precision, integer ESS.

The numbers are computed in :mod:`formulahier.results`; this module only renders them.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["format_table", "shown_table"]

_PRINT_COLUMNS = {
    "estimate": "Estimate",
    "std_error": "Est.Error",
    "lower": "l-{p}% CI",
    "upper": "u-{p}% CI",
    "r_hat": "Rhat",
    "ess_bulk": "Bulk_ESS",
    "ess_tail": "Tail_ESS",
}


def _rename(table: pd.DataFrame, ci_prob: float) -> pd.DataFrame:
    p = f"{100 * ci_prob:g}"
    return table.rename(columns={k: v.format(p=p) for k, v in _PRINT_COLUMNS.items()})


def _decimals(table: pd.DataFrame) -> int:
    errs = table["std_error"].abs()
    errs = errs[errs > 0]
    if errs.empty:
        return 2
    return int(min(max(1 - math.floor(math.log10(errs.min())), 2), 6))


def format_table(table: pd.DataFrame, ci_prob: float) -> str:
    """The table as printed text; ``(none)`` for an empty one."""
    if table.empty:
        return "  (none)"
    return shown_table(table, ci_prob).to_string()


def shown_table(table: pd.DataFrame, ci_prob: float) -> pd.DataFrame:
    """The table as printed: estimates to a common precision, r_hat 2 decimals, integer ESS."""
    dec = _decimals(table)
    shown = pd.DataFrame(index=table.index)
    for col in table.columns:
        values = table[col]
        if col == "r_hat":
            shown[col] = values.map(lambda v: "NA" if pd.isna(v) else f"{v:.2f}")
        elif col.startswith("ess"):
            shown[col] = values.map(lambda v: "NA" if pd.isna(v) else f"{int(v)}")
        else:
            shown[col] = values.map(lambda v, d=dec: f"{v:.{d}f}")
    return _rename(shown, ci_prob)
