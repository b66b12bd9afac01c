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
    _assets,
    _clean_returns,
    as_weight_series,
    equity_weights,
    portfolio_equity,
    sleeve_returns,
)

__all__ = [
    "correlation_matrix",
    "diversification_ratio",
    "annualised_volatility",
    "annualised_sharpe",
    "diversification_benefits",
]


def correlation_matrix(returns: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation of the return columns (symmetric, unit diagonal).

    Rows with a non-finite value are dropped first.  A constant column (an
    asset that never traded, zero variance) has no defined correlation: its
    whole row and column, *including its diagonal entry*, are NaN.
    """
    return _clean_returns(returns).corr(method="pearson")


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
    cov = np.atleast_2d(_clean_returns(returns).cov(ddof=1).to_numpy())
    sigma_p2 = float(w @ cov @ w)
    if not math.isfinite(sigma_p2) or sigma_p2 <= 0:
        return math.nan
    if len(assets) == 1:
        return 1.0
    return float(w @ np.sqrt(np.diag(cov))) / math.sqrt(sigma_p2)


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
    rets = sleeve_returns(equity, names, flows)
    vols = np.array([annualised_volatility(rets[a], ppy) for a in names])
    sharpes = np.array([annualised_sharpe(rets[a], ppy) for a in names])
    avg_vol = float(np.nanmean(vols)) if np.isfinite(vols).any() else math.nan
    avg_sharpe = float(np.nanmean(sharpes)) if np.isfinite(sharpes).any() else math.nan
    port_vol = _m.annual_volatility(port)
    port_sharpe = _m.sharpe_ratio(port)
    w = equity_weights(equity, names) if weights is None else as_weight_series(weights, names)
    return {
        "avg_asset_volatility": avg_vol,
        "portfolio_volatility": float(port_vol),
        "volatility_reduction": (1.0 - port_vol / avg_vol) if avg_vol and math.isfinite(avg_vol) else math.nan,
        "avg_asset_sharpe": avg_sharpe,
        "portfolio_sharpe": float(port_sharpe),
        "sharpe_improvement": float(port_sharpe - avg_sharpe),
        "diversification_ratio": diversification_ratio(rets, w),
        "periods_per_year": float(ppy),
    }
