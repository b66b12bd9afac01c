"""Long-only mean-variance efficient frontier of the sleeves (pure functions).

Built from the sleeves' per-bar simple returns (:func:`raybt.analysis.
attribution.sleeve_returns`): sample means ``μ`` and covariance ``Σ``
(ddof=1) of the rows where every sleeve has a finite return
(:func:`raybt.analysis.moments.return_moments`).  A portfolio ``w`` is the
fixed-weight mix ``Σ w_i r_i`` with per-bar mean ``μᵀw`` and standard
deviation ``sqrt(wᵀΣw)``.

The frontier is exact: Markowitz's critical line algorithm
(:mod:`raybt.analysis.cla`) finds the turning points of the long-only,
capped problem, and each requested point is the linear interpolation in the
target return between the two turning points around it.

Degenerate inputs: assets with identical returns (duplicate sleeves, or
several constant ones with the same return) are merged into one asset with
their summed cap and split equally afterwards, which leaves every mean and
variance unchanged.  Any other singular covariance (fewer clean rows than
assets, a sleeve that is an exact mix of others) is solved on ``Σ + εI``
with the smallest ``ε`` of 1e-8, 1e-6, 1e-4 times the average variance
that gives a feasible path, recorded in ``attrs["ridge"]`` (per-bar
variance units; the reported volatilities use ``Σ`` itself).

Units: with ``periods_per_year`` (bars per year, e.g. from
:func:`raybt.metrics.periods_per_year`) the axes are annualised,
``return = mean * ppy`` (arithmetic, fraction per year) and
``volatility = std * sqrt(ppy)``; without it they are per bar.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from raybt.analysis.attribution import as_weight_series
from raybt.analysis.cla import SingularFreeSet, critical_line, interpolate_frontier
from raybt.analysis.moments import ReturnMoments, return_moments

__all__ = ["efficient_frontier", "min_variance_weights", "portfolio_point",
           "frontier_volatility_at"]

# ridges tried in turn, relative to the average variance: 0, then for a singular
# covariance (see the module docstring) the smallest that gives a clean walk
RIDGES = (0.0, 1e-8, 1e-6, 1e-4)
# turning points must be feasible to this much (then clipped exactly into the box)
_FEASIBLE = 1e-9


def _check_max_weight(n: int, max_weight: float) -> None:
    if not 0 < max_weight or max_weight * n < 1 - 1e-12:
        raise ValueError(f"max_weight={max_weight} infeasible for {n} assets "
                         "(need n * max_weight >= 1)")


def _check_moments(mom: ReturnMoments) -> None:
    if mom.n_obs < 2:
        raise ValueError("need at least 2 rows of finite returns")


def _duplicate_groups(mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Group label per asset; assets whose returns are identical share one.

    Identical means ``var(r_i - r_j) = Σ_ii + Σ_jj - 2Σ_ij`` is 0 up to
    rounding (1e-12 relative) and equal means (1e-12 relative).
    """
    n = len(mean)
    var = np.diag(cov)
    diff = var[:, None] + var[None, :] - 2.0 * cov
    same = diff <= 1e-12 * (var[:, None] + var[None, :])
    same &= np.abs(mean[:, None] - mean[None, :]) <= 1e-12 * (np.abs(mean[:, None]) + np.abs(mean[None, :]))
    label = np.arange(n)
    ii, jj = np.nonzero(np.triu(same, 1))
    for i, j in zip(ii.tolist(), jj.tolist()):  # union by smallest index (few pairs)
        a, b = label[i], label[j]
        while label[a] != a:
            a = label[a]
        while label[b] != b:
            b = label[b]
        if a != b:
            label[max(a, b)] = min(a, b)
    for i in range(n):
        label[i] = label[label[i]]
    return label


def _into_box(W: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Rows clipped into ``[0, caps]``, then the (tiny) budget residual moved
    onto the weight of each row with the most room for it."""
    W = np.clip(W, 0.0, caps)
    residual = 1.0 - W.sum(axis=1)
    room = np.where(residual[:, None] > 0, caps - W, W)
    j = np.argmax(room, axis=1)
    rows = np.arange(len(W))
    W[rows, j] = np.clip(W[rows, j] + residual, 0.0, caps[j])
    return W


class _Line:
    """The critical line of a moments object under a cap, in the original assets."""

    def __init__(self, mom: ReturnMoments, max_weight: float):
        _check_moments(mom)
        n = len(mom.mean)
        _check_max_weight(n, max_weight)
        label = _duplicate_groups(mom.mean, mom.cov)
        reps, self.group, sizes = np.unique(label, return_inverse=True, return_counts=True)
        self.sizes = sizes
        mu = mom.mean[reps]
        cov = mom.cov[np.ix_(reps, reps)]
        caps = np.minimum(sizes * float(max_weight), 1.0)
        pos = np.diag(cov)[np.diag(cov) > 0]
        vscale = float(pos.mean()) if len(pos) else 1.0
        mscale = float(np.abs(mu).max()) or 1.0
        self.mu_s = mu / mscale
        cov_s = cov / vscale
        self.line = None
        for ridge in RIDGES:
            try:
                line = critical_line(self.mu_s, cov_s + ridge * np.eye(len(mu)) if ridge else cov_s, caps)
            except (SingularFreeSet, RuntimeError):
                continue
            W = line.weights
            if (W.min() >= -_FEASIBLE and (W - caps).max() <= _FEASIBLE
                    and np.abs(W.sum(axis=1) - 1.0).max() <= _FEASIBLE):
                self.line = line._replace(weights=_into_box(W, caps))
                self.ridge = ridge * vscale
                break
        if self.line is None:
            raise ValueError("the covariance of the returns is too degenerate for the frontier")

    def expand(self, W: np.ndarray) -> np.ndarray:
        """Weights over the merged assets -> weights over every asset."""
        return W[:, self.group] / self.sizes[self.group]

    def frontier_weights(self, n_points: int) -> np.ndarray:
        m = self.line.weights @ self.mu_s
        lo, hi = float(m[-1]), float(m[0])
        targets = np.linspace(lo, hi, n_points) if hi > lo else np.full(n_points, lo)
        return self.expand(interpolate_frontier(self.line, self.mu_s, targets))

    def min_variance(self) -> np.ndarray:
        return self.expand(self.line.weights[-1:])[0]


def _min_variance(mom: ReturnMoments, max_weight: float) -> np.ndarray:
    return _Line(mom, max_weight).min_variance()


def min_variance_weights(returns: pd.DataFrame, max_weight: float = 1.0) -> pd.Series:
    """Long-only minimum-variance weights (fractions summing to 1,
    ``0 <= w <= max_weight``), exact (the end of the critical line).

    When several portfolios share the minimum variance (a constant sleeve,
    duplicates) this is the one with the highest mean, duplicates equally
    weighted.
    """
    w = _min_variance(return_moments(returns), max_weight)
    return pd.Series(w, index=list(returns.columns), name="weight")


def _frontier(mom: ReturnMoments, n_points: int = 40, max_weight: float = 1.0,
              periods_per_year: float | None = None) -> pd.DataFrame:
    line = _Line(mom, max_weight)
    n_points = max(int(n_points), 1)
    W = line.frontier_weights(n_points)
    mean = W @ mom.mean
    std = np.sqrt(np.maximum(np.einsum("ij,ij->i", W @ mom.cov, W), 0.0))
    if periods_per_year is not None:
        mean = mean * periods_per_year
        std = std * math.sqrt(periods_per_year)
    out = pd.DataFrame(W, columns=list(mom.assets))
    out.insert(0, "return", mean)
    out.insert(0, "volatility", std)
    out.attrs["converged"] = [True] * n_points
    out.attrs["method"] = "critical line"
    out.attrs["turning_points"] = int(len(line.line.lambdas))
    out.attrs["ridge"] = line.ridge
    return out


def efficient_frontier(returns: pd.DataFrame, n_points: int = 40, max_weight: float = 1.0,
                       periods_per_year: float | None = None) -> pd.DataFrame:
    """The long-only efficient frontier, ``n_points`` rows by increasing return.

    Targets are evenly spaced from the minimum-variance portfolio's mean to
    the highest achievable mean (the best single asset's when
    ``max_weight=1``; the best means filled up to the cap otherwise).  Each
    row is the exact minimiser of ``wᵀΣw`` s.t. ``Σw = 1``,
    ``0 <= w <= max_weight``, ``μᵀw = target`` (critical line algorithm; see
    the module docstring).

    Columns: ``volatility``, ``return`` (annualised when
    ``periods_per_year`` is given, else per bar; see the module docstring),
    then one weight column per asset (fractions summing to 1).  Volatility is
    non-decreasing along the rows.  ``df.attrs``: ``converged`` (one True per
    row, kept for callers of the former solver), ``method``,
    ``turning_points`` and ``ridge`` (0 unless the covariance was singular).
    Raises ValueError with fewer than 2 clean rows or ``max_weight * n < 1``.
    """
    return _frontier(return_moments(returns), n_points, max_weight, periods_per_year)


def _point(mom: ReturnMoments, w: np.ndarray,
           periods_per_year: float | None = None) -> tuple[float, float]:
    w = np.asarray(w, dtype=np.float64)
    w = w / w.sum()
    mean = float(mom.mean @ w)
    std = math.sqrt(max(float(w @ mom.cov @ w), 0.0)) if mom.n_obs >= 2 else math.nan
    if periods_per_year is not None:
        return std * math.sqrt(periods_per_year), mean * periods_per_year
    return std, mean


def portfolio_point(returns: pd.DataFrame, weights,
                    periods_per_year: float | None = None) -> tuple[float, float]:
    """``(volatility, return)`` of the fixed-weight portfolio ``Σ w_i r_i`` on
    the frontier's axes (same rows, moments and annualisation).  Weights are
    rescaled to sum to 1."""
    w = as_weight_series(weights, list(returns.columns)).to_numpy(dtype=np.float64)
    return _point(return_moments(returns), w, periods_per_year)


def frontier_volatility_at(frontier: pd.DataFrame, ret: float) -> float:
    """Frontier volatility at return ``ret`` (linear interpolation between
    rows; the minimum-variance volatility below the frontier's lowest return,
    NaN above its highest)."""
    r = frontier["return"].to_numpy()
    v = frontier["volatility"].to_numpy()
    if ret <= r[0]:
        return float(v[0])
    if ret > r[-1]:
        return math.nan
    return float(np.interp(ret, r, v))
