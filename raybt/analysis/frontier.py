"""Long-only mean-variance efficient frontier of the sleeves (pure functions).

Built from the sleeves' per-bar simple returns (:func:`raybt.analysis.
attribution.sleeve_returns`): sample means ``μ`` and covariance ``Σ``
(ddof=1) of the rows where every sleeve has a finite return.  A portfolio
``w`` is the fixed-weight mix ``Σ w_i r_i`` with per-bar mean ``μᵀw`` and
standard deviation ``sqrt(wᵀΣw)``.

Units: with ``periods_per_year`` (bars per year, e.g. from
:func:`raybt.metrics.periods_per_year`) the axes are annualised,
``return = mean * ppy`` (arithmetic, fraction per year) and
``volatility = std * sqrt(ppy)``; without it they are per bar.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from raybt.analysis.attribution import _clean_returns, as_weight_series

__all__ = ["efficient_frontier", "min_variance_weights", "portfolio_point",
           "frontier_volatility_at"]


def _moments(returns: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, float]:
    """(μ, Σ) of the returns divided by a scale ``s`` (mean column std), and s.

    Per-bar moments of 5-minute returns are ~1e-5 / 1e-10, far below SLSQP's
    tolerances, so the optimisation runs on ``r / s`` (weights unchanged).
    """
    r = _clean_returns(returns).to_numpy(dtype=np.float64)
    if r.shape[0] < 2:
        raise ValueError("need at least 2 rows of finite returns")
    sd = r.std(axis=0, ddof=1)
    pos = sd[sd > 0]
    scale = float(pos.mean()) if len(pos) else 1.0
    rs = r / scale
    return rs.mean(axis=0), np.atleast_2d(np.cov(rs, rowvar=False, ddof=1)), scale


def _solve(cov: np.ndarray, mu: np.ndarray, max_weight: float, x0: np.ndarray,
           target: float | None) -> tuple[np.ndarray, bool]:
    """Minimise ``wᵀΣw`` (optionally at ``μᵀw = target``) from ``x0``.

    Returns the clipped weights and whether the result is acceptable: SLSQP
    reported success, or the constraints hold to 1e-8 (SLSQP sometimes stops
    with "positive directional derivative" at an optimum).  A failed start is
    retried from equal weights and the better feasible answer kept.
    """
    n = len(mu)
    cons = [{"type": "eq", "fun": lambda w: np.sum(w) - 1.0,
             "jac": lambda w: np.ones(n)}]
    if target is not None:
        cons.append({"type": "eq", "fun": lambda w: mu @ w - target,
                     "jac": lambda w: mu})

    def run(start):
        res = minimize(lambda w: w @ cov @ w, start, jac=lambda w: 2.0 * cov @ w,
                       method="SLSQP", bounds=[(0.0, max_weight)] * n,
                       constraints=cons, options={"ftol": 1e-15, "maxiter": 1000})
        w = np.clip(res.x, 0.0, max_weight)
        w = w / w.sum()
        feasible = target is None or abs(mu @ w - target) <= 1e-8 * max(1.0, abs(target))
        return w, (bool(res.success) and feasible) or (feasible and np.all(np.isfinite(w))), \
            float(w @ cov @ w)

    w, ok, var = run(x0)
    if not bool(ok):
        w2, ok2, var2 = run(np.full(n, 1.0 / n))
        if ok2 and (not ok or var2 < var):
            w, ok = w2, ok2
    return w, bool(ok)


def _check_max_weight(n: int, max_weight: float) -> None:
    if not 0 < max_weight or max_weight * n < 1 - 1e-12:
        raise ValueError(f"max_weight={max_weight} infeasible for {n} assets "
                         "(need n * max_weight >= 1)")


def min_variance_weights(returns: pd.DataFrame, max_weight: float = 1.0) -> pd.Series:
    """Long-only minimum-variance weights (sum 1, ``0 <= w <= max_weight``)."""
    mu, cov, _ = _moments(returns)
    n = len(mu)
    _check_max_weight(n, max_weight)
    w, _ = _solve(cov, mu, max_weight, np.full(n, 1.0 / n), None)
    return pd.Series(w, index=list(returns.columns), name="weight")


def _max_mean_weights(mu: np.ndarray, max_weight: float) -> np.ndarray:
    """Highest-mean long-only portfolio under the cap: fill best means first."""
    w = np.zeros(len(mu))
    left = 1.0
    for i in np.argsort(-mu, kind="stable"):
        w[i] = min(max_weight, left)
        left -= w[i]
        if left <= 1e-15:
            break
    return w


def efficient_frontier(returns: pd.DataFrame, n_points: int = 40, max_weight: float = 1.0,
                       periods_per_year: float | None = None) -> pd.DataFrame:
    """The long-only efficient frontier, ``n_points`` rows by increasing return.

    Targets are evenly spaced from the minimum-variance portfolio's mean to
    the highest achievable mean (the best single asset's when
    ``max_weight=1``; the best means filled up to the cap otherwise).  Each
    point minimises ``wᵀΣw`` s.t. ``Σw = 1``, ``0 <= w <= max_weight``,
    ``μᵀw = target`` (SLSQP, warm-started from the previous point).

    Columns: ``volatility``, ``return`` (annualised when
    ``periods_per_year`` is given, else per bar; see the module docstring),
    then one weight column per asset (fractions summing to 1).  Volatility is
    non-decreasing along the rows (up to solver tolerance).
    ``df.attrs["converged"]`` lists the solver's success flag per row.
    """
    assets = list(returns.columns)
    mu, cov, scale = _moments(returns)
    n = len(mu)
    _check_max_weight(n, max_weight)
    n_points = max(int(n_points), 1)
    w_mv, ok_mv = _solve(cov, mu, max_weight, np.full(n, 1.0 / n), None)
    w_top = _max_mean_weights(mu, max_weight)
    lo, hi = float(mu @ w_mv), float(mu @ w_top)
    targets = np.linspace(lo, hi, n_points) if hi > lo else np.full(n_points, lo)
    rows, flags = [], []
    w = w_mv
    for k, t in enumerate(targets):
        if k == 0:
            w, ok = w_mv, ok_mv
        elif k == n_points - 1 and hi > lo and np.count_nonzero(w_top) == 1:
            w, ok = w_top, True  # a single asset: the only portfolio with that mean
        else:
            w, ok = _solve(cov, mu, max_weight, w, float(t))
        rows.append(w)
        flags.append(ok)
    W = np.array(rows)
    mean = W @ mu * scale
    std = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", W, cov, W), 0.0)) * scale
    if periods_per_year is not None:
        mean = mean * periods_per_year
        std = std * math.sqrt(periods_per_year)
    out = pd.DataFrame(W, columns=assets)
    out.insert(0, "return", mean)
    out.insert(0, "volatility", std)
    out.attrs["converged"] = flags
    return out


def portfolio_point(returns: pd.DataFrame, weights,
                    periods_per_year: float | None = None) -> tuple[float, float]:
    """``(volatility, return)`` of the fixed-weight portfolio ``Σ w_i r_i`` on
    the frontier's axes (same rows, moments and annualisation).  Weights are
    rescaled to sum to 1."""
    assets = list(returns.columns)
    w = as_weight_series(weights, assets).to_numpy(dtype=np.float64)
    w = w / w.sum()
    rp = _clean_returns(returns).to_numpy(dtype=np.float64) @ w
    mean, std = float(np.mean(rp)), float(np.std(rp, ddof=1))
    if periods_per_year is not None:
        return std * math.sqrt(periods_per_year), mean * periods_per_year
    return std, mean


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
