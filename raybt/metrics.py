"""Performance metrics over an equity curve and a trades table (pure functions).

Conventions (empyrical's; tested against it to 1e-9):

* returns: bar-to-bar simple returns of equity, ``r_i = E_i / E_{i-1} - 1``
  (N bars -> N-1 returns);
* years: (last timestamp - first timestamp) / 365.25 days;
  ``periods_per_year = (N - 1) / years``;
* ``total_return = E_last / E_first - 1`` (fraction);
  ``cagr = (1 + total_return) ** (1 / years) - 1``;
* ``annual_volatility = std(r, ddof=1) * sqrt(periods_per_year)``;
* ``sharpe = mean(r) / std(r, ddof=1) * sqrt(periods_per_year)`` (risk-free 0);
* ``sortino = mean(r) * periods_per_year / (sqrt(mean(min(r, 0)^2)) *
  sqrt(periods_per_year))``: downside deviation over ALL returns;
* drawdown: positive fraction below the running peak, the first equity value
  counting as a peak; ``max_drawdown`` its maximum;
* ``max_drawdown_duration`` (= ``max_drawdown_duration_days``): the longest
  time from a peak until equity is back at or above it (or until the last bar
  if it never recovers), in days; ``max_drawdown_duration_bars`` in bars;
* ``calmar = cagr / max_drawdown`` (NaN when there is no drawdown);
* trades: ``n_trades``, ``win_rate`` (fraction with pnl > 0), ``profit_factor``
  (gross profit / gross loss; inf when there are wins and no losses),
  ``avg_trade_pnl``, ``total_commission``, ``exit_<reason>`` counts;
* ``exposure``: fraction of bars in a position, where a trade occupies its
  entry bar through its exit bar inclusive (backtesting.py's convention); for
  a portfolio a bar counts when any asset is in a position.

Undefined ratios (zero volatility, fewer than 2 bars, no trades) are NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365.25
NS_PER_DAY = 86_400 * 10**9


def returns_from_equity(equity: pd.Series) -> np.ndarray:
    values = np.asarray(equity, dtype=np.float64)
    if len(values) < 2:
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return values[1:] / values[:-1] - 1.0


def years_spanned(equity: pd.Series) -> float:
    if len(equity) < 2:
        return math.nan
    return (equity.index[-1] - equity.index[0]).value / NS_PER_DAY / DAYS_PER_YEAR


def periods_per_year(equity: pd.Series) -> float:
    years = years_spanned(equity)
    return (len(equity) - 1) / years if years and years > 0 else math.nan


def total_return(equity: pd.Series) -> float:
    values = np.asarray(equity, dtype=np.float64)
    return float(values[-1] / values[0] - 1.0) if len(values) else math.nan


def cagr(equity: pd.Series) -> float:
    years = years_spanned(equity)
    if not years or years <= 0 or math.isnan(years):
        return math.nan
    growth = 1.0 + total_return(equity)
    if growth <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        return float(np.power(growth, 1.0 / years)) - 1.0


def annual_volatility(equity: pd.Series) -> float:
    r = returns_from_equity(equity)
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year(equity)))


def sharpe_ratio(equity: pd.Series) -> float:
    r = returns_from_equity(equity)
    if len(r) < 2:
        return math.nan
    sd = np.std(r, ddof=1)
    if sd == 0 or not np.isfinite(sd):
        return math.nan
    return float(np.mean(r) / sd * math.sqrt(periods_per_year(equity)))


def sortino_ratio(equity: pd.Series) -> float:
    r = returns_from_equity(equity)
    if len(r) < 1:
        return math.nan
    ppy = periods_per_year(equity)
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(ppy)
    mean = float(np.mean(r)) * ppy
    if downside == 0:
        return math.inf if mean > 0 else math.nan
    return mean / downside


def drawdown_series(equity: pd.Series) -> pd.Series:
    values = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, 1.0 - values / peak, 0.0)
    return pd.Series(dd, index=equity.index, name="drawdown")


def max_drawdown(equity: pd.Series) -> float:
    return float(drawdown_series(equity).max()) if len(equity) else math.nan


def max_drawdown_duration(equity: pd.Series) -> tuple[float, int]:
    """(days, bars) of the longest stretch below a previous peak."""
    values = np.asarray(equity, dtype=np.float64)
    if len(values) < 2:
        return 0.0, 0
    peak = np.maximum.accumulate(values)
    under = values < peak
    if not under.any():
        return 0.0, 0
    ns = equity.index.as_unit("ns").asi8
    # start of each underwater stretch = the peak bar just before it
    starts = np.flatnonzero(under & ~np.r_[False, under[:-1]])
    ends = np.flatnonzero(under & ~np.r_[under[1:], False])
    best_days, best_bars = 0.0, 0
    for s, e in zip(starts, ends):
        peak_bar = s - 1
        recover_bar = e + 1 if e + 1 < len(values) else e
        bars = recover_bar - peak_bar
        days = (ns[recover_bar] - ns[peak_bar]) / NS_PER_DAY
        if days > best_days or (days == best_days and bars > best_bars):
            best_days, best_bars = days, int(bars)
    return float(best_days), best_bars


def calmar_ratio(equity: pd.Series) -> float:
    mdd = max_drawdown(equity)
    if not mdd or mdd <= 0:
        return math.nan
    return cagr(equity) / mdd


def trade_stats(trades: pd.DataFrame | None) -> dict:
    if trades is None or len(trades) == 0:
        return {"n_trades": 0, "win_rate": math.nan, "profit_factor": math.nan,
                "avg_trade_pnl": math.nan, "total_commission": 0.0}
    pnl = trades["pnl"].to_numpy(dtype=np.float64)
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    if losses > 0:
        profit_factor = float(gains / losses)
    else:
        profit_factor = math.inf if gains > 0 else math.nan
    stats = {"n_trades": int(len(pnl)), "win_rate": float((pnl > 0).mean()),
             "profit_factor": profit_factor, "avg_trade_pnl": float(pnl.mean()),
             "total_commission": float(trades["commission"].sum())}
    for reason, count in trades["exit_reason"].value_counts().items():
        stats[f"exit_{reason}"] = int(count)
    return stats


def exposure(equity: pd.Series, trades: pd.DataFrame | None) -> float:
    """Fraction of bars from some trade's entry bar to its exit bar inclusive."""
    n = len(equity)
    if n == 0:
        return math.nan
    if trades is None or len(trades) == 0:
        return 0.0
    ns = equity.index.as_unit("ns").asi8
    entry = np.searchsorted(ns, pd.DatetimeIndex(trades["entry_time"]).as_unit("ns").asi8)
    exit_ = np.searchsorted(ns, pd.DatetimeIndex(trades["exit_time"]).as_unit("ns").asi8)
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, entry, 1)
    np.add.at(marks, np.minimum(exit_ + 1, n), -1)
    return float((np.cumsum(marks[:n]) > 0).mean())


def rolling_sharpe(equity: pd.Series, window_bars: int) -> pd.Series:
    """Sharpe over a rolling window of returns, annualised like :func:`sharpe_ratio`."""
    r = pd.Series(returns_from_equity(equity), index=equity.index[1:])
    ppy = periods_per_year(equity)
    roll = r.rolling(window_bars)
    return roll.mean() / roll.std(ddof=1) * math.sqrt(ppy)


def compute_metrics(equity: pd.Series, trades: pd.DataFrame | None = None) -> dict:
    """Every metric above in one dict (see the module docstring for conventions)."""
    days, bars = max_drawdown_duration(equity)
    out = {
        "start": equity.index[0] if len(equity) else None,
        "end": equity.index[-1] if len(equity) else None,
        "n_bars": int(len(equity)),
        "years": years_spanned(equity),
        "periods_per_year": periods_per_year(equity),
        "initial_equity": float(equity.iloc[0]) if len(equity) else math.nan,
        "final_equity": float(equity.iloc[-1]) if len(equity) else math.nan,
        "pnl": float(equity.iloc[-1] - equity.iloc[0]) if len(equity) else math.nan,
        "total_return": total_return(equity),
        "cagr": cagr(equity),
        "annual_volatility": annual_volatility(equity),
        "sharpe": sharpe_ratio(equity),
        "sortino": sortino_ratio(equity),
        "max_drawdown": max_drawdown(equity),
        "max_drawdown_duration": days,
        "max_drawdown_duration_days": days,
        "max_drawdown_duration_bars": bars,
        "calmar": calmar_ratio(equity),
        "exposure": exposure(equity, trades),
    }
    out.update(trade_stats(trades))
    return out


def json_safe(metrics: dict) -> dict:
    """NaN/inf -> None, numpy scalars -> Python, timestamps -> ISO strings."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (pd.Timestamp,)):
            out[key] = value.isoformat()
        elif isinstance(value, (np.integer,)):
            out[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            out[key] = float(value) if math.isfinite(value) else None
        else:
            out[key] = value
    return out
