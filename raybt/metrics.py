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
from typing import NamedTuple

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365.25
NS_PER_DAY = 86_400 * 10**9


class TradeColumns(NamedTuple):
    """The trade fields the metrics read, as numpy arrays (one asset's trades, or all)."""

    pnl: np.ndarray  # currency, net of both commissions
    commission: np.ndarray  # currency, both sides
    reason_code: np.ndarray  # int: position of the exit reason in ``reasons``
    reasons: tuple  # exit reason names
    entry_ns: np.ndarray  # UTC ns
    exit_ns: np.ndarray

    @classmethod
    def from_frame(cls, trades: pd.DataFrame | None) -> "TradeColumns | None":
        if trades is None or len(trades) == 0:
            return None
        reason = trades["exit_reason"]
        if isinstance(reason.dtype, pd.CategoricalDtype):
            codes, names = reason.cat.codes.to_numpy(), tuple(reason.cat.categories)
        else:
            codes, uniques = pd.factorize(reason)
            names = tuple(str(u) for u in uniques)
        return cls(trades["pnl"].to_numpy(dtype=np.float64), trades["commission"].to_numpy(dtype=np.float64),
                   codes.astype(np.int64), names, _ns(trades["entry_time"]), _ns(trades["exit_time"]))

    def take(self, rows: np.ndarray) -> "TradeColumns | None":
        """The trades at positions ``rows`` (None when there are none)."""
        if not len(rows):
            return None
        return TradeColumns(self.pnl[rows], self.commission[rows], self.reason_code[rows], self.reasons,
                            self.entry_ns[rows], self.exit_ns[rows])


def _ns(times) -> np.ndarray:
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def _values(equity) -> np.ndarray:
    return np.asarray(equity, dtype=np.float64)


def _returns(values: np.ndarray) -> np.ndarray:
    if len(values) < 2:
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return values[1:] / values[:-1] - 1.0


def _years(ns: np.ndarray) -> float:
    return int(ns[-1] - ns[0]) / NS_PER_DAY / DAYS_PER_YEAR if len(ns) >= 2 else math.nan


def _periods_per_year(n: int, years: float) -> float:
    return (n - 1) / years if years and years > 0 else math.nan


def _total_return(values: np.ndarray) -> float:
    return float(values[-1] / values[0] - 1.0) if len(values) else math.nan


def _cagr(values: np.ndarray, years: float) -> float:
    if not years or years <= 0 or math.isnan(years):
        return math.nan
    growth = 1.0 + _total_return(values)
    if growth <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        return float(np.power(growth, 1.0 / years)) - 1.0


def _mean_std(r: np.ndarray) -> tuple:
    """``(mean, sample std)`` of the returns as numpy floats (NaN where there are too few)."""
    mean = np.mean(r) if len(r) else np.float64(math.nan)
    return mean, (np.std(r, ddof=1) if len(r) >= 2 else np.float64(math.nan))


def _annual_volatility(r: np.ndarray, ppy: float, stats: tuple | None = None) -> float:
    """``stats``: :func:`_mean_std` of ``r`` when the caller has it (the same numbers, one pass fewer)."""
    if len(r) < 2:
        return math.nan
    sd = (stats or _mean_std(r))[1]
    return float(sd * math.sqrt(ppy))


def _sharpe(r: np.ndarray, ppy: float, stats: tuple | None = None) -> float:
    if len(r) < 2:
        return math.nan
    mean, sd = stats or _mean_std(r)
    if sd == 0 or not np.isfinite(sd):
        return math.nan
    return float(mean / sd * math.sqrt(ppy))


def _sortino(r: np.ndarray, ppy: float, stats: tuple | None = None) -> float:
    if len(r) < 1:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(ppy)
    mean = float((stats or _mean_std(r))[0]) * ppy
    if downside == 0:
        return math.inf if mean > 0 else math.nan
    return mean / downside


def _drawdown(values: np.ndarray, peak: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, 1.0 - values / peak, 0.0)


def _max_drawdown(dd: np.ndarray) -> float:
    """The largest drawdown, NaN entries skipped (as pandas' ``Series.max``)."""
    finite = dd[~np.isnan(dd)]
    return float(finite.max()) if len(finite) else math.nan


def _max_drawdown_duration(values: np.ndarray, peak: np.ndarray, ns: np.ndarray) -> tuple[float, int]:
    if len(values) < 2:
        return 0.0, 0
    under = values < peak
    if not under.any():
        return 0.0, 0
    # each underwater stretch runs from the peak bar just before it to the bar it recovers at (or the last bar)
    peak_bar = np.flatnonzero(under & ~np.r_[False, under[:-1]]) - 1
    ends = np.flatnonzero(under & ~np.r_[under[1:], False])
    recover_bar = np.where(ends + 1 < len(values), ends + 1, ends)
    bars = recover_bar - peak_bar
    days = (ns[recover_bar] - ns[peak_bar]) / NS_PER_DAY
    longest = days == days.max()  # the longest in time; among equally long, the most bars
    return float(days.max()), int(bars[longest].max())


def _calmar(cagr_: float, mdd: float) -> float:
    return math.nan if not mdd or mdd <= 0 else cagr_ / mdd


def _exposure(ns: np.ndarray, trades: TradeColumns | None) -> float:
    n = len(ns)
    if n == 0:
        return math.nan
    if trades is None:
        return 0.0
    entry = np.searchsorted(ns, trades.entry_ns)
    exit_ = np.searchsorted(ns, trades.exit_ns)
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, entry, 1)
    np.add.at(marks, np.minimum(exit_ + 1, n), -1)
    return float((np.cumsum(marks[:n]) > 0).mean())


def _trade_stats(trades: TradeColumns | None) -> dict:
    if trades is None:
        return {"n_trades": 0, "win_rate": math.nan, "profit_factor": math.nan,
                "avg_trade_pnl": math.nan, "total_commission": 0.0}
    pnl = trades.pnl
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    if losses > 0:
        profit_factor = float(gains / losses)
    else:
        profit_factor = math.inf if gains > 0 else math.nan
    stats = {"n_trades": int(len(pnl)), "win_rate": float((pnl > 0).mean()),
             "profit_factor": profit_factor, "avg_trade_pnl": float(pnl.mean()),
             "total_commission": float(pd.Series(trades.commission).sum())}
    counts = np.bincount(trades.reason_code, minlength=len(trades.reasons))
    names = np.asarray(trades.reasons, dtype=object)
    for k in np.lexsort((names, -counts)):  # most frequent first
        if counts[k]:
            stats[f"exit_{names[k]}"] = int(counts[k])
    return stats


# --- the public functions (a Series of equity in, a number out) -------------------------

def returns_from_equity(equity: pd.Series) -> np.ndarray:
    return _returns(_values(equity))


def years_spanned(equity: pd.Series) -> float:
    return _years(_ns(equity.index)) if len(equity) >= 2 else math.nan


def periods_per_year(equity: pd.Series) -> float:
    return _periods_per_year(len(equity), years_spanned(equity))


def total_return(equity: pd.Series) -> float:
    return _total_return(_values(equity))


def cagr(equity: pd.Series) -> float:
    return _cagr(_values(equity), years_spanned(equity))


def annual_volatility(equity: pd.Series) -> float:
    return _annual_volatility(returns_from_equity(equity), periods_per_year(equity))


def sharpe_ratio(equity: pd.Series) -> float:
    return _sharpe(returns_from_equity(equity), periods_per_year(equity))


def sortino_ratio(equity: pd.Series) -> float:
    return _sortino(returns_from_equity(equity), periods_per_year(equity))


def drawdown_series(equity: pd.Series) -> pd.Series:
    values = _values(equity)
    return pd.Series(_drawdown(values, np.maximum.accumulate(values)), index=equity.index, name="drawdown")


def max_drawdown(equity: pd.Series) -> float:
    return _max_drawdown(drawdown_series(equity).to_numpy()) if len(equity) else math.nan


def max_drawdown_duration(equity: pd.Series) -> tuple[float, int]:
    """(days, bars) of the longest stretch below a previous peak."""
    values = _values(equity)
    if len(values) < 2:
        return 0.0, 0
    return _max_drawdown_duration(values, np.maximum.accumulate(values), _ns(equity.index))


def calmar_ratio(equity: pd.Series) -> float:
    return _calmar(cagr(equity), max_drawdown(equity))


def trade_stats(trades: pd.DataFrame | None) -> dict:
    return _trade_stats(TradeColumns.from_frame(trades))


def exposure(equity: pd.Series, trades: pd.DataFrame | None) -> float:
    """Fraction of bars from some trade's entry bar to its exit bar inclusive."""
    return _exposure(_ns(equity.index), TradeColumns.from_frame(trades))


def rolling_sharpe(equity: pd.Series, window_bars: int) -> pd.Series:
    """Sharpe over a rolling window of returns, annualised like :func:`sharpe_ratio`."""
    r = pd.Series(returns_from_equity(equity), index=equity.index[1:])
    ppy = periods_per_year(equity)
    roll = r.rolling(window_bars)
    return roll.mean() / roll.std(ddof=1) * math.sqrt(ppy)


def compute_metrics(equity: pd.Series, trades: pd.DataFrame | None = None) -> dict:
    """Every metric above in one dict (see the module docstring for conventions)."""
    return metrics_of(equity.index, _values(equity), TradeColumns.from_frame(trades))


def metrics_of(index: pd.DatetimeIndex, values: np.ndarray, trades: TradeColumns | None,
               ns: np.ndarray | None = None) -> dict:
    """:func:`compute_metrics` of equity ``values`` on ``index``, with each intermediate
    (returns, their mean and std, running peak, drawdown) computed once. ``ns``: ``index``
    as int64 nanoseconds, when the caller has them (sleeves sharing one index)."""
    n = len(values)
    ns = _ns(index) if ns is None else ns
    years = _years(ns)
    ppy = _periods_per_year(n, years)
    r = _returns(values)
    stats = _mean_std(r)
    peak = np.maximum.accumulate(values)
    mdd = _max_drawdown(_drawdown(values, peak)) if n else math.nan
    days, bars = _max_drawdown_duration(values, peak, ns)
    growth = _cagr(values, years)
    out = {
        "start": index[0] if n else None,
        "end": index[-1] if n else None,
        "n_bars": int(n),
        "years": years,
        "periods_per_year": ppy,
        "initial_equity": float(values[0]) if n else math.nan,
        "final_equity": float(values[-1]) if n else math.nan,
        "pnl": float(values[-1] - values[0]) if n else math.nan,
        "total_return": _total_return(values),
        "cagr": growth,
        "annual_volatility": _annual_volatility(r, ppy, stats),
        "sharpe": _sharpe(r, ppy, stats),
        "sortino": _sortino(r, ppy, stats),
        "max_drawdown": mdd,
        "max_drawdown_duration": days,
        "max_drawdown_duration_days": days,
        "max_drawdown_duration_bars": bars,
        "calmar": _calmar(growth, mdd),
        "exposure": _exposure(ns, trades),
    }
    out.update(_trade_stats(trades))
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
