"""Correlation and diversification of a portfolio's sleeves (pure functions).

Conventions (those of :mod:`raybt.metrics`): per-bar simple returns as
fractions, sample standard deviations with ``ddof=1``, annualised by
``sqrt(periods_per_year)`` where ``periods_per_year`` comes from the equity
timestamps (:func:`raybt.metrics.periods_per_year`), risk-free rate 0.
Volatilities are fractions per year (0.2 = 20 %), not percent.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

from raybt import metrics as _m
from raybt.analysis.attribution import (
    _as_flows,
    _assets,
    _normalised_weights,
    as_weight_series,
    portfolio_equity,
    sleeve_pass,
)
from raybt.analysis.moments import ReturnMoments, return_moments

__all__ = [
    "correlation_matrix",
    "diversification_ratio",
    "annualised_volatility",
    "annualised_sharpe",
    "diversification_benefits",
]


def _correlation(mom: ReturnMoments) -> np.ndarray:
    """Pearson correlation from the shared covariance, with ``DataFrame.corr``'s
    conventions: clipped to [-1, 1], unit diagonal, NaN row and column (its
    diagonal too) for a constant asset, all NaN with fewer than 2 clean rows."""
    n = len(mom.mean)
    if mom.n_obs < 2:
        return np.full((n, n), math.nan)
    sd = np.sqrt(np.maximum(np.diag(mom.cov), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = mom.cov / sd[:, None] / sd[None, :]
    np.clip(corr, -1.0, 1.0, out=corr)
    np.fill_diagonal(corr, 1.0)
    flat = mom.constant | (sd == 0)
    corr[flat, :] = math.nan
    corr[:, flat] = math.nan
    return corr


def correlation_matrix(returns: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation of the return columns (symmetric, unit diagonal).

    Rows with a non-finite value are dropped first.  A constant column (an
    asset that never traded, zero variance) has no defined correlation: its
    whole row and column, *including its diagonal entry*, are NaN.  Computed
    from the covariance of :func:`raybt.analysis.moments.return_moments`
    (equal to ``DataFrame.corr()`` up to float rounding, ~1e-15).
    """
    names = list(returns.columns)
    return pd.DataFrame(_correlation(return_moments(returns)), index=names, columns=names)


def _diversification_ratio(mom: ReturnMoments, w: np.ndarray) -> float:
    w = np.asarray(w, dtype=np.float64)
    sigma_p2 = float(w @ mom.cov @ w)
    if not math.isfinite(sigma_p2) or sigma_p2 <= 0:
        return math.nan
    if len(w) == 1:
        return 1.0
    return float(w @ np.sqrt(np.diag(mom.cov))) / math.sqrt(sigma_p2)


def diversification_ratio(returns: pd.DataFrame, weights=None) -> float:
    """``DR = Σ w_i σ_i / σ_p`` (Choueifaty): weighted average asset volatility
    over the volatility of the fixed-weight portfolio ``Σ w_i r_i``.

    ``σ`` from the sample covariance (ddof=1) of the per-bar returns; the
    ratio is dimensionless (annualisation cancels) and invariant to rescaling
    the weights.  ``weights`` default to equal weights.  DR is exactly 1 for
    a single asset (or perfectly correlated assets), ``sqrt(n)`` for ``n``
    uncorrelated equal-volatility assets at equal weight, and >= 1 for
    long-only weights.  NaN when the portfolio has zero variance.
    """
    assets = list(returns.columns)
    if weights is None:
        w = np.full(len(assets), 1.0 / len(assets))
    else:
        w = as_weight_series(weights, assets).to_numpy(dtype=np.float64)
    return _diversification_ratio(return_moments(returns), w)


def annualised_volatility(r, ppy: float) -> float:
    """``std(r, ddof=1) * sqrt(ppy)`` over the finite returns (NaN if < 2)."""
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(ppy))


def annualised_sharpe(r, ppy: float) -> float:
    """``mean(r) / std(r, ddof=1) * sqrt(ppy)`` (risk-free 0; NaN if std is 0)."""
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) < 2:
        return math.nan
    sd = np.std(r, ddof=1)
    if sd == 0 or not np.isfinite(sd):
        return math.nan
    return float(np.mean(r) / sd * math.sqrt(ppy))


def _asset_vol_sharpe(R: np.ndarray, mom: ReturnMoments, ppy: float) -> tuple[np.ndarray, np.ndarray]:
    """Each sleeve's annualised volatility and Sharpe on its own finite returns.

    When every return is finite the sleeve's rows are the clean rows, and
    its mean and std come from the shared moments (``sqrt(Σ_ii)``: equal to
    ``np.std`` up to summation order); otherwise column by column as
    :func:`annualised_volatility` / :func:`annualised_sharpe`.
    """
    n = len(mom.mean)
    if mom.all_clean:
        if mom.n_obs < 2:
            return np.full(n, math.nan), np.full(n, math.nan)
        sd = mom.std
        vol = sd * math.sqrt(ppy)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpe = np.where((sd == 0) | ~np.isfinite(sd), math.nan, mom.mean / sd * math.sqrt(ppy))
        return vol, sharpe
    vol = np.array([annualised_volatility(R[:, j], ppy) for j in range(n)])
    sharpe = np.array([annualised_sharpe(R[:, j], ppy) for j in range(n)])
    return vol, sharpe


def _benefits(port: pd.Series, vols: np.ndarray, sharpes: np.ndarray, dr: float,
              ppy: float) -> dict:
    avg_vol = float(np.nanmean(vols)) if np.isfinite(vols).any() else math.nan
    avg_sharpe = float(np.nanmean(sharpes)) if np.isfinite(sharpes).any() else math.nan
    port_vol = _m.annual_volatility(port)
    port_sharpe = _m.sharpe_ratio(port)
    return {
        "avg_asset_volatility": avg_vol,
        "portfolio_volatility": float(port_vol),
        "volatility_reduction": (1.0 - port_vol / avg_vol) if avg_vol and math.isfinite(avg_vol) else math.nan,
        "avg_asset_sharpe": avg_sharpe,
        "portfolio_sharpe": float(port_sharpe),
        "sharpe_improvement": float(port_sharpe - avg_sharpe),
        "diversification_ratio": dr,
        "periods_per_year": float(ppy),
    }


def diversification_benefits(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                             flows: pd.DataFrame | None = None,
                             weights=None) -> dict:
    """Portfolio annual volatility and Sharpe against the average single asset's.

    Each sleeve is measured on its own returns (:func:`sleeve_returns`, flows
    excluded when given); the portfolio on its ``equity`` column (the sleeve
    sum when absent) with :mod:`raybt.metrics`.  Keys (floats):

    * ``avg_asset_volatility``: mean of the sleeves' annual volatilities;
    * ``portfolio_volatility``: the portfolio's annual volatility;
    * ``volatility_reduction``: ``1 - portfolio / average`` (fraction; > 0
      means the portfolio is calmer than the typical sleeve);
    * ``avg_asset_sharpe``, ``portfolio_sharpe``, ``sharpe_improvement``
      (``portfolio - average``, a difference of annualised Sharpe ratios);
    * ``diversification_ratio``: :func:`diversification_ratio` of the sleeve
      returns at ``weights`` (default: average share of portfolio equity);
    * ``periods_per_year``.

    Sleeves with undefined volatility/Sharpe (e.g. never traded) are skipped
    in the averages (NaN-mean).
    """
    names = _assets(equity, assets)
    port = portfolio_equity(equity, names)
    ppy = _m.periods_per_year(port)
    st = sleeve_pass(equity, names, _as_flows(flows, equity.index, names),
                     returns=True, shares=weights is None, stats=False)
    mom = return_moments(st.returns, names)
    vols, sharpes = _asset_vol_sharpe(st.returns, mom, ppy)
    w = (_normalised_weights(st.share, names) if weights is None
         else as_weight_series(weights, names)).to_numpy(dtype=np.float64)
    return _benefits(port, vols, sharpes, _diversification_ratio(mom, w), ppy)
