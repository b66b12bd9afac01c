"""Metrics against empyrical (independent implementation) and hand-computed cases."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from raybt import metrics as m


def curve(values, freq="5min", start="2024-01-01"):
    idx = pd.date_range(start, periods=len(values), freq=freq, tz="UTC")
    return pd.Series(np.asarray(values, float), index=idx)


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 3000), vol=st.sampled_from([1e-4, 1e-3, 1e-2]))
def test_against_empyrical(seed, n, vol):
    rng = np.random.default_rng(seed)
    eq = curve(1e5 * np.exp(np.cumsum(rng.normal(1e-5, vol, n))))
    r = pd.Series(m.returns_from_equity(eq))
    ppy = m.periods_per_year(eq)
    assert close(m.sharpe_ratio(eq), empyrical.sharpe_ratio(r, annualization=ppy))
    assert close(m.sortino_ratio(eq), empyrical.sortino_ratio(r, annualization=ppy))
    assert close(m.annual_volatility(eq), empyrical.annual_volatility(r, annualization=ppy))
    assert close(m.cagr(eq), empyrical.annual_return(r, annualization=ppy))
    assert close(m.max_drawdown(eq), -empyrical.max_drawdown(r))
    assert close(m.total_return(eq), empyrical.cum_returns_final(r))
    assert close(m.calmar_ratio(eq), empyrical.calmar_ratio(r, annualization=ppy))


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
