"""Can an approximate posterior be trusted? Pareto k-hat and what reweighting by p/q changes.

Draws from the approximation ``q`` are weighted by ``p(theta | y) / q(theta)`` (unnormalised,
unconstrained space) and smoothed by PSIS (arviz-stats), as brms and Stan judge their
approximate algorithms (Yao et al. 2018, Vehtari et al. 2024):

* the Pareto shape ``k`` of the largest weights says whether q misses part of p (``k >= 0.7``:
  the weights' tail is too heavy; ``0.5 <= k < 0.7``: roughly; ``k < 0.5``: close);
* ``k`` cannot see a q that is too *wide* (its weights are then bounded): on sleepstudy mean-field
  ADVI had ``k = 0.16`` with a group sd 11% too large. So the weighted draws are also compared
  with q's own: where ``k < 0.7`` the PSIS-weighted mean and sd estimate p's, and a mean that
  moves by more than 10% (a positive quantity: sds, sigma), or by more than 0.1 sd (anything
  else), or an sd that changes by more than 10%, says the approximation is off there, however
  small ``k`` is. These are the accuracy targets that the approximations were measured against
  (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KHAT_GOOD", "KHAT_OK", "Check", "check_draws", "khat_verdict", "psis_khat"]

KHAT_GOOD = 0.5  # below: the approximation is close (Yao et al. 2018)
KHAT_OK = 0.7  # at or above: unreliable (Vehtari et al. 2024)
MOVE_PERCENT = 10.0  # mean of a positive quantity, or an sd, moved by more: off
MOVE_SDS = 0.1  # mean of any other quantity moved by more (in q's sds): off


@dataclass(frozen=True)
class Check:
    """The k-hat of p/q and the estimate that reweighting by p/q moves most."""

    khat: float  # nan if it could not be computed
    moved: str = ""  # e.g. "the mean of sigma by +12%"; "" when nothing was compared
    too_far: bool = False  # ``moved`` is beyond MOVE_PERCENT / MOVE_SDS


def psis_log_weights(log_p: np.ndarray, log_q: np.ndarray) -> tuple[np.ndarray | None, float]:
    """PSIS-smoothed, normalised log weights of p/q and the Pareto k-hat (``None, nan``)."""
    from arviz_stats.base import array_stats

    log_w = np.where(np.isfinite(log_p), np.asarray(log_p) - np.asarray(log_q), -np.inf)
    if not np.isfinite(log_w).any():
        return None, float("nan")
    finite = log_w[np.isfinite(log_w)]
    if np.ptp(finite) == 0:  # q is p up to a constant: equal weights, a tail of shape 0
        return np.where(np.isfinite(log_w), -np.log(finite.size), -np.inf), 0.0
    try:
        # arviz-stats's psislw takes log-likelihoods as PSIS-LOO does (weights exp(-input))
        smoothed, khat = array_stats.psislw(np.max(log_w[np.isfinite(log_w)]) - log_w)
    except ValueError:
        return None, float("nan")
    smoothed = np.asarray(smoothed, dtype=float)
    return smoothed - np.logaddexp.reduce(smoothed), float(np.asarray(khat))


def psis_khat(log_p: np.ndarray, log_q: np.ndarray) -> float:
    """Pareto k-hat (PSIS, arviz-stats) of the importance ratios ``p / q`` of draws from q.

    ``log_p``, ``log_q``: unnormalised log-densities of the draws; a draw where ``p`` is not
    finite has weight 0. ``nan`` when no draw has a finite weight.
    """
    return psis_log_weights(log_p, log_q)[1]


def check_draws(log_p, log_q, columns: dict[str, np.ndarray]) -> Check:
    """k-hat of p/q and the largest move of a mean or sd of ``columns`` when reweighted.

    ``columns``: name -> values at the same draws (one scalar quantity each).
    """
    log_w, khat = psis_log_weights(log_p, log_q)
    if log_w is None:
        return Check(khat)
    w = np.exp(log_w)
    worst, score = "", 0.0
    for name, x in columns.items():
        x = np.asarray(x, dtype=float)
        if not np.isfinite(x).all() or np.ptp(x) == 0:
            continue
        mq, sq = x.mean(), x.std()
        mw = float(w @ x)
        sw = float(np.sqrt(w @ (x - mw) ** 2))
        moves = [(100 * (sw / sq - 1), MOVE_PERCENT, f"the sd of {name} by {{:+.0f}}%")]
        if (x > 0).all():
            moves.append((100 * (mw / mq - 1), MOVE_PERCENT, f"the mean of {name} by {{:+.0f}}%"))
        else:
            moves.append(((mw - mq) / sq, MOVE_SDS, f"the mean of {name} by {{:+.2f}} sd"))
        for change, limit, text in moves:
            if abs(change) / limit > score:
                worst, score = text.format(change), abs(change) / limit
    return Check(khat, worst, score > 1)


def khat_verdict(method: str, khat: float, check: Check | None = None) -> str:
    """One line for the summary: the k-hat and whether the approximation can be trusted."""
    moved = "" if check is None else check.moved
    if not np.isfinite(khat):
        return (
            f"{method} approximation: the Pareto k-hat could not be computed, so its accuracy "
            "is unknown; confirm with method='nuts'."
        )
    if khat >= KHAT_OK:
        return (
            f"{method} approximation NOT reliable: Pareto k-hat {khat:.2f} >= {KHAT_OK} "
            "(importance ratios p/q): the approximation misses part of the posterior. Do not "
            "report these estimates; run method='nuts' (the default)."
        )
    if check is not None and check.too_far:
        return (
            f"{method} approximation NOT reliable: reweighting its draws by p/q (Pareto k-hat "
            f"{khat:.2f}) moves {moved}: the approximation is off there. Do not report these "
            "estimates; run method='nuts' (the default)."
        )
    moves = f"; reweighting by p/q moves {moved} at most" if moved else ""
    if khat < KHAT_GOOD:
        return (
            f"{method} approximation: Pareto k-hat {khat:.2f} < {KHAT_GOOD} (importance ratios "
            f"p/q){moves}: close enough for means and intervals; run method='nuts' for final "
            "results."
        )
    return (
        f"{method} approximation only roughly right: Pareto k-hat {khat:.2f} (importance "
        f"ratios p/q; {KHAT_GOOD}-{KHAT_OK}){moves}: means are usable, but tails and interval "
        "widths are less sure; confirm with method='nuts'."
    )
