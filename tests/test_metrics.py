"""Metrics against empyrical (independent implementation) and hand-computed cases."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from raybt import metrics as m


def curve(values, freq="5min", start="2024-01-01"):
    idx = pd.date_range(start, periods=len(values), freq=freq, tz="UTC")
    return pd.Series(np.asarray(values, float), index=idx)


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def close_growth(a, b, n_returns: int, years: float, scale: float = 1.0):
    """``close`` for a number built from a compounded growth, ``(prod of n returns) ** (1 / years) - 1``
    (CAGR; times ``scale`` for Calmar): the product's rounding, up to ``n`` ulps each way, is raised
    to ``1 / years``. Over a few hours of 5-minute bars that exponent is in the thousands, and two
    correct ways of compounding (final / initial here, the product of the returns in empyrical)
    differ by more than 1e-9 relative when the total return is tiny (found by hypothesis: 62 bars,
    total return 3.5e-7, difference 3e-9 relative)."""
    bound = (1 + abs(b / scale)) * 4 * n_returns * np.finfo(float).eps / years * abs(scale)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=max(1e-12, bound))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 3000), vol=st.sampled_from([1e-4, 1e-3, 1e-2]))
@example(seed=1570, n=62, vol=1e-4)  # a tiny total return compounded over 5 hours (see close_growth)
def test_against_empyrical(seed, n, vol):
    rng = np.random.default_rng(seed)
    eq = curve(1e5 * np.exp(np.cumsum(rng.normal(1e-5, vol, n))))
    r = pd.Series(m.returns_from_equity(eq))
    ppy = m.periods_per_year(eq)
    assert close(m.sharpe_ratio(eq), empyrical.sharpe_ratio(r, annualization=ppy))
    assert close(m.sortino_ratio(eq), empyrical.sortino_ratio(r, annualization=ppy))
    assert close(m.annual_volatility(eq), empyrical.annual_volatility(r, annualization=ppy))
    years = len(r) / ppy
    assert close_growth(m.cagr(eq), empyrical.annual_return(r, annualization=ppy), len(r), years)
    assert close(m.max_drawdown(eq), -empyrical.max_drawdown(r))
    assert close(m.total_return(eq), empyrical.cum_returns_final(r))
    assert close_growth(m.calmar_ratio(eq), empyrical.calmar_ratio(r, annualization=ppy), len(r), years,
                        scale=1 / m.max_drawdown(eq) if m.max_drawdown(eq) else 1.0)


def test_weekend_gapped_curve_against_empyrical():
    idx = pd.date_range("2024-01-01", periods=288 * 30, freq="5min", tz="UTC")
    idx = idx[idx.day_of_week < 5]
    rng = np.random.default_rng(1)
    eq = pd.Series(1e6 * np.exp(np.cumsum(rng.normal(0, 5e-4, len(idx)))), index=idx)
    r = pd.Series(m.returns_from_equity(eq))
    ppy = (len(eq) - 1) / ((idx[-1] - idx[0]) / pd.Timedelta(days=365.25))
    assert close(m.periods_per_year(eq), ppy)
    assert close(m.sharpe_ratio(eq), empyrical.sharpe_ratio(r, annualization=ppy))
    assert close(m.cagr(eq), empyrical.cagr(r, annualization=ppy))


def test_drawdown_and_duration_by_hand():
    eq = curve([100, 110, 99, 105, 111, 90, 95], freq="1D")
    assert close(m.max_drawdown(eq), 1 - 90 / 111)
    days, bars = m.max_drawdown_duration(eq)
    assert (days, bars) == (3.0, 3)  # 110 on day 1 recovered on day 4; 111 on day 4 never (2 days)
    assert m.drawdown_series(eq).iloc[0] == 0.0
    flat = curve([100, 100, 101])
    assert m.max_drawdown(flat) == 0 and math.isnan(m.calmar_ratio(flat))


def test_drawdown_duration_longest_stretch():
    eq = curve([100, 90, 95, 99, 100, 98, 101], freq="1D")
    assert m.max_drawdown_duration(eq) == (4.0, 4)


def trades_frame(rows):
    cols = ["asset", "side", "units", "entry_time", "entry_price", "exit_time", "exit_price",
            "exit_reason", "pnl", "commission"]
    return pd.DataFrame(rows, columns=cols)


def test_trade_stats_and_exposure():
    eq = curve(np.linspace(100, 110, 10))
    t = eq.index
    trades = trades_frame([
        ["A", "long", 1, t[1], 1, t[3], 1, "tp", 10.0, 0.5],
        ["A", "short", 1, t[2], 1, t[4], 1, "sl", -4.0, 0.5],
        ["A", "long", 1, t[7], 1, t[7], 1, "sl", -1.0, 0.0],
    ])
    s = m.trade_stats(trades)
    assert s["n_trades"] == 3 and close(s["win_rate"], 1 / 3) and close(s["profit_factor"], 2.0)
    assert close(s["avg_trade_pnl"], 5 / 3) and s["exit_sl"] == 2 and close(s["total_commission"], 1.0)
    assert close(m.exposure(eq, trades), 5 / 10)  # bars 1-4 and 7
    assert m.trade_stats(None)["n_trades"] == 0 and math.isnan(m.trade_stats(None)["win_rate"])
    wins = trades_frame([["A", "long", 1, t[1], 1, t[2], 1, "tp", 3.0, 0.0]])
    assert m.trade_stats(wins)["profit_factor"] == math.inf


def test_edge_cases_are_nan_not_errors():
    one = curve([100.0])
    assert math.isnan(m.sharpe_ratio(one)) and m.compute_metrics(one)["n_bars"] == 1
    const = curve([100.0] * 10)
    assert math.isnan(m.sharpe_ratio(const)) and math.isnan(m.sortino_ratio(const))
    up = curve([100, 101, 102, 103])
    assert m.sortino_ratio(up) == math.inf
    safe = m.json_safe(m.compute_metrics(up))
    assert safe["sortino"] is None and isinstance(safe["start"], str)
