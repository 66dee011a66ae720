"""Can an approximate posterior be trusted? Pareto k-hat and what reweighting by p/q changes.

Draws from the approximation ``q`` are weighted by ``p(theta | y) / q(theta)`` (unnormalised,
unconstrained space) and smoothed by PSIS (arviz-stats), as brms and Stan judge their
approximate algorithms (Yao et al. 2018, Vehtari et al. 2024):

* the Pareto shape ``k`` of the largest weights says whether q misses part of p (``k >= 0.7``:
  the weights' tail is too heavy; ``0.5 <= k < 0.7``: roughly; ``k < 0.5``: close);
* ``k`` cannot see a q that is too *wide* (its weights are then bounded): on sleepstudy mean-field
  ADVI had ``k = 0.16`` with a group sd 11% too large. So the weighted draws are also compared
  with q's own: where ``k < 0.7`` the PSIS-weighted mean and sd estimate p's. A mean that moves
  by more than 10% (a positive quantity: sds, sigma), 0.1 (a correlation) or 0.1 sd (anything
  else: the population effects) says the approximation is off there, however small ``k`` is
  (these are the accuracy targets the approximations were measured against,
  docs/approximations.md); an sd that changes by more than 10% says the interval widths are off.

Where the fit's draws are those of q resampled by these weights (the collapsed Laplace,
``k < 0.7``: :func:`psis_resample`), the same moves say what the resampling corrected, and the
verdict says so (``Check.resampled``), with the weights' effective number of draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "KHAT_GOOD",
    "KHAT_OK",
    "Check",
    "check_draws",
    "check_weighted",
    "khat_verdict",
    "psis_khat",
    "psis_log_weights",
    "psis_resample",
]

KHAT_GOOD = 0.5  # below: the approximation is close (Yao et al. 2018)
KHAT_OK = 0.7  # at or above: unreliable (Vehtari et al. 2024)
MOVE_PERCENT = 10.0  # mean of a scale (an sd, sigma) moved by more: off; an sd: widths said off
WIDTH_OFF = 50.0  # an sd changed by more (percent): the intervals are off, not just less sure
MOVE_SDS = 0.1  # mean of any other quantity moved by more (in q's sds): off
MOVE_CORR = 0.1  # mean of a correlation moved by more: off
MIN_ESS = 100  # resampled draws resting on fewer effective draws of q: not reliable


@dataclass(frozen=True)
class Check:
    """The k-hat of p/q and what reweighting q's draws by p/q moves most."""

    khat: float  # nan if it could not be computed
    moved: str = ""  # the mean moved most, e.g. "the mean of sigma by +3%"; "" if none compared
    too_far: bool = False  # ``moved`` is beyond MOVE_PERCENT / MOVE_SDS / MOVE_CORR
    widened: str = ""  # the sd changed most, e.g. "the sd of sigma by +15%"
    width_percent: float = 0.0  # that change, in %
    resampled: bool = False  # the fit's draws are q's draws PSIS-resampled by p/q
    ess: float = float("nan")  # effective number of q's draws under the PSIS weights
    pool: int = 0  # number of q's draws weighed


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
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            smoothed, khat = array_stats.psislw(np.max(log_w[np.isfinite(log_w)]) - log_w)
    except ValueError:
        return None, float("nan")
    smoothed, khat = np.asarray(smoothed, dtype=float), float(np.asarray(khat))
    if not np.isfinite(khat):
        # PSIS's tail fit fails when the log ratios span thousands (a q far from p: ADVI on the
        # 10^6-row model): then a few draws hold all the weight, the heaviest tail there is
        raw = log_w - np.logaddexp.reduce(finite)
        if 1 / np.sum(np.exp(2 * raw[np.isfinite(raw)])) < 0.01 * finite.size:
            return raw, float("inf")
        return None, float("nan")
    return smoothed - np.logaddexp.reduce(smoothed), khat


def psis_khat(log_p: np.ndarray, log_q: np.ndarray) -> float:
    """Pareto k-hat (PSIS, arviz-stats) of the importance ratios ``p / q`` of draws from q.

    ``log_p``, ``log_q``: unnormalised log-densities of the draws; a draw where ``p`` is not
    finite has weight 0. ``nan`` when no draw has a finite weight.
    """
    return psis_log_weights(log_p, log_q)[1]


def psis_resample(log_w: np.ndarray, size: int, rng) -> np.ndarray:
    """Indices of ``size`` draws resampled with replacement by the PSIS weights ``log_w``.

    Sampling-importance-resampling (Rubin 1988; PSIR in Zhang et al. 2022, Pathfinder): with
    replacement, so that the resampled draws follow p however many are asked for.
    """
    w = np.exp(log_w - np.logaddexp.reduce(log_w))
    return rng.choice(w.size, size=size, replace=True, p=w / w.sum())


def check_draws(
    log_p, log_q, columns: dict[str, np.ndarray], correlations=(), scales=()
) -> Check:
    """k-hat of p/q and the largest moves of a mean and of an sd of ``columns`` when reweighted.

    ``columns``: name -> values at the same draws (one scalar quantity each); the names in
    ``correlations`` are correlations, whose means are compared on their own scale (moved by
    0.1 at most), those in ``scales`` sds and other scale parameters (moved by 10% at most);
    any other mean may move by 0.1 of its sd (an intercept of 251 with sd 7 by 0.7, not 10%).
    """
    log_w, khat = psis_log_weights(log_p, log_q)
    return check_weighted(log_w, khat, columns, correlations, scales)


def check_weighted(
    log_w, khat: float, columns: dict[str, np.ndarray], correlations=(), scales=()
) -> Check:
    """:func:`check_draws` on PSIS log weights ``log_w`` (normalised) already computed."""
    if log_w is None:
        return Check(khat)
    w = np.exp(log_w)
    ess = float(1 / np.sum(w**2))
    moved, score, widened, width = "", 0.0, "", 0.0
    for name, x in columns.items():
        x = np.asarray(x, dtype=float)
        mq, sq = x.mean(), x.std()
        if not np.isfinite(x).all() or sq <= 1e-9 * (1 + abs(mq)):  # e.g. a correlation's 1
            continue
        mw = float(w @ x)
        sw = float(np.sqrt(w @ (x - mw) ** 2))
        if name in correlations:
            change, limit, text = mw - mq, MOVE_CORR, f"the mean of {name} by {{:+.2f}}"
        elif name in scales:
            change, limit = 100 * (mw / mq - 1), MOVE_PERCENT
            text = f"the mean of {name} by {{:+.1f}}%"
        else:
            change, limit, text = (mw - mq) / sq, MOVE_SDS, f"the mean of {name} by {{:+.2f}} sd"
        if abs(change) / limit > score:
            moved, score = text.format(change), abs(change) / limit
        if abs(100 * (sw / sq - 1)) > abs(width):
            width = 100 * (sw / sq - 1)
            widened = f"the sd of {name} by {width:+.0f}%"
    return Check(khat, moved, bool(score > 1), widened, float(width), ess=ess, pool=w.size)


def khat_verdict(method: str, khat: float, check: Check | None = None) -> str:
    """One line for the summary: the k-hat and whether the approximation can be trusted."""
    moved = "" if check is None else check.moved
    if np.isnan(khat):
        return (
            f"{method} approximation: the Pareto k-hat could not be computed, so its accuracy "
            "is unknown; confirm with method='nuts'."
        )
    if khat >= KHAT_OK:
        shown = f"{khat:.2f}" if np.isfinite(khat) else "far above 1 (a few draws hold the weight)"
        return (
            f"{method} approximation NOT reliable: Pareto k-hat {shown} >= {KHAT_OK} "
            "(importance ratios p/q): the approximation misses part of the posterior. Do not "
            "report these estimates; run method='nuts' (the default)."
        )
    if check is not None and check.resampled:
        return _resampled_verdict(method, khat, check)
    if check is not None and abs(check.width_percent) > WIDTH_OFF:
        return (
            f"{method} approximation NOT reliable: reweighting its draws by p/q (Pareto k-hat "
            f"{khat:.2f}) changes {check.widened}: its intervals are off. Do not report these "
            "estimates; run method='nuts' (the default)."
        )
    if check is not None and check.too_far:
        return (
            f"{method} approximation NOT reliable: reweighting its draws by p/q (Pareto k-hat "
            f"{khat:.2f}) moves {moved}: the approximation is off there. Do not report these "
            "estimates; run method='nuts' (the default)."
        )
    moves = f"; reweighting by p/q moves {moved} at most" if moved else ""
    widths = ""
    if check is not None and abs(check.width_percent) > MOVE_PERCENT:
        widths = f", but {check.widened}: interval widths are off by that much"
    if khat < KHAT_GOOD and not widths:
        return (
            f"{method} approximation: Pareto k-hat {khat:.2f} < {KHAT_GOOD} (importance ratios "
            f"p/q){moves}: close enough for means and intervals; run method='nuts' for final "
            "results."
        )
    if not widths:
        widths = ": means are usable, but tails and interval widths are less sure"
    return (
        f"{method} approximation only roughly right: Pareto k-hat {khat:.2f} (importance "
        f"ratios p/q){moves}{widths}; confirm with method='nuts'."
    )


def _resampled_verdict(method: str, khat: float, check: Check) -> str:
    """The line for draws of q PSIS-resampled by p/q (``k < 0.7``): they estimate p itself.

    The moves then say how far q alone was off and the resampled draws corrected; what limits
    them is how many of q's draws carry the weight (``ess``) and, above ``k = 0.5``, the tails.
    """
    ess = f"effective draws {check.ess:.0f} of {check.pool}"
    head = f"{method} approximation, PSIS-resampled by p/q (Pareto k-hat {khat:.2f}, {ess})"
    if check.ess < MIN_ESS:
        return (
            f"{method} approximation NOT reliable: Pareto k-hat {khat:.2f}, but only "
            f"{check.ess:.0f} of its {check.pool} draws carry the importance weight, so the "
            "resampled draws repeat a few values. Do not report these estimates; run "
            "method='nuts' (the default)."
        )
    corrected = check.too_far or abs(check.width_percent) > MOVE_PERCENT
    if corrected:
        fixes = [check.moved] if check.too_far else []
        if abs(check.width_percent) > MOVE_PERCENT:
            fixes.append(check.widened)
        return (
            f"{head} only roughly right: resampling changed {' and '.join(fixes)} (the "
            "Gaussian alone was off there, and the resampled draws correct it only as far as "
            "its draws reach); confirm with method='nuts'."
        )
    moves = f": resampling moved {check.moved} at most" if check.moved else ""
    if khat < KHAT_GOOD:
        return (
            f"{head}{moves}: close enough for means and intervals; run method='nuts' for "
            "final results."
        )
    return (
        f"{head} only roughly right{moves}: means are usable, but tails and interval widths "
        "are less sure; confirm with method='nuts'."
    )
